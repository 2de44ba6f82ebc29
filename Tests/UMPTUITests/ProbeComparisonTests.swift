import Engine
import Foundation
import XCTest

@testable import UMPTUI

final class ProbeComparisonTests: XCTestCase {
    // MARK: - The real kernel (needs root for PFNs; skipped otherwise)

    private func probe(_ npages: Int, _ ops: [ProbeOp], file: StaticString = #filePath, line: UInt = #line) throws -> RealProbeResult {
        do {
            return try RealProbe.run(npages: npages, ops: ops)
        } catch let error as RealProbeError where error.kind == .noPFNs || error.kind == .unsupportedPageSize {
            throw XCTSkip("real-kernel probe unavailable: \(error.message)")
        } catch let error as RealProbeError where error.kind == .ioUringUnavailable {
            throw XCTSkip("io_uring unavailable, cannot pin for real: \(error.message)")
        }
    }

    /// `-`, `swap`, `zero`, `excl`, `anon` per page.
    private func cells(_ pages: [RealPage]?) -> [String] {
        (pages ?? []).map(RealProbeResult.cell)
    }

    private func sharedPages(_ r: RealProbeResult) -> [Int] {
        guard let child = r.child else { return [] }
        return (0..<r.npages).filter { i in
            let p = r.parent[i], c = child[i]
            return p.present && c.present && !p.zero && !c.zero && p.pfn == c.pfn
        }
    }

    func testReadOnlyTouchMapsTheZeroPage() throws {
        let r = try probe(4, [.read(0..<2)])
        XCTAssertNil(r.child)
        XCTAssertNotEqual(r.zeroPFN, 0)
        XCTAssertEqual(cells(r.parent), ["zero", "zero", "-", "-"])
        XCTAssertEqual(r.parent[0].pfn, r.zeroPFN)
        XCTAssertEqual(r.parent[1].pfn, r.zeroPFN)
        XCTAssertFalse(r.parent[0].exclusive)
    }

    func testWriteGivesAPrivateExclusivePage() throws {
        let r = try probe(4, [.read(0..<1), .write(0..<2)])
        XCTAssertEqual(cells(r.parent), ["excl", "excl", "-", "-"])
        XCTAssertNotEqual(r.parent[0].pfn, r.zeroPFN)  // write after read: COW from the zero page
        XCTAssertNotEqual(r.parent[0].pfn, r.parent[1].pfn)
    }

    func testDontneedUnmaps() throws {
        let r = try probe(4, [.write(0..<4), .read(0..<4), .dontneed(1..<3)])
        XCTAssertEqual(cells(r.parent), ["excl", "-", "-", "excl"])
    }

    func testForkWithoutWritesSharesPages() throws {
        let r = try probe(4, [.write(0..<2), .fork])
        XCTAssertEqual(cells(r.parent), ["anon", "anon", "-", "-"])
        XCTAssertEqual(cells(r.child), ["anon", "anon", "-", "-"])
        XCTAssertEqual(sharedPages(r), [0, 1])
    }

    func testChildWriteBreaksCOWAndTheParentIsExclusiveAgain() throws {
        let r = try probe(4, [.write(0..<2), .fork, .write(0..<1, by: .child)])
        XCTAssertEqual(cells(r.parent), ["excl", "anon", "-", "-"])
        XCTAssertEqual(cells(r.child), ["excl", "anon", "-", "-"])
        XCTAssertEqual(sharedPages(r), [1])
        XCTAssertNotEqual(r.parent[0].pfn, r.child?[0].pfn)
    }

    func testDontneedInTheParentAfterForkLeavesTheChildExclusive() throws {
        let r = try probe(2, [.write(0..<2), .fork, .dontneed(0..<1)])
        XCTAssertEqual(cells(r.parent), ["-", "anon"])
        XCTAssertEqual(cells(r.child), ["excl", "anon"])
    }

    func testStandardScript() throws {
        let r = try probe(ProbeScript.standard.npages, ProbeScript.standard.ops)
        let z = "zero", a = "anon", x = "excl"
        XCTAssertEqual(cells(r.parent), [z, z, z, z, a, a, a, a, x, x, x, x, "-", z, "-", "-"])
        XCTAssertEqual(cells(r.child), [z, z, z, z, a, a, a, a, x, x, x, x, x, x, z, "-"])
        XCTAssertEqual(sharedPages(r), [4, 5, 6, 7])
    }

