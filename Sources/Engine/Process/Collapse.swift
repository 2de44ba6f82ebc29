// MADV_COLLAPSE: khugepaged's collapse, done now for the caller (mm/khugepaged.c, 6.12).

/// hpage_collapse_scan_pmd's verdict on one 2 MiB range (enum scan_result, mm/khugepaged.c).
enum CollapseScan: Equatable {
    case succeed, pmdMapped
    /// No PMD table above the range (mm_find_pmd fails): the loop goes on.
    case pmdNull
    /// The PMD table exists, the entry is none: no page was ever touched. Not on 6.12's list of
    /// results to go on from, so the call stops with EINVAL.
    case pmdNone
    /// No PTE is writable (only zero pages, or pages shared read-only since fork).
    case pageRO
    /// A page has references beyond its mappings (a pin, a GUP reference): is_refcount_suitable.
    case pageCount
    case allocFail

    var name: String {
        switch self {
        case .succeed: "SCAN_SUCCEED"
        case .pmdMapped: "SCAN_PMD_MAPPED"
        case .pmdNull: "SCAN_PMD_NULL"
        case .pmdNone: "SCAN_PMD_NONE (never touched)"
        case .pageRO: "SCAN_PAGE_RO"
        case .pageCount: "SCAN_PAGE_COUNT"
        case .allocFail: "SCAN_ALLOC_HUGE_PAGE_FAIL"
        }
    }

    /// madvise_collapse_errno (mm/khugepaged.c:2698).
    var errno: String {
        switch self {
        case .allocFail: "ENOMEM"
        case .pageCount: "EAGAIN"
        default: "EINVAL"
        }
    }

    /// madvise_collapse goes on to the next range after these (mm/khugepaged.c:2791).
    var goesOn: Bool { self == .pmdNull || self == .pageRO || self == .pageCount }
}

extension Engine {
    /// madvise_collapse (mm/khugepaged.c:2728) over every VMA of [start, end): each whole 2 MiB
    /// aligned range is scanned (hpage_collapse_scan_pmd, :1257) and collapsed (collapse_huge_page,
    /// :1094). Unlike khugepaged it ignores the sysfs `enabled` setting and the max_ptes_* limits
    /// (is_khugepaged is false), allocates with GFP_TRANSHUGE (direct compaction and reclaim), and
    /// swaps pages in. VM_NOHUGEPAGE and VM_PFNMAP VMAs are EINVAL (thp_vma_allowable_order).
    mutating func madviseCollapse(_ p: Int, start: UInt64, end: UInt64, _ j: inout StepJournal) -> OpResult {
        touchProcess(p, &j)
        var collapsed = 0, already = 0, ranges = 0
        var lastFail: CollapseScan?
        var notes: [String] = []
        var va = start
        while va < end {
            guard let v = state.processes[p].meta.vmaIndex(containing: va) ?? state.processes[p].meta.vmas.firstIndex(where: { $0.start >= va && $0.start < end }) else { break }
            let vma = state.processes[p].meta.vmas[v]
            let lo = max(va, vma.start), hi = min(end, vma.end)
            va = hi
            if vma.flags.contains(.nohugepage) || vma.kind == .device || vma.kind == .image {
                let why = vma.flags.contains(.nohugepage) ? "VM_NOHUGEPAGE" : vma.kind == .device ? "a VM_PFNMAP mapping (VM_NO_KHUGEPAGED)" : "the program image, a file mapping this model gives no pages"
                return .fail(.errno("EINVAL"), "MADV_COLLAPSE fails with EINVAL: \(hex(vma.start))-\(hex(vma.end)) is \(why) (thp_vma_allowable_order)")
            }
            if vma.flags.contains(.shared) || vma.kind == .file {
                return .fail(.errno("EINVAL"), "MADV_COLLAPSE of a file or shared mapping collapses page-cache pages (hpage_collapse_scan_file), which this model does not do: its page cache has no THPs")
            }
            // thp_vma_suitable_order: some 2 MiB aligned range lies wholly inside the VMA.
            if alignUp(vma.start, pmdSize) + pmdSize > vma.end {
                return .fail(.errno("EINVAL"), "MADV_COLLAPSE fails with EINVAL: \(hex(vma.start))-\(hex(vma.end)) holds no whole 2 MiB aligned range (thp_vma_suitable_order)")
            }
            var addr = alignUp(lo, pmdSize)
            while addr + pmdSize <= hi {
                ranges += 1
                let r = collapseRange(p, vma: v, region: addr >> 21, &j)
                switch r {
                case .succeed: collapsed += 1
                case .pmdMapped: already += 1
                default:
                    lastFail = r
                    notes.append("\(hex(addr)): \(r.name)")
                }
                if !r.goesOn && r != .succeed && r != .pmdMapped {
                    return .fail(.errno(r.errno), collapseText(collapsed, already, ranges, notes) + "; \(r.name) stops the call: \(r.errno) (madvise_collapse_errno)")
                }
                addr += pmdSize
            }
        }
        let text = collapseText(collapsed, already, ranges, notes)
        if let fail = lastFail {
            return .fail(.errno(fail.errno), text + "; not every range collapsed, so \(fail.errno) for the last failure, \(fail.name) (madvise_collapse_errno)")
        }
        return OpResult(text: text)
    }

