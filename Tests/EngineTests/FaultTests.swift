// Demand paging of anonymous memory (reference §1.1–1.3): zero page on read, a fresh exclusive
// page on write, wp_page_copy after the zero page, SIGSEGV outside the VMAs, lazily allocated
// page tables, and shared anonymous memory (shmem) that has no zero page.

import XCTest

@testable import Engine

final class FaultTests: XCTestCase {
    static let readScript = """
        process app
        app mmap buf 64K
        app read buf
        """

    // §1.1: a special PTE to the zero page, read-only; no refcount/mapcount taken, no RSS, no anon_vma.
    // The whole state is checked: besides the PTEs, only the first touch's page tables change.
    func testReadOfUntouchedPrivatePageMapsTheZeroPageReadOnly() {
        var r = run("""
            process app
            app mmap buf 64K
            """)
        let vas = r.vpns("app", "buf").map { $0 << pageShift }
        r.assertStep("app read buf") { s, after in
            for va in vas { s.processes["app"]!.pages[va] = .zeroPage(Int(s.machine.zeroPfn)) }
            // PUD, PMD and PTE table for the first touch of the mmap area; nothing else is allocated,
            // the zero page's counts do not move, and the VMA gets no anon_vma.
            s.addPageTables("app", count: 3, after: after)
        }
        XCTAssertEqual(r.last.events[.zeroPageMapped], 16)
    }

    // §1.2: a zeroed page, PageAnonExclusive, mapcount 1, refcount 1, writable PTE, MM_ANONPAGES +1 each.
    func testWriteOfUntouchedPageAllocatesAnExclusiveWritablePage() {
        var r = run("""
            process app
            app mmap buf 64K
            """)
        let vas = r.vpns("app", "buf").map { $0 << pageShift }
        let pid = r.pid("app")
        let v = r.meta("app").vmaIndex(containing: vas[0])!
        r.assertStep("app write buf") { s, after in
            let pfns = vas.map { va in after.page(0, vpn: va >> pageShift).pte.pfn ?? -1 }
            XCTAssertEqual(Set(pfns).count, 16, "every page gets its own frame")
            XCTAssertFalse(pfns.contains(Int(s.machine.zeroPfn)))
            for (va, pfn) in zip(vas, pfns) {
                s.processes["app"]!.pages[va] = .page(pfn, writable: true)
                s.frames[pfn] = .anon(ref: 1, map: 1, exclusive: true, owner: pid)
            }
            s.processes["app"]!.counters.rssPages += 16
            s.addPageTables("app", count: 3, after: after)
            // A write fault prepares the VMA's anon_vma.
            s.processes["app"]!.vmas[v].anonVMA = s.machine.nextAnonVMA
            s.machine.nextAnonVMA += 1
        }
    }

    // §1.3: write after read goes through do_wp_page → wp_page_copy; the zero page stays untouched.
    func testWriteAfterReadReplacesTheZeroPageWithANewPage() {
        var r = run(Self.readScript)
        let zeroBefore = r.frame(r.zeroPfn)
        r.step("app write buf 0 16K")
        XCTAssertEqual(r.last.outcome, .ok)
        let ptes = r.ptes("app", "buf")
        let fresh = ptes.prefix(4).compactMap(\.pfn)
        XCTAssertEqual(Set(fresh).count, 4)
        XCTAssertFalse(fresh.contains(r.zeroPfn))
        XCTAssertEqual(ptes, fresh.map { PTEView.page($0, writable: true) } + Array(repeating: .zeroPage(r.zeroPfn), count: 12))
        XCTAssertEqual(fresh.map(r.frame), Array(repeating: .anon(ref: 1, map: 1, exclusive: true, owner: r.pid("app")), count: 4))
        XCTAssertEqual(r.frame(r.zeroPfn), zeroBefore)
        XCTAssertEqual(r.meta("app").rssPages, 4)
        XCTAssertEqual(r.last.events[.wpPageCopy(.zeroPage)], 4)
    }

    // A read of pages already mapped writable takes no fault and changes nothing.
    func testReadAfterWriteTakesNoFault() {
        var r = run("""
            process app
            app mmap buf 64K
            app write buf
            """)
        let before = r.state
        r.step("app read buf")
        XCTAssertEqual(r.last.outcome, .ok)
        XCTAssertTrue(r.state == before, stateDiff(r.state, before))
        XCTAssertTrue(r.last.changes.isEmpty)
        XCTAssertEqual(r.last.events.happened.map(\.event), [.alreadyMapped])
        XCTAssertEqual(r.last.counts.first?.1, 16)
    }

