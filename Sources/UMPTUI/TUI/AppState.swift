// The screen manager, as htop's ScreenManager is: focus, overlays, the prompt, play state, and
// routing. Each pane is a panel that owns its cursor, zoom and scroll; a key goes to the focused
// panel, a click to the panel under it, and only the loop acts on what they return.

import Engine

enum Overlay: Equatable {
    case help(scroll: Int)
    case inspector
    /// The current step whole (`s`): what the narration pane had to cut.
    case stepView
    /// What a `:set`, `:unset` or `:machine` changed.
    case whatIf(WhatIf, scroll: Int)
    /// Quiz mode: a question before the next step, waiting for a choice letter.
    case quiz(QuizQuestion)
    /// Quiz mode: how the last answer went.
    case quizReveal(QuizAnswer)
}

struct AppState {
    var session: Session
    var glyphs: Glyphs
    var width = 80
    var height = 24

    var focus: Pane = .process
    /// The data pane whose cursor is the selection (the log keeps the last one).
    var selectionPane: Pane = .process
    var process = ProcessPanel()
    var physical = PhysicalPanel()
    var device = DevicePanel()
    var log = LogPanel()

    var overlay: Overlay?
    var editor: LineEditor?
    var history: [String] = []
    /// A short message for the footer (e.g. "at the last step").
    var message: String?

    var playing = false
    /// `--play --exit`: quit when playing reaches the end.
    var exitAtEnd = false
    static let speeds: [Double] = [0.25, 0.5, 1, 2, 4, 8, 16]
    var speedIndex = 2
    var speed: Double { AppState.speeds[speedIndex] }
    /// Seconds between steps while playing, when the script gives no `wait`.
    var playInterval: Double { 1.0 / speed }
    /// Seconds until the next tick while playing: a `wait` line scaled by the speed, or playInterval.
    var playDelay: Double = 1
    /// How many cues of the next step playing has done (they run in order, `wait`s between them).
    var cuesDone = 0

    /// The session clock in seconds (the loop sets it before each key; the recorder paces by it).
    var clock: Double = 0
    var recorder: Recorder?
    /// Where recordings and `:w` go; nil: nowhere (R and :w say so).
    var output: (any SessionOutput)?

    var cache = DerivedCache()
    /// Compare mode: side B, following this session with more overrides.
    var compare: CompareState?
    /// Drawn as one side of compare: the panes only, under this label instead of the header.
    var sideLabel: String?
    /// Quiz mode (Q, `umptui quiz`): questions before steps, and the score.
    var quiz: QuizMode?
    /// How far the inspector is scrolled (its walk and frame lines outgrow 80x24).
    var inspectorScroll = 0
    /// Steps typed at the prompt since the last `:w` (a recording keeps them anyway).
    var unsavedPromptSteps = 0
    /// q was pressed once with unsaved prompt steps: the next q quits.
    var quitArmed = false
    /// The session generation the panes last followed (Follow.swift).
    var followedGeneration = -1
    /// Panes whose cursor the user (or a `select` line) put somewhere since the last step.
    var placed: Set<Pane> = []
    /// The selection whose relatives the other panes were last moved onto.
    var revealedSelection: Selection?
    /// The find `n` and `N` move through, until Esc ends it.
    var activeFind: ActiveFind?
    /// Makes the StepControl each step runs under: the TUI's shows progress and hears Esc (nil:
    /// steps run to the end, as in tests and headless).
    var makeStepControl: ((_ steps: [ScriptStep]) -> StepControl)?
    /// Whether the panes follow the step (compare's side B mirrors side A's cursors instead).
    var following = true

    init(session: Session, glyphs: Glyphs) {
        self.session = session
        self.glyphs = glyphs
    }

    var layout: ScreenLayout { ScreenLayout(width: width, height: height, panesOnly: sideLabel != nil) }

    /// The context a pane lays itself out in at the current size. The log's is its whole region.
    func context(_ pane: Pane) -> PanelContext {
        PanelContext(session: session, body: pane == .log ? layout.log : layout.body(pane), glyphs: glyphs, cache: cache)
    }