    private func collapseText(_ collapsed: Int, _ already: Int, _ ranges: Int, _ notes: [String]) -> String {
        if ranges == 0 { return "MADV_COLLAPSE: no whole 2 MiB aligned range in it, nothing to collapse" }
        var t = "MADV_COLLAPSE over \(plural(ranges, "whole 2 MiB range")): \(collapsed) collapsed into a THP (collapse_huge_page)"
        if already > 0 { t += ", \(already) already a THP (SCAN_PMD_MAPPED)" }
        if !notes.isEmpty { t += "; " + notes.prefix(4).joined(separator: ", ") + (notes.count > 4 ? " and \(notes.count - 4) more" : "") }
        return t
    }

    /// hpage_collapse_scan_pmd, then collapse_huge_page, for one 2 MiB region of VMA v.
    private mutating func collapseRange(_ p: Int, vma v: Int, region: UInt64, _ j: inout StepJournal) -> CollapseScan {
        if state.processes[p].pt.hugePMDs[region] != nil { return .pmdMapped }
        guard let table = state.processes[p].pt.tables[region] else {
            // mm_find_pmd: no PMD table above the range is SCAN_PMD_NULL; a none entry in one is SCAN_PMD_NONE.
            return state.processes[p].pt.upper[region >> 9] == nil ? .pmdNull : .pmdNone
        }
        let zero = Int(state.meta.zeroPfn)
        var writable = false
        let cached = Set(state.swapCache.values.map(Int.init))
        for i in 0..<pagesPerPMD {
            let e = table.entries[i]
            if e.isNone || e.isSwap || e.isZero { continue }
            if e.writable { writable = true }
            let pfn = e.number
            guard pfn != zero else { continue }
            // is_refcount_suitable: refcount == mapcount (+1 in the swap cache).
            let expected = state.phys.mapcount[pfn] + (cached.contains(pfn) ? 1 : 0)
            if state.phys.refcount[pfn] != expected { return .pageCount }
        }
        if !writable { return .pageRO }
        // collapse_huge_page: alloc_charge_folio with GFP_TRANSHUGE (direct compaction and reclaim).
        guard let head = allocTHP(owner: state.processes[p].meta.pid, directReclaim: true, &j) else { return .allocFail }
        guard state.processes[p].meta.alive else {
            // Direct reclaim ended in the OOM killer choosing this process.
            freePages(head, order: pmdOrder, &j)
            return .allocFail
        }
        // __collapse_huge_page_swapin: swap entries are read back first.
        for i in 0..<pagesPerPMD where state.processes[p].pt.tables[region]?.entries[i].isSwap == true {
            guard doSwapPage(p, vma: v, vpn: region << 9 | UInt64(i), write: false, &j) == .ok else {
                freePages(head, order: pmdOrder, &j)
                return .allocFail
            }
        }
        // __collapse_huge_page_copy: each subpage gets the old page's data, or zeroes for a none or
        // zero PTE; the old pages lose this mapping and their reference.
        guard state.processes[p].meta.alive, state.processes[p].pt.tables[region] != nil else {
            freePages(head, order: pmdOrder, &j)
            return .allocFail
        }
        var added = 0
        for i in 0..<pagesPerPMD {
            let vpn = region << 9 | UInt64(i)
            let e = state.processes[p].pt.tables[region]?.entries[i] ?? .none
            if e.present && !e.isZero {
                state.phys.setData(head + i, state.phys.dataTag(e.number), &j)
                setPTE(p, vpn: vpn, .none, &j)
                state.phys.update(e.number, &j) { $0.mapcount -= 1 }
                putPage(e.number, &j)
            } else {
                if e.present { setPTE(p, vpn: vpn, .none, &j) }
                added += 1
            }
        }
        state.phys.update(head..<(head + pagesPerPMD), &j) { _, f in
            f.mapcount = 1
            f.flags |= FrameFlag.anonExclusive
        }
        // The emptied PTE table becomes the THP's deposited table (pgtable_trans_huge_deposit).
        setHugePMD(p, region: region, .page(pfn: head, writable: state.processes[p].meta.vmas[v].flags.contains(.write), huge: true), &j)
        if added > 0 { updateCounters(p, &j) { $0.rssPages += added } }
        j.events.add(.collapseHugePage)
        return .succeed
    }
}