    func testReadOnlyBeforeForkCopiesNoPageTables() throws {
        let r = try probe(ProbeScript.readOnlyBeforeFork.npages, ProbeScript.readOnlyBeforeFork.ops)
        let z = "zero", x = "excl", n = "-"
        XCTAssertEqual(cells(r.parent), [z, z, x, x, z, z, z, z] + Array(repeating: n, count: 8))
        XCTAssertEqual(cells(r.child), [z, z, n, n, x, n, n, n] + Array(repeating: n, count: 8))
        XCTAssertEqual(sharedPages(r), [])
    }

    // MARK: Pinning (io_uring buffer registration: FOLL_WRITE|FOLL_LONGTERM, mm->pinned_vm)

    func testPinFaultsInWritablePagesAndChargesPinnedVM() throws {
        // Page 0 maps the zero page (FOLL_WRITE COWs it), pages 1-2 were never touched (write fault).
        let r = try probe(4, [.read(0..<1), .pin(0..<3)])
        XCTAssertEqual(cells(r.parent), ["excl", "excl", "excl", "-"])
        XCTAssertNotEqual(r.parent[0].pfn, r.zeroPFN)
        XCTAssertEqual(r.scriptPinnedKB(of: .parent), 12)
        XCTAssertNil(r.childVmPinKB)
    }

    func testPinBeforeForkScript() throws {
        let r = try probe(ProbeScript.pinBeforeFork.npages, ProbeScript.pinBeforeFork.ops)
        let a = "anon", x = "excl", z = "zero", n = "-"
        // 3-9 pinned: copied for the child at fork, so neither side shares them; 1 COW-broken by the child.
        XCTAssertEqual(cells(r.parent), [a, x, a, x, x, x, x, x, x, x, z, z, n, n, n, n])
        XCTAssertEqual(cells(r.child), [a, x, a, x, x, x, x, x, x, x, z, z, n, n, n, n])
        XCTAssertEqual(sharedPages(r), [0, 2])
        // pinned_vm is charged to the parent's mm at registration; the child's mm starts at 0 even
        // though it inherits the ring fd.
        XCTAssertEqual(r.scriptPinnedKB(of: .parent), 7 * 4)
        XCTAssertEqual(r.childVmPinKB, 0)
    }

    func testPinByTheChildIsChargedToTheChild() throws {
        let r = try probe(4, [.write(0..<4), .fork, .pin(0..<2, by: .child)])
        // FOLL_WRITE breaks COW in the child; the parent's old frames are mapped once again.
        XCTAssertEqual(cells(r.parent), ["excl", "excl", "anon", "anon"])
        XCTAssertEqual(cells(r.child), ["excl", "excl", "anon", "anon"])
        XCTAssertEqual(sharedPages(r), [2, 3])
        XCTAssertEqual(r.scriptPinnedKB(of: .parent), 0)
        XCTAssertEqual(r.childVmPinKB, 8)
    }

    /// The parent unregisters its buffers before returning: the next probe starts from the same VmPin.
    func testPinsAreReleasedAfterTheProbe() throws {
        let first = try probe(2, [.pin(0..<2)])
        let second = try probe(2, [.pin(0..<1)])
        XCTAssertEqual(first.scriptPinnedKB(of: .parent), 8)
        XCTAssertEqual(second.parentVmPinBeforeKB, first.parentVmPinBeforeKB)
        XCTAssertEqual(second.scriptPinnedKB(of: .parent), 4)
    }

    func testInvalidScriptsThrowInsteadOfCrashing() {
        XCTAssertThrowsError(try RealProbe.run(npages: 4, ops: [.write(0..<1, by: .child)])) { error in
            XCTAssertEqual((error as? RealProbeError)?.kind, .invalidScript)
        }
        XCTAssertThrowsError(try RealProbe.run(npages: 4, ops: [.fork, .fork])) { error in
            XCTAssertEqual((error as? RealProbeError)?.kind, .invalidScript)
        }
        XCTAssertThrowsError(try RealProbe.run(npages: 4, ops: [.read(2..<5)])) { error in
            XCTAssertEqual((error as? RealProbeError)?.kind, .invalidScript)
        }
        XCTAssertThrowsError(try RealProbe.run(npages: 4, ops: [.pin(2..<2)])) { error in
            XCTAssertEqual((error as? RealProbeError)?.kind, .invalidScript)
        }
        XCTAssertThrowsError(try RealProbe.run(npages: 4, ops: [.pin(3..<5)])) { error in
            XCTAssertEqual((error as? RealProbeError)?.kind, .invalidScript)
        }
    }

