// `PROC pin` and `PROC unpin`: pin_user_pages as RDMA (ib_umem_get) and io_uring buffer
// registration use it, charged to pinned_vm when long-term; get_user_pages with `get`.

extension Engine {
    /// Why a memlock charge is refused: nil when it fits.
    /// `canDoMlock`: the path refuses a zero limit up front with EPERM (mlock, ib_umem_get); VFIO does not.
    func memlockRefusal(_ p: Int, pages: Int, current: Int, counter: String, canDoMlock: Bool = true) -> OpResult? {
        let m = state.processes[p].meta
        if m.capIPCLock { return nil }
        if canDoMlock && m.memlockLimit == 0 {
            return .fail(.errno("EPERM"), "refused with EPERM: RLIMIT_MEMLOCK is 0 and there is no CAP_IPC_LOCK (can_do_mlock)")
        }
        if UInt64(current + pages) << pageShift > m.memlockLimit {
            return .fail(.errno("ENOMEM"), "refused with ENOMEM: RLIMIT_MEMLOCK is \(formatSize(m.memlockLimit)), \(counter) is already \(formatSize(UInt64(current) << pageShift)) and the request adds \(formatSize(UInt64(pages) << pageShift))")
        }
        return nil
    }

    mutating func doPin(_ p: Int, buffer b: Buffer, range: BufferRange?, flags: FollFlags, _ j: inout StepJournal) -> OpResult {
        let start = b.start + (range?.offset ?? 0)
        let size = range?.size ?? (b.size - min(b.size, range?.offset ?? 0))
        let first = start & ~(pageSize - 1), end = alignUp(start + size, pageSize)
        let pages = Int((end - first) >> pageShift)
        let call = "\(flags.get ? "get_user_pages" : "pin_user_pages")(\(flags.names))"
        // __get_user_pages: "if (!nr_pages) return 0;" (mm/gup.c:1436).
        guard size > 0 else { return OpResult(text: "\(call) of 0 bytes of \(b.name) asks for 0 pages and returns 0: nothing is pinned") }
        if b.kind == .ump || b.kind == .dmabuf {
            return .fail(.errno("EFAULT"), "\(call) of \(b.name) fails with EFAULT: it is a VM_PFNMAP mapping of kernel memory, which GUP refuses (check_vma_flags)")
        }
        let charge = flags.longterm && !flags.get ? pages : 0
        if charge > 0, let refusal = memlockRefusal(p, pages: charge, current: state.processes[p].meta.pinnedVMPages, counter: "pinned_vm") {
            return .fail(refusal.outcome, "\(call) of \(pages) pages " + refusal.text)
        }
        let r = getUserPages(p, start: first, end: end, flags: flags, &j)
        switch r.outcome {
        case .ok: break
        case .sigsegv(let reason), .sigbus(let reason):
            return .fail(.errno("EFAULT"), "\(call) fails with EFAULT: \(reason)")
        case .oom:
            return .fail(.errno("ENOMEM"), r.enomem(call))
        }
        pinAppend(p, PinRecord(buffer: b.name, pfns: r.pfns, get: flags.get, longterm: flags.longterm, chargedPages: charge), &j)
        updateCounters(p, &j) { $0.pinnedVMPages += charge }
        let pinned = r.pfns.count - r.zeroPages
        var text = "\(call) on \(plural(pages, "page")) of \(b.name): "
        text += flags.get ? "refcount +1 on each" : "\(pinned) pinned (refcount +\(gupPinCountingBias) on a small page, a pin count on each)"
        if r.zeroPages > 0 { text += "; \(pluralIsAre(r.zeroPages, "zero page")) returned but never pinned" }
        if r.hugeZeroPinned > 0 {
            text += "; \(r.hugeZeroPinned) of them \(r.hugeZeroPinned == 1 ? "is a page" : "are pages") of the huge zero folio, which is pinned like any large folio (is_zero_folio covers the 4 KiB zero page only)"
        }
        if r.unshared > 0 { text += "; \(plural(r.unshared, "shared page")) unshared first (FAULT_FLAG_UNSHARE) so the pin is reliable" }
        if r.migrated > 0 { text += "; \(plural(r.migrated, "page")) migrated out of CMA first (check_and_migrate_movable_pages)" }
        if charge > 0 { text += "; pinned_vm +\(formatSize(UInt64(charge) << pageShift)) (as ib_umem_get and io_uring charge it)" }
        if !flags.get { text += "; MMF_HAS_PINNED is set for this mm" }
        return OpResult(text: text)
    }

