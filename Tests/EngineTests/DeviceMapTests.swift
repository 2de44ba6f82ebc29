// `DEV map` / `DEV unmap`: VFIO-type1-like pinning (FOLL_LONGTERM [|FOLL_WRITE]), locked_vm
// accounting (reference §3), IOVA allocation and iommu_map (§4.1, §4.4), I/O page-table pages,
// and strict versus lazy IOTLB invalidation on unmap.

import XCTest

@testable import Engine

final class DeviceMapTests: XCTestCase {
    // MARK: - Pinning and accounting

    /// The whole state after a map: the pins, locked_vm, MMF_HAS_PINNED, the mapping, its IOPTEs and
    /// the I/O page-table pages they needed, and nothing else.
    func testMapPinsEachPageWithTheBiasAndChargesLockedVM() {
        var s = scenario("""
        process app
        device gpu
        app mmap buf 16K
        app write buf
        """)
        let pfns = s.pageFrames("app", "buf")
        let pid = s.pid("app")
        let va = s.buffer("app", "buf").start
        s.assertStep("gpu map app.buf") { e, after in
            for pfn in pfns { e.frames[pfn] = FrameView(use: .anon, flags: FrameFlag.anonExclusive, refcount: 1 + 1024, mapcount: 1, pincount: 1, owner: pid) }
            // VFIO charges locked_vm, not pinned_vm; any FOLL_PIN sets MMF_HAS_PINNED.
            e.processes["app"]!.counters.lockedVMPages = 4
            e.processes["app"]!.counters.hasPinned = true
            // One contiguous IOVA range, aligned to its (power-of-two) size, one 4K IOPTE per page,
            // writable: map without read/write is a write mapping (FOLL_WRITE).
            let iova = after.devices[0].mappings.first?.iova ?? 0
            XCTAssertEqual(iova % (16 * ioK), 0)
            e.devices["gpu"]!.mappings = [IOMapping(process: "app", buffer: "buf", iova: iova, size: 16 * ioK, va: va,
                                                    pfns: pfns.map(Int32.init), writable: true, pinnedPages: 4, lockedPages: 4,
                                                    kernelBuffer: -1, iovaLength: 16 * ioK)]
            e.devices["gpu"]!.ioptes = pfns.enumerated().map { IOPTEView(iova + UInt64($0.offset) * pageSize, UInt64($0.element) << pageShift, pageSize) }
            // vtd: below the root, a level-3, a level-2 and a leaf table.
            e.addIOTables("gpu", count: 3, after: after)
        }
        XCTAssertTrue(s.dev("gpu").ioptes.values.allSatisfy(\.writable))
    }

    /// A write mapping of untouched memory write-faults every page (FOLL_WRITE): no zero page is pinned.
    func testWriteMapOfUntouchedMemoryFaultsWritablePages() {
        var s = scenario("""
        process app
        device gpu
        app mmap buf 32K
        """)
        s.ok("gpu map app.buf write")
        let ptes = s.ptes("app", "buf")
        XCTAssertTrue(ptes.allSatisfy { $0.present && !$0.zero && $0.writable }, "\(ptes)")
        let pfns = s.pageFrames("app", "buf")
        XCTAssertEqual(Set(pfns).count, 8)
        XCTAssertEqual(s.counts(pfns), Array(repeating: IOFrameCounts(ref: 1025, map: 1, pin: 1), count: 8))
        XCTAssertEqual(s.mapping("gpu", "app", "buf")!.pfns.map(Int.init), pfns)
    }

    /// A read mapping (FOLL_LONGTERM without FOLL_WRITE) of untouched memory: the long-term read pin
    /// of the zero page unshares it (6.12), so each page is a fresh exclusive page, mapped read-only.
    func testReadMapOfUntouchedMemoryPinsFreshReadOnlyPages() {
        var s = scenario("""
        process app
        device gpu
        app mmap buf 16K
        """)
        s.ok("gpu map app.buf read")
        let ptes = s.ptes("app", "buf")
        XCTAssertTrue(ptes.allSatisfy { $0.present && !$0.zero && !$0.writable }, "\(ptes)")
        let pfns = s.pageFrames("app", "buf")
        XCTAssertFalse(pfns.contains(s.zeroPfn))
        XCTAssertEqual(s.counts(pfns), Array(repeating: IOFrameCounts(ref: 1025, map: 1, pin: 1), count: 4))
        XCTAssertTrue(s.dev("gpu").ioptes.values.allSatisfy { !$0.writable })
        // The device may read but not write: a device write is an IOMMU fault.
        s.expect("gpu dma app.buf write", .iommuFault)
        s.ok("gpu dma app.buf read")
    }

