import ArgumentParser
import Engine
import Foundation

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Do the actions of fork-and-write scripts for real (mmap, memfd, touches, fork, madvise, mprotect, mremap, MADV_COLLAPSE, mTHP, vmsplice, io_uring buffer registration pins) and compare /proc/self/pagemap, folio sizes, AnonHugePages and VmPin with the Engine, page by page.",
        discussion: "Needs Linux and root (pagemap hides frame numbers otherwise). A script is skipped, with the reason, where the machine cannot show it: no io_uring, no swap, another THP setting, no mTHP knob, no THP to be had. The mTHP script sets hugepages-64kB/enabled to always for its run and puts the old value back. Differences a kernel change after 6.12 explains are listed apart, with the change. Exit 0 when the Engine agrees with the kernel, 1 when it does not, 2 when the probe cannot run.")

    @Flag(help: "One JSON object per script: script, agrees, mismatches, explained (mismatch, since, why); or script and skipped (the reason).")
    var json = false

    /// This machine has swap space (/proc/swaps lists a device or file under its header).
    static var hasSwap: Bool { RealProbe.hasSwap }

    /// A script this machine cannot show: a line of text, or with --json an object with `skipped`.
    func skip(_ script: ProbeScript, _ reason: String) {
        if json {
            var w = JSONWriter()
            w.beginObject()
            w.field("script", script.name)
            w.field("skipped", reason)
            w.endObject()
            print(w.string)
        } else {
            print("probe \(script.name): skipped, \(reason)\n")
        }
    }

    func run() throws {
        var disagree = false
        for script in ProbeScript.all {
            if let reason = RealProbe.unavailableReason(script) {
                skip(script, reason)
                continue
            }
            let real: RealProbeResult
            let report: ProbeComparison.Report
            do {
                real = try RealProbe.run(script)
                report = try ProbeComparison.report(engine: try EngineProbe.engine(for: script), real: real,
                                                    changes: script.laterChanges, kernel: KernelVersion.running)
            } catch let e as RealProbeError where e.kind == .ioUringUnavailable {
                skip(script, "io_uring is unavailable here (\(e.message))")
                continue
            } catch let e as RealProbeError where e.kind == .unsupported {
                skip(script, e.message)
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
                w.beginArray("explained")
                for e in report.explained {
                    w.beginObject()
                    w.field("mismatch", e.mismatch)
                    w.field("since", e.since.description)
                    w.field("why", e.why)
                    w.endObject()
                }
                w.endArray()
                w.endObject()
                print(w.string)
            } else {
                print("probe \(script.name): \(script.summary)")
                print(script.scenarioText)
                print(report.table)
                for e in report.explained {
                    print("\(e.mismatch): changed after 6.12 (since \(e.since)): \(e.why)")
                }
                if report.agrees {
                    print(report.explained.isEmpty ? "the Engine agrees with the kernel on every page\n"
                                                   : "the Engine agrees with the kernel on every other page\n")
                } else {
                    print(report.mismatches.joined(separator: "\n") + "\n")
                }
            }
        }
        if disagree { throw ExitCode(1) }
    }
}
