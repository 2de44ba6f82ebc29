// `DEV dma`: patterns through the IOTLB, the shape of the pcie-bench measurements (reference §5.1),
// SVA's I/O page faults (§6.5) and devices without an IOMMU.

import XCTest

@testable import Engine

final class DMATests: XCTestCase {
    // MARK: - Counting

    func testSequentialDMACountsOneMissPerPage() {
        var s = scenario("""
        process app
        device gpu pagesizes=4K iotlb=64 walk=300 hit=2
        app mmap buf 64K
        app write buf
        gpu map app.buf
        """)
        s.ok("gpu dma app.buf read")
        XCTAssertEqual(s.dev("gpu").stats, DeviceStats(accesses: 1024, hits: 1008, misses: 16, walks: 16,
                                                       stallNs: 16 * 4 * 300 + 1008 * 2, faults: 0, hazards: 0, ioPageFaults: 0))
        // Again: everything is cached now.
        s.ok("gpu dma app.buf write passes=2")
        XCTAssertEqual(s.dev("gpu").stats, DeviceStats(accesses: 3072, hits: 3056, misses: 16, walks: 16,
                                                       stallNs: 16 * 4 * 300 + 3056 * 2, faults: 0, hazards: 0, ioPageFaults: 0))
    }

    /// A 2M IOPTE is one IOTLB entry and one shorter walk (its leaf sits a level up).
    func testA2MIOPTEIsOneEntryAndAShorterWalk() {
        var s = scenario("""
        machine ram=128M
        process app
        device gpu iotlb=64 walk=300
        app ump-alloc u 4M linear
        gpu map app.u
        """)
        XCTAssertEqual(s.ioptes("gpu").map(\.size), [2 * ioM, 2 * ioM])
        s.ok("gpu dma app.u read size=4K")
        XCTAssertEqual(s.dev("gpu").stats, DeviceStats(accesses: 1024, hits: 1022, misses: 2, walks: 2, stallNs: 2 * 3 * 300, faults: 0, hazards: 0, ioPageFaults: 0))
        XCTAssertEqual(s.dev("gpu").iotlb.entryCount, 2)
    }

    func testAccessCrossingAPageNeedsBothTranslations() {
        var s = scenario("""
        process app
        device gpu pagesizes=4K
        app mmap buf 16K
        gpu map app.buf
        """)
        // Two 8K bursts at offsets 0 and 8K: each spans two pages, so each needs two translations.
        s.ok("gpu dma app.buf read size=8K")
        let st = s.dev("gpu").stats
        XCTAssertEqual(st.accesses, 4, "two 8K accesses, each spanning two pages")
        XCTAssertEqual(st.misses, 4)
    }

    // MARK: - pcie-bench shape (§5.1)

    func ioMissRate(_ s: inout EngineRun, _ dev: String, _ line: String) -> Double {
        let before = s.dev(dev).stats
        s.ok(line)
        let after = s.dev(dev).stats
        return Double(after.misses - before.misses) / Double(max(1, after.accesses - before.accesses))
    }

    func test4KIOPTEs256KWindowAlmostNeverMisses() {
        var s = scenario("""
        process app cap=ipc_lock
        device gpu iotlb=64 pagesizes=4K
        app mmap w 256K
        app write w
        gpu map app.w read
        gpu dma app.w read pattern=random size=64 count=2000
        """)
        XCTAssertEqual(s.ioptes("gpu").count, 64)
        let rate = ioMissRate(&s, "gpu", "gpu dma app.w read pattern=random size=64 count=20000")
        XCTAssertLessThan(rate, 0.05, "64 pages fit a 64-entry IOTLB")
    }

