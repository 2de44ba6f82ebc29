// `umptui bench`'s long-script section: a generated script of malloc lines (half from the brk heap,
// half mmapped), parsed and run in-process at two lengths. A step's cost must not grow with the
// steps before it, so ten times the lines should take about ten times as long. There is no peer to
// take a ratio against: the figures come with their spread over a few runs.

import Engine

enum BenchScript {
    struct Result {
        var lines: Int
        /// Seconds per run, sorted.
        var seconds: [Double]
        var median: Double { seconds[seconds.count / 2] }
    }

    static func source(lines: Int) -> String {
        var s = "machine ram=1G\nprocess app\n"
        s.reserveCapacity(lines * 24)
        for i in 0..<lines { s += "app malloc b\(i) \(i % 2 == 0 ? "200K" : "1K")\n" }
        return s
    }

    static func run(lines: Int, runs: Int = 3) -> Result {
        let text = source(lines: lines)
        var times: [Double] = []
        for _ in 0..<runs {
            let t0 = BenchRunner.now()
            // The bench's own lines are fixed and valid.
            guard let script = try? parseScript(text, fileName: "bench") else { preconditionFailure("bench script does not parse") }
            let result = ScenarioRunner.run(script)
            precondition(result.records.count == lines + 1, "every malloc ran")
            times.append(BenchRunner.now() - t0)
        }
        return Result(lines: lines, seconds: times.sorted())
    }
}
