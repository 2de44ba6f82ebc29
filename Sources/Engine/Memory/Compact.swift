// `compact`: the migrate scanner walks up from the bottom of memory and moves movable pages to
// free frames found by the free scanner from the top (compact_zone), so free memory gathers in
// large blocks. Pinned pages cannot move and keep their blocks broken.

extension Engine {
    mutating func doCompact(_ j: inout StepJournal) -> OpResult {
        let before = largeFreeBlocks()
        let (moved, pinned, unmovable) = compactZone(untilOrder9Free: false, &j)
        let after = largeFreeBlocks()
        var text = "compact_zone: \(plural(moved, "movable page")) migrated from low to high memory; free 2 MiB blocks \(before) → \(after)"
        if pinned > 0 { text += "; \(plural(pinned, "pinned page")) could not move (a long-term pin makes a page unmovable)" }
        if unmovable > 0 { text += "; \(plural(unmovable, "unmovable kernel page")) (page tables, UMP, dma-buf, slab) stay where they are" }
        return OpResult(text: text)
    }

    /// compact_zone: returns the pages moved and those that could not (pinned, unmovable). With
    /// `untilOrder9Free`, stops once a free order-9 block exists (compact_finished for a THP).
    @discardableResult
    mutating func compactZone(untilOrder9Free: Bool, _ j: inout StepJournal) -> (moved: Int, pinned: Int, unmovable: Int) {
        let lo = state.meta.kernelReservedFrames
        let hi = state.phys.cmaEnd > state.phys.cmaStart ? state.phys.cmaStart : state.phys.frameCount
        var moved = 0, pinned = 0, unmovable = 0
        // Migrate scanner: 2 MiB blocks from the bottom; free scanner: free frames from the top.
        var block = lo / pagesPerPMD * pagesPerPMD
        var freeTop = hi
        // Built at the first page that moves. The pages moved to are above the migrate scanner
        // and never move again, so the map stays true for every page still to move.
        var rmap: ReverseMap?
        while block + pagesPerPMD <= freeTop {
            for pfn in max(block, lo)..<(block + pagesPerPMD) where state.phys.use[pfn] != FrameUse.free.rawValue {
                if !isMigratable(pfn) {
                    if state.phys.pincount[pfn] > 0 { pinned += 1 } else { unmovable += 1 }
                    continue
                }
                // The highest free frame above the migrate scanner's block.
                var target = freeTop - 1
                while target >= block + pagesPerPMD && state.phys.use[target] != FrameUse.free.rawValue { target -= 1 }
                guard target >= block + pagesPerPMD else { break }
                freeTop = target
                if rmap == nil { rmap = ReverseMap(state) }
                if migrate(pfn, to: target, rmap: rmap, &j) { moved += 1 }
            }
            block += pagesPerPMD
            if untilOrder9Free && largeFreeBlocks() > 0 { break }
        }
        return (moved, pinned, unmovable)
    }

    /// Free blocks of order ≥ 9 outside CMA.
    func largeFreeBlocks() -> Int {
        (pmdOrder...maxPageOrder).reduce(0) { $0 + state.phys.freeList(order: $1).count << ($1 - pmdOrder) }
    }

    /// Moves a migratable page to a specific free frame.
    private mutating func migrate(_ pfn: Int, to target: Int, rmap: ReverseMap?, _ j: inout StepJournal) -> Bool {
        guard claimFrame(target, use: state.phys.frameUse(pfn), owner: state.phys.owner[pfn], &j) else { return false }
        movePage(pfn, to: target, rmap: rmap, &j)
        return true
    }
}
