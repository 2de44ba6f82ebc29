// Panes as panels, as htop's are: each owns its cursor, zoom and scroll, handles the actions meant
// for it, hit-tests its own clicks and draws its region of the Canvas from values. A panel returns
// what it wants done (HandleResult); AppState routes keys to it and acts on the result. A panel
// reads its session through a context, so the same panels can draw two sessions side by side.

import Engine

/// What handling a key or a click asks the loop to do.
struct HandleResult: Equatable, Sendable {
    var redraw = false
    var quit = false
    /// A line for the footer.
    var message: String?

    static let none = HandleResult()
    static let redraw = HandleResult(redraw: true)
    static let quit = HandleResult(quit: true)
    static func say(_ message: String) -> HandleResult { HandleResult(redraw: true, message: message) }
}

/// What a panel lays itself out from: one session's state (read once per frame), the region below
/// its title row, and the memo of what the state implies.
struct PanelContext {
    let session: Session
    let state: EngineState
    let body: Rect
    let glyphs: Glyphs
    let cache: DerivedCache

    init(session: Session, body: Rect, glyphs: Glyphs, cache: DerivedCache) {
        self.session = session
        state = session.state
        self.body = body
        self.glyphs = glyphs
        self.cache = cache
    }
}

/// What a panel reads while drawing: its layout context plus the marks of this frame.
struct DrawContext {
    let panel: PanelContext
    let changes: ChangeIndex
    let highlight: Highlight
    /// This pane holds the selection: its cursor is drawn.
    let showsCursor: Bool
    let focused: Bool

    var session: Session { panel.session }
    var state: EngineState { panel.state }
    var glyphs: Glyphs { panel.glyphs }
    var body: Rect { panel.body }

    /// The mark of a cell: selected beats related beats changed.
    @inline(__always) func mark(selected: Bool, related: Bool, changed: Bool) -> Mark {
        selected ? .selected : related ? .related : changed ? .changed : .none
    }
}

protocol Panel {
    /// What the pane's title says after its name.
    func titleDetail(_ ctx: PanelContext) -> String
    /// The cursor's cell, as what is selected.
    func selection(_ ctx: PanelContext) -> Selection?
    /// Up, down, left, right and a page either way: the cursor (or the scroll) moves.
    mutating func move(_ action: Action, _ ctx: PanelContext)
    /// More or fewer pages or frames per cell.
    mutating func zoom(in: Bool, _ ctx: PanelContext) -> HandleResult
    /// A click at a screen position inside the pane's body: moves the cursor there.
    mutating func click(x: Int, y: Int, _ ctx: PanelContext) -> HandleResult
    /// Scrolls so the cursor is on screen; called before drawing.
    mutating func prepare(_ ctx: PanelContext)
    func draw(_ ctx: DrawContext, _ c: inout Canvas)
}

extension Panel {
    /// What a panel does with an action routed to it: moves or zooms.
    mutating func handle(_ action: Action, _ ctx: PanelContext) -> HandleResult {
        switch action {
        case .zoomIn, .zoomOut: return zoom(in: action == .zoomIn, ctx)
        case .up, .down, .left, .right, .pageUp, .pageDown: move(action, ctx)
        default: break
        }
        return .redraw
    }
}

/// The scroll offset that shows `row` moving as little as possible, with `context` rows around it.
func scrollToShow(_ current: Int, row: Int, rows: Int, total: Int, context: Int) -> Int {
    guard rows > 0 else { return 0 }
    var s = current
    if row < s + context { s = row - context }
    if row >= s + rows - context { s = row - rows + 1 + context }
    return max(0, min(s, max(0, total - rows)))
}

/// A list's scroll bar: a column of its own at the right edge of a pane's rows, never over text.
/// The thumb's length is the share of the list on screen, its place where the screen stands.
enum ScrollBar {
    /// The columns text may use: all of them, less the bar's when the list is longer than the rows.
    static func textWidth(_ r: Rect, total: Int) -> Int { total > r.height ? r.width - 1 : r.width }

    static func draw(_ c: inout Canvas, _ r: Rect, scroll: Int, total: Int, _ g: Glyphs) {
        guard total > r.height, r.height > 0 else { return }
        let length = max(1, r.height * r.height / total)
        let top = min(r.height - length, scroll * (r.height - length) / max(1, total - r.height))
        for i in 0..<length { c.put(r.maxX - 1, r.y + top + i, g.thumb, .dim) }
    }
}
