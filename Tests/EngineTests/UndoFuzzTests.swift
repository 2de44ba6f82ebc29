// Generated scripts: nothing crashes, every step undoes exactly, runs are deterministic.

import Foundation
import XCTest
@testable import Engine

/// Writes random scenario scripts: mostly valid lines over a small pool of names, some mangled.
struct ScriptGenerator {
    var rng: SplitMix64

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func pick<T>(_ xs: [T]) -> T { xs[Int(rng.next() % UInt64(xs.count))] }
    mutating func chance(_ percent: UInt64) -> Bool { rng.next() % 100 < percent }

    mutating func size() -> String {
        pick(["4K", "8K", "12K", "64K", "100K", "128K", "200K", "1M", "2M", "3M", "4M", "6M", "0x3000", "5000", "1"])
    }

    mutating func range() -> String {
        chance(50) ? "" : " " + pick(["0", "4K", "8K", "0x1000", "100"]) + (chance(70) ? " " + pick(["4K", "8K", "16K", "1M", "64K"]) : "")
    }

    mutating func line(procs: [String], bufs: [String]) -> String {
        let p = pick(procs), b = pick(bufs)
        let d = pick(["d1", "d2"])
        switch rng.next() % 41 {
        case 22: return "\(d) map \(p).\(b)" + (chance(30) ? " read" : "") + (chance(15) ? " iova=\(pick(["0x100000", "0x1000", "0x123000"]))" : "")
        case 23: return "\(d) unmap \(p).\(b)"
        case 24, 25: return "\(d) dma \(p).\(b) \(pick(["read", "write"])) pattern=\(pick(["seq", "random", "stride:8K", "tile:256x16@4096"])) size=\(pick(["64", "4096"])) count=\(pick(["1", "100", "500"]))" + (chance(20) ? " transient" : "")
        case 26: return "\(p) pin \(b)" + (chance(50) ? " write" : "") + (chance(50) ? " longterm" : "") + (chance(20) ? " get" : "")
        case 27: return "\(p) unpin \(b)"
        case 28: return "\(p) ump-alloc \(b) \(pick(["64K", "1M", "2M"]))" + (chance(50) ? " linear" : "")
        case 29: return "\(p) ump-import \(b) \(1 + rng.next() % 3)"
        case 30: return "\(p) dmabuf-alloc \(b) \(pick(["64K", "1M"])) heap=\(pick(["system", "cma"]))"
        case 31: return "\(p) send \(b) \(pick(procs))"
        case 32: return "compact"
        case 33: return "\(d) dma-trace t.txt unit=\(pick(["page", "addr"]))"
        case 34: return "\(p) mprotect \(b)" + (chance(40) ? " 0 8K" : "") + " \(pick(["r", "rw", "none"]))"
        case 35: return "\(p) vmsplice \(b)\(range().isEmpty ? "" : " 0 8K")" + (chance(50) ? " pipe=\(pick(["p", "q"]))" : "")
        case 36: return "\(p) \(pick(["pipe-read", "pipe-close"])) \(pick(["pipe", "p", "q"]))"
        case 37: return "\(p) \(pick(["uring-register", "uring-unregister"])) \(b)"
        case 38: return "\(p) mremap \(b) \(size())" + (chance(60) ? " move" : "")
        case 39: return "\(p) mmap \(b) \(size()) file=f" + (chance(50) ? " shared" : "") + (chance(20) ? " populate" : "")
        case 40: return "\(p) memfd \(b) \(pick(["16K", "64K", "1M"]))"
        case 0, 1: return "\(p) malloc \(b) \(size())"
        case 2, 3: return "\(p) mmap \(b) \(size())" + (chance(20) ? " shared" : "") + (chance(20) ? " populate" : "") + (chance(10) ? " locked" : "") + (chance(30) ? " hugepage" : "")
        case 4, 5, 6: return "\(p) write \(b)\(range())"
        case 7, 8: return "\(p) read \(b)\(range())"
        case 9: return "\(p) free \(b)"
        case 10: return "\(p) munmap \(b)" + (chance(50) ? " 4K 8K" : "")
        case 11: return "\(p) madvise \(b) \(pick(["dontneed", "dontfork", "dofork", "hugepage", "nohugepage", "pageout", "collapse"]))" + (chance(40) ? " 0 8K" : "")
        case 12: return "\(p) fork \(pick(procs))"
        case 13: return "\(p) exit"
        case 14: return "\(p) \(pick(["mlock", "munlock"])) \(b)"
        case 15: return "pressure \(pick(["64K", "1M", "8M", "64M"]))"
        case 16: return "expect \(p).\(b) present=\(rng.next() % 8)"
        case 17: return "note \"step \(rng.next() % 100)\""
        case 18: return "\(p) pin \(b)"
        case 19: return "process \(pick(procs))"
        case 20: return "wait \(pick(["10ms", "1.5s"]))"
        default:
            // Mangled input: cut a valid line, or insert junk.
            let l = "\(p) mmap \(b) \(size()) hugepage"
            let cut = Int(rng.next() % UInt64(l.count))
            return chance(50) ? String(l.prefix(cut)) : String(l.prefix(cut)) + pick(["=", "\"", "#", "0x", "ß", "\t", "@@", "99999999999999999999M"])
        }
    }

