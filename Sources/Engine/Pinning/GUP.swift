// get_user_pages and pin_user_pages (reference §2): fault the range in as GUP does, unshare what a
// reliable pin needs, migrate out of CMA for FOLL_LONGTERM, then take the references.

/// GUP_PIN_COUNTING_BIAS: a FOLL_PIN adds this much to a small page's refcount.
let gupPinCountingBias: Int32 = 1024

struct GUPResult {
    var pfns: [Int32] = []
    /// Pages of the 4 KiB zero page: returned, never pinned.
    var zeroPages = 0
    /// Pages of the huge zero folio: pinned (refcount +1 and a pin count, as a large folio).
    var hugeZeroPinned = 0
    var unshared = 0
    var migrated = 0
    /// A page in CMA that a long-term pin had to move, but another pin holds (so migrate_pages fails).
    var unmovable: Int?
    var outcome: FaultResult = .ok

    /// The ENOMEM sentence for a call that failed this way.
    func enomem(_ call: String) -> String {
        if let pfn = unmovable {
            return "\(call) fails with ENOMEM: pfn \(pfn) is in CMA and a long-term pin must move it out (check_and_migrate_movable_pages), but another pin holds it, so migrate_pages cannot"
        }
        return "\(call) fails with ENOMEM: out of memory while faulting in or migrating the pages"
    }
}

extension Engine {
    /// __get_user_pages over [start, end): each page faulted in as the flags require, then grabbed.
    mutating func getUserPages(_ p: Int, start: UInt64, end: UInt64, flags: FollFlags, _ j: inout StepJournal) -> GUPResult {
        var result = GUPResult()
        let first = start >> pageShift, last = (end + pageSize - 1) >> pageShift
        // check_vma_flags → writable_file_mapping_allowed (mm/gup.c:1252, :1294): a long-term
        // writable pin of a shared mapping of a file that needs dirty tracking (not shmem) is refused.
        if flags.write && flags.longterm && !flags.get {
            for vma in state.processes[p].meta.vmas where vma.start < last << pageShift && vma.end > first << pageShift
                && vma.kind == .file && vma.flags.contains(.shared) {
                if let f = state.fileIndex(object: vma.shmem), !state.files[f].shmem {
                    result.outcome = .sigsegv(reason: "\(state.files[f].name) is mapped shared and needs dirty tracking, so a long-term writable pin is refused (check_vma_flags: writable_file_mapping_allowed)")
                    return result
                }
            }
        }
        // faultin_page: FOLL_WRITE takes write faults (breaking COW, replacing the zero page).
        let touch = touchRange(p, start: first << pageShift, end: last << pageShift, write: flags.write, &j)
        if touch != .ok {
            result.outcome = touch
            return result
        }
        for vpn in first..<last {
            var e = state.processes[p].pt.entry(vpn: vpn)
            if !e.present { continue }
            if !flags.get && mustUnshare(p, vpn: vpn, e, longterm: flags.longterm) {
                // FAULT_FLAG_UNSHARE: the process gets its own exclusive copy, PTE still read-only.
                guard unshare(p, vpn: vpn, &j) else {
                    releaseAll(&result, get: flags.get, &j)
                    return result
                }
                result.unshared += 1
                e = state.processes[p].pt.entry(vpn: vpn)
            }
            var pfn = e.number
            if flags.longterm && !flags.get && state.phys.isCMA(pfn) && !e.isZero {
                // check_and_migrate_movable_pages: a long-term pin must not stay in CMA. A folio
                // another pin holds cannot move (migrate_pages fails on its references): ENOMEM.
                if folioMaybePinned(pfn) {
                    releaseAll(&result, get: flags.get, &j)
                    result.unmovable = pfn
                    return result
                }
                if state.processes[p].pt.hugePMDs[vpn >> 9] != nil { splitHugePMD(p, region: vpn >> 9, &j) }
                if state.phys.isLarge(pfn) { splitFolio(state.phys.folioHead(pfn), &j) }
                guard let moved = migratePage(pfn, avoidCMA: true, &j) else {
                    releaseAll(&result, get: flags.get, &j)
                    return result
                }
                pfn = moved
                result.migrated += 1
            }
            if e.isZero && !flags.get && Int32(pfn) == state.meta.zeroPfn {
                // try_grab_folio: "Don't take a pin on the zero page". is_zero_folio is the 4 KiB
                // zero page only (include/linux/mm.h:1986): the huge zero folio is pinned like any
                // large folio.
                result.zeroPages += 1
                result.pfns.append(Int32(pfn))
                continue
            }
            if e.isZero && !flags.get { result.hugeZeroPinned += 1 }
            grab(pfn, get: flags.get, &j)
            result.pfns.append(Int32(pfn))
        }
        j.events.add(.pinned(flags), result.pfns.count - result.zeroPages)
        if !flags.get { updateCounters(p, &j) { $0.hasPinned = true } }
        return result
    }

