// What-if in the TUI (:set, :unset, :machine, the panel, the header, notes for other settings),
// compare (c, both sides stepping, the screens, the recording's header line) and sweep (values,
// combinations, each row against a separate `umptui run`, CSV and JSON, bad input).

import Engine
import Foundation
import XCTest
@testable import UMPTUI

enum WhatIfScript {
    static let source = """
        machine ram=128M memlock=16M
        process app
        device nic iommu=vtd pagesizes=4K iotlb=64
        app mmap w 256K
        app write w
        nic map app.w read
        note "After the first 64 misses, everything hits."
        nic dma app.w read pattern=random size=64 count=4000
        expect nic misses=64
        note "A note about a step the IOTLB size does not change."
        app mmap other 64K
        """
}

final class WhatIfTUITests: XCTestCase {
    func app(_ steps: Int, width: Int = 120, height: Int = 40) throws -> AppState {
        try makeApp(WhatIfScript.source, steps: steps, width: width, height: height)
    }

    func run(_ a: inout AppState, _ line: String) {
        _ = a.press(.char(":"))
        a.type(line)
        _ = a.press(.enter)
    }

    func testSetShowsThePanelTheHeaderAndMarksTheStaleNote() throws {
        var a = try app(6)
        run(&a, "set nic.iotlb=16")
        XCTAssertNil(a.editor?.problem)
        guard case let .whatIf(w, _)? = a.overlay else { return XCTFail("no what-if panel") }
        XCTAssertEqual(w.change, "set nic.iotlb=16")
        XCTAssertEqual(w.step, 6)
        XCTAssertTrue(w.differences.contains { $0.name == "nic.misses" })
        XCTAssertFalse(w.differences.contains { $0.name == "app.locked_vm" })
        XCTAssertEqual(w.failedBefore, 0)
        XCTAssertEqual(w.failedAfter, 1, "expect nic misses=64 fails with 16 entries")
        let panel = TextDriver.text(a.press())
        XCTAssertTrue(panel.contains("WHAT IF  set nic.iotlb=16"), panel)
        XCTAssertTrue(panel.contains("nic IOTLB misses"), panel)
        // Any key closes the panel; the header keeps saying what is in force.
        let screen = TextDriver.text(a.press(.escape))
        XCTAssertTrue(screen.components(separatedBy: "\n")[0].contains("set nic.iotlb=16"), screen)
        XCTAssertTrue(screen.contains("[written for other settings] After the first 64 misses"), screen)
        XCTAssertTrue(screen.contains("expect failed"), screen)
        // The next step's note was written for a step the override does not change.
        let next = TextDriver.text(a.press(.char(" ")))
        XCTAssertTrue(next.contains("A note about a step"), next)
        XCTAssertFalse(next.contains("[written for other settings]"), next)
    }

    func testUnsetAndSetWithNoArgument() throws {
        var a = try app(5)
        let written = a.session.state
        run(&a, "set")
        XCTAssertEqual(a.message, "no override is in force")
        run(&a, "set nic.iotlb=16")
        _ = a.press(.escape)
        run(&a, "set machine.memlock=32M")
        _ = a.press(.escape)
        run(&a, "set")
        XCTAssertEqual(a.message, "in force: nic.iotlb=16, machine.memlock=32M")
        run(&a, "unset nic.iotlb")
        _ = a.press(.escape)
        run(&a, "unset machine.memlock")
        guard case let .whatIf(w, _)? = a.overlay else { return XCTFail("no what-if panel") }
        XCTAssertEqual(w.change, "unset machine.memlock")
        _ = a.press(.escape)
        XCTAssertEqual(a.session.overrides, [])
        XCTAssertEqual(a.session.state, written)
        run(&a, "unset nic.iotlb")
        XCTAssertTrue(a.message?.hasPrefix("no override of nic.iotlb is in force") == true, a.message ?? "")
        run(&a, "unset nic.iotlbb")
        XCTAssertEqual(a.editor?.problem?.message, "unknown option 'iotlbb' for device")
    }

