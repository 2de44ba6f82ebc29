// Each frame says whose data it holds (who wrote it last, at which step), so a read through a pipe
// or a device says which data it sees. The CVE-2020-29374 case: a child splices a page it shares
// with its parent into a pipe and unmaps it; the parent writes. Before 5.9 (kernel=legacy)
// do_wp_page reused the page by its mapcount and the child reads the parent's later data through
// the pipe; 6.12 reuses only by refcount (the pipe's reference counts), so the parent copies.

import XCTest

@testable import Engine

final class DataTagTests: XCTestCase {
    func cve(_ kernel: String) -> String {
        """
        machine ram=64M kernel=\(kernel)
        process app
        app mmap secret 4K
        app write secret
        app fork child
        child vmsplice secret pipe=p
        child munmap secret
        app write secret
        """
    }

    func testTheCVECaseLeaksOnLegacyAndNotOn612() {
        for (kernel, seen, leaks) in [("legacy", "app@7", true), ("6.12", "app@3", false)] {
            var r = scenario(cve(kernel))
            let spliced = r.meta("child").pins.first { $0.pipe == "p" }!.pfns
            XCTAssertEqual(spliced.count, 1)
            let frame = Int(spliced[0])
            XCTAssertEqual(r.state.dataName(r.state.phys.dataTag(frame)), seen, kernel)
            let read = r.ok("child pipe-read p")
            XCTAssertTrue(read.text.contains("data \(seen) on 1 page"), read.text)
            XCTAssertEqual(read.hazards.map(\.kind), leaks ? [.dataLeak] : [], "\(kernel): \(read.text)")
            XCTAssertTrue(r.meta("child").pins.isEmpty, "reading the pipe releases what it held")
            // The parent's own page holds its newest data either way.
            XCTAssertEqual(r.state.dataName(r.state.phys.dataTag(r.pfns("app", "secret")[0])), "app@7")
            if !leaks {
                XCTAssertEqual(r.state.phys.frameUse(frame), .free, "the pipe held the old page's last reference")
                XCTAssertEqual(r.state.phys.dataTag(frame), .zero, "a free frame holds nothing")
            }
        }
    }

    func testThePipeTakesPlainReferencesAndSharesNothing() {
        var r = scenario("machine ram=64M\nprocess app\napp mmap buf 64K\napp write buf\napp fork kid")
        let before = r.pfns("app", "buf")
        let s = r.ok("kid vmsplice buf")
        XCTAssertTrue(s.text.contains("FOLL_GET"), s.text)
        XCTAssertEqual(r.pfns("kid", "buf"), before, "nothing unshared: a FOLL_GET reference is no pin")
        for pfn in before {
            XCTAssertEqual(r.refcount(pfn), 3, "two mappings and the pipe")
            XCTAssertEqual(r.pincount(pfn), 0)
        }
        XCTAssertEqual(r.expect("kid unpin buf", .errno("EINVAL")).text.contains("pipe-read or pipe-close"), true)
        _ = r.ok("kid pipe-close pipe")
        for pfn in before { XCTAssertEqual(r.refcount(pfn), 2) }
        XCTAssertEqual(r.expect("kid pipe-read pipe", .errno("EAGAIN")).outcome, .errno("EAGAIN"))
    }

    /// A pipe holds 16 buffers (PIPE_DEF_BUFFERS). iter_to_pipe takes 16 pages a batch: a splice into
    /// an empty pipe of 40 pages keeps 16, and the second batch (faulted in, then put back) maps 16 more.
    func testAFullPipeTakesNoMoreAndABatchIsPutBack() {
        var r = scenario("machine ram=64M\nprocess app\napp mmap buf 160K")
        let s = r.ok("app vmsplice buf")
        XCTAssertTrue(s.text.contains("vmsplice returns 64 KiB") && s.text.contains("puts back the other 16"), s.text)
        XCTAssertEqual(r.pipeBuffers("app", "pipe"), 16)
        let stats = r.state.bufferStats(r.p("app"), r.buffer("app", "buf"))
        XCTAssertEqual(stats.present, 32, "two batches were faulted in (read faults: zero pages)")
        XCTAssertEqual(r.expect("app vmsplice buf", .errno("EAGAIN")).outcome, .errno("EAGAIN"))
        _ = r.ok("app pipe-read pipe")
        XCTAssertEqual(r.ok("app vmsplice buf 0 8K pipe=q").outcome, .ok)
        XCTAssertEqual(r.pipeBuffers("app", "q"), 2)
    }

