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
