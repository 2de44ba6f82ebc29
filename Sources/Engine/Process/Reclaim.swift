// Reclaim to swap, swap-in, and the OOM killer.
//
// Swap behaves like a synchronous device (zram): swap-in of an entry nobody else references frees
// the slot at once and maps the page exclusive; an entry shared after fork goes through the swap
// cache, which holds its own reference to the page until the last PTE is swapped in.

/// What one reclaim pass did and why it stopped short.
struct ReclaimResult {
    var reclaimed = 0
    /// Pages that may be DMA-pinned (folio_maybe_dma_pinned), or already in the swap cache.
    var skippedPinned = 0
    /// Pages unmapped to swap entries but kept in memory in the swap cache: a get_user_pages
    /// (FOLL_GET) reference is not a pin, so try_to_unmap goes ahead, and the extra reference then
    /// keeps __remove_mapping from freeing the folio.
    var unmappedHeld = 0
    var skippedLocked = 0
    var swapFull = false
    /// Clean page-cache pages of regular files that nothing mapped, dropped (counted in `reclaimed` too).
    var droppedCache = 0
    /// The huge zero folio's shrinker freed it (its 512 pages are in `reclaimed`).
    var freedHugeZero = false
}

extension Engine {
    /// alloc_pages with the slow path: direct reclaim, then the OOM killer. Returns nil when the
    /// requesting process was the OOM victim, or nothing could be freed.
    mutating func allocPageOrReclaim(use: FrameUse, owner: Int32, exclusive: Bool, mapcount: Int32 = 0, _ j: inout StepJournal) -> Int? {
        while true {
            if let pfn = allocPage(use: use, owner: owner, exclusive: exclusive, mapcount: mapcount, &j) { return pfn }
            if reclaim(pages: 32, &j).reclaimed > 0 {
                j.events.add(.directReclaim)
                continue
            }
            guard let victim = oomVictim() else {
                j.events.add(.oomNothingToKill)
                return nil
            }
            oomKill(victim, &j)
            if owner > 0, !(state.processes.first { $0.meta.pid == owner }?.meta.alive ?? false) { return nil }
        }
    }

    /// oom_badness: rss + swap entries + page-table pages. Ties go to the later task, as the scan does.
    func oomVictim() -> Int? {
        var chosen: Int?, best = 0
        for (i, proc) in state.processes.enumerated() where proc.meta.alive {
            let points = proc.meta.rssPages + proc.meta.swapPages + proc.meta.pageTablePages
            if points > 0 && points >= best {
                best = points
                chosen = i
            }
        }
        return chosen
    }

    mutating func oomKill(_ p: Int, _ j: inout StepJournal) {
        let m = state.processes[p].meta
        j.events.add(.oomKill(OOMVictim(name: m.name, pid: m.pid, badness: m.rssPages + m.swapPages + m.pageTablePages)))
        updateMachine(&j) { $0.oomKills += 1 }
        exitProcess(p, reason: "killed by the OOM killer (out_of_memory)", &j)
    }