    func testMapOverTheMemlockLimitIsENOMEMWithNothingPinned() {
        var s = scenario("""
        machine memlock=64K
        process app
        device gpu
        app mmap buf 128K
        app write buf
        """)
        let before = s.state
        let r = s.expect("gpu map app.buf", .errno("ENOMEM"))
        XCTAssertTrue(r.text.contains("RLIMIT_MEMLOCK"), r.text)
        XCTAssertTrue(s.state.phys == before.phys, "no frame changed: nothing was pinned")
        XCTAssertEqual(s.meta("app").lockedVMPages, 0)
        XCTAssertEqual(s.dev("gpu").mappings, [])
        XCTAssertEqual(s.ioptes("gpu"), [])
        // Exactly at the limit is allowed.
        s.ok("gpu map app.buf 0 64K")
        XCTAssertEqual(s.meta("app").lockedVMPages, 16)
    }

    /// locked_vm is shared between mlock and VFIO (reference §3.2 notes): mlock 4M + map 6M > 8M.
    func testMlockAndMapShareLockedVM() {
        var s = scenario("""
        machine ram=64M memlock=8M
        process app
        device gpu
        app mmap a 4M
        app mmap b 6M
        app mlock a
        """)
        XCTAssertEqual(s.meta("app").lockedVMPages, 1024)
        s.expect("gpu map app.b", .errno("ENOMEM"))
        XCTAssertEqual(s.meta("app").lockedVMPages, 1024)
        s.ok("app munlock a")
        s.ok("gpu map app.b")
        XCTAssertEqual(s.meta("app").lockedVMPages, 1536)
    }

    func testCapIPCLockBypassesTheLimit() {
        var s = scenario("""
        machine memlock=64K
        process app cap=ipc_lock
        device gpu
        app mmap buf 1M
        """)
        s.ok("gpu map app.buf")
        XCTAssertEqual(s.meta("app").lockedVMPages, 256, "still charged, just not limited")
        XCTAssertEqual(s.mapping("gpu", "app", "buf")?.pinnedPages, 256)
    }

    // MARK: - IOVAs

    func testIOVARangesAreSizeAlignedAndDisjoint() {
        var s = scenario("""
        process app
        device gpu
        app mmap a 12K
        app mmap b 40K
        app mmap c 4K
        app mmap d 256K
        """)
        for b in ["a", "b", "c", "d"] { s.ok("gpu map app.\(b)") }
        let maps = s.dev("gpu").mappings
        XCTAssertEqual(maps.map(\.size), [12 * ioK, 40 * ioK, 4 * ioK, 256 * ioK])
        for m in maps {
            let pages = m.size >> pageShift
            var align: UInt64 = 1
            while align < pages { align <<= 1 }
            XCTAssertEqual(m.iova % (align << pageShift), 0, "\(m.buffer) at 0x\(String(m.iova, radix: 16)) is not aligned to its size rounded up to a power of two")
            XCTAssertGreaterThan(m.iova, 0, "IOVA 0 is never handed out")
            // Its IOPTEs cover exactly [iova, iova+size), contiguously.
            let mine = s.ioptes("gpu").filter { $0.iova >= m.iova && $0.iova < m.iova + m.size }
            XCTAssertEqual(mine.map(\.iova), (0..<pages).map { m.iova + $0 * pageSize })
        }
        for (i, x) in maps.enumerated() {
            for y in maps[(i + 1)...] {
                XCTAssertTrue(x.iova + x.size <= y.iova || y.iova + y.size <= x.iova, "\(x.buffer) and \(y.buffer) overlap")
            }
        }
        XCTAssertEqual(s.ioptes("gpu").count, 3 + 10 + 1 + 64)
    }

