// UMP (global secure ids, no ownership check) and dma-buf (an fd is the capability): reference §6.1–§6.2.

import XCTest

@testable import Engine

final class SharingTests: XCTestCase {
    func ioUMPIds(_ s: EngineRun) -> [Int32] {
        s.state.kernelBuffers.filter { $0.kind == .ump && !$0.freed }.map(\.id).sorted()
    }

    // MARK: - UMP

    func testSecureIdsAreTheLowestFree() {
        var s = scenario("""
        process app
        """)
        let r1 = s.ok("app ump-alloc a 64K")
        s.ok("app ump-alloc b 64K")
        s.ok("app ump-alloc c 64K")
        XCTAssertTrue(r1.text.contains("secure id 1"), r1.text)
        XCTAssertEqual(ioUMPIds(s), [1, 2, 3])
        s.ok("app free b")
        XCTAssertEqual(ioUMPIds(s), [1, 3])
        let r = s.ok("app ump-alloc d 64K")
        XCTAssertTrue(r.text.contains("secure id 2"), r.text)
        XCTAssertEqual(ioUMPIds(s), [1, 2, 3])
        s.ok("app free a")
        s.ok("app ump-alloc e 64K")
        s.ok("app ump-alloc f 64K")
        XCTAssertEqual(ioUMPIds(s), [1, 2, 3, 4])
        let byName = Dictionary(uniqueKeysWithValues: s.meta("app").buffers.map { ($0.name, s.state.kernelBuffers[Int($0.kernelBuffer)].id) })
        XCTAssertEqual(byName, ["c": 3, "d": 2, "e": 1, "f": 4])
    }

    func testAnyProcessMayImportBySecureId() {
        var s = scenario("""
        process app
        process spy
        app ump-alloc fb 256K
        app write fb
        """)
        s.ok("spy ump-import stolen 1")
        XCTAssertEqual(s.pageFrames("spy", "stolen"), s.pageFrames("app", "fb"), "the same frames, no ownership check")
        XCTAssertEqual(s.buffer("spy", "stolen").kind, .ump)
        s.ok("spy write stolen")
        XCTAssertEqual(s.pageFrames("spy", "stolen"), s.pageFrames("app", "fb"), "writes go to the shared frames (no COW on VM_PFNMAP)")
        s.expect("spy ump-import nothing 7", .errno("EINVAL"))
        // The creator letting go does not free it while the importer holds it.
        let pfns = s.pageFrames("app", "fb")
        s.ok("app free fb")
        XCTAssertTrue(pfns.allSatisfy { s.use($0) == .ump })
        s.ok("spy free stolen")
        XCTAssertTrue(pfns.allSatisfy { s.use($0) == .free })
    }

    func testUMPIsNotPinnedNorChargedAndIsNotInRSS() {
        var s = scenario("""
        machine memlock=64K
        process app
        device gpu
        app ump-alloc u 1M
        """)
        let pfns = s.pageFrames("app", "u")
        XCTAssertEqual(s.meta("app").lockedVMPages, 0)
        XCTAssertEqual(s.meta("app").rssPages, 0)
        XCTAssertTrue(pfns.allSatisfy { s.use($0) == .ump })
        s.ok("gpu map app.u")
        XCTAssertTrue(s.counts(pfns).allSatisfy { $0.pin == 0 })
        XCTAssertEqual(s.meta("app").lockedVMPages, 0)
    }

    func testUMPLimitNoneTakesMemoryUntilPressureOOMs() {
        var s = scenario("""
        machine ram=64M ump-limit=none memlock=8M
        process app
        """)
        s.ok("app ump-alloc big 40M")
        XCTAssertEqual(s.meta("app").lockedVMPages, 0, "ump-limit=none charges nothing")
        s.ok("app ump-alloc more 8M")
        let r = s.step("pressure 32M")
        XCTAssertEqual(r.outcome, .oom, "non-swappable kernel memory leaves nothing to reclaim: \(r.text)")
    }