    /// shrink_inactive_list → try_to_unmap → swap out: the oldest unpinned, unlocked anonymous pages first.
    mutating func reclaim(pages wanted: Int, _ j: inout StepJournal) -> ReclaimResult {
        var result = ReclaimResult()
        guard wanted > 0 else { return result }
        dropCleanPageCache(wanted, &result, &j)
        shrinkHugeZeroFolio(&result, &j)
        guard result.reclaimed < wanted else { return result }
        guard !state.swapMap.isEmpty else {
            result.swapFull = true
            return result
        }
        // The rmap, built by walking page tables (anonymous pages keep their address across fork).
        var small: [Int: [(Int, UInt64)]] = [:]
        var huge: [Int: [(Int, UInt64)]] = [:]
        for (p, proc) in state.processes.enumerated() where proc.meta.alive {
            for (region, pmd) in proc.pt.hugePMDs where !pmd.isZero { huge[pmd.number, default: []].append((p, region)) }
            for (region, table) in proc.pt.tables where table.used > 0 {
                for (i, e) in table.entries.enumerated() where e.present && !e.isZero {
                    small[e.number, default: []].append((p, (region << 9) + UInt64(i)))
                }
            }
        }
        func locked(_ p: Int, _ va: UInt64) -> Bool {
            guard let v = state.processes[p].meta.vmaIndex(containing: va) else { return false }
            return state.processes[p].meta.vmas[v].flags.contains(.locked)
        }
        var candidates: [Int] = []
        for pfn in small.keys where state.phys.frameUse(pfn) == .anon { candidates.append(pfn) }
        for head in huge.keys { candidates.append(head) }
        candidates.sort { (state.phys.stamp[$0], $0) < (state.phys.stamp[$1], $1) }
        let swapCached = Set(state.swapCache.values.map { Int($0) })
        var looked = 0
        // Subpages of a THP handled through its PMD: their PTE mappings (another process's, after a
        // split there) went with it, so the rmap built above is stale for them.
        var handled = Set<Int>()
        for pfn in candidates where result.reclaimed < wanted {
            looked += 1
            if looked & 0xff == 0, !j.poll(result.reclaimed, of: wanted, .pages) { return result }
            if handled.contains(pfn) { continue }
            if let maps = huge[pfn] {
                for i in 0..<pagesPerPMD { handled.insert(pfn + i) }
                // A THP is split (every PMD into PTEs, then the folio) and its subpages go one by one.
                if maps.contains(where: { locked($0.0, $0.1 << 21) }) { result.skippedLocked += 1; continue }
                if (0..<pagesPerPMD).contains(where: { state.phys.pincount[pfn + $0] > 0 }) { result.skippedPinned += 1; continue }
                for (p, region) in maps { splitHugePMD(p, region: region, &j) }
                splitFolio(pfn, &j)
                for i in 0..<pagesPerPMD where result.reclaimed < wanted && state.phys.refcount[pfn + i] > 0 {
                    let vpns = maps.map { ($0.0, ($0.1 << 9) + UInt64(i)) } + (small[pfn + i] ?? [])
                    if !swapOut(pfn + i, mappings: vpns, swapCached: swapCached, result: &result, &j) { return result }
                }
                continue
            }
            guard let maps = small[pfn] else { continue }
            if maps.contains(where: { locked($0.0, $0.1 << pageShift) }) { result.skippedLocked += 1; continue }
            // A PTE-mapped large folio (multi-size THP, or a THP whose PMD was split) is split first
            // (split_folio_to_list), and its pages go one by one.
            // A pin anywhere in the folio keeps it whole (folio_maybe_dma_pinned counts the folio's pins).
            if state.phys.isLarge(pfn) {
                if folioMaybePinned(pfn) { result.skippedPinned += 1; continue }
                splitFolio(state.phys.folioHead(pfn), &j)
            }
            if !swapOut(pfn, mappings: maps, swapCached: swapCached, result: &result, &j) { return result }
        }
        return result
    }

    /// The huge zero folio's shrinker (shrink_huge_zero_page_scan, mm/huge_memory.c:308): once no
    /// mm holds it (huge_zero_refcount is back to its own 1), reclaim frees it. A pin on one of its
    /// pages keeps that frame allocated until the pin goes, but it is no longer the huge zero folio.
    private mutating func shrinkHugeZeroFolio(_ result: inout ReclaimResult, _ j: inout StepJournal) {
        guard state.meta.hugeZeroRefcount == 1, state.meta.hugeZeroPfn >= 0 else { return }
        let head = Int(state.meta.hugeZeroPfn)
        updateMachine(&j) {
            $0.hugeZeroRefcount = 0
            $0.hugeZeroPfn = -1
        }
        for i in 0..<pagesPerPMD { putPage(head + i, &j) }
        result.reclaimed += pagesPerPMD
        result.freedHugeZero = true
    }

    /// Clean, unmapped pages of regular files go first, oldest first: the page cache holds the only
    /// reference and the file has the same data, so __remove_mapping frees them without writeback.
    /// A page written through a shared mapping is dirty, and a mapped one needs try_to_unmap: both
    /// stay (this model has no writeback and does not unmap file pages).
    private mutating func dropCleanPageCache(_ wanted: Int, _ result: inout ReclaimResult, _ j: inout StepJournal) {
        var clean: [(pfn: Int, object: Int32, index: UInt64)] = []
        for (object, pages) in state.shmem {
            guard let f = state.fileIndex(object: object), !state.files[f].shmem else { continue }
            for (index, pfn32) in pages {
                let pfn = Int(pfn32)
                if state.phys.mapcount[pfn] == 0, state.phys.refcount[pfn] == 1, state.phys.dataTag(pfn) == .file(f) {
                    clean.append((pfn, object, index))
                }
            }
        }
        clean.sort { (state.phys.stamp[$0.pfn], $0.pfn) < (state.phys.stamp[$1.pfn], $1.pfn) }
        for c in clean where result.reclaimed < wanted {
            setShmemPage(c.object, c.index, nil, &j)
            putPage(c.pfn, &j)
            result.reclaimed += 1
            result.droppedCache += 1
        }
    }

