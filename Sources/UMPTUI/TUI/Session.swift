// The model side of the TUI: an Engine on a Timeline, the steps already run and the steps to come.
// Stepping back undoes through the Timeline and puts the step back in front of the queue, so
// stepping forward again runs the same statement. A prompt line runs as the next step.

import Engine
import Foundation

struct Session {
    let fileName: String
    /// The script's directory, for `dma-trace` paths.
    let baseDirectory: URL
    let machine: MachineDecl?
    private(set) var timeline: Timeline
    /// The steps run so far, parallel to `timeline.records`.
    private(set) var applied: [ScriptStep] = []
    /// The steps still to run, next first.
    private(set) var queue: [ScriptStep]
    /// Failed expects, by step number.
    private(set) var expectFailures: [Int: [String]] = [:]
    /// Bumps whenever the Engine state changes: derived indexes are cached against it.
    private(set) var generation = 0
    /// Notes typed at the prompt with no step left to attach them to.
    private var pendingNotes: [String] = []
    /// Notes written at the end of the script.
    let trailingNotes: [String]

    init(script: Script, baseDirectory: URL = URL(fileURLWithPath: ".")) {
        let plan = StepPlan(script)
        fileName = script.fileName
        self.baseDirectory = baseDirectory
        machine = plan.machine
        timeline = Timeline(engine: Engine(config: MachineConfig(plan.machine)))
        queue = plan.steps
        trailingNotes = plan.trailingNotes
    }

    var engine: Engine { timeline.engine }
    var state: EngineState { timeline.engine.state }
    var records: [StepRecord] { timeline.records }
    var lastRecord: StepRecord? { timeline.records.last }
    var current: Int { applied.count }
    var total: Int { applied.count + queue.count }
    var nextStep: ScriptStep? { queue.first }

    /// Runs the next step; false at the end.
    @discardableResult
    mutating func stepForward() -> Bool {
        guard !queue.isEmpty else { return false }
        let step = queue.removeFirst()
        run(step)
        return true
    }

    /// Undoes the last step; false at the start.
    @discardableResult
    mutating func stepBack() -> Bool {
        guard let step = applied.popLast(), let record = timeline.stepBack() else { return false }
        expectFailures[record.step] = nil
        queue.insert(step, at: 0)
        generation += 1
        return true
    }

    /// Steps forward or back until `n` steps have run (clamped to 0...total).
    mutating func go(to n: Int) {
        let target = max(0, min(n, total))
        while current > target { stepBack() }
        while current < target { stepForward() }
    }

    private mutating func run(_ step: ScriptStep) {
        let record = timeline.apply(step.statement, notes: step.notes, traces: FileTraceProvider(base: baseDirectory))
        applied.append(step)
        var failures: [String] = []
        for st in step.expects {
            if case let .expect(target, clauses) = st.kind {
                failures += timeline.engine.check(target, clauses, last: record, statement: st).map { "line \($0.location.line): \($0.message)" }
            }
        }
        if !failures.isEmpty { expectFailures[record.step] = failures }
        generation += 1
    }

    // MARK: The prompt

    enum PromptResult {
        /// The line ran as step `record.step`.
        case ran(StepRecord)
        /// A note, an expect or a blank line: something to say, no step.
        case info(String)
        /// A mistake in the line: nothing ran. `column` is 1-based.
        case error(message: String, column: Int, hint: String?)
    }

    /// Parses and checks `line` against what has run so far, then runs it as the next step.
    mutating func runPrompt(_ line: String) -> PromptResult {
        let statement: Statement
        do {
            // Line 0 marks a step typed at the prompt (StepRecord.line).
            guard let s = try parseStatement(line, lineNumber: 0, fileName: "<prompt>") else {
                return .info("nothing to run")
            }
            statement = s
        } catch {
            return .error(message: error.message, column: error.location.column, hint: error.hint)
        }
        // Check names against the statements that ran, as if the line came next in the file.
        var history: [Statement] = []
        var sourceLines: [String] = []
        for (i, step) in applied.enumerated() {
            var s = step.statement
            s.location.line = i + 1
            history.append(s)
            sourceLines.append(s.text)
        }
        var candidate = statement
        candidate.location.line = history.count + 1
        sourceLines.append(line)
        let base = baseDirectory
        let problems = checkScript(Script(fileName: "<prompt>", statements: history + [candidate]), sourceLines: sourceLines) { file in
            FileManager.default.isReadableFile(atPath: ScriptLoader.resolve(file, against: base))
        }.filter { $0.location.line == candidate.location.line }
        if let p = problems.first {
            return .error(message: p.message, column: p.location.column, hint: p.hint)
        }
        switch statement.kind {
        case .machine:
            return .error(message: "the machine has booted; 'machine' belongs at the top of a scenario file",
                          column: statement.location.column, hint: "start umptui with a file that declares it, or use --set in `umptui run`")
        case .wait:
            return .info("wait only paces replays; nothing to run")
        case let .note(text):
            if queue.isEmpty {
                pendingNotes.append(text)
                return .info("note kept for the next line you run")
            }
            queue[0].notes.append(text)
            return .info("note attached to the next step")
        case let .expect(target, clauses):
            let failures = timeline.engine.check(target, clauses, last: lastRecord, statement: candidate)
            return .info(failures.isEmpty ? "expect holds" : "expect failed: " + failures.map(\.message).joined(separator: "; "))
        default:
            run(ScriptStep(statement: statement, notes: pendingNotes, expects: []))
            pendingNotes = []
            return .ran(timeline.records[timeline.records.count - 1])
        }
    }
}
