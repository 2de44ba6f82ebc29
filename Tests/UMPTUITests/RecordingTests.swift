// Recording, replay, `:w`, time travel keys and export, through AppState with files in memory.

import Engine
import Foundation
import XCTest
@testable import UMPTUI

/// Files in memory: what the TUI writes, kept per path.
final class MemoryOutput: SessionOutput {
    var files: [String: String] = [:]
    var sinks: [String: MemorySink] = [:]
    var names = 0

    func openRecording(path: String?, force: Bool) throws -> (path: String, sink: any RecordingSink) {
        names += 1
        let p = path ?? "umptui-test-\(names).ump"
        if !force && (files[p] != nil || sinks[p] != nil) { throw OutputError(description: "\(p) exists; --force overwrites it") }
        let sink = MemorySink()
        sinks[p] = sink
        return (p, sink)
    }

    func save(_ text: String, to path: String, overwrite: Bool) throws {
        if !overwrite && files[path] != nil { throw OutputError(description: "\(path) exists; :w! overwrites it") }
        files[path] = text
    }

    func header(kind: String, base: String) -> [String] {
        FileOutput.header(kind: kind, base: base, date: Date(timeIntervalSince1970: 0))
    }
}

final class RecordingTests: XCTestCase {
    static let demo = """
        machine ram=64M memlock=1M
        process app
        device gpu iommu=vtd iotlb=16
        note "malloc only reserves addresses"
        app malloc buf 256K
        app write buf
        expect app.buf present=65
        gpu map app.buf write
        app malloc big 4M
        app pin big write longterm
        gpu dma app.buf write pattern=seq size=64
        app free buf
        """

    func app(_ source: String = demo, output: MemoryOutput) throws -> AppState {
        var a = AppState(session: Session(script: try parseScript(source, fileName: "lecture.ump")), glyphs: .unicode)
        (a.width, a.height) = (120, 40)
        a.output = output
        a.prepare()
        return a
    }

    func replay(_ text: String) throws -> RunResult {
        ScenarioRunner.run(try parseScript(text, fileName: "replay.ump"))
    }

    /// A lecture: steps, a step back and a different line (dropping what was stepped over), a typed
    /// line, a jump back and forward, pointing and the inspector, with pauses. The recording replays
    /// to the state the live session ended in.
    func testARecordingReplaysToTheLiveSessionsState() throws {
        let out = MemoryOutput()
        var a = try app(output: out)
        a.clock = 100
        _ = a.handle(.char("R"))
        let path = try XCTUnwrap(out.sinks.keys.first)
        XCTAssertEqual(a.message, "recording to \(path) (R stops)")
        for (t, key) in [(101.0, Key.char(" ")), (101.5, .char(" ")), (104, .char(" ")), (104.05, .char(" "))] {
            a.clock = t
            _ = a.handle(key)
        }
        XCTAssertEqual(a.session.current, 4)
        a.clock = 106
        _ = a.handle(.char("b"))
        a.clock = 107
        _ = a.handle(.char(":"))
        a.type("app write buf 0 8K")
        _ = a.handle(.enter)
        XCTAssertEqual(a.message, "ran as step 4: ok; dropped 1 step stepped back over")
        // Point at a page and inspect it.
        a.clock = 109
        _ = a.handle(.char(":"))
        a.type("select app.buf 3")
        _ = a.handle(.enter)
        a.clock = 110
        _ = a.handle(.enter)
        XCTAssertEqual(a.overlay, .inspector)
        _ = a.handle(.escape)
        a.clock = 111
        _ = a.handle(.end)
        a.clock = 112
        _ = a.handle(.char("g"))
        a.type("3")
        _ = a.handle(.enter)
        a.clock = 115
        _ = a.handle(.char(" "))
        let live = a.session.engine.stateJSON()
        let sink = try XCTUnwrap(out.sinks[path])
        let text = sink.text
        let lines = sink.lines
        XCTAssertEqual(Array(lines.prefix(4)), ["# umptui recording", "# version \(Umptui.version)", "# date 1970-01-01T00:00:00Z", "# base lecture.ump"])
        XCTAssertEqual(lines[4], "machine ram=64M memlock=1M")
        XCTAssertTrue(lines.contains("wait 1.0s"), text)
        XCTAssertTrue(lines.contains("wait 2.5s"), text)
        XCTAssertTrue(lines.contains("back"), text)
        XCTAssertTrue(lines.contains("app write buf 0 8K"), text)
        XCTAssertTrue(lines.contains("select app.buf 3"), text)
        XCTAssertTrue(lines.contains("inspect"), text)
        XCTAssertTrue(lines.contains("note \"malloc only reserves addresses\""), text)
        XCTAssertTrue(lines.contains("expect app.buf present=65"), text)
        let replayed = try replay(text)
        XCTAssertEqual(replayed.engine.stateJSON(), live, "the recording replays to the live state:\n\(text)")
        XCTAssertEqual(replayed.failures.map(\.message), [])
        // The file also checks clean, as a scenario.
        let script = try parseScript(text, fileName: "r.ump")
        XCTAssertTrue(script.isRecording)
        XCTAssertEqual(checkScript(script, sourceLines: scenarioSourceLines(text), fileExists: { _ in true }).map(\.rendered), [])
        // And R again stops it.
        _ = a.handle(.char("R"))
        XCTAssertNil(a.recorder)
        XCTAssertTrue(sink.closed)
        XCTAssertEqual(a.message, "recording stopped: \(path), \(lines.count) lines")
    }

