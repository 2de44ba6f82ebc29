import ArgumentParser
import Engine
import Foundation

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Do the actions of fork-and-write scripts for real (mmap, touches, fork, MADV_DONTNEED, mprotect, vmsplice, io_uring buffer registration pins) and compare /proc/self/pagemap and VmPin with the Engine, page by page.",
        discussion: "Needs Linux and root (pagemap hides frame numbers otherwise). Scripts that pin are skipped where io_uring is unavailable. Exit 0 when the Engine agrees with the kernel, 1 when it does not, 2 when the probe cannot run.")

    @Flag(help: "One JSON object per script: name, agrees, mismatches.")
    var json = false

    /// This machine has swap space (/proc/swaps lists a device or file under its header).
    static var hasSwap: Bool {
        guard let text = try? String(contentsOfFile: "/proc/swaps", encoding: .utf8) else { return false }
        return text.split(separator: "\n").count > 1
    }

    func run() throws {
        var disagree = false
        for script in ProbeScript.all {
            if script.needsSwap && !Self.hasSwap {
                print("probe \(script.name): skipped, this machine has no swap (/proc/swaps lists none), so MADV_PAGEOUT cannot page anything out\n")
                continue
            }
            let real: RealProbeResult
            let report: ProbeComparison.Report
            do {
                real = try RealProbe.run(script)
                report = try ProbeComparison.report(engine: try EngineProbe.engine(for: script), real: real)
            } catch let e as RealProbeError where e.kind == .ioUringUnavailable {
                print("probe \(script.name): skipped, io_uring is unavailable here (\(e.message))\n")
                continue
            } catch {
                printError("umptui probe: \(script.name): \(error)")
                throw ExitCode(2)
            }
            if !report.agrees { disagree = true }
            if json {
                var w = JSONWriter()
                w.beginObject()
                w.field("script", script.name)
                w.field("agrees", report.agrees)
                w.beginArray("mismatches")
                for m in report.mismatches { w.field(nil, m) }
                w.endArray()
                w.endObject()
                print(w.string)
            } else {
                print("probe \(script.name): \(script.summary)")
                print(script.scenarioText)
                print(report.table)
                print(report.agrees ? "the Engine agrees with the kernel on every page\n" : report.mismatches.joined(separator: "\n") + "\n")
            }
        }
        if disagree { throw ExitCode(1) }
    }
}
