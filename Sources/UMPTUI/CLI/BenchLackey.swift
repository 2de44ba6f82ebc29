// `umptui bench`: a generated valgrind lackey trace replayed by `PROC trace` (read, parsed and
// every access put through the page tables), as `umptui run` does it: lines per second with the
// spread over the repetitions, and how much the process grew while it streamed. No peer replays
// a trace through a model of the kernel's page tables, so there is no baseline ratio.

import Engine
import Foundation

enum BenchLackey {
    struct Result {
        var lines: Int
        /// Seconds per repetition, sorted.
        var seconds: [Double]
        /// Growth of the process's peak RSS over the replays, KiB: bounded, whatever the length.
        var rssGrowthKiB: Int
        var median: Double { seconds.isEmpty ? 0 : seconds[seconds.count / 2] }
        var linesPerSecond: Double { Double(lines) / max(median, 1e-9) }
    }

    /// A trace shaped as a program's: instruction fetches over 16 KiB of text, loads and stores over
    /// a 4 MiB mmap area and the stack, so most accesses hit a page already mapped.
    static func write(lines: Int, to path: String) throws {
        FileManager.default.createFile(atPath: path, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? h.close() }
        var chunk = ""
        var x: UInt64 = 0x9e37_79b9_7f4a_7c15
        for i in 0..<lines {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            switch i % 4 {
            case 0, 1: chunk += "I  \(String(0x40_1000 + (x % 0x4000), radix: 16)),4\n"
            case 2: chunk += " L \(String(0x480_0000 + (x % 0x40_0000), radix: 16)),8\n"
            default: chunk += " S \(String(0x1f_fefe_0000 + (x % 0x2_0000), radix: 16)),8\n"
            }
            if chunk.utf8.count > 1 << 20 {
                h.write(Data(chunk.utf8))
                chunk = ""
            }
        }
        h.write(Data(chunk.utf8))
    }

    static func maxRSSKiB() -> Int {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return u.ru_maxrss
    }

    static func run(lines: Int, repetitions: Int = 3) throws -> Result {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("umptui-bench-lackey-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try write(lines: lines, to: dir.appendingPathComponent("t.lackey").path)
        let script = try parseScript("machine ram=1G\nprocess app\napp trace t.lackey format=lackey", fileName: "bench.ump")
        let traces = FileTraceProvider(base: dir)
        let before = maxRSSKiB()
        var seconds: [Double] = []
        for _ in 0..<repetitions {
            let t0 = BenchRunner.now()
            let result = ScenarioRunner.run(script, traces: traces)
            seconds.append(BenchRunner.now() - t0)
            guard result.records.last?.outcome == .ok, result.records.last?.trace?.lines == lines else {
                throw BenchLackeyError(description: result.records.last?.text ?? "no record")
            }
        }
        return Result(lines: lines, seconds: seconds.sorted(), rssGrowthKiB: maxRSSKiB() - before)
    }

    struct BenchLackeyError: Error, CustomStringConvertible { var description: String }

    static func print(_ r: Result) {
        Swift.print(String(format: "  lackey trace of %d lines replayed through the page tables (PROC trace): median %.2f s (%.2f–%.2f s) = %.1f million lines/s; peak RSS grew %d KiB (bounded: the trace streams)",
                           r.lines, r.median, r.seconds.first ?? 0, r.seconds.last ?? 0, r.linesPerSecond / 1e6, r.rssGrowthKiB))
    }
}
