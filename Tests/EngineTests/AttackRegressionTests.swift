// Regressions from attacking the new verbs with odd input (issue 12's verbs): each test is the
// smallest script that once gave a wrong result.

import XCTest

@testable import Engine

final class AttackRegressionTests: XCTestCase {
    func testCleanPageCacheIsDroppedBeforeAnOOM() {
        var r = scenario("machine ram=16M\nfile big 8M\nprocess a\na mmap m 8M file=big\na read m\na munmap m\na mmap x 10M")
        let w = r.step("a write x")
        XCTAssertEqual(w.outcome, .ok, w.text)
        XCTAssertTrue(r.meta("a").alive)
        XCTAssertGreaterThan(w.events[.directReclaim], 0)
        // A written (dirty) page stays: there is no writeback.
        var d = scenario("machine ram=64M\nfile f 8K\nprocess a\na mmap s 8K file=f shared\na read s\na write s 0 4K\na munmap s\npressure 8K")
        XCTAssertEqual(d.state.shmem.values.first?.count, 1, "the dirty page stays, the clean one went")
        XCTAssertTrue(d.last.text.contains("drops 1 clean page-cache page"), d.last.text)
        _ = d.ok("a exit")
    }

    func testALongTermWritePinWritesNoData() {
        var r = scenario("machine ram=64M kernel=legacy\nprocess app\napp mmap secret 4K\napp write secret\napp fork child\nchild vmsplice secret pipe=p\nchild munmap secret\napp pin secret write longterm")
        XCTAssertEqual(r.ok("child pipe-read p").hazards, [], "the pin faulted the page writable but wrote nothing")
    }

    func testPageoutGoesOnPastAHole() {
        var r = scenario("machine ram=64M swap=8M thp=never\nprocess a\na mmap m 64K\na write m\na munmap m 0 8K")
        let s = r.step("a madvise m pageout")
        XCTAssertEqual(s.outcome, .errno("ENOMEM"), "the hole is reported")
        XCTAssertEqual(r.meta("a").swapPages, 14, s.text)
    }

    func testSmallOddities() {
        var r = scenario("machine ram=64M\nfile f 4K\nprocess a\na mmap m 64K file=f\na mmap z 16K")
        XCTAssertTrue(r.ok("a vmsplice z 4K 0").text.contains("splices nothing"))
        let lock = r.expect("a mlock m", .errno("ENOMEM"))
        XCTAssertTrue(lock.text.contains("no signal"), lock.text)
        XCTAssertTrue(r.meta("a").alive)
        _ = r.ok("a mmap h 4M file=f")
        XCTAssertEqual(r.expect("a madvise h collapse", .errno("EINVAL")).outcome, .errno("EINVAL"))
        XCTAssertEqual(r.expect("a memfd e 0", .errno("EINVAL")).outcome, .errno("EINVAL"))
        XCTAssertEqual(r.expect("a mmap e 0 file=f", .errno("EINVAL")).outcome, .errno("EINVAL"))
    }

    func testAnSVABindFollowsAMovedBuffer() {
        var r = scenario("machine ram=64M\nprocess a\ndevice sv iommu=sva\na mmap top 4K\na mmap m 64K\na write m\nsv map a.m\nsv dma a.m read\na mremap m 128K move\nsv dma a.m write")
        _ = r.ok("sv unmap a.m")
        XCTAssertEqual(r.dev("sv").iotlb.entryCount, 0)
    }
}

/// Found by the undo property test at 100,000 scripts (script 13658, shrunk to these lines): a
/// process that imports its own UMP id holds the buffer twice; freeing one name freed the frames
/// the other still mapped.
final class FuzzFoundRegressionTests: XCTestCase {
    func testFreeingOneOfTwoNamesForAKernelBufferKeepsIt() {
        var r = scenario("machine ram=64M\nprocess c\nc ump-alloc x 1M linear\nc ump-import z 1")
        let frames = r.pfns("c", "x")
        let freed = r.ok("c free z")
        XCTAssertTrue(freed.text.contains("others still hold it"), freed.text)
        XCTAssertEqual(r.pfns("c", "x"), frames)
        XCTAssertTrue(frames.allSatisfy { r.state.phys.frameUse($0) == .ump })
        // The second name lets go: now the frames are freed; and exit frees an imported pair too.
        XCTAssertTrue(r.ok("c free x").text.contains("its frames are freed"))
        var e = scenario("machine ram=64M\nprocess c\nc ump-alloc x 1M\nc ump-import z 1")
        let before = e.state.phys.freeFrames
        e.ok("c exit")
        XCTAssertGreaterThanOrEqual(e.state.phys.freeFrames, before + 256, "the UMP buffer's 256 frames are free again")
        XCTAssertTrue(e.state.kernelBuffers.allSatisfy(\.freed))
    }
}