    /// Started in the middle, the recording still starts from boot: the steps run so far first, unpaced.
    func testARecordingStartedLateStartsFromBoot() throws {
        let out = MemoryOutput()
        var a = try app(output: out)
        for _ in 0..<3 { _ = a.handle(.char(" ")) }
        a.clock = 50
        _ = a.handle(.char("R"))
        a.clock = 53
        _ = a.handle(.char(" "))
        let lines = try XCTUnwrap(out.sinks.values.first).lines
        XCTAssertEqual(Array(lines.dropFirst(4)), [
            "machine ram=64M memlock=1M", "process app", "device gpu iommu=vtd iotlb=16",
            "note \"malloc only reserves addresses\"", "app malloc buf 256K",
            "wait 3.0s", "app write buf", "expect app.buf present=65",
        ])
        let replayed = try replay(lines.joined(separator: "\n"))
        XCTAssertEqual(replayed.engine.stateJSON(), a.session.engine.stateJSON())
    }

    /// `--set` overrides are folded into the declarations a recording writes.
    func testOverridesAreFoldedIntoTheDeclarations() throws {
        var script = try parseScript(Self.demo, fileName: "lecture.ump")
        try applyOverrides(["machine.ram=128M", "gpu.iotlb=64"], to: &script)
        let out = MemoryOutput()
        var a = AppState(session: Session(script: script), glyphs: .unicode)
        a.output = out
        _ = a.handle(.char("R"))
        for _ in 0..<3 { _ = a.handle(.char(" ")) }
        let lines = try XCTUnwrap(out.sinks.values.first).lines
        XCTAssertEqual(lines[4], "machine ram=128M memlock=1M")
        XCTAssertTrue(lines.contains("device gpu iommu=vtd iotlb=64"), lines.joined(separator: "\n"))
    }

    func testSaveWritesTheEffectiveScriptAndRefusesToOverwrite() throws {
        let out = MemoryOutput()
        var a = try app(output: out)
        for _ in 0..<6 { _ = a.handle(.char(" ")) }
        _ = a.handle(.char("b"))
        _ = a.handle(.char(":"))
        a.type("app read buf 0 64K")
        _ = a.handle(.enter)
        _ = a.handle(.char(":"))
        a.type("set app.memlock=8M")
        _ = a.handle(.enter)
        XCTAssertEqual(a.message, "re-ran 6 steps from boot: no headline figure changed")
        guard case .whatIf(let w, _)? = a.overlay else { return XCTFail("no what-if panel") }
        XCTAssertEqual(w.change, "set app.memlock=8M")
        _ = a.handle(.char(":"))
        a.type("w saved.ump")
        _ = a.handle(.enter)
        XCTAssertNil(a.editor)
        XCTAssertEqual(a.message, "wrote saved.ump: 6 steps; umptui run saved.ump reproduces this state")
        let saved = try XCTUnwrap(out.files["saved.ump"])
        XCTAssertFalse(saved.contains("\nback"))
        XCTAssertFalse(saved.contains("\nset "))
        XCTAssertTrue(saved.contains("process app memlock=8M"), saved)
        XCTAssertEqual(try replay(saved).engine.stateJSON(), a.session.engine.stateJSON(), saved)
        // Again: refused without the bang, the editor stays open with the reason.
        _ = a.handle(.char(":"))
        a.type("w saved.ump")
        _ = a.handle(.enter)
        XCTAssertEqual(a.editor?.problem?.message, "saved.ump exists; :w! overwrites it")
        _ = a.handle(.escape)
        _ = a.handle(.char(":"))
        a.type("w! saved.ump")
        _ = a.handle(.enter)
        XCTAssertNil(a.editor)
        _ = a.handle(.char(":"))
        a.type("w")
        _ = a.handle(.enter)
        XCTAssertEqual(a.editor?.problem?.message, "w needs a file name")
    }

