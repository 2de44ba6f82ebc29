// mremap(2) as mm/mremap.c (6.12) does it: shrinking unmaps the tail, growing expands in place when
// nothing lies above, else MREMAP_MAYMOVE moves the page tables (no page copied) or it is ENOMEM.

import XCTest

@testable import Engine

final class MremapTests: XCTestCase {
    func testShrinkUnmapsTheTailAndSplitsATHPItCutsThrough() {
        var r = scenario("machine ram=64M thp=always\nprocess app\napp mmap buf 4M\napp write buf")
        XCTAssertEqual(r.state.bufferStats(r.p("app"), r.buffer("app", "buf")).huge, 1024)
        let s = r.ok("app mremap buf 3M")
        XCTAssertTrue(s.text.contains("do_vmi_munmap"), s.text)
        XCTAssertEqual(s.events[.splitHugePMD], 1, "the new end falls inside the second THP")
        let stats = r.state.bufferStats(r.p("app"), r.buffer("app", "buf"))
        XCTAssertEqual(stats.present, 768)
        XCTAssertEqual(stats.huge, 512, "the first THP stays whole")
        XCTAssertEqual(r.buffer("app", "buf").size, 3 << 20)
        XCTAssertEqual(r.meta("app").rssPages, 768)
    }

    /// The first mapping sits right under mmap_base with nothing above it but the gap to the
    /// stack: it grows in place. A second one, placed right under the first, cannot.
    func testGrowInPlaceWhenNothingIsAboveElseMoveOrENOMEM() {
        var r = scenario("machine ram=64M thp=never\nprocess app\napp mmap top 16K\napp mmap low 16K\napp write low")
        let top = r.buffer("app", "top").start
        let grown = r.ok("app mremap top 64K")
        XCTAssertTrue(grown.text.contains("in place"), grown.text)
        XCTAssertEqual(r.buffer("app", "top").start, top)
        // low merged into top's VMA when it was mapped right below it; top ends that VMA, so it grows.
        XCTAssertEqual(r.meta("app").vmaIndex(containing: top).map { r.meta("app").vmas[$0].end }, top + 0x10000)

        let before = r.pfns("app", "low")
        let lowStart = r.buffer("app", "low").start
        let refused = r.expect("app mremap low 32K", .errno("ENOMEM"))
        XCTAssertTrue(refused.text.contains("the range does not end its VMA") && refused.text.contains("MREMAP_MAYMOVE was not given"), refused.text)
        let moved = r.ok("app mremap low 32K move")
        let to = r.buffer("app", "low").start
        XCTAssertNotEqual(to, lowStart)
        XCTAssertTrue(moved.text.contains("moves 4 PTEs") && moved.text.contains("no page is copied"), moved.text)
        XCTAssertEqual(Array(r.pfns("app", "low").prefix(4)), before, "the same frames, at the new address")
        XCTAssertEqual(r.frame(before[0]).mapcount, 1)
        XCTAssertNil(r.meta("app").vmaIndex(containing: lowStart), "the old range is unmapped")
        XCTAssertEqual(r.meta("app").rssPages, 4)
        // The grown tail is untouched memory: a read maps the zero page, a write a fresh page.
        XCTAssertEqual(r.ok("app read low 16K").events[.zeroPageMapped], 4)
    }

    func testAMoveCarriesHugePMDsWholeWhenBothEndsAre2MiBAligned() {
        var r = scenario("machine ram=64M thp=always\nprocess app\napp mmap a 2M\napp mmap b 2M\napp write b")
        let head = r.pfns("app", "b")[0]
        let s = r.ok("app mremap b 4M move")
        XCTAssertTrue(s.text.contains("1 huge PMD whole"), s.text)
        XCTAssertEqual(s.events[.splitHugePMD], 0)
        XCTAssertEqual(r.pfns("app", "b")[0], head)
        XCTAssertEqual(r.state.bufferStats(r.p("app"), r.buffer("app", "b")).huge, 512)
        XCTAssertEqual(r.buffer("app", "b").start % (2 << 20), 0, "a multiple of 2 MiB lands 2 MiB aligned")
    }

    func testMovingAMappedBufferKeepsTheDeviceOnItsFrames() {
        var r = scenario("machine ram=64M thp=never\nprocess app\ndevice nic iommu=vtd\napp mmap buf 16K\napp mmap low 4K\napp write buf\nnic map app.buf write")
        _ = r.ok("app mremap buf 64K move")
        // The mapping still covers the first 16 KiB: a DMA there reaches the frames the process maps.
        let dma = r.ok("nic dma app.buf write count=256")
        XCTAssertTrue(dma.hazards.isEmpty, "the process still maps the pinned frames: \(dma.hazards)")
        XCTAssertEqual(r.mapping("nic", "app", "buf")?.va, r.buffer("app", "buf").start)
    }

    func testRefusals() {
        var r = scenario("machine ram=64M memlock=64K\nprocess app\napp malloc small 4K\napp mmap l 16K locked\napp ump-alloc u 64K\napp mmap x 16K")
        XCTAssertEqual(r.expect("app mremap small 8K move", .errno("EINVAL")).outcome, .errno("EINVAL"))
        XCTAssertTrue(r.expect("app mremap l 1M move", .errno("EAGAIN")).text.contains("mlock_future_ok"))
        XCTAssertTrue(r.expect("app mremap u 1M move", .errno("EFAULT")).text.contains("VM_PFNMAP"))
        XCTAssertEqual(r.ok("app mremap x 16K").text.contains("nothing to do"), true)
    }

    func testLockedGrowthChargesAndPopulates() {
        var r = scenario("machine ram=64M memlock=1M\nprocess app\napp mmap l 16K locked\napp mmap low 4K")
        _ = r.ok("app mremap l 64K move")
        XCTAssertEqual(r.meta("app").lockedVMPages, 16)
        XCTAssertEqual(r.state.bufferStats(r.p("app"), r.buffer("app", "l")).present, 16, "mm_populate faults the new part in")
    }

    func testEveryMremapStepUndoesExactly() {
        assertEveryStepUndoes("""
            machine ram=64M thp=always swap=8M
            process app
            device nic iommu=vtd
            app mmap a 4M
            app mmap b 64K
            app write a
            app write b
            app mremap a 3M
            app mremap b 128K move
            nic map app.b write
            app mremap b 4M move
            app mremap a 5M move
            app fork kid
            kid mremap a 1M
            app exit
            """)
    }
}
