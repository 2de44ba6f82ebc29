// A script laid out as steps: what the Timeline runs, and what a replay does between steps.

/// One step of a script: the statement, the notes written before it, the cues (`wait`, `select`,
/// `inspect`) written before it, and the expects after it.
public struct ScriptStep: Sendable {
    public var statement: Statement
    public var notes: [String]
    public var expects: [Statement]
    /// How a replay presents the step: pacing and pointing, in the order written. Never state.
    public var cues: [Statement]
    /// The `quiz` line written before the step, asked in quiz mode.
    public var quiz: Statement?

    public init(statement: Statement, notes: [String] = [], expects: [Statement] = [], cues: [Statement] = [],
                quiz: Statement? = nil) {
        self.statement = statement
        self.notes = notes
        self.expects = expects
        self.cues = cues
        self.quiz = quiz
    }

    /// The question written for the step, if any.
    public var quizSpec: QuizSpec? {
        if case let .quiz(q)? = quiz?.kind { return q }
        return nil
    }
}

/// One item of a plan: a step, or a recording's `back` or `set` line (with its notes, cues and
/// expects, in a ScriptStep whose statement is the `back` or `set` line).
public enum PlanItem: Sendable {
    case step(ScriptStep)
    /// Undo the last step; stepping on afterwards drops it.
    case back(ScriptStep)
    /// Re-run from boot with the override `TARGET.KEY=VALUE`, up to the current step.
    case set(ScriptStep, override: String)
    /// Re-run from boot without the override of TARGET.KEY, up to the current step.
    case unset(ScriptStep, key: String)

    public var step: ScriptStep {
        switch self {
        case let .step(s), let .back(s), let .set(s, _), let .unset(s, _): s
        }
    }
}

/// A script cut into steps. `machine` configures the boot; notes attach to the next step, cues to the
/// next item (a `back` or `set` included);
/// expects attach to the item before them (those before any item check the booted machine).
public struct StepPlan: Sendable {
    public var machine: MachineDecl?
    /// The machine line as written (for a recording's header), if any.
    public var machineStatement: Statement?
    public var items: [PlanItem] = []
    public var bootExpects: [Statement] = []
    /// Notes and cues after the last item.
    public var trailingNotes: [String] = []
    public var trailingCues: [Statement] = []

    /// Whether a statement is a step of the Timeline (anything that changes the state).
    public static func isStep(_ kind: StatementKind) -> Bool {
        switch kind {
        case .machine, .note, .wait, .expect, .back, .set, .unset, .select, .inspect, .quiz: false
        case .process, .device, .file, .processEvent, .deviceEvent, .pressure, .compact: true
        }
    }

    public init(_ script: Script) {
        var notes: [String] = []
        var cues: [Statement] = []
        var quiz: Statement?
        for st in script.statements {
            switch st.kind {
            case .quiz: quiz = st
            case let .machine(decl):
                machine = decl
                machineStatement = st
            case let .note(text): notes.append(text)
            case .wait, .select, .inspect: cues.append(st)
            case .expect:
                guard !items.isEmpty else { bootExpects.append(st); continue }
                switch items[items.count - 1] {
                case var .step(s): s.expects.append(st); items[items.count - 1] = .step(s)
                case var .back(s): s.expects.append(st); items[items.count - 1] = .back(s)
                case .set(var s, let o): s.expects.append(st); items[items.count - 1] = .set(s, override: o)
                case .unset(var s, let k): s.expects.append(st); items[items.count - 1] = .unset(s, key: k)
                }
            // Notes are narration for a step: they wait for the next one. Cues pace the line itself.
            case .back:
                items.append(.back(ScriptStep(statement: st, cues: cues)))
                cues = []
            case let .set(text):
                items.append(.set(ScriptStep(statement: st, cues: cues), override: text))
                cues = []
            case let .unset(key):
                items.append(.unset(ScriptStep(statement: st, cues: cues), key: key))
                cues = []
            case .process, .device, .file, .processEvent, .deviceEvent, .pressure, .compact:
                items.append(.step(ScriptStep(statement: st, notes: notes, cues: cues, quiz: quiz)))
                notes = []; cues = []; quiz = nil
            }
        }
        trailingNotes = notes
        trailingCues = cues
    }

    /// The steps before the first `back` or `set`: all of them in a script that has neither.
    public var steps: [ScriptStep] {
        var out: [ScriptStep] = []
        for item in items {
            guard case let .step(s) = item else { break }
            out.append(s)
        }
        return out
    }

    /// The items after `steps`.
    public var directives: ArraySlice<PlanItem> { items.dropFirst(steps.count) }
}
