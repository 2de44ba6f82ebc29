// The system calls a process event makes: execve (a `process` line), mmap, munmap, madvise,
// mlock/munlock, fork, exit. Each returns its outcome and a sentence of narration; the faults
// they cause are tallied and narrated by the caller.

struct OpResult {
    var outcome: Outcome = .ok
    var text: String

    static func fail(_ outcome: Outcome, _ text: String) -> OpResult { OpResult(outcome: outcome, text: text) }
}

extension Engine {
    /// execve of a small PIE program: image VMAs at 0x555555554000, brk right after .bss, a stack,
    /// and a PGD. (Shared libraries are left out: they would sit just below mmap_base.)
    mutating func createProcess(_ decl: ProcessDecl, _ j: inout StepJournal) -> OpResult {
        let pid = state.meta.nextPid
        updateMachine(&j) { $0.nextPid += 1 }
        let image: [(UInt64, UInt64, VMFlags)] = [
            (imageBase, 0x2000, [.read, .exec]),
            (imageBase + 0x2000, 0x1000, [.read]),
            (imageBase + 0x3000, 0x2000, [.read, .write]),
        ]
        var vmas = image.map { VMA(start: $0.0, end: $0.0 + $0.1, flags: $0.2, kind: .image, anonVMA: 0, shmem: 0, shmemOffset: 0, label: decl.name) }
        vmas.append(VMA(start: stackTop - 0x21000, end: stackTop, flags: [.read, .write, .growsdown], kind: .stack,
                        anonVMA: 0, shmem: 0, shmemOffset: 0, label: "[stack]"))
        let brk = imageBase + 0x5000
        let meta = ProcessMeta(name: decl.name, pid: pid, vmas: vmas, startBrk: brk, mmapBase: mmapBaseDefault,
                               memlockLimit: decl.memlock ?? state.config.memlock, capIPCLock: decl.capIPCLock,
                               user: decl.user ?? "user", createdStep: j.step)
        let p = addProcess(meta, &j)
        guard let pgd = allocTablePage(p, &j) else {
            updateCounters(p, &j) {
                $0.alive = false
                $0.exitReason = "execve failed: no memory for a page table"
            }
            return .fail(.oom, "no memory even for the new process's page table (pgd_alloc)")
        }
        setUpperTable(p, key: Engine.pgdKey, pgd, &j)
        j.events.add(.pageTableAlloc)
        let limit = decl.capIPCLock ? "CAP_IPC_LOCK (no memlock limit)" : "RLIMIT_MEMLOCK \(formatSize(meta.memlockLimit))"
        return OpResult(text: "\(decl.name) starts as pid \(pid): program image at \(hex(imageBase)), brk heap from \(hex(brk)), mmap area below \(hex(mmapBaseDefault)); \(limit)")
    }

    /// can_do_mlock + mlock_future_ok for `pages` more locked pages.
    func memlockCheck(_ p: Int, pages: Int) -> String? {
        let m = state.processes[p].meta
        if m.capIPCLock { return nil }
        if m.memlockLimit == 0 { return "EPERM" }
        if UInt64(m.lockedVMPages + pages) << pageShift > m.memlockLimit { return "over" }
        return nil
    }

    func memlockMessage(_ p: Int, request pages: Int, counter: String, current: Int) -> String {
        let m = state.processes[p].meta
        return "RLIMIT_MEMLOCK is \(formatSize(m.memlockLimit)); \(counter) is \(formatSize(UInt64(current) << pageShift)) and the request adds \(formatSize(UInt64(pages) << pageShift))"
    }