    mutating func doUnpin(_ p: Int, buffer name: String, _ j: inout StepJournal) -> OpResult {
        guard state.processes[p].meta.pins.contains(where: { $0.buffer == name && !$0.uring && $0.pipe == nil }) else {
            let uring = state.processes[p].meta.pins.contains { $0.buffer == name && $0.uring }
            let pipe = state.processes[p].meta.pins.first { $0.buffer == name && $0.pipe != nil }?.pipe
            return .fail(.errno("EINVAL"), "\(state.processes[p].meta.name) holds no pin on \(name)"
                         + (uring ? " (its io_uring registration goes with uring-unregister)" : "")
                         + (pipe.map { " (pipe \($0) holds references to it: pipe-read or pipe-close releases them)" } ?? ""))
        }
        let records = pinRemoveAll(p, buffer: name, &j)
        var pages = 0, freed = 0, charged = 0
        for r in records {
            charged += r.chargedPages
            for pfn in r.pfns {
                pages += 1
                let wasOnlyRef = state.phys.refcount[Int(pfn)] == (r.get ? 1 : gupPinCountingBias) && Int32(pfn) != state.meta.zeroPfn
                release(Int(pfn), get: r.get, &j)
                if wasOnlyRef { freed += 1 }
            }
        }
        updateCounters(p, &j) { $0.pinnedVMPages -= charged }
        var text = "unpin_user_pages: \(plural(pages, "page")) of \(name) released"
        if charged > 0 { text += "; pinned_vm −\(formatSize(UInt64(charged) << pageShift))" }
        if freed > 0 { text += "; \(plural(freed, "frame")) that only the pin kept alive go back to the buddy allocator" }
        return OpResult(text: text)
    }

    /// io_uring_register(IORING_REGISTER_BUFFERS): io_sqe_buffer_register pins the buffer
    /// FOLL_WRITE|FOLL_LONGTERM and io_account_mem charges it. Unless the ring's creator has
    /// CAP_IPC_LOCK, the *user's* locked_vm is checked against RLIMIT_MEMLOCK and raised
    /// (__io_account_mem, io_uring/rsrc.c:44; ctx->user, io_uring/io_uring.c:3683): two processes
    /// of one user share that budget. pinned_vm is raised too, with no check (rsrc.c:73).
    /// A range registers that part of the buffer (one iovec); each registration stands for a ring of its own.
    mutating func doUringRegister(_ p: Int, buffer b: Buffer, range: BufferRange? = nil, _ j: inout StepJournal) -> OpResult {
        let m = state.processes[p].meta
        let call = "io_uring_register(IORING_REGISTER_BUFFERS) of \(b.name)"
        if b.kind == .ump || b.kind == .dmabuf {
            return .fail(.errno("EFAULT"), "\(call) fails with EFAULT: a VM_PFNMAP mapping of kernel memory cannot be pinned")
        }
        let start = b.start + (range?.offset ?? 0)
        let size = range?.size ?? (b.size - min(b.size, range?.offset ?? 0))
        // io_buffer_validate (io_uring/rsrc.c:100, :104): an empty iovec, or one over 1 GiB, is EFAULT.
        guard size > 0 else { return .fail(.errno("EFAULT"), "\(call) fails with EFAULT: an iovec of 0 bytes is refused (io_buffer_validate)") }
        guard size <= 1 << 30 else { return .fail(.errno("EFAULT"), "\(call) fails with EFAULT: \(formatSize(size)) is over the 1 GiB a registered buffer may have (io_buffer_validate)") }
        let first = start & ~(pageSize - 1), end = alignUp(start + size, pageSize)
        let pages = Int((end - first) >> pageShift)
        if m.pins.contains(where: { $0.uring && $0.buffer == b.name && $0.start == first && $0.pfns.count == pages }) {
            return .fail(.errno("EBUSY"), "\(call) fails with EBUSY: that range is registered already (one table of fixed buffers per ring)")
        }
        let userLocked = state.meta.userLockedVM[m.user] ?? 0
        let charge = m.capIPCLock ? 0 : pages
        if charge > 0, UInt64(userLocked + charge) << pageShift > m.memlockLimit {
            return .fail(.errno("ENOMEM"), "\(call) fails with ENOMEM (__io_account_mem): user \(m.user)'s locked_vm is \(formatSize(UInt64(userLocked) << pageShift)), across all its processes, and \(plural(pages, "page")) more would pass RLIMIT_MEMLOCK \(formatSize(m.memlockLimit))")
        }
        let flags = FollFlags(write: true, longterm: true, get: false)
        let r = getUserPages(p, start: first, end: end, flags: flags, &j)
        switch r.outcome {
        case .ok: break
        case .sigsegv(let reason), .sigbus(let reason): return .fail(.errno("EFAULT"), "\(call) fails with EFAULT: \(reason)")
        case .oom: return .fail(.errno("ENOMEM"), r.enomem(call))
        }
        pinAppend(p, PinRecord(buffer: b.name, pfns: r.pfns, get: false, longterm: true, chargedPages: pages, uring: true, userCharged: charge, start: first), &j)
        updateCounters(p, &j) { $0.pinnedVMPages += pages }
        if charge > 0 { updateMachine(&j) { $0.userLockedVM[m.user, default: 0] += charge } }
        var text = "\(call): pin_user_pages(FOLL_WRITE|FOLL_LONGTERM) pins \(plural(pages, "page")); pinned_vm +\(formatSize(UInt64(pages) << pageShift)) (not checked)"
        text += charge > 0 ? "; user \(m.user)'s locked_vm +\(formatSize(UInt64(charge) << pageShift)), now \(formatSize(UInt64(userLocked + charge) << pageShift)) of RLIMIT_MEMLOCK \(formatSize(m.memlockLimit)) (__io_account_mem)"
            : "; CAP_IPC_LOCK: no user charge"
        if r.unshared > 0 { text += "; \(plural(r.unshared, "shared page")) unshared first" }
        if r.migrated > 0 { text += "; \(plural(r.migrated, "page")) migrated out of CMA first" }
        return OpResult(text: text)
    }