    /// The IOVA allocator rounds sizes below 32 pages up to a power of two and allocates that much
    /// (reference §4.4): a 3-page mapping occupies 4 pages of IOVA space, so nothing else lands in the 4th.
    func testIOVAAllocatorReservesTheRoundedUpSize() {
        var s = scenario("""
        process app
        device gpu
        app mmap a 12K
        app mmap c 4K
        app mmap e 20K
        app mmap f 8K
        """)
        for b in ["a", "c", "e", "f"] { s.ok("gpu map app.\(b)") }
        let maps = s.dev("gpu").mappings
        func reserved(_ m: IOMapping) -> Range<UInt64> {
            var pages: UInt64 = 1
            while pages < m.size >> pageShift { pages <<= 1 }
            return m.iova..<(m.iova + pages << pageShift)
        }
        for (i, x) in maps.enumerated() {
            for y in maps[(i + 1)...] {
                XCTAssertFalse(reserved(x).overlaps(reserved(y)),
                               "\(x.buffer) [0x\(String(x.iova, radix: 16)), +\(x.size)) and \(y.buffer) [0x\(String(y.iova, radix: 16)), +\(y.size)) share a rounded-up IOVA range")
            }
        }
    }

    /// VFIO has no can_do_mlock() check: with RLIMIT_MEMLOCK 0 the map fails the limit test with
    /// ENOMEM (reference §3.2; EPERM is mlock's and ib_umem_get's answer).
    func testMapWithMemlockZeroIsENOMEM() {
        var s = scenario("""
        process app memlock=0
        device gpu
        app mmap buf 16K
        """)
        s.expect("gpu map app.buf", .errno("ENOMEM"))
        XCTAssertEqual(s.meta("app").lockedVMPages, 0)
        // ib_umem_get-style long-term pins do check can_do_mlock first: EPERM.
        s.expect("app pin buf longterm", .errno("EPERM"))
    }

    /// The expect keys for devices and processes read what the tests above read.
    func testExpectKeysThroughTheScenarioRunner() throws {
        let script = try parseScript("""
        machine ram=128M
        process app
        device gpu iotlb=64 pagesizes=4K,2M
        app mmap buf 64K
        app write buf
        gpu map app.buf
        expect app locked_vm=64K pinned_vm=0
        expect app.buf pinned=16 present=16
        expect gpu mappings=16 large_ioptes=0 maps=1 table_pages=4
        gpu dma app.buf read
        expect gpu accesses=1024 hits=1008 misses=16 walks=16 stall_ns=19200 faults=0 iotlb_entries=16
        app ump-alloc u 4M linear
        gpu map app.u
        expect gpu large_ioptes=2 maps=2
        app pin buf longterm
        expect app pinned_vm=64K locked_vm=64K
        gpu dma-trace t.txt unit=page
        expect last ok=false outcome=IOMMU_FAULT
        expect gpu faults=1
        """, fileName: "expect.ump")
        let result = ScenarioRunner.run(script, traces: IOArrayTraces(files: ["t.txt": [1]]))
        XCTAssertEqual(result.failures.map(\.message), [])
    }

    func testIOVAOptionIsHonouredExactlyEvenUnalignedToTheSize() {
        var s = scenario("""
        process app
        device gpu
        app mmap buf 64K
        app write buf
        """)
        s.ok("gpu map app.buf iova=0x3000")
        let pfns = s.pageFrames("app", "buf")
        XCTAssertEqual(s.mapping("gpu", "app", "buf")?.iova, 0x3000)
        XCTAssertEqual(s.ioptes("gpu"), pfns.enumerated().map { IOPTEView(0x3000 + UInt64($0.offset) * pageSize, UInt64($0.element) << pageShift, pageSize) })
    }

    func testIOVAUnalignedTo4KIsEINVALAndTakesNothing() {
        var s = scenario("""
        process app
        device gpu
        app mmap buf 16K
        app write buf
        """)
        let pfns = s.pageFrames("app", "buf")
        let before = s.counts(pfns)
        s.expect("gpu map app.buf iova=0x1800", .errno("EINVAL"))
        XCTAssertEqual(s.counts(pfns), before, "the pins taken before the check are given back")
        XCTAssertEqual(s.meta("app").lockedVMPages, 0)
        XCTAssertEqual(s.dev("gpu").mappings, [])
        XCTAssertEqual(s.ioptes("gpu"), [])
    }