    /// mmap(MAP_PRIVATE|MAP_ANONYMOUS or MAP_SHARED|MAP_ANONYMOUS) of a named buffer.
    mutating func doMmap(_ p: Int, name: String, size: UInt64, shared: Bool, populate: Bool, locked: Bool, hugepage: Bool,
                         prot: Protection = .rw, _ j: inout StepJournal) -> OpResult {
        // do_mmap: "if (!len) return -EINVAL;" (mm/mmap.c:295).
        guard size > 0 else { return .fail(.errno("EINVAL"), "mmap of \(name) fails with EINVAL: a length of 0") }
        let len = alignUp(size, pageSize)
        let pages = Int(len >> pageShift)
        if locked {
            switch memlockCheck(p, pages: pages) {
            case "EPERM"?: return .fail(.errno("EPERM"), "mmap(MAP_LOCKED) refused: RLIMIT_MEMLOCK is 0 and there is no CAP_IPC_LOCK (can_do_mlock)")
            case "over"?: return .fail(.errno("EAGAIN"), "mmap(MAP_LOCKED) refused with EAGAIN (mlock_future_ok): " + memlockMessage(p, request: pages, counter: "locked_vm", current: state.processes[p].meta.lockedVMPages))
            default: break
            }
        }
        let thpAlign = !shared && state.config.kernel == .v6_12 && len % pmdSize == 0
        guard let addr = getUnmappedArea(p, length: len, thpAlign: thpAlign) else {
            return .fail(.errno("ENOMEM"), "mmap: no gap of \(formatSize(len)) left in the address space")
        }
        var flags: VMFlags = prot == .rw ? [.read, .write] : prot == .r ? .read : []
        if shared { flags.insert(.shared) }
        if locked { flags.insert(.locked) }
        if hugepage { flags.insert(.hugepage) }
        var shmem: Int32 = 0
        if shared {
            shmem = state.meta.nextShmem
            updateMachine(&j) { $0.nextShmem += 1 }
        }
        insertVMA(p, VMA(start: addr, end: addr + len, flags: flags, kind: .anon, anonVMA: 0, shmem: shmem, shmemOffset: 0, label: name), &j)
        bufferAppend(p, Buffer(name: name, start: addr, size: size, kind: .mmap, chunkStart: addr, chunkSize: len), &j)
        let protName = prot.flagsName
        var text = "mmap(\(formatSize(len))\(prot == .rw ? "" : ", " + protName), \(shared ? "MAP_SHARED" : "MAP_PRIVATE")|MAP_ANONYMOUS\(locked ? "|MAP_LOCKED" : "")\(populate ? "|MAP_POPULATE" : "")) = \(hex(addr))"
        text += thpAlign ? ": a multiple of 2 MiB, so 6.12 aligns it to 2 MiB (__thp_get_unmapped_area)" : ""
        if hugepage { text += "; MADV_HUGEPAGE sets VM_HUGEPAGE" }
        if locked {
            updateCounters(p, &j) { $0.lockedVMPages += pages }
            text += "; VM_LOCKED charges locked_vm \(formatSize(len))"
        }
        if (populate || locked) && prot == .none {
            // __mm_populate leaves a VMA with no access rights alone.
            text += "; PROT_NONE: nothing to populate"
        } else if populate || locked {
            let r = populateRange(p, start: addr, end: addr + len, &j)
            if r != .ok { return faultOutcome(r, text: text) }
            text += "; populate_vma_page_range faults every page in now"
        } else {
            text += "; only a VMA: no frame until the first touch"
        }
        return OpResult(text: text)
    }

    /// populate_vma_page_range: FOLL_WRITE for a private writable mapping (so real pages, not the zero page).
    mutating func populateRange(_ p: Int, start: UInt64, end: UInt64, _ j: inout StepJournal) -> FaultResult {
        var va = start
        while va < end {
            guard let v = state.processes[p].meta.vmaIndex(containing: va) else { break }
            let vma = state.processes[p].meta.vmas[v]
            let stop = min(end, vma.end)
            let write = vma.flags.contains(.write) && !vma.flags.contains(.shared)
            let r = touchRange(p, start: va, end: stop, write: write, &j)
            if r != .ok { return r }
            va = stop
        }
        return .ok
    }

    func faultOutcome(_ r: FaultResult, text: String) -> OpResult {
        switch r {
        case .ok: OpResult(text: text)
        case let .sigsegv(reason): .fail(.signal("SIGSEGV"), text + "; SIGSEGV: " + reason)
        // Populating (mlock, MAP_LOCKED, mremap of a locked VMA) sends no signal: faultin_page turns
        // VM_FAULT_SIGBUS into EFAULT, which the call reports as ENOMEM (__mlock_posix_error_return).
        case let .sigbus(reason): .fail(.errno("ENOMEM"), text + "; but " + reason + ", so populating fails with ENOMEM (no signal is sent)")
        case .oom: .fail(.oom, text + "; out of memory")
        }
    }

