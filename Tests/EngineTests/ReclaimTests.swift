// Reclaim to swap, swap-in and the OOM killer: shrink_folio_list takes the oldest unpinned,
// unlocked anonymous pages; do_swap_page brings them back; without swap, out_of_memory() kills
// the process with the highest oom_badness.

import XCTest

@testable import Engine

final class ReclaimTests: XCTestCase {
    static let twoBuffers = """
        machine swap=16M
        process app
        app mmap a 1M
        app mmap b 1M
        app write a
        app write b
        """

    // pressure 1M: a's pages (the oldest) become swap entries; b's stay. RSS moves to swap.
    func testPressureSwapsOutTheOldestAnonymousPages() {
        var r = run(Self.twoBuffers)
        let aPfns = r.pfns("app", "a"), bPtes = r.ptes("app", "b")
        let free = r.state.phys.freeFrames
        r.step("pressure 1M")
        XCTAssertEqual(r.last.outcome, .ok)
        XCTAssertEqual(r.ptes("app", "a"), Array(repeating: .swapEntry, count: 256))
        XCTAssertEqual(r.ptes("app", "b"), bPtes, "the younger pages stay")
        XCTAssertEqual(r.meta("app").rssPages, 256)
        XCTAssertEqual(r.meta("app").swapPages, 256)
        XCTAssertEqual(r.state.meta.swapUsed, 256)
        XCTAssertEqual(Set(aPfns.map(r.frame)), [.free])
        XCTAssertEqual(r.state.phys.freeFrames, free + 256)
        // Each swapped page has its own slot, used once.
        let slots = r.vpns("app", "a").map { r.pt("app").entry(vpn: $0).number }
        XCTAssertEqual(Set(slots).count, 256)
        XCTAssertEqual(slots.map { r.state.swapMap[$0] }, Array(repeating: 1, count: 256))
    }

    // do_swap_page: the next touch brings the page back, exclusive; a private writable mapping gets
    // a writable PTE even on a read (the entry was exclusive); the slot is freed (synchronous device).
    func testTheNextTouchSwapsThePageBackIn() {
        var r = run(Self.twoBuffers + "\npressure 1M")
        let va = r.buffer("app", "a").start
        let slot = r.pt("app").entry(vpn: va >> pageShift).number
        let pid = r.pid("app")
        // The whole state: one PTE back, one frame, one slot freed, the counters moved; nothing else.
        r.assertStep("app read a 0 4K") { s, after in
            let pfn = after.page(0, vpn: va >> pageShift).pte.pfn ?? -1
            s.processes["app"]!.pages[va] = .page(pfn, writable: true)
            s.frames[pfn] = .anon(ref: 1, map: 1, exclusive: true, owner: pid)
            s.processes["app"]!.counters.rssPages += 1
            s.processes["app"]!.counters.swapPages -= 1
            s.swap[slot] = nil
            s.machine.swapUsed -= 1
        }
        XCTAssertEqual(r.last.events[.swapIn], 1)
        r.step("app write a 4K 4K")
        guard let pfn1 = r.ptes("app", "a")[1].pfn else { return XCTFail("page 1 not present") }
        XCTAssertEqual(r.ptes("app", "a")[1], .page(pfn1, writable: true))
        XCTAssertEqual(r.frame(pfn1), .anon(ref: 1, map: 1, exclusive: true, owner: r.pid("app")))
        XCTAssertEqual(r.meta("app").swapPages, 254)
    }

    // A swapped page shared by parent and child (swap_duplicate at fork) keeps its slot until the last
    // PTE naming it goes; exit frees slots nobody else names, and every frame.
    func testSwapSlotsAreSharedAcrossForkAndFreedByTheLastExit() {
        var r = run(Self.twoBuffers + "\npressure 1M")
        let bootFree = Engine(config: MachineConfig(parseMachine("machine swap=16M"))).state.phys.freeFrames
        r.step("app fork kid")
        let slots = r.vpns("app", "a").map { r.pt("app").entry(vpn: $0).number }
        XCTAssertEqual(r.ptes("kid", "a"), Array(repeating: .swapEntry, count: 256))
        XCTAssertEqual(r.vpns("kid", "a").map { r.pt("kid").entry(vpn: $0).number }, slots, "the same slots")
        XCTAssertEqual(slots.map { r.state.swapMap[$0] }, Array(repeating: 2, count: 256))
        XCTAssertEqual(r.meta("kid").swapPages, 256)
        r.step("app exit")
        XCTAssertEqual(slots.map { r.state.swapMap[$0] }, Array(repeating: 1, count: 256))
        XCTAssertEqual(r.state.meta.swapUsed, 256)
        r.step("kid exit")
        XCTAssertEqual(r.state.meta.swapUsed, 0)
        XCTAssertTrue(r.state.swapMap.allSatisfy { $0 == 0 })
        XCTAssertEqual(r.state.phys.freeFrames, bootFree)
    }