    func testUMPLimitMemlockChargesLockedVM() {
        var s = scenario("""
        machine ump-limit=memlock memlock=8M
        process app
        process root cap=ipc_lock
        """)
        s.ok("app ump-alloc a 4M")
        XCTAssertEqual(s.meta("app").lockedVMPages, 1024)
        let r = s.expect("app ump-alloc b 8M", .errno("ENOMEM"))
        XCTAssertTrue(r.text.contains("RLIMIT_MEMLOCK"), r.text)
        XCTAssertEqual(s.meta("app").lockedVMPages, 1024)
        XCTAssertEqual(ioUMPIds(s), [1])
        s.ok("app ump-alloc c 4M")
        XCTAssertEqual(s.meta("app").lockedVMPages, 2048)
        s.ok("root ump-alloc r 16M")
        s.ok("app free a")
        XCTAssertEqual(s.meta("app").lockedVMPages, 1024, "freeing uncharges")
    }

    // MARK: - dma-buf

    func testOnlyHoldersOfTheFdMayMapADmabuf() {
        var s = scenario("""
        process app
        process other
        device gpu
        app dmabuf-alloc buf 1M
        """)
        let before = s.state
        s.expect("gpu map other.buf", .errno("EBADF"))
        XCTAssertTrue(s.state.devices == before.devices)
        s.ok("app send buf other")
        s.ok("gpu map other.buf")
        let m = s.mapping("gpu", "other", "buf")!
        XCTAssertEqual(m.pfns.map(Int.init), s.pageFrames("app", "buf"))
        XCTAssertEqual(s.pageFrames("other", "buf"), s.pageFrames("app", "buf"))
        XCTAssertEqual(m.pinnedPages, 0)
        XCTAssertEqual(s.meta("other").lockedVMPages, 0)
    }

    func testSendIsForDmabufsOnly() {
        var s = scenario("""
        process app
        process other
        app ump-alloc u 64K
        app mmap m 64K
        """)
        s.expect("app send u other", .errno("EBADF"))
        s.expect("app send m other", .errno("EBADF"))
    }

    func testDmabufIsFreedWhenTheLastHolderExitsAndNoDeviceMapsIt() {
        var s = scenario("""
        process app
        process other
        device gpu
        app dmabuf-alloc buf 256K
        app send buf other
        gpu map other.buf
        """)
        let pfns = s.pageFrames("app", "buf")
        s.ok("app exit")
        XCTAssertTrue(pfns.allSatisfy { s.use($0) == .dmabuf }, "other still holds the fd")
        s.ok("other free buf")
        XCTAssertTrue(pfns.allSatisfy { s.use($0) == .dmabuf }, "the device mapping still uses it")
        s.ok("gpu unmap other.buf")
        XCTAssertTrue(pfns.allSatisfy { s.use($0) == .free }, "nobody holds it: freed")
        XCTAssertEqual(s.state.kernelBuffers.first?.freed, true)
    }

    func testDmabufFreedAtExitOfItsLastHolder() {
        var s = scenario("""
        process app
        process other
        device gpu
        app dmabuf-alloc buf 256K
        app send buf other
        gpu map app.buf
        """)
        let pfns = s.pageFrames("app", "buf")
        s.ok("app exit")
        XCTAssertEqual(s.dev("gpu").mappings, [], "exit closes the files: the device mapping goes")
        XCTAssertTrue(pfns.allSatisfy { s.use($0) == .dmabuf })
        s.ok("other exit")
        XCTAssertTrue(pfns.allSatisfy { s.use($0) == .free })
    }

    func testForkInheritsTheFd() {
        var s = scenario("""
        process app
        app dmabuf-alloc buf 64K
        app fork child
        """)
        let pfns = s.pageFrames("app", "buf")
        XCTAssertEqual(s.pageFrames("child", "buf"), pfns)
        s.ok("app exit")
        XCTAssertTrue(pfns.allSatisfy { s.use($0) == .dmabuf })
        s.ok("child exit")
        XCTAssertTrue(pfns.allSatisfy { s.use($0) == .free })
    }
}