    /// munmap BUF [OFFSET SIZE].
    mutating func doMunmap(_ p: Int, buffer b: Buffer, range: BufferRange?, _ j: inout StepJournal) -> OpResult {
        let start = b.start + (range?.offset ?? 0)
        guard start % pageSize == 0 else {
            return .fail(.errno("EINVAL"), "munmap(\(hex(start))) fails with EINVAL: the address is not page aligned (\(b.kind == .heap || b.chunkStart != b.start ? "malloc returns the chunk + 16 bytes" : "offset inside a page"))")
        }
        let len = alignUp(range?.size ?? (b.size - min(b.size, range?.offset ?? 0)), pageSize)
        // do_vmi_munmap: "if (end == start) return -EINVAL;" (mm/vma.c:1410).
        guard len > 0 else { return .fail(.errno("EINVAL"), "munmap(\(hex(start)), 0) fails with EINVAL: a length of 0 unmaps nothing, and munmap refuses it") }
        let end = start + len
        unmapRange(p, start: start, end: end, &j)
        if range == nil || (start <= b.start && end >= b.start + b.size) {
            bufferRemove(p, named: b.name, &j)
        }
        return OpResult(text: "munmap(\(hex(start)), \(formatSize(len))): zap_page_range drops the pages, the VMA goes, free_pgtables frees page tables no VMA needs")
    }

    /// madvise BUF ADVICE [OFFSET SIZE].
    mutating func doMadvise(_ p: Int, buffer b: Buffer, advice: MadviseAdvice, range: BufferRange?, _ j: inout StepJournal) -> OpResult {
        let start = b.start + (range?.offset ?? 0)
        guard start % pageSize == 0 else {
            return .fail(.errno("EINVAL"), "madvise(\(hex(start))) fails with EINVAL: the start is not page aligned\(b.kind == .heap || b.chunkStart != b.start ? " (malloc returns the chunk + 16 bytes; use mmap for page-aligned memory)" : "")")
        }
        let end = start + alignUp(range?.size ?? (b.size - min(b.size, range?.offset ?? 0)), pageSize)
        // do_madvise: "if (end == start) return 0;" (mm/madvise.c:1351).
        guard end > start else { return OpResult(text: "madvise of 0 bytes does nothing and returns 0") }
        let unmapped = unmappedBytes(p, start: start, end: end)
        let vmas = state.processes[p].meta.vmas.filter { $0.start < end && $0.end > start }
        switch advice {
        case .dontneed:
            if vmas.contains(where: { $0.flags.contains(.locked) }) {
                return .fail(.errno("EINVAL"), "MADV_DONTNEED fails with EINVAL on a VM_LOCKED range (madvise_dontneed_free_valid_vma)")
            }
            zapRange(p, start: start, end: end, &j)
        case .dontfork:
            modifyVMAFlags(p, start: start, end: end, set: .dontcopy, &j)
        case .dofork:
            modifyVMAFlags(p, start: start, end: end, clear: .dontcopy, &j)
        case .hugepage:
            modifyVMAFlags(p, start: start, end: end, set: .hugepage, clear: .nohugepage, &j)
        case .nohugepage:
            // hugepage_madvise (mm/khugepaged.c): THPs already mapped stay.
            modifyVMAFlags(p, start: start, end: end, set: .nohugepage, clear: .hugepage, &j)
        case .pageout:
            if vmas.contains(where: { $0.flags.contains(.locked) }) {
                return .fail(.errno("EINVAL"), "MADV_PAGEOUT fails with EINVAL on a VM_LOCKED range (madvise_pageout: can_madv_lru_vma)")
            }
            touchProcess(p, &j)
            let (r, shared) = pageoutRange(p, start: start, end: end, &j)
            var what = "MADV_PAGEOUT: reclaim_pages swaps out \(plural(r.reclaimed, "page")) of the range now (add_to_swap, try_to_unmap)"
            if shared > 0 { what += "; \(pluralIsAre(shared, "page")) mapped by another process too, so left (folio_likely_mapped_shared)" }
            if r.skippedPinned > 0 { what += "; \(plural(r.skippedPinned, "page")) that may be pinned or sit in the swap cache stay" }
            if r.unmappedHeld > 0 { what += "; \(pluralIsAre(r.unmappedHeld, "page")) held by get_user_pages references: unmapped to swap entries, kept in the swap cache" }
            if state.swapMap.isEmpty { what += "; there is no swap (machine swap=0), so no anonymous page can go" } else if r.swapFull && r.reclaimed == 0 { what += "; swap is full" }
            if unmapped > 0 {
                return .fail(.errno("ENOMEM"), what + "; but \(formatSize(unmapped)) of the range is not mapped, so madvise returns ENOMEM")
            }
            return OpResult(text: "madvise(\(hex(start)), \(formatSize(end - start))) " + what)
        case .collapse:
            var r = madviseCollapse(p, start: start, end: end, &j)
            if r.outcome == .ok && unmapped > 0 {
                r = .fail(.errno("ENOMEM"), r.text + "; but \(formatSize(unmapped)) of the range is not mapped, so madvise returns ENOMEM")
            }
            r.text = "madvise(\(hex(start)), \(formatSize(end - start))) " + r.text
            return r
        }
        let what: String
        switch advice {
        case .dontneed: what = "MADV_DONTNEED: zap_page_range drops the pages; the next touch faults a fresh zero-filled page"
        case .dontfork: what = "MADV_DONTFORK sets VM_DONTCOPY: a child of fork gets no mapping here"
        case .dofork: what = "MADV_DOFORK clears VM_DONTCOPY"
        case .hugepage: what = "MADV_HUGEPAGE sets VM_HUGEPAGE: with thp=madvise, faults in whole 2 MiB-aligned ranges map THPs"
        case .pageout, .collapse: what = ""
        case .nohugepage: what = "MADV_NOHUGEPAGE sets VM_NOHUGEPAGE (and clears VM_HUGEPAGE): no THP faults here even with thp=always; THPs already mapped stay"
        }
        if unmapped > 0 {
            return .fail(.errno("ENOMEM"), what + "; but \(formatSize(unmapped)) of the range is not mapped, so madvise returns ENOMEM")
        }
        return OpResult(text: "madvise(\(hex(start)), \(formatSize(end - start))) " + what)
    }

