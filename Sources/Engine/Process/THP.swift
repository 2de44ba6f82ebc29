// Transparent huge pages: an order-9 folio mapped by one PMD (reference §7.3).
// Each huge PMD has a deposited PTE table (pgtable_trans_huge_deposit), ready for a split.

extension Engine {
    /// do_huge_pmd_anonymous_page. Returns .ok with nothing mapped when it falls back to 4 KiB pages.
    mutating func doHugePMDAnonymousPage(_ p: Int, vma v: Int, region: UInt64, write: Bool, _ j: inout StepJournal) -> FaultResult {
        anonVMAPrepare(p, vma: v, &j)
        if !write {
            // The huge zero folio, allocated once on first use (get_huge_zero_folio).
            if state.meta.hugeZeroPfn < 0 {
                guard let pfn = allocPages(order: pmdOrder, use: .zero, owner: 0, &j) else {
                    j.events.add(.thpFallback)
                    return .ok
                }
                updateMachine(&j) {
                    $0.hugeZeroPfn = Int32(pfn)
                    $0.hugeZeroRefcount = 1
                }
            }
            guard ensurePTETable(p, region: region, &j) else { return .oom }
            mmGetHugeZeroFolio(p, &j)
            setHugePMD(p, region: region, .page(pfn: Int(state.meta.hugeZeroPfn), writable: false, zero: true, huge: true), &j)
            j.events.add(.hugeZeroPageMapped)
            return .ok
        }
        let pid = state.processes[p].meta.pid
        // vma_alloc_folio(vma_thp_gfp_mask(vma), HPAGE_PMD_ORDER); failure means fall back.
        guard let head = allocTHP(owner: pid, directReclaim: thpDirectReclaim(state.processes[p].meta.vmas[v]), &j) else {
            j.events.add(.thpFallback)
            return .ok
        }
        guard ensurePTETable(p, region: region, &j) else {
            freePages(head, order: pmdOrder, &j)
            return .oom
        }
        state.phys.update(head..<(head + pagesPerPMD), &j) { _, f in
            f.mapcount = 1
            f.flags |= FrameFlag.anonExclusive
        }
        setHugePMD(p, region: region, .page(pfn: head, writable: state.processes[p].meta.vmas[v].flags.contains(.write), huge: true), &j)
        updateCounters(p, &j) { $0.rssPages += pagesPerPMD }
        j.events.add(.hugeAnonymousPage)
        return .ok
    }

    /// An order-9 anonymous folio. With `directReclaim` (__GFP_DIRECT_RECLAIM), when none is free,
    /// __alloc_pages_slowpath compacts, then does one round of direct reclaim and compacts again
    /// (a costly order does not loop further).
    mutating func allocTHP(owner: Int32, directReclaim: Bool, _ j: inout StepJournal) -> Int? {
        if let head = allocPages(order: pmdOrder, use: .anon, owner: owner, &j) { return head }
        guard directReclaim else { return nil }
        j.events.add(.thpDirectCompaction)
        compactZone(untilOrder9Free: true, &j)
        if let head = allocPages(order: pmdOrder, use: .anon, owner: owner, &j) { return head }
        _ = reclaim(pages: pagesPerPMD, &j)
        compactZone(untilOrder9Free: true, &j)
        return allocPages(order: pmdOrder, use: .anon, owner: owner, &j)
    }

    /// A touch of a page under a huge PMD; a write to a write-protected one is do_huge_pmd_wp_page.
    mutating func hugePMDFault(_ p: Int, vma v: Int, vpn: UInt64, write: Bool, _ j: inout StepJournal) -> FaultResult {
        let region = vpn >> 9
        // The caller found the huge PMD.
        guard let pmd = state.processes[p].pt.hugePMDs[region] else {
            j.bug("hugePMDFault: \(state.processes[p].meta.name) has no huge PMD at \(hex(region << 21))")
            return .ok
        }
        if !write || pmd.writable {
            j.events.add(.alreadyMapped)
            return .ok
        }
        let head = pmd.number
        if !pmd.isZero {
            let exclusive = state.phys.flags[head] & FrameFlag.anonExclusive != 0
            // folio_ref_count(folio) == 1: only this PMD references the folio.
            let soleUser = (0..<pagesPerPMD).allSatisfy { state.phys.refcount[head + $0] == 1 }
            if exclusive || soleUser {
                for i in 0..<pagesPerPMD where state.phys.flags[head + i] & FrameFlag.anonExclusive == 0 {
                    state.phys.update(head + i, &j) { $0.flags |= FrameFlag.anonExclusive }
                }
                setHugePMD(p, region: region, .page(pfn: head, writable: true, huge: true), &j)
                j.events.add(.hugeWPPageReuse)
                return .ok
            }
        }
        // Shared THP or the huge zero folio: split the PMD and let the PTE-level fault copy one 4 KiB page.
        splitHugePMD(p, region: region, &j)
        return handlePTEFault(p, vma: v, vpn: vpn, write: true, &j)
    }