    func test4KIOPTEs16MWindowAlmostAlwaysMisses() {
        var s = scenario("""
        process app cap=ipc_lock
        device gpu iotlb=64 pagesizes=4K
        app mmap w 16M
        app write w
        gpu map app.w read
        gpu dma app.w read pattern=random size=64 count=2000
        """)
        XCTAssertEqual(s.ioptes("gpu").count, 4096)
        let rate = ioMissRate(&s, "gpu", "gpu dma app.w read pattern=random size=64 count=20000")
        XCTAssertGreaterThan(rate, 0.90, "4096 pages through 64 entries")
    }

    func test2MIOPTEsFromTHP64MWindowAlmostNeverMisses() {
        var s = scenario("""
        machine ram=256M thp=madvise
        process app cap=ipc_lock
        device gpu iotlb=64
        app mmap w 64M hugepage
        app write w
        gpu map app.w read
        gpu dma app.w read pattern=random size=64 count=2000
        """)
        XCTAssertEqual(s.ioptes("gpu").map(\.size), Array(repeating: 2 * ioM, count: 32))
        let rate = ioMissRate(&s, "gpu", "gpu dma app.w read pattern=random size=64 count=20000")
        XCTAssertLessThan(rate, 0.05)
    }

    func test2MIOPTEsFromLinearUMP64MWindowAlmostNeverMisses() {
        var s = scenario("""
        machine ram=256M
        process app
        device gpu iotlb=64
        app ump-alloc w 64M linear
        gpu map app.w read
        gpu dma app.w read pattern=random size=64 count=2000
        """)
        XCTAssertEqual(s.ioptes("gpu").map(\.size), Array(repeating: 2 * ioM, count: 32))
        let rate = ioMissRate(&s, "gpu", "gpu dma app.w read pattern=random size=64 count=20000")
        XCTAssertLessThan(rate, 0.05)
    }

    func test2MIOPTEsFromCMAHeap64MWindowAlmostNeverMisses() {
        var s = scenario("""
        machine ram=256M cma=96M
        process app
        device gpu iotlb=64
        app dmabuf-alloc w 64M heap=cma
        gpu map app.w read
        gpu dma app.w read pattern=random size=64 count=2000
        """)
        XCTAssertEqual(s.ioptes("gpu").map(\.size), Array(repeating: 2 * ioM, count: 32))
        let rate = ioMissRate(&s, "gpu", "gpu dma app.w read pattern=random size=64 count=20000")
        XCTAssertLessThan(rate, 0.05)
    }

    /// The same 64M linear buffer with superpages disabled (the `-nosp` runs) misses almost always.
    func testSameBufferWithout2MAlmostAlwaysMisses() {
        var s = scenario("""
        machine ram=256M
        process app
        device gpu iotlb=64 pagesizes=4K
        app ump-alloc w 64M linear
        gpu map app.w read
        gpu dma app.w read pattern=random size=64 count=2000
        """)
        let rate = ioMissRate(&s, "gpu", "gpu dma app.w read pattern=random size=64 count=20000")
        XCTAssertGreaterThan(rate, 0.90)
    }

    func testRandomPatternIsDeterministic() {
        let src = """
        process app
        device gpu iotlb=16 pagesizes=4K
        app mmap w 1M
        gpu map app.w
        gpu dma app.w read pattern=random size=64 count=5000
        """
        let a = scenario(src), b = scenario(src)
        XCTAssertTrue(a.dev("gpu") == b.dev("gpu"))
        XCTAssertEqual(a.dev("gpu").stats.accesses, 5000)
    }

    // MARK: - SVA (§6.5)

