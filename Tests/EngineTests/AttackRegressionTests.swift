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

/// Scripts the invariant checker caught breaking the model (exit 3 from `run`): EngineRun checks every
/// step's whole state, so each of these fails there first; the assertions say what the fix keeps.
final class InvariantFoundRegressionTests: XCTestCase {
    func testReclaimOfATHPThatOneProcessMapsByPMDAndAnotherByPTEs() {
        // The child's COW fault split its PMD; reclaim met the folio through the parent's PMD and
        // through the child's PTEs, and used to swap the child's subpages out twice.
        var r = scenario("machine ram=64M swap=8M\nprocess p\np mmap b 2M hugepage\np write b\np fork c\nc write b 0 4K")
        _ = r.ok("pressure 4M")
        XCTAssertEqual(r.meta("p").swapPages, 512)
        XCTAssertEqual(r.meta("c").swapPages, 512)
        XCTAssertEqual(r.meta("c").rssPages, 0)
        XCTAssertEqual(r.state.meta.swapUsed, 513, "511 slots shared since fork, and each process's own copy")
        _ = r.ok("c read b")
        _ = r.ok("p read b")
        XCTAssertEqual(r.meta("p").rssPages + r.meta("c").rssPages, 1024)
    }

    func testPageoutLeavesAPinnedTHPWholeAndMapped() {
        var r = scenario("machine thp=always swap=1M\nprocess p\np mmap b 2M\np write b\np pin b")
        let before = r.state
        let s = r.ok("p madvise b pageout")
        XCTAssertTrue(s.text.contains("512 pages that may be pinned"), s.text)
        XCTAssertEqual(r.state.processes, before.processes, "the PMD, the folio and the pin are as they were")
        XCTAssertEqual(r.state.phys.refcount, before.phys.refcount)
        // Half of it: split_folio fails on the pin, and the PMD stays too.
        _ = r.ok("p madvise b pageout 0 1M")
        XCTAssertEqual(r.state.processes, before.processes)
    }

    func testALongTermPinCannotMoveAPinnedTHPOutOfCMA() {
        // It used to split the pinned folio (so its pins no longer matched its refcounts) first.
        var r = scenario("machine ram=64M cma=32M thp=always\nprocess p\np mmap b 2M\np write b\np pin b")
        let before = r.state
        let s = r.expect("p pin b longterm", .errno("ENOMEM"))
        XCTAssertTrue(s.text.contains("another pin holds it"), s.text)
        XCTAssertEqual(r.state.processes, before.processes)
        XCTAssertEqual(r.state.phys, before.phys, "nothing split, moved or pinned")
        _ = r.ok("p unpin b")
        XCTAssertTrue(r.ok("p pin b longterm").text.contains("512 pages migrated out of CMA"))
    }

    func testAForkedChildKeepsADmaBufWhoseVMAWasTrimmed() {
        // The child's hold was taken only for a VMA starting at the buffer's start.
        var r = scenario("machine ram=64M\nprocess p\np dmabuf-alloc b 64K\np munmap b 0 8K\np fork c")
        let frames = r.pfns("c", "b")
        XCTAssertEqual(frames.count, 14)
        _ = r.ok("p exit")
        XCTAssertTrue(frames.allSatisfy { r.state.phys.frameUse($0) == .dmabuf }, "the child's fd still holds the buffer")
        let free = r.state.phys.freeFrames, tables = r.meta("c").pageTablePages
        _ = r.ok("c exit")
        XCTAssertEqual(r.state.phys.freeFrames - free, 16 + tables, "all 16 frames, and the child's page tables")
        XCTAssertTrue(r.state.kernelBuffers.allSatisfy(\.freed))
    }
}

final class ZeroLengthTests: XCTestCase {
    /// A range of 0 bytes: each call does what Linux does with a length of 0, and the no-ops change nothing.
    func testZeroLengthRangesDoWhatLinuxDoes() {
        var r = scenario("machine ram=64M\nprocess p\np mmap b 64K\np write b 0 8K\ndevice d")
        let before = r.state
        for line in ["p write b 0 0", "p read b 64K", "p pin b 0 0", "p madvise b dontneed 0 0", "p madvise b pageout 64K 0",
                     "p vmsplice b 0 0", "p mprotect b 0 0 r"] {
            _ = r.ok(line)
            XCTAssertEqual(r.state.processes, before.processes, line)
            XCTAssertEqual(r.state.phys, before.phys, line)
        }
        XCTAssertTrue(r.meta("p").pins.isEmpty)
        XCTAssertTrue(r.expect("p munmap b 0 0", .errno("EINVAL")).text.contains("a length of 0"))
        XCTAssertTrue(r.expect("p uring-register b 0 0", .errno("EFAULT")).text.contains("io_buffer_validate"))
        XCTAssertTrue(r.expect("d map p.b 0 0", .errno("EINVAL")).text.contains("size of 0"))
        _ = r.expect("p mmap z 0", .errno("EINVAL"))
        _ = r.expect("p dmabuf-alloc q 0", .errno("EINVAL"))
        XCTAssertEqual(r.state.processes, before.processes, "none of the failures changed the process")
        XCTAssertEqual(r.vmas("p").count, before.processes[r.p("p")].meta.vmas.count)
    }
}

final class TracePageNumberTests: XCTestCase {
    /// A provider that does not know the unit: the Engine itself refuses the page number that wraps.
    func testAPageNumberPast2To52IsRefusedNotWrapped() {
        let traces = IOArrayTraces(files: ["t": [0, 1, 1 << 52, 2]])
        var r = scenario("machine ram=64M\nprocess p\np mmap b 64K\np write b\ndevice d\nd map p.b", traces: traces)
        let s = r.expect("d dma-trace t unit=page", .errno("EINVAL"))
        XCTAssertTrue(s.text.contains("entry 3: page number 0x10000000000000 × 4096 is past 2^64"), s.text)
        // As addresses, the same numbers are fine (2^52 faults: nothing is mapped there).
        XCTAssertEqual(r.step("d dma-trace t").outcome, .iommuFault)
    }
}