    func testThePanelListsOutcomesThatChanged() throws {
        var a = try app(6)
        run(&a, "set machine.memlock=64K")
        guard case let .whatIf(w, _)? = a.overlay else { return XCTFail("no what-if panel") }
        // The map charges 256K to locked_vm: over a 64K RLIMIT_MEMLOCK it is ENOMEM, and the DMA
        // after it finds no IOPTE.
        XCTAssertEqual(w.outcomes.map(\.step), [5, 6])
        XCTAssertEqual(w.outcomes.first.map { "\($0.command): \($0.before) → \($0.after)" }, "nic map app.w read: ok → ENOMEM")
        let rows = Overlays.whatIfRows(w)
        XCTAssertTrue(rows.contains { $0.label == "step 5 nic map app.w read" && $0.b == "ENOMEM" && $0.changed })
        XCTAssertTrue(rows.contains { $0.label == "app locked_vm" && $0.a == "256K" && $0.b == "0" && $0.changed })
        XCTAssertTrue(rows.contains { $0.label == "app rss" && !$0.changed })
        // Undone, the panel says the reverse.
        _ = a.press(.escape)
        run(&a, "unset machine.memlock")
        guard case let .whatIf(back, _)? = a.overlay else { return XCTFail("no what-if panel") }
        XCTAssertEqual(back.outcomes.first.map { "\($0.before) → \($0.after)" }, "ENOMEM → ok")
    }

    func testASetAtThePromptStandsOnTheOverridesInForce() throws {
        var a = try app(3)
        run(&a, "set nic.iotlb=16")
        _ = a.press(.escape)
        run(&a, "set nic.ways=16")
        XCTAssertNil(a.editor?.problem, a.editor?.problem?.message ?? "")
        _ = a.press(.escape)
        run(&a, "set nic.iotlb=8")
        XCTAssertEqual(a.editor?.problem?.message, "ways=16 does not divide the IOTLB's 8 entries")
        XCTAssertEqual(a.editor?.problem?.column, 15)
        XCTAssertEqual(a.session.overrides, ["nic.iotlb=16", "nic.ways=16"])
    }

    func testMachineAtThePromptIsSetOfEachOption() throws {
        var a = try app(3)
        run(&a, "machine memlock=1M thp=always")
        XCTAssertEqual(a.session.overrides, ["machine.memlock=1M", "machine.thp=always"])
        XCTAssertEqual(a.session.state.config.thp.rawValue, "always")
        _ = a.press(.escape)
        run(&a, "machine ram=banana")
        XCTAssertNotNil(a.editor?.problem)
    }

    func testARecordingOfSetAndUnsetReplaysToTheSameState() throws {
        let out = MemoryOutput()
        var a = try app(0)
        a.output = out
        a.session = try Session(script: try parseScript(WhatIfScript.source, fileName: "test.ump"), overrides: ["nic.iotlb=8"])
        _ = a.press(.char("R"))
        for _ in 0..<5 { _ = a.press(.char(" ")) }
        run(&a, "set nic.iotlb=16")
        _ = a.press(.escape)
        run(&a, "unset nic.iotlb")
        _ = a.press(.escape)
        _ = a.press(.char(" "))
        _ = a.press(.char("R"))
        let text = try XCTUnwrap(out.sinks.values.first?.text)
        XCTAssertTrue(text.contains("device nic iommu=vtd pagesizes=4K iotlb=64\nset nic.iotlb=8\n"), text)
        XCTAssertTrue(text.contains("set nic.iotlb=16\nunset nic.iotlb\n"), text)
        let replay = ScenarioRunner.run(try parseScript(text, fileName: "r.ump"))
        XCTAssertEqual(replay.engine.state, a.session.state, text)
        XCTAssertEqual(a.session.overrides, [])
    }

    // MARK: Compare

