// Transparent huge pages (reference §7.3, §1.1 item 3, §1.5): do_huge_pmd_anonymous_page,
// the huge zero page, fallback to 4 KiB, COW of a THP after fork, 2 MiB alignment of mmap.

import XCTest

@testable import Engine

final class THPTests: XCTestCase {
    /// Checks a PMD-mapped THP at the start of `buf`: one order-9 block, head/tail flags, aligned.
    private func assertTHP(_ r: EngineRun, _ proc: String, _ buf: String, offsetPages: Int = 0, writable: Bool, ref: Int32, map: Int32,
                           exclusive: Bool, file: StaticString = #filePath, line: UInt = #line) {
        let vpn0 = r.vpns(proc, buf)[offsetPages]
        guard let pmd = r.pt(proc).hugePMDs[vpn0 >> 9] else { return XCTFail("no huge PMD", file: file, line: line) }
        let head = pmd.number
        XCTAssertEqual(head % 512, 0, "an order-9 block is aligned to 512 frames", file: file, line: line)
        XCTAssertEqual(r.ptes(proc, buf)[offsetPages..<offsetPages + 512].map { $0 },
                       (0..<512).map { PTEView.page(head + $0, writable: writable, huge: true) }, file: file, line: line)
        let owner = r.frame(head).owner
        XCTAssertEqual((0..<512).map { r.frame(head + $0) },
                       (0..<512).map { FrameView.anon(ref: ref, map: map, exclusive: exclusive, owner: owner,
                                                     flags: $0 == 0 ? FrameFlag.head : FrameFlag.tail) },
                       file: file, line: line)
    }

    // A write fault in a 2 MiB-aligned range wholly inside an eligible VMA maps one order-9 block
    // with one PMD (plus a deposited PTE table).
    func testWriteFaultMapsOneOrder9BlockWithThpAlways() {
        var r = run("""
            machine thp=always
            process app
            app mmap buf 4M
            """)
        let buddyBefore = r.state.phys.freeBlocks
        let vpns = r.vpns("app", "buf")
        let pid = r.pid("app")
        let v = r.meta("app").vmaIndex(containing: vpns[0] << pageShift)!
        XCTAssertEqual(r.buffer("app", "buf").start % (2 * MiB), 0)
        // The whole state: one PMD maps 512 frames of one block, nothing else of the buffer is touched.
        r.assertStep("app write buf 0 4K") { s, after in
            let head = after.page(0, vpn: vpns[0]).pte.pfn ?? -1
            XCTAssertEqual(head % 512, 0, "an order-9 block is aligned to 512 frames")
            for i in 0..<512 {
                s.processes["app"]!.pages[vpns[i] << pageShift] = .page(head + i, writable: true, huge: true)
                s.frames[head + i] = .anon(ref: 1, map: 1, exclusive: true, owner: pid, flags: i == 0 ? FrameFlag.head : FrameFlag.tail)
            }
            s.processes["app"]!.counters.rssPages = 512
            s.processes["app"]!.vmas[v].anonVMA = s.machine.nextAnonVMA
            s.machine.nextAnonVMA += 1
            // PUD, PMD table and the deposited PTE table (the PGD was there).
            s.addPageTables("app", count: 3, after: after)
        }
        XCTAssertEqual(r.pt("app").hugePMDs.count, 1, "one PMD for the touched 2 MiB only")
        // The block came from an order ≥ 9 free block.
        let usedOrders = (pmdOrder...maxPageOrder).filter { r.state.phys.freeBlocks[$0] < buddyBefore[$0] }
        XCTAssertEqual(usedOrders.count, 1)
    }

    func testWriteFaultMapsATHPWithThpMadviseAndHugepage() {
        var r = run("""
            process app
            app mmap buf 4M hugepage
            app mmap plain 4M
            """)
        r.step("app write buf 2M 4K")
        assertTHP(r, "app", "buf", offsetPages: 512, writable: true, ref: 1, map: 1, exclusive: true)
        r.step("app write plain 2M 4K")
        XCTAssertTrue(r.pt("app").hugePMDs.keys.allSatisfy { $0 != r.vpns("app", "plain")[512] >> 9 },
                      "thp=madvise: no THP without MADV_HUGEPAGE")
        XCTAssertEqual(r.ptes("app", "plain").filter(\.present).count, 1)
    }

