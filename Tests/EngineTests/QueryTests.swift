// The query layer: what a page, a frame and an IOPTE are, answered once for the panes, the
// inspector, `expect`, the probe and the tests; what a cell of frames holds; what a step touched;
// and the narration and JSON counts made from a step's typed events.

import XCTest

@testable import Engine

final class QueryTests: XCTestCase {
    static let forked = """
        machine swap=16M
        process app
        app mmap buf 64K
        app write buf 0 32K
        app read buf 32K 16K
        app fork kid
        kid write buf 0 4K
        """

    // MARK: PageInfo

    func testPageKindsAfterForkCOWAndReadFaults() {
        let r = run(Self.forked)
        let app = r.p("app"), kid = r.p("kid")
        let vpns = r.vpns("app", "buf")
        let kinds = { (p: Int) in vpns.map { r.state.page(p, vpn: $0).kind } }
        // Page 0: the child copied it, so the parent's is back to one mapping but not exclusive (shared
        // kind: a write would go through do_wp_page); 1-7 shared; 8-11 the zero page; the rest untouched.
        XCTAssertEqual(kinds(app), [.shared] + Array(repeating: .shared, count: 7) + Array(repeating: .zero, count: 4)
                       + Array(repeating: .untouched, count: 4))
        XCTAssertEqual(kinds(kid), [.privatePage] + Array(repeating: .shared, count: 7) + Array(repeating: .zero, count: 4)
                       + Array(repeating: .untouched, count: 4))
        let copied = r.state.page(kid, vpn: vpns[0])
        XCTAssertTrue(copied.exclusive && copied.pte.writable && copied.pte.dirty)
        XCTAssertEqual(copied.frame, FrameCounts(use: .anon, refcount: 1, mapcount: 1, pincount: 0, anonExclusive: true))
        XCTAssertEqual(copied.pte.names, ["present", "writable", "user", "accessed", "dirty", "no-execute"])
        let shared = r.state.page(app, vpn: vpns[1])
        XCTAssertFalse(shared.exclusive)
        XCTAssertEqual(shared.pte.names, ["present", "read-only", "user", "accessed", "dirty", "no-execute"], "write-protected at fork, still dirty")
        let zero = r.state.page(app, vpn: vpns[8])
        XCTAssertTrue(zero.zero && !zero.exclusive)
        XCTAssertEqual(zero.pte.pfn, r.zeroPfn)
        XCTAssertEqual(zero.pte.names, ["present", "read-only", "user", "accessed", "special (the zero page)", "no-execute"])
        XCTAssertEqual(r.state.page(app, vpn: vpns[12]).pte.isNone, true)
        XCTAssertEqual(zero.vma, r.meta("app").vmaIndex(containing: vpns[8] << pageShift))
    }

    func testPinnedSwappedAndKernelBufferPages() {
        var r = scenario("""
            machine swap=16M
            process app
            app mmap buf 16K
            app write buf
            app mmap cold 16K
            app write cold
            app ump-alloc u 8K
            """)
        r.ok("app pin buf 0 4K write")
        r.ok("pressure 16K")
        let app = r.p("app")
        let buf = r.vpns("app", "buf"), cold = r.vpns("app", "cold"), u = r.vpns("app", "u")
        XCTAssertEqual(r.state.page(app, vpn: buf[0]).kind, .pinned)
        XCTAssertEqual(r.state.page(app, vpn: u[0]).kind, .ump)
        let swapped = cold.map { r.state.page(app, vpn: $0) }.filter(\.swapped)
        XCTAssertFalse(swapped.isEmpty, "pressure swapped some of the unpinned pages out")
        XCTAssertTrue(swapped.allSatisfy { $0.kind == .swapped && !$0.present && $0.pte.swap != nil })
        // A cell's kind is the commonest of its pages.
        XCTAssertEqual(r.state.dominantPageKind(app, u[0]..<u[0] + 2), .ump)
    }

    // MARK: FrameInfo