    // MARK: - Scenario text

    func testStandardScenarioText() {
        XCTAssertEqual(ProbeScript.standard.scenarioText, """
            # probe script "standard": fork after reads and writes, COW on both sides, MADV_DONTNEED in the parent
            machine ram=64M thp=never
            process parent
            parent mmap buf 64K
            parent read buf 0 16K  # pages 0-3
            parent write buf 16K 36K  # pages 4-12
            parent read buf 52K 4K  # page 13
            parent fork child
            child write buf 32K 8K  # pages 8-9
            parent write buf 40K 8K  # pages 10-11
            parent madvise buf dontneed 48K 4K  # page 12
            child write buf 52K 4K  # page 13
            child read buf 56K 4K  # page 14

            """)
    }

    func testPinBeforeForkScenarioText() {
        XCTAssertEqual(ProbeScript.pinBeforeFork.scenarioText, """
            # probe script "pin-before-fork": io_uring pins before fork: the child gets copies of the pinned pages at fork; pinned_vm stays with the parent
            machine ram=64M thp=never
            process parent
            parent mmap buf 64K
            parent write buf 0 24K  # pages 0-5
            parent read buf 24K 8K  # pages 6-7
            parent uring-register buf 12K 28K  # pages 3-9
            parent read buf 40K 8K  # pages 10-11
            parent fork child
            child write buf 16K 4K  # page 4
            child write buf 4K 4K  # page 1
            parent write buf 20K 4K  # page 5

            """)
        XCTAssertTrue(ProbeScript.pinBeforeFork.pins)
        XCTAssertFalse(ProbeScript.standard.pins)
        XCTAssertTrue(ProbeScript.all.contains(ProbeScript.pinBeforeFork))
    }

    // MARK: - Comparison with a kernel result written by hand (no kernel needed)

    /// 4 pages: parent wrote 0-1 and read 2 before fork; the child then wrote page 1.
    private let kernel = RealProbeResult(
        npages: 4, zeroPFN: 7,
        parent: [
            RealPage(index: 0, present: true, zero: false, exclusive: false, pfn: 500),
            RealPage(index: 1, present: true, zero: false, exclusive: true, pfn: 501),
            RealPage(index: 2, present: true, zero: true, exclusive: false, pfn: 7),
            RealPage(index: 3, present: false, zero: false, exclusive: false, pfn: 0),
        ],
        child: [
            RealPage(index: 0, present: true, zero: false, exclusive: false, pfn: 500),
            RealPage(index: 1, present: true, zero: false, exclusive: true, pfn: 502),
            RealPage(index: 2, present: true, zero: true, exclusive: false, pfn: 7),
            RealPage(index: 3, present: false, zero: false, exclusive: false, pfn: 0),
        ])

    /// The Engine after a scenario (PFNs unlike the kernel's, as always).
    private func engine(_ source: String) throws -> Engine {
        ScenarioRunner.run(try parseScript(source, fileName: "probe-test.ump")).engine
    }

    /// The same four pages, done by the Engine.
    private var agreeing: Engine {
        get throws {
            try engine("""
                machine thp=never
                process parent
                parent mmap buf 16K
                parent write buf 0 8K
                parent read buf 8K 4K
                parent fork child
                child write buf 4K 4K
                """)
        }
    }

    func testComparisonAgrees() throws {
        XCTAssertEqual(try ProbeComparison.compare(engine: agreeing, real: kernel), [])
        XCTAssertEqual(try ProbeComparison.table(engine: agreeing, real: kernel), """
            pages          parent engine/kernel  child engine/kernel   shared engine/kernel
            page 0         anon/anon             anon/anon             yes/yes
            page 1         excl/excl             excl/excl             no/no
            page 2         zero/zero             zero/zero             no/no
            page 3         -/-                   -/-                   no/no
            """)
    }