    // A read fault maps the huge zero folio read-only with a PMD: no RSS, one global folio.
    func testReadFaultMapsTheHugeZeroPage() {
        var r = run("""
            machine thp=always
            process app
            process other
            app mmap buf 4M
            other mmap buf 4M
            """)
        r.step("app read buf 0 4K")
        let hz = Int(r.state.meta.hugeZeroPfn)
        XCTAssertGreaterThanOrEqual(hz, 0)
        XCTAssertEqual(hz % 512, 0)
        XCTAssertEqual(r.ptes("app", "buf"), (0..<512).map { PTEView(present: true, zero: true, writable: false, huge: true, pfn: hz + $0) }
                           + Array(repeating: .none, count: 512))
        XCTAssertEqual((0..<512).map { r.state.phys.frameUse(hz + $0) }, Array(repeating: .zero, count: 512))
        XCTAssertEqual(r.meta("app").rssPages, 0)
        XCTAssertEqual(r.meta("app").pageTablePages, 4, "the huge zero PMD has a deposited PTE table too")
        r.step("other read buf 0 4K")
        XCTAssertEqual(r.pt("other").entry(vpn: r.vpns("other", "buf")[0]).number, hz, "the same huge zero folio")
    }

    // do_huge_pmd_wp_page on the huge zero PMD: split (512 small zero-page PTEs), then wp_page_copy 4 KiB.
    func testWriteToHugeZeroPageSplitsAndCopies4K() {
        var r = run("""
            machine thp=always
            process app
            app mmap buf 4M
            app read buf 0 4K
            """)
        r.step("app write buf 4K 4K")
        XCTAssertEqual(r.last.outcome, .ok)
        XCTAssertTrue(r.pt("app").hugePMDs.isEmpty, "the huge zero PMD is split")
        let ptes = r.ptes("app", "buf")
        guard let fresh = ptes[1].pfn else { return XCTFail("page 1 not mapped") }
        XCTAssertEqual(Array(ptes[0..<512]),
                       [.zeroPage(r.zeroPfn), .page(fresh, writable: true)] + Array(repeating: .zeroPage(r.zeroPfn), count: 510))
        XCTAssertEqual(r.frame(fresh), .anon(ref: 1, map: 1, exclusive: true, owner: r.pid("app")), "a small page, not a THP")
        XCTAssertEqual(r.meta("app").rssPages, 1)
    }

    // thp_vma_suitable_order: only 2 MiB ranges wholly inside the VMA get a THP; the rest is 4 KiB.
    func testRangesNotWhollyInsideTheVMAFallBackTo4K() {
        var r = run("""
            machine thp=always
            process app
            app mmap buf 5M
            """)
        let b = r.buffer("app", "buf")
        XCTAssertNotEqual(b.start % (2 * MiB), 0, "precondition: 5 MiB is not a multiple of 2 MiB, so not aligned")
        r.step("app write buf")
        let regions = Set((b.start >> 21)...((b.start + b.size - 1) >> 21))
        let whole = Set(regions.filter { $0 << 21 >= b.start && ($0 + 1) << 21 <= b.start + b.size })
        XCTAssertEqual(whole.count, 1, "precondition: exactly one whole 2 MiB range")
        XCTAssertEqual(Set(r.pt("app").hugePMDs.keys), whole)
        let ptes = r.ptes("app", "buf")
        XCTAssertEqual(ptes.map(\.huge), r.vpns("app", "buf").map { whole.contains($0 >> 9) })
        XCTAssertTrue(ptes.allSatisfy { $0.present && $0.writable && !$0.zero })
        XCTAssertEqual(r.meta("app").rssPages, 1280)
        let small = zip(ptes, r.vpns("app", "buf")).filter { !whole.contains($0.1 >> 9) }.map { $0.0.pfn! }
        XCTAssertTrue(small.allSatisfy { r.frame($0) == .anon(ref: 1, map: 1, exclusive: true, owner: r.pid("app")) })
    }

    // No free order-9 block (fragment=100): vma_alloc_folio fails, the fault falls back to 4 KiB pages;
    // the huge zero folio cannot be allocated either, so a read maps the small zero page.
    func testWithoutAFreeOrder9BlockTheFaultFallsBackTo4K() {
        var r = run("""
            machine thp=always fragment=100
            process app
            app mmap buf 4M
            """)
        XCTAssertEqual(freeFramesInBlocks(r.state, atLeast: pmdOrder), 0, "precondition: no free block of order ≥ 9")
        r.step("app write buf 0 8K")
        XCTAssertEqual(r.last.outcome, .ok)
        XCTAssertTrue(r.pt("app").hugePMDs.isEmpty)
        let pfns = r.pfns("app", "buf")
        XCTAssertEqual(r.ptes("app", "buf"), pfns.map { .page($0, writable: true) } + Array(repeating: .none, count: 1022))
        XCTAssertEqual(pfns.map(r.frame), Array(repeating: .anon(ref: 1, map: 1, exclusive: true, owner: r.pid("app")), count: 2))
        XCTAssertGreaterThan(r.last.events[.thpFallback], 0)
        r.step("app read buf 2M 4K")
        XCTAssertEqual(r.ptes("app", "buf")[512], .zeroPage(r.zeroPfn))
        XCTAssertEqual(r.state.meta.hugeZeroPfn, -1)
    }

