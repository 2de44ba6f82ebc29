// A script laid out as steps, and the Timeline that moves an Engine along it, forwards and back.

/// One step of a script: the statement, the notes written before it, and the expects after it.
public struct ScriptStep: Sendable {
    public var statement: Statement
    public var notes: [String]
    public var expects: [Statement]

    public init(statement: Statement, notes: [String] = [], expects: [Statement] = []) {
        self.statement = statement
        self.notes = notes
        self.expects = expects
    }
}

/// A script cut into steps. `machine` configures the boot; notes attach to the next step;
/// expects attach to the step before them (those before any step check the booted machine).
public struct StepPlan: Sendable {
    public var machine: MachineDecl?
    public var steps: [ScriptStep] = []
    public var bootExpects: [Statement] = []
    /// Notes after the last step.
    public var trailingNotes: [String] = []

    public init(_ script: Script) {
        var notes: [String] = []
        for st in script.statements {
            switch st.kind {
            case let .machine(decl): machine = decl
            case let .note(text): notes.append(text)
            case .wait: break
            case .expect:
                if steps.isEmpty { bootExpects.append(st) } else { steps[steps.count - 1].expects.append(st) }
            default:
                steps.append(ScriptStep(statement: st, notes: notes, expects: []))
                notes = []
            }
        }
        trailingNotes = notes
    }
}

/// An Engine plus the records of the steps it has applied: step forward, step back.
public struct Timeline: Sendable {
    public private(set) var engine: Engine
    public private(set) var records: [StepRecord] = []

    public init(engine: Engine) { self.engine = engine }

    /// Boots the machine a plan declares.
    public init(plan: StepPlan) { self.init(engine: Engine(config: MachineConfig(plan.machine))) }

    public mutating func apply(_ st: Statement, notes: [String] = [], traces: (any TraceProvider)? = nil) -> StepRecord {
        let r = engine.apply(st, step: records.count + 1, notes: notes, traces: traces)
        records.append(r)
        return r
    }

    /// Applies one step of a script and checks the expects written after it.
    public mutating func run(_ step: ScriptStep, traces: (any TraceProvider)? = nil) -> (record: StepRecord, failures: [ExpectFailure]) {
        let r = apply(step.statement, notes: step.notes, traces: traces)
        return (r, check(step.expects, last: r))
    }

    /// Checks expect statements against the state now (`last`: the step they follow, nil at boot).
    public func check(_ expects: [Statement], last: StepRecord?) -> [ExpectFailure] {
        expects.flatMap { st -> [ExpectFailure] in
            guard case let .expect(target, clauses) = st.kind else { return [] }
            return engine.check(target, clauses, last: last, statement: st)
        }
    }

    /// Undoes the newest step; returns it, or nil at the start.
    @discardableResult
    public mutating func stepBack() -> StepRecord? {
        guard let last = records.popLast() else { return nil }
        engine.undo(last)
        return last
    }
}

/// What `umptui run` produces.
public struct RunResult: Sendable {
    public var records: [StepRecord]
    public var failures: [ExpectFailure]
    public var engine: Engine
}

public enum ScenarioRunner {
    /// Boots the machine of the script and runs every step, checking expects as it goes (those
    /// before the first step check the booted machine). `onStep` sees each record as soon as it
    /// exists (for streaming output).
    public static func run(_ script: Script, traces: (any TraceProvider)? = nil,
                           onStep: (StepRecord, Engine) -> Void = { _, _ in }) -> RunResult {
        let plan = StepPlan(script)
        var timeline = Timeline(plan: plan)
        var failures = timeline.check(plan.bootExpects, last: nil)
        for step in plan.steps {
            let (r, failed) = timeline.run(step, traces: traces)
            onStep(r, timeline.engine)
            failures += failed
        }
        return RunResult(records: timeline.records, failures: failures, engine: timeline.engine)
    }
}
