// The buddy allocator (reference §7.1, §7.2): __rmqueue_smallest + expand on allocation,
// __free_one_page merging with the buddy pfn ^ (1 << order), and fragment=P at boot.

import XCTest

@testable import Engine

final class BuddyTests: XCTestCase {
    private func boot(_ line: String = "machine") -> Engine { Engine(config: MachineConfig(parseMachine(line))) }

    // memblock_free_all hands free memory to the buddy allocator in maximal naturally aligned blocks.
    func testBootFreesMemoryInMaximalAlignedBlocks() {
        let e = boot()
        let start = e.state.meta.kernelReservedFrames
        var expected = Array(repeating: [Int](), count: maxPageOrder + 1)
        var pfn = start
        while pfn < e.state.phys.frameCount {
            var o = maxPageOrder
            while o > 0 && (pfn % (1 << o) != 0 || pfn + (1 << o) > e.state.phys.frameCount) { o -= 1 }
            expected[o].append(pfn)
            pfn += 1 << o
        }
        XCTAssertEqual(freeLists(e.state), expected)
        XCTAssertEqual(e.state.phys.freeFrames, e.state.phys.frameCount - start)
        XCTAssertEqual(e.state.phys.freeBlocks, expected.map(\.count))
    }

    // The boot fills whole arrays instead of setting each frame: the same memory, to the last field.
    func testBootFillsGiveTheMemoryFrameByFrameBootGives() {
        for line in ["machine ram=4M", "machine", "machine ram=100M cma=16M", "machine ram=256M", "machine ram=1G cma=64M", "machine ram=3000M"] {
            let config = MachineConfig(parseMachine(line))
            let fast = PhysicalMemory.booted(config), slow = PhysicalMemory.booted(config, frameByFrame: true)
            XCTAssertEqual(fast.memory, slow.memory, line)
            XCTAssertEqual(fast.zeroPfn, slow.zeroPfn, line)
            XCTAssertEqual(fast.reserved, slow.reserved, line)
        }
    }

    // Allocation takes the first block of the smallest order that fits and gives the upper halves
    // back to the lower free lists (expand): one new block on each order below.
    func testAllocationSplitsTheSmallestBlockAndExpandsTheUpperHalves() {
        var e = boot()
        var j = StepJournal()
        let before = freeLists(e.state)
        // The smallest non-empty order at boot is the source of an order-0 page.
        guard let o = (0...maxPageOrder).first(where: { !before[$0].isEmpty }), o > 0 else { return XCTFail("precondition") }
        let head = before[o][0]
        let pfn = e.allocPages(order: 0, use: .anon, owner: 7, &j)
        XCTAssertEqual(pfn, head)
        var expected = before
        expected[o].removeFirst()
        for k in 0..<o { expected[k] = [head + (1 << k)] + expected[k] }
        XCTAssertEqual(freeLists(e.state), expected)
        XCTAssertEqual(e.state.phys.freeFrames, before.enumerated().reduce(0) { $0 + $1.1.count << $1.0 } - 1)

        // Now an order-2 request finds an exact order-2 block: no split.
        let before2 = freeLists(e.state)
        let p2 = e.allocPages(order: 2, use: .anon, owner: 7, &j)
        XCTAssertEqual(p2, head + 4)
        var expected2 = before2
        expected2[2].removeFirst()
        XCTAssertEqual(freeLists(e.state), expected2)
        XCTAssertEqual((0..<4).map { frameView(e.state, head + 4 + $0) },
                       Array(repeating: FrameView(use: .anon, flags: 0, refcount: 1, mapcount: 0, pincount: 0, owner: 7), count: 4))
    }

    // __free_one_page: a freed block merges with its buddy (pfn ^ (1 << order)) while that is free
    // at the same order; an allocated buddy stops the merge.
    func testFreeMergesWithTheBuddyUpToTheFirstAllocatedOne() {
        var e = boot()
        var j = StepJournal()
        let boot = freeLists(e.state)
        let a = e.allocPages(order: 0, use: .anon, owner: 7, &j)!
        let b = e.allocPages(order: 0, use: .anon, owner: 7, &j)!
        let c = e.allocPages(order: 0, use: .anon, owner: 7, &j)!
        let d = e.allocPages(order: 0, use: .anon, owner: 7, &j)!
        XCTAssertEqual([b, c, d], [a + 1, a + 2, a + 3], "precondition: four neighbours")
        XCTAssertEqual(a % 4, 0)
        let afterAlloc = freeBlockSets(e.state)

        e.freePages(c, order: 0, &j)   // buddy d (c ^ 1) is allocated: stays an order-0 block
        var expected = afterAlloc
        expected[0] = (expected[0] + [c]).sorted()
        XCTAssertEqual(freeBlockSets(e.state), expected)
        XCTAssertEqual(frameView(e.state, c), .free)

        e.freePages(b, order: 0, &j)   // buddy a is allocated
        expected[0] = (expected[0] + [b]).sorted()
        XCTAssertEqual(freeBlockSets(e.state), expected)

        e.freePages(d, order: 0, &j)   // buddy c is free: merge into order 1 at c; its buddy a (order 1) is not free
        expected[0].removeAll { $0 == c }
        expected[1] = (expected[1] + [c]).sorted()
        XCTAssertEqual(freeBlockSets(e.state), expected)

        e.freePages(a, order: 0, &j)   // a+b → order 1 at a, + c's order-1 block → order 2, and so on up
        XCTAssertEqual(freeLists(e.state), boot, "all merged back: the boot free lists exactly")
    }