    // copy_huge_pmd shares the THP read-only; a write copies only the faulting 4 KiB subpage
    // (large folios are never reused in 6.12), splitting the PMD in the writer only.
    func testAfterForkAWriteToATHPCopiesOnlyThat4KSubpage() {
        var r = run("""
            machine thp=always
            process app
            app mmap buf 4M
            app write buf 0 2M
            app fork kid
            """)
        assertTHP(r, "app", "buf", writable: false, ref: 2, map: 2, exclusive: false)
        assertTHP(r, "kid", "buf", writable: false, ref: 2, map: 2, exclusive: false)
        let head = r.pt("app").hugePMDs.values.first!.number
        r.step("kid write buf 8K 4K")
        XCTAssertEqual(r.last.outcome, .ok)
        XCTAssertTrue(r.pt("kid").hugePMDs.isEmpty, "the child's PMD is split")
        let kid = r.ptes("kid", "buf")
        guard let copy = kid[2].pfn else { return XCTFail("page 2 not mapped") }
        XCTAssertTrue(copy < head || copy >= head + 512)
        XCTAssertEqual(Array(kid[0..<512]), (0..<512).map { $0 == 2 ? .page(copy, writable: true) : .page(head + $0, writable: false) })
        XCTAssertEqual(r.frame(copy), .anon(ref: 1, map: 1, exclusive: true, owner: r.pid("kid")))
        // The parent still maps the whole THP read-only through its PMD; only subpage 2 lost the child's mapping.
        XCTAssertEqual(Array(r.ptes("app", "buf")[0..<512]), (0..<512).map { PTEView.page(head + $0, writable: false, huge: true) })
        let appPid = r.pid("app")
        XCTAssertEqual((0..<512).map { r.frame(head + $0) },
                       (0..<512).map { FrameView.anon(ref: $0 == 2 ? 1 : 2, map: $0 == 2 ? 1 : 2, exclusive: false, owner: appPid,
                                                     flags: $0 == 0 ? FrameFlag.head : FrameFlag.tail) })
        XCTAssertEqual(r.meta("kid").rssPages, 512)
        XCTAssertEqual(r.pt("app").hugePMDs.count, 1, "the parent keeps its PMD")
    }

    // do_huge_pmd_wp_page: once the child is gone the folio's refcount is 1 again, so the parent's
    // write reuses the whole THP in place (PMD made writable, no split, no copy).
    func testAfterTheChildExitsTheParentReusesTheWholeTHP() {
        var r = run("""
            machine thp=always
            process app
            app mmap buf 4M
            app write buf 0 2M
            app fork kid
            kid exit
            """)
        assertTHP(r, "app", "buf", writable: false, ref: 1, map: 1, exclusive: false)
        let free = r.state.phys.freeFrames
        r.step("app write buf 4K 4K")
        XCTAssertEqual(r.last.outcome, .ok)
        assertTHP(r, "app", "buf", writable: true, ref: 1, map: 1, exclusive: true)
        XCTAssertEqual(r.state.phys.freeFrames, free, "nothing allocated")
    }

    // 6.12 aligns an anonymous private mmap whose length is a multiple of 2 MiB to 2 MiB
    // (__thp_get_unmapped_area); other lengths, and kernel=legacy, are placed right below mmap_base.
    func testMmapAlignmentOfMultiplesOf2MiB() {
        let r = run("""
            process app
            app mmap a 4M
            app mmap b 4100K
            """)
        let a = r.buffer("app", "a").start
        XCTAssertEqual(a, alignDown(mmapBaseDefault - 4 * MiB, 2 * MiB))
        XCTAssertEqual(r.buffer("app", "b").start, a - 4100 * KiB, "not a multiple of 2 MiB: right below the previous mapping")
        let legacy = run("""
            machine kernel=legacy
            process app
            app mmap a 4M
            """)
        XCTAssertEqual(legacy.buffer("app", "a").start, mmapBaseDefault - 4 * MiB)
        XCTAssertNotEqual(legacy.buffer("app", "a").start % (2 * MiB), 0)
    }

