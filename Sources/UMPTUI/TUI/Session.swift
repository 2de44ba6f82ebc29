// The model side of the TUI: an Engine on a Timeline, the steps already run and the steps to come.
// Stepping back undoes through the Timeline and puts the step back in front of the queue, so
// stepping forward again runs the same statement. A prompt line runs as the next step. Expects are
// checked by the Timeline, as `umptui run` checks them, those before the first step included.

import Engine

/// The files a session may read (the trace files `dma-trace` names), given by whoever opens it:
/// the command line resolves them against the script's directory, tests hand in arrays.
protocol SessionFiles {
    var traces: (any TraceProvider)? { get }
    /// Whether a path as the script writes it can be read.
    func exists(_ path: String) -> Bool
}

/// A session that reads no files: `dma-trace` is an ENOENT outcome, and the prompt refuses it.
struct NoFiles: SessionFiles {
    var traces: (any TraceProvider)? { nil }
    func exists(_ path: String) -> Bool { false }
}

struct Session {
    let fileName: String
    let files: any SessionFiles
    let machine: MachineDecl?
    private(set) var timeline: Timeline
    /// The steps run so far, parallel to `timeline.records`.
    private(set) var applied: [ScriptStep] = []
    /// The steps still to run, next first.
    private(set) var queue: [ScriptStep]
    /// Failed expects, by step number (0: those before the first step, about the booted machine).
    private(set) var expectFailures: [Int: [String]] = [:]
    /// Bumps whenever the Engine state changes: derived indexes are cached against it.
    private(set) var generation = 0
    /// Notes typed at the prompt with no step left to attach them to.
    private var pendingNotes: [String] = []
    /// Notes written at the end of the script.
    let trailingNotes: [String]

    init(script: Script, files: any SessionFiles = NoFiles()) {
        let plan = StepPlan(script)
        fileName = script.fileName
        self.files = files
        machine = plan.machine
        timeline = Timeline(plan: plan)
        queue = plan.steps
        trailingNotes = plan.trailingNotes
        let boot = timeline.check(plan.bootExpects, last: nil)
        if !boot.isEmpty { expectFailures[0] = boot.map(Session.describe) }
    }

    private static func describe(_ f: ExpectFailure) -> String { "line \(f.location.line): \(f.message)" }

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
        let (record, failures) = timeline.run(step, traces: files.traces)
        applied.append(step)
        if !failures.isEmpty { expectFailures[record.step] = failures.map(Session.describe) }
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
        let files = self.files
        let problems = checkScript(Script(fileName: "<prompt>", statements: history + [candidate]), sourceLines: sourceLines) { file in
            files.exists(file)
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
        case .expect:
            let failures = timeline.check([candidate], last: lastRecord)
            return .info(failures.isEmpty ? "expect holds" : "expect failed: " + failures.map(\.message).joined(separator: "; "))
        default:
            run(ScriptStep(statement: statement, notes: pendingNotes, expects: []))
            pendingNotes = []
            return .ran(timeline.records[timeline.records.count - 1])
        }
    }
}