    /// A GUP call that fails part-way gives back what it took (and reports ENOMEM).
    private mutating func releaseAll(_ result: inout GUPResult, get: Bool, _ j: inout StepJournal) {
        for pfn in result.pfns { release(Int(pfn), get: get, &j) }
        result.pfns = []
        result.outcome = .oom
    }

    /// gup_must_unshare: a read-only FOLL_PIN of a shared anonymous page, or a long-term one of the
    /// zero page in a private mapping, needs the process's own exclusive page (not before 5.19).
    func mustUnshare(_ p: Int, vpn: UInt64, _ e: PTE, longterm: Bool) -> Bool {
        guard state.config.kernel == .v6_12, !e.writable else { return false }
        if e.isZero { return longterm }
        let pfn = e.number
        let use = state.phys.frameUse(pfn)
        if use == .file || use == .shmem {
            // Not anonymous: only a long-term R/O pin of a private (COW) mapping needs its own copy
            // (gup_must_unshare, mm/internal.h:1373); a short-term one cannot see later changes anyway.
            guard longterm, let v = state.processes[p].meta.vmaIndex(containing: vpn << pageShift) else { return false }
            return !state.processes[p].meta.vmas[v].flags.contains(.shared)
        }
        guard use == .anon else { return false }
        return state.phys.flags[pfn] & FrameFlag.anonExclusive == 0
    }

    /// do_wp_page with FAULT_FLAG_UNSHARE: copy (or reuse) like a write fault, but keep the PTE read-only.
    mutating func unshare(_ p: Int, vpn: UInt64, _ j: inout StepJournal) -> Bool {
        let va = vpn << pageShift
        guard let v = state.processes[p].meta.vmaIndex(containing: va) else { return false }
        if state.processes[p].pt.hugePMDs[vpn >> 9] != nil { splitHugePMD(p, region: vpn >> 9, &j) }
        guard state.processes[p].meta.vmas[v].flags.contains(.write) else { return false }
        guard doWPPage(p, vma: v, vpn: vpn, &j) == .ok else { return false }
        let now = state.processes[p].pt.entry(vpn: vpn)
        setPTE(p, vpn: vpn, .page(pfn: now.number, writable: false), &j)
        j.events.add(.unshare)
        return true
    }

    /// try_grab_folio: FOLL_GET +1; FOLL_PIN +1024 on a small page, +1 and a pin count on a large folio.
    mutating func grab(_ pfn: Int, get: Bool, _ j: inout StepJournal) {
        let bias = isLargeFolio(pfn) ? 1 : gupPinCountingBias
        state.phys.update(pfn, &j) { f in
            if get {
                f.refcount += 1
            } else {
                f.refcount += bias
                f.pincount += 1
            }
        }
    }

    /// unpin_user_page / put_page: the inverse of grab. The frame is freed when nothing else holds it.
    mutating func release(_ pfn: Int, get: Bool, _ j: inout StepJournal) {
        if get {
            putPage(pfn, &j)
            return
        }
        if Int32(pfn) == state.meta.zeroPfn { return }
        let bias = isLargeFolio(pfn) ? 1 : gupPinCountingBias
        state.phys.update(pfn, &j) { f in
            f.pincount -= 1
            // Drop the bias but one reference, which putPage takes (and frees the frame if it was the last).
            f.refcount -= bias - 1
        }
        putPage(pfn, &j)
    }

    /// A page of a large folio: a THP's, or the huge zero folio's.
    func isLargeFolio(_ pfn: Int) -> Bool {
        let hz = Int(state.meta.hugeZeroPfn)
        return state.phys.isLarge(pfn) || (hz >= 0 && pfn >= hz && pfn < hz + pagesPerPMD)
    }

    /// Page indices (within a VA range starting at `va`) whose frame the process no longer maps.
    func divergentPages(_ p: Int, va: UInt64, pfns: [Int32]) -> [Int] {
        guard state.processes[p].meta.alive else { return Array(pfns.indices) }
        var out: [Int] = []
        for (i, pfn) in pfns.enumerated() where pfn != state.meta.zeroPfn {
            let e = state.processes[p].pt.entry(vpn: (va >> pageShift) + UInt64(i))
            if !e.present || e.number != Int(pfn) { out.append(i) }
        }
        return out
    }
}