    func testCForksASecondTimelineThatStepsWithTheFirst() throws {
        var a = try app(2)
        _ = a.press(.char("c"))
        a.type("nic.iotlb=16")
        _ = a.press(.enter)
        XCTAssertNil(a.editor)
        let b = try XCTUnwrap(a.compare)
        XCTAssertEqual(b.b.current, 2)
        for _ in 0..<4 { _ = a.press(.char(" ")) }
        var solo = try Session(script: try parseScript(WhatIfScript.source, fileName: "test.ump"), overrides: ["nic.iotlb=16"])
        solo.go(to: 6)
        XCTAssertEqual(a.compare?.b.state, solo.state)
        // A prompt line runs on both sides; b steps both back.
        run(&a, "app write w 0 4K")
        XCTAssertEqual(a.compare?.b.current, 7)
        XCTAssertEqual(a.compare?.b.timeline.written[6].text, "app write w 0 4K")
        _ = a.press(.char("b"))
        XCTAssertEqual(a.compare?.b.current, 6)
        // A's :set holds on both; B's own override of the same key still wins.
        run(&a, "set machine.memlock=32M")
        _ = a.press(.escape)
        XCTAssertEqual(a.compare?.b.overrides, ["machine.memlock=32M", "nic.iotlb=16"])
        let compact = TextDriver.text(a.press())
        XCTAssertTrue(compact.contains("≠ nic IOTLB misses"), compact)
        XCTAssertTrue(compact.contains("B: "), compact)
        _ = a.press(.char("c"))
        XCTAssertNil(a.compare)
    }

    func testCompareScreensAtEachSize() throws {
        for (w, h) in [(80, 24), (120, 40), (200, 60)] {
            var p = ScreenPlayer(session: Session(script: try parseScript(WhatIfScript.source, fileName: "test.ump")),
                                 glyphs: .unicode, width: w, height: h)
            XCTAssertNil(p.startCompare(vs: ["nic.iotlb=16"]))
            for _ in 0..<6 { _ = p.step() }
            let c = p.render()
            let text = TextDriver.text(c)
            let lines = text.components(separatedBy: "\n")
            XCTAssertTrue(lines[0].contains("compare") && lines[0].contains("B: nic.iotlb=16"), "\(w)x\(h)\n\(text)")
            XCTAssertTrue(text.contains("STEP 6 of 7"), "\(w)x\(h)\n\(text)")
            XCTAssertTrue(text.contains("more IOTLB misses"), "\(w)x\(h)\n\(text)")
            XCTAssertTrue(lines.allSatisfy { $0.count <= w })
            if w >= CompareScreen.fullWidth {
                // Both sides' panes, and the IOTLB counters that differ marked on both.
                XCTAssertTrue(text.contains("A · as written") && text.contains("B · set nic.iotlb=16"), text)
                XCTAssertTrue(TextDriver.marks(c).contains("d"))
            } else {
                XCTAssertTrue(text.contains("FIGURE"), text)
            }
        }
        var p = ScreenPlayer(session: Session(script: try parseScript(WhatIfScript.source, fileName: "test.ump")),
                             glyphs: .unicode, width: 80, height: 24)
        XCTAssertNotNil(p.startCompare(vs: ["gpu.iotlb=16"]))
    }

    func testARecordingInCompareModeNamesBsOverrides() throws {
        let out = MemoryOutput()
        var a = try app(0)
        a.output = out
        _ = a.press(.char("R"))
        _ = a.press(.char("c"))
        a.type("nic.iotlb=16 nic.policy=fifo")
        _ = a.press(.enter)
        _ = a.press(.char(" "))
        _ = a.press(.char("R"))
        let text = try XCTUnwrap(out.sinks.values.first?.text)
        XCTAssertTrue(text.contains("\n# compare --vs nic.iotlb=16 nic.policy=fifo\n"), text)
        XCTAssertEqual(compareOverrides(in: text), ["nic.iotlb=16", "nic.policy=fifo"])
    }
}

final class SweepPlanTests: XCTestCase {
    func values(_ arg: String) throws -> [String] { try Variation(arg).values }

