// What-if on the Timeline: overrides put in force and taken out re-run from boot and give the
// state a run with those declarations gives; B of compare follows A step for step; the figures and
// their differences name what differs and nothing else.

import XCTest
@testable import Engine

final class WhatIfTests: XCTestCase {
    static let source = """
        machine ram=128M memlock=16M
        process app
        device nic iommu=vtd pagesizes=4K iotlb=64
        app mmap w 256K
        app write w
        nic map app.w read
        nic dma app.w read pattern=random size=64 count=4000
        expect nic misses=64
        app mmap big 1M
        app write big
        nic map app.big read
        nic dma app.big read pattern=random size=64 count=4000
        """

    func timeline(_ overrides: [String] = []) throws -> Timeline {
        let plan = StepPlan(try parseScript(Self.source, fileName: "w.ump"))
        return try Timeline(plan: plan, overrides: overrides, policy: SnapshotPolicy())
    }

    /// The state after `steps` steps of the script with `overrides` folded in, run on its own.
    func folded(_ overrides: [String], steps: Int) throws -> String {
        var script = try parseScript(Self.source, fileName: "w.ump")
        try applyOverrides(overrides, to: &script)
        var t = Timeline(plan: StepPlan(script), policy: .none)
        t.go(to: steps)
        return t.engine.stateJSON()
    }

    func testSetThenUnsetGivesTheStateAsWritten() throws {
        var t = try timeline()
        t.go(to: 7)
        let written = t.engine.stateJSON()
        try t.override("nic.iotlb=16")
        XCTAssertEqual(t.overrides, ["nic.iotlb=16"])
        XCTAssertEqual(t.current, 7)
        XCTAssertEqual(t.engine.stateJSON(), try folded(["nic.iotlb=16"], steps: 7))
        XCTAssertNotEqual(t.engine.stateJSON(), written)
        XCTAssertTrue(try t.unset("nic.iotlb"))
        XCTAssertEqual(t.overrides, [])
        XCTAssertEqual(t.engine.stateJSON(), written)
        // Nothing to unset: nothing moves.
        XCTAssertFalse(try t.unset("nic.iotlb"))
        XCTAssertEqual(t.engine.stateJSON(), written)
    }

    func testARerunWithNoChangeGivesTheSameState() throws {
        var t = try timeline()
        t.go(to: 10)
        let before = t.engine.stateJSON()
        try t.override("nic.iotlb=64")   // the value as written
        XCTAssertEqual(t.engine.stateJSON(), before)
        XCTAssertEqual(Figures.differences(try timeline().figuresAt(10), t.figures), [])
    }

    func testALaterOverrideOfTheSameKeyReplacesTheEarlierOne() throws {
        var t = try timeline()
        t.go(to: 7)
        try t.override("nic.iotlb=16")
        try t.override("machine.memlock=32M")
        try t.override("nic.iotlb=8")
        XCTAssertEqual(t.overrides, ["machine.memlock=32M", "nic.iotlb=8"])
        XCTAssertEqual(t.engine.stateJSON(), try folded(["machine.memlock=32M", "nic.iotlb=8"], steps: 7))
        XCTAssertTrue(try t.unset("machine.memlock"))
        XCTAssertEqual(t.engine.stateJSON(), try folded(["nic.iotlb=8"], steps: 7))
    }

    func testOverridesFromTheStartHoldForStepsRunLater() throws {
        var t = try timeline(["nic.iotlb=16"])
        t.go(to: 10)
        XCTAssertEqual(t.engine.stateJSON(), try folded(["nic.iotlb=16"], steps: 10))
        XCTAssertEqual(t.written.map(\.text), try timeline().written.map(\.text), "the steps as written are kept")
        XCTAssertTrue(t.steps.contains { $0.statement.text.contains("iotlb=16") })
    }

    func testABadOverrideChangesNothing() throws {
        var t = try timeline()
        t.go(to: 5)
        let before = t.engine.stateJSON()
        XCTAssertThrowsError(try t.override("nic.iotlb=banana"))
        XCTAssertThrowsError(try t.override("gpu.iotlb=16"))
        XCTAssertEqual(t.overrides, [])
        XCTAssertEqual(t.engine.stateJSON(), before)
    }