    mutating func script() -> String {
        let procs = ["a", "b", "c"]
        let bufs = ["x", "y", "z"]
        var lines = ["machine ram=\(pick(["4M", "16M", "64M"])) thp=\(pick(["never", "madvise", "always"])) swap=\(pick(["0", "1M", "8M"])) fragment=\(pick(["0", "30", "100"])) seed=\(rng.next() % 5) kernel=\(pick(["6.12", "legacy"])) cma=\(pick(["0", "4M"])) ump-limit=\(pick(["none", "memlock"])) mthp=\(pick(["none", "none", "16K,64K", "32K,1M"]))"]
        lines.append("file f \(pick(["16K", "64K", "1M"]))")
        lines.append("process a")
        lines.append("device d1 iommu=\(pick(["vtd", "arm-v7s", "amd-v1", "arm-lpae"])) iotlb=\(pick(["4", "16", "64"])) ways=\(pick(["full", "4"])) pagesizes=\(pick(["4K,2M,1G,1M,64K,16M", "64K,1M", "1M"])) policy=\(pick(["lru", "fifo", "random"])) flush=\(pick(["strict", "lazy"]))")
        lines.append("device d2 iommu=\(pick(["sva", "none", "vtd"])) pagesizes=\(pick(["4K", "4K,2M"]))")
        let n = 5 + Int(rng.next() % 25)
        for _ in 0..<n { lines.append(line(procs: procs, bufs: bufs)) }
        return lines.joined(separator: "\n")
    }
}

/// A fixed little trace for generated `dma-trace` lines.
struct FuzzTraces: TraceProvider {
    func open(_ path: String) throws -> any AddressSource { ArrayAddressSource([0, 1, 2, 0x100, 255, 3, 0x100000, 1]) }
}

final class UndoFuzzTests: XCTestCase {
    /// 200 generated scripts (10,000 with UMPTUI_LONG_TESTS=1, or UMPTUI_FUZZ_SCRIPTS=N, from seed
    /// UMPTUI_FUZZ_SEED) through parse, check and run: no crash. Each one that parses is run step
    /// by step; every fourth script undoes each step and compares the whole state with the state
    /// before it, then redoes it; after every step the invariants must hold. A failing script is
    /// shrunk to the fewest lines that still fail and printed as a scenario file.
    func testGeneratedScriptsRunAndUndoExactly() throws {
        let env = ProcessInfo.processInfo.environment
        var generator = ScriptGenerator(seed: env["UMPTUI_FUZZ_SEED"].flatMap { UInt64($0) } ?? 2026)
        let count = env["UMPTUI_FUZZ_SCRIPTS"].flatMap { Int($0) } ?? (env["UMPTUI_LONG_TESTS"] == "1" ? 10_000 : 200)
        var parsed = 0, steps = 0, undoChecked = 0, failures = 0
        for i in 0..<count {
            let text = generator.script()
            guard let result = Self.failure(of: text, undo: i % 4 == 0, json: i % 10 == 0) else { continue }
            parsed += 1
            steps += result.steps
            undoChecked += result.undone
            if let problem = result.problem {
                failures += 1
                let minimal = Self.shrink(text) { Self.failure(of: $0, undo: i % 4 == 0, json: i % 10 == 0)?.problem != nil }
                XCTFail("script \(i): \(problem)\nshrunk to a minimal script:\n\(minimal)")
                if failures >= 3 { break }  // the first few say enough
            }
        }
        XCTAssertGreaterThan(parsed, count / 2, "the generator should mostly write valid scripts")
        XCTAssertGreaterThan(undoChecked, count)
        XCTAssertGreaterThan(steps, count * 5)
    }