    // exit unmaps the THP whole; its block and deposited table go back and merge.
    func testExitReturnsTheTHPBlockToTheBuddyAllocator() {
        var r = run("""
            machine thp=always
            process app
            app mmap buf 4M
            app write buf
            """)
        XCTAssertEqual(r.pt("app").hugePMDs.count, 2)
        let boot = freeBlockSets(Engine(config: MachineConfig(parseMachine("machine thp=always"))).state)
        r.step("app exit")
        XCTAssertEqual(freeBlockSets(r.state), boot)
    }

    func testEveryTHPStepUndoesExactly() {
        assertEveryStepUndoes("""
            machine thp=always
            process app
            app mmap buf 4M
            app mmap odd 5M
            app read buf 0 4K
            app write buf 4K 4K
            app write buf 2M 2M
            app write odd
            app fork kid
            kid write buf 2M 4K
            app write buf 3M 4K
            app madvise buf dontneed 2M 1M
            kid exit
            app munmap odd
            app exit
            """)
        assertEveryStepUndoes("""
            machine thp=always fragment=100
            process app
            app mmap buf 4M
            app read buf 0 4K
            app write buf 0 8K
            """)
    }
}

func parseMachine(_ line: String) -> MachineDecl? {
    guard case let .machine(d)? = (try? parseStatement(line))?.kind else { return nil }
    return d
}

/// The huge zero folio as 6.12 treats it: is_zero_folio is the 4 KiB zero page only, so a
/// short-term read-only pin of a huge zero PMD pins the folio (refcount +1 and a pin count, as a
/// large folio); and each mm that maps it holds one reference on huge_zero_refcount
/// (MMF_HUGE_ZERO_PAGE), taken at its first huge zero PMD or at fork, dropped at exit.
final class HugeZeroFolioTests: XCTestCase {
    let setup = """
        machine ram=64M thp=always
        process app
        app mmap buf 4M
        app read buf
        """

    func testAReadOnlyPinOfTheHugeZeroPMDPinsTheFolio() throws {
        var r = scenario(setup)
        let hz = Int(r.state.meta.hugeZeroPfn)
        XCTAssertGreaterThanOrEqual(hz, 0)
        let before = (r.state.phys.refcount[hz], r.state.phys.pincount[hz])
        let rec = r.step("app pin buf 0 8K")
        XCTAssertEqual(rec.outcome, .ok)
        XCTAssertEqual(r.state.phys.refcount[hz], before.0 + 1, "a large folio: refcount +1 per pin, not +1024")
        XCTAssertEqual(r.state.phys.pincount[hz], before.1 + 1)
        XCTAssertEqual(r.state.phys.pincount[hz + 1], 1)
        XCTAssertTrue(rec.text.contains("pages of the huge zero folio, which is pinned"), rec.text)
        XCTAssertFalse(rec.text.contains("never pinned"), rec.text)
        _ = r.step("app unpin buf")
        XCTAssertEqual(r.state.phys.refcount[hz], before.0)
        XCTAssertEqual(r.state.phys.pincount[hz], 0)
        // The 4 KiB zero page is still never pinned.
        var small = scenario("machine ram=64M thp=never\nprocess app\napp mmap buf 64K\napp read buf")
        let z = small.zeroPfn
        let refs = small.state.phys.refcount[z]
        XCTAssertTrue(small.step("app pin buf").text.contains("16 zero pages are returned but never pinned"))
        XCTAssertEqual(small.state.phys.refcount[z], refs)
    }

    func testEachMMHoldsOneHugeZeroReference() {
        var r = scenario(setup)
        XCTAssertEqual(r.state.meta.hugeZeroRefcount, 2, "the folio's own and app's (two PMDs, one mm)")
        XCTAssertTrue(r.meta("app").hugeZeroPage)
        _ = r.step("app fork child")
        XCTAssertEqual(r.state.meta.hugeZeroRefcount, 3, "copy_huge_pmd takes one for the child's mm")
        _ = r.step("child exit")
        XCTAssertEqual(r.state.meta.hugeZeroRefcount, 2, "mm_put_huge_zero_folio at exit")
        _ = r.step("app exit")
        XCTAssertEqual(r.state.meta.hugeZeroRefcount, 1, "only the folio's own: what the shrinker waits for")
        // Memory pressure runs the shrinker: the folio goes back to the buddy allocator.
        let head = Int(r.state.meta.hugeZeroPfn)
        let p = r.step("pressure 4K")
        XCTAssertTrue(p.text.contains("shrink_huge_zero_page_scan"), p.text)
        XCTAssertEqual(r.state.meta.hugeZeroPfn, -1)
        XCTAssertEqual(r.state.meta.hugeZeroRefcount, 0)
        XCTAssertEqual(r.state.phys.frameUse(head), .free)
        // The next huge zero read allocates it again.
        _ = r.step("process again")
        _ = r.step("again mmap z 4M hugepage")
        XCTAssertEqual(r.step("again read z").events[.hugeZeroPageMapped], 2)
        XCTAssertGreaterThanOrEqual(r.state.meta.hugeZeroPfn, 0)
        XCTAssertEqual(r.state.meta.hugeZeroRefcount, 2)
        assertEveryStepUndoes(setup + "\napp pin buf 0 8K\napp fork child\nchild read buf\nchild exit\napp unpin buf\napp exit\npressure 4K\nprocess b\nb mmap z 2M hugepage\nb read z")
    }
}

