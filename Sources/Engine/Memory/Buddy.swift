// The buddy allocator, logged: __rmqueue_smallest + expand on allocation, __free_one_page on free.

extension Engine {
    /// __rmqueue_smallest: take the first block of the smallest order that fits, and give the
    /// upper halves back to the lower free lists (expand()). Returns the first pfn, or nil.
    mutating func rmqueueSmallest(order: Int, cma: Bool = false, _ j: inout StepJournal) -> Int? {
        let base = cma ? PhysicalMemory.cmaList : 0
        var o = order
        while o <= maxPageOrder, state.phys.freeHead[base + o] < 0 { o += 1 }
        guard o <= maxPageOrder else { return nil }
        let pfn = Int(state.phys.freeHead[base + o])
        state.phys.removeFree(order: o, pfn: pfn, &j)
        while o > order {
            o -= 1
            state.phys.pushFree(order: o, pfn: pfn + (1 << o), tail: false, &j)
        }
        return pfn
    }

    /// __rmqueue: movable allocations take CMA memory first while more than half of the free memory
    /// is CMA (and fall back to it otherwise); everything else stays out of CMA.
    /// `avoidCMA` is memalloc_pin_save's rule for pages about to be pinned long-term.
    @inline(__always) mutating func rmqueue(order: Int, use: FrameUse, avoidCMA: Bool = false, _ j: inout StepJournal) -> Int? {
        // Scalars only: a copy of state.phys held here would make every write below copy the
        // frame arrays (an allocation cost that grew with RAM: 45 s to write 16 MiB on ram=16G).
        guard state.phys.cmaEnd > state.phys.cmaStart, PhysicalMemory.isMovable(use), !avoidCMA else {
            return rmqueueSmallest(order: order, &j)
        }
        if state.phys.freeCMAFrames > state.phys.freeFrames / 2, let pfn = rmqueueSmallest(order: order, cma: true, &j) { return pfn }
        return rmqueueSmallest(order: order, &j) ?? rmqueueSmallest(order: order, cma: true, &j)
    }

    /// The next LRU age stamp: every allocation advances the clock.
    private mutating func nextStamp(_ j: inout StepJournal) -> UInt32 {
        updateMachine(&j) { $0.allocClock &+= 1 }
        return state.meta.allocClock
    }

    /// Allocates 2^order frames for `use` on behalf of `owner`, refcount 1 on each page.
    /// An order-9 anonymous allocation becomes a THP folio (head + tails).
    /// `largeFolio` makes any order a folio (multi-size THP); by default only an order-9 anonymous one is.
    mutating func allocPages(order: Int, use: FrameUse, owner: Int32, avoidCMA: Bool = false, largeFolio: Bool = false, _ j: inout StepJournal) -> Int? {
        guard let pfn = rmqueue(order: order, use: use, avoidCMA: avoidCMA, &j) else { return nil }
        let stamp = nextStamp(&j)
        let folio = order > 0 && (largeFolio || order == pmdOrder && (use == .anon || use == .zero))
        state.phys.update(pfn..<(pfn + (1 << order)), &j) { p, f in
            let flags = folio ? FrameFlag.folio(order: order, head: p == pfn) : 0
            f = PhysicalMemory.Frame(use: use, flags: flags, refcount: 1, owner: owner, stamp: stamp)
        }
        return pfn
    }

    /// The hot path for one order-0 page: the same as allocPages(order: 0), with the page's first
    /// mapcount written in the same logged write.
    @inline(__always) mutating func allocPage(use: FrameUse, owner: Int32, exclusive: Bool, mapcount: Int32 = 0,
                                              avoidCMA: Bool = false, _ j: inout StepJournal) -> Int? {
        guard let pfn = rmqueue(order: 0, use: use, avoidCMA: avoidCMA, &j) else { return nil }
        let stamp = nextStamp(&j)
        state.phys.set(pfn, PhysicalMemory.Frame(use: use, flags: exclusive ? FrameFlag.anonExclusive : 0, refcount: 1,
                                                 mapcount: mapcount, owner: owner, stamp: stamp), &j)
        return pfn
    }