    // mlocked pages are unevictable: reclaim passes over them to younger pages; munlock makes them reclaimable.
    func testMlockedPagesAreNotReclaimed() {
        var r = run("""
            machine swap=16M
            process app
            app mmap a 1M locked
            app mmap b 1M
            app write b
            """)
        let aPtes = r.ptes("app", "a")
        XCTAssertTrue(aPtes.allSatisfy { $0.present && $0.writable && !$0.zero }, "MAP_LOCKED populates")
        r.step("pressure 1M")
        XCTAssertEqual(r.ptes("app", "a"), aPtes, "locked pages stay")
        XCTAssertEqual(r.ptes("app", "b"), Array(repeating: .swapEntry, count: 256))
        r.step("pressure 1M")
        XCTAssertEqual(r.ptes("app", "a"), aPtes, "still nothing else to take")
        r.step("app munlock a")
        r.step("pressure 1M")
        XCTAssertEqual(r.ptes("app", "a"), Array(repeating: .swapEntry, count: 256))
    }

    // No swap, memory exhausted: the fault runs out_of_memory(), which kills the process with the
    // highest oom_badness (here the other one); the fault then completes; the outcome word is OOM.
    func testOOMKillerKillsTheBiggestProcess() {
        var r = run("""
            process hog
            process app
            hog mmap big 40M
            hog write big
            app mmap buf 40M
            """)
        let hogPid = r.pid("hog")
        r.step("app write buf")
        XCTAssertEqual(r.last.outcome, .oom)
        XCTAssertEqual(r.last.outcome.word, "OOM")
        XCTAssertFalse(r.meta("hog").alive)
        XCTAssertEqual(r.meta("hog").exitReason, "killed by the OOM killer (out_of_memory)")
        XCTAssertEqual(r.frames(owner: hogPid), [], "the victim's memory is freed")
        XCTAssertTrue(r.meta("app").alive)
        XCTAssertEqual(r.meta("app").rssPages, 10240)
        XCTAssertTrue(r.ptes("app", "buf").allSatisfy { $0.present && $0.writable && !$0.zero })
        XCTAssertEqual(r.state.meta.oomKills, 1)
        XCTAssertTrue(r.last.text.contains("out_of_memory() kills hog"), r.last.text)
    }

    // When the faulting process is itself the biggest, it is the victim.
    func testOOMKillerKillsTheFaultingProcessWhenItIsTheBiggest() {
        var r = run("""
            process small
            process app
            small mmap s 64K
            small write s
            app mmap buf 80M
            """)
        r.step("app write buf")
        XCTAssertEqual(r.last.outcome, .oom)
        XCTAssertFalse(r.meta("app").alive)
        XCTAssertTrue(r.meta("small").alive)
        XCTAssertEqual(r.meta("small").rssPages, 16)
        XCTAssertEqual(r.frames(owner: r.pid("app")), [])
    }

    // With swap, the same exhaustion is handled by direct reclaim: no one is killed.
    func testDirectReclaimAvoidsOOMWhenThereIsSwap() {
        // Small enough to keep swift test inside its three minutes: every fault under pressure
        // rebuilds the rmap (the speed issue's reclaim row).
        var r = run("""
            machine ram=32M swap=32M
            process hog
            process app
            hog mmap big 18M
            hog write big
            app mmap buf 18M
            """)
        r.step("app write buf")
        XCTAssertEqual(r.last.outcome, .ok)
        XCTAssertTrue(r.meta("hog").alive)
        XCTAssertEqual(r.meta("app").rssPages, 4608)
        XCTAssertGreaterThan(r.meta("hog").swapPages, 0)
        XCTAssertEqual(r.meta("hog").rssPages + r.meta("hog").swapPages, 4608)
        XCTAssertEqual(r.state.meta.oomKills, 0)
    }

