// The model side of the TUI: an Engine on a Timeline, plus what a script still has to do after
// the Timeline's steps (a recording's `back` and `set` lines and the steps after them).
// Stepping back keeps the step in the Timeline, so stepping forward runs it again; a prompt line runs
// as the next step, dropping the steps stepped back over. Every move is kept in `moves` until the
// recorder takes them. Expects are checked by the Timeline, as `umptui run` checks them.

import Engine

/// The files a session may read (the trace files `dma-trace` names), given by whoever opens it:
/// the command line resolves them against the script's directory, tests hand in arrays.
protocol SessionFiles: Sendable {
    var traces: (any TraceProvider)? { get }
    /// Whether a path as the script writes it can be read.
    func exists(_ path: String) -> Bool
}

/// A session that reads no files: `dma-trace` is an ENOENT outcome, and the prompt refuses it.
struct NoFiles: SessionFiles {
    var traces: (any TraceProvider)? { nil }
    func exists(_ path: String) -> Bool { false }
}

/// Something that moved the timeline, for the recorder.
enum SessionMove: Equatable {
    /// A step ran (from the script, a redo or the prompt).
    case ran(ScriptStep)
    /// The last step was undone.
    case back
    /// The timeline re-ran from boot with an override.
    case set(String)
}

extension ScriptStep: Equatable {
    public static func == (a: ScriptStep, b: ScriptStep) -> Bool {
        a.statement == b.statement && a.notes == b.notes && a.expects == b.expects && a.cues == b.cues
    }
}

struct Session {
    let fileName: String
    let files: any SessionFiles
    /// Whether the file is a recording (it starts with the recorder's header).
    let isRecording: Bool
    private(set) var timeline: Timeline
    /// What the script does after the Timeline's steps: `back`, `set` and the steps after them.
    private(set) var pending: [PlanItem]
    /// Bumps whenever the Engine state changes: derived indexes are cached against it.
    private(set) var generation = 0
    /// Moves not yet taken by the recorder, oldest first.
    private(set) var moves: [SessionMove] = []
    /// Notes typed at the prompt with no step left to attach them to.
    private var pendingNotes: [String] = []
    /// Notes and cues written at the end of the script.
    let trailingNotes: [String]
    let trailingCues: [Statement]
    /// Failed expects typed at the prompt are not kept; these are the script's, by step.
    var expectFailures: [Int: [String]] {
        timeline.failures.mapValues { $0.map(Session.describe) }
    }

    init(script: Script, files: any SessionFiles = NoFiles(), policy: SnapshotPolicy = SnapshotPolicy()) {
        let plan = StepPlan(script)
        fileName = script.fileName
        self.files = files
        isRecording = script.isRecording
        timeline = Timeline(plan: plan, traces: files.traces, policy: policy)
        pending = Array(plan.directives)
        trailingNotes = plan.trailingNotes
        trailingCues = plan.trailingCues
    }

    private static func describe(_ f: ExpectFailure) -> String { "line \(f.location.line): \(f.message)" }

    var engine: Engine { timeline.engine }
    var state: EngineState { timeline.engine.state }
    var records: ArraySlice<StepRecord> { timeline.records }
    var lastRecord: StepRecord? { timeline.last }
    var current: Int { timeline.current }
    /// Steps in the timeline plus the net steps the script still adds (a recording's `back` lines
    /// take away); never fewer than the timeline holds now, so "step N/M" never reads N > M.
    var total: Int {
        let projected = pending.reduce(timeline.total) { n, item in
            switch item {
            case .step: n + 1
            case .back: n - 1
            case .set: n
            }
        }
        return max(projected, timeline.total)
    }
    /// The next thing stepping forward does: the next step, or the script's next `back` or `set`.
    var nextItem: PlanItem? {
        if let s = timeline.next { return .step(s) }
        return pending.first
    }
    /// The next step, when the next thing to do is one.
    var nextStep: ScriptStep? {
        if case let .step(s)? = nextItem { return s }
        return nil
    }

    /// Takes the moves made since the last call (the recorder writes them).
    mutating func takeMoves() -> [SessionMove] {
        defer { moves = [] }
        return moves
    }

    // MARK: Moving

    /// Runs the next step, or the script's next `back` or `set`; false at the end.
    @discardableResult
    mutating func stepForward() -> Bool {
        if let step = timeline.next {
            timeline.stepForward()
            moves.append(.ran(step))
            generation += 1
            return true
        }
        guard !pending.isEmpty else { return false }
        let item = pending.removeFirst()
        switch item {
        case .step:
            pending.insert(item, at: 0)
            loadPending()
            return stepForward()
        case .back:
            if timeline.stepBack() != nil {
                timeline.dropFuture()
                moves.append(.back)
            }
        case let .set(_, text):
            if (try? timeline.override(text)) != nil { moves.append(.set(text)) }
        }
        loadPending()
        generation += 1
        return true
    }

