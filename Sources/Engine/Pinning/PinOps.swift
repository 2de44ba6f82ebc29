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
        let first = start & ~(pageSize - 1), end = alignUp(start + max(size, 1), pageSize)
        let pages = Int((end - first) >> pageShift)
        let call = "\(flags.get ? "get_user_pages" : "pin_user_pages")(\(flags.names))"
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
        case .sigsegv(let reason):
            return .fail(.errno("EFAULT"), "\(call) fails with EFAULT: \(reason)")
        case .oom:
            return .fail(.errno("ENOMEM"), "\(call) fails with ENOMEM: out of memory while faulting in or migrating the pages")
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
        guard state.processes[p].meta.pins.contains(where: { $0.buffer == name }) else {
            return .fail(.errno("EINVAL"), "\(state.processes[p].meta.name) holds no pin on \(name)")
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
}