    /// The fifth way a map fails: iommu_map runs out of memory for I/O page-table pages, after the
    /// pins were taken and some IOPTEs set. Here the OOM killer takes the mapping process itself (its
    /// page tables are all it can free), the tables still do not fit, and the map fails. Everything
    /// the map took must go back: no pin may outlive it, no IOPTE stay without a mapping. (Before
    /// the fix the pins stayed, so the dead process's frames were never freed, and so did the IOPTEs.)
    func testMapThatRunsOutOfIOPageTablesGivesBackItsPinsAndIOPTEs() throws {
        // arm-v7s needs a leaf table per MiB of IOVA; the process's own page tables take one per
        // 2 MiB, so killing it frees fewer frames than the map still needs.
        let machine = """
            machine ram=16M thp=never memlock=64M
            process app
            device gpu iommu=arm-v7s pagesizes=4K
            """
        // A buffer that leaves at most one frame free once written, found by trying sizes.
        let free = scenario(machine).state.phys.freeFrames
        var found: (EngineRun, String)?
        for pages in (free - free / 512 - 8)..<free {
            let source = machine + "\napp mmap buf \(pages * 4096)\napp write buf"
            let t = run(source)
            guard t.last.outcome == .ok else { break }
            if t.state.phys.freeFrames <= 1 {
                found = (t, source)
                break
            }
        }
        var (s, source) = try XCTUnwrap(found, "a buffer size that fills memory")
        let pfns = s.pfns("app", "buf")
        let r = s.expect("gpu map app.buf", .oom)
        XCTAssertTrue(r.text.contains("out of memory for I/O page-table pages"), r.text)
        XCTAssertTrue(r.events.oomVictims.map(\.name) == ["app"], "the OOM killer took the mapping process")
        XCTAssertFalse(s.meta("app").alive)
        XCTAssertEqual(s.meta("app").lockedVMPages, 0)
        XCTAssertEqual(pfns.filter { s.pincount($0) > 0 }, [], "no pin outlives the failed map")
        XCTAssertEqual(pfns.filter { s.use($0) != .free }, [], "the dead process's pages are freed once unpinned")
        XCTAssertEqual(s.ioptes("gpu"), [], "the IOPTEs set before the failure are gone")
        XCTAssertEqual(s.dev("gpu").mappings, [])
        // And the failed map undoes exactly, like every step.
        assertEveryStepUndoes(source + "\ngpu map app.buf")
    }

    func testMappingOverAMappingIsEEXIST() {
        var s = scenario("""
        process app
        device gpu
        app mmap a 16K
        app mmap b 16K
        app write a
        app write b
        gpu map app.a iova=0x100000
        """)
        let ioptes = s.ioptes("gpu")
        let pa = s.pageFrames("app", "a"), pb = s.pageFrames("app", "b")
        let before = s.counts(pa + pb)
        // The same buffer again.
        s.expect("gpu map app.a", .errno("EEXIST"))
        // Another buffer over part of the first one's IOVAs.
        s.expect("gpu map app.b iova=0x102000", .errno("EEXIST"))
        s.expect("gpu map app.b iova=0xfe000", .errno("EEXIST"))
        XCTAssertEqual(s.ioptes("gpu"), ioptes, "the existing IOPTEs are untouched")
        XCTAssertEqual(s.counts(pa + pb), before, "refused maps leave no pins behind")
        XCTAssertEqual(s.meta("app").lockedVMPages, 4)
        // Right after it is fine.
        s.ok("gpu map app.b iova=0x104000")
        XCTAssertEqual(s.ioptes("gpu").count, 8)
    }

    // MARK: - Large IOPTEs for physically contiguous memory

