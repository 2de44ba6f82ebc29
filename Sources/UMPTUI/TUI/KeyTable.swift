// Every key in one table: the App loop dispatches through it, the help screen and the footer are
// built from it, so what the footer says is what the keys do.

enum Key: Hashable, Sendable {
    case char(Character)
    case up, down, left, right, home, end, pageUp, pageDown
    case enter, escape, tab, backTab, backspace, delete
    case f(Int)
    case resize
    case mouse(MouseEvent)
}

struct MouseEvent: Hashable, Sendable {
    enum Kind: Hashable, Sendable { case click, wheelUp, wheelDown }
    var kind: Kind
    var x: Int
    var y: Int
}

enum Action: Hashable, Sendable, CaseIterable {
    case step, back, playPause, faster, slower, goTo, first, last, prevTrouble, nextTrouble, record, compare, quiz
    case nextPane, prevPane, up, down, left, right, pageUp, pageDown, zoomIn, zoomOut
    case inspect, showStep, find, findNext, findPrev, prompt, help, quit, close
}

struct Binding: Sendable {
    var keys: [Key]
    /// How the help screen and the footer write the keys.
    var label: @Sendable (Glyphs) -> String
    /// The footer's word for it; nil keeps it off the footer.
    var footer: String?
    /// Lower numbers stay on a narrow footer longest.
    var priority: Int
    var help: String
    var action: Action
}

enum KeyTable {
    static let bindings: [Binding] = [
        Binding(keys: [.char(" ")], label: { $0.space }, footer: "step", priority: 0,
                help: "run the next step", action: .step),
        Binding(keys: [.char("n")], label: { _ in "n" }, footer: nil, priority: 9,
                help: "after a find, the next match (as in less and vim); otherwise run the next step", action: .findNext),
        Binding(keys: [.char("N")], label: { _ in "N" }, footer: nil, priority: 9,
                help: "after a find, the previous match (Esc ends the find)", action: .findPrev),
        Binding(keys: [.char("b"), .backspace], label: { $0.isASCII ? "b BkSp" : "b ⌫" }, footer: "back", priority: 1,
                help: "step back (undo the last step through the Timeline)", action: .back),
        Binding(keys: [.char("p")], label: { _ in "p" }, footer: "play", priority: 3,
                help: "play or pause", action: .playPause),
        Binding(keys: [.char("+"), .char("=")], label: { _ in "+" }, footer: nil, priority: 9,
                help: "play faster", action: .faster),
        Binding(keys: [.char("-")], label: { _ in "-" }, footer: nil, priority: 9,
                help: "play slower", action: .slower),
        Binding(keys: [.char("g")], label: { _ in "g" }, footer: "go to", priority: 8,
                help: "go to step N", action: .goTo),
        Binding(keys: [.home], label: { _ in "Home" }, footer: nil, priority: 9,
                help: "go to the start (step 0, the booted machine)", action: .first),
        Binding(keys: [.end], label: { _ in "End" }, footer: nil, priority: 9,
                help: "run every step to the end", action: .last),
        Binding(keys: [.char("[")], label: { _ in "[" }, footer: nil, priority: 9,
                help: "previous step that went wrong: a hazard, an errno, SIGSEGV, an IOMMU fault", action: .prevTrouble),
        Binding(keys: [.char("]")], label: { _ in "]" }, footer: nil, priority: 9,
                help: "next step that went wrong (steps not run yet are run to find it)", action: .nextTrouble),
        Binding(keys: [.char("R")], label: { _ in "R" }, footer: nil, priority: 9,
                help: "record the session as a scenario, or stop (umptui-YYYYMMDD-HHMMSS.ump)", action: .record),
        Binding(keys: [.char("c")], label: { _ in "c" }, footer: nil, priority: 9,
                help: "compare: fork a timeline with other settings, step both (c closes)", action: .compare),
        Binding(keys: [.char("Q")], label: { _ in "Q" }, footer: nil, priority: 9,
                help: "quiz mode: predict a step, then see the answer (Q again ends it)", action: .quiz),
        Binding(keys: [.tab], label: { _ in "Tab" }, footer: "pane", priority: 4,
                help: "focus the next pane", action: .nextPane),
        Binding(keys: [.backTab], label: { _ in "S-Tab" }, footer: nil, priority: 9,
                help: "focus the previous pane", action: .prevPane),
        Binding(keys: [.up, .char("k")], label: { $0.isASCII ? "Up k" : "↑ k" }, footer: nil, priority: 9,
                help: "move up", action: .up),
        Binding(keys: [.down, .char("j")], label: { $0.isASCII ? "Down j" : "↓ j" }, footer: nil, priority: 9,
                help: "move down", action: .down),
        Binding(keys: [.left, .char("h")], label: { $0.isASCII ? "Left h" : "← h" }, footer: nil, priority: 9,
                help: "move left (in DEVICE: the previous device's tab)", action: .left),
        Binding(keys: [.right, .char("l")], label: { $0.isASCII ? "Right l" : "→ l" }, footer: nil, priority: 9,
                help: "move right (in DEVICE: the next device's tab)", action: .right),
        Binding(keys: [.pageUp], label: { _ in "PgUp" }, footer: nil, priority: 9,
                help: "move up a page", action: .pageUp),
        Binding(keys: [.pageDown], label: { _ in "PgDn" }, footer: nil, priority: 9,
                help: "move down a page", action: .pageDown),
        Binding(keys: [.char("z")], label: { _ in "z" }, footer: "zoom", priority: 6,
                help: "zoom in: fewer pages or frames per cell", action: .zoomIn),
        Binding(keys: [.char("Z")], label: { _ in "Z" }, footer: nil, priority: 9,
                help: "zoom out: more pages or frames per cell", action: .zoomOut),
        Binding(keys: [.enter], label: { $0.enter }, footer: "inspect", priority: 5,
                help: "inspect the selection: PTE bits, refcount, mapcount, pins, owners, IOPTE size", action: .inspect),
        Binding(keys: [.char("s")], label: { _ in "s" }, footer: nil, priority: 9,
                help: "the current step whole: narration, hazards, notes (what the narration pane marks …more)", action: .showStep),
        Binding(keys: [.char("/")], label: { _ in "/" }, footer: "find", priority: 7,
                help: "find an address, a process or device, PROC.BUF, a buffer, pfn N or iova ADDR", action: .find),
        Binding(keys: [.char(":")], label: { _ in ":" }, footer: "command", priority: 2,
                help: "run a scenario line as the next step (Tab completes, Up/Down history)", action: .prompt),
        Binding(keys: [.char("?"), .f(1)], label: { _ in "? F1" }, footer: "help", priority: 1,
                help: "this help", action: .help),
        Binding(keys: [.char("q"), .f(10)], label: { _ in "q F10" }, footer: "quit", priority: 0,
                help: "quit (with an overlay open: close it); asks once when steps typed at the prompt are not saved", action: .quit),
        Binding(keys: [.escape], label: { _ in "Esc" }, footer: nil, priority: 9,
                help: "close an overlay or the prompt; end a find", action: .close),
    ]

