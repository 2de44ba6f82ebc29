// The recorder: an append-only log of a session in the scenario language. Each line is handed to
// the sink as it happens (the file sink writes and flushes it at once), so killing the program
// loses at most the line being written, and replaying the file does what the user did: the steps
// with their notes and expects, the typed lines, `back` for each step back, `set` for each
// override, `select` and `inspect` for what the user pointed at, `wait` for the user's pacing.

import Engine

/// Where recorded lines go. `write` gets one whole line without its newline.
protocol RecordingSink: AnyObject {
    func write(_ line: String) throws
    func close()
}

/// The files the TUI writes: recordings (`R`, `--record`) and saved scripts (`:w`). The command
/// line gives real files; tests give memory.
protocol SessionOutput {
    /// Opens a new recording; `path` nil picks the default name (umptui-YYYYMMDD-HHMMSS.ump).
    /// Refuses an existing file unless `force`. Returns the path opened and its sink.
    func openRecording(path: String?, force: Bool) throws -> (path: String, sink: any RecordingSink)
    /// Writes a whole file; refuses an existing one unless `overwrite`.
    func save(_ text: String, to path: String, overwrite: Bool) throws
    /// The header comment lines for a recording or a saved script of `base`.
    func header(kind: String, base: String) -> [String]
}

/// Why a file could not be written: shown in the footer (or on stderr before the TUI starts).
struct OutputError: Error, CustomStringConvertible {
    var description: String
}

struct Recorder {
    let path: String
    private let sink: any RecordingSink
    /// The last `select` line written (only a change is written again).
    private var lastSelect: String?
    /// When the last line was written, in the session clock's seconds.
    private var lastTime: Double
    private(set) var lines = 0
    /// Overrides in force at the start whose target is not declared yet: written after its declaration.
    private var pendingSets: [String] = []
    /// Set when a write failed: the recorder stops and says why.
    private(set) var failure: String?

    /// Pauses shorter than this are not written (key repeat, a jump's own steps).
    static let minimumWait = 0.1

    /// Starts a recording: the header, the machine line, then the steps already run, unpaced.
    init(path: String, sink: any RecordingSink, header: [String], session: Session, now: Double) {
        self.path = path
        self.sink = sink
        lastTime = now
        for line in header { emit(line) }
        // The steps as written, and each override in force as a `set` line as soon as what it
        // names is declared, so that a replay can `unset` it as the session did.
        if let m = session.timeline.writtenMachine { emit(m.text) }
        pendingSets = session.overrides
        emitSets(for: "machine")
        for i in 0..<session.current { emitStep(session.timeline.writtenStep(i)) }
    }

    var active: Bool { failure == nil }

    /// Writes what the session did since the last call, after a `wait` for the time that passed
    /// and a `select` when the selection changed.
    mutating func record(_ moves: [SessionMove], selection: String?, now: Double) {
        guard !moves.isEmpty else { return }
        pace(now)
        pointAt(selection)
        for move in moves {
            switch move {
            case let .ran(step): emitStep(step)
            case .back: emit("back")
            case let .set(text): emit("set " + text)
            case let .unset(key): emit("unset " + key)
            }
        }
    }

    private mutating func emitStep(_ step: ScriptStep) {
        // One write for the notes, the quiz, the statement and its expects: a kill cannot leave a
        // quiz or a note without the step it belongs to.
        emit(lines: ScriptText.lines(of: step, withCues: false))
        switch step.statement.kind {
        case let .process(d): emitSets(for: d.name)
        case let .device(d): emitSets(for: d.name)
        default: break
        }
    }

    /// The overrides in force when recording began that name `target`, as `set` lines.
    private mutating func emitSets(for target: String) {
        let mine = pendingSets.filter { $0.hasPrefix(target + ".") }
        pendingSets.removeAll { $0.hasPrefix(target + ".") }
        for o in mine { emit("set " + o) }
    }

    /// A comment line (compare's `# compare --vs ...`).
    mutating func note(_ comment: String) { emit(comment) }

    /// The inspector opened on `selection`.
    mutating func inspect(selection: String?, now: Double) {
        pace(now)
        pointAt(selection)
        emit("inspect")
    }

    mutating func stop() { sink.close() }

    private mutating func pace(_ now: Double) {
        let gap = now - lastTime
        if gap >= Recorder.minimumWait { emit(ScriptText.wait(ms: gap * 1000)) }
        lastTime = now
    }

    private mutating func pointAt(_ selection: String?) {
        guard let selection, selection != lastSelect else { return }
        emit(selection)
        lastSelect = selection
    }

    private mutating func emit(_ line: String) { emit(lines: [line]) }

    /// Writes lines in one piece (the sink adds the last newline).
    private mutating func emit(lines block: [String]) {
        guard failure == nil, !block.isEmpty else { return }
        do {
            try sink.write(block.joined(separator: "\n"))
            lines += block.count
        } catch {
            failure = "\(error)"
        }
    }
}

/// A sink that keeps lines in memory (tests, and the export of a live session).
final class MemorySink: RecordingSink {
    private(set) var lines: [String] = []
    private(set) var closed = false
    func write(_ line: String) throws { lines += line.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
    func close() { closed = true }
    var text: String { lines.map { $0 + "\n" }.joined() }
}
