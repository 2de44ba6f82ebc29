// The screen manager, as htop's ScreenManager is: focus, overlays, the prompt, play state, and
// routing. Each pane is a panel that owns its cursor, zoom and scroll; a key goes to the focused
// panel, a click to the panel under it, and only the loop acts on what they return.

import Engine

enum Overlay: Equatable, Sendable {
    case help(scroll: Int)
    case inspector
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
    static let speeds: [Double] = [0.25, 0.5, 1, 2, 4, 8, 16]
    var speedIndex = 2
    var speed: Double { AppState.speeds[speedIndex] }
    /// Seconds between steps while playing.
    var playInterval: Double { 1.0 / speed }

    let cache = DerivedCache()

    init(session: Session, glyphs: Glyphs) {
        self.session = session
        self.glyphs = glyphs
    }

    var layout: ScreenLayout { ScreenLayout(width: width, height: height) }

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
        if case .resize = key { return .redraw }
        if editor != nil { return handleEditor(key) }
        if case let .mouse(m) = key { return handleMouse(m) }
        if layout.tooSmall {
            return KeyTable.action(for: key) == .quit ? .quit : .none
        }
        if let o = overlay {
            switch (o, KeyTable.action(for: key)) {
            case (.help(let s), .down?): overlay = .help(scroll: min(s + 1, Overlays.helpLines(glyphs).count))
            case (.help(let s), .up?): overlay = .help(scroll: max(0, s - 1))
            case (.help(let s), .pageDown?): overlay = .help(scroll: min(s + 10, Overlays.helpLines(glyphs).count))
            case (.help(let s), .pageUp?): overlay = .help(scroll: max(0, s - 10))
            case (_, .quit?): return .quit
            case (.inspector, .step?), (.inspector, .back?): return perform(KeyTable.action(for: key)!)
            default: overlay = nil
            }
            return .redraw
        }
        guard let action = KeyTable.action(for: key) else { return .none }
        return perform(action)
    }

    mutating func perform(_ action: Action) -> HandleResult {
        message = nil
        switch action {
        case .quit: return .quit
        case .step:
            if !session.stepForward() { message = "at the last step (\(session.total))" }
            log.scroll = 0
        case .back:
            if !session.stepBack() { message = "at the start: step 0, the machine as it booted" }
            log.scroll = 0
        case .playPause:
            playing.toggle()
            if playing && session.current >= session.total { session.go(to: 0) }
        case .faster: speedIndex = min(AppState.speeds.count - 1, speedIndex + 1)
        case .slower: speedIndex = max(0, speedIndex - 1)
        case .goTo: editor = LineEditor(.goTo)
        case .first: session.go(to: 0)
        case .last: session.go(to: session.total)
        case .nextPane, .prevPane:
            let all = Pane.allCases
            // Pane.allCases holds every pane, the focused one included.
            let i = all.firstIndex(of: focus)! + (action == .nextPane ? 1 : all.count - 1)
            setFocus(all[i % all.count])
        case .up, .down, .left, .right, .pageUp, .pageDown:
            return route(action, to: focus)
        case .zoomIn, .zoomOut:
            // Zooming with the log focused zooms the pages the selection is in.
            return route(action, to: focus == .log ? .process : focus)
        case .inspect: overlay = .inspector
        case .find: editor = LineEditor(.find)
        case .prompt: editor = LineEditor(.command)
        case .help: overlay = .help(scroll: 0)
        case .close: overlay = nil
        }
        return .redraw
    }

    /// Hands an action to a pane's panel and shows what it says.
    private mutating func route(_ action: Action, to pane: Pane) -> HandleResult {
        let ctx = context(pane)
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

    /// Called by the loop while playing: one step, pausing at the end.
    mutating func tick() -> HandleResult {
        guard playing else { return .none }
        if !session.stepForward() {
            playing = false
            message = "played to the end"
        }
        log.scroll = 0
        return .redraw
    }

    // MARK: Mouse

    /// A click selects what is under it in the pane it falls in (the panel hit-tests its own layout);
    /// the wheel scrolls that pane.
    private mutating func handleMouse(_ m: MouseEvent) -> HandleResult {
        guard !layout.tooSmall else { return .none }
        if overlay != nil {
            overlay = nil
            return .redraw
        }
        guard let pane = Pane.allCases.first(where: { layout.rect($0).contains(m.x, m.y) }) else { return .none }
        setFocus(pane)
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
            session.go(to: n)
            log.scroll = 0
            return nil
        case .find:
            return find(t)
        case .command:
            switch session.runPrompt(text) {
            case let .ran(record):
                log.scroll = 0
                message = "ran as step \(record.step): \(record.outcome.word)"
                return nil
            case let .info(s):
                message = s
                return nil
            case let .error(msg, column, hint):
                return LineEditor.Problem(message: msg, column: column, hint: hint)
            }
        }
    }

    /// Scrolls each pane so its cursor is on screen, moving as little as possible. Called before drawing.
    mutating func prepare() {
        guard !layout.tooSmall else { return }
        process.prepare(context(.process))
        physical.prepare(context(.physical))
        device.prepare(context(.device))
        log.prepare(context(.log))
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