    /// vma_thp_gfp_mask (mm/huge_memory.c:1283): whether the fault may reclaim and compact
    /// synchronously (__GFP_DIRECT_RECLAIM). `always` does for every VMA (with __GFP_NORETRY
    /// unless madvised: still one round); `madvise` and `defer+madvise` only for VM_HUGEPAGE
    /// VMAs; `defer` wakes kcompactd and fails at once, as `never` does here.
    func thpDirectReclaim(_ vma: VMA) -> Bool {
        switch state.config.thpDefrag {
        case .always: true
        case .madvise, .deferMadvise: vma.flags.contains(.hugepage)
        case .defer, .never: false
        }
    }

    /// mm_get_huge_zero_folio: the first huge zero PMD of an mm takes a reference on the folio for
    /// the whole mm (MMF_HUGE_ZERO_PAGE), not one per PMD (mm/huge_memory.c:281, and copy_huge_pmd
    /// for a child, :1703).
    mutating func mmGetHugeZeroFolio(_ p: Int, _ j: inout StepJournal) {
        guard !state.processes[p].meta.hugeZeroPage else { return }
        updateCounters(p, &j) { $0.hugeZeroPage = true }
        updateMachine(&j) { $0.hugeZeroRefcount += 1 }
    }

    /// mm_put_huge_zero_folio at exit (__mmput). The folio stays: only the shrinker frees it, and
    /// only under memory pressure once no mm holds it.
    mutating func mmPutHugeZeroFolio(_ p: Int, _ j: inout StepJournal) {
        guard state.processes[p].meta.hugeZeroPage else { return }
        updateCounters(p, &j) { $0.hugeZeroPage = false }
        updateMachine(&j) { $0.hugeZeroRefcount -= 1 }
    }

    /// __split_huge_pmd: the deposited table takes 512 PTEs mapping the subpages with the PMD's
    /// permissions (a huge zero PMD becomes 512 PTEs of the small zero page).
    mutating func splitHugePMD(_ p: Int, region: UInt64, _ j: inout StepJournal) {
        guard let pmd = state.processes[p].pt.hugePMDs[region] else { return }
        setHugePMD(p, region: region, nil, &j)
        let base = region << 9
        for i in 0..<pagesPerPMD {
            let pte: PTE = pmd.isZero
                ? .page(pfn: Int(state.meta.zeroPfn), writable: false, zero: true)
                : .page(pfn: pmd.number + i, writable: pmd.writable)
            setPTE(p, vpn: base + UInt64(i), pte, &j)
        }
        j.events.add(.splitHugePMD)
    }

    /// zap_huge_pmd: unmaps a whole huge PMD and frees its deposited table.
    mutating func zapHugePMD(_ p: Int, region: UInt64, _ j: inout StepJournal) {
        guard let pmd = state.processes[p].pt.hugePMDs[region] else { return }
        setHugePMD(p, region: region, nil, &j)
        if !pmd.isZero {
            updateCounters(p, &j) { $0.rssPages -= pagesPerPMD }
            state.phys.update(pmd.number..<(pmd.number + pagesPerPMD), &j) { _, f in f.mapcount -= 1 }
            for i in 0..<pagesPerPMD { putPage(pmd.number + i, &j) }
        }
        if let pfn = removePTETable(p, region: region, &j) { releaseTablePage(p, Int(pfn), &j) }
    }

    /// can_split_folio (mm/huge_memory.c:3392): every reference must be a mapping (or the page
    /// cache's), so a pinned folio is never split. The kernel refuses a FOLL_GET reference too; the
    /// model lets that split go ahead, because a GUP reference counts 1 on a page whatever the folio
    /// size, so the split leaves it right (reclaim then keeps the page in the swap cache).
    func canSplitFolio(_ head: Int) -> Bool {
        !(0..<(1 << state.phys.folioOrder(head))).contains { state.phys.pincount[head + $0] > 0 }
    }

    /// split_folio: a large folio that no PMD maps any more becomes small folios; unreferenced
    /// subpages are freed. False, and nothing changes, when the folio is pinned (canSplitFolio).
    @discardableResult
    mutating func splitFolio(_ head: Int, _ j: inout StepJournal) -> Bool {
        guard canSplitFolio(head) else { return false }
        let pages = 1 << state.phys.folioOrder(head)
        state.phys.update(head..<(head + pages), &j) { _, f in f.flags &= ~(FrameFlag.head | FrameFlag.tail | FrameFlag.orderMask) }
        for i in 0..<pages where state.phys.refcount[head + i] == 0 {
            freePages(head + i, order: 0, &j)
        }
        return true
    }
}