    func testListsRangesAndBrackets() throws {
        XCTAssertEqual(try values("nic.iotlb=16,64,256"), ["16", "64", "256"])
        XCTAssertEqual(try values("nic.iotlb=16..1024*2"), ["16", "32", "64", "128", "256", "512", "1024"])
        XCTAssertEqual(try values("app.size=1M..4M+1M"), ["1M", "2M", "3M", "4M"])
        XCTAssertEqual(try values("app.size=1M..2M+512K"), ["1M", "1536K", "2M"])
        XCTAssertEqual(try values("nic.iotlb=8,16..64*4,100"), ["8", "16", "64", "100"])
        XCTAssertEqual(try values("gpu.pagesizes=[4K],[4K,2M],[4K,2M,1G]"), ["4K", "4K,2M", "4K,2M,1G"])
        XCTAssertEqual(try Variation("gpu.pagesizes=[4K,2M]").key, "gpu.pagesizes")
        XCTAssertEqual(combinations([try Variation("a.x=1,2"), try Variation("b.y=p,q")]),
                       [["a.x=1", "b.y=p"], ["a.x=1", "b.y=q"], ["a.x=2", "b.y=p"], ["a.x=2", "b.y=q"]])
    }

    func testBadValuesSayWhereAndWhy() throws {
        func error(_ arg: String) -> String {
            do { _ = try Variation(arg); return "no error" } catch { return error.description }
        }
        XCTAssertEqual(error("nic.iotlb"), "--vary nic.iotlb: error: expected KEY=V1,V2,... (e.g. nic.iotlb=16,64 or nic.iotlb=16..1024*2)\n    nic.iotlb\n             ^")
        XCTAssertTrue(error("iotlb=16").contains("expected TARGET.KEY before '='"))
        XCTAssertTrue(error("nic.iotlb=16,,64").contains("an empty value"))
        XCTAssertTrue(error("nic.iotlb=16..64").contains("a range needs a step"))
        XCTAssertTrue(error("nic.iotlb=..64*2").contains("a range needs a start"))
        XCTAssertTrue(error("nic.iotlb=64..16*2").contains("runs backwards"))
        XCTAssertTrue(error("nic.iotlb=16..64*1").contains("a factor of 2 or more"))
        XCTAssertTrue(error("nic.iotlb=0..64*2").contains("cannot start at 0"))
        XCTAssertTrue(error("nic.iotlb=1..1000000+1").contains("more than 10000 values"))
        XCTAssertTrue(error("x.pagesizes=[4K,2M").contains("'[' is never closed"))
        XCTAssertTrue(error("x.pagesizes=[4K]2M").contains("text after ']'"))
        XCTAssertTrue(error("nic.iotlb=").contains("an empty value"))
        XCTAssertEqual(try values("nic.iotlb=1..0xffffffffffffffff*16").count, 16, "a multiply that overflows ends the range")
    }
}