    /// What the selection is: the cursor cell of the last focused data pane.
    func selection() -> Selection? {
        let ctx = context(selectionPane)
        switch selectionPane {
        case .process, .log: return process.selection(ctx)
        case .physical: return physical.selection(ctx)
        case .device: return device.selection(ctx)
        }
    }

    // MARK: Keys

    mutating func handle(_ key: Key) -> HandleResult {
        let inspectorWasOpen = overlay == .inspector
        // The selection a step runs with is the one before it (a replay selects, then steps).
        let before = recorder == nil ? nil : selectionCue()
        let r = dispatch(key)
        syncCompare()
        if overlay == .inspector && !inspectorWasOpen {
            let cue = selectionCue()
            recorder?.inspect(selection: cue, now: clock)
        }
        recordMoves(selection: before)
        return r
    }

    /// Hands what the session did to the recorder, with the selection it was done on.
    mutating func recordMoves(selection: String?) {
        let moves = session.takeMoves()
        guard var rec = recorder else { return }
        rec.record(moves, selection: selection, now: clock)
        if let f = rec.failure {
            message = "recording stopped: cannot write \(rec.path): \(f)"
            rec.stop()
            recorder = nil
        } else {
            recorder = rec
        }
    }

    private mutating func dispatch(_ key: Key) -> HandleResult {
        if case .resize = key { return .redraw }
        // Quitting with unsaved prompt steps asks once; any other key takes the question back.
        let armed = quitArmed
        quitArmed = false
        if editor != nil { return handleEditor(key) }
        if case let .mouse(m) = key {
            // A question waits for its letter: a click must not move the timeline under it.
            if case .quiz? = overlay { return .none }
            return handleMouse(m)
        }
        if layout.tooSmall {
            return KeyTable.action(for: key) == .quit ? .quit : .none
        }
        if case let .quiz(q)? = overlay { return handleQuizKey(key, q) }
        if let o = overlay {
            switch (o, KeyTable.action(for: key)) {
            case (.help(let s), .down?): overlay = .help(scroll: min(s + 1, Overlays.helpRows(glyphs, width: width).count))
            case (.help(let s), .up?): overlay = .help(scroll: max(0, s - 1))
            case (.help(let s), .pageDown?): overlay = .help(scroll: min(s + 10, Overlays.helpRows(glyphs, width: width).count))
            case (.help(let s), .pageUp?): overlay = .help(scroll: max(0, s - 10))
            case (.whatIf(let w, let s), .down?): overlay = .whatIf(w, scroll: s + 1)
            case (.whatIf(let w, let s), .up?): overlay = .whatIf(w, scroll: max(0, s - 1))
            case (.whatIf(let w, let s), .pageDown?): overlay = .whatIf(w, scroll: s + 10)
            case (.whatIf(let w, let s), .pageUp?): overlay = .whatIf(w, scroll: max(0, s - 10))
            case (.inspector, .down?), (.stepView, .down?): inspectorScroll = min(inspectorScroll + 1, Inspector.maxScroll(self))
            case (.inspector, .up?), (.stepView, .up?): inspectorScroll = max(0, min(inspectorScroll, Inspector.maxScroll(self)) - 1)
            case (.inspector, .pageDown?), (.stepView, .pageDown?): inspectorScroll = min(inspectorScroll + 10, Inspector.maxScroll(self))
            case (.inspector, .pageUp?), (.stepView, .pageUp?): inspectorScroll = max(0, min(inspectorScroll, Inspector.maxScroll(self)) - 10)
            // q closes an overlay, as in htop, less and tig; it quits from the main screen.
            case (_, .quit?): overlay = nil
            case (.inspector, .step?), (.inspector, .back?), (.stepView, .step?), (.stepView, .back?):
                if let action = KeyTable.action(for: key) { return perform(action) }
            case (.whatIf, let action?) where action != .close, (.quizReveal, let action?) where action != .close:
                // The what-if panel and a quiz answer only inform: any other key closes them and does what it does.
                overlay = nil
                return perform(action)
            default: overlay = nil
            }
            return .redraw
        }
        guard let action = KeyTable.action(for: key) else { return .none }
        if action == .quit, !armed, unsavedPromptSteps > 0, recorder == nil {
            quitArmed = true
            message = "q again quits: \(plural(unsavedPromptSteps, "typed step")) not saved (:w FILE saves)"
            return .redraw
        }
        return perform(action)
    }