    private static let byKey: [Key: Action] = {
        var m: [Key: Action] = [:]
        for b in bindings { for k in b.keys { m[k] = b.action } }
        return m
    }()

    static func action(for key: Key) -> Action? { byKey[key] }

    /// The footer: the keys that fit in `width`, most important first, shown in table order.
    static func footer(width: Int, glyphs g: Glyphs) -> [(key: String, word: String)] {
        var entries: [(Int, Int, String, String)] = []
        for (i, b) in bindings.enumerated() {
            guard let word = b.footer else { continue }
            let key = b.action == .up ? g.arrows : footerKey(b, g)
            entries.append((b.priority, i, key, word))
        }
        // The arrows and the speed keys stand where their first binding stands in the table.
        let index = { (a: Action) in bindings.firstIndex { $0.action == a } ?? bindings.count }
        entries.append((4, index(.up), g.arrows, "select"))
        entries.append((9, index(.faster), "+-", "speed"))
        entries.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        var chosen: [(Int, Int, String, String)] = []
        var used = 1
        for e in entries {
            let w = e.2.count + 1 + e.3.count + 2
            if used + w > width { continue }
            used += w
            chosen.append(e)
        }
        return chosen.sorted { $0.1 < $1.1 }.map { ($0.2, $0.3) }
    }

    private static func footerKey(_ b: Binding, _ g: Glyphs) -> String {
        switch b.action {
        case .step: g.space
        case .back: "b"
        case .help: "?"
        case .nextPane: "Tab"
        case .quit: "q"
        default: b.label(g)
        }
    }

    /// The help screen's lines: keys and what they do, then the mouse.
    static func helpLines(glyphs g: Glyphs) -> [(key: String, text: String)] {
        var out = bindings.map { ($0.label(g), $0.help) }
        out.append(("mouse", "click a page, frame or IOPTE to select it; the wheel scrolls (--no-mouse turns it off)"))
        out.append(("Ctrl-Z", "suspend; fg resumes"))
        return out
    }
}