extension CLITests {
    static var repo: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path
    }

    func sweepJSON(_ out: Output) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any], out.stdout + out.stderr)
    }

    func testEachSweepRowEqualsASeparateRun() throws {
        let demo = "\(Self.repo)/demos/iotlb-reach.ump"
        let sweep = try umptui(["sweep", demo, "--vary", "nic.iotlb=16,64", "--vary", "nic2.pagesizes=[4K],[4K,2M]",
                                "--metric", "nic.misses", "--metric", "nic2.stall_ns", "--metric", "nic2.ioptes_2M",
                                "--metric", "app.locked_vm", "--metric", "outcome", "--json"])
        XCTAssertEqual(sweep.status, 1, "with 16 entries the demo's expect nic misses=64 fails: \(sweep.stderr)")
        let json = try sweepJSON(sweep)
        let runs = try XCTUnwrap(json["runs"] as? [[String: Any]])
        XCTAssertEqual(runs.count, 4)
        XCTAssertEqual(runs.map { ($0["set"] as! [String: String])["nic2.pagesizes"]! }, ["4K", "4K,2M", "4K", "4K,2M"], "stable order")
        // The first and the last row (both knobs changed) against runs of their own.
        for r in [runs[0], runs[3]] {
            let set = r["set"] as! [String: String]
            let metrics = r["metrics"] as! [String: Any]
            let one = try umptui(["run", demo, "--set", "nic.iotlb=\(set["nic.iotlb"]!)", "--set", "nic2.pagesizes=\(set["nic2.pagesizes"]!)", "--json"])
            let lines = one.stdout.split(separator: "\n")
            let final = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any])["final"] as! [String: Any]
            let devices = final["devices"] as! [[String: Any]]
            let nic = devices.first { $0["name"] as? String == "nic" }!, nic2 = devices.first { $0["name"] as? String == "nic2" }!
            XCTAssertEqual(metrics["nic.misses"] as? Int, (nic["iotlb"] as! [String: Any])["misses"] as? Int, "\(set)")
            XCTAssertEqual(metrics["nic2.stall_ns"] as? Int, nic2["stall_ns"] as? Int, "\(set)")
            let huge = (nic2["mappings"] as! [[String: Any]]).filter { $0["size"] as? Int == 2 << 20 }.count
            XCTAssertEqual(metrics["nic2.ioptes_2M"] as? Int, huge, "\(set)")
            let app = (final["processes"] as! [[String: Any]]).first!
            XCTAssertEqual(metrics["app.locked_vm"] as? Int, (app["locked_vm_pages"] as! Int) * 4096, "\(set)")
            let lastStep = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(lines[lines.count - 2].utf8)) as? [String: Any])
            XCTAssertEqual(metrics["outcome"] as? String, lastStep["outcome"] as? String)
        }
    }

    func testSweepCSVTableAndChart() throws {
        let demo = "\(Self.repo)/demos/iotlb-reach.ump"
        let csv = try umptui(["sweep", demo, "--vary", "nic2.pagesizes=[4K],[4K,2M]", "--metric", "nic2.misses", "--csv"])
        XCTAssertEqual(csv.status, 1, "without 2M pages the demo's expect nic2 large_ioptes=32 fails: \(csv.stderr)")
        let rows = csv.stdout.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        XCTAssertEqual(rows, ["nic2.pagesizes,nic2.misses", "4K,\(rows[1].split(separator: ",").last!)", "\"4K,2M\",32"])
        XCTAssertTrue(csv.stderr.isEmpty, "no progress in piped output: \(csv.stderr)")
        let table = try umptui(["sweep", demo, "--vary", "nic.iotlb=16..64*2", "--chart", "nic.misses"])
        XCTAssertEqual(table.status, 1, "the demo's expect nic misses=64 fails with 16 and 32 entries")
        let lines = table.stdout.components(separatedBy: "\n")
        XCTAssertTrue(lines[0].hasPrefix("nic.iotlb  nic.misses"), table.stdout)
        XCTAssertTrue(table.stdout.contains("3 runs"), table.stdout)
        XCTAssertTrue(table.stdout.contains("nic.iotlb=16"), table.stdout)
    }

    func testSweepRefusesBadKeysValuesAndMetricsBeforeRunning() throws {
        let demo = "\(Self.repo)/demos/iotlb-reach.ump"
        let cases: [([String], String)] = [
            (["--vary", "gpu.iotlb=16"], "no process or device named 'gpu' is declared"),
            (["--vary", "nic.iotlb=banana"], "nic.iotlb=banana"),
            (["--vary", "nic.iotlbx=16"], "unknown option 'iotlbx'"),
            (["--vary", "nic.iotlb=16", "--metric", "nic.mises"], "unknown key 'mises' for a device"),
            (["--vary", "nic.iotlb=16", "--vary", "nic.iotlb=32"], "varied twice"),
            (["--vary", "nic.iotlb=16", "--csv", "--json"], "two formats"),
            (["--vary", "nic.iotlb=16", "--chart", "outcome"], "--chart outcome: a chart needs a number"),
            (["--vary", "nic.iotlb=16", "--chart", "nic.bogus"], "--chart nic.bogus: unknown key 'bogus'"),
            ([], "give at least one --vary"),
        ]
        for (args, message) in cases {
            let out = try umptui(["sweep", demo] + args)
            XCTAssertEqual(out.status, 2, "\(args): \(out.stderr)")
            XCTAssertTrue(out.stderr.contains(message), "\(args): \(out.stderr)")
            XCTAssertTrue(out.stdout.isEmpty, "\(args)")
        }
    }

    func testARepeatedMetricIsOneColumnAndADirectoryIsNoScript() throws {
        let demo = "\(Self.repo)/demos/sweep-iotlb.ump"
        let out = try umptui(["sweep", demo, "--vary", "nic.iotlb=4,64", "--metric", "outcome", "--metric", "outcome", "--csv"])
        XCTAssertEqual(out.stdout.components(separatedBy: "\r\n").first, "nic.iotlb,outcome")
        let dir = try umptui(["sweep", NSTemporaryDirectory(), "--vary", "nic.iotlb=4"])
        XCTAssertEqual(dir.status, 2)
        XCTAssertTrue(dir.stderr.contains("is a directory, not a scenario file"), dir.stderr)
    }

    func testCompareJSONNamesTheDifferences() throws {
        let demo = "\(Self.repo)/demos/iotlb-reach.ump"
        let same = try umptui(["compare", demo, "--vs", "nic.iotlb=64", "--json"])
        XCTAssertEqual(same.status, 0, same.stderr)
        let sameLines = same.stdout.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        XCTAssertEqual(sameLines.count, 16)
        for l in sameLines.dropLast() { XCTAssertEqual((l["differences"] as! [Any]).count, 0) }
        let diff = try umptui(["compare", demo, "--vs", "nic.iotlb=16", "--json"])
        XCTAssertEqual(diff.status, 1, "B fails the demo's expect nic misses=64")
        let lines = diff.stdout.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let step7 = lines[6]
        XCTAssertEqual(step7["step"] as? Int, 7)
        XCTAssertEqual((step7["a"] as! [String: Any])["command"] as? String, step7["command"] as? String)
        let names = (step7["step_differences"] as! [[String: Any]]).map { $0["figure"] as! String }
        XCTAssertEqual(Array(names.prefix(2)), ["nic.misses", "nic.stall_ns"])
        XCTAssertTrue((step7["summary"] as! String).hasPrefix("B: "))
        let final = (lines.last!["final"] as! [String: Any])
        XCTAssertEqual((final["expect_failures"] as! [String: Int])["b"], 1)
        XCTAssertNotNil(final["a"] as? [String: Any])
        let bad = try umptui(["compare", demo, "--vs", "gpu.iotlb=16", "--json"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("--vs:"), bad.stderr)
    }
}

