// One table of glyphs with a Unicode and an ASCII instance, chosen from the locale (or --ascii),
// as htop does. Every glyph is one column wide.

struct Glyphs: Sendable {
    // Process pages
    var untouched: Character
    var zero: Character
    var privatePage: Character
    var shared: Character
    var pinned: Character
    /// A pinned page that is also shared read-only after fork.
    var pinnedShared: Character
    var swapped: Character
    var huge: Character
    // Physical frames
    var free: Character
    var kernel: Character
    var ump: Character
    var dmabuf: Character
    var pageTable: Character
    var ioPageTable: Character
    var shmem: Character
    /// A page of the page cache of a regular file.
    var file: Character
    /// Frames in use per cell: a quarter, half, three quarters, all.
    var fill: [Character]
    /// Sparkline levels, lowest first.
    var spark: [Character]
    // Lines and marks
    var hline: Character
    var vline: Character
    var topLeft: Character
    var topRight: Character
    var bottomLeft: Character
    var bottomRight: Character
    var teeDown: Character
    var teeUp: Character
    var ellipsis: Character
    var arrow: String
    var playing: String
    var paused: String
    var dot: String
    var cursor: Character
    /// Where a scrolled list stands, in a column of its own at the pane's right edge (not a page
    /// glyph: ASCII's `#` is a private page).
    var thumb: Character
    var enter: String
    var space: String
    var arrows: String
    var times: String

    var isASCII: Bool { hline == "-" }

    static let unicode = Glyphs(
        untouched: "·", zero: "0", privatePage: "█", shared: "▒", pinned: "P", pinnedShared: "p", swapped: "S", huge: "H",
        free: "·", kernel: "K", ump: "U", dmabuf: "D", pageTable: "T", ioPageTable: "I", shmem: "s", file: "f",
        fill: ["░", "▒", "▓", "█"], spark: ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"],
        hline: "─", vline: "│", topLeft: "┌", topRight: "┐", bottomLeft: "└", bottomRight: "┘",
        teeDown: "┬", teeUp: "┴", ellipsis: "…", arrow: "→", playing: "▶ playing", paused: "❚❚ paused",
        dot: "·", cursor: "▸", thumb: "▐", enter: "⏎", space: "␣", arrows: "←↑↓→", times: "×")

    static let ascii = Glyphs(
        untouched: ".", zero: "0", privatePage: "#", shared: "%", pinned: "P", pinnedShared: "p", swapped: "S", huge: "H",
        free: ".", kernel: "K", ump: "U", dmabuf: "D", pageTable: "T", ioPageTable: "I", shmem: "s", file: "f",
        fill: ["-", "+", "*", "#"], spark: ["_", "_", ".", "-", "-", "=", "^", "#"],
        hline: "-", vline: "|", topLeft: "+", topRight: "+", bottomLeft: "+", bottomRight: "+",
        teeDown: "+", teeUp: "+", ellipsis: "~", arrow: "->", playing: "> playing", paused: "|| paused",
        dot: "-", cursor: ">", thumb: "=", enter: "Enter", space: "Spc", arrows: "arrows", times: "x")
}
