// fork and COW (reference §1.4, §1.5, §2.4, §2.6): dup_mmap, copy_present_ptes, do_wp_page's
// copy-or-reuse decision (refcount-based), MADV_DONTFORK, MADV_DONTNEED, exit.

import XCTest

@testable import Engine

final class ForkTests: XCTestCase {
    static let forked = """
        process app
        app mmap buf 64K
        app write buf
        app fork kid
        """

    // copy_present_ptes: refcount +1, mapcount +1, PageAnonExclusive cleared, both PTEs read-only.
    // The whole state is checked: the child is the parent's address space with its own page tables.
    func testForkMakesAnonPagesSharedReadOnlyInBoth() {
        var r = run("""
            process app
            app mmap buf 64K
            app write buf
            """)
        let pfns = r.pfns("app", "buf")
        let appPid = r.pid("app")
        r.assertStep("app fork kid") { s, after in
            var app = s.processes["app"]!
            for (va, e) in app.pages where !e.zero && e.pfn.map(pfns.contains) == true {
                app.pages[va] = .page(e.pfn!, writable: false)
            }
            for pfn in pfns { s.frames[pfn] = .anon(ref: 2, map: 2, exclusive: false, owner: appPid) }
            s.processes["app"] = app
            // dup_mmap: the parent's VMAs, each with an anon_vma getting one of its own, chained.
            var kid = app
            kid.tableFrames = []
            kid.counters.pageTablePages = 0
            for i in kid.vmas.indices where kid.vmas[i].anonVMA != 0 {
                kid.vmas[i].anonVMA = s.machine.nextAnonVMA
                kid.vmas[i].chainedAnonVMA = true
                s.machine.nextAnonVMA += 1
            }
            s.processes["kid"] = kid
            s.machine.nextPid += 1
            // The child's PGD, and the PUD, PMD and PTE table copy_page_range needs.
            s.addPageTables("kid", count: 4, after: after)
        }
        XCTAssertEqual(r.shares("kid", "buf", with: "app"), Array(repeating: .sharedRO, count: 16))
    }

    // The child's VMAs are the parent's (VM_LOCKED is not inherited; each VMA with an anon_vma gets its own).
    func testChildInheritsTheVMAListWithoutVMLocked() {
        var r = run("""
            machine memlock=64M
            process app
            app mmap buf 64K
            app mmap lk 64K locked
            app write buf
            """)
        r.step("app fork kid")
        let parent = r.vmas("app")
        let expected = parent.map { v -> VMAView in
            var c = v
            c.flags.remove(.locked)
            return c
        }
        XCTAssertEqual(r.vmas("kid"), expected)
        XCTAssertTrue(parent.contains { $0.flags.contains(.locked) }, "precondition: the parent has a locked VMA")
        XCTAssertEqual(r.meta("kid").lockedVMPages, 0)
    }

    // Child write: wp_page_copy gives the child a new exclusive page; the parent's page drops to
    // refcount 1, mapcount 1. The parent's later write reuses it in place (refcount == 1) and it
    // becomes exclusive again; a page still shared is copied.
    func testChildWriteCopiesThenParentWriteReusesInPlace() {
        var r = run(Self.forked)
        let pfns = r.pfns("app", "buf")
        let vas = r.vpns("app", "buf").map { $0 << pageShift }
        let appPid = r.pid("app"), kidPid = r.pid("kid")
        r.assertStep("kid write buf 0 4K") { s, after in
            let kidPage0 = after.page(1, vpn: vas[0] >> pageShift).pte.pfn ?? -1
            XCTAssertFalse(pfns.contains(kidPage0))
            s.processes["kid"]!.pages[vas[0]] = .page(kidPage0, writable: true)
            s.frames[kidPage0] = .anon(ref: 1, map: 1, exclusive: true, owner: kidPid)
            // The parent's page is mapped once now, but not exclusive: the parent is not touched.
            s.frames[pfns[0]] = .anon(ref: 1, map: 1, exclusive: false, owner: appPid)
        }
        XCTAssertEqual(r.last.events[.wpPageCopy(.sharedPage)], 1)

        // Refcount back to 1: reused in place, no allocation.
        r.assertStep("app write buf 0 4K") { s, _ in
            s.processes["app"]!.pages[vas[0]] = .page(pfns[0], writable: true)
            s.frames[pfns[0]] = .anon(ref: 1, map: 1, exclusive: true, owner: appPid)
        }
        XCTAssertEqual(r.last.events[.wpPageReuse(.refcount)], 1)

        // Still shared with the child: copied.
        r.assertStep("app write buf 4K 4K") { s, after in
            let appPage1 = after.page(0, vpn: vas[1] >> pageShift).pte.pfn ?? -1
            XCTAssertNotEqual(appPage1, pfns[1])
            s.processes["app"]!.pages[vas[1]] = .page(appPage1, writable: true)
            s.frames[appPage1] = .anon(ref: 1, map: 1, exclusive: true, owner: appPid)
            s.frames[pfns[1]] = .anon(ref: 1, map: 1, exclusive: false, owner: appPid)
        }
        XCTAssertEqual(r.shares("app", "buf", with: "kid"),
                       [.privateRW, .privateRW] + Array(repeating: .sharedRO, count: 14))
    }

