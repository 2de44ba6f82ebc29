// Compare: one script on two timelines, A with its overrides and B with A's plus the `--vs` ones,
// stepping together. B follows A (Timeline.follow): the same written steps, the same `back` and
// `set` lines, B's own overrides always winning.

/// One step of a compare run: both records, both sides' headline figures after it, and how they
/// differ (in the state after the step, and in what the step itself did).
public struct CompareStep: Sendable {
    public var a: StepRecord
    public var b: StepRecord
    public var figuresA: [Figure]
    public var figuresB: [Figure]
    /// The headline figures after the step that differ (B against A).
    public var differences: [FigureDifference]
    /// What the step did that differs: its device counters, IOPTEs set, kernel events, outcome.
    public var stepDifferences: [FigureDifference]
    /// "B: 14976 more IOTLB misses, +4.5 ms stall" (or "B: the same").
    public var summary: String { Figures.summary(stepDifferences) }
}

public enum CompareEvent: Sendable {
    case step(CompareStep)
    /// A `back`, `set` or `unset` line moved both sides (A's event is given).
    case moved(RunEvent)
}

public struct CompareResult: Sendable {
    public var a: Engine
    public var b: Engine
    public var failuresA: [ExpectFailure]
    public var failuresB: [ExpectFailure]
    public var differences: [FigureDifference]
}

public enum ScenarioCompare {
    /// Runs `script` (as written) on side A with `overrides` and on side B with them and `vs`, item
    /// by item. Throws when an override does not fit the declarations (nothing runs).
    public static func run(_ script: Script, overrides: [String], vs: [String], traces: (any TraceProvider)? = nil,
                           onEvent: (CompareEvent) -> Void = { _ in }) throws(Diagnostics) -> CompareResult {
        let plan = StepPlan(script)
        var a = try Timeline(plan: plan, overrides: overrides, traces: traces, policy: .none)
        var b = try Timeline(plan: plan, overrides: Timeline.merge(overrides, vs), traces: traces, policy: .none)
        var failuresA = a.failures[0] ?? [], failuresB = b.failures[0] ?? []
        func follow() throws(Diagnostics) {
            try b.follow(a, overrides: Timeline.merge(a.overrides, vs))
        }
        for item in plan.items {
            switch item {
            case let .step(s):
                let r: StepRecord
                if a.next != nil, let rec = a.stepForward() {
                    r = rec
                    failuresA += a.failures[a.current] ?? []
                } else {
                    let (rec, failed, _) = a.insert(s)
                    r = rec
                    failuresA += failed
                }
                try follow()
                failuresB += b.failures[b.current] ?? []
                let fa = a.figures, fb = b.figures
                let rb = b.last ?? .impossible(s.statement, step: b.current, "compare: side B has no step to show")
                onEvent(.step(CompareStep(a: r, b: rb, figuresA: fa, figuresB: fb, differences: Figures.differences(fa, fb),
                                          stepDifferences: Figures.differences(a.engine.stepFigures(r), b.engine.stepFigures(rb)))))
            case let .back(s):
                if let r = a.stepBack() {
                    a.dropFuture()
                    onEvent(.moved(.back(r, line: s.statement.location.line)))
                } else {
                    onEvent(.moved(.backAtStart(line: s.statement.location.line)))
                }
                try follow()
                failuresA += a.check(s.expects, last: a.last)
                failuresB += b.check(s.expects, last: b.last)
            case let .set(s, text):
                do {
                    try a.override(text)
                    onEvent(.moved(.set(text, line: s.statement.location.line, steps: a.current)))
                } catch {
                    onEvent(.moved(.badSet(error, line: s.statement.location.line)))
                }
                try follow()
                failuresA += a.check(s.expects, last: a.last)
                failuresB += b.check(s.expects, last: b.last)
            case let .unset(s, key):
                do {
                    let was = try a.unset(key)
                    onEvent(.moved(.unset(key, line: s.statement.location.line, steps: was ? a.current : 0, wasSet: was)))
                } catch {
                    onEvent(.moved(.badSet(error, line: s.statement.location.line)))
                }
                try follow()
                failuresA += a.check(s.expects, last: a.last)
                failuresB += b.check(s.expects, last: b.last)
            }
        }
        return CompareResult(a: a.engine, b: b.engine, failuresA: failuresA, failuresB: failuresB,
                             differences: Figures.differences(a.figures, b.figures))
    }
}