    /// IORING_UNREGISTER_BUFFERS: unpin and give back both charges (io_unaccount_mem, rsrc.c:64).
    mutating func doUringUnregister(_ p: Int, buffer name: String, _ j: inout StepJournal) -> OpResult {
        let m = state.processes[p].meta
        guard let i = m.pins.firstIndex(where: { $0.uring && $0.buffer == name }) else {
            return .fail(.errno("ENXIO"), "io_uring_register(IORING_UNREGISTER_BUFFERS) fails with ENXIO: \(name) is not a registered buffer")
        }
        let r = m.pins[i]
        pinReset(p, m.pins.enumerated().filter { $0.offset != i }.map(\.element), &j)
        for pfn in r.pfns { release(Int(pfn), get: false, &j) }
        updateCounters(p, &j) { $0.pinnedVMPages -= r.chargedPages }
        if r.userCharged > 0 { updateMachine(&j) { $0.userLockedVM[m.user, default: 0] -= r.userCharged } }
        return OpResult(text: "io_uring_register(IORING_UNREGISTER_BUFFERS): \(plural(r.pfns.count, "page")) of \(name) unpinned; pinned_vm −\(formatSize(UInt64(r.chargedPages) << pageShift))" + (r.userCharged > 0 ? ", user \(m.user)'s locked_vm −\(formatSize(UInt64(r.userCharged) << pageShift))" : ""))
    }
}

// MARK: - Pipes: vmsplice, and reading or closing what they hold

/// PIPE_DEF_BUFFERS (include/linux/pipe_fs_i.h:5): a pipe holds 16 buffers, one page each from vmsplice.
let pipeDefBuffers = 16

extension Engine {
    /// Pipe buffers `pipe` holds now.
    func pipeBuffers(_ p: Int, _ pipe: String) -> Int {
        state.processes[p].meta.pins.reduce(0) { $0 + ($1.pipe == pipe ? $1.pfns.count : 0) }
    }

