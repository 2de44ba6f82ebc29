// `PROC pin` / `unpin` (pin_user_pages, get_user_pages) and what pins do to the rest of memory
// management: reference §2.1–§2.6 and §3.2 (pinned_vm).

import XCTest

@testable import Engine

final class PinningTests: XCTestCase {
    // MARK: - FOLL_PIN versus FOLL_GET

    func testPinAddsTheBiasAndAPinCountPerSmallPage() {
        var s = scenario("""
        process app
        app mmap buf 16K
        app write buf
        """)
        let pfns = s.pageFrames("app", "buf")
        XCTAssertFalse(s.meta("app").hasPinned)
        s.ok("app pin buf")
        XCTAssertEqual(s.counts(pfns), Array(repeating: IOFrameCounts(ref: 1025, map: 1, pin: 1), count: 4))
        XCTAssertTrue(s.meta("app").hasPinned)
        XCTAssertEqual(s.meta("app").pins, [PinRecord(buffer: "buf", pfns: pfns.map(Int32.init), get: false, longterm: false, chargedPages: 0)])
        XCTAssertEqual(s.meta("app").pinnedVMPages, 0, "a short-term pin is not charged")
        // A second pin stacks.
        s.ok("app pin buf 0 4K")
        XCTAssertEqual(s.counts([pfns[0]]), [IOFrameCounts(ref: 2049, map: 1, pin: 2)])
        s.ok("app unpin buf")
        XCTAssertEqual(s.counts(pfns), Array(repeating: IOFrameCounts(ref: 1, map: 1, pin: 0), count: 4))
        XCTAssertEqual(s.meta("app").pins, [])
        XCTAssertTrue(s.meta("app").hasPinned, "MMF_HAS_PINNED is sticky")
    }

    func testGetAddsOneReferenceAndNoPinCount() {
        var s = scenario("""
        process app
        app mmap buf 16K
        app write buf
        """)
        let pfns = s.pageFrames("app", "buf")
        s.ok("app pin buf get")
        XCTAssertEqual(s.counts(pfns), Array(repeating: IOFrameCounts(ref: 2, map: 1, pin: 0), count: 4))
        XCTAssertFalse(s.meta("app").hasPinned, "FOLL_GET does not set MMF_HAS_PINNED")
        s.ok("app unpin buf")
        XCTAssertEqual(s.counts(pfns), Array(repeating: IOFrameCounts(ref: 1, map: 1, pin: 0), count: 4))
    }

    /// FOLL_GET on the zero page takes a reference (only FOLL_PIN skips it).
    func testGetOnTheZeroPageTakesAReference() {
        var s = scenario("""
        process app
        app mmap buf 16K
        """)
        let zero = s.zeroPfn
        let before = s.refcount(zero)
        s.ok("app pin buf get")
        XCTAssertTrue(s.ptes("app", "buf").allSatisfy(\.zero))
        XCTAssertEqual(s.refcount(zero), before + 4)
        s.ok("app unpin buf")
        XCTAssertEqual(s.refcount(zero), before, "put_page gives the references back")
    }

    /// Fork in 6.12 only detects FOLL_PIN: pages held with FOLL_GET are shared with the child as usual.
    func testFork612DoesNotCopyPagesHeldOnlyByGet() {
        var s = scenario("""
        process app
        app mmap buf 16K
        app write buf
        app pin buf get
        app fork child
        """)
        XCTAssertEqual(s.pageFrames("child", "buf"), s.pageFrames("app", "buf"))
    }

    // MARK: - What GUP does to the page tables (§2.2)

    func testShortTermReadPinNeverPinsTheZeroPage() {
        var s = scenario("""
        process app
        app mmap buf 16K
        """)
        let zero = s.zeroPfn
        let zeroBefore = s.counts([zero])
        s.ok("app pin buf")
        let ptes = s.ptes("app", "buf")
        XCTAssertTrue(ptes.allSatisfy { $0.present && $0.zero && !$0.writable }, "a read fault maps the zero page: \(ptes)")
        XCTAssertEqual(s.counts([zero]), zeroBefore, "\"Don't take a pin on the zero page\"")
        s.ok("app unpin buf")
        XCTAssertEqual(s.counts([zero]), zeroBefore, "unpin ignores the zero page")
    }