    /// A machine with process `app` holding `ro`, a pointer into its program image's read-only
    /// segment (r--p), as `const` data would be. No script command makes a read-only mapping.
    static func engineWithReadOnlyBuffer() -> Engine {
        var t = Timeline(engine: Engine(config: MachineConfig()))
        t.apply(try! parseStatement("process app")!)
        var engine = t.engine
        var j = StepJournal()
        engine.bufferAppend(0, Buffer(name: "ro", start: imageBase + 0x2000, size: 4096, kind: .heap,
                                      chunkStart: imageBase + 0x2000, chunkSize: 4096), &j)
        return engine
    }

    // A write to a mapping without PROT_WRITE: SIGSEGV, whose default action kills the process;
    // exit_mmap then frees every frame it held.
    func testWriteToReadOnlyMappingIsSIGSEGVAndKillsTheProcess() {
        let bootFree = Engine(config: MachineConfig()).state.phys.freeFrames
        let engine = Self.engineWithReadOnlyBuffer()
        var r = EngineRun(timeline: Timeline(engine: engine))
        r.step("app mmap buf 64K")
        r.step("app write buf")
        XCTAssertEqual(r.meta("app").rssPages, 16)
        let pid = r.pid("app")
        r.step("app write ro")
        XCTAssertEqual(r.last.outcome, .signal("SIGSEGV"))
        XCTAssertEqual(r.last.outcome.word, "SIGSEGV")
        XCTAssertFalse(r.meta("app").alive)
        XCTAssertEqual(r.meta("app").exitReason, "killed by SIGSEGV")
        XCTAssertEqual(r.frames(owner: pid), [], "the killed process's frames are all freed")
        XCTAssertEqual(r.state.phys.freeFrames, bootFree)
        XCTAssertEqual(r.meta("app").rssPages, 0)
        XCTAssertEqual(r.meta("app").pageTablePages, 0)
        r.step("app read buf")
        XCTAssertEqual(r.last.outcome, .errno("ESRCH"), "a dead process runs nothing")
    }

    // An address in no VMA (the middle of a buffer was unmapped): the CPU touches the pages before
    // the hole, then SIGSEGV kills the process and everything goes back to the buddy allocator.
    func testWriteToUnmappedAddressIsSIGSEGVAndFreesEverything() {
        var r = run("""
            process app
            app mmap buf 64K
            app munmap buf 16K 16K
            """)
        let bootLists = freeBlockSets(Engine(config: MachineConfig()).state)
        let pid = r.pid("app")
        r.step("app write buf")
        XCTAssertEqual(r.last.outcome, .signal("SIGSEGV"))
        XCTAssertFalse(r.meta("app").alive)
        XCTAssertEqual(r.frames(owner: pid), [])
        XCTAssertEqual(freeBlockSets(r.state), bootLists, "every frame merged back into the boot-time blocks")
    }

    // Page tables are allocated lazily, level by level (__pte_alloc, __pmd_alloc, __pud_alloc):
    // a new 2 MiB region costs a PTE table, a new 1 GiB region a PMD table as well.
    func testPageTablePagesAreAllocatedOnFirstTouchOfEachRegion() {
        var r = run("""
            process app
            app mmap big 2G
            """)
        let start = r.buffer("app", "big").start
        // Precondition: nothing in the address space has page tables yet (the model's execve touches
        // no page), so the first touch finds every level empty.
        XCTAssertTrue(r.pt("app").upper.isEmpty && r.pt("app").tables.isEmpty)
        XCTAssertEqual(r.meta("app").pageTablePages, 1, "the PGD")
        XCTAssertEqual(r.frames(use: .pagetable), [Int(r.pt("app").pgd)])

        func check(_ expected: Int, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
            let pt = r.pt("app")
            let tables = tableFrames(pt)
            XCTAssertEqual(r.meta("app").pageTablePages, expected, what, file: file, line: line)
            XCTAssertEqual(tables.count, expected, what, file: file, line: line)
            XCTAssertEqual(Set(r.frames(use: .pagetable)), tables, "every table is a pagetable frame: " + what, file: file, line: line)
            XCTAssertEqual(tables.map { r.frame($0).owner }, Array(repeating: r.pid("app"), count: expected), file: file, line: line)
        }
        r.step("app write big 0 4K")
        check(4, "PGD + PUD + PMD + PTE table")
        XCTAssertNotNil(r.pt("app").tables[start >> 21])
        r.step("app write big 4K 4K")
        check(4, "same 2 MiB region: no new table")
        XCTAssertEqual((start + 2 * MiB) >> 30, start >> 30, "precondition: same 1 GiB region")
        r.step("app write big 2M 4K")
        check(5, "new 2 MiB region in the same 1 GiB: one PTE table")
        let gig = alignUp(start + 1, GiB) - start
        XCTAssertLessThan(gig, 2 * GiB)
        r.step("app write big \(gig) 4K")
        check(7, "new 1 GiB region: a PMD table and a PTE table")
        XCTAssertEqual(r.pt("app").upper.count, 3, "one PUD table and two PMD tables")
    }