extension CLITests {
    func testCtrlCStopsASweepAndPrintsWhatFinished() throws {
        guard let bin = EndToEndTests.binary else { throw XCTSkip("the umptui binary is not built beside the tests") }
        let p = Process()
        p.executableURL = bin
        p.arguments = ["sweep", "\(Self.repo)/demos/sweep-iotlb.ump", "--vary", "nic.walk=1..10000+1", "--metric", "nic.misses", "--csv"]
        // Files, not pipes: nothing has to read while it runs.
        let outURL = dir.appendingPathComponent("sweep.out"), errURL = dir.appendingPathComponent("sweep.err")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: outURL)
        p.standardError = try FileHandle(forWritingTo: errURL)
        try p.run()
        Thread.sleep(forTimeInterval: 1.5)
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        let o = try Data(contentsOf: outURL), e = try Data(contentsOf: errURL)
        let stdout = String(decoding: o, as: UTF8.self), stderr = String(decoding: e, as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 130, stderr)
        let rows = stdout.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        XCTAssertEqual(rows.first, "nic.walk,nic.misses")
        XCTAssertGreaterThan(rows.count, 1, "some runs finished in 1.5 s")
        XCTAssertLessThan(rows.count, 10_001)
        // The rows that finished, in combination order (a run stopped mid-way is left out).
        let values = rows.dropFirst().compactMap { Int($0.split(separator: ",")[0]) }
        XCTAssertEqual(values.count, rows.count - 1)
        XCTAssertEqual(values, values.sorted())
        XCTAssertEqual(Set(values).count, values.count)
        XCTAssertTrue(stderr.contains("interrupted: \(rows.count - 1) of 10000 runs finished"), stderr)
    }
}
