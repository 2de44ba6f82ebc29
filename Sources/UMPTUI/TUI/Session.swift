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
    /// The timeline re-ran from boot without the override of TARGET.KEY.
    case unset(String)
}

/// What a `:set`, `:unset` or `:machine` changed: the headline figures at the current step before
/// and after the re-run, the steps whose outcome changed, and the expects that failed each way.
struct WhatIf: Equatable {
    /// The lines that made the change: "set nic.iotlb=16", "unset nic.iotlb".
    var change: String
    var step: Int
    var before: [Figure]
    var after: [Figure]
    /// Steps up to here whose outcome word differs: (step, before, after).
    var outcomes: [Outcomes]
    var failedBefore: Int
    var failedAfter: Int

    struct Outcomes: Equatable {
        var step: Int
        var command: String
        var before: String
        var after: String
    }

    var differences: [FigureDifference] { Figures.differences(before, after) }
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
    /// The step the last move had cancelled by its StepControl (Esc during a long step), if any.
    private(set) var cancelledStep: Int?
    /// Moves not yet taken by the recorder, oldest first.
    private(set) var moves: [SessionMove] = []
    /// Notes typed at the prompt with no step left to attach them to.
    private var pendingNotes: [String] = []
    private var pendingQuiz: Statement?
    /// Notes and cues written at the end of the script.
    let trailingNotes: [String]
    let trailingCues: [Statement]
    /// The steps run again as written, with no override, while overrides are in force: which
    /// steps' records the overrides changed (their notes were written for other settings).
    private var baseline: Timeline?
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
        trailingNotes = plan.trailingNotes.map(NoteText.plain)
        trailingCues = plan.trailingCues
    }

    /// The script as written with `overrides` (`--set`) in force: `:unset` can take them out again.
    init(script: Script, overrides: [String], files: any SessionFiles = NoFiles(),
         policy: SnapshotPolicy = SnapshotPolicy()) throws(Diagnostics) {
        self.init(script: script, files: files, policy: policy)
        if !overrides.isEmpty {
            timeline = try Timeline(plan: StepPlan(script), overrides: overrides, traces: files.traces, policy: policy)
        }
    }

    /// The overrides in force, in the order set.
    var overrides: [String] { timeline.overrides }

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
            case .set, .unset: n
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
    mutating func stepForward(control: StepControl? = nil) -> Bool {
        cancelledStep = nil
        if timeline.next != nil {
            let written = timeline.writtenStep(timeline.current)
            guard timeline.stepForward(control: control) != nil else {
                // Cancelled: nothing ran, nothing to record.
                cancelledStep = timeline.current + 1
                return false
            }
            moves.append(.ran(written))
            syncBaseline()
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
        case let .unset(_, key):
            if (try? timeline.unset(key)) == true { moves.append(.unset(key)) }
        }
        loadPending()
        syncBaseline()
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
    mutating func go(to n: Int, control: StepControl? = nil) {
        let target = max(0, min(n, total))
        let before = timeline.current
        cancelledStep = nil
        let reach = min(target, timeline.total)
        timeline.go(to: reach, control: control)
        // A cancelled step ends the jump where it got to: the recorder logs the jump made.
        logJump(from: before, to: timeline.current)
        if timeline.current < reach { cancelledStep = timeline.current + 1 }
        syncBaseline()
        generation += 1
        guard target > timeline.total, cancelledStep == nil else { return }
        while timeline.current < target, !pending.isEmpty || timeline.next != nil {
            if !stepForward(control: control) { break }
        }
        generation += 1
    }

    /// A jump is recorded as the steps it undoes or runs, so a replay does what the user saw.
    private mutating func logJump(from a: Int, to b: Int) {
        if b < a {
            moves += Array(repeating: .back, count: a - b)
        } else if b > a {
            moves += (a..<b).map { .ran(timeline.writtenStep($0)) }
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
        /// A `set`, `unset` or `machine` line re-ran the timeline: what it changed.
        case whatIf(WhatIf)
        /// A mistake in the line: nothing ran. `column` is 1-based.
        case error(message: String, column: Int, hint: String?)
    }

    /// Parses and checks `line` against what has run so far, then runs it as the next step.
    mutating func runPrompt(_ line: String) -> PromptResult {
        let bare = line.trimmingCharacters(in: .whitespaces)
        if bare == "set" || bare == "unset" {
            let active = overrides.isEmpty ? "no override is in force" : "in force: " + overrides.joined(separator: ", ")
            if bare == "unset" && !overrides.isEmpty {
                return .error(message: "'unset' needs TARGET.KEY; \(active)", column: 7, hint: "e.g. unset " + Timeline.key(of: overrides[0]))
            }
            return .info(active)
        }
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
        // Before the checker, which allows `machine` only at the top of a file.
        if case .machine = statement.kind { return machineLine(statement) }
        // The Timeline checks a `set` against the overrides in force, which the history below lacks.
        if case let .set(text) = statement.kind { return runWhatIf(set: [text], unset: nil, label: "set " + text) }
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
            return machineLine(statement)
        case .wait:
            return .info("wait only paces replays; nothing to run")
        case .select, .inspect:
            return .cue(statement)
        case .back:
            return .info(stepBack() ? "stepped back to step \(current)" : "at the start: nothing to undo")
        case let .set(text):
            return runWhatIf(set: [text], unset: nil, label: "set " + text)
        case let .unset(key):
            return runWhatIf(set: [], unset: key, label: "unset " + key)
        case let .note(text):
            if timeline.next == nil {
                pendingNotes.append(text)
                return .info("note kept for the next line you run")
            }
            timeline.addNote(text)
            return .info("note attached to the next step")
        case .quiz:
            if timeline.next == nil {
                pendingQuiz = candidate
                return .info("quiz kept for the next line you run (Q turns quiz mode on)")
            }
            timeline.setQuiz(candidate)
            return .info("quiz set for the next step (Q turns quiz mode on)")
        case .expect:
            let failures = timeline.check([candidate], last: lastRecord)
            return .info(failures.isEmpty ? "expect holds" : "expect failed: " + failures.map(\.message).joined(separator: "; "))
        case .process, .device, .file, .processEvent, .deviceEvent, .pressure, .compact:
            let step = ScriptStep(statement: statement, notes: pendingNotes, quiz: pendingQuiz)
            let (record, _, dropped) = timeline.insert(step)
            pendingNotes = []
            pendingQuiz = nil
            moves.append(.ran(step))
            syncBaseline()
            generation += 1
            return .ran(record, dropped: dropped)
        }
    }

    /// `:machine ram=1G thp=always` is `:set machine.ram=1G` and `:set machine.thp=always`, in one re-run.
    private mutating func machineLine(_ statement: Statement) -> PromptResult {
        let options = machineOverrides(statement.text)
        guard !options.isEmpty else {
            return .info("the machine: " + (timeline.machine?.text ?? "machine (the defaults)")
                         + "; :machine KEY=VALUE re-runs from boot with the change")
        }
        return runWhatIf(set: options, unset: nil, label: statement.text)
    }

    private mutating func runWhatIf(set: [String], unset key: String?, label: String) -> PromptResult {
        do {
            guard let w = try whatIf(set: set, unset: key, label: label) else {
                return .info("no override of \(key ?? "") is in force" + (overrides.isEmpty ? "" : "; in force: " + overrides.joined(separator: ", ")))
            }
            return .whatIf(w)
        } catch {
            let d = error.items.first
            // The override's columns count from its own start; on the prompt it follows `set `.
            let offset = label.hasPrefix("set ") ? 4 : 0
            return .error(message: d?.message ?? "bad override", column: offset + (d?.location.column ?? 1), hint: d?.hint)
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

// MARK: - What-if

extension Session {
    /// Keeps the baseline (the written steps with no override) as far as the current step, while
    /// overrides are in force. Only steps the timeline changed are run again.
    fileprivate mutating func syncBaseline() {
        guard !timeline.overrides.isEmpty else { baseline = nil; return }
        var b = baseline ?? Timeline(machine: timeline.writtenMachine, steps: [], bootExpects: timeline.bootExpects,
                                     traces: files.traces, policy: .none)
        let need = timeline.current
        let k = b.sharedSteps(with: timeline, upTo: min(b.current, need))
        if k < b.current {
            b.go(to: k)
            b.dropFuture()
        }
        while b.current < need { b.insert(timeline.writtenStep(b.current)) }
        baseline = b
    }

    /// Whether step `n` ran differently under the overrides than as written: its outcome, its
    /// kernel events, its hazards or its device counters differ. Its notes describe the other run.
    func ranDifferently(_ n: Int) -> Bool {
        guard let b = baseline, n >= 1, n <= b.known.count, n <= timeline.known.count else { return false }
        let x = timeline.known[n - 1], y = b.known[n - 1]
        return x.outcome != y.outcome || x.events != y.events || x.hazards.count != y.hazards.count || x.deviceDeltas != y.deviceDeltas
    }

    /// Compare's side B: runs what `leader` (side A) runs, with A's overrides and then `vs`.
    mutating func follow(_ leader: Session, vs: [String]) throws(Diagnostics) {
        let before = (timeline.current, timeline.total, timeline.overrides, timeline.known.count)
        try timeline.follow(leader.timeline, overrides: Timeline.merge(leader.overrides, vs))
        pending = []
        moves = []
        baseline = nil
        let after = (timeline.current, timeline.total, timeline.overrides, timeline.known.count)
        if before != after { generation += 1 }
    }

    /// Re-runs from boot with `change` (an override to set, or a TARGET.KEY to unset), and says
    /// what it changed. Throws when the override does not fit the declarations.
    mutating func whatIf(set overrides: [String], unset key: String?, label: String) throws(Diagnostics) -> WhatIf? {
        let old = timeline
        if !overrides.isEmpty {
            try timeline.override(all: overrides)
            moves += overrides.map { .set($0) }
        } else if let key {
            guard try timeline.unset(key) else { return nil }
            moves.append(.unset(key))
        }
        syncBaseline()
        generation += 1
        var outcomes: [WhatIf.Outcomes] = []
        for i in 0..<min(old.current, timeline.current) where old.known[i].outcome != timeline.known[i].outcome {
            outcomes.append(WhatIf.Outcomes(step: i + 1, command: timeline.known[i].command,
                                            before: old.known[i].outcome.word, after: timeline.known[i].outcome.word))
        }
        return WhatIf(change: label, step: current, before: old.figures, after: timeline.figures, outcomes: outcomes,
                      failedBefore: old.failedExpectCount, failedAfter: timeline.failedExpectCount)
    }
}