    /// `p` waits as the recording's `wait` lines say, scaled by the speed; Space skips ahead.
    func testPlayHonoursWaitLinesAndTheSpeed() throws {
        let source = """
            # umptui recording
            process app
            wait 6s
            app malloc buf 64K
            wait 1.5s
            select app.buf 2
            wait 500ms
            app write buf
            app free buf
            """
        var a = try app(source, output: MemoryOutput())
        _ = a.handle(.char("p"))
        XCTAssertTrue(a.playing)
        XCTAssertEqual(a.playDelay, 1, "no wait before the first step: the default pace")
        _ = a.tick()
        XCTAssertEqual(a.session.current, 1)
        XCTAssertEqual(a.playDelay, 0, "the next step's waits pace it")
        _ = a.tick()
        XCTAssertEqual(a.session.current, 1, "first the wait")
        XCTAssertEqual(a.playDelay, 6)
        _ = a.tick()
        XCTAssertEqual(a.session.current, 2)
        _ = a.handle(.char("+"))
        XCTAssertEqual(a.speed, 2)
        _ = a.tick()
        XCTAssertEqual(a.playDelay, 0.75, "1.5 s at 2x")
        _ = a.tick()
        XCTAssertEqual(a.playDelay, 0.25, "after the select, the second wait")
        XCTAssertEqual(a.selectionCue(), "select app.buf 2", "the select cue moved the cursor")
        // Space skips the wait and runs the step now.
        _ = a.handle(.char(" "))
        XCTAssertEqual(a.session.current, 3)
        _ = a.tick()
        XCTAssertEqual(a.session.current, 4)
        a.exitAtEnd = true
        XCTAssertTrue(a.tick().quit, "--play --exit quits at the end")
    }

    func testTroubleKeysJumpBetweenStepsThatWentWrong() throws {
        var a = try app(output: MemoryOutput())
        // Step 7 pins 4M against a 1M memlock: ENOMEM. Step 9 frees a buffer the GPU still maps.
        _ = a.handle(.char("]"))
        XCTAssertEqual(a.session.current, 7)
        XCTAssertEqual(a.session.lastRecord?.outcome, .errno("ENOMEM"))
        XCTAssertEqual(a.message, "step 7: ENOMEM")
        _ = a.handle(.char("]"))
        XCTAssertEqual(a.session.current, 9)
        XCTAssertEqual(a.message, "step 9: hazard")
        _ = a.handle(.char("]"))
        XCTAssertEqual(a.session.current, 9, "nothing later goes wrong: it stays")
        XCTAssertEqual(a.message, "no step after 9 raises a hazard or a fault")
        _ = a.handle(.char("["))
        XCTAssertEqual(a.session.current, 7)
        _ = a.handle(.char("["))
        XCTAssertEqual(a.session.current, 7)
        XCTAssertEqual(a.message, "no step before 7 raised a hazard or a fault")
        _ = a.handle(.end)
        XCTAssertEqual(a.session.current, 9)
        _ = a.handle(.home)
        XCTAssertEqual(a.session.current, 0)
        XCTAssertTrue(a.session.state == Session(script: try parseScript(Self.demo, fileName: "x")).state)
        // The scrubber on the log's title marks both.
        a.prepare()
        let title = try XCTUnwrap(Screen.render(a).lines.first { $0.contains("LOG") })
        XCTAssertEqual(title.filter { $0 == "!" }.count, 2, title)
    }

    /// The timeline is the script plus what was typed: stepping back over a typed line and forward
    /// again runs it again, and a jump lands on the same states.
    func testTypedLinesStayInTheTimeline() throws {
        var a = try app(output: MemoryOutput())
        for _ in 0..<3 { _ = a.handle(.char(" ")) }
        _ = a.handle(.char(":"))
        a.type("app write buf 0 12K")
        _ = a.handle(.enter)
        XCTAssertEqual(a.session.current, 4)
        XCTAssertEqual(a.session.total, 10)
        let typed = a.session.state
        _ = a.handle(.char(" "))
        _ = a.handle(.home)
        XCTAssertEqual(a.session.current, 0)
        _ = a.handle(.char("g"))
        a.type("4")
        _ = a.handle(.enter)
        XCTAssertEqual(a.session.lastRecord?.command, "app write buf 0 12K")
        XCTAssertTrue(a.session.state == typed)
        _ = a.handle(.char("b"))
        _ = a.handle(.char(" "))
        XCTAssertEqual(a.session.lastRecord?.command, "app write buf 0 12K", "Space runs the typed line again")
        XCTAssertEqual(a.session.lastRecord?.line, 0, "and it is still a typed line")
    }

    /// A replayed `back` undoes the step and the replay goes on with what the user ran instead.
    func testReplayingBackLinesShowsTheStepBack() throws {
        let source = """
            # umptui recording
            process app
            app malloc buf 64K
            app write buf
            back
            app read buf
            """
        var a = try app(source, output: MemoryOutput())
        XCTAssertEqual(a.session.total, 3)
        for _ in 0..<3 { _ = a.handle(.char(" ")) }
        XCTAssertEqual(a.session.current, 3)
        _ = a.handle(.char(" "))
        XCTAssertEqual(a.session.current, 2, "the back line")
        _ = a.handle(.char(" "))
        XCTAssertEqual(a.session.current, 3)
        XCTAssertEqual(a.session.lastRecord?.command, "app read buf")
        XCTAssertFalse(a.handle(.char(" ")).quit)
        XCTAssertEqual(a.message, "at the last step (3)")
        XCTAssertEqual(a.session.engine.stateJSON(), try replay(source).engine.stateJSON())
    }
}
