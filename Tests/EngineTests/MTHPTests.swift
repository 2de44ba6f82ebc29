// Multi-size THP (`machine mthp=`) as 6.12's alloc_anon_folio does it: a write fault takes the
// largest enabled order whose aligned range fits the VMA with every PTE none, as one folio mapped
// by PTEs; COW and reuse then work per 4 KiB subpage (an exclusive subpage is reused, whatever the
// folio's size; the non-exclusive path copies).

import XCTest

@testable import Engine

final class MTHPTests: XCTestCase {
    let setup = "machine ram=64M thp=never swap=8M mthp=16K,64K\nprocess app\napp mmap buf 2M\n"

    func testAWriteFaultMapsTheLargestFolioThatFits() {
        var r = scenario(setup)
        let w = r.ok("app write buf 0 4K")
        XCTAssertEqual(w.events[.mthpAnonymousFolio(order: 4)], 1, w.text)
        XCTAssertTrue(w.text.contains("64 KiB folios (order 4"), w.text)
        XCTAssertEqual(r.meta("app").rssPages, 16, "the whole folio is mapped")
        let pfns = r.pfns("app", "buf").prefix(16)
        XCTAssertEqual(pfns.first! % 16, 0)
        XCTAssertEqual(Array(pfns), Array(pfns.first!..<(pfns.first! + 16)))
        for pfn in pfns {
            XCTAssertEqual(r.state.phys.folioOrder(pfn), 4)
            XCTAssertEqual(r.state.phys.folioHead(pfn), pfns.first!)
            XCTAssertEqual(r.frame(pfn).mapcount, 1)
        }
        XCTAssertTrue(r.ptes("app", "buf").prefix(16).allSatisfy(\.writable))
        XCTAssertEqual(r.ok("app write buf 8K 4K").events[.alreadyMapped], 1)
        XCTAssertTrue(r.engine.stateJSON().contains("\"folio_order\":4"))
    }

    func testANonEmptyRangeFallsBackToASmallerOrderOrOnePage() {
        var r = scenario(setup + "app read buf 4K 4K")
        // Page 1 maps the zero page: neither the 64K nor the 16K range of page 0 is all none.
        let w0 = r.ok("app write buf 0 4K")
        XCTAssertEqual(w0.events[.anonymousPage], 1)
        XCTAssertEqual(w0.events[.mthpAnonymousFolio(order: 4)], 0)
        // Page 4: the 64K range holds pages 0 and 1; its 16K range [4, 8) is empty.
        let w4 = r.ok("app write buf 16K 4K")
        XCTAssertEqual(w4.events[.mthpAnonymousFolio(order: 2)], 1, w4.text)
        // A VMA of 24 KiB (split off by mprotect) holds no aligned 64 KiB range, but a 16 KiB one.
        _ = r.ok("app mmap small 2M")
        _ = r.ok("app mprotect small 24K 2M-24K r".replacingOccurrences(of: "2M-24K", with: "\((2 << 20) - 24 * 1024)"))
        let s = r.ok("app write small 0 4K")
        XCTAssertEqual(s.events[.mthpAnonymousFolio(order: 2)], 1)
        XCTAssertEqual(s.events[.mthpAnonymousFolio(order: 4)], 0)
        // MADV_NOHUGEPAGE turns every size off.
        _ = r.ok("app mmap n 2M")
        _ = r.ok("app madvise n nohugepage")
        XCTAssertEqual(r.ok("app write n 0 4K").events[.anonymousPage], 1)
    }

    func testCOWAndPinsWorkPerSubpage() {
        var r = scenario(setup + "app write buf 0 4K\napp fork kid")
        let head = r.pfns("app", "buf")[0]
        let w = r.ok("app write buf 4K 4K")
        XCTAssertEqual(w.events[.wpPageCopy(.sharedPage)], 1, "the non-exclusive path copies a 4 KiB subpage: \(w.text)")
        XCTAssertEqual(r.pfns("app", "buf")[0], head, "the rest of the folio stays mapped")
        XCTAssertEqual(r.state.phys.folioOrder(head), 4)
        _ = r.ok("kid exit")
        // app alone maps the folio again, but its subpages lost PageAnonExclusive at fork, and
        // wp_can_reuse_anon_folio never reuses a large folio (mm/memory.c:3586): a copy again.
        let again = r.ok("app write buf 8K 4K")
        XCTAssertEqual(again.events[.wpPageCopy(.largeFolio)], 1, again.text)
        XCTAssertEqual(again.events[.wpPageCopy(.sharedPage)], 0, again.text)
        XCTAssertTrue(again.text.contains("a page of a large folio copied though nothing else maps it"), again.text)
        XCTAssertEqual(again.counts.map(\.0), ["wp_page_copy:large"])
        // A read-only pin of a subpage fork left shared unshares it first: a small copy, pinned with the bias.
        XCTAssertEqual(r.ok("app pin buf 12K 4K").events[.unshare], 1)
        XCTAssertEqual(r.refcount(r.pfns("app", "buf")[3]), 1025)
        // A pin of an exclusive subpage of a large folio: +1 and a pin count, as any large folio.
        var fresh = scenario(setup + "app write buf 0 4K")
        _ = fresh.ok("app pin buf 4K 4K")
        let pinned = fresh.pfns("app", "buf")[1]
        XCTAssertEqual(fresh.state.phys.folioOrder(pinned), 4)
        XCTAssertEqual(fresh.pincount(pinned), 1)
        XCTAssertEqual(fresh.refcount(pinned), 2, "a large folio takes +1 per pin, not the bias")
    }

    func testTheFolioIsFreedWithItsLastSubpageAndPageoutSplitsIt() {
        var r = scenario(setup + "app write buf 0 64K")
        let free = r.state.phys.freeFrames
        _ = r.ok("app munmap buf 0 32K")
        XCTAssertEqual(r.state.phys.freeFrames, free, "partly unmapped, the folio stays whole (no deferred split)")
        _ = r.ok("app madvise buf pageout 32K 32K")
        XCTAssertEqual(r.meta("app").swapPages, 8)
        XCTAssertGreaterThan(r.state.phys.freeFrames, free)
    }

    func testMthpSizesAreChecked() {
        for bad in ["2M", "48K", "8K", "4K"] {
            XCTAssertThrowsError(try parseScript("machine mthp=16K,\(bad)\n", fileName: "m.ump"), bad)
        }
        XCTAssertNoThrow(try parseScript("machine mthp=16K,32K,64K,128K,256K,512K,1M\n", fileName: "m.ump"))
    }

    func testEveryMTHPStepUndoesExactly() {
        assertEveryStepUndoes(setup + """
            app write buf 0 4K
            app read buf 100K 4K
            app write buf 96K 8K
            app fork kid
            kid write buf 0 4K
            app pin buf 4K 4K
            app madvise buf pageout
            kid munmap buf 0 32K
            kid exit
            app madvise buf collapse 0 1M
            """)
    }
}