    func testLinearUMPGets2MIOPTEsOnVTd() {
        var s = scenario("""
        machine ram=128M
        process app
        device gpu iommu=vtd
        app ump-alloc u 8M linear
        """)
        s.ok("gpu map app.u")
        let m = s.mapping("gpu", "app", "u")!
        let pa = UInt64(s.pageFrames("app", "u")[0]) << pageShift
        XCTAssertEqual(s.ioptes("gpu"), ioRun(m.iova, pa, 2 * ioM, count: 4))
        XCTAssertEqual(m.pinnedPages, 0, "UMP memory is not pinned")
        XCTAssertEqual(m.lockedPages, 0)
        XCTAssertEqual(s.meta("app").lockedVMPages, 0)
    }

    func testCMAHeapDmabufGets2MIOPTEsOnVTd() {
        var s = scenario("""
        machine ram=128M cma=32M
        process app
        device gpu iommu=vtd
        app dmabuf-alloc d 4M heap=cma
        """)
        let pfns = s.pageFrames("app", "d")
        XCTAssertEqual(pfns, Array(pfns[0]..<(pfns[0] + 1024)), "the CMA heap is physically contiguous")
        XCTAssertTrue(pfns.allSatisfy { s.state.phys.isCMA($0) })
        s.ok("gpu map app.d")
        let m = s.mapping("gpu", "app", "d")!
        XCTAssertEqual(s.ioptes("gpu"), ioRun(m.iova, UInt64(pfns[0]) << pageShift, 2 * ioM, count: 2))
    }

    func testV7sSectionsAndSupersections() {
        var s = scenario("""
        machine ram=128M
        process app
        device isp iommu=arm-v7s
        device jpeg iommu=arm-v7s
        app ump-alloc s 2M linear
        app ump-alloc big 32M linear
        """)
        s.ok("isp map app.s")
        let ms = s.mapping("isp", "app", "s")!
        XCTAssertEqual(s.ioptes("isp"), ioRun(ms.iova, UInt64(s.pageFrames("app", "s")[0]) << pageShift, ioM, count: 2))
        // The 16M-aligned 16M inside the linear buffer: the IOVA allocator aligns a 16M range to 16M,
        // so a supersection fits.
        let pa = UInt64(s.pageFrames("app", "big")[0]) << pageShift
        let off = (16 * ioM - pa % (16 * ioM)) % (16 * ioM)
        s.ok("jpeg map app.big \(off) 16M")
        let mb = s.mapping("jpeg", "app", "big")!
        XCTAssertEqual(mb.iova % (16 * ioM), 0)
        XCTAssertEqual(s.ioptes("jpeg"), [IOPTEView(mb.iova, pa + off, 16 * ioM)])
    }

    func testPagesizes4KForces4KIOPTEs() {
        var s = scenario("""
        machine ram=128M
        process app
        device gpu iommu=vtd pagesizes=4K
        device isp iommu=arm-v7s pagesizes=4K
        app ump-alloc u 4M linear
        """)
        let pa = UInt64(s.pageFrames("app", "u")[0]) << pageShift
        s.ok("gpu map app.u")
        s.ok("isp map app.u")
        XCTAssertEqual(s.ioptes("gpu"), ioRun(s.mapping("gpu", "app", "u")!.iova, pa, pageSize, count: 1024))
        XCTAssertEqual(s.ioptes("isp"), ioRun(s.mapping("isp", "app", "u")!.iova, pa, pageSize, count: 1024))
    }

    /// A THP-backed buffer is physically contiguous in 2M pieces: VFIO maps each run, 2M IOPTEs.
    func testTHPBackedBufferGets2MIOPTEs() {
        var s = scenario("""
        machine ram=128M thp=madvise
        process app cap=ipc_lock
        device gpu
        app mmap buf 8M hugepage
        app write buf
        """)
        XCTAssertTrue(s.ptes("app", "buf").allSatisfy { $0.present }, "every page is present")
        s.ok("gpu map app.buf")
        let m = s.mapping("gpu", "app", "buf")!
        let pfns = s.pageFrames("app", "buf")
        XCTAssertEqual(s.ioptes("gpu"), (0..<4).map { IOPTEView(m.iova + UInt64($0) * 2 * ioM, UInt64(pfns[$0 * 512]) << pageShift, 2 * ioM) })
        // THP folios: FOLL_PIN on a large folio adds 1 per page and counts the pin exactly.
        XCTAssertEqual(Set(s.counts(pfns).map(\.pin)), [1])
    }

