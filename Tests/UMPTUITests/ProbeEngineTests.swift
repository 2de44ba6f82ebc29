// The Engine against the running kernel: the same fork-and-write scripts done for real
// (mmap, touches, fork, writes, MADV_DONTNEED, io_uring buffer registration for pins) and read
// back from /proc/self/pagemap and VmPin in parent and child while both live, compared page by
// page (and pinned_vm per process) with the Engine's JSON.

import XCTest
@testable import UMPTUI

final class ProbeEngineTests: XCTestCase {
    func testEngineAgreesWithKernelPagemap() throws {
        var skipped: [String] = []
        for script in ProbeScript.all {
            // What this machine cannot show (no swap, another THP setting, no mTHP knob), the probe
            // command says and skips.
            if let reason = RealProbe.unavailableReason(script) {
                skipped.append("\(script.name) (\(reason))")
                continue
            }
            let real: RealProbeResult
            do {
                real = try RealProbe.run(script)
            } catch let e as RealProbeError where e.kind == .noPFNs || e.kind == .unsupportedPageSize {
                throw XCTSkip("pagemap cannot be compared here: \(e.message)")
            } catch let e as RealProbeError where e.kind == .ioUringUnavailable || e.kind == .unsupported {
                skipped.append("\(script.name) (\(e.message))")  // the other scripts still run
                continue
            }
            let report = try ProbeComparison.report(engine: try EngineProbe.engine(for: script), real: real,
                                                    changes: script.laterChanges, kernel: KernelVersion.running)
            XCTAssertEqual(report.mismatches, [], "\(script.name):\n\(script.scenarioText)\n\(report.table)")
        }
        if !skipped.isEmpty {
            throw XCTSkip("not compared on this machine: \(skipped.joined(separator: "; "))")
        }
    }
}

/// Each experiment's Engine twin is a scenario under demos/probe/, exactly the text the probe runs,
/// so it can be run, stepped and read on its own (`swift run umptui demos/probe/mthp-fork.ump`).
/// UMPTUI_RECORD_SNAPSHOTS=1 writes them.
final class ProbeTwinTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../demos/probe").standardized

    func testEveryExperimentsTwinIsItsDemoAndRuns() throws {
        let recording = ProcessInfo.processInfo.environment["UMPTUI_RECORD_SNAPSHOTS"] == "1"
        var names: Set<String> = []
        for script in ProbeScript.all {
            let url = Self.dir.appendingPathComponent(script.name + ".ump")
            names.insert(url.lastPathComponent)
            if recording {
                try FileManager.default.createDirectory(at: Self.dir, withIntermediateDirectories: true)
                try script.scenarioText.write(to: url, atomically: true, encoding: .utf8)
            }
            let text = try String(contentsOf: url, encoding: .utf8)
            XCTAssertEqual(text, script.scenarioText, "demos/probe/\(url.lastPathComponent) is not the probe's twin (UMPTUI_RECORD_SNAPSHOTS=1 writes it)")
            // It runs in the Engine, and its buffer is where the comparison looks for it.
            let engine = try EngineProbe.engine(for: script)
            XCTAssertNoThrow(try ProbeComparison.engineSide(engine.state, npages: script.npages), script.name)
            XCTAssertTrue(engine.state.processes.allSatisfy { $0.meta.alive }, "\(script.name): a process died in the twin")
        }
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: Self.dir.path).filter { $0.hasSuffix(".ump") })
        XCTAssertEqual(files, names, "demos/probe holds exactly one twin per experiment")
    }
}

/// The comparison's bookkeeping without a kernel: a kernel result made from the Engine's own side,
/// then changed the way a later kernel changes it.
final class ProbeLaterKernelTests: XCTestCase {
    static let zeroPFN: UInt64 = 0xfffff

    static func real(from side: ProbeComparison.Side) -> RealProbeResult {
        func pages(_ facts: [ProbeComparison.PageFacts]) -> [RealPage] {
            facts.enumerated().map { i, f in
                RealPage(index: i, present: f.present, swapped: f.swapped, zero: f.zero, exclusive: f.exclusive,
                         pfn: f.zero ? zeroPFN : f.frame ?? 0, raw: f.file ? 1 << 61 : 0, folioPages: f.folioPages)
            }
        }
        return RealProbeResult(npages: side.parent.count, zeroPFN: zeroPFN, parent: pages(side.parent), child: side.child.map(pages),
                               parentVmPinKB: side.parentPinnedKB, parentVmPinBeforeKB: 0, childVmPinKB: side.childPinnedKB,
                               parentAnonHugeKB: side.parentAnonHugeKB, childAnonHugeKB: side.childAnonHugeKB)
    }