    func testSVANoPinNoIOPTEsIOPageFaultsFaultPagesIn() {
        var s = scenario("""
        process app
        device acc iommu=sva iotlb=64 walk=300
        app mmap buf 64K
        """)
        s.ok("acc map app.buf")
        XCTAssertEqual(s.ioptes("acc"), [])
        XCTAssertEqual(s.dev("acc").tablePages, [:])
        XCTAssertEqual(s.meta("app").lockedVMPages, 0)
        XCTAssertFalse(s.meta("app").hasPinned)
        XCTAssertTrue(s.ptes("app", "buf").allSatisfy(\.isNone), "binding faults nothing in")
        s.ok("acc dma app.buf write size=4K")
        XCTAssertEqual(s.dev("acc").stats, DeviceStats(accesses: 16, hits: 0, misses: 16, walks: 16, stallNs: 16 * 4 * 300,
                                                       faults: 0, hazards: 0, ioPageFaults: 16))
        let ptes = s.ptes("app", "buf")
        XCTAssertTrue(ptes.allSatisfy { $0.present && $0.writable && !$0.zero }, "the CPU fault path made them present: \(ptes)")
        XCTAssertEqual(s.counts(s.pageFrames("app", "buf")), Array(repeating: IOFrameCounts(ref: 1, map: 1, pin: 0), count: 16), "nothing pinned")
        XCTAssertEqual(s.ioptes("acc"), [])
        // Present now: no more I/O page faults, all hits.
        s.ok("acc dma app.buf write size=4K")
        XCTAssertEqual(s.dev("acc").stats.ioPageFaults, 16)
        XCTAssertEqual(s.dev("acc").stats.hits, 16)
    }

    /// SVA pages stay reclaimable; after reclaim the device faults them back in.
    func testSVAPagesCanBeReclaimedAndFaultBackIn() {
        var s = scenario("""
        machine swap=16M
        process app
        device acc iommu=sva
        app mmap buf 64K
        acc map app.buf
        acc dma app.buf write size=4K
        """)
        s.ok("pressure 64K")
        XCTAssertTrue(s.ptes("app", "buf").allSatisfy(\.swapped), "unpinned SVA pages are reclaimed")
        s.ok("acc dma app.buf read size=4K")
        XCTAssertEqual(s.dev("acc").stats.ioPageFaults, 32)
        XCTAssertTrue(s.ptes("app", "buf").allSatisfy(\.present))
    }

    // MARK: - No IOMMU

    func testIOMMUNoneHasNoIOPTEsAndNoIOTLBStats() {
        var s = scenario("""
        process app
        device dma0 iommu=none
        app mmap buf 64K
        app write buf
        """)
        s.ok("dma0 map app.buf")
        let pfns = s.pageFrames("app", "buf")
        XCTAssertEqual(s.ioptes("dma0"), [])
        XCTAssertEqual(s.dev("dma0").tablePages, [:])
        XCTAssertEqual(s.mapping("dma0", "app", "buf")?.iova, UInt64(pfns[0]) << pageShift, "the device is given physical addresses")
        XCTAssertEqual(s.counts(pfns), Array(repeating: IOFrameCounts(ref: 1025, map: 1, pin: 1), count: 16), "the driver still pins")
        s.ok("dma0 dma app.buf write")
        XCTAssertEqual(s.dev("dma0").stats, DeviceStats(accesses: 1024, hits: 0, misses: 0, walks: 0, stallNs: 0, faults: 0, hazards: 0, ioPageFaults: 0))
        XCTAssertEqual(s.dev("dma0").iotlb.entryCount, 0)
    }

    // MARK: - transient

    func testTransientPinsOnlyInsideTheStep() {
        var s = scenario("""
        process app
        device gpu
        app mmap buf 64K
        app write buf
        """)
        let pfns = s.pageFrames("app", "buf")
        let before = s.counts(pfns)
        s.ok("gpu dma app.buf write transient")
        XCTAssertEqual(s.counts(pfns), before)
        XCTAssertEqual(s.dev("gpu").mappings, [])
        XCTAssertEqual(s.ioptes("gpu"), [])
        XCTAssertEqual(s.meta("app").lockedVMPages, 0)
        XCTAssertEqual(s.dev("gpu").stats.accesses, 1024)
        XCTAssertEqual(s.dev("gpu").iotlb.entryCount, 0, "strict flush after the transient unmap")
    }
}