    /// __free_one_page: merge with the buddy (pfn ^ (1 << order)) while it is free at the same order,
    /// then put the block on its free list: at the tail when the next-higher buddy is free too
    /// (buddy_merge_likely), so blocks about to merge are not handed out first.
    mutating func freePages(_ start: Int, order startOrder: Int, _ j: inout StepJournal) {
        state.phys.update(start..<(start + (1 << startOrder)), &j) { _, f in f = .free }
        // A free frame holds nothing a later owner can see (an allocation starts zero-filled).
        for pfn in start..<(start + (1 << startOrder)) { state.phys.setData(pfn, .zero, &j) }
        var pfn = start, order = startOrder
        while order < maxPageOrder {
            let buddy = pfn ^ (1 << order)
            guard buddy + (1 << order) <= state.phys.frameCount, Int(state.phys.freeOrder[buddy]) == order else { break }
            state.phys.removeFree(order: order, pfn: buddy, &j)
            pfn &= buddy
            order += 1
        }
        var tail = false
        if order < maxPageOrder - 1 {
            let higherBuddy = (pfn & ~((1 << (order + 1)) - 1)) ^ (1 << (order + 1))
            if higherBuddy + (1 << (order + 1)) <= state.phys.frameCount {
                tail = Int(state.phys.freeOrder[higherBuddy]) == order + 1
            }
        }
        state.phys.pushFree(order: order, pfn: pfn, tail: tail, &j)
    }

    /// Takes one specific free frame out of the buddy allocator, splitting its block around it
    /// (as take_page_off_buddy / break_down_buddy_pages do). Returns false when it is not free.
    mutating func claimFrame(_ pfn: Int, use: FrameUse, owner: Int32, _ j: inout StepJournal) -> Bool {
        guard let (head, order) = state.phys.freeBlock(containing: pfn) else { return false }
        state.phys.removeFree(order: order, pfn: head, &j)
        var h = head, o = order
        while o > 0 {
            o -= 1
            let half = h + (1 << o)
            if pfn >= half {
                state.phys.pushFree(order: o, pfn: h, tail: false, &j)
                h = half
            } else {
                state.phys.pushFree(order: o, pfn: half, tail: false, &j)
            }
        }
        state.phys.set(pfn, PhysicalMemory.Frame(use: use, refcount: 1, owner: owner), &j)
        return true
    }

    /// Drops one reference to a frame; frees it (with its whole folio) when nothing references it.
    mutating func putPage(_ pfn: Int, _ j: inout StepJournal) {
        state.phys.update(pfn, &j) { $0.refcount -= 1 }
        guard state.phys.refcount[pfn] == 0 else { return }
        if state.phys.isLarge(pfn) {
            // A large folio is freed whole, once no subpage is referenced.
            let head = state.phys.folioHead(pfn), order = state.phys.folioOrder(pfn)
            for i in 0..<(1 << order) where state.phys.refcount[head + i] != 0 { return }
            freePages(head, order: order, &j)
        } else {
            freePages(pfn, order: 0, &j)
        }
    }
}

// MARK: - Boot

extension Engine {
    /// `fragment=P`: in P% of the 2 MiB blocks (chosen by the seed) one page goes to an unmovable
    /// kernel allocation at a random offset, so that block can never again serve order 9 or above;
    /// then the small free blocks are churned (taken and given back in seeded random order) so the
    /// free lists no longer hand out neighbouring frames one after another.
    mutating func fragment(percent: Int, _ j: inout StepJournal) {
        var rng = SplitMix64(seed: state.config.seed)
        let frames = state.phys.frameCount
        var region = 0
        while region + pagesPerPMD <= frames {
            if Int(rng.next() % 100) < percent {
                let victim = region + Int(rng.next() % UInt64(pagesPerPMD))
                _ = claimFrame(victim, use: .kernel, owner: 0, &j)
            }
            region += pagesPerPMD
        }
        var small: [(Int, Int)] = []
        for order in 0..<pmdOrder {
            while let pfn = rmqueueSmallestExact(order: order, &j) { small.append((pfn, order)) }
        }
        var i = small.count
        while i > 1 {
            let k = Int(rng.next() % UInt64(i))
            i -= 1
            small.swapAt(i, k)
        }
        for (pfn, order) in small { freePages(pfn, order: order, &j) }
    }

    private mutating func rmqueueSmallestExact(order: Int, _ j: inout StepJournal) -> Int? {
        let head = state.phys.freeHead[order]
        guard head >= 0 else { return nil }
        state.phys.removeFree(order: order, pfn: Int(head), &j)
        return Int(head)
    }
}

/// A small deterministic PRNG (SplitMix64): same seed, same machine.
public struct SplitMix64: Sendable, Equatable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