    func testALaterKernelsChangeIsExplainedFromItsVersionOnAndExpected() throws {
        let script = ProbeScript.mthpFork
        let engine = try EngineProbe.engine(for: script)
        var side = try ProbeComparison.engineSide(engine.state, npages: script.npages)
        // The Engine copied page 5 (6.12); 6.15 reuses the 64 KiB folio.
        XCTAssertEqual(side.parent[5].folioPages, 1)
        XCTAssertEqual(side.parent[6].folioPages, 16)
        let same = Self.real(from: side)
        side.parent[5].folioPages = 16
        let reused = Self.real(from: side)

        let new = try ProbeComparison.report(engine: engine, real: reused, changes: script.laterChanges, kernel: KernelVersion(6, 18))
        XCTAssertEqual(new.mismatches, [])
        XCTAssertEqual(new.explained.map(\.mismatch), ["page 5: parent folio engine=1 kernel=16"])
        XCTAssertTrue(new.table.contains("page 5         excl/excl:64K         -/-                   no/no  <-- changed after 6.12"), new.table)

        let old = try ProbeComparison.report(engine: engine, real: reused, changes: script.laterChanges, kernel: KernelVersion(6, 12))
        XCTAssertEqual(old.mismatches, ["page 5: parent folio engine=1 kernel=16"])
        XCTAssertTrue(old.table.contains("<-- differs"))

        // A 6.18 kernel that copied after all: the expected change did not appear.
        let missing = try ProbeComparison.report(engine: engine, real: same, changes: script.laterChanges, kernel: KernelVersion(6, 18))
        XCTAssertEqual(missing.mismatches, ["expected since 6.15, not seen: page 5: parent folio engine=1 kernel=16"])
    }

    func testFileAnonHugeAndFolioFactsAreCompared() throws {
        let engine = try EngineProbe.engine(for: .collapseThenFork)
        let side = try ProbeComparison.engineSide(engine.state, npages: 512)
        XCTAssertEqual(side.parentAnonHugeKB, 2048)
        XCTAssertEqual(side.childAnonHugeKB, 0)
        var kernel = side
        kernel.childAnonHugeKB = 2048
        kernel.parent[7].file = true
        kernel.child?[9].folioPages = 1
        XCTAssertEqual(ProbeComparison.compare(engine: side, kernel: kernel), [
            "child AnonHugePages engine=0 kB kernel=2048 kB",
            "page 7: parent file engine=false kernel=true",
            "page 9: child folio engine=512 kernel=1",
        ])
    }

    func testWhatAMachineCannotShowIsSaid() {
        XCTAssertEqual(KernelVersion(release: "6.18.44-fc-v1045"), KernelVersion(6, 18))
        XCTAssertNil(KernelVersion(release: "linux"))
        XCTAssertNil(ProbeScript.standard.unavailableReason(swap: false, thpMode: nil, mthpKnobs: []))
        XCTAssertEqual(ProbeScript.pageoutAfterFork.unavailableReason(swap: false, thpMode: "madvise", mthpKnobs: []),
                       "this machine has no swap (/proc/swaps lists none), so MADV_PAGEOUT cannot page anything out (a swap file turned on with mkswap and swapon is enough)")
        XCTAssertEqual(ProbeScript.splitTHPThenFork.unavailableReason(swap: true, thpMode: "never", mthpKnobs: []),
                       "transparent_hugepage/enabled is [never] here; the script is written for always or madvise")
        XCTAssertNotNil(ProbeScript.collapseThenFork.unavailableReason(swap: true, thpMode: nil, mthpKnobs: []))
        XCTAssertEqual(ProbeScript.mthpFork.unavailableReason(swap: true, thpMode: "madvise", mthpKnobs: [16, 32]),
                       "this kernel has no multi-size THP knob for 64 KiB (/sys/kernel/mm/transparent_hugepage/hugepages-64kB)")
        XCTAssertNil(ProbeScript.mthpFork.unavailableReason(swap: false, thpMode: "madvise", mthpKnobs: [64]))
    }
}