    func testWritePinReplacesTheZeroPage() {
        var s = scenario("""
        process app
        app mmap buf 16K
        app read buf
        """)
        XCTAssertTrue(s.ptes("app", "buf").allSatisfy(\.zero))
        s.ok("app pin buf write")
        let ptes = s.ptes("app", "buf")
        XCTAssertTrue(ptes.allSatisfy { $0.present && !$0.zero && $0.writable }, "\(ptes)")
        let pfns = s.pageFrames("app", "buf")
        XCTAssertEqual(Set(pfns).count, 4)
        XCTAssertEqual(s.counts(pfns), Array(repeating: IOFrameCounts(ref: 1025, map: 1, pin: 1), count: 4))
    }

    func testWritePinBreaksCOWAfterFork() {
        var s = scenario("""
        process app
        app mmap buf 16K
        app write buf
        app fork child
        """)
        let shared = s.pageFrames("app", "buf")
        XCTAssertEqual(s.pageFrames("child", "buf"), shared)
        s.ok("app pin buf write")
        let mine = s.pageFrames("app", "buf")
        XCTAssertTrue(zip(mine, shared).allSatisfy { $0 != $1 }, "the parent gets its own copies")
        XCTAssertEqual(s.pageFrames("child", "buf"), shared, "the child keeps the old frames")
        XCTAssertTrue(s.ptes("app", "buf").allSatisfy(\.writable))
        XCTAssertEqual(s.counts(mine), Array(repeating: IOFrameCounts(ref: 1025, map: 1, pin: 1), count: 4))
        XCTAssertEqual(s.counts(shared), Array(repeating: IOFrameCounts(ref: 1, map: 1, pin: 0), count: 4))
    }

    /// 6.12: a read-only FOLL_PIN of a shared anonymous page unshares it first (FAULT_FLAG_UNSHARE):
    /// the pinner gets an exclusive copy, its PTE stays read-only.
    func testReadOnlyPinOfASharedAnonPageUnsharesFirst() {
        var s = scenario("""
        process app
        app mmap buf 16K
        app write buf
        app fork child
        """)
        let shared = s.pageFrames("app", "buf")
        s.ok("app pin buf")
        let mine = s.pageFrames("app", "buf")
        XCTAssertTrue(zip(mine, shared).allSatisfy { $0 != $1 }, "unshared: \(mine) vs \(shared)")
        XCTAssertTrue(s.ptes("app", "buf").allSatisfy { $0.present && !$0.writable }, "the PTE stays read-only after an unshare fault")
        XCTAssertTrue(mine.allSatisfy { s.state.phys.flags[$0] & FrameFlag.anonExclusive != 0 }, "a pinned anon page is always PageAnonExclusive")
        XCTAssertEqual(s.counts(mine), Array(repeating: IOFrameCounts(ref: 1025, map: 1, pin: 1), count: 4))
        XCTAssertEqual(s.pageFrames("child", "buf"), shared)
        // A later parent write reuses the exclusive pinned page: pin and CPU stay coherent.
        let r = s.ok("app write buf")
        XCTAssertEqual(s.pageFrames("app", "buf"), mine)
        XCTAssertEqual(r.hazards, [])
    }

    /// kernel=legacy (before 5.19) has no unshare: the shared page itself is pinned.
    func testLegacyReadOnlyPinPinsTheSharedPage() {
        var s = scenario("""
        machine kernel=legacy
        process app
        app mmap buf 16K
        app write buf
        app fork child
        """)
        let shared = s.pageFrames("app", "buf")
        s.ok("app pin buf")
        XCTAssertEqual(s.pageFrames("app", "buf"), shared)
        XCTAssertEqual(s.counts(shared), Array(repeating: IOFrameCounts(ref: 2 + 1024, map: 2, pin: 1), count: 4))
    }

    /// 6.12: a read-only long-term pin of the zero page in a private mapping unshares it into a fresh
    /// exclusive page (read-only PTE) and pins that.
    func testLongtermReadPinReplacesTheZeroPage() {
        var s = scenario("""
        process app
        app mmap buf 16K
        app read buf
        """)
        let zeroBefore = s.counts([s.zeroPfn])
        s.ok("app pin buf longterm")
        let ptes = s.ptes("app", "buf")
        XCTAssertTrue(ptes.allSatisfy { $0.present && !$0.zero && !$0.writable }, "\(ptes)")
        let pfns = s.pageFrames("app", "buf")
        XCTAssertEqual(Set(pfns).count, 4)
        XCTAssertEqual(s.counts(pfns), Array(repeating: IOFrameCounts(ref: 1025, map: 1, pin: 1), count: 4))
        XCTAssertEqual(s.counts([s.zeroPfn]), zeroBefore)
        // CPU writes now land in the pinned pages (reuse of an exclusive page).
        s.ok("app write buf")
        XCTAssertEqual(s.pageFrames("app", "buf"), pfns)
    }