    func testFrameInfoNamesEveryMapperAndKernelUser() {
        // A shared mapping: both processes map the same page-cache frames, and a pin of shmem
        // needs no unshare, so the device maps that very frame too.
        var r = scenario("""
            process app
            device gpu
            app mmap shm 16K shared
            app write shm
            app fork kid
            kid read shm
            app ump-alloc u 4K
            """)
        let vpns = r.vpns("app", "shm")
        let pfn = r.pfns("app", "shm")[1]
        r.ok("gpu map app.shm")
        let f = r.state.frame(pfn)
        XCTAssertEqual(f.mappers, [PageMapper(process: r.p("app"), vpn: vpns[1], huge: false),
                                   PageMapper(process: r.p("kid"), vpn: vpns[1], huge: false)])
        let iopte = r.dev("gpu").ioptes.values.first { $0.pa == UInt64(pfn) << pageShift }!
        XCTAssertEqual(f.ioMappers, [IOMapper(device: 0, iova: iopte.iova, iopte: iopte)])
        XCTAssertEqual(f.use, .shmem)
        XCTAssertEqual(f.owner, .process(pid: r.pid("app"), name: "app"))
        XCTAssertEqual(f.pincount, 1)
        XCTAssertEqual(f.kernelUsers, [.shmem(object: 1, index: 1)])
        XCTAssertFalse(f.isZeroPage)
        let ump = r.state.frame(r.pageFrames("app", "u")[0])
        XCTAssertEqual(ump.kernelUsers, [.kernelBuffer(0)])
        XCTAssertEqual(ump.mappers, [PageMapper(process: r.p("app"), vpn: r.vpns("app", "u")[0], huge: false)])
        XCTAssertEqual(r.state.frame(r.zeroPfn).isZeroPage, true)
        XCTAssertEqual(r.state.frame(0).owner, .kernel)
    }

    func testTHPFrameFlagsAndHugeMappers() {
        let r = scenario("""
            machine thp=always
            process app
            app mmap buf 2M
            app write buf
            """)
        let head = r.pfns("app", "buf")[0]
        XCTAssertEqual(r.state.frame(head).flagNames, ["PageAnonExclusive", "THP head"])
        XCTAssertEqual(r.state.frame(head + 3).flagNames, ["PageAnonExclusive", "THP tail of \(head)"])
        XCTAssertEqual(r.state.frame(head + 3).mappers, [PageMapper(process: 0, vpn: r.vpns("app", "buf")[3], huge: true)])
    }

    // MARK: IOPTEInfo

    func testIOPTEInfoKnowsItsWalkAndItsMapping() throws {
        let r = scenario("""
            machine ram=128M memlock=64M
            process app
            device v7 iommu=arm-v7s
            app ump-alloc u 2M linear
            v7 map app.u
            """)
        let m = try XCTUnwrap(r.mapping("v7", "app", "u"))
        let info = try XCTUnwrap(r.state.iopte(0, iova: m.iova))
        XCTAssertEqual(info.iopte.size, 1 << 20, "a linear 2 MiB buffer maps with 1 MiB sections")
        XCTAssertEqual(info.walkLevels, 1, "a v7s section sits in the first-level table")
        XCTAssertEqual(info.mapping, m)
        XCTAssertEqual(info.va, r.buffer("app", "u").start)
        XCTAssertEqual(info.frame, Int(m.pfns[0]))
        XCTAssertNil(r.state.iopte(0, iova: m.iova + 4096), "an IOVA inside an IOPTE is not where one starts")
        XCTAssertEqual(r.state.ioptesBySize(0).map(\.count), [2])
    }

    // MARK: Cells of frames

    func testClassifyFramesLetsPinsAndTheZeroPageShowThrough() {
        var r = scenario("""
            process app
            app mmap buf 64K
            app write buf
            """)
        let pfns = r.pfns("app", "buf")
        let pid = r.pid("app")
        let lo = pfns.min()!, hi = pfns.max()! + 1
        XCTAssertEqual(r.state.classifyFrames(lo..<lo + 1), .processMemory(.anon, owner: pid, fullness: nil))
        XCTAssertEqual(r.state.classifyFrames(lo..<lo + 4), .processMemory(.anon, owner: pid, fullness: 3))
        XCTAssertEqual(r.state.classifyFrames(hi..<hi + 4), .free)
        XCTAssertEqual(r.state.classifyFrames(r.zeroPfn..<r.zeroPfn + 64), .zeroPage)
        XCTAssertEqual(r.state.classifyFrames(0..<1), .kernelMemory(.kernel))
        r.ok("app pin buf 0 4K")
        XCTAssertEqual(r.state.classifyFrames(lo..<hi), .pinned)
        // Half a cell in use: the second quarter shade.
        XCTAssertEqual(r.state.classifyFrames((hi - 2)..<(hi + 2)), .processMemory(.anon, owner: pid, fullness: 1))
        // What the inspector says of such a cell: the mix, commonest first (a tie in FrameUse order),
        // and the first frame in use.
        XCTAssertEqual(r.state.frameUses(in: (hi - 2)..<(hi + 2)).map(\.use), [.free, .anon])
        XCTAssertEqual(r.state.frameUses(in: (hi - 1)..<(hi + 2)).map(\.count), [2, 1])
        XCTAssertEqual(r.state.firstFrameInUse(in: (hi - 2)..<(hi + 2)), hi - 2)
        XCTAssertEqual(r.state.firstFrameInUse(in: hi..<(hi + 2)), hi)
    }