/// thp-defrag (vma_thp_gfp_mask, mm/huge_memory.c:1283): whether a THP fault that finds no free
/// order-9 block compacts (and reclaims) before it falls back. The default, madvise, does so for
/// MADV_HUGEPAGE VMAs only.
final class THPDefragTests: XCTestCase {
    /// Movable memory with a hole in every other 2 MiB, page tables kept together in one block:
    /// no free order-9 block, but compaction can make one.
    func script(defrag: String?, hugepage: Bool) -> String {
        var lines = ["machine ram=16M thp=\(hugepage ? "madvise" : "always")" + (defrag.map { " thp-defrag=\($0)" } ?? ""), "process hog",
                     "hog mmap big 12M", "hog madvise big nohugepage"]
        lines += stride(from: 0, to: 12, by: 2).map { "hog write big \($0)M 4K" }
        lines.append("hog write big")
        lines += stride(from: 0, to: 8, by: 2).map { "hog madvise big dontneed \($0)M 1M" }
        lines += ["process app", "app mmap buf 2M" + (hugepage ? " hugepage" : ""), "app write buf 0 4K"]
        return lines.joined(separator: "\n")
    }

    func testMadviseCompactsForHugepageVMAsAndTheOthersFallBack() throws {
        // (thp-defrag, a VM_HUGEPAGE VMA, compacts first?)
        let cases: [(String?, Bool, Bool)] = [(nil, true, true), ("madvise", true, true), ("defer+madvise", true, true),
                                              ("always", false, true), ("madvise", false, false), ("defer", true, false),
                                              ("never", true, false)]
        for (defrag, hugepage, compacts) in cases {
            let r = run(script(defrag: defrag, hugepage: hugepage))
            guard r.records.count > 2 else { return XCTFail("the script did not run") }
            let before = r.records[r.records.count - 2]
            XCTAssertEqual(before.outcome, .ok, before.text)
            let rec = r.last
            let label = "thp-defrag=\(defrag ?? "default") \(hugepage ? "MADV_HUGEPAGE" : "no madvise")"
            XCTAssertEqual(rec.events[.thpDirectCompaction], compacts ? 1 : 0, "\(label): \(rec.text)")
            XCTAssertEqual(rec.events[.hugeAnonymousPage], compacts ? 1 : 0, "\(label): compaction made the block")
            XCTAssertEqual(rec.events[.thpFallback], compacts ? 0 : 1, label)
        }
    }

    /// MADV_NOHUGEPAGE keeps THPs out even with thp=always; MADV_HUGEPAGE lets them back; a THP
    /// already mapped stays.
    func testNoHugepageKeepsTHPsOutEvenWithThpAlways() {
        var r = scenario("machine thp=always\nprocess app\napp mmap buf 8M\napp write buf 0 4K\napp madvise buf nohugepage")
        XCTAssertEqual(r.pt("app").hugePMDs.count, 1, "the THP mapped before stays")
        XCTAssertTrue(r.last.text.contains("MADV_NOHUGEPAGE sets VM_NOHUGEPAGE"))
        XCTAssertEqual(r.step("app write buf 2M 4K").events[.hugeAnonymousPage], 0)
        XCTAssertEqual(r.pt("app").hugePMDs.count, 1)
        _ = r.step("app madvise buf hugepage 4M 4M")
        XCTAssertEqual(r.step("app write buf 4M 4K").events[.hugeAnonymousPage], 1)
        XCTAssertEqual(r.step("app write buf 2M 8K").events[.hugeAnonymousPage], 0, "that range is still VM_NOHUGEPAGE")
    }

    func testADirectCompactionUndoesExactly() {
        assertEveryStepUndoes(script(defrag: "always", hugepage: true))
    }
}