    mutating func perform(_ action: Action) -> HandleResult {
        message = nil
        switch action {
        case .quit: return .quit
        case .step:
            if askBeforeStep() { return .redraw }
            applyCues(waits: false)
            if !session.stepForward(control: stepControl()) {
                message = cancelMessage ?? "at the last step (\(session.total))"
            }
            afterStep()
        case .quiz:
            toggleQuiz()
        case .back:
            if !session.stepBack() { message = "at the start: step 0, the machine as it booted" }
            cuesDone = 0
            log.scroll = 0
        case .playPause:
            playing.toggle()
            if playing && session.current >= session.total { session.go(to: 0); cuesDone = 0 }
            if playing { playDelay = nextStepWaits ? 0 : playInterval }
        case .prevTrouble, .nextTrouble:
            jumpToTrouble(forward: action == .nextTrouble)
        case .record:
            toggleRecording()
        case .compare:
            if let c = compare {
                compare = nil
                message = "compare closed (B was \(c.vs.joined(separator: " ")))"
                recorder?.note("# compare closed")
            } else {
                editor = LineEditor(.compare)
            }
        case .faster: speedIndex = min(AppState.speeds.count - 1, speedIndex + 1)
        case .slower: speedIndex = max(0, speedIndex - 1)
        case .goTo: editor = LineEditor(.goTo)
        case .first: session.go(to: 0); cuesDone = 0
        case .last:
            session.go(to: session.total, control: stepControl())
            cuesDone = 0
            if let m = cancelMessage { message = m }
        case .nextPane, .prevPane:
            let all = Pane.allCases
            // Pane.allCases holds every pane, the focused one included.
            let i = (all.firstIndex(of: focus) ?? 0) + (action == .nextPane ? 1 : all.count - 1)
            setFocus(all[i % all.count])
        case .up, .down, .left, .right, .pageUp, .pageDown:
            if var cmp = compare, !CompareScreen.isFull(width: width, height: height), focus != .log {
                // The compact compare view scrolls its table.
                let d = [Action.up: -1, .down: 1, .pageUp: -10, .pageDown: 10][action] ?? 0
                cmp.scroll = max(0, cmp.scroll + d)
                compare = cmp
                return .redraw
            }
            return route(action, to: focus)
        case .zoomIn, .zoomOut:
            // Zooming with the log focused zooms the pages the selection is in.
            return route(action, to: focus == .log ? .process : focus)
        case .inspect:
            overlay = .inspector
            inspectorScroll = 0
        case .showStep:
            log.scroll = 0
            overlay = .stepView
            inspectorScroll = 0
        case .find: editor = LineEditor(.find)
        case .findNext, .findPrev:
            guard activeFind != nil else {
                // Without a find, n steps as it always has (N says why it does nothing).
                if action == .findNext { return perform(.step) }
                message = "N goes to the previous match after a find (/)"
                return .redraw
            }
            findAgain(forward: action == .findNext)
        case .prompt: editor = LineEditor(.command)
        case .help: overlay = .help(scroll: 0)
        case .close:
            if overlay == nil, let f = activeFind {
                activeFind = nil
                message = "find '\(f.query)' ended"
            }
            overlay = nil
        }
        return .redraw
    }

    /// A fresh control for the step about to run, if the loop gave a way to make one.
    func stepControl() -> StepControl? {
        guard let make = makeStepControl else { return nil }
        return make(session.timeline.steps)
    }

    /// What to say when the last move had a step cancelled (Esc during a long step).
    var cancelMessage: String? {
        session.cancelledStep.map { "step \($0) cancelled (Esc): nothing changed" }
    }

    /// Hands an action to a pane's panel and shows what it says.
    private mutating func route(_ action: Action, to pane: Pane) -> HandleResult {
        let ctx = context(pane)
        if action != .zoomIn && action != .zoomOut { place(pane) }
        let r: HandleResult
        switch pane {
        case .process: r = process.handle(action, ctx)
        case .physical: r = physical.handle(action, ctx)
        case .device: r = device.handle(action, ctx)
        case .log: r = log.handle(action, ctx)
        }
        if let m = r.message { message = m }
        return r
    }