    func testWritesCopiesSwapAndDevicesCarryTheData() {
        var r = scenario("""
            machine ram=64M swap=64M thp=never
            process app
            device nic iommu=vtd
            app mmap buf 16K
            app write buf
            app fork kid
            kid write buf 0 4K
            """)
        let pid = r.pid("app"), kid = r.pid("kid")
        XCTAssertEqual(r.pfns("app", "buf").map { r.state.phys.dataTag($0) }, Array(repeating: .process(pid: pid, step: 4), count: 4))
        XCTAssertEqual(r.state.phys.dataTag(r.pfns("kid", "buf")[0]), .process(pid: kid, step: 6), "the COW copy, then written")
        _ = r.ok("app write buf")
        _ = r.ok("app madvise buf pageout")
        XCTAssertEqual(r.step("app read buf").outcome, .ok)
        XCTAssertEqual(r.pfns("app", "buf").map { r.state.dataName(r.state.phys.dataTag($0)) }, Array(repeating: "app@7", count: 4),
                       "swap_writepage and swap_read_folio keep the data")
        _ = r.ok("nic map app.buf write")
        let dma = r.ok("nic dma app.buf write")
        XCTAssertTrue(dma.text.contains("writes data nic@11 into 4 frames"), dma.text)
        let read = r.ok("nic dma app.buf read")
        XCTAssertTrue(read.text.contains("it reads data nic@11 on 4 pages"), read.text)
    }

    func testABulkWriteIsOneRunInTheUndoLog() {
        var r = scenario("machine ram=64M thp=never\nprocess app\napp mmap buf 1M")
        func runs(_ rec: StepRecord) -> [Int32] {
            rec.changes.compactMap { if case let .dataRun(_, count, _) = $0 { return count } else { return nil } }
        }
        XCTAssertEqual(runs(r.ok("app write buf")), [256], "fresh frames from the buddy allocator, one after another")
        XCTAssertEqual(runs(r.ok("app write buf")), [256], "written again: one run of the old tag")
        XCTAssertEqual(runs(r.ok("app read buf")), [], "a read writes nothing")
    }

    func testTheJSONStateNamesEachFramesData() {
        var r = scenario("machine ram=64M\nprocess app\napp mmap buf 8K\napp write buf 0 4K\napp read buf")
        let json = r.engine.stateJSON()
        XCTAssertTrue(json.contains("\"data\":\"app@3\""), json)
        XCTAssertEqual(json.components(separatedBy: "\"data\":\"app@3\"").count - 1, 1)
        _ = r.ok("app exit")
    }

    func testEveryDataStepUndoesExactly() {
        assertEveryStepUndoes(cve("legacy") + "\nchild pipe-read p\napp vmsplice secret\napp write secret\napp pipe-close pipe\napp exit")
        assertEveryStepUndoes("machine ram=64M swap=64M\nprocess app\ndevice nic iommu=vtd\napp mmap buf 64K\napp write buf\napp madvise buf pageout\napp write buf 0 8K\nnic map app.buf write\nnic dma app.buf write\napp vmsplice buf\napp exit")
    }
}

extension EngineRun {
    func pipeBuffers(_ proc: String, _ pipe: String) -> Int {
        meta(proc).pins.filter { $0.pipe == pipe }.reduce(0) { $0 + $1.pfns.count }
    }
}
