// Every step of scenarios that use pinning, IOMMU mapping, the IOTLB, DMA and sharing undoes
// exactly: the whole EngineState and the STATE JSON.

import XCTest

@testable import Engine

final class IOUndoTests: XCTestCase {
    let traces = IOArrayTraces(files: [
        "pages.txt": (0..<3000).map { UInt64(256 + ($0 * 7919) % 200) },
        "addrs.txt": [0x100000, 0x100040, 0x1ff000, 0x7777_0000],
    ])

    func testEveryStepUndoesAcrossPinningIOMMUAndSharing() {
        let records = assertEveryStepUndoes("""
        machine ram=128M cma=32M swap=16M memlock=1M seed=3
        process app
        process other
        process root cap=ipc_lock
        device gpu iommu=vtd iotlb=16 policy=lru flush=lazy
        device isp iommu=arm-v7s iotlb=8 ways=2 policy=fifo
        device rnd iommu=amd-v1 iotlb=8 policy=random
        device acc iommu=sva
        device raw iommu=none
        app mmap buf 1M
        app write buf
        app pin buf 0 64K
        app pin buf 64K 64K get
        app pin buf 128K 64K longterm
        app pin buf longterm
        app unpin buf
        app pin buf 0 64K longterm write
        gpu map app.buf iova=0x100000
        gpu map app.buf
        gpu map app.buf iova=0x1800
        gpu dma app.buf write pattern=random size=64 count=500
        gpu dma-trace pages.txt unit=page
        gpu dma-trace addrs.txt
        gpu dma-trace nothing.txt
        app fork child
        app write buf 0 16K
        child write buf 0 16K
        app madvise buf dontneed 0 8K
        gpu dma app.buf read size=4K
        gpu unmap app.buf
        gpu dma app.buf read size=4K
        root mmap big 2M
        root write big
        gpu map root.big iova=0x1800
        gpu map root.big
        app mmap huge 4M hugepage
        app write huge
        root pin big longterm
        app ump-alloc u 4M linear
        other ump-import u2 1
        isp map app.u
        isp dma app.u read pattern=stride:64K
        rnd map other.u2 iova=0x200000
        rnd dma other.u2 write pattern=tile:640x480@2560 size=64
        app dmabuf-alloc d 2M heap=cma
        gpu map other.d
        app send d other
        gpu map other.d read
        gpu dma other.d write
        other mmap s 64K
        acc map other.s
        acc dma other.s write size=4K
        pressure 256K
        acc dma other.s read size=4K
        root mmap h 4M hugepage
        root write h
        gpu map root.h
        raw map root.big
        raw dma root.big write
        compact
        app munmap buf 0 64K
        app exit
        other free d
        gpu unmap other.d
        isp dma other.u2 read transient
        child exit
        pressure 200M
        """, traces: traces)
        XCTAssertGreaterThan(records.count, 50)
        XCTAssertTrue(records.contains { !$0.hazards.isEmpty }, "the scenario reaches hazards")
        let outcomes = Set(records.map(\.outcome.word))
        XCTAssertTrue(outcomes.isSuperset(of: ["ok", "EEXIST", "EINVAL", "EBADF", "ENOENT", "ENOMEM", "OOM", "IOMMU_FAULT"]), "\(outcomes)")
    }

    func testEveryStepUndoesOnTheLegacyKernel() {
        assertEveryStepUndoes("""
        machine kernel=legacy ump-limit=memlock memlock=4M
        process app
        device gpu flush=lazy
        app mmap buf 64K
        app write buf
        gpu map app.buf
        app fork child
        app write buf
        gpu dma app.buf write
        app pin buf longterm
        child pin buf
        app ump-alloc u 2M
        app ump-alloc v 4M
        app free u
        gpu unmap app.buf
        gpu dma app.buf read
        app mmap z 64K
        app read z
        app pin z longterm
        app unpin z
        gpu map app.z read
        child exit
        app exit
        """)
    }

    /// 256 lazy unmaps drain the flush queue inside one step; that step undoes too.
    func testFlushQueueDrainUndoes() {
        var lines = ["machine ram=64M", "process app cap=ipc_lock", "device gpu flush=lazy iotlb=8"]
        for i in 0..<256 { lines.append("app mmap b\(i) 4K") }
        for i in 0..<256 { lines.append("gpu map app.b\(i)") }
        var s = scenario(lines.joined(separator: "\n"))
        for i in 0..<255 { s.ok("gpu unmap app.b\(i)") }
        let before = s.state
        let beforeJSON = s.engine.stateJSON()
        s.ok("gpu unmap app.b255")
        XCTAssertEqual(s.dev("gpu").lazyUnmapped, [])
        s.timeline.stepBack()
        XCTAssertTrue(s.state == before, stateDiff(s.state, before))
        XCTAssertEqual(s.engine.stateJSON(), beforeJSON)
        XCTAssertEqual(s.dev("gpu").lazyUnmapped.count, 255)
    }
}
