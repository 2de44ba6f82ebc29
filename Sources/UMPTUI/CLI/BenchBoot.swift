// `umptui bench`: what a larger machine costs to boot. No peer boots a model, so the baseline is the
// same boot of a small machine: `machine ram=16G` + one process against `ram=64M`, each a whole
// `umptui run`, five times; the figure is the difference of the medians, with each side's spread.

import Engine
import Foundation

enum BenchBoot {
    struct Result {
        /// Seconds per run, sorted: ram=64M, then ram=16G.
        var small: [Double]
        var large: [Double]
        var addedMs: Double { (median(large) - median(small)) * 1000 }
        func median(_ xs: [Double]) -> Double { xs.isEmpty ? 0 : xs[xs.count / 2] }
    }

    static func run(runs: Int = 5) throws -> Result {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("umptui-bench-boot-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let small = dir.appendingPathComponent("small.ump"), large = dir.appendingPathComponent("large.ump")
        try "machine ram=64M\nprocess app\n".write(to: small, atomically: false, encoding: .utf8)
        try "machine ram=16G\nprocess app\n".write(to: large, atomically: false, encoding: .utf8)
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        var result = Result(small: [], large: [])
        // Interleaved, so a change in the machine's load falls on both sides alike.
        for _ in 0..<runs {
            for (path, large) in [(small.path, false), (large.path, true)] {
                let t0 = BenchRunner.now()
                _ = try IOTLBBench.runProcess(me, ["run", path])
                let t = BenchRunner.now() - t0
                if large { result.large.append(t) } else { result.small.append(t) }
            }
        }
        result.small.sort()
        result.large.sort()
        return result
    }

    static func print(_ r: Result) {
        Swift.print(String(format: "  boot: ram=16G + one process %.1f ms (%.1f–%.1f), ram=64M %.1f ms (%.1f–%.1f), medians of %d whole runs: 16 GiB adds %.1f ms (target ≤ 5)",
                           r.median(r.large) * 1000, (r.large.first ?? 0) * 1000, (r.large.last ?? 0) * 1000,
                           r.median(r.small) * 1000, (r.small.first ?? 0) * 1000, (r.small.last ?? 0) * 1000, r.small.count, r.addedMs))
    }

    static func write(_ r: Result, _ w: inout JSONWriter) {
        w.beginObject("boot")
        w.field("ram_64m_ms_median", String(format: "%.2f", r.median(r.small) * 1000))
        w.field("ram_16g_ms_median", String(format: "%.2f", r.median(r.large) * 1000))
        w.field("ram_64m_ms_min", String(format: "%.2f", (r.small.first ?? 0) * 1000))
        w.field("ram_64m_ms_max", String(format: "%.2f", (r.small.last ?? 0) * 1000))
        w.field("ram_16g_ms_min", String(format: "%.2f", (r.large.first ?? 0) * 1000))
        w.field("ram_16g_ms_max", String(format: "%.2f", (r.large.last ?? 0) * 1000))
        w.field("added_ms", String(format: "%.2f", r.addedMs))
        w.field("target_added_ms", 5)
        w.endObject()
    }
}