    // vma_needs_copy: a VMA without an anon_vma (only ever read) is not copied; the child faults it again.
    func testVMAOnlyReadBeforeForkIsNotCopied() {
        var r = run("""
            process app
            app mmap buf 64K
            app read buf
            app fork kid
            """)
        XCTAssertEqual(r.ptes("app", "buf"), Array(repeating: .zeroPage(r.zeroPfn), count: 16))
        XCTAssertEqual(r.ptes("kid", "buf"), Array(repeating: .none, count: 16))
        XCTAssertEqual(r.meta("kid").pageTablePages, 1, "no page tables copied: only the child's PGD")
        XCTAssertTrue(r.pt("kid").tables.isEmpty)
        XCTAssertTrue(r.vmas("kid").contains { $0.start == r.buffer("kid", "buf").start }, "the VMA itself is inherited")
        r.step("kid read buf")
        XCTAssertEqual(r.ptes("kid", "buf"), Array(repeating: .zeroPage(r.zeroPfn), count: 16))
    }

    // In a VMA with an anon_vma, zero-page PTEs are copied like any other PTE (vm_normal_page is NULL:
    // no refcount to take).
    func testZeroPagePTEsAreCopiedWhenTheVMAHasAnAnonVMA() {
        var r = run("""
            process app
            app mmap buf 64K
            app read buf
            app write buf 0 4K
            """)
        let zeroBefore = r.frame(r.zeroPfn)
        r.step("app fork kid")
        let page0 = r.pfns("app", "buf")[0]
        let expected = [PTEView.page(page0, writable: false)] + Array(repeating: PTEView.zeroPage(r.zeroPfn), count: 15)
        XCTAssertEqual(r.ptes("kid", "buf"), expected)
        XCTAssertEqual(r.ptes("app", "buf"), expected)
        XCTAssertEqual(r.frame(r.zeroPfn), zeroBefore)
        XCTAssertEqual(r.meta("kid").rssPages, 1)
    }

    // copy_pte_range allocates the child's PTE table (pte_alloc_map_lock) before it looks at the
    // entries: a parent PTE table that exists in a VMA with an anon_vma is copied as a table even
    // when every entry is none (here: all zapped by MADV_DONTNEED; 6.12 keeps the empty table).
    func testForkCopiesAnExistingPTETableEvenWhenItsEntriesAreNone() {
        var r = run("""
            process app
            app mmap buf 64K
            app write buf
            app madvise buf dontneed
            """)
        XCTAssertEqual(r.pt("app").tables.count, 1, "precondition: the parent keeps its (empty) PTE table")
        XCTAssertEqual(r.ptes("app", "buf"), Array(repeating: .none, count: 16))
        r.step("app fork kid")
        XCTAssertEqual(r.meta("kid").pageTablePages, r.meta("app").pageTablePages, "PGD, PUD, PMD and PTE table, like the parent")
        XCTAssertEqual(Set(r.pt("kid").tables.keys), Set(r.pt("app").tables.keys))
    }

    // MADV_DONTFORK: the child gets no VMA for the range at all; touching it is SIGSEGV.
    // The parent's pages there are not write-protected (nothing was copied).
    func testDontforkRangeHasNoVMAInTheChild() {
        var r = run("""
            process app
            app mmap buf 64K
            app write buf
            app madvise buf dontfork 16K 16K
            app fork kid
            """)
        let s = r.buffer("app", "buf").start
        XCTAssertEqual(r.vmas("kid"), standardVMAs([.anon(s, s + 16 * KiB), .anon(s + 32 * KiB, s + 64 * KiB)]))
        let pfns = r.pfns("app", "buf")
        XCTAssertEqual(r.shares("app", "buf", with: "kid"),
                       Array(repeating: .sharedRO, count: 4) + Array(repeating: .privateRW, count: 4) + Array(repeating: .sharedRO, count: 8))
        XCTAssertEqual(pfns[4..<8].map(r.frame), Array(repeating: .anon(ref: 1, map: 1, exclusive: true, owner: r.pid("app")), count: 4))
        XCTAssertEqual(r.ptes("kid", "buf")[4..<8], ArraySlice(Array(repeating: PTEView.none, count: 4)))
        XCTAssertEqual(r.meta("kid").rssPages, 12)
        r.step("kid write buf 16K 4K")
        XCTAssertEqual(r.last.outcome, .signal("SIGSEGV"))
        XCTAssertFalse(r.meta("kid").alive)
        XCTAssertTrue(r.meta("app").alive)
    }

