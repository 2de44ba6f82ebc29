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
            // Without swap MADV_PAGEOUT does nothing for real; the probe command says so and skips it.
            if script.needsSwap && !Probe.hasSwap { continue }
            let real: RealProbeResult
            do {
                real = try RealProbe.run(script)
            } catch let e as RealProbeError where e.kind == .noPFNs || e.kind == .unsupportedPageSize {
                throw XCTSkip("pagemap cannot be compared here: \(e.message)")
            } catch let e as RealProbeError where e.kind == .ioUringUnavailable {
                skipped.append("\(script.name) (\(e.message))")  // the other scripts still run
                continue
            }
            let report = try ProbeComparison.report(engine: try EngineProbe.engine(for: script), real: real)
            XCTAssertEqual(report.mismatches, [], "\(script.name):\n\(script.scenarioText)\n\(report.table)")
        }
        if !skipped.isEmpty {
            throw XCTSkip("io_uring unavailable, pinning scripts not compared: \(skipped.joined(separator: ", "))")
        }
    }
}
