// Time travel: snapshots share what did not change, restore gives back the exact state, and going to
// step N by any path gives the state of running the first N steps from boot.

import XCTest
@testable import Engine

final class TimelineTests: XCTestCase {
    private func statement(_ line: String) -> Statement { try! parseStatement(line)! }

    // MARK: Snapshots

    func testASnapshotSharesEveryChunkThatDidNotChange() throws {
        var r = scenario("""
            machine ram=64M
            process app
            app malloc buf 64K
            """)
        var engine = r.engine
        let a = engine.snapshot(step: 0)
        let b = engine.snapshot(step: 0)
        XCTAssertEqual(a.phys.chunks.count, 16, "64M is 16384 frames: 16 chunks of 1024")
        XCTAssertTrue(zip(a.phys.chunks, b.phys.chunks).allSatisfy { $0 === $1 }, "nothing changed: every chunk shared")
        // One write touches the frames it allocates (and their free-list neighbours) only.
        r = EngineRun(timeline: Timeline(engine: engine, policy: .none))
        r.step("app write buf 0 4K")
        engine = r.engine
        let c = engine.snapshot(step: 1)
        let changed = zip(b.phys.chunks, c.phys.chunks).filter { $0 !== $1 }.count
        XCTAssertGreaterThan(changed, 0)
        XCTAssertLessThanOrEqual(changed, 3, "a one-page fault copies the chunks it wrote, not the machine")
    }

    func testRestoreGivesBackTheExactState() throws {
        var r = scenario("""
            machine ram=16M swap=1M
            process app
            device gpu iommu=vtd iotlb=16
            app malloc buf 1M
            app write buf
            """)
        var engine = r.engine
        let before = engine.state
        let snap = engine.snapshot(step: 5)
        r = EngineRun(timeline: Timeline(engine: engine, policy: .none))
        for line in ["gpu map app.buf", "pressure 512K", "app fork child", "child write buf", "app free buf", "compact"] { r.step(line) }
        var after = r.engine
        XCTAssertFalse(after.state == before)
        after.restore(snap)
        XCTAssertTrue(after.state == before, "restore: \(stateDiff(after.state, before))")
        // And the restored state runs on exactly as the original did.
        var again = EngineRun(timeline: Timeline(engine: after, policy: .none))
        var orig = EngineRun(timeline: Timeline(engine: engine, policy: .none))
        for line in ["gpu map app.buf", "app fork child", "child write buf"] {
            again.step(line)
            orig.step(line)
        }
        XCTAssertTrue(again.state == orig.state, "after restore: \(stateDiff(again.state, orig.state))")
    }

    // MARK: go(to:)

