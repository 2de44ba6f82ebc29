// mprotect (mm/mprotect.c): mprotect_fixup splits and merges VMAs, change_protection rewrites the
// PTEs. What the kernel's cow.c exercises: a write to a read-only VMA is SIGSEGV; back to rw, an
// exclusive page is made writable at once (can_change_pte_writable, the "mprotect optimisation"),
// and a page shared since fork waits for the write fault, where do_wp_page reuses or copies.

import XCTest

@testable import Engine

final class MprotectTests: XCTestCase {
    let setup = """
        machine ram=64M thp=never
        process app
        app mmap buf 64K
        app write buf
        """

    func testReadOnlyMakesAWriteSIGSEGVAndReadsStillWork() {
        var r = scenario(setup)
        let frames = r.pageFrames("app", "buf")
        let rec = r.step("app mprotect buf r")
        XCTAssertEqual(rec.outcome, .ok, rec.text)
        XCTAssertTrue(rec.text.contains("write-protects 16 present pages"), rec.text)
        XCTAssertTrue(r.ptes("app", "buf").allSatisfy { $0.present && !$0.writable })
        XCTAssertEqual(r.meta("app").vmas.first { $0.start == r.buffer("app", "buf").start }?.permissions, "r--p")
        XCTAssertEqual(r.step("app read buf").outcome, .ok)
        XCTAssertEqual(r.pageFrames("app", "buf"), frames, "reads change nothing")
        XCTAssertEqual(r.step("app write buf 0 4K").outcome, .signal("SIGSEGV"))
    }

    func testBackToReadWriteMakesExclusivePagesWritableAtOnce() {
        var r = scenario(setup + "\napp mprotect buf r")
        let rec = r.step("app mprotect buf rw")
        XCTAssertTrue(rec.text.contains("16 pages are the process's own (PageAnonExclusive) and made writable at once"), rec.text)
        XCTAssertTrue(r.ptes("app", "buf").allSatisfy { $0.writable })
        let write = r.step("app write buf")
        XCTAssertEqual(write.events[.alreadyMapped], 16, "no write fault: \(write.text)")
    }

    func testAPageSharedSinceForkWaitsForTheWriteFault() {
        var r = scenario(setup + "\napp fork child\napp mprotect buf r\napp mprotect buf rw")
        XCTAssertTrue(r.last.text.contains("16 shared or zero pages stay read-only"), r.last.text)
        // The child still maps them: the write copies.
        XCTAssertEqual(r.step("app write buf 0 4K").events[.wpPageCopy(.sharedPage)], 1)
        // Once the child has gone, the next page is the parent's alone by refcount: reused.
        _ = r.step("child exit")
        XCTAssertEqual(r.step("app write buf 4K 4K").events[.wpPageReuse(.refcount)], 1)
    }

    func testPartOfABufferSplitsTheVMAAndNoneFaultsEveryTouch() {
        var r = scenario(setup)
        let vmas = r.meta("app").vmas.count
        XCTAssertEqual(r.step("app mprotect buf 16K 8K none").outcome, .ok)
        XCTAssertEqual(r.meta("app").vmas.count, vmas + 2, "split at both ends")
        XCTAssertEqual(r.step("app read buf 0 4K").outcome, .ok)
        XCTAssertEqual(r.step("app read buf 16K 4K").outcome, .signal("SIGSEGV"))
        // Back to rw, the three VMAs merge again.
        var s = scenario(setup + "\napp mprotect buf 16K 8K none\napp mprotect buf 16K 8K rw")
        XCTAssertEqual(s.meta("app").vmas.count, vmas)
        XCTAssertEqual(s.step("app write buf").outcome, .ok)
    }

    func testAHugePMDIsWriteProtectedWholeOrSplitAtAPartialBoundary() {
        var r = scenario("machine ram=64M thp=always\nprocess app\napp mmap buf 2M\napp write buf")
        let region = r.vpns("app", "buf")[0] >> 9
        _ = r.step("app mprotect buf r")
        XCTAssertEqual(r.pt("app").hugePMDs[region]?.writable, false, "change_huge_pmd: still one PMD, read-only")
        _ = r.step("app mprotect buf rw")
        XCTAssertEqual(r.pt("app").hugePMDs[region]?.writable, true, "an exclusive THP is made writable at once")
        let rec = r.step("app mprotect buf 0 4K r")
        XCTAssertNil(r.pt("app").hugePMDs[region], "a boundary inside the THP splits its PMD")
        XCTAssertEqual(rec.events[.splitHugePMD], 1)
        XCTAssertFalse(r.ptes("app", "buf")[0].writable)
        XCTAssertTrue(r.ptes("app", "buf")[1].writable)
    }

    func testEveryMprotectStepUndoesExactly() {
        assertEveryStepUndoes(setup + """

            app mprotect buf r
            app read buf
            app fork child
            app mprotect buf rw
            app write buf 0 8K
            app mprotect buf 16K 16K none
            child exit
            app mprotect buf 16K 16K rw
            app write buf
            app exit
            """)
    }

    func testMprotectLinesParseWithTheProtectionLast() throws {
        let ok = try parseScript("process app\napp mmap b 64K\napp mprotect b 4K 8K rw", fileName: "t.ump")
        guard case let .processEvent(_, .mprotect(b, range, prot)) = ok.statements[2].kind else { return XCTFail("\(ok.statements[2].kind)") }
        XCTAssertEqual([b, prot.rawValue], ["b", "rw"])
        XCTAssertEqual(range, BufferRange(offset: 4096, size: 8192))
        for (bad, message) in [("app mprotect b 4K r", "'mprotect' needs a size after the offset"),
                               ("app mprotect b", "'mprotect' needs a protection: r, rw or none"),
                               ("app mprotect b r rw", "give one protection, not 2")] {
            XCTAssertThrowsError(try parseScript("process app\napp mmap b 64K\n" + bad, fileName: "t.ump")) { e in
                XCTAssertTrue("\(e)".contains(message) || (e as? Diagnostics)?.rendered.contains(message) == true, "\(bad): \(e)")
            }
        }
    }
}

extension MprotectTests {
    /// `mmap ... prot=r|none`: a read-only or inaccessible mapping from the start. MAP_POPULATE
    /// read-faults a read-only one (zero pages) and leaves a PROT_NONE one alone (__mm_populate).
    func testReadOnlyAndNoAccessMappings() {
        var r = scenario("machine thp=never\nprocess app\napp mmap ro 16K prot=r populate\napp mmap no 16K prot=none populate")
        XCTAssertEqual(r.ptes("app", "ro"), Array(repeating: PTEView.zeroPage(r.zeroPfn), count: 4), "populated with the zero page, read-only")
        XCTAssertTrue(r.ptes("app", "no").allSatisfy(\.isNone), "PROT_NONE: nothing populated")
        XCTAssertTrue(r.records[1].text.contains("PROT_READ"), r.records[1].text)
        XCTAssertEqual(r.step("app write ro 0 4K").outcome, .signal("SIGSEGV"))
        var s = scenario("machine thp=never\nprocess app\napp mmap ro 16K prot=r\napp read ro\napp mprotect ro rw")
        XCTAssertTrue(s.last.text.contains("4 shared or zero pages stay read-only"), s.last.text)
        XCTAssertEqual(s.step("app write ro 0 4K").events[.wpPageCopy(.zeroPage)], 1, "the zero page is never made writable: the write copies")
        assertEveryStepUndoes("machine thp=never\nprocess app\napp mmap ro 16K prot=r populate\napp mprotect ro rw\napp write ro\napp mprotect ro none\napp exit")
    }
}