    // MARK: - I/O page-table pages

    func testIOPageTablePagesAreFramesAndTheRootExistsFromCreation() {
        var s = scenario("""
        machine ram=128M
        process app
        app mmap buf 16K
        app write buf
        app ump-alloc u 4M linear
        """)
        XCTAssertEqual(s.frames(use: .iopagetable), [])
        s.ok("device gpu iommu=vtd")
        let gpu = s.dev("gpu")
        XCTAssertEqual(gpu.tablePages.count, 1, "the root table exists from device creation")
        XCTAssertEqual(s.frames(use: .iopagetable), gpu.tablePages.values.map(Int.init))
        s.ok("device isp iommu=arm-v7s")
        XCTAssertEqual(s.dev("isp").tablePages.count, 1)
        XCTAssertEqual(s.frames(use: .iopagetable).count, 1 + 4, "a v7s level-1 table is 16 KiB: four frames")
        s.ok("device acc iommu=sva")
        s.ok("device dma0 iommu=none")
        XCTAssertEqual(s.dev("acc").tablePages, [:], "SVA walks the CPU's own page table")
        XCTAssertEqual(s.dev("dma0").tablePages, [:])
        XCTAssertEqual(s.frames(use: .iopagetable).count, 5)

        // A 4K leaf on a 4-level table needs the three tables below the root.
        s.ok("gpu map app.buf")
        XCTAssertEqual(s.dev("gpu").tablePages.count, 4)
        // 2M leaves sit in level-2 tables: IOVA 1G shares the level-3 table (512G reach) with the
        // first mapping (below 4G) but needs its own level-2 table; no level-1 table.
        s.ok("gpu map app.u iova=0x40000000")
        XCTAssertEqual(s.dev("gpu").tablePages.count, 5)
        let tables = Set(s.dev("gpu").tablePages.values.map(Int.init)).union(s.dev("isp").tablePages.values.map(Int.init))
        let io = Set(s.frames(use: .iopagetable))
        XCTAssertTrue(tables.isSubset(of: io))
        XCTAssertEqual(io.count, 5 + 4)
    }

    // MARK: - Unmap

    func testUnmapRemovesIOPTEsUnpinsAndUncharges() {
        var s = scenario("""
        process app
        device gpu
        app mmap buf 64K
        app write buf
        """)
        let pfns = s.pageFrames("app", "buf")
        let before = s.counts(pfns)
        s.ok("gpu map app.buf")
        s.ok("gpu dma app.buf write")
        XCTAssertGreaterThan(s.dev("gpu").iotlb.entryCount, 0)
        s.ok("gpu unmap app.buf")
        XCTAssertEqual(s.ioptes("gpu"), [])
        XCTAssertEqual(s.dev("gpu").mappings, [])
        XCTAssertEqual(s.counts(pfns), before, "refcounts back to where they were")
        XCTAssertEqual(s.meta("app").lockedVMPages, 0)
        XCTAssertEqual(s.dev("gpu").iotlb.entryCount, 0, "flush=strict invalidates the IOTLB at once")
        XCTAssertEqual(s.dev("gpu").lazyUnmapped, [])
        s.expect("gpu dma app.buf read", .errno("EINVAL"))
    }

    /// Unmapping the only thing that kept a frame alive (the process munmapped it) frees the frame.
    func testUnmapFreesFramesOnlyThePinKeptAlive() {
        var s = scenario("""
        process app
        device gpu
        app mmap buf 16K
        app write buf
        gpu map app.buf
        """)
        let pfns = s.pageFrames("app", "buf")
        s.ok("app munmap buf")
        XCTAssertEqual(s.counts(pfns), Array(repeating: IOFrameCounts(ref: 1024, map: 0, pin: 1), count: 4))
        XCTAssertTrue(pfns.allSatisfy { s.use($0) == .anon })
        s.ok("gpu unmap app.buf")
        XCTAssertTrue(pfns.allSatisfy { s.use($0) == .free }, "\(pfns.map { s.use($0) })")
    }