    // buddy_merge_likely: a freed block whose order+1 buddy is free goes to the tail of its list
    // (it is likely to merge soon, so it should not be handed out first); otherwise to the head.
    func testFreedBlockGoesToTheTailWhenAHigherMergeIsLikely() {
        var e = boot()
        var j = StepJournal()
        let r = e.allocPages(order: 0, use: .anon, owner: 7, &j)!
        let pages = (1...4).map { _ in e.allocPages(order: 0, use: .anon, owner: 7, &j)! }
        XCTAssertEqual(pages, [r + 1, r + 2, r + 3, r + 4], "precondition: consecutive pages")
        XCTAssertEqual(r % 8, 0)
        XCTAssertEqual(e.state.phys.freeList(order: 0), [r + 5])
        e.freePages(r, order: 0, &j)       // buddy r+1 allocated; order-1 buddy r+2 allocated: head
        XCTAssertEqual(e.state.phys.freeList(order: 0), [r, r + 5])
        e.freePages(r + 1, order: 0, &j)   // merges with r into order 1; order-2 buddy r+4 allocated: head
        XCTAssertEqual(e.state.phys.freeList(order: 0), [r + 5])
        XCTAssertEqual(e.state.phys.freeList(order: 1), [r, r + 6])
        e.freePages(r + 2, order: 0, &j)   // buddy r+3 allocated, but the order-1 buddy r is free: tail
        XCTAssertEqual(e.state.phys.freeList(order: 0), [r + 5, r + 2])
    }

    // After allocating and freeing the same pages (in any order) the same blocks are free as before.
    func testAllocThenFreeRestoresTheSameFreeBlocks() {
        for line in ["machine", "machine fragment=50 seed=3"] {
            var e = boot(line)
            var j = StepJournal()
            let before = freeBlockSets(e.state)
            var rng = SplitMix64(seed: 42)
            var taken: [(Int, Int)] = []
            for _ in 0..<300 {
                let order = Int(rng.next() % 5)
                guard let pfn = e.allocPages(order: order, use: .kernel, owner: 0, &j) else { continue }
                XCTAssertEqual(pfn % (1 << order), 0, "a block is naturally aligned")
                taken.append((pfn, order))
            }
            XCTAssertEqual(Set(taken.map(\.0)).count, taken.count)
            var i = taken.count
            while i > 1 {
                let j = Int(rng.next() % UInt64(i))
                i -= 1
                taken.swapAt(i, j)
            }
            for (pfn, order) in taken { e.freePages(pfn, order: order, &j) }
            XCTAssertEqual(freeBlockSets(e.state), before, line)
        }
    }

    // fragment=P: only about (100 − P)% of free memory stays in blocks of order ≥ 9.
    func testFragmentLeavesAboutTheComplementInLargeBlocks() {
        for p in [0, 25, 50, 75, 100] {
            let e = boot("machine ram=1G fragment=\(p)")
            let share = Double(freeFramesInBlocks(e.state, atLeast: pmdOrder)) / Double(e.state.phys.freeFrames) * 100
            XCTAssertEqual(share, Double(100 - p), accuracy: 8, "fragment=\(p): \(share)% in order ≥ 9 blocks")
            // Every free block is still a proper buddy block: aligned, in bounds, its frames free.
            for order in 0...maxPageOrder {
                for head in e.state.phys.freeList(order: order) {
                    XCTAssertEqual(head % (1 << order), 0)
                    XCTAssertEqual(Int(e.state.phys.freeOrder[head]), order)
                }
            }
            XCTAssertEqual((0...maxPageOrder).reduce(0) { $0 + e.state.phys.freeList(order: $1).count << $1 }, e.state.phys.freeFrames)
        }
    }

    // fragment is deterministic by seed.
    func testFragmentIsDeterministicBySeed() {
        let a = boot("machine fragment=50 seed=7")
        let b = boot("machine fragment=50 seed=7")
        let c = boot("machine fragment=50 seed=8")
        XCTAssertTrue(a.state == b.state, stateDiff(a.state, b.state))
        XCTAssertEqual(a.stateJSON(), b.stateJSON())
        XCTAssertFalse(a.state == c.state)
        XCTAssertNotEqual(freeLists(a.state), freeLists(c.state))
    }

    func testEveryStepOnAFragmentedMachineUndoesExactly() {
        assertEveryStepUndoes("""
            machine fragment=60 seed=5
            process app
            app mmap buf 1M
            app write buf
            app fork kid
            kid write buf 0 64K
            app munmap buf 128K 256K
            kid exit
            app exit
            """)
    }
}