    mutating func setFocus(_ pane: Pane) {
        focus = pane
        if pane != .log { selectionPane = pane }
    }

    /// Called by the loop while playing, `playDelay` after the last tick: the next step's cues in
    /// order (a `wait` sets the delay before the next tick), then the step; at the end, pauses (or
    /// quits, with --play --exit).
    mutating func tick() -> HandleResult {
        guard playing else { return .none }
        let before = recorder == nil ? nil : selectionCue()
        defer {
            syncCompare()
            recordMoves(selection: before)
        }
        if applyCues(waits: true) { return .redraw }
        if askBeforeStep() { return .redraw }
        if !session.stepForward(control: stepControl()) {
            playing = false
            if let m = cancelMessage {
                // The header shows playing has paused.
                message = m
                return .redraw
            }
            message = "played to the end"
            return exitAtEnd ? .quit : .redraw
        }
        afterStep()
        playDelay = nextStepWaits ? 0 : playInterval
        return .redraw
    }

    /// Whether the next step's cues pace it with `wait` lines.
    private var nextStepWaits: Bool {
        cues.contains { if case .wait = $0.kind { true } else { false } }
    }

    /// The cues before the next step (or those after the last one).
    private var cues: [Statement] {
        session.nextItem?.step.cues ?? (session.current > 0 ? session.trailingCues : [])
    }

    /// Does the next step's cues not done yet. With `waits`, stops after a `wait` (setting the
    /// delay) and returns true; without, skips the waits.
    @discardableResult
    mutating func applyCues(waits: Bool) -> Bool {
        let list = cues
        while cuesDone < list.count {
            let cue = list[cuesDone]
            cuesDone += 1
            if case let .wait(ms) = cue.kind {
                if waits { playDelay = ms / 1000 / speed; return true }
                continue
            }
            apply(cue: cue)
        }
        return false
    }

    mutating func afterStep() {
        cuesDone = 0
        log.scroll = 0
    }

    /// Points at what a `select` line names, or opens the inspector for `inspect`.
    mutating func apply(cue: Statement) {
        switch cue.kind {
        case .inspect:
            overlay = .inspector
            inspectorScroll = 0
        case let .select(target):
            _ = select(target)
        default:
            break
        }
    }

    /// Moves the cursor of the pane that shows `target` there; false when nothing shows it now.
    mutating func select(_ target: SelectTarget) -> Bool {
        let state = session.state
        defer { place(selectionPane) }
        switch target {
        case let .page(ref, index):
            guard let p = state.processIndex(named: ref.process),
                  let b = state.processes[p].meta.buffer(named: ref.buffer),
                  index < (b.endPage - b.firstPage) >> pageShift else { return false }
            process.cursor = (p, (b.firstPage >> pageShift) + index)
            setFocus(.process)
        case let .pfn(n):
            guard n < UInt64(state.phys.frameCount) else { return false }
            physical.cursor = Int(n)
            setFocus(.physical)
        case let .iova(name, a):
            guard let d = state.deviceIndex(named: name),
                  let i = cache.ioptes(session, device: d).firstIndex(where: { a >= $0.iova && a < $0.iova + $0.size }) else { return false }
            device.show(device: d, index: i)
            setFocus(.device)
        }
        return true
    }

    /// The selection as a `select` line, for the recorder; nil when it has no name in the language.
    func selectionCue() -> String? {
        let state = session.state
        switch selectionPane {
        case .process, .log:
            guard let c = process.cursor, let proc = state.processes[safe: c.proc] else { return nil }
            let va = c.vpn << pageShift
            guard let b = proc.meta.buffers.first(where: { va >= $0.firstPage && va < $0.endPage }) else { return nil }
            return SelectTarget.page(BufferRef(process: proc.meta.name, buffer: b.name), index: (va - b.firstPage) >> pageShift).text
        case .physical:
            return SelectTarget.pfn(UInt64(physical.cursor)).text
        case .device:
            let c = device.cursor
            guard let dev = state.devices[safe: c.device],
                  let e = cache.ioptes(session, device: c.device)[safe: c.index] else { return nil }
            return SelectTarget.iova(device: dev.name, e.iova).text
        }
    }