    func testBFollowsAThroughStepsBackAndTypedLines() throws {
        var a = try timeline()
        var b = try timeline(["nic.iotlb=16"])
        func check(_ why: String) throws {
            try b.follow(a, overrides: Timeline.merge(a.overrides, ["nic.iotlb=16"]))
            XCTAssertEqual(b.current, a.current, why)
            var solo = Timeline(machine: nil, steps: [], policy: .none)
            solo = try Timeline(plan: StepPlan(Script(fileName: "s", statements: (a.writtenMachine.map { [$0] } ?? []) + a.written)),
                                overrides: Timeline.merge(a.overrides, ["nic.iotlb=16"]), policy: .none)
            solo.go(to: a.current)
            XCTAssertEqual(b.engine.stateJSON(), solo.engine.stateJSON(), why)
        }
        a.go(to: 6); try check("forward")
        a.go(to: 4); try check("back")
        a.apply(try XCTUnwrap(parseStatement("app write w 0 4K", lineNumber: 0, fileName: "p")))
        try check("a typed line after stepping back")
        try a.override("machine.memlock=32M"); try check("A's override")
        try a.override("nic.iotlb=32"); try check("B's own override wins over A's of the same key")
        XCTAssertEqual(b.overrides, ["machine.memlock=32M", "nic.iotlb=16"])
    }

    func testDifferencesNameEveryDifferingFigureAndOnlyThose() throws {
        var a = try timeline(), b = try timeline(["nic.iotlb=16"])
        a.go(to: 10); b.go(to: 10)
        let fa = a.figures, fb = b.figures
        let diffs = Figures.differences(fa, fb)
        let byName = Dictionary(uniqueKeysWithValues: fb.map { ($0.name, $0.value) })
        let differing = fa.filter { byName[$0.name] != $0.value }.map(\.name)
        XCTAssertEqual(diffs.map(\.name), differing)
        XCTAssertTrue(differing.contains("nic.misses"))
        XCTAssertTrue(differing.contains("nic.stall_ns"))
        XCTAssertFalse(differing.contains("app.locked_vm"))
        XCTAssertEqual(Figures.differences(fa, fa), [])
        let misses = try XCTUnwrap(diffs.first { $0.name == "nic.misses" })
        XCTAssertEqual(misses.a, a.engine.metric("nic.misses", last: a.last, failedExpects: 0))
        XCTAssertEqual(misses.phrase, "\(Int(misses.delta!)) more IOTLB misses")
        XCTAssertTrue(Figures.summary(diffs).hasPrefix("B: \(Int(misses.delta!)) more IOTLB misses"), Figures.summary(diffs))
    }

    func testCompareRunReportsEachStepAndTheFinalDifferences() throws {
        let script = try parseScript(Self.source, fileName: "w.ump")
        var steps: [CompareStep] = []
        let same = try ScenarioCompare.run(script, overrides: [], vs: ["nic.iotlb=64"]) { if case let .step(s) = $0 { steps.append(s) } }
        XCTAssertEqual(steps.count, 10)
        XCTAssertTrue(steps.allSatisfy { $0.differences.isEmpty && $0.stepDifferences.isEmpty })
        XCTAssertEqual(same.differences, [])
        steps = []
        let r = try ScenarioCompare.run(script, overrides: [], vs: ["nic.iotlb=16"]) { if case let .step(s) = $0 { steps.append(s) } }
        XCTAssertEqual(r.b.stateJSON(), try folded(["nic.iotlb=16"], steps: 10))
        XCTAssertEqual(r.failuresA.count, 0)
        XCTAssertEqual(r.failuresB.count, 1, "expect nic misses=64: 16 entries miss far more in a 64-page window")
        XCTAssertTrue(steps[5].stepDifferences.contains { $0.name == "nic.misses" })
        XCTAssertTrue(steps[3].stepDifferences.isEmpty, "the mmap does the same on both sides")
    }