    // MADV_DONTNEED zaps the parent's PTEs; frames the child still maps stay allocated (refcount 1),
    // and the next parent read gets the zero page (zero-fill on demand), a child write reuses in place.
    func testDontneedDropsPagesButFramesStillMappedElsewhereStay() {
        var r = run(Self.forked)
        let pfns = r.pfns("app", "buf")
        let free = r.state.phys.freeFrames
        r.step("app madvise buf dontneed 0 16K")
        XCTAssertEqual(r.last.outcome, .ok)
        XCTAssertEqual(r.ptes("app", "buf"), Array(repeating: .none, count: 4) + pfns.dropFirst(4).map { .page($0, writable: false) })
        XCTAssertEqual(r.meta("app").rssPages, 12)
        XCTAssertEqual(pfns.prefix(4).map(r.frame), Array(repeating: .anon(ref: 1, map: 1, exclusive: false, owner: r.pid("app")), count: 4))
        XCTAssertEqual(r.state.phys.freeFrames, free, "nothing freed: the child still maps every page")
        XCTAssertEqual(r.ptes("kid", "buf"), pfns.map { .page($0, writable: false) })
        r.step("app read buf 0 4K")
        XCTAssertEqual(r.ptes("app", "buf")[0], .zeroPage(r.zeroPfn))
        r.step("kid write buf 0 4K")
        XCTAssertEqual(r.ptes("kid", "buf")[0], .page(pfns[0], writable: true), "refcount 1: reused, not copied")
        XCTAssertEqual(r.frame(pfns[0]), .anon(ref: 1, map: 1, exclusive: true, owner: r.pid("app")))
    }

    // Without another reference MADV_DONTNEED frees the frames.
    func testDontneedFreesUnsharedPages() {
        var r = run("""
            process app
            app mmap buf 64K
            app write buf
            """)
        let pfns = r.pfns("app", "buf")
        let free = r.state.phys.freeFrames
        r.step("app madvise buf dontneed")
        XCTAssertEqual(r.ptes("app", "buf"), Array(repeating: .none, count: 16))
        XCTAssertEqual(pfns.map(r.frame), Array(repeating: .free, count: 16))
        XCTAssertEqual(r.state.phys.freeFrames, free + 16, "the page table stays (6.12 does not reclaim empty PTE tables)")
        XCTAssertEqual(r.meta("app").rssPages, 0)
    }

    // exit frees every frame nobody else references (its private copies, its page tables), drops
    // its references on shared ones; then the parent's writes all reuse in place.
    func testExitFreesWhatNobodyElseReferencesAndParentThenReuses() {
        var r = run("""
            process app
            app mmap buf 64K
            app write buf
            """)
        let freeBeforeFork = r.state.phys.freeFrames
        let pfns = r.pfns("app", "buf")
        r.step("app fork kid")
        r.step("kid write buf 0 4K")
        let kidPid = r.pid("kid")
        r.step("kid exit")
        XCTAssertEqual(r.last.outcome, .ok)
        XCTAssertFalse(r.meta("kid").alive)
        XCTAssertEqual(r.frames(owner: kidPid), [], "the child's copy and page tables are freed")
        XCTAssertEqual(r.meta("kid").pageTablePages, 0)
        XCTAssertEqual(r.meta("kid").rssPages, 0)
        XCTAssertEqual(r.state.phys.freeFrames, freeBeforeFork)
        XCTAssertEqual(pfns.map(r.frame), Array(repeating: .anon(ref: 1, map: 1, exclusive: false, owner: r.pid("app")), count: 16))
        r.step("app write buf")
        XCTAssertEqual(r.ptes("app", "buf"), pfns.map { .page($0, writable: true) }, "all reused in place")
        XCTAssertEqual(pfns.map(r.frame), Array(repeating: .anon(ref: 1, map: 1, exclusive: true, owner: r.pid("app")), count: 16))
        XCTAssertEqual(r.state.phys.freeFrames, freeBeforeFork)
        XCTAssertEqual(r.last.events[.wpPageReuse(.refcount)], 16)
    }

    // The parent exiting first leaves the child the sole user; the child's writes reuse.
    func testParentExitLeavesTheChildSoleOwner() {
        var r = run(Self.forked)
        let pfns = r.pfns("app", "buf")
        r.step("app exit")
        XCTAssertEqual(pfns.map { r.frame($0).refcount }, Array(repeating: 1, count: 16))
        XCTAssertEqual(pfns.map { r.frame($0).mapcount }, Array(repeating: 1, count: 16))
        r.step("kid write buf")
        XCTAssertEqual(r.ptes("kid", "buf"), pfns.map { .page($0, writable: true) })
    }

    func testEveryForkStepUndoesExactly() {
        assertEveryStepUndoes("""
            machine memlock=64M
            process app
            app mmap buf 64K
            app mmap ro 64K
            app mmap lk 64K locked
            app read ro
            app read buf
            app write buf 0 32K
            app madvise buf dontfork 32K 16K
            app fork kid
            kid write buf 0 4K
            app write buf 0 4K
            app write buf 4K 4K
            kid write buf 32K 4K
            app madvise buf dofork 32K 16K
            app madvise buf dontneed 0 16K
            app read buf 0 4K
            kid write buf 8K 4K
            kid exit
            app write buf
            app exit
            """)
    }
}