    /// `[` and `]`: the previous or next step that went wrong (a hazard, an errno, a signal, OOM,
    /// an IOMMU fault). Forward, steps not run yet are run to find out; with none, nothing moves.
    private mutating func jumpToTrouble(forward: Bool) {
        let here = session.current
        if !forward {
            guard let n = cache.troubleSteps(session).last(where: { $0 < here }) else {
                message = "no step before \(here) raised a hazard or a fault"
                return
            }
            session.go(to: n, control: stepControl())
        } else if let n = cache.troubleSteps(session).first(where: { $0 > here }) {
            session.go(to: n, control: stepControl())
        } else {
            // Run on until a step goes wrong; come back when none does.
            var found = false
            while session.stepForward(control: stepControl()) {
                if session.lastRecord?.wentWrong == true { found = true; break }
            }
            if let m = cancelMessage {
                // Esc stopped the search: it stays where it got to.
                cuesDone = 0
                message = m
                return
            }
            if !found {
                session.go(to: here)
                message = "no step after \(here) raises a hazard or a fault"
                return
            }
        }
        cuesDone = 0
        log.scroll = 0
        if let m = cancelMessage {
            message = m
        } else if let r = session.lastRecord {
            message = "step \(r.step): " + (r.hazards.isEmpty ? r.outcome.word : "hazard")
        }
    }

    /// `R`: starts or stops recording.
    private mutating func toggleRecording() {
        if var rec = recorder {
            rec.stop()
            recorder = nil
            message = "recording stopped: \(rec.path), \(plural(rec.lines, "line"))"
            return
        }
        guard let output else {
            message = "nowhere to record to"
            return
        }
        do {
            let (path, sink) = try output.openRecording(path: nil, force: false)
            let compareLine = compare.map { ["# compare --vs " + $0.vs.joined(separator: " ")] } ?? []
            recorder = Recorder(path: path, sink: sink, header: output.header(kind: "recording", base: session.fileName) + compareLine,
                                session: session, now: clock)
            message = "recording to \(path) (R stops)"
        } catch {
            message = "cannot record: \(error)"
        }
    }

    // MARK: Mouse

    /// A click selects what is under it in the pane it falls in (the panel hit-tests its own layout);
    /// the wheel scrolls that pane.
    private mutating func handleMouse(_ m: MouseEvent) -> HandleResult {
        guard !layout.tooSmall, compare == nil else { return .none }
        if overlay != nil {
            overlay = nil
            return .redraw
        }
        guard let pane = Pane.allCases.first(where: { layout.rect($0).contains(m.x, m.y) }) else { return .none }
        setFocus(pane)
        place(pane)
        switch m.kind {
        case .wheelUp, .wheelDown:
            for _ in 0..<3 { _ = route(m.kind == .wheelUp ? .up : .down, to: pane) }
            return .redraw
        case .click:
            let ctx = context(pane)
            switch pane {
            case .process: return process.click(x: m.x, y: m.y, ctx)
            case .physical: return physical.click(x: m.x, y: m.y, ctx)
            case .device: return device.click(x: m.x, y: m.y, ctx)
            case .log: return log.click(x: m.x, y: m.y, ctx)
            }
        }
    }

    // MARK: The line editor

    private mutating func handleEditor(_ key: Key) -> HandleResult {
        guard var e = editor else { return .none }
        switch key {
        case let .char(c): e.insert(c)
        case .backspace:
            if e.text.isEmpty { editor = nil; return .redraw }
            e.backspace()
        case .delete: e.delete()
        case .left: e.left()
        case .right: e.right()
        case .home: e.home()
        case .end: e.end()
        case .up: e.browse(history, older: true)
        case .down: e.browse(history, older: false)
        case .escape:
            editor = nil
            return .redraw
        case .tab:
            if e.purpose == .command {
                let state = session.state
                e.complete { words, partial in Completion.candidates(words: words, partial: partial, state: state) }
            }
        case .enter:
            editor = nil
            let text = e.text
            if !text.trimmingCharacters(in: .whitespaces).isEmpty && history.last != text { history.append(text) }
            if let problem = submit(e.purpose, text) {
                e.problem = problem
                e.choices = []
                editor = e
            }
            return .redraw
        case .mouse, .resize, .f, .backTab, .pageUp, .pageDown: return .redraw
        }
        editor = e
        return .redraw
    }