    func testUnsetIsALineOfTheLanguage() throws {
        let s = try parseScript("process app\ndevice nic\nset nic.iotlb=16\nunset nic.iotlb\nunset nic.iotlb", fileName: "u.ump")
        XCTAssertEqual(checkScript(s, sourceLines: [], fileExists: { _ in false }), [])
        var events: [String] = []
        let r = ScenarioRunner.run(s) { e, _ in
            if case let .unset(k, _, steps, was) = e { events.append("\(k) \(steps) \(was)") }
        }
        XCTAssertEqual(events, ["nic.iotlb 2 true", "nic.iotlb 0 false"])
        XCTAssertEqual(r.engine.state.devices[0].iotlb.capacity, 64)
        let bad = try parseScript("process app\nunset app.memlok", fileName: "u.ump")
        XCTAssertEqual(checkScript(bad, sourceLines: [], fileExists: { _ in false }).first?.message, "unknown option 'memlok' for process")
        XCTAssertThrowsError(try parseScript("unset", fileName: "u.ump"))
        XCTAssertThrowsError(try parseScript("unset app.memlock=1M", fileName: "u.ump"))
    }

    func testSetLinesAreCheckedOnTopOfTheOverridesInForce() throws {
        func problems(_ source: String) throws -> [String] {
            checkScript(try parseScript(source, fileName: "s.ump"), sourceLines: scenarioSourceLines(source), fileExists: { _ in false })
                .map { "\($0.location.line):\($0.location.column): \($0.message)" }
        }
        // ways=64 divides the iotlb=64 in force, not the declaration's 16.
        XCTAssertEqual(try problems("device nic iotlb=16 ways=16\nset nic.iotlb=64\nset nic.ways=64"), [])
        XCTAssertEqual(try problems("device nic iotlb=64\nset nic.ways=32\nset nic.iotlb=16"),
                       ["3:15: ways=32 does not divide the IOTLB's 16 entries"])
        // Without the iotlb=64 it stood on, ways=64 no longer fits.
        XCTAssertEqual(try problems("device nic iotlb=16 ways=16\nset nic.iotlb=64\nset nic.ways=64\nunset nic.iotlb"),
                       ["4:7: without nic.iotlb the other overrides in force do not fit the declarations"])
        // The runner agrees: the same script runs, and unset refuses with nothing changed.
        let s = try parseScript("device nic iotlb=16 ways=16\nset nic.iotlb=64\nset nic.ways=64", fileName: "s.ump")
        var t = Timeline(plan: StepPlan(s), policy: .none)
        t.go(to: 1)
        try t.override("nic.iotlb=64")
        try t.override("nic.ways=64")
        XCTAssertThrowsError(try t.unset("nic.iotlb"))
        XCTAssertEqual(t.overrides, ["nic.iotlb=64", "nic.ways=64"])
    }

    func testMetricNamesAreCheckedAgainstTheScript() throws {
        let s = try parseScript(Self.source, fileName: "w.ump")
        for good in ["nic.misses", "nic.hit_rate", "nic.ioptes_2M", "app.locked_vm", "machine.free", "machine.free_blocks_o9",
                     "app.w.present", "last.errno", "outcome", "failed_expects"] {
            XCTAssertNil(metricProblem(good, in: s), good)
        }
        XCTAssertEqual(metricProblem("gpu.misses", in: s)?.message, "no process or device named 'gpu' in the script")
        XCTAssertEqual(metricProblem("nic.mises", in: s)?.message, "unknown key 'mises' for a device")
        XCTAssertEqual(metricProblem("nic.ioptes_3K", in: s)?.message, "unknown key 'ioptes_3K' for a device")
        XCTAssertEqual(metricProblem("machine.free_blocks_o11", in: s)?.message, "unknown key 'free_blocks_o11' for the machine")
        XCTAssertEqual(metricProblem("misses", in: s)?.message, "'misses' is not a metric")
        var t = try timeline()
        t.go(to: 10)
        XCTAssertEqual(t.engine.metric("nic.ioptes_4K", last: t.last, failedExpects: 0), .integer(64 + 256))
        XCTAssertEqual(t.engine.metric("nic.ioptes_2M", last: t.last, failedExpects: 0), .integer(0))
        XCTAssertEqual(t.engine.metric("app.w.present", last: t.last, failedExpects: 0), .integer(64))
        XCTAssertEqual(t.engine.metric("outcome", last: t.last, failedExpects: 0), .word("ok"))
    }
}

extension Timeline {
    func figuresAt(_ n: Int) -> [Figure] {
        var t = self
        t.go(to: n)
        return t.figures
    }
}
