// `umptui bench`: a sweep of a few hundred runs of a demo-sized script, on one core and on all of
// them, measured alternately in the same process: runs per second and the speedup. No baseline
// does this work; the figure is the speedup, with the spread over the repetitions.

import Engine
import Foundation

enum BenchSweep {
    /// demos/sweep-iotlb.ump, with fewer reads: what a sweep of a lecture's script costs.
    static let source = """
        machine ram=512M memlock=64M
        process app
        device nic iommu=vtd iotlb=64
        app mmap win 16M hugepage
        app write win
        nic map app.win read
        nic dma app.win read pattern=random size=64 count=5000
        """

    struct Result {
        var runs: Int
        var cores: Int
        /// Seconds per repetition, sorted, for one job and for `cores` jobs.
        var oneJob: [Double]
        var allJobs: [Double]
        var agree: Bool

        var runsPerSecondOne: Double { Double(runs) / median(oneJob) }
        var runsPerSecondAll: Double { Double(runs) / median(allJobs) }
        var speedup: Double { median(oneJob) / median(allJobs) }
        func median(_ xs: [Double]) -> Double { xs.isEmpty ? 0 : xs[xs.count / 2] }
    }

    static func run(repetitions: Int = 3) throws -> Result {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("umptui-bench-sweep-\(getpid()).ump").path
        try source.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let plan = try SweepRun(file: path, variations: ["nic.pagesizes=[4K],[4K,2M]", "nic.iotlb=1..150+1"],
                                metrics: ["nic.misses"], overrides: [], chart: nil)
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        var one: [Double] = [], all: [Double] = []
        var agree = true
        var reference: SweepTable?
        for _ in 0..<repetitions {
            for jobs in [1, cores] {
                let t0 = BenchRunner.now()
                let results = plan.runAll(jobs: jobs, stop: StopFlag()) {}
                let t = BenchRunner.now() - t0
                let table = plan.table(results)
                if let reference, reference != table { agree = false }
                reference = table
                if jobs == 1 { one.append(t) } else { all.append(t) }
            }
        }
        return Result(runs: plan.runs.count, cores: cores, oneJob: one.sorted(), allJobs: all.sorted(), agree: agree)
    }

    static func print(_ r: Result) {
        Swift.print(String(format: "  sweep of %d runs (demos/sweep-iotlb.ump, 5000 reads each): %.0f runs/s on 1 core (%.2f–%.2f s), %.0f runs/s on %d (%.2f–%.2f s): %.2f× faster%@",
                           r.runs, r.runsPerSecondOne, r.oneJob.first ?? 0, r.oneJob.last ?? 0, r.runsPerSecondAll, r.cores,
                           r.allJobs.first ?? 0, r.allJobs.last ?? 0, r.speedup, r.agree ? "; every table the same" : "; TABLES DIFFER"))
    }
}
