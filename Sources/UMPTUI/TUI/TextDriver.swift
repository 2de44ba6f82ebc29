// Renders a Canvas as plain text, for snapshot tests and for export: the screen as a person reads
// it, and a second layer with the marks (s selected, r related, c changed) that colour would show.

enum TextDriver {
    static func text(_ c: Canvas) -> String {
        c.lines.map { trimRight($0) }.joined(separator: "\n") + "\n"
    }

    static func marks(_ c: Canvas) -> String {
        var rows: [String] = []
        for y in 0..<c.height {
            var s = ""
            for x in 0..<c.width {
                switch c[x, y].mark {
                case .none: s.append(" ")
                case .changed: s.append("c")
                case .related: s.append("r")
                case .selected: s.append("s")
                case .differs: s.append("d")
                }
            }
            rows.append(trimRight(s))
        }
        while rows.last?.isEmpty == true { rows.removeLast() }
        return rows.joined(separator: "\n") + "\n"
    }

    /// Both layers, as a snapshot file holds them.
    static func snapshot(_ c: Canvas) -> String {
        text(c) + "--- marks: s selected, r related, c changed, d differs ---\n" + marks(c)
    }

    private static func trimRight(_ s: String) -> String {
        var s = s
        while s.last == " " { s.removeLast() }
        return s
    }
}