    /// MADV_PAGEOUT over [start, end) of process p: madvise_cold_or_pageout_pte_range, then
    /// reclaim_pages. Pages another process maps too are left (folio_likely_mapped_shared); a THP
    /// the process alone maps is split (PMD, then folio) and its subpages go; each page then meets
    /// shrink_folio_list's rules (pinned ones stay, FOLL_GET-held ones stay in the swap cache).
    /// mlocked VMAs are skipped (madvise_pageout refuses VM_LOCKED, mm/madvise.c).
    mutating func pageoutRange(_ p: Int, start: UInt64, end: UInt64, _ j: inout StepJournal) -> (ReclaimResult, shared: Int) {
        var result = ReclaimResult()
        var shared = 0
        guard !state.swapMap.isEmpty else {
            result.swapFull = true
            return (result, 0)
        }
        let swapCached = Set(state.swapCache.values.map { Int($0) })
        var vpn = start >> pageShift
        let endVPN = end >> pageShift
        while vpn < endVPN {
            let region = vpn >> 9
            let stop = min(endVPN, (region + 1) << 9)
            guard let v = state.processes[p].meta.vmaIndex(containing: vpn << pageShift) else {
                // A hole: go on at the next VMA (madvise walks every VMA of the range).
                let next = state.processes[p].meta.vmas.first { $0.start > vpn << pageShift }.map { $0.start >> pageShift } ?? endVPN
                vpn = min(endVPN, next)
                continue
            }
            let vma = state.processes[p].meta.vmas[v]
            let vmaStop = min(stop, vma.end >> pageShift)
            if vma.flags.contains(.locked) || vma.kind != .anon && vma.kind != .heap || vma.flags.contains(.shared) {
                vpn = vmaStop
                continue
            }
            if let pmd = state.processes[p].pt.hugePMDs[region], !pmd.isZero {
                if state.phys.mapcount[pmd.number] > 1 { shared += Int(vmaStop - vpn); vpn = vmaStop; continue }
                // A pinned THP stays whole and mapped: over the whole PMD shrink_folio_list keeps it
                // (folio_maybe_dma_pinned), over part of it split_folio fails on the pin's references
                // (can_split_folio), and madvise_cold_or_pageout_pte_range moves on.
                if folioMaybePinned(pmd.number) { result.skippedPinned += Int(vmaStop - vpn); vpn = vmaStop; continue }
                splitHugePMD(p, region: region, &j)
                splitFolio(pmd.number, &j)
            }
            if let table = state.processes[p].pt.tables[region], table.used > 0 {
                for v in vpn..<vmaStop {
                    // Re-read each entry: swapOut rewrites the table as it goes.
                    guard let e = state.processes[p].pt.tables[region]?.entries[Int(v & 511)] else { break }
                    guard e.present, !e.isZero, state.phys.frameUse(e.number) == .anon else { continue }
                    if state.phys.mapcount[e.number] > 1 { shared += 1; continue }
                    // madvise_cold_or_pageout_pte_range splits a large folio the process alone maps.
                    if state.phys.isLarge(e.number) {
                        if folioMaybePinned(e.number) { result.skippedPinned += 1; continue }
                        splitFolio(state.phys.folioHead(e.number), &j)
                    }
                    if !swapOut(e.number, mappings: [(p, v)], swapCached: swapCached, result: &result, &j) { return (result, shared) }
                }
            }
            vpn = vmaStop
        }
        return (result, shared)
    }