    func testLegacyLongtermReadPinLeavesTheZeroPage() {
        var s = scenario("""
        machine kernel=legacy
        process app
        app mmap buf 16K
        app read buf
        """)
        let zeroBefore = s.counts([s.zeroPfn])
        s.ok("app pin buf longterm")
        XCTAssertTrue(s.ptes("app", "buf").allSatisfy(\.zero))
        XCTAssertEqual(s.counts([s.zeroPfn]), zeroBefore)
    }

    func testPinOfKernelMemoryIsEFAULT() {
        var s = scenario("""
        process app
        app ump-alloc u 64K
        app dmabuf-alloc d 64K
        """)
        s.expect("app pin u", .errno("EFAULT"))
        s.expect("app pin d longterm", .errno("EFAULT"))
        XCTAssertEqual(s.meta("app").pins, [])
    }

    // MARK: - pinned_vm (§3.2)

    func testLongtermPinChargesPinnedVMUnderTheLimit() {
        var s = scenario("""
        machine memlock=64K
        process app
        app mmap a 32K
        app mmap b 64K
        app write a
        app write b
        """)
        s.ok("app pin a longterm")
        XCTAssertEqual(s.meta("app").pinnedVMPages, 8)
        XCTAssertEqual(s.meta("app").lockedVMPages, 0, "pinned_vm is a separate counter")
        let before = s.state.phys
        let r = s.expect("app pin b longterm", .errno("ENOMEM"))
        XCTAssertTrue(r.text.contains("RLIMIT_MEMLOCK"), "the message names the limit: \(r.text)")
        XCTAssertTrue(s.state.phys == before, "nothing pinned")
        XCTAssertEqual(s.meta("app").pinnedVMPages, 8)
        // Short-term pins are not charged, so they are not limited.
        s.ok("app pin b")
        XCTAssertEqual(s.meta("app").pinnedVMPages, 8)
        s.ok("app unpin a")
        XCTAssertEqual(s.meta("app").pinnedVMPages, 0)
        s.ok("app pin b 0 32K longterm")
        XCTAssertEqual(s.meta("app").pinnedVMPages, 8)
    }

    func testLongtermPinWithCapIPCLockIsNotLimited() {
        var s = scenario("""
        machine memlock=64K
        process app cap=ipc_lock
        app mmap b 1M
        """)
        s.ok("app pin b longterm write")
        XCTAssertEqual(s.meta("app").pinnedVMPages, 256)
    }

    // MARK: - FOLL_LONGTERM and CMA (§2.3)

    func testLongtermPinMigratesPagesOutOfCMA() {
        var s = scenario("""
        machine ram=64M cma=32M
        process app
        app mmap buf 1M
        app write buf
        """)
        let before = s.pageFrames("app", "buf")
        XCTAssertTrue(before.allSatisfy { s.state.phys.isCMA($0) }, "while most free memory is CMA, movable pages land there")
        s.ok("app pin buf longterm")
        let after = s.pageFrames("app", "buf")
        XCTAssertTrue(after.allSatisfy { !s.state.phys.isCMA($0) }, "a long-term pin must not stay in CMA")
        XCTAssertEqual(s.counts(after), Array(repeating: IOFrameCounts(ref: 1025, map: 1, pin: 1), count: 256))
        XCTAssertTrue(before.allSatisfy { s.use($0) == .free }, "the CMA frames were freed by the migration")
        XCTAssertTrue(s.ptes("app", "buf").allSatisfy(\.writable))
        XCTAssertEqual(s.meta("app").pins.first?.pfns.map(Int.init), after)
    }

    func testShortTermPinMayStayInCMA() {
        var s = scenario("""
        machine ram=64M cma=32M
        process app
        app mmap buf 64K
        app write buf
        """)
        let before = s.pageFrames("app", "buf")
        XCTAssertTrue(before.allSatisfy { s.state.phys.isCMA($0) })
        s.ok("app pin buf")
        XCTAssertEqual(s.pageFrames("app", "buf"), before)
    }