    /// What running `text` found: nil when it does not parse; else the steps run, the steps undone
    /// and redone, and the first problem (an inexact undo, a redo with another outcome, a broken
    /// invariant, an internal error), if any.
    static func failure(of text: String, undo: Bool, json: Bool) -> (steps: Int, undone: Int, problem: String?)? {
        guard let script = try? parseScript(text, fileName: "gen.ump") else { return nil }
        _ = checkScript(script, sourceLines: scenarioSourceLines(text), fileExists: { _ in true })
        let plan = StepPlan(script)
        var timeline = Timeline(engine: Engine(config: MachineConfig(plan.machine)), traces: FuzzTraces(), policy: .none)
        timeline.invariantChecks = .off  // checked below, after the undo and redo too
        var steps = 0, undone = 0
        for step in plan.steps {
            let before = timeline.engine.state
            let beforeJSON = json ? timeline.engine.stateJSON() : ""
            let record = timeline.apply(step.statement)
            steps += 1
            if !record.bugs.isEmpty { return (steps, undone, "step \(record.step) '\(record.command)': \(record.bugs.joined(separator: "; "))") }
            if undo {
                timeline.stepBack()
                if timeline.engine.state != before { return (steps, undone, "step \(record.step) '\(record.command)' did not undo exactly") }
                if json, timeline.engine.stateJSON() != beforeJSON { return (steps, undone, "step \(record.step) '\(record.command)': the JSON after undo differs") }
                let again = timeline.apply(step.statement)
                if again.outcome != record.outcome { return (steps, undone, "redo of '\(record.command)' gave \(again.outcome.word), not \(record.outcome.word)") }
                undone += 1
            }
            let broken = timeline.engine.state.invariantViolations()
            if !broken.isEmpty { return (steps, undone, "after step \(record.step) '\(record.command)': " + broken.joined(separator: "; ")) }
        }
        return (steps, undone, nil)
    }

    /// The failing script with lines taken out while it still `fails` (the machine line stays):
    /// one line at a time, until no single line can go.
    static func shrink(_ text: String, fails: (String) -> Bool) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var removed = true
        while removed {
            removed = false
            var i = lines.count - 1
            while i >= 1 {
                var trial = lines
                trial.remove(at: i)
                if fails(trial.joined(separator: "\n")) {
                    lines = trial
                    removed = true
                }
                i -= 1
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The shrinker keeps what makes a script fail and drops the rest (the "failure" here: a fork
    /// by a process that was declared).
    func testShrinkingKeepsOnlyTheLinesThatMatter() {
        let text = "machine ram=16M\nprocess a\na mmap x 64K\na write x\na fork b\nb write x\na munmap x"
        let minimal = Self.shrink(text) { t in t.contains(" fork ") && t.contains("process a") }
        XCTAssertEqual(minimal, "machine ram=16M\nprocess a\na fork b\n")
        // A script that passes has nothing to shrink for.
        XCTAssertNil(Self.failure(of: text, undo: true, json: true)?.problem)
    }

    /// Same script, same seed: the same states byte for byte.
    func testRunsAreDeterministic() throws {
        var generator = ScriptGenerator(seed: 7)
        for _ in 0..<50 {
            let text = generator.script()
            guard let script = try? parseScript(text, fileName: "d.ump") else { continue }
            let a = ScenarioRunner.run(script)
            let b = ScenarioRunner.run(script)
            XCTAssertEqual(a.engine.stateJSON(), b.engine.stateJSON())
            XCTAssertEqual(a.records.map(\.text), b.records.map(\.text))
        }
    }

}