    /// mprotect: mprotect_fixup splits and merges the VMAs as vma_modify_flags does (a huge PMD
    /// the new boundary falls inside is split), then change_protection rewrites the PTEs.
    /// Taking write away write-protects every present PTE (and huge PMD). Giving it back to a
    /// private mapping leaves PTEs read-only except where the page is the process's own
    /// (PageAnonExclusive): can_change_pte_writable makes those writable at once, the "mprotect
    /// optimisation" that spares a write fault (mm/mprotect.c); every other page waits for a write
    /// fault, where do_wp_page reuses or copies. A shared mapping's PTEs become writable directly.
    mutating func doMprotect(_ p: Int, buffer b: Buffer, range: BufferRange?, prot: Protection, _ j: inout StepJournal) -> OpResult {
        let start = b.start + (range?.offset ?? 0)
        guard start % pageSize == 0 else {
            return .fail(.errno("EINVAL"), "mprotect(\(hex(start))) fails with EINVAL: the start is not page aligned\(b.kind == .heap || b.chunkStart != b.start ? " (malloc returns the chunk + 16 bytes; use mmap for page-aligned memory)" : "")")
        }
        let end = start + alignUp(range?.size ?? (b.size - min(b.size, range?.offset ?? 0)), pageSize)
        guard end > start else { return OpResult(text: "mprotect of 0 bytes does nothing") }
        if unmappedBytes(p, start: start, end: end) > 0 {
            return .fail(.errno("ENOMEM"), "mprotect fails with ENOMEM: part of \(hex(start))-\(hex(end)) is not mapped")
        }
        if state.processes[p].meta.vmas.contains(where: { $0.start < end && $0.end > start && ($0.kind == .image || $0.kind == .device) }) {
            return .fail(.errno("EACCES"), "mprotect fails with EACCES: the range is not anonymous memory this model can change")
        }
        let set: VMFlags = prot == .none ? [] : prot == .r ? .read : [.read, .write]
        let clear = VMFlags([.read, .write]).subtracting(set)
        touchProcess(p, &j)
        let range = isolateVMAs(p, start: start, end: end, &j)
        var protected = 0, madeWritable = 0, leftReadOnly = 0
        for i in range {
            let vma = state.processes[p].meta.vmas[i]
            vmaUpdate(p, at: i, &j) {
                $0.flags.formUnion(set)
                $0.flags.subtract(clear)
            }
            let shared = vma.flags.contains(.shared)
            var vpn = vma.start >> pageShift
            let endVPN = vma.end >> pageShift
            while vpn < endVPN {
                let region = vpn >> 9
                let regionEnd = min(endVPN, (region + 1) << 9)
                if let pmd = state.processes[p].pt.hugePMDs[region] {
                    // change_huge_pmd: the whole PMD at once (the VMA covers it: splits made sure).
                    if !set.contains(.write), pmd.writable {
                        setHugePMD(p, region: region, pmd.writeProtected(), &j)
                        protected += pagesPerPMD
                    } else if set.contains(.write), !pmd.writable, !pmd.isZero,
                              shared || state.phys.flags[pmd.number] & FrameFlag.anonExclusive != 0 {
                        setHugePMD(p, region: region, .page(pfn: pmd.number, writable: true, huge: true), &j)
                        madeWritable += pagesPerPMD
                    } else if set.contains(.write), !pmd.writable {
                        leftReadOnly += pagesPerPMD
                    }
                    vpn = regionEnd
                    continue
                }
                guard let table = state.processes[p].pt.tables[region], table.used > 0 else { vpn = regionEnd; continue }
                for v in vpn..<regionEnd {
                    let e = table.entries[Int(v & 511)]
                    guard e.present else { continue }
                    if !set.contains(.write) {
                        if e.writable {
                            setPTE(p, vpn: v, .page(pfn: e.number, writable: false, zero: e.isZero), &j)
                            protected += 1
                        }
                    } else if !e.writable {
                        let pfn = e.number
                        let own = !e.isZero && (shared || state.phys.flags[pfn] & FrameFlag.anonExclusive != 0)
                        if own && state.phys.frameUse(pfn) != .ump && state.phys.frameUse(pfn) != .dmabuf {
                            setPTE(p, vpn: v, .page(pfn: pfn, writable: true), &j)
                            madeWritable += 1
                        } else {
                            leftReadOnly += 1
                        }
                    }
                }
                vpn = regionEnd
            }
        }
        remergeAll(p, &j)
        var text = "mprotect(\(hex(start)), \(formatSize(end - start)), \(prot.flagsName)): mprotect_fixup sets the VMA flags"
        if protected > 0 { text += "; change_protection write-protects \(plural(protected, "present page"))" }
        if madeWritable > 0 {
            text += "; \(pluralIsAre(madeWritable, "page")) the process's own (PageAnonExclusive) and made writable at once (can_change_pte_writable: no write fault later)"
        }
        if leftReadOnly > 0 {
            text += "; \(plural(leftReadOnly, "shared or zero page")) stay\(leftReadOnly == 1 ? "s" : "") read-only: the next write faults and do_wp_page reuses or copies"
        }
        if prot == .none { text += "; any touch now is SIGSEGV" } else if prot == .r { text += "; a write now is SIGSEGV" }
        return OpResult(text: text)
    }