    func testDeviceMapMigratesPagesOutOfCMA() {
        var s = scenario("""
        machine ram=64M cma=32M
        process app
        device gpu
        app mmap buf 256K
        app write buf
        """)
        XCTAssertTrue(s.pageFrames("app", "buf").allSatisfy { s.state.phys.isCMA($0) })
        s.ok("gpu map app.buf")
        let after = s.pageFrames("app", "buf")
        XCTAssertTrue(after.allSatisfy { !s.state.phys.isCMA($0) })
        XCTAssertEqual(s.mapping("gpu", "app", "buf")!.pfns.map(Int.init), after)
        XCTAssertEqual(s.ioptes("gpu").map(\.pa), after.map { UInt64($0) << pageShift })
    }

    // MARK: - Reclaim and compaction skip pinned pages

    func testPressureNeverReclaimsAPinnedPage() {
        var s = scenario("""
        machine swap=64M
        process app
        device gpu
        app mmap buf 256K
        app mmap dev 64K
        app write buf
        app write dev
        app pin buf 0 128K
        gpu map app.dev
        """)
        let pinned = Array(s.pageFrames("app", "buf")[0..<32])
        let mapped = s.pageFrames("app", "dev")
        s.ok("pressure 1M")
        let ptes = s.ptes("app", "buf")
        XCTAssertEqual(ptes[0..<32].map { $0.pfn ?? -1 }, pinned, "pinned pages stay resident")
        XCTAssertTrue(ptes[32...].allSatisfy(\.swapped), "the unpinned ones went to swap")
        XCTAssertEqual(s.pageFrames("app", "dev"), mapped, "pages a device mapping pinned stay resident")
        XCTAssertEqual(s.meta("app").swapPages, 32)
    }

    func testCompactCannotMoveAPinnedPage() {
        var s = scenario("""
        machine ram=64M
        process app
        app mmap a 64K
        app mmap b 64K
        app write a
        app write b
        app pin a longterm
        """)
        let a = s.pageFrames("app", "a"), b = s.pageFrames("app", "b")
        let r = s.ok("compact")
        XCTAssertEqual(s.pageFrames("app", "a"), a, "pinned pages do not move")
        XCTAssertEqual(s.counts(a), Array(repeating: IOFrameCounts(ref: 1025, map: 1, pin: 1), count: 16))
        XCTAssertNotEqual(s.pageFrames("app", "b"), b, "unpinned pages low in memory are migrated (compaction did run)")
        XCTAssertTrue(r.text.contains("pinned"), r.text)
    }

    // MARK: - Fork with pinned pages (§2.5)

    func testFork612CopiesAPinnedExclusivePageForTheChild() {
        var s = scenario("""
        process app
        device gpu
        app mmap buf 16K
        app write buf
        gpu map app.buf
        """)
        let pinned = s.pageFrames("app", "buf")
        s.ok("app fork child")
        XCTAssertEqual(s.pageFrames("app", "buf"), pinned, "the parent keeps its frames")
        XCTAssertTrue(s.ptes("app", "buf").allSatisfy(\.writable), "and keeps them writable")
        let childPfns = s.pageFrames("child", "buf")
        XCTAssertTrue(zip(childPfns, pinned).allSatisfy { $0 != $1 }, "the child gets copies at fork: \(childPfns)")
        XCTAssertEqual(s.counts(pinned), Array(repeating: IOFrameCounts(ref: 1025, map: 1, pin: 1), count: 4))
        XCTAssertEqual(s.counts(childPfns), Array(repeating: IOFrameCounts(ref: 1, map: 1, pin: 0), count: 4))
        let w = s.ok("app write buf")
        XCTAssertEqual(w.hazards, [])
        XCTAssertEqual(s.pageFrames("app", "buf"), pinned)
        let d = s.ok("gpu dma app.buf write")
        XCTAssertEqual(d.hazards, [])
        // The child writing its own copies does not disturb anything either.
        let c = s.ok("child write buf")
        XCTAssertEqual(c.hazards, [])
        XCTAssertEqual(s.pageFrames("child", "buf"), childPfns)
    }