    /// Timelines of generated steps walked at random (forward, back, jumps, typed steps that drop
    /// the steps stepped back over) with snapshots dense enough to be taken and thinned: every
    /// state reached equals running the timeline's first N steps from boot.
    func testGoingToAStepByAnyPathEqualsRunningFromBoot() throws {
        var generator = ScriptGenerator(seed: 88)
        var rng = SplitMix64(seed: 7)
        var checked = 0, thinned = 0, restored = 0
        let policy = SnapshotPolicy(spacing: 40, density: 2, budgetBytes: 6 * 37 * 1024 * 16, restoreCost: 10)
        for i in 0..<40 {
            let text = generator.script()
            guard let script = try? parseScript(text, fileName: "gen\(i).ump") else { continue }
            let plan = StepPlan(script)
            guard plan.steps.count >= 5 else { continue }
            var t = Timeline(plan: plan, traces: FuzzTraces(), policy: policy)
            var reference: [Int: EngineState] = [:]
            func expected(_ n: Int) -> EngineState {
                if let s = reference[n] { return s }
                var fresh = Timeline(machine: plan.machineStatement, steps: Array(t.steps[..<n]), traces: FuzzTraces(), policy: .none)
                while fresh.stepForward() != nil {}
                reference[n] = fresh.engine.state
                return fresh.engine.state
            }
            defer { restored += t.moves.restores }
            for _ in 0..<60 {
                let before = t.snapshots.count
                switch rng.next() % 6 {
                case 0, 1: t.go(to: Int(rng.next() % UInt64(t.total + 1)))
                case 2: t.stepForward()
                case 3: t.stepBack()
                case 4: t.go(to: rng.next() % 2 == 0 ? 0 : t.total)
                default:
                    // A typed step: the steps stepped back over go, and every state after here changes.
                    let dropped = t.known.count - t.current
                    let total = t.total
                    t.insert(ScriptStep(statement: statement(rng.next() % 2 == 0 ? "a write x" : "pressure 64K")))
                    XCTAssertEqual(t.total, total - dropped + 1)
                    reference = reference.filter { $0.key < t.current }
                }
                if t.snapshots.count < before { thinned += 1 }
                XCTAssertTrue(t.engine.state == expected(t.current),
                              "script \(i) at step \(t.current): \(stateDiff(t.engine.state, expected(t.current)))\n\(text)")
                XCTAssertEqual(t.records.count, t.current)
                XCTAssertEqual(t.snapshots.first?.step, 0, "the boot snapshot stays")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 500)
        XCTAssertGreaterThan(thinned, 0, "the walk dropped snapshots along the way")
        XCTAssertGreaterThan(restored, 20, "jumps that restored a snapshot")
    }

    func testTheSnapshotBudgetHolds() throws {
        var lines = ["machine ram=64M", "process app"]
        for i in 0..<200 { lines += ["app malloc b\(i) 256K", "app write b\(i)"] }
        let plan = StepPlan(try parseScript(lines.joined(separator: "\n"), fileName: "t.ump"))
        let budget = 2 << 20
        var t = Timeline(plan: plan, policy: SnapshotPolicy(spacing: 50, density: 4, budgetBytes: budget, restoreCost: 10))
        t.go(to: t.total)
        XCTAssertLessThanOrEqual(t.snapshotChunkBytes, max(budget, t.snapshotFootprint.bytes))
        XCTAssertLessThanOrEqual(t.snapshotChunkBytes, budget + 600 * 1024, "the boot and the newest snapshot may exceed it, nothing else")
        let fp = t.snapshotFootprint
        XCTAssertGreaterThan(fp.snapshots, 2)
        XCTAssertGreaterThan(fp.frameChunks, 16, "later snapshots hold chunks of their own")
        // Going back through thinned snapshots still lands exactly.
        var fresh = Timeline(machine: plan.machineStatement, steps: Array(plan.steps.prefix(37)), policy: .none)
        while fresh.stepForward() != nil {}
        t.go(to: 37)
        XCTAssertTrue(t.engine.state == fresh.engine.state)
    }

    // MARK: The plan and the runner

    func testBackUndoesTheLastStepAndTheNextStepReplacesIt() throws {
        let recording = """
            # umptui recording
            machine ram=64M
            process app
            app malloc buf 1M
            app write buf
            back
            back
            app mmap other 64K
            expect app rss=0
            """
        let direct = """
            machine ram=64M
            process app
            app mmap other 64K
            """
        let a = ScenarioRunner.run(try parseScript(recording, fileName: "r.ump"))
        let b = ScenarioRunner.run(try parseScript(direct, fileName: "d.ump"))
        XCTAssertEqual(a.engine.stateJSON(), b.engine.stateJSON())
        XCTAssertEqual(a.records.map(\.command), ["process app", "app mmap other 64K"])
        XCTAssertEqual(a.failures.count, 0)
        var events: [String] = []
        _ = ScenarioRunner.run(try parseScript(recording, fileName: "r.ump")) { (e: RunEvent, _) in
            switch e {
            case let .step(r): events.append("step \(r.step)")
            case let .back(r, line): events.append("back \(r.step) line \(line)")
            default: events.append("other")
            }
        }
        XCTAssertEqual(events, ["step 1", "step 2", "step 3", "back 3 line 6", "back 2 line 7", "step 2"])
    }

    func testSetReRunsFromBootWithTheOverride() throws {
        let withSet = """
            machine ram=64M
            process app memlock=64K
            app malloc buf 1M
            app pin buf
            set app.memlock=8M
            expect last outcome=ok
            app write buf
            """
        let folded = """
            machine ram=64M
            process app memlock=8M
            app malloc buf 1M
            app pin buf
            app write buf
            """
        let a = ScenarioRunner.run(try parseScript(withSet, fileName: "s.ump"))
        let b = ScenarioRunner.run(try parseScript(folded, fileName: "f.ump"))
        XCTAssertEqual(a.failures.map(\.message), [], "after the re-run the pin succeeded")
        XCTAssertEqual(a.engine.stateJSON(), b.engine.stateJSON())
        XCTAssertEqual(a.records.map(\.command), b.records.map(\.command), "the declaration's text carries the override")
    }

    func testANoteBeforeABackOrASetWaitsForTheNextStep() throws {
        let plan = StepPlan(try parseScript("process app\napp malloc b 4K\nnote \"hello\"\nwait 1s\nset app.memlock=1M\nback\napp write b", fileName: "n.ump"))
        guard case let .set(s, text) = plan.items[2], case let .back(b) = plan.items[3], case let .step(w) = plan.items[4] else {
            return XCTFail("items: \(plan.items)")
        }
        XCTAssertEqual(text, "app.memlock=1M")
        XCTAssertEqual(s.cues.map(\.text), ["wait 1s"], "the wait paces the set line")
        XCTAssertEqual(s.notes + b.notes, [])
        XCTAssertEqual(w.notes, ["hello"])
        let run = ScenarioRunner.run(try parseScript("process app\napp malloc b 4K\nnote \"hello\"\nset app.memlock=1M\napp write b", fileName: "n.ump"))
        XCTAssertEqual(run.records.last?.notes, ["hello"])
    }

    func testBadRecordingLinesAreErrorsWithAColumn() throws {
        func error(_ line: String) -> String? {
            do { _ = try parseStatement(line); return nil } catch { return "\(error.location.column): \(error.message)" }
        }
        XCTAssertEqual(error("back 2"), "6: too many arguments for 'back'")
        XCTAssertEqual(error("set"), "4: 'set' needs TARGET.KEY=VALUE")
        XCTAssertEqual(error("set ram=1G"), "5: expected TARGET.KEY=VALUE, got 'ram=1G'")
        XCTAssertEqual(error("set machine.ram=1G gpu.iotlb=4"), "20: unexpected 'gpu.iotlb=4': 'set' takes one override")
        XCTAssertEqual(error("select app.buf"), "15: 'select' needs what to select")
        XCTAssertEqual(error("select app.buf x"), "16: expected a number, got 'x'")
        XCTAssertEqual(error("select pfn 99999999999999999999"), "12: number '99999999999999999999' is too large for 64 bits")
        XCTAssertEqual(error("select gpu 0x1000"), "12: expected 'iova' after the device name, got '0x1000'")
        XCTAssertEqual(error("select gpu iova"), "16: 'select gpu iova' needs an address")
        XCTAssertEqual(error("inspect now"), "9: too many arguments for 'inspect'")
        XCTAssertEqual(error("wait 3601s"), "6: a duration must be at most an hour (3600s), got '3601s'")
        XCTAssertEqual(error("app malloc b 65T"), "14: '65T' is larger than a process's address space: at most 64T")
        XCTAssertNil(error("select gpu iova 2M"))
    }

    func testTheCheckerFollowsBackAndSet() throws {
        func problems(_ source: String) -> [String] {
            guard let script = try? parseScript(source, fileName: "c.ump") else { return ["parse"] }
            return checkScript(script, sourceLines: scenarioSourceLines(source), fileExists: { _ in true }).map(\.rendered)
        }
        XCTAssertEqual(problems("process app\napp malloc x 4K\nback\napp write x"), ["""
            c.ump:4:11: error: process 'app' has no buffer 'x'
            app write x
                      ^
            hint: app has no buffers yet
            """])
        // Only as many snapshots as `back` lines remain are kept; the backs still see the right names.
        let many = "process app\n" + (0..<300).map { "app mmap b\($0) 4K\n" }.joined() + String(repeating: "back\n", count: 100)
        let after = problems(many + "app mmap b200 4K\napp write b201")
        XCTAssertEqual(after.count, 1, "\(after)")
        XCTAssertTrue(after.first?.hasPrefix("c.ump:403:11: error: process 'app' has no buffer 'b201'") ?? false, "\(after)")
        let exists = problems(many + "app mmap b199 4K")
        XCTAssertTrue(exists.first?.hasPrefix("c.ump:402:10: error:") ?? false, "\(exists)")
        XCTAssertEqual(problems("process app\napp malloc x 4K\nback\nback\nback").count, 1, "two steps undo; the third back has none")
        XCTAssertEqual(problems("back"), ["""
            c.ump:1:1: error: 'back' has no step before it to undo
            back
            ^
            hint: a recording writes 'back' after the step it undoes
            """])
        XCTAssertEqual(problems("process app\nset app.memlok=1M").first?.components(separatedBy: "\n").first,
                       "c.ump:2:9: error: unknown option 'memlok' for process")
        XCTAssertEqual(problems("process app\nset gpu.iotlb=16").first?.components(separatedBy: "\n").first,
                       "c.ump:2:5: error: no process or device named 'gpu' is declared")
        XCTAssertEqual(problems("process app\nselect app.buf 3").first?.components(separatedBy: "\n").first,
                       "c.ump:2:12: error: process 'app' has no buffer 'buf'")
        XCTAssertEqual(problems("process app\nselect gpu iova 0x1000").first?.components(separatedBy: "\n").first,
                       "c.ump:2:8: error: unknown device 'gpu'")
        XCTAssertEqual(problems("process select"), ["""
            c.ump:1:9: error: 'select' is a reserved word
            process select
                    ^
            hint: pick another name; reserved words: machine, process, device, file, pressure, compact, note, wait, expect, back, set, unset, select, inspect, quiz, last, pfn, w
            """])
        for word in ["set", "unset", "back", "inspect", "w"] {
            XCTAssertEqual(problems("device \(word)").first?.components(separatedBy: "\n").first,
                           "c.ump:1:8: error: '\(word)' is a reserved word")
        }
        XCTAssertEqual(problems("machine ram=64M\nprocess app\napp malloc buf 64K\nselect app.buf 3\nselect pfn 0x62a\ninspect\nset machine.ram=1G"), [])
    }

    func testACutOffRecordingKeepsItsWholeLines() throws {
        let whole = "# umptui recording\nprocess app\napp malloc buf 8M\n"
        XCTAssertNil(ScriptText.wholeLines(of: whole).cutLine)
        let cut = whole + "app write bu"
        let (source, line) = ScriptText.wholeLines(of: cut)
        XCTAssertEqual(line, 4)
        XCTAssertEqual(source, whole)
        // "8M" cut to "8" still parses: a cut line is dropped whatever it says.
        XCTAssertEqual(ScriptText.wholeLines(of: "# umptui recording\nprocess app\napp malloc buf 8").source, "# umptui recording\nprocess app\n")
        // A script that is not a recording keeps its last line (and its errors).
        XCTAssertNil(ScriptText.wholeLines(of: "process app\napp write bu").cutLine)
    }
}
