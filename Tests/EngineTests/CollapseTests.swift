// MADV_COLLAPSE as 6.12's madvise_collapse does it (mm/khugepaged.c): each whole 2 MiB aligned
// range of small pages becomes one THP now, whatever thp= says, copying the data in and zero-filling
// the holes; ranges it cannot collapse give the errno madvise_collapse_errno picks.

import XCTest

@testable import Engine

final class CollapseTests: XCTestCase {
    let setup = "machine ram=64M thp=never swap=8M\nprocess app\napp mmap buf 4M\n"

    func testSmallPagesBecomeOneTHPWithTheirData() {
        var r = scenario(setup + "app write buf 0 64K\napp write buf 1M 4K\napp read buf 0x101000 4K")
        let old = r.pfns("app", "buf").prefix(16)
        let oldData = old.map { r.state.phys.dataTag($0) }
        let s = r.ok("app madvise buf collapse 0 2M")
        XCTAssertEqual(s.events[.collapseHugePage], 1, s.text)
        let stats = r.state.bufferStats(r.p("app"), r.buffer("app", "buf"))
        XCTAssertEqual(stats.huge, 512)
        XCTAssertEqual(r.meta("app").rssPages, 512, "the holes are zero-filled subpages now")
        let now = r.pfns("app", "buf")
        XCTAssertEqual(now[0] % 512, 0, "an order-9 block")
        XCTAssertEqual(now.prefix(16).map { r.state.phys.dataTag($0) }, oldData, "the data was copied in")
        XCTAssertEqual(r.state.phys.dataTag(now[17]), .zero)
        for pfn in old { XCTAssertEqual(r.state.phys.frameUse(pfn), .free, "the old pages are released") }
        XCTAssertEqual(r.ok("app madvise buf collapse 0 2M").text.contains("already"), true)
    }

    func testRangesThatCannotCollapse() {
        var r = scenario(setup + "app read buf 0 2M\napp write buf 2M 8K")
        // Only zero pages: no writable PTE (SCAN_PAGE_RO), EINVAL.
        XCTAssertTrue(r.expect("app madvise buf collapse 0 2M", .errno("EINVAL")).text.contains("SCAN_PAGE_RO"))
        // A pinned page: SCAN_PAGE_COUNT, EAGAIN (trying again might succeed).
        _ = r.ok("app pin buf 2M 4K")
        let pinned = r.expect("app madvise buf collapse 2M 2M", .errno("EAGAIN"))
        XCTAssertTrue(pinned.text.contains("SCAN_PAGE_COUNT"), pinned.text)
        XCTAssertEqual(r.state.bufferStats(r.p("app"), r.buffer("app", "buf")).huge, 0)
        _ = r.ok("app unpin buf")
        XCTAssertEqual(r.ok("app madvise buf collapse 2M 2M").events[.collapseHugePage], 1)
        // VM_NOHUGEPAGE: EINVAL up front.
        _ = r.ok("app mmap n 4M")
        _ = r.ok("app write n")
        _ = r.ok("app madvise n nohugepage")
        XCTAssertTrue(r.expect("app madvise n collapse", .errno("EINVAL")).text.contains("VM_NOHUGEPAGE"))
        // A range smaller than 2 MiB collapses nothing and succeeds.
        XCTAssertTrue(r.ok("app madvise buf collapse 0 1M").text.contains("nothing to collapse"))
    }

    /// After fork the pages are shared read-only: the child keeps them; the parent's collapse
    /// needs one writable PTE, so it works once the parent has written one page again.
    func testACollapseAfterForkLeavesTheChildItsPages() {
        var r = scenario(setup + "app write buf 0 2M\napp fork kid")
        XCTAssertTrue(r.expect("app madvise buf collapse 0 2M", .errno("EINVAL")).text.contains("SCAN_PAGE_RO"))
        _ = r.ok("app write buf 0 4K")
        let kidPages = r.pfns("kid", "buf").prefix(512)
        XCTAssertEqual(r.ok("app madvise buf collapse 0 2M").events[.collapseHugePage], 1)
        XCTAssertEqual(Array(r.pfns("kid", "buf").prefix(512)), Array(kidPages))
        for pfn in kidPages.dropFirst() { XCTAssertEqual(r.frame(pfn).mapcount, 1, "only the child maps it now") }
    }

    func testSwappedPagesAreReadBackFirst() {
        var r = scenario(setup + "app write buf 0 2M\napp madvise buf pageout 0 1M")
        XCTAssertEqual(r.meta("app").swapPages, 256)
        let s = r.ok("app madvise buf collapse 0 2M")
        XCTAssertEqual(s.events[.swapIn], 256)
        XCTAssertEqual(r.meta("app").swapPages, 0)
        XCTAssertEqual(r.meta("app").rssPages, 512)
        XCTAssertEqual(r.state.meta.swapUsed, 0)
    }

    func testEveryCollapseStepUndoesExactly() {
        assertEveryStepUndoes(setup + """
            app write buf 0 64K
            app write buf 2M 1M
            app madvise buf pageout 2M 512K
            app madvise buf collapse
            app fork kid
            kid write buf 0 4K
            kid madvise buf collapse 0 2M
            app exit
            """)
    }
}
