// The buddy allocator, logged: __rmqueue_smallest + expand on allocation, __free_one_page on free.

extension Engine {
    @inline(__always) mutating func freeListInsert(order: Int, pfn: Int, tail: Bool) {
        if tail { state.phys.listInsertTail(order: order, pfn: pfn) } else { state.phys.listInsert(order: order, pfn: pfn, afterPrev: -1) }
        log.changes.append(.freeListInsert(order: Int8(order), pfn: Int32(pfn)))
    }

    @inline(__always) mutating func freeListRemove(order: Int, pfn: Int) {
        let prev = state.phys.listRemove(order: order, pfn: pfn)
        log.changes.append(.freeListRemove(order: Int8(order), pfn: Int32(pfn), prev: prev))
    }

    /// __rmqueue_smallest: take the first block of the smallest order that fits, and give the
    /// upper halves back to the lower free lists (expand()). Returns the first pfn, or nil.
    mutating func rmqueueSmallest(order: Int, cma: Bool = false) -> Int? {
        let base = cma ? PhysicalMemory.cmaList : 0
        var o = order
        while o <= maxPageOrder, state.phys.freeHead[base + o] < 0 { o += 1 }
        guard o <= maxPageOrder else { return nil }
        let pfn = Int(state.phys.freeHead[base + o])
        freeListRemove(order: o, pfn: pfn)
        while o > order {
            o -= 1
            freeListInsert(order: o, pfn: pfn + (1 << o), tail: false)
        }
        return pfn
    }

    /// __rmqueue: movable allocations take CMA memory first while more than half of the free memory
    /// is CMA (and fall back to it otherwise); everything else stays out of CMA.
    /// `avoidCMA` is memalloc_pin_save's rule for pages about to be pinned long-term.
    @inline(__always) mutating func rmqueue(order: Int, use: FrameUse, avoidCMA: Bool = false) -> Int? {
        let phys = state.phys
        guard phys.cmaEnd > phys.cmaStart, PhysicalMemory.isMovable(use), !avoidCMA else {
            return rmqueueSmallest(order: order)
        }
        if phys.freeCMAFrames > phys.freeFrames / 2, let pfn = rmqueueSmallest(order: order, cma: true) { return pfn }
        return rmqueueSmallest(order: order) ?? rmqueueSmallest(order: order, cma: true)
    }

    /// Allocates 2^order frames for `use` on behalf of `owner`, refcount 1 on each page.
    /// An order-9 anonymous allocation becomes a THP folio (head + tails).
    mutating func allocPages(order: Int, use: FrameUse, owner: Int32, avoidCMA: Bool = false) -> Int? {
        guard let pfn = rmqueue(order: order, use: use, avoidCMA: avoidCMA) else { return nil }
        touchMachine()
        state.meta.allocClock &+= 1
        let stamp = state.meta.allocClock
        for i in 0..<(1 << order) {
            let p = pfn + i
            logFrame(p)
            var f: UInt8 = 0
            if order == pmdOrder && (use == .anon || use == .zero) { f = i == 0 ? FrameFlag.head : FrameFlag.tail }
            state.phys.setFrame(p, PhysicalMemory.Frame(use: use.rawValue, flags: f, refcount: 1, mapcount: 0,
                                                        pincount: 0, owner: owner, stamp: stamp))
        }
        return pfn
    }

    /// The hot path for one order-0 page: the same as allocPages(order: 0) without the loop.
    @inline(__always) mutating func allocPage(use: FrameUse, owner: Int32, exclusive: Bool, avoidCMA: Bool = false) -> Int? {
        guard let pfn = rmqueue(order: 0, use: use, avoidCMA: avoidCMA) else { return nil }
        touchMachine()
        state.meta.allocClock &+= 1
        logFrame(pfn)
        state.phys.setFrame(pfn, PhysicalMemory.Frame(use: use.rawValue, flags: exclusive ? FrameFlag.anonExclusive : 0,
                                                      refcount: 1, mapcount: 0, pincount: 0, owner: owner,
                                                      stamp: state.meta.allocClock))
        return pfn
    }