    /// Replaces every PTE that maps pfn with a swap entry and frees the frame (add_to_swap,
    /// try_to_unmap, __remove_mapping). False when swap is full. A page that may be pinned is
    /// skipped (shrink_folio_list checks folio_maybe_dma_pinned before add_to_swap and again after
    /// the unmap, mm/vmscan.c:1254 and 1343: a pin count, or GUP_PIN_COUNTING_BIAS in a small
    /// folio's refcount). One held only by get_user_pages (FOLL_GET, vmsplice) is no pin: it is
    /// unmapped and stays in memory in the swap cache until its last reference goes.
    private mutating func swapOut(_ pfn: Int, mappings: [(Int, UInt64)], swapCached: Set<Int>, result: inout ReclaimResult, _ j: inout StepJournal) -> Bool {
        let maybePinned = state.phys.pincount[pfn] > 0 || state.phys.refcount[pfn] >= 1024
        // A page already in the swap cache keeps its slot; this model reclaims it with the slot's last PTE.
        if maybePinned || swapCached.contains(pfn) {
            result.skippedPinned += 1
            return true
        }
        let extra = Int(state.phys.refcount[pfn]) - mappings.count
        guard let slot = allocSwapSlot(&j) else {
            result.swapFull = true
            return false
        }
        let exclusive = state.phys.flags[pfn] & FrameFlag.anonExclusive != 0
        setSwapSlot(slot, UInt16(mappings.count), &j)
        setSwapData(slot, state.phys.dataTag(pfn), &j)   // swap_writepage
        for (p, vpn) in mappings {
            setPTE(p, vpn: vpn, .swapEntry(slot: slot, exclusive: exclusive), &j)
            updateCounters(p, &j) {
                $0.rssPages -= 1
                $0.swapPages += 1
            }
        }
        if extra > 0 {
            // The swap cache takes a reference of its own; the GUP holder keeps the frame alive.
            setSwapCache(slot, Int32(pfn), &j)
            state.phys.update(pfn, &j) {
                $0.mapcount = 0
                $0.refcount = Int32(extra + 1)
            }
            result.unmappedHeld += 1
            return true
        }
        state.phys.update(pfn, &j) {
            $0.mapcount = 0
            $0.refcount = 1
        }
        putPage(pfn, &j)
        result.reclaimed += 1
        return true
    }

    private mutating func allocSwapSlot(_ j: inout StepJournal) -> Int? {
        var s = state.meta.swapHint
        while s < state.swapMap.count, state.swapMap[s] != 0 { s += 1 }
        guard s < state.swapMap.count else { return nil }
        let slot = s
        updateMachine(&j) {
            $0.swapUsed += 1
            $0.swapHint = slot + 1
        }
        return s
    }

    /// swap_free: one PTE's reference to a slot goes; the last one frees the slot (and the swap cache entry).
    mutating func swapFree(_ slot: Int, _ j: inout StepJournal) {
        setSwapSlot(slot, state.swapMap[slot] - 1, &j)
        guard state.swapMap[slot] == 0 else { return }
        updateMachine(&j) {
            $0.swapUsed -= 1
            $0.swapHint = min($0.swapHint, slot)
        }
        if let cached = state.swapCache[Int32(slot)] {
            setSwapCache(slot, nil, &j)
            putPage(Int(cached), &j)
        }
    }

    /// do_swap_page.
    mutating func doSwapPage(_ p: Int, vma v: Int, vpn: UInt64, write: Bool, _ j: inout StepJournal) -> FaultResult {
        let e = state.processes[p].pt.pte(vpn)
        let slot = e.number
        let pfn: Int
        if let cached = state.swapCache[Int32(slot)] {
            pfn = Int(cached)
            state.phys.update(pfn, &j) { $0.refcount += 1 }
        } else {
            guard let new = allocPageOrReclaim(use: .anon, owner: state.processes[p].meta.pid, exclusive: false, &j) else { return .oom }
            guard state.processes[p].meta.alive else { return .oom }
            pfn = new
            state.phys.setData(pfn, state.swapDataTag(slot), &j)   // swap_read_folio
            if state.swapMap[slot] > 1 {
                // Other PTEs still name this slot: keep the page in the swap cache for them (its own reference).
                setSwapCache(slot, Int32(pfn), &j)
                state.phys.update(pfn, &j) { $0.refcount += 1 }
            }
        }
        state.phys.update(pfn, &j) { $0.mapcount += 1 }
        swapFree(slot, &j)
        let exclusive = e.swapExclusive || state.phys.refcount[pfn] == 1
        if exclusive { state.phys.update(pfn, &j) { $0.flags |= FrameFlag.anonExclusive } }
        let writable = exclusive && state.processes[p].meta.vmas[v].flags.contains(.write)
        setPTE(p, vpn: vpn, .page(pfn: pfn, writable: writable), &j)
        updateCounters(p, &j) {
            $0.rssPages += 1
            $0.swapPages -= 1
        }
        j.events.add(.swapIn)
        return .ok
    }
}
