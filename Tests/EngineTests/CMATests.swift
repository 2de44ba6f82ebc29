// CMA (reference §6.4, §2.3): movable pages borrow the region, cma_alloc migrates them out, a pin
// in the region blocks it, FOLL_LONGTERM never leaves a pin there.

import XCTest

@testable import Engine

final class CMATests: XCTestCase {
    func testCMAHeapMigratesMovablePagesOut() {
        var s = scenario("""
        machine ram=64M cma=32M
        process app
        app mmap buf 4M
        app write buf
        """)
        let phys = s.state.phys
        let before = s.pageFrames("app", "buf")
        XCTAssertTrue(before.allSatisfy { phys.isCMA($0) }, "movable pages landed in CMA")
        s.ok("app dmabuf-alloc d 32M heap=cma")
        let d = s.pageFrames("app", "d")
        XCTAssertEqual(d, Array(phys.cmaStart..<phys.cmaEnd), "the whole region, in one run")
        XCTAssertTrue(d.allSatisfy { s.use($0) == .dmabuf })
        let after = s.pageFrames("app", "buf")
        XCTAssertTrue(after.allSatisfy { !phys.isCMA($0) }, "the anon pages were migrated out")
        XCTAssertEqual(s.counts(after), Array(repeating: IOFrameCounts(ref: 1, map: 1, pin: 0), count: 1024))
        XCTAssertTrue(s.ptes("app", "buf").allSatisfy { $0.present && $0.writable })
    }

    func testAPinInCMABlocksTheContiguousAllocation() {
        var s = scenario("""
        machine ram=64M cma=32M
        process app
        app mmap buf 1M
        app write buf
        app pin buf
        """)
        let pinned = s.pageFrames("app", "buf")
        XCTAssertTrue(pinned.allSatisfy { s.state.phys.isCMA($0) }, "a short-term pin does not migrate")
        let r = s.step("app dmabuf-alloc d 32M heap=cma")
        XCTAssertEqual(r.outcome, .oom, "a pinned page cannot be migrated, so no run of the whole region can be emptied: \(r.text)")
        XCTAssertEqual(s.pageFrames("app", "buf"), pinned)
        XCTAssertNil(s.meta("app").buffer(named: "d"))
        s.ok("app unpin buf")
        s.ok("app dmabuf-alloc d 32M heap=cma")
        XCTAssertTrue(s.pageFrames("app", "buf").allSatisfy { !s.state.phys.isCMA($0) })
    }

    func testLongtermPinLeavesCMAFreeForContiguousAllocations() {
        var s = scenario("""
        machine ram=64M cma=32M
        process app
        device gpu
        app mmap buf 1M
        app write buf
        app pin buf longterm
        gpu map app.buf
        """)
        XCTAssertTrue(s.pageFrames("app", "buf").allSatisfy { !s.state.phys.isCMA($0) })
        s.ok("app dmabuf-alloc d 32M heap=cma")
    }

    func testCMAHeapNeedsACMARegion() {
        var s = scenario("""
        process app
        """)
        s.expect("app dmabuf-alloc d 1M heap=cma", .errno("ENODEV"))
    }

    func testKernelAllocationsStayOutOfCMA() {
        let s = scenario("""
        machine ram=64M cma=32M
        process app
        device gpu
        app ump-alloc u 4M
        app ump-alloc l 4M linear
        app dmabuf-alloc d 4M
        app mmap buf 64K
        gpu map app.buf
        """)
        for b in ["u", "l", "d"] {
            XCTAssertTrue(s.pageFrames("app", b).allSatisfy { !s.state.phys.isCMA($0) }, "\(b): only movable allocations may use CMA")
        }
        XCTAssertTrue(s.frames(use: .iopagetable).allSatisfy { !s.state.phys.isCMA($0) })
        XCTAssertTrue(s.frames(use: .pagetable).allSatisfy { !s.state.phys.isCMA($0) })
    }
}

final class CompactRmapTests: XCTestCase {
    /// Compaction moves pages with a reverse map built once; a page moved with it leaves the state a
    /// page-table walk for that page leaves (shared after fork, shmem in the page cache; regular file pages do not move here).
    func testAMoveWithTheReverseMapEqualsOneWithTheWalk() {
        let r = scenario("machine ram=64M thp=never\nfile f 64K\nprocess a\na mmap x 64K\na write x\na memfd s 64K\na write s\na mmap m 64K file=f shared\na read m\na fork b\nb write x 0 8K")
        for pfn in r.pfns("a", "x").prefix(3) + r.pfns("b", "x").prefix(1) + r.pfns("a", "s").prefix(2) {
            var walked = r.engine, mapped = r.engine
            var j1 = StepJournal(), j2 = StepJournal()
            guard let target = walked.allocPage(use: walked.state.phys.frameUse(pfn), owner: 0, exclusive: false, &j1),
                  mapped.allocPage(use: mapped.state.phys.frameUse(pfn), owner: 0, exclusive: false, &j2) == target else {
                return XCTFail("no frame to move to")
            }
            walked.movePage(pfn, to: target, &j1)
            mapped.movePage(pfn, to: target, rmap: Engine.ReverseMap(r.state), &j2)
            XCTAssertEqual(walked.state, mapped.state, "pfn \(pfn)")
            XCTAssertEqual(walked.state.invariantViolations(), [], "pfn \(pfn)")
        }
        // And a whole compaction keeps every invariant (EngineRun checks after the step).
        var c = r
        _ = c.ok("a munmap x")
        XCTAssertTrue(c.ok("compact").text.contains("migrated"))
    }
}