    /// vmsplice(2) of user memory into a pipe (vmsplice_to_pipe, fs/splice.c:1542). iter_to_pipe
    /// (fs/splice.c:1451) takes the pages 16 at a time with iov_iter_get_pages2, which calls
    /// get_user_pages_fast without FOLL_WRITE (lib/iov_iter.c:1177): plain FOLL_GET references,
    /// read-only, and nothing is unshared (gup_must_unshare is for FOLL_PIN only). Each page becomes
    /// one pipe buffer. When the pipe fills, add_to_pipe fails and the rest of that batch is put back.
    /// A pipe full from the start would block in wait_for_space (fs/splice.c:1267): here it is EAGAIN,
    /// as with SPLICE_F_NONBLOCK, since nothing else runs to drain it.
    mutating func doVmsplice(_ p: Int, buffer b: Buffer, range: BufferRange?, pipe: String, _ j: inout StepJournal) -> OpResult {
        let call = "vmsplice(2) of \(b.name) into pipe \(pipe)"
        if b.kind == .ump || b.kind == .dmabuf {
            return .fail(.errno("EFAULT"), "\(call) fails with EFAULT: get_user_pages_fast refuses a VM_PFNMAP mapping of kernel memory")
        }
        let start = b.start + (range?.offset ?? 0)
        let size = range?.size ?? (b.size - min(b.size, range?.offset ?? 0))
        guard size > 0 else { return OpResult(text: "\(call) of 0 bytes splices nothing and returns 0") }
        let first = start & ~(pageSize - 1), end = alignUp(start + size, pageSize)
        let pages = Int((end - first) >> pageShift)
        let room = pipeDefBuffers - pipeBuffers(p, pipe)
        guard room > 0 else {
            return .fail(.errno("EAGAIN"), "\(call) would block: the pipe holds \(pipeDefBuffers) buffers already (PIPE_DEF_BUFFERS) and nobody reads it; with SPLICE_F_NONBLOCK it is EAGAIN (wait_for_space)")
        }
        // The batches GUP takes before add_to_pipe fails: every full one, and the one it fails in.
        let taken = min(pages, (room / 16) * 16 + 16)
        let kept = min(pages, room)
        let r = getUserPages(p, start: first, end: first + UInt64(taken) << pageShift, flags: FollFlags(get: true), &j)
        switch r.outcome {
        case .ok: break
        case .sigsegv(let reason), .sigbus(let reason): return .fail(.errno("EFAULT"), "\(call) fails with EFAULT: \(reason)")
        case .oom: return .fail(.errno("ENOMEM"), "\(call) fails with ENOMEM: out of memory while faulting in the pages")
        }
        let held = Array(r.pfns.prefix(kept))
        for pfn in r.pfns.dropFirst(kept) { release(Int(pfn), get: true, &j) }
        pinAppend(p, PinRecord(buffer: b.name, pfns: held, get: true, longterm: false, chargedPages: 0, pipe: pipe), &j)
        var text = "\(call): get_user_pages_fast (FOLL_GET, read-only) takes a reference on \(plural(held.count, "page")); "
        text += "pipe \(pipe) now holds \(pipeDefBuffers - room + held.count) of its \(pipeDefBuffers) buffers. "
        text += "A plain reference unshares nothing: a page shared since fork stays shared, and only its refcount says the pipe holds it"
        if r.zeroPages > 0 { text += "; \(pluralIsAre(r.zeroPages, "zero page")) spliced as they are" }
        if kept < pages {
            text += "; the pipe filled after \(plural(kept, "page")), so vmsplice returns \(formatSize(UInt64(kept) << pageShift))"
            if taken > kept { text += " and puts back the other \(taken - kept) its last batch took (add_to_pipe fails)" }
        }
        return OpResult(text: text)
    }

    /// read(2) of everything a pipe holds (pipe_read copies each buffer out, then
    /// page_cache_pipe_buf_release puts the page), or close(2) of the pipe with it unread
    /// (free_pipe_info releases each buffer). The data is what the frames hold now, not when spliced.
    mutating func doPipeDrain(_ p: Int, pipe: String, read: Bool, _ j: inout StepJournal) -> OpResult {
        let m = state.processes[p].meta
        let records = m.pins.filter { $0.pipe == pipe }
        guard !records.isEmpty else {
            let call = read ? "read(2) from pipe \(pipe)" : "close(2) of pipe \(pipe)"
            return .fail(.errno(read ? "EAGAIN" : "EBADF"), "\(call): \(m.name) has no pipe \(pipe) holding pages (vmsplice into it first)" + (read ? "; a read of an empty pipe would block (EAGAIN with O_NONBLOCK)" : ""))
        }
        let pfns = records.flatMap(\.pfns).map(Int.init)
        var text: String
        if read {
            text = "read(2) from pipe \(pipe): pipe_read copies out \(plural(pfns.count, "page")): " + dataSummary(pfns)
            // Private (anonymous) data of another process, written after the two parted at fork,
            // was never in this process's address space.
            var leaked: [DataTag] = []
            for pfn in pfns where state.phys.frameUse(pfn) == .anon {
                let t = state.phys.dataTag(pfn)
                guard case let .process(pid) = t.writer, pid != m.pid,
                      let w = state.processes.first(where: { $0.meta.pid == pid }),
                      t.step > max(m.createdStep, w.meta.createdStep), !leaked.contains(t) else { continue }
                leaked.append(t)
            }
            if let t = leaked.first, let name = state.dataName(t) {
                let writer = name.split(separator: "@").first.map(String.init) ?? name
                j.hazards.append(Hazard(kind: .dataLeak, text: "\(m.name) reads data \(name) through the pipe: \(writer) wrote it at step \(t.step), after \(writer) and \(m.name) parted at fork, into a page \(m.name) had spliced. It never was in \(m.name)'s address space (CVE-2020-29374: COW reused a page a GUP reference still held)"))
            }
            text += "; page_cache_pipe_buf_release puts each page"
        } else {
            text = "close(2) of pipe \(pipe): free_pipe_info releases \(plural(pfns.count, "buffer")) unread, putting each page"
        }
        pinReset(p, m.pins.filter { $0.pipe != pipe }, &j)
        var freed = 0
        for pfn in pfns {
            if state.phys.refcount[pfn] == 1 && pfn != Int(state.meta.zeroPfn) { freed += 1 }
            release(pfn, get: true, &j)
        }
        if freed > 0 { text += "; \(freed == 1 ? "1 frame only the pipe kept alive goes" : "\(freed) frames only the pipe kept alive go") back to the buddy allocator" }
        return OpResult(text: text)
    }
}