    /// Runs what the editor holds; a Problem keeps the editor open with the line as typed.
    private mutating func submit(_ purpose: LineEditor.Purpose, _ text: String) -> LineEditor.Problem? {
        let t = text.trimmingCharacters(in: .whitespaces)
        switch purpose {
        case .goTo:
            guard let n = Int(t), n >= 0 else {
                return LineEditor.Problem(message: "a step number from 0 to \(session.total)", column: 1, hint: nil)
            }
            session.go(to: n, control: stepControl())
            log.scroll = 0
            if let m = cancelMessage { message = m }
            return nil
        case .find:
            return find(t)
        case .compare:
            let vs = t.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            if let bad = vs.first(where: { !$0.contains("=") || !$0.contains(".") }) {
                return LineEditor.Problem(message: "expected TARGET.KEY=VALUE, got '\(bad)'", column: 1, hint: "e.g. nic.iotlb=16 or machine.thp=always")
            }
            if let problem = startCompare(vs: vs) {
                return LineEditor.Problem(message: problem, column: nil, hint: "e.g. nic.iotlb=16 or machine.thp=always")
            }
            message = "compare: B is A with \(vs.joined(separator: " ")); c closes it"
            return nil
        case .command:
            if let problem = write(t) { return problem.column == 0 ? nil : problem }
            switch session.runPrompt(text) {
            case let .ran(record, dropped):
                afterStep()
                unsavedPromptSteps += 1
                message = "ran as step \(record.step): \(record.outcome.word)"
                    + (dropped > 0 ? "; dropped \(plural(dropped, "step")) stepped back over" : "")
                return nil
            case let .info(s):
                cuesDone = 0
                message = s
                return nil
            case let .whatIf(w):
                cuesDone = 0
                overlay = .whatIf(w, scroll: 0)
                let n = w.differences.count
                message = "re-ran \(plural(w.step, "step")) from boot: " + (n == 0 ? "no headline figure changed" : "\(plural(n, "figure")) changed")
                return nil
            case let .cue(st):
                if case let .select(target) = st.kind, !select(target) {
                    return LineEditor.Problem(message: "nothing shows \(st.text.dropFirst(7)) now", column: 8, hint: nil)
                }
                apply(cue: st)
                return nil
            case let .error(msg, column, hint):
                return LineEditor.Problem(message: msg, column: column, hint: hint)
            }
        }
    }

    /// `:w FILE` and `:w! FILE`: saves the effective script. Returns nil when the line is not a
    /// `w` command; a Problem with column 0 when it was handled (the message says how it went).
    private mutating func write(_ t: String) -> LineEditor.Problem? {
        let words = t.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard let first = words.first, first == "w" || first == "w!" else { return nil }
        guard words.count == 2 else {
            return LineEditor.Problem(message: "\(first) needs a file name", column: first.count + 2, hint: "e.g. :w lecture.ump (:w! overwrites)")
        }
        guard let output else {
            return LineEditor.Problem(message: "this session cannot write files", column: 1, hint: nil)
        }
        let text = session.effectiveScript(header: output.header(kind: "script", base: session.fileName))
        do {
            try output.save(text, to: words[1], overwrite: first == "w!")
        } catch {
            return LineEditor.Problem(message: "\(error)", column: 4, hint: first == "w" ? ":w! FILE overwrites" : nil)
        }
        message = "wrote \(words[1]): \(plural(session.current, "step")); umptui run \(words[1]) reproduces this state"
        unsavedPromptSteps = 0
        return LineEditor.Problem(message: "", column: 0, hint: nil)
    }

    /// Scrolls each pane so its cursor is on screen, moving as little as possible. Called before drawing.
    mutating func prepare() {
        guard !layout.tooSmall else { return }
        if following { follow() }
        process.prepare(context(.process))
        physical.prepare(context(.physical))
        device.prepare(context(.device))
        log.prepare(context(.log))
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