    /// shrink_folio_list skips only pages that may be pinned (folio_maybe_dma_pinned, mm/vmscan.c:1254
    /// and 1343). A page held by a get_user_pages reference (FOLL_GET) is no pin: try_to_unmap
    /// replaces its PTE with a swap entry, and the extra reference keeps __remove_mapping from
    /// freeing it, so it stays in the swap cache; the next touch maps the same frame back.
    func testPagesHeldByFOLLGETAreUnmappedToTheSwapCacheAndPinnedOnesAreSkipped() throws {
        var r = scenario("""
            machine ram=64M swap=16M thp=never
            process app
            app mmap held 16K
            app write held
            app mmap pinned 16K
            app write pinned
            app pin held get
            app pin pinned
            """)
        let heldFrames = r.pageFrames("app", "held"), pinnedFrames = r.pageFrames("app", "pinned")
        let pid = r.pid("app")
        let heldVPNs = r.vpns("app", "held")
        r.assertStep("pressure 64K") { s, after in
            // held: swap entries in the PTEs, the frames still allocated, each in the swap cache
            // with a reference of its own beside the GUP one.
            for (i, vpn) in heldVPNs.enumerated() {
                let pte = after.processes[after.processIndex(named: "app")!].pt.entry(vpn: vpn)
                XCTAssertTrue(pte.isSwap, "page \(i) of held is a swap entry")
                s.processes["app"]!.pages[vpn << pageShift] = .swapEntry
                let frame = s.frames[heldFrames[i]]!
                s.frames[heldFrames[i]] = FrameView(use: .anon, flags: frame.flags, refcount: 2, mapcount: 0, pincount: 0, owner: pid)
                s.swapCache[Int32(pte.number)] = Int32(heldFrames[i])
                s.swap[pte.number] = 1
            }
            s.processes["app"]!.counters.rssPages -= 4
            s.processes["app"]!.counters.swapPages = 4
            s.machine.swapUsed = 4
            // pinned: untouched.
        }
        let rec = r.last
        XCTAssertTrue(rec.text.contains("4 pages are held by get_user_pages references (no pin)"), rec.text)
        XCTAssertTrue(rec.text.contains("4 pages that may be pinned"), rec.text)
        XCTAssertEqual(r.pageFrames("app", "pinned"), pinnedFrames)
        // The next touch finds the page in the swap cache: the same frame, no new allocation.
        XCTAssertEqual(r.step("app read held 0 4K").events[.swapIn], 1)
        XCTAssertEqual(r.pageFrames("app", "held")[0], heldFrames[0])
        assertEveryStepUndoes("""
            machine ram=64M swap=16M thp=never
            process app
            app mmap held 16K
            app write held
            app pin held get
            pressure 64K
            app write held 0 8K
            app unpin held
            pressure 64K
            app exit
            """)
    }

    func testEveryReclaimStepUndoesExactly() {
        assertEveryStepUndoes(Self.twoBuffers + """

            pressure 1M
            app read a 0 4K
            app write a 4K 4K
            app fork kid
            pressure 512K
            kid read b
            app write b
            app mmap lk 1M locked
            pressure 4M
            app munlock lk
            pressure 1M
            kid exit
            app exit
            """)
        assertEveryStepUndoes("""
            process hog
            process app
            hog mmap big 40M
            hog write big
            app mmap buf 40M
            app write buf
            app mmap more 40M
            app write more
            """)
    }
}

/// MADV_PAGEOUT (madvise_cold_or_pageout_pte_range, reclaim_pages): exactly the range goes to swap,
/// pages another process maps are left, a THP the process alone maps is split first, and pinned
/// pages stay, as cow.c's "swapped out" tests rely on.
final class PageoutTests: XCTestCase {
    func testPageoutSwapsOutExactlyTheRangeAndLeavesSharedAndPinnedPages() {
        var r = scenario("machine ram=64M swap=16M thp=never\nprocess app\napp mmap buf 64K\napp write buf")
        let rec = r.step("app madvise buf pageout 16K 16K")
        XCTAssertEqual(rec.outcome, .ok, rec.text)
        XCTAssertTrue(rec.text.contains("swaps out 4 pages"), rec.text)
        XCTAssertEqual(r.ptes("app", "buf").map(\.swapped), (0..<16).map { $0 >= 4 && $0 < 8 })
        XCTAssertEqual(r.meta("app").swapPages, 4)
        // The next touch swaps back in.
        XCTAssertEqual(r.step("app read buf 16K 4K").events[.swapIn], 1)
        // Shared with a child since fork: left alone.
        _ = r.step("app fork child")
        XCTAssertTrue(r.step("app madvise buf pageout 0 16K").text.contains("4 pages are mapped by another process too"))
        XCTAssertEqual(r.meta("app").swapPages, 3)
        // Pinned: stays.
        var s = scenario("machine ram=64M swap=16M thp=never\nprocess app\napp mmap buf 16K\napp write buf\napp pin buf")
        XCTAssertTrue(s.step("app madvise buf pageout").text.contains("4 pages that may be pinned"))
        XCTAssertEqual(s.meta("app").swapPages, 0)
        // No swap: nothing can go.
        var n = scenario("machine ram=64M thp=never\nprocess app\napp mmap buf 16K\napp write buf")
        XCTAssertTrue(n.step("app madvise buf pageout").text.contains("there is no swap"))
    }

    func testPageoutSplitsATHPTheProcessAloneMaps() {
        var r = scenario("machine ram=64M swap=16M thp=always\nprocess app\napp mmap buf 2M\napp write buf")
        let rec = r.step("app madvise buf pageout 0 8K")
        XCTAssertEqual(rec.events[.splitHugePMD], 1)
        XCTAssertEqual(r.meta("app").swapPages, 2)
        XCTAssertTrue(r.pt("app").hugePMDs.isEmpty)
        assertEveryStepUndoes("machine ram=64M swap=16M thp=always\nprocess app\napp mmap buf 2M\napp write buf\napp madvise buf pageout 0 8K\napp fork child\napp madvise buf pageout\nchild exit\napp madvise buf pageout\napp read buf\napp exit")
    }
}