    // Shared anonymous memory is shmem: no zero page, a read allocates a real page in the page cache.
    func testSharedAnonymousReadAllocatesARealPage() {
        var r = run("""
            process app
            app mmap sh 64K shared
            """)
        r.step("app read sh 0 8K")
        XCTAssertEqual(r.last.outcome, .ok)
        let pfns = r.pfns("app", "sh")
        XCTAssertEqual(pfns.count, 2)
        XCTAssertFalse(pfns.contains(r.zeroPfn))
        // A shared writable mapping's vm_page_prot is writable (shmem needs no write notification).
        XCTAssertEqual(r.ptes("app", "sh"), pfns.map { PTEView.page($0, writable: true) } + Array(repeating: .none, count: 14))
        // One reference for the page cache, one for the mapping.
        let pid = r.pid("app")
        XCTAssertEqual(pfns.map(r.frame), Array(repeating: FrameView(use: .shmem, flags: 0, refcount: 2, mapcount: 1, pincount: 0, owner: pid), count: 2))
        XCTAssertEqual(r.meta("app").rssPages, 2, "MM_SHMEMPAGES counts in RSS")
    }

    // fork does not copy the page tables of a shared mapping (no anon_vma: vma_needs_copy is false);
    // the child faults the same page-cache pages in, and writes go to the same frames (no COW).
    func testForkSharesSharedAnonymousMemoryWithoutCopyingPageTables() {
        var r = run("""
            process app
            app mmap sh 64K shared
            app write sh 0 8K
            app fork kid
            """)
        let pfns = r.pfns("app", "sh")
        XCTAssertEqual(r.ptes("kid", "sh"), Array(repeating: .none, count: 16), "no PTEs copied at fork")
        XCTAssertEqual(r.meta("kid").pageTablePages, 1, "the child has only its PGD")
        XCTAssertEqual(r.meta("kid").rssPages, 0)
        r.step("kid read sh 0 8K")
        XCTAssertEqual(r.pfns("kid", "sh"), pfns, "the child maps the parent's frames")
        XCTAssertEqual(pfns.map { r.frame($0).mapcount }, [2, 2])
        XCTAssertEqual(pfns.map { r.frame($0).refcount }, [3, 3])
        r.step("kid write sh 0 8K")
        XCTAssertEqual(r.shares("kid", "sh", with: "app"),
                       Array(repeating: ShareView(present: true, zero: false, writable: true, sharedWithOther: true), count: 2)
                           + Array(repeating: .none, count: 14))
    }

    // A read fault on shared memory goes through do_read_fault, which first maps the neighbouring
    // pages already in the page cache (do_fault_around → filemap_map_pages, fault_around_bytes 64 KiB,
    // clamped to the VMA and the PTE table): the child's first read maps all 16 cached pages.
    func testReadOfSharedMemoryFaultsAroundPagesAlreadyInThePageCache() {
        var r = run("""
            process app
            app mmap sh 64K shared
            app write sh
            app fork kid
            """)
        let pfns = r.pfns("app", "sh")
        r.step("kid read sh 0 4K")
        XCTAssertEqual(r.ptes("kid", "sh"), pfns.map { .page($0, writable: true) })
        XCTAssertEqual(pfns.map { r.frame($0).mapcount }, Array(repeating: 2, count: 16))
        XCTAssertEqual(r.meta("kid").rssPages, 16)
    }

    // When the last mapping of a MAP_SHARED|MAP_ANONYMOUS region goes, the shmem file is released
    // and its pages are freed: nothing else references them.
    func testSharedAnonymousPagesAreFreedWhenTheLastMapperExits() {
        var r = run("""
            process app
            app mmap sh 64K shared
            app write sh
            app fork kid
            kid read sh
            """)
        let bootFree = Engine(config: MachineConfig()).state.phys.freeFrames
        r.step("kid exit")
        XCTAssertEqual(r.frames(use: .shmem).count, 16, "the parent still maps them")
        r.step("app exit")
        XCTAssertEqual(r.frames(use: .shmem), [], "shmem pages nobody maps or names are freed with the file")
        XCTAssertEqual(r.state.phys.freeFrames, bootFree)
    }

    func testEveryFaultStepUndoesExactly() {
        assertEveryStepUndoes("""
            process app
            app mmap buf 64K
            app read buf
            app write buf 0 16K
            app write buf
            app read buf
            app mmap big 2G
            app write big 0 4K
            app write big 2M 4K
            app write big 1G 4K
            app mmap sh 64K shared
            app read sh 0 8K
            app fork kid
            kid read sh
            kid write sh
            kid exit
            app munmap buf 16K 16K
            app write buf
            """)
    }

    func testSIGSEGVOnReadOnlyMappingUndoesExactly() {
        assertEveryStepUndoes("""
            app mmap buf 64K
            app write buf
            app write ro
            app read buf
            """, startingFrom: Self.engineWithReadOnlyBuffer())
    }
}