    /// mlock / munlock of a buffer's pages.
    mutating func doMlock(_ p: Int, buffer b: Buffer, lock: Bool, _ j: inout StepJournal) -> OpResult {
        let start = b.firstPage, end = b.endPage
        var newPages = 0
        for vma in state.processes[p].meta.vmas where vma.start < end && vma.end > start && vma.flags.contains(.locked) != lock {
            newPages += Int((min(vma.end, end) - max(vma.start, start)) >> pageShift)
        }
        if unmappedBytes(p, start: start, end: end) > 0 {
            return .fail(.errno("ENOMEM"), "\(lock ? "mlock" : "munlock") fails with ENOMEM: part of the range is not mapped")
        }
        if lock {
            switch memlockCheck(p, pages: newPages) {
            case "EPERM"?: return .fail(.errno("EPERM"), "mlock refused: RLIMIT_MEMLOCK is 0 and there is no CAP_IPC_LOCK (can_do_mlock)")
            case "over"?: return .fail(.errno("ENOMEM"), "mlock fails with ENOMEM: " + memlockMessage(p, request: newPages, counter: "locked_vm", current: state.processes[p].meta.lockedVMPages))
            default: break
            }
            modifyVMAFlags(p, start: start, end: end, set: .locked, &j)
            updateCounters(p, &j) { $0.lockedVMPages += newPages }
            let r = populateRange(p, start: start, end: end, &j)
            let text = "mlock(\(hex(start)), \(formatSize(end - start))): VM_LOCKED, locked_vm +\(formatSize(UInt64(newPages) << pageShift)); populate_vma_page_range faults the pages in (write faults for private memory); reclaim will not touch them"
            return faultOutcome(r, text: text)
        }
        modifyVMAFlags(p, start: start, end: end, clear: .locked, &j)
        updateCounters(p, &j) { $0.lockedVMPages -= newPages }
        return OpResult(text: "munlock(\(hex(start)), \(formatSize(end - start))): VM_LOCKED cleared, locked_vm −\(formatSize(UInt64(newPages) << pageShift)); the pages become reclaimable")
    }
}