    /// __free_one_page: merge with the buddy (pfn ^ (1 << order)) while it is free at the same order,
    /// then put the block on its free list: at the tail when the next-higher buddy is free too
    /// (buddy_merge_likely), so blocks about to merge are not handed out first.
    mutating func freePages(_ start: Int, order startOrder: Int) {
        for i in 0..<(1 << startOrder) {
            let p = start + i
            logFrame(p)
            state.phys.setFrame(p, PhysicalMemory.Frame(use: FrameUse.free.rawValue, flags: 0, refcount: 0, mapcount: 0,
                                                        pincount: 0, owner: -1, stamp: 0))
        }
        var pfn = start, order = startOrder
        while order < maxPageOrder {
            let buddy = pfn ^ (1 << order)
            guard buddy + (1 << order) <= state.phys.frameCount, Int(state.phys.freeOrder[buddy]) == order else { break }
            freeListRemove(order: order, pfn: buddy)
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
        freeListInsert(order: order, pfn: pfn, tail: tail)
    }

    /// Takes one specific free frame out of the buddy allocator, splitting its block around it
    /// (as take_page_off_buddy / break_down_buddy_pages do). Returns false when it is not free.
    mutating func claimFrame(_ pfn: Int, use: FrameUse, owner: Int32) -> Bool {
        guard let (head, order) = state.phys.freeBlock(containing: pfn) else { return false }
        freeListRemove(order: order, pfn: head)
        var h = head, o = order
        while o > 0 {
            o -= 1
            let half = h + (1 << o)
            if pfn >= half {
                freeListInsert(order: o, pfn: h, tail: false)
                h = half
            } else {
                freeListInsert(order: o, pfn: half, tail: false)
            }
        }
        logFrame(pfn)
        state.phys.setFrame(pfn, PhysicalMemory.Frame(use: use.rawValue, flags: 0, refcount: 1, mapcount: 0,
                                                      pincount: 0, owner: owner, stamp: 0))
        return true
    }

    /// Drops one reference to a frame; frees it (with its whole folio) when nothing references it.
    mutating func putPage(_ pfn: Int) {
        logFrame(pfn)
        state.phys.refcount[pfn] -= 1
        guard state.phys.refcount[pfn] == 0 else { return }
        if state.phys.isLarge(pfn) {
            // A THP folio is freed whole, once no subpage is referenced.
            let head = state.phys.folioHead(pfn)
            for i in 0..<pagesPerPMD where state.phys.refcount[head + i] != 0 { return }
            freePages(head, order: pmdOrder)
        } else {
            freePages(pfn, order: 0)
        }
    }
}

// MARK: - Boot

extension Engine {
    /// mem_init: the kernel keeps low memory, its image and the memmap; memblock_free_all hands the
    /// rest to the buddy allocator in maximal aligned blocks, each at the tail of its list
    /// (__free_pages_core uses FPI_TO_TAIL), so a fresh machine allocates from low addresses up.
    mutating func boot() {
        let frames = state.phys.frameCount
        let low = min(256, frames / 16)
        let memmap = (frames * 64 + Int(pageSize) - 1) / Int(pageSize)
        let image = state.config.ram >= 256 << 20 ? 4096 : frames / 16
        let reserved = min(frames - 1, low + memmap + image)
        for p in 0..<reserved {
            state.phys.setFrame(p, PhysicalMemory.Frame(use: FrameUse.kernel.rawValue, flags: 0, refcount: 1, mapcount: 0,
                                                        pincount: 0, owner: 0, stamp: 0))
        }
        // empty_zero_page lives in the kernel image's bss.
        let zero = low + memmap
        var zf = state.phys.frame(zero)
        zf.use = FrameUse.zero.rawValue
        state.phys.setFrame(zero, zf)
        state.meta.zeroPfn = Int32(zero)
        state.meta.kernelReservedFrames = reserved
        // cma=SIZE: a region at the top of memory, in whole 4 MiB blocks so buddies never straddle it.
        let cmaFrames = min(Int(alignUp(state.config.cma, 4 << 20) >> pageShift), (frames - reserved) & ~((1 << maxPageOrder) - 1))
        if cmaFrames > 0 {
            state.phys.cmaEnd = frames & ~((1 << maxPageOrder) - 1)
            state.phys.cmaStart = state.phys.cmaEnd - cmaFrames
        }
        var pfn = reserved
        while pfn < frames {
            var order = maxPageOrder
            while order > 0 && (pfn & ((1 << order) - 1) != 0 || pfn + (1 << order) > frames
                                || (pfn < state.phys.cmaStart && pfn + (1 << order) > state.phys.cmaStart)) { order -= 1 }
            for i in 0..<(1 << order) {
                state.phys.setFrame(pfn + i, PhysicalMemory.Frame(use: FrameUse.free.rawValue, flags: 0, refcount: 0,
                                                                  mapcount: 0, pincount: 0, owner: -1, stamp: 0))
            }
            state.phys.listInsertTail(order: order, pfn: pfn)
            pfn += 1 << order
        }
        if state.config.fragment > 0 { fragment(percent: state.config.fragment) }
    }

    /// `fragment=P`: in P% of the 2 MiB blocks (chosen by the seed) one page goes to an unmovable
    /// kernel allocation at a random offset, so that block can never again serve order 9 or above;
    /// then the small free blocks are churned (taken and given back in seeded random order) so the
    /// free lists no longer hand out neighbouring frames one after another.
    mutating func fragment(percent: Int) {
        var rng = SplitMix64(seed: state.config.seed)
        let frames = state.phys.frameCount
        var region = 0
        while region + pagesPerPMD <= frames {
            if Int(rng.next() % 100) < percent {
                let victim = region + Int(rng.next() % UInt64(pagesPerPMD))
                _ = claimFrame(victim, use: .kernel, owner: 0)
            }
            region += pagesPerPMD
        }
        var small: [(Int, Int)] = []
        for order in 0..<pmdOrder {
            while let pfn = rmqueueSmallestExact(order: order) { small.append((pfn, order)) }
        }
        var i = small.count
        while i > 1 {
            let j = Int(rng.next() % UInt64(i))
            i -= 1
            small.swapAt(i, j)
        }
        for (pfn, order) in small { freePages(pfn, order: order) }
    }

    private mutating func rmqueueSmallestExact(order: Int) -> Int? {
        let head = state.phys.freeHead[order]
        guard head >= 0 else { return nil }
        freeListRemove(order: order, pfn: Int(head))
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
