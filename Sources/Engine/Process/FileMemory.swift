// File-backed memory: regular files in a page cache, memfds (shmem files), and the faults on their
// mappings (mm/filemap.c, mm/memory.c do_fault, 6.12).

extension Engine {
    /// `file NAME SIZE`: a file of SIZE bytes on disk, nothing of it in the page cache.
    mutating func createFile(name: String, size: UInt64, _ j: inout StepJournal) -> OpResult {
        if state.fileIndex(named: name) != nil { return .fail(.errno("EEXIST"), "a file named \(name) exists already") }
        let object = state.meta.nextShmem
        updateMachine(&j) { $0.nextShmem += 1 }
        addFile(FileObject(name: name, size: size, object: object, shmem: false), &j)
        return OpResult(text: "file \(name): \(formatSize(size)) on disk, none of it in the page cache yet; a mapping reads its pages in on the first touch")
    }

    /// memfd_create(2), ftruncate(SIZE), mmap(MAP_SHARED): a shmem file of its own (mm/memfd.c),
    /// mapped shared; its pages are zero-filled on the first touch, as for shared anonymous memory.
    mutating func doMemfd(_ p: Int, name: String, size: UInt64, _ j: inout StepJournal) -> OpResult {
        guard size > 0 else { return .fail(.errno("EINVAL"), "mmap of the memfd fails with EINVAL: a length of 0") }
        let len = alignUp(max(size, 1), pageSize)
        guard let addr = getUnmappedArea(p, length: len, thpAlign: false) else {
            return .fail(.errno("ENOMEM"), "mmap of the memfd: no gap of \(formatSize(len)) left in the address space")
        }
        let object = state.meta.nextShmem
        updateMachine(&j) { $0.nextShmem += 1 }
        addFile(FileObject(name: "memfd:\(name)", size: size, object: object, shmem: true), &j)
        insertVMA(p, VMA(start: addr, end: addr + len, flags: [.read, .write, .shared], kind: .file, anonVMA: 0, shmem: object,
                         shmemOffset: 0, label: "/memfd:\(name) (deleted)"), &j)
        bufferAppend(p, Buffer(name: name, start: addr, size: size, kind: .file, chunkStart: addr, chunkSize: len), &j)
        return OpResult(text: "memfd_create(\"\(name)\") + ftruncate(\(formatSize(size))) + mmap(MAP_SHARED) = \(hex(addr)): a shmem file of its own, no page until the first touch")
    }

    /// mmap(..., fd of file NAME, 0): the VMA names the file's page cache.
    mutating func doMmapFile(_ p: Int, name: String, size: UInt64, file: String, shared: Bool, populate: Bool, locked: Bool,
                             prot: Protection, _ j: inout StepJournal) -> OpResult {
        guard let f = state.fileIndex(named: file) else {
            return .fail(.errno("EBADF"), "mmap fails with EBADF: there is no file named \(file) (declare it with `file \(file) SIZE`)")
        }
        guard size > 0 else { return .fail(.errno("EINVAL"), "mmap fails with EINVAL: a length of 0") }
        let len = alignUp(size, pageSize)
        if locked, memlockCheck(p, pages: Int(len >> pageShift)) != nil {
            return .fail(.errno("EAGAIN"), "mmap(MAP_LOCKED) refused with EAGAIN (mlock_future_ok): " + memlockMessage(p, request: Int(len >> pageShift), counter: "locked_vm", current: state.processes[p].meta.lockedVMPages))
        }
        guard let addr = getUnmappedArea(p, length: len, thpAlign: false) else {
            return .fail(.errno("ENOMEM"), "mmap: no gap of \(formatSize(len)) left in the address space")
        }
        var flags: VMFlags = prot == .rw ? [.read, .write] : prot == .r ? .read : []
        if shared { flags.insert(.shared) }
        if locked { flags.insert(.locked) }
        let fo = state.files[f]
        insertVMA(p, VMA(start: addr, end: addr + len, flags: flags, kind: .file, anonVMA: 0, shmem: fo.object, shmemOffset: 0,
                         label: fo.shmem ? "/\(fo.name) (deleted)" : "/\(fo.name)"), &j)
        bufferAppend(p, Buffer(name: name, start: addr, size: size, kind: .file, chunkStart: addr, chunkSize: len), &j)
        var text = "mmap(\(formatSize(len))\(prot == .rw ? "" : ", " + prot.flagsName), \(shared ? "MAP_SHARED" : "MAP_PRIVATE")\(locked ? "|MAP_LOCKED" : ""), \(fo.name)) = \(hex(addr))"
        text += shared ? ": writes go to the page cache, which every mapper shares" : ": reads map the page cache's pages, a write copies (COW from the page cache)"
        if len > alignUp(fo.size, pageSize) { text += "; the mapping runs past the file's end (\(formatSize(fo.size))): a touch there is SIGBUS" }
        if locked {
            updateCounters(p, &j) { $0.lockedVMPages += Int(len >> pageShift) }
            text += "; VM_LOCKED charges locked_vm \(formatSize(len))"
        }
        if (populate || locked) && prot != .none {
            let r = populateRange(p, start: addr, end: min(addr + len, addr + alignUp(fo.size, pageSize)), &j)
            if r != .ok { return faultOutcome(r, text: text) }
            text += "; populate_vma_page_range faults every page in now"
        }
        return OpResult(text: text)
    }

