// `umptui bench`'s time-travel section: a generated timeline of 100,000 small steps on a 1 GiB
// machine, run once to the end (taking snapshots as the TUI does), then `Timeline.go(to:)` to random
// steps. There is no peer to take a ratio against: the figures are the median and the worst with
// their spread, and the memory the snapshots hold.

import Engine

enum BenchTimeline {
    struct Result {
        var steps: Int
        var buildSeconds: Double
        /// Milliseconds per jump, sorted.
        var jumpsMs: [Double]
        var medianMs: Double { jumpsMs[jumpsMs.count / 2] }
        var p90Ms: Double { jumpsMs[jumpsMs.count * 9 / 10] }
        var worstMs: Double { jumpsMs.last ?? 0 }
        var snapshots: SnapshotFootprint
        var stateBytes: Int
        var recordBytes: Int
        var moves: TimelineMoves
    }

    /// Small steps over four processes: mallocs and frees of a few pages, writes, reads, mmaps,
    /// pins and device maps, every buffer freed again so the machine never fills.
    static func source(steps: Int) -> String {
        var s = "machine ram=1G memlock=64M\nprocess p0\nprocess p1\nprocess p2\nprocess p3\ndevice dev iommu=vtd iotlb=64\n"
        s.reserveCapacity(steps * 26)
        var rng = SplitMix64(seed: 42)
        var written = 5
        var live: [[Int]] = [[], [], [], []]
        var next = 0
        while written < steps {
            let p = Int(rng.next() % 4)
            if live[p].count < 24 && (live[p].isEmpty || rng.next() % 3 != 0) {
                let b = next
                next += 1
                let size = [4, 8, 16, 64][Int(rng.next() % 4)]
                s += rng.next() % 2 == 0 ? "p\(p) malloc b\(b) \(size)K\n" : "p\(p) mmap b\(b) \(size)K\n"
                s += "p\(p) write b\(b)\n"
                live[p].append(b)
                written += 2
            } else {
                let i = Int(rng.next() % UInt64(live[p].count))
                let b = live[p][i]
                switch rng.next() % 5 {
                case 0: s += "p\(p) read b\(b)\n"; written += 1
                case 1: s += "p\(p) pin b\(b)\np\(p) unpin b\(b)\n"; written += 2
                case 2: s += "dev map p\(p).b\(b)\ndev dma p\(p).b\(b) read size=64 count=16\ndev unmap p\(p).b\(b)\n"; written += 3
                default:
                    s += "p\(p) free b\(b)\n"
                    written += 1
                    live[p].remove(at: i)
                }
            }
        }
        // Exactly `steps` steps: everything but the machine line.
        return s.split(separator: "\n").prefix(steps + 1).joined(separator: "\n") + "\n"
    }

    static func run(steps: Int = 100_000, jumps: Int = 200) -> Result {
        let text = source(steps: steps)
        guard let script = try? parseScript(text, fileName: "bench-timeline") else { preconditionFailure("the bench's timeline does not parse") }
        let t0 = BenchRunner.now()
        var t = Timeline(plan: StepPlan(script))
        t.go(to: t.total)
        let build = BenchRunner.now() - t0
        var rng = SplitMix64(seed: 9)
        var times: [Double] = []
        for _ in 0..<jumps {
            let target = Int(rng.next() % UInt64(t.total + 1))
            let a = BenchRunner.now()
            t.go(to: target)
            times.append((BenchRunner.now() - a) * 1000)
        }
        let records = t.known.reduce(0) { $0 + MemoryLayout<StepRecord>.stride + $1.changes.count * MemoryLayout<Change>.stride + $1.text.utf8.count + $1.command.utf8.count }
        return Result(steps: t.total, buildSeconds: build, jumpsMs: times.sorted(), snapshots: t.snapshotFootprint,
                      stateBytes: t.engine.approximateStateBytes(), recordBytes: records, moves: t.moves)
    }
}