    func testLazyUnmapLeavesStaleEntriesUsableUntilTheNextMap() {
        var s = scenario("""
        process app
        device gpu flush=lazy
        app mmap buf 64K
        app mmap other 16K
        app write buf
        gpu map app.buf
        gpu dma app.buf write
        """)
        let filled = s.dev("gpu").iotlb.entryCount
        XCTAssertEqual(filled, 16)
        let pfns = s.pageFrames("app", "buf")
        s.ok("gpu unmap app.buf")
        XCTAssertEqual(s.ioptes("gpu"), [], "the IOPTEs go at once")
        XCTAssertEqual(s.counts(pfns), Array(repeating: IOFrameCounts(ref: 1, map: 1, pin: 0), count: 16), "and the pages are unpinned")
        XCTAssertEqual(s.dev("gpu").iotlb.entryCount, filled, "but the IOTLB keeps its entries")
        XCTAssertTrue(s.dev("gpu").iotlb.sets.joined().allSatisfy(\.stale))
        XCTAssertEqual(s.dev("gpu").lazyUnmapped.count, 1)

        let statsBefore = s.dev("gpu").stats
        let r = s.ok("gpu dma app.buf read size=4K")
        XCTAssertFalse(r.hazards.isEmpty, "a DMA through stale entries is a hazard")
        var want = statsBefore
        want.accesses += 16
        want.hits += 16
        want.hazards += 16
        XCTAssertEqual(s.dev("gpu").stats, want)

        // The next map drains the flush queue: the stale entries go, the old IOVAs are dead.
        s.ok("gpu map app.other")
        XCTAssertEqual(s.dev("gpu").lazyUnmapped, [])
        XCTAssertFalse(s.dev("gpu").iotlb.sets.joined().contains(where: \.stale))
        XCTAssertEqual(s.dev("gpu").iotlb.entryCount, 0)
        let r2 = s.expect("gpu dma app.buf read size=4K", .errno("EINVAL"))
        XCTAssertEqual(r2.hazards, [])
        XCTAssertEqual(s.dev("gpu").stats.hazards, 16)
    }

    /// IOVA_DEFAULT_FQ_SIZE: 256 queued unmaps drain the queue without a map.
    func testLazyFlushQueueDrainsAt256() {
        var lines = ["machine ram=128M", "process app cap=ipc_lock", "device gpu flush=lazy iotlb=512"]
        for i in 0..<256 { lines.append("app mmap b\(i) 4K") }
        for i in 0..<256 { lines.append("gpu map app.b\(i)") }
        var s = scenario(lines.joined(separator: "\n"))
        for i in 0..<256 { s.ok("gpu dma app.b\(i) write") }
        XCTAssertEqual(s.dev("gpu").iotlb.entryCount, 256)
        for i in 0..<255 { s.ok("gpu unmap app.b\(i)") }
        XCTAssertEqual(s.dev("gpu").lazyUnmapped.count, 255)
        XCTAssertEqual(s.dev("gpu").iotlb.entryCount, 256)
        XCTAssertEqual(s.dev("gpu").iotlb.sets.joined().filter(\.stale).count, 255)
        let r = s.ok("gpu dma app.b0 read")
        XCTAssertEqual(r.hazards.count, 1)
        s.ok("gpu unmap app.b255")
        XCTAssertEqual(s.dev("gpu").lazyUnmapped, [], "the 256th queued invalidation drains the queue")
        XCTAssertEqual(s.dev("gpu").iotlb.entryCount, 0)
        let r2 = s.expect("gpu dma app.b0 read", .errno("EINVAL"))
        XCTAssertEqual(r2.hazards, [])
    }

    /// Strict flush: the same sequence never reaches freed memory.
    func testStrictUnmapLeavesNothingToHit() {
        var s = scenario("""
        process app
        device gpu flush=strict
        app mmap buf 64K
        app write buf
        gpu map app.buf
        gpu dma app.buf write
        gpu unmap app.buf
        """)
        XCTAssertEqual(s.dev("gpu").iotlb.entryCount, 0)
        let r = s.expect("gpu dma app.buf read", .errno("EINVAL"))
        XCTAssertEqual(r.hazards, [])
        XCTAssertEqual(s.dev("gpu").stats.hazards, 0)
    }
}