    func testForkLegacySharesThePinnedPageAndAParentWriteLosesIt() {
        var s = scenario("""
        machine kernel=legacy
        process app
        device gpu
        app mmap buf 16K
        app write buf
        gpu map app.buf
        """)
        let pinned = s.pageFrames("app", "buf")
        s.ok("app fork child")
        XCTAssertEqual(s.pageFrames("child", "buf"), pinned, "legacy fork shares the pinned pages")
        XCTAssertTrue(s.ptes("app", "buf").allSatisfy { !$0.writable })
        let w = s.ok("app write buf")
        XCTAssertFalse(w.hazards.isEmpty, "the parent's write COWs away from the device's frame")
        let now = s.pageFrames("app", "buf")
        XCTAssertTrue(zip(now, pinned).allSatisfy { $0 != $1 })
        XCTAssertEqual(s.mapping("gpu", "app", "buf")!.pfns.map(Int.init), pinned, "the device keeps the old frames")
        XCTAssertEqual(s.pageFrames("child", "buf"), pinned, "which are now the child's")
        let d = s.ok("gpu dma app.buf write")
        XCTAssertFalse(d.hazards.isEmpty, "DMA to a buffer the process no longer maps is a hazard")
    }

    func testPinVerbFork612AlsoCopies() {
        var s = scenario("""
        process app
        app mmap buf 16K
        app write buf
        app pin buf
        app fork child
        """)
        let pinned = s.meta("app").pins[0].pfns.map(Int.init)
        XCTAssertEqual(s.pageFrames("app", "buf"), pinned)
        XCTAssertTrue(zip(s.pageFrames("child", "buf"), pinned).allSatisfy { $0 != $1 })
    }

    // MARK: - munmap / MADV_DONTNEED of a pinned page (§2.6)

    func testDontneedOfAPinnedPageKeepsTheFrameAndDiverges() {
        var s = scenario("""
        process app
        device gpu
        app mmap buf 16K
        app write buf
        gpu map app.buf
        """)
        let pinned = s.pageFrames("app", "buf")
        let r = s.ok("app madvise buf dontneed")
        XCTAssertFalse(r.hazards.isEmpty, "zapping a pinned page is flagged")
        XCTAssertEqual(s.ptes("app", "buf"), Array(repeating: PTEView.none, count: 4))
        XCTAssertEqual(s.counts(pinned), Array(repeating: IOFrameCounts(ref: 1024, map: 0, pin: 1), count: 4))
        XCTAssertTrue(pinned.allSatisfy { s.use($0) == .anon }, "the pin keeps the frames allocated")
        XCTAssertEqual(s.meta("app").lockedVMPages, 4, "the mapping stays charged")
        s.ok("app write buf")
        let fresh = s.pageFrames("app", "buf")
        XCTAssertTrue(Set(fresh).isDisjoint(with: pinned), "the next touch gets fresh pages")
        let d = s.ok("gpu dma app.buf write")
        XCTAssertFalse(d.hazards.isEmpty)
        s.ok("gpu unmap app.buf")
        XCTAssertTrue(pinned.allSatisfy { s.use($0) == .free }, "unmap frees what only the pin held")
    }

    func testDontneedOfAPinVerbPageKeepsTheFrame() {
        var s = scenario("""
        process app
        app mmap buf 16K
        app write buf
        app pin buf longterm
        """)
        let pinned = s.pageFrames("app", "buf")
        let r = s.ok("app madvise buf dontneed")
        XCTAssertFalse(r.hazards.isEmpty)
        XCTAssertEqual(s.counts(pinned), Array(repeating: IOFrameCounts(ref: 1024, map: 0, pin: 1), count: 4))
        s.ok("app read buf")
        XCTAssertTrue(s.ptes("app", "buf").allSatisfy(\.zero), "a read after DONTNEED maps the zero page again")
        s.ok("app unpin buf")
        XCTAssertTrue(pinned.allSatisfy { s.use($0) == .free })
        XCTAssertEqual(s.meta("app").pinnedVMPages, 0)
    }

    func testMunmapOfAPinnedPageKeepsTheFrame() {
        var s = scenario("""
        process app
        device gpu
        app mmap buf 16K
        app write buf
        gpu map app.buf
        """)
        let pinned = s.pageFrames("app", "buf")
        let vpns = s.vpns("app", "buf")
        let r = s.ok("app munmap buf")
        XCTAssertFalse(r.hazards.isEmpty)
        XCTAssertNil(s.meta("app").buffer(named: "buf"))
        XCTAssertEqual(s.ptes("app", vpns: vpns), Array(repeating: PTEView.none, count: 4))
        XCTAssertTrue(s.counts(pinned).allSatisfy { $0.ref >= 1024 && $0.pin == 1 && $0.map == 0 })
        XCTAssertTrue(pinned.allSatisfy { s.use($0) == .anon })
        let d = s.ok("gpu dma app.buf write")
        XCTAssertFalse(d.hazards.isEmpty, "the device still writes frames no process maps")
    }
}