    /// A shared mapping of a regular file is mapped read-only until written (vma_wants_writenotify,
    /// mm/vma.c:1910: the file needs dirty tracking); a shmem one is writable at once. A private
    /// mapping maps page-cache pages read-only: a write copies.
    func faultAroundWritable(_ vma: VMA) -> Bool {
        guard vma.flags.contains(.shared), vma.flags.contains(.write) else { return false }
        guard vma.kind == .file, let f = state.fileIndex(object: vma.shmem) else { return true }
        return state.files[f].shmem
    }

    /// do_fault for a file VMA (mm/memory.c:5425): do_read_fault (:5301, with fault-around),
    /// do_cow_fault (:5333) for a write to a private mapping, do_shared_fault (:5375) for a write to
    /// a shared one. filemap_fault (mm/filemap.c:3305) finds the page in the page cache or reads it
    /// in; past the end of the file it is SIGBUS.
    mutating func fileFault(_ p: Int, vma v: Int, vpn: UInt64, write: Bool, _ j: inout StepJournal) -> FaultResult {
        let vma = state.processes[p].meta.vmas[v]
        guard let f = state.fileIndex(object: vma.shmem) else { return .sigsegv(reason: "\(hex(vpn << pageShift)): the mapping's file is gone") }
        let index = vma.shmemOffset + (vpn - (vma.start >> pageShift))
        guard index < state.files[f].pages else {
            return .sigbus(reason: "\(hex(vpn << pageShift)) is past the end of \(state.files[f].name) (\(formatSize(state.files[f].size))): filemap_fault returns VM_FAULT_SIGBUS")
        }
        let shared = vma.flags.contains(.shared)
        if !write { faultAround(p, vma: v, vpn: vpn, &j) }
        guard state.processes[p].pt.tables[vpn >> 9]?.entries[Int(vpn & 511)].isNone ?? false else {
            j.events.add(.alreadyMapped)
            return .ok
        }
        guard let cached = pageCachePage(p, file: f, index: index, &j) else { return .oom }
        guard state.processes[p].meta.alive else { return .oom }
        if write && !shared {
            // do_cow_fault: a new anonymous page, the file page copied into it; the page cache keeps its page.
            anonVMAPrepare(p, vma: v, &j)
            guard let pfn = allocPageOrReclaim(use: .anon, owner: state.processes[p].meta.pid, exclusive: true, mapcount: 1, &j) else { return .oom }
            guard state.processes[p].meta.alive else { return .oom }
            state.phys.setData(pfn, state.phys.dataTag(cached), &j)
            setPTE(p, vpn: vpn, .page(pfn: pfn, writable: vma.flags.contains(.write)), &j)
            updateCounters(p, &j) { $0.rssPages += 1 }
            j.events.add(.cowFault)
            return .ok
        }
        state.phys.update(cached, &j) { $0.refcount += 1; $0.mapcount += 1 }
        let writable = shared && vma.flags.contains(.write) && (write || state.files[f].shmem)
        setPTE(p, vpn: vpn, .page(pfn: cached, writable: writable), &j)
        updateCounters(p, &j) { $0.rssPages += 1 }
        return .ok
    }

    /// The page cache's page for `index` of file f: found (filemap_fault), or allocated and read in
    /// (filemap_read_folio; a memfd's page is zero-filled, shmem_get_folio). The cache holds one reference.
    private mutating func pageCachePage(_ p: Int, file f: Int, index: UInt64, _ j: inout StepJournal) -> Int? {
        let fo = state.files[f]
        if let pfn = state.shmem[fo.object]?[index] {
            j.events.add(fo.shmem ? .shmemFault : .pageCacheHit)
            return Int(pfn)
        }
        guard let pfn = allocPageOrReclaim(use: fo.shmem ? .shmem : .file, owner: state.processes[p].meta.pid, exclusive: false, &j) else { return nil }
        setShmemPage(fo.object, index, Int32(pfn), &j)
        if !fo.shmem { state.phys.setData(pfn, .file(f), &j) }
        j.events.add(fo.shmem ? .shmemFault : .pageCacheRead)
        return pfn
    }
}
