// File-backed memory over a page cache, as 6.12's do_fault paths treat it: read faults map the page
// cache's pages (read in on a miss), a private mapping copies on write, a shared one writes the page
// cache; memfds are shmem files; past the end of the file is SIGBUS; GUP refuses a long-term
// writable pin of a shared file mapping that needs dirty tracking (gup_longterm.c's expectation).

import XCTest

@testable import Engine

final class FileMemoryTests: XCTestCase {
    let setup = "machine ram=64M\nfile data 64K\nprocess app\nprocess other\n"

    func testAPrivateMappingReadsThePageCacheAndCopiesOnWrite() {
        var r = scenario(setup + "app mmap m 64K file=data")
        let read = r.ok("app read m 0 4K")
        XCTAssertEqual(read.events[.pageCacheRead], 1)
        let cached = r.pfns("app", "m")[0]
        XCTAssertNotEqual(cached, r.zeroPfn, "a file's page, not the zero page")
        XCTAssertEqual(r.state.phys.frameUse(cached), .file)
        XCTAssertEqual(r.frame(cached).refcount, 2, "the page cache's reference and the mapping's")
        XCTAssertEqual(r.state.dataName(r.state.phys.dataTag(cached)), "file:data")
        XCTAssertFalse(r.ptes("app", "m")[0].writable)
        let write = r.ok("app write m 0 4K")
        XCTAssertEqual(write.events[.wpPageCopy(.pageCache)], 1)
        let copy = r.pfns("app", "m")[0]
        XCTAssertNotEqual(copy, cached)
        XCTAssertEqual(r.state.phys.frameUse(copy), .anon)
        XCTAssertEqual(r.state.dataName(r.state.phys.dataTag(copy)), "app@6")
        XCTAssertEqual(r.frame(cached).refcount, 1, "only the page cache holds it now")
        XCTAssertEqual(r.state.dataName(r.state.phys.dataTag(cached)), "file:data", "the file is untouched")
        // A write to a page not yet mapped: do_cow_fault reads it in and copies at once.
        let cow = r.ok("app write m 8K 4K")
        XCTAssertEqual(cow.events[.cowFault], 1)
        XCTAssertEqual(cow.events[.pageCacheRead], 1)
        // Another process sees the file, not app's private writes.
        _ = r.ok("other mmap o 64K file=data")
        XCTAssertEqual(r.ok("other read o 0 4K").events[.pageCacheHit], 1)
        XCTAssertEqual(r.pfns("other", "o")[0], cached)
    }

    func testASharedMappingWritesThePageCacheThatOthersSee() {
        var r = scenario(setup + "app mmap s 64K file=data shared\nother mmap o 64K file=data")
        _ = r.ok("app read s 0 4K")
        let page = r.pfns("app", "s")[0]
        XCTAssertFalse(r.ptes("app", "s")[0].writable, "mapped read-only for dirty tracking (vma_wants_writenotify)")
        let w = r.ok("app write s 0 4K")
        XCTAssertEqual(w.events[.wpPageShared], 1)
        XCTAssertEqual(r.pfns("app", "s")[0], page, "written in place")
        XCTAssertTrue(r.ptes("app", "s")[0].writable)
        _ = r.ok("other read o 0 4K")
        XCTAssertEqual(r.pfns("other", "o")[0], page)
        XCTAssertEqual(r.state.dataName(r.state.phys.dataTag(page)), "app@7", "the file now holds app's write")
        // The page cache outlives the mappings.
        _ = r.ok("app munmap s")
        _ = r.ok("other munmap o")
        XCTAssertEqual(r.state.phys.frameUse(page), .file)
        XCTAssertEqual(r.frame(page).refcount, 1)
        XCTAssertTrue(r.engine.stateJSON().contains("\"name\":\"data\",\"size\":65536,\"shmem\":false,\"cached_pages\":"))
    }

    func testMemfdIsShmemAndTheEndOfAFileIsSIGBUS() {
        var r = scenario(setup + "app memfd mf 16K\napp mmap big 128K file=data")
        let read = r.ok("app read mf 0 4K")
        XCTAssertEqual(read.events[.shmemFault], 1)
        let pfn = r.pfns("app", "mf")[0]
        XCTAssertEqual(r.state.phys.frameUse(pfn), .shmem)
        XCTAssertEqual(r.state.phys.dataTag(pfn), .zero, "a memfd starts zero-filled")
        XCTAssertTrue(r.ptes("app", "mf")[0].writable, "tmpfs needs no dirty tracking")
        XCTAssertEqual(r.buffer("app", "mf").kind, .file)
        let bus = r.step("app read big 64K 4K")
        XCTAssertEqual(bus.outcome, .signal("SIGBUS"), bus.text)
        XCTAssertFalse(r.meta("app").alive)
    }

    func testLongTermPinsOfFileMappings() {
        var r = scenario(setup + "app mmap s 16K file=data shared\napp memfd mf 16K\napp mmap m 16K file=data\napp read m")
        let refused = r.expect("app pin s write longterm", .errno("EFAULT"))
        XCTAssertTrue(refused.text.contains("writable_file_mapping_allowed"), refused.text)
        XCTAssertEqual(r.ok("app pin s write").outcome, .ok, "a short-term pin is allowed")
        XCTAssertEqual(r.ok("app pin mf write longterm").outcome, .ok, "shmem needs no dirty tracking")
        // A long-term R/O pin of a private file mapping unshares: the pin holds the process's own copy.
        let cached = r.pfns("app", "m")
        let pin = r.ok("app pin m longterm")
        XCTAssertEqual(pin.events[.unshare], 4)
        XCTAssertTrue(zip(cached, r.pfns("app", "m")).allSatisfy { $0 != $1 })
        XCTAssertTrue(r.pfns("app", "m").allSatisfy { r.state.phys.frameUse($0) == .anon })
    }

    func testForkSkipsAFileMappingWithoutAnonVMA() {
        var r = scenario(setup + "app mmap m 16K file=data\napp read m\napp fork kid")
        XCTAssertEqual(r.state.bufferStats(r.p("kid"), r.buffer("kid", "m")).present, 0, "vma_needs_copy: nothing anonymous to share")
        XCTAssertEqual(r.ok("kid read m").events[.pageCacheHit], 1)
    }

    func testTheCheckerKnowsTheFiles() {
        let source = "machine ram=64M\nfile data 4K\nfile data 8K\nprocess app\napp mmap m 4K file=nope\n"
        let script = try! parseScript(source, fileName: "demo.ump")
        let errors = checkScript(script, sourceLines: scenarioSourceLines(source)) { _ in false }.map(\.rendered)
        XCTAssertEqual(errors.map { $0.split(separator: "\n").first.map(String.init) ?? "" }, [
            "demo.ump:3:6: error: a file named 'data' is declared twice",
            "demo.ump:5:20: error: no file named 'nope' is declared before this line",
        ])
    }

    func testEveryFileStepUndoesExactly() {
        assertEveryStepUndoes(setup + """
            app mmap m 64K file=data
            app mmap s 64K file=data shared
            app memfd mf 16K
            app read m 0 8K
            app write m 4K 8K
            app read s
            app write s 0 4K
            app write mf
            app fork kid
            kid write s 8K 4K
            kid pin m longterm
            app exit
            kid read m 60K 8K
            """)
    }
}