    /// Moves the script's leading steps into the Timeline (up to its next `back` or `set`).
    private mutating func loadPending() {
        var more: [ScriptStep] = []
        while case let .step(s)? = pending.first {
            more.append(s)
            pending.removeFirst()
        }
        if !more.isEmpty { timeline.append(more) }
    }

    /// Undoes the last step; false at the start. The step stays, to step forward to again.
    @discardableResult
    mutating func stepBack() -> Bool {
        guard timeline.stepBack() != nil else { return false }
        moves.append(.back)
        generation += 1
        return true
    }

    /// Goes to step `n` (clamped to 0...total): through the Timeline's snapshots within it, then
    /// through the script's `back` and `set` lines when `n` lies past them.
    mutating func go(to n: Int) {
        let target = max(0, min(n, total))
        let before = timeline.current
        if target <= timeline.total {
            logJump(from: before, to: target)
            timeline.go(to: target)
            generation += 1
            return
        }
        logJump(from: before, to: timeline.total)
        timeline.go(to: timeline.total)
        while timeline.current < target, !pending.isEmpty || timeline.next != nil {
            if !stepForward() { break }
        }
        generation += 1
    }

    /// A jump is recorded as the steps it undoes or runs, so a replay does what the user saw.
    private mutating func logJump(from a: Int, to b: Int) {
        if b < a {
            moves += Array(repeating: .back, count: a - b)
        } else if b > a {
            moves += timeline.steps[a..<b].map { .ran($0) }
        }
    }

    /// The step numbers whose step went wrong: a hazard, an errno, a signal, OOM, an IOMMU fault.
    /// Only steps that have run are known.
    var troubleSteps: [Int] {
        timeline.known.filter(\.wentWrong).map(\.step)
    }

    // MARK: The prompt

    enum PromptResult {
        /// The line ran as step `record.step`; `dropped` steps stepped back over went first.
        case ran(StepRecord, dropped: Int)
        /// A note, an expect, a `back`, a `set` or a blank line: something to say, no new step.
        case info(String)
        /// A `select` or `inspect` line: the screen points at something.
        case cue(Statement)
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
        if let m = timeline.machine {
            var s = m
            s.location.line = 1
            history.append(s)
            sourceLines.append(s.text)
        }
        for step in timeline.steps[..<timeline.current] {
            var s = step.statement
            s.location.line = history.count + 1
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
                          column: statement.location.column, hint: "start umptui with a file that declares it, or use :set machine.KEY=VALUE")
        case .wait:
            return .info("wait only paces replays; nothing to run")
        case .select, .inspect:
            return .cue(statement)
        case .back:
            return .info(stepBack() ? "stepped back to step \(current)" : "at the start: nothing to undo")
        case let .set(text):
            do {
                try timeline.override(text)
            } catch {
                let d = error.items.first
                return .error(message: d?.message ?? "bad override", column: 4 + (d?.location.column ?? 1), hint: d?.hint)
            }
            moves.append(.set(text))
            generation += 1
            return .info("re-ran \(plural(current, "step")) from boot with \(text)")
        case let .note(text):
            if timeline.next == nil {
                pendingNotes.append(text)
                return .info("note kept for the next line you run")
            }
            timeline.addNote(text)
            return .info("note attached to the next step")
        case .expect:
            let failures = timeline.check([candidate], last: lastRecord)
            return .info(failures.isEmpty ? "expect holds" : "expect failed: " + failures.map(\.message).joined(separator: "; "))
        case .process, .device, .processEvent, .deviceEvent, .pressure, .compact:
            let step = ScriptStep(statement: statement, notes: pendingNotes)
            let (record, _, dropped) = timeline.insert(step)
            pendingNotes = []
            moves.append(.ran(step))
            generation += 1
            return .ran(record, dropped: dropped)
        }
    }

    // MARK: The effective script

    /// What `:w` saves: the machine line, then the steps that stand up to here with their notes and
    /// expects (overrides folded into the declarations; no `back` or `set` lines), so running it
    /// reproduces the current state.
    func effectiveScript(header: [String]) -> String {
        var lines = header
        if let m = timeline.machine { lines.append(m.text) }
        for step in timeline.steps[..<timeline.current] {
            lines += ScriptText.lines(of: step, withCues: false)
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
