// A grid of cells with role-based styles: what every view draws into and every driver reads.
// Nothing here knows about ncurses; the text driver and the ncurses driver render the same Canvas.

/// Why a cell stands out, on top of its role. Themes turn marks into colour or bold/reverse/underline.
enum Mark: UInt8, Sendable {
    case none = 0
    /// The last step changed what this cell shows.
    case changed
    /// Cross-highlighting: maps or is mapped by the selection.
    case related
    /// The selection itself (the cursor of the focused pane).
    case selected
    /// Compare: this cell shows something else on the other side.
    case differs

    static let all: [Mark] = [.none, .changed, .related, .selected, .differs]
}

struct Cell: Equatable, Sendable {
    var char: Character
    var role: Role
    var mark: Mark

    static let blank = Cell(char: " ", role: .normal, mark: .none)
}

struct Rect: Equatable, Sendable {
    var x: Int, y: Int, width: Int, height: Int

    var maxX: Int { x + width }
    var maxY: Int { y + height }
    func contains(_ px: Int, _ py: Int) -> Bool { px >= x && px < maxX && py >= y && py < maxY }
    func inset(_ d: Int) -> Rect { Rect(x: x + d, y: y + d, width: max(0, width - 2 * d), height: max(0, height - 2 * d)) }
}

struct Canvas: Sendable {
    let width: Int
    let height: Int
    private(set) var cells: [Cell]
    /// The terminal cannot show more than ASCII (a non-UTF-8 locale, or --ascii): text written with
    /// `text` is transliterated one character for one, so layouts measured in characters still hold.
    var asciiOnly = false

    /// ASCII spellings that read where one character would not: `->` for an arrow, `>=`,
    /// `(exited)` for the dagger after a process that has gone.
    static func asciiText(_ s: String) -> String {
        guard !s.allSatisfy(\.isASCII) else { return s }
        var out = ""
        for ch in s {
            switch ch {
            case "→": out += "->"
            case "←": out += "<-"
            case "≥": out += ">="
            case "≤": out += "<="
            case "†": out += " (exited)"
            default: out.append(ch)
            }
        }
        return out
    }

    /// One ASCII character for each non-ASCII one the narration and the views use.
    static func ascii(_ ch: Character) -> Character {
        if ch.isASCII { return ch }
        switch ch {
        case "×": return "x"
        case "→", "▸", "≥": return ">"
        case "←", "≤": return "<"
        case "–", "—", "−", "─": return "-"
        case "µ": return "u"
        case "…", "·": return "."
        case "‘", "’": return "'"
        case "“", "”": return "\""
        case "│": return "|"
        default: return "?"
        }
    }

    init(width: Int, height: Int) {
        self.width = max(0, width)
        self.height = max(0, height)
        cells = Array(repeating: .blank, count: self.width * self.height)
    }

    subscript(x: Int, y: Int) -> Cell {
        get { cells[y * width + x] }
        set { cells[y * width + x] = newValue }
    }

    @inline(__always) mutating func put(_ x: Int, _ y: Int, _ ch: Character, _ role: Role, _ mark: Mark = .none) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        cells[y * width + x] = Cell(char: ch, role: role, mark: mark)
    }

    /// Writes `s` from (x, y), clipped to `limit` columns (and the canvas); returns the column after it.
    /// A string longer than the limit ends with `ellipsis`.
    @discardableResult
    mutating func text(_ x: Int, _ y: Int, _ s: String, _ role: Role, limit: Int? = nil, mark: Mark = .none,
                       ellipsis: Character? = nil) -> Int {
        guard y >= 0, y < height else { return x }
        let s = asciiOnly ? Canvas.asciiText(s) : s
        let end = min(width, limit.map { x + max(0, $0) } ?? width)
        var cx = x
        let count = ellipsis == nil ? 0 : s.count
        var i = 0
        for ch in s {
            if cx >= end { break }
            if let e = ellipsis, count > end - x, cx == end - 1 {
                put(cx, y, e, role, mark)
                cx += 1
                break
            }
            let c: Character = ch.isNewline || ch == "\t" ? " " : asciiOnly ? Canvas.ascii(ch) : ch
            if cx >= 0 { put(cx, y, c, role, mark) }
            cx += 1
            i += 1
        }
        return cx
    }

    mutating func fill(_ r: Rect, _ ch: Character = " ", _ role: Role, _ mark: Mark = .none) {
        for y in max(0, r.y)..<min(height, r.maxY) {
            for x in max(0, r.x)..<min(width, r.maxX) { self[x, y] = Cell(char: ch, role: role, mark: mark) }
        }
    }

    /// Sets the role of every cell in `r` (keeping characters): for bars and the focused title.
    mutating func paint(_ r: Rect, _ role: Role) {
        for y in max(0, r.y)..<min(height, r.maxY) {
            for x in max(0, r.x)..<min(width, r.maxX) { self[x, y].role = role }
        }
    }

    mutating func mark(_ r: Rect, _ mark: Mark) {
        for y in max(0, r.y)..<min(height, r.maxY) {
            for x in max(0, r.x)..<min(width, r.maxX) { self[x, y].mark = mark }
        }
    }

    /// A frame of box-drawing glyphs around `r`, with an optional title on the top edge.
    mutating func box(_ r: Rect, _ g: Glyphs, _ role: Role, title: String? = nil, titleRole: Role? = nil) {
        guard r.width >= 2, r.height >= 2 else { return }
        fill(r, " ", .overlayText)
        for x in r.x + 1..<r.maxX - 1 {
            put(x, r.y, g.hline, role)
            put(x, r.maxY - 1, g.hline, role)
        }
        for y in r.y + 1..<r.maxY - 1 {
            put(r.x, y, g.vline, role)
            put(r.maxX - 1, y, g.vline, role)
        }
        put(r.x, r.y, g.topLeft, role)
        put(r.maxX - 1, r.y, g.topRight, role)
        put(r.x, r.maxY - 1, g.bottomLeft, role)
        put(r.maxX - 1, r.maxY - 1, g.bottomRight, role)
        if let title {
            text(r.x + 2, r.y, " \(title) ", titleRole ?? role, limit: r.width - 4)
        }
    }

    /// The rows as plain text, trailing spaces kept (fixed width).
    var lines: [String] {
        (0..<height).map { y in String((0..<width).map { cells[y * width + $0].char }) }
    }
}