    // MARK: What a step touched

    func testChangeIndexMarksWhatTheStepChangedAndNothingElse() {
        var r = scenario("""
            process app
            device gpu
            app mmap buf 64K
            app write buf
            """)
        let b = r.buffer("app", "buf")
        // MADV_DONTFORK on the middle splits the VMA in three: all three are new extents.
        r.ok("app madvise buf dontfork 16K 16K")
        var touched = ChangeIndex(record: r.last, state: r.state)
        XCTAssertEqual(touched.vmas[0], [b.start, b.start + 16384, b.start + 32768])
        XCTAssertEqual(touched.processes, [0])
        XCTAssertTrue(touched.frames.isEmpty && touched.pages.isEmpty && touched.devices.isEmpty)
        // A write that only gives a VMA its anon_vma changes no extent or flags: no VMA mark.
        r.ok("app mmap more 16K")
        r.ok("app write more")
        touched = ChangeIndex(record: r.last, state: r.state)
        XCTAssertNil(touched.vmas[0])
        XCTAssertEqual(touched.frames.count, 4 + 0, "the four new pages (the PTE table existed)")
        // A map sets IOPTEs and touches the device; its pins touch the frames.
        r.ok("gpu map app.buf")
        touched = ChangeIndex(record: r.last, state: r.state)
        XCTAssertEqual(touched.devices, [0])
        XCTAssertEqual(touched.ioptes[0]?.count, 16)
        XCTAssertTrue(r.pfns("app", "buf").allSatisfy(touched.frames.contains))
    }

    // MARK: Events, narration and the JSON counts

    func testEventsGiveTheCountsAndPhrasesUnderTheirKernelNames() {
        var r = run("""
            process parent
            parent mmap buf 64K
            parent write buf
            parent mmap ro 16K
            parent read ro
            """)
        r.step("parent fork child")
        XCTAssertEqual(r.last.counts.map(\.0), ["ptalloc", "copy_present_ptes", "copy_pte:zero"])
        XCTAssertEqual(r.last.counts.map(\.1), [4, 16, 4])
        XCTAssertEqual(r.last.events[.copyPresentPTEs], 16)
        XCTAssertTrue(r.last.text.hasSuffix(". 16 × copy_present_ptes: now shared read-only (refcount+1, mapcount+1, AnonExclusive cleared); 4 × zero-page PTEs copied to the child; 4 × page-table pages allocated (__pte_alloc, __pmd_alloc, pgd_alloc)"), r.last.text)
        r.step("child write buf 0 16K")
        XCTAssertEqual(r.last.counts.map(\.0), ["wp_page_copy"])
        XCTAssertEqual(r.last.events[.wpPageCopy(.sharedPage)], 4)
        // A pin walks pages without touching them as the CPU does: no "already mapped" count.
        r.step("parent pin buf 0 16K write")
        XCTAssertEqual(r.last.events[.alreadyMapped], 0)
        XCTAssertEqual(r.last.events[.pinned(FollFlags(write: true))], 4)
        XCTAssertEqual(r.last.counts.map(\.0), ["wp_page_reuse:refcount"], "pins are in the events, not in the counts")
    }

    func testOOMVictimsAreEventsAndTheNarrationNamesThem() {
        var r = scenario("""
            machine ram=16M
            process hog
            hog mmap a 8M
            hog write a
            """)
        r.step("pressure 12M")
        XCTAssertEqual(r.last.outcome, .oom)
        XCTAssertEqual(r.last.events.oomVictims.map(\.name), ["hog"])
        let v = r.last.events.oomVictims[0]
        XCTAssertTrue(r.last.text.contains("out_of_memory() kills hog (pid \(v.pid), oom_badness \(v.badness) pages)"), r.last.text)
        XCTAssertFalse(r.last.counts.contains { $0.0.contains("oom") })
    }

    // MARK: The harness's own diff

    /// stateDiff names what differs, fact by fact, and the allocator's bookkeeping after them.
    func testStateDiffNamesEachDifference() {
        var r = run("""
            process app
            app mmap buf 8K
            """)
        let before = r.state
        r.step("app write buf 0 4K")
        let diff = stateDiff(r.state, before)
        let va = r.buffer("app", "buf").start
        XCTAssertTrue(diff.contains("app PTE 0x\(String(va, radix: 16)): expected none, got page("), diff)
        XCTAssertTrue(diff.contains("app counters"), diff)
        XCTAssertTrue(diff.contains("machine bookkeeping"), diff)
        XCTAssertTrue(diff.contains("free lists"), diff)
        XCTAssertEqual(stateDiff(before, before), "")
    }
}