    func testComparisonDisagrees() throws {
        // An Engine that forgot to COW page 1 (both map frame 41, mapcount 2), did not copy the
        // zero-page PTE of page 2 to the child, and shows page 3 present in the parent. No correct
        // Engine gets here, so its side is written by hand.
        let a = ProbeComparison.PageFacts(present: true, frame: 40)
        let forgot = ProbeComparison.PageFacts(present: true, frame: 41)
        let zero = ProbeComparison.PageFacts(present: true, zero: true)
        let wrong = ProbeComparison.Side(bufferSize: 16384, parent: [a, forgot, zero, zero], child: [a, forgot, .absent, .absent])
        let mismatches = ProbeComparison.compare(engine: wrong, kernel: ProbeComparison.kernelSide(kernel))
        XCTAssertEqual(mismatches, [
            "page 1: parent exclusive engine=false kernel=true",
            "page 1: child exclusive engine=false kernel=true",
            "page 1: shared engine=true kernel=false",
            "page 2: child present engine=false kernel=true",
            "page 3: parent present engine=true kernel=false",
        ])
        XCTAssertEqual(ProbeComparison.table(engine: wrong, kernel: ProbeComparison.kernelSide(kernel)), """
            pages          parent engine/kernel  child engine/kernel   shared engine/kernel
            page 0         anon/anon             anon/anon             yes/yes
            page 1         anon/excl             anon/excl             yes/no  <-- differs
            page 2         zero/zero             -/zero                no/no  <-- differs
            page 3         zero/-                -/-                   no/no  <-- differs
            """)
    }

    func testComparisonWithoutEngineChild() throws {
        let noChild = try engine("""
            machine thp=never
            process parent
            parent mmap buf 16K
            parent write buf 0 4K
            """)
        XCTAssertEqual(try ProbeComparison.compare(engine: noChild, real: kernel), [
            "child: process missing in engine state",
            "page 0: parent exclusive engine=true kernel=false",
            "page 1: parent present engine=false kernel=true",
            "page 2: parent present engine=false kernel=true",
        ])
        XCTAssertThrowsError(try ProbeComparison.compare(engine: noChild, real: kernel, buffer: "other"))
        XCTAssertThrowsError(try ProbeComparison.compare(engine: try engine("process other"), real: kernel))
    }

    /// VmPin is compared per process (engine pinned_vm × 4 KiB, kernel VmPin less the parent's
    /// VmPin before the script) and shown in the table's last row.
    func testComparisonOfPinnedVM() throws {
        var pinned = kernel
        pinned.parentVmPinBeforeKB = 4  // something else in this process pinned one page before
        pinned.parentVmPinKB = 12
        pinned.childVmPinKB = 0
        let report = try ProbeComparison.report(engine: agreeing, real: pinned)
        XCTAssertEqual(report.mismatches, ["parent VmPin engine=0 kB kernel=8 kB"])
        XCTAssertEqual(report.table.split(separator: "\n").last, "VmPin kB       0/8                   0/0  <-- differs")

        pinned.parentVmPinKB = 4
        let agreeingReport = try ProbeComparison.report(engine: agreeing, real: pinned)
        XCTAssertEqual(agreeingReport.mismatches, [])
        XCTAssertEqual(agreeingReport.table.split(separator: "\n").last, "VmPin kB       0/0                   0/0")

        // Without VmPin on the kernel side nothing is compared and no row is shown (see testComparisonAgrees).
        let engineOnly = ProbeComparison.Side(bufferSize: 0, parent: [], child: nil, parentPinnedKB: 28)
        let kernelUnknown = ProbeComparison.Side(bufferSize: 0, parent: [], child: nil)
        XCTAssertEqual(ProbeComparison.compare(engine: engineOnly, kernel: kernelUnknown), [])
    }

    /// What the kernel side makes of pagemap: the zero page is present but never exclusive and has no
    /// frame to share; a frame only for other present pages; VmPin is the script's own (less before).
    func testKernelSideReadsPagemapFacts() {
        var pinned = kernel
        pinned.parentVmPinBeforeKB = 4
        pinned.parentVmPinKB = 12
        pinned.childVmPinKB = 8
        let side = ProbeComparison.kernelSide(pinned)
        typealias F = ProbeComparison.PageFacts
        XCTAssertEqual(side, ProbeComparison.Side(
            bufferSize: 4 * 4096,
            parent: [F(present: true, frame: 500), F(present: true, exclusive: true, frame: 501), F(present: true, zero: true), .absent],
            child: [F(present: true, frame: 500), F(present: true, exclusive: true, frame: 502), F(present: true, zero: true), .absent],
            parentPinnedKB: 8, childPinnedKB: 8))
        // A zero page that pagemap (wrongly) marked exclusive still is not: exclusive needs a frame of its own.
        var odd = kernel
        odd.parent[2].exclusive = true
        XCTAssertFalse(ProbeComparison.kernelSide(odd).parent[2].exclusive)
    }
}
