// Drawn on top of the screen: the help (built from the key table and the glyph tables) and the
// line editor for `:`, `/` and `g`, with an error under the line and a caret at its column.

import Engine

enum Overlays {
    static func helpLines(_ g: Glyphs) -> [(String, String, Role)] {
        var out: [(String, String, Role)] = [("", "Keys", .section)]
        for (key, text) in KeyTable.helpLines(glyphs: g) { out.append((key, text, .normal)) }
        out.append(("", "", .normal))
        out.append(("", "PROCESS: a glyph per page (or the commonest among a cell's pages)", .section))
        for k in PageKind.allCases { out.append((String(k.glyph(g)), k.name, k.role)) }
        out.append(("", "", .normal))
        out.append(("", "PHYSICAL: a glyph per frame, or per cell of frames", .section))
        out.append((String(g.free), "free", .frameFree))
        out.append((String(g.fill[3]), "process memory, coloured by owner; \(String(g.fill)) how full a cell is", .owner0))
        out.append((String(g.zero), "the shared zero page (and the huge zero folio)", .frameZero))
        out.append((String(g.pinned), "pinned (FOLL_PIN: pin_user_pages)", .framePinned))
        out.append((String(g.kernel), "kernel (boot image, memmap)", .frameKernel))
        out.append((String(g.ump), "UMP buffer", .frameUMP))
        out.append((String(g.dmabuf), "dma-buf", .frameDmabuf))
        out.append((String(g.pageTable), "CPU page-table page", .frameTable))
        out.append((String(g.ioPageTable), "IOMMU page-table page", .frameTable))
        out.append(("", "", .normal))
        out.append(("", "Marks", .section))
        out.append(("select", "the cursor of the focused pane (reverse, bold)", .normal))
        out.append(("related", "maps or is mapped by the selection: its frame, every page and IOVA over it (a blue ground; reverse without colour)", .normal))
        out.append(("changed", "changed by the last step (a grey ground; underlined without colour)", .normal))
        return out
    }

    /// The help box's width on a screen `width` columns wide.
    static func helpWidth(_ width: Int) -> Int { min(width - 4, 96) }

    /// The help as rows of the box: a long text wraps under its own column, never cut.
    static func helpRows(_ g: Glyphs, width: Int) -> [(String, String, Role)] {
        let w = helpWidth(width)
        var out: [(String, String, Role)] = []
        for (key, text, role) in helpLines(g) {
            let room = key.isEmpty ? w - 4 : w - 15
            let wrapped = text.isEmpty ? [""] : wrapText(text, width: max(10, room))
            for (i, line) in wrapped.enumerated() { out.append((i == 0 ? key : "", line, key.isEmpty || i == 0 ? role : .overlayText)) }
        }
        return out
    }

    static func drawHelp(_ g: Glyphs, scroll: Int, _ c: inout Canvas) {
        let lines = helpRows(g, width: c.width)
        let w = helpWidth(c.width)
        let h = min(c.height - 2, lines.count + 2)
        let r = Rect(x: (c.width - w) / 2, y: (c.height - h) / 2, width: w, height: h)
        c.box(r, g, .overlayBorder, title: "HELP  (q or Esc closes, \(g.isASCII ? "Up/Down" : "↑↓") scroll)", titleRole: .overlayTitle)
        let rows = h - 2
        let start = min(scroll, max(0, lines.count - rows))
        for (i, (key, text, role)) in lines[start..<min(lines.count, start + rows)].enumerated() {
            let y = r.y + 1 + i
            if key.isEmpty && role != .overlayText {
                c.text(r.x + 2, y, text, role, limit: w - 4)
            } else {
                if !key.isEmpty { c.text(r.x + 2, y, key, role == .normal ? .label : role, limit: 10) }
                c.text(r.x + 13, y, text, .overlayText, limit: w - 15)
            }
        }
    }

    /// A long step at work: what runs, how far it got, and that Esc cancels it.
    static func drawProgress(_ g: Glyphs, title: String, _ p: StepProgress, seconds: Double, _ c: inout Canvas) {
        let w = min(c.width - 4, 72)
        let r = Rect(x: (c.width - w) / 2, y: max(0, c.height / 2 - 2), width: w, height: 5)
        c.box(r, g, .overlayBorder, title: title, titleRole: .overlayTitle)
        let barWidth = w - 14
        var line: String
        if p.total > 0 {
            let share = min(1, Double(p.done) / Double(p.total))
            let filled = Int(share * Double(barWidth))
            let bar = String(repeating: g.isASCII ? "#" : "█", count: filled) + String(repeating: g.isASCII ? "." : "░", count: barWidth - filled)
            c.text(r.x + 2, r.y + 1, bar, .label)
            c.text(r.x + 3 + barWidth, r.y + 1, percentText(share * 100) + "%", .overlayText)
            line = "\(p.done) of \(p.total) \(p.unit.rawValue)"
        } else {
            line = "\(p.done) \(p.unit.rawValue) so far"
        }
        line += " \(g.dot) \(oneDecimal(seconds)) s"
        c.text(r.x + 2, r.y + 2, line, .overlayText, limit: w - 4)
        c.text(r.x + 2, r.y + 3, "Esc cancels: the state goes back to before the step", .dim, limit: w - 4)
    }

    static func drawEditor(_ g: Glyphs, _ e: LineEditor, _ c: inout Canvas) {
        let y = c.height - 1
        var rows: [(String, Role)] = []
        if let p = e.problem {
            rows.append(("error: " + p.message, .error))
            if let hint = p.hint {
                // Up to four rows of hint; one that runs longer says so at the end of the fourth.
                var lines = wrapText("hint: " + hint, width: c.width - 2)
                if lines.count > 4 {
                    lines = Array(lines.prefix(4))
                    lines[3] = String(lines[3].prefix(c.width - 3)) + String(g.ellipsis)
                }
                rows += lines.map { ($0, .dim) }
            }
        } else if !e.choices.isEmpty {
            rows += wrapText(e.choices.joined(separator: "  "), width: c.width - 2).prefix(3).map { ($0, .label) }
        } else if e.purpose == .command {
            rows.append(("a scenario line, e.g. app write buf 0 64K \(g.dot) Tab completes \(g.dot) \(g.isASCII ? "Up/Down" : "↑↓") history \(g.dot) Esc cancels", .dim))
        }
        let caretRow = e.problem?.column != nil ? 1 : 0
        let top = y - rows.count - caretRow
        c.fill(Rect(x: 0, y: top - 1, width: c.width, height: rows.count + caretRow + 2), " ", .overlayText)
        c.fill(Rect(x: 0, y: top - 1, width: c.width, height: 1), g.hline, .overlayBorder)
        for (i, (text, role)) in rows.enumerated() { c.text(1, top + i, text, role, limit: c.width - 2) }
        let inputY = y - caretRow
        let label = e.promptLabel
        var x = c.text(0, inputY, label, .prompt)
        // Keep the cursor on screen for long lines.
        let room = c.width - x - 1
        let skip = max(0, e.cursor - room + 1)
        let visible = String(e.text.dropFirst(skip))
        x = c.text(x, inputY, visible, .prompt, limit: room)
        let cx = label.count + e.cursor - skip
        c.put(cx, inputY, cx - label.count < visible.count ? Array(visible)[cx - label.count] : " ", .prompt, .selected)
        if let col = e.problem?.column {
            c.put(label.count + col - 1 - skip, y, "^", .caret)
        }
    }
}

// MARK: - What if

extension Overlays {
    /// One row of a table of two sides' figures (the what-if panel's before and after, compare's A
    /// and B).
    typealias FigureRow = (label: String, a: String, b: String, change: String, changed: Bool)

    /// The figures of both sides, one row each in `Figures.union` order; the free blocks of the
    /// orders that did not change fold into one row. `change` words a difference.
    static func figureRows(_ a: [Figure], _ b: [Figure], skip: Set<String> = [],
                           change: (FigureDifference) -> String) -> [FigureRow] {
        let diffs = Dictionary(Figures.differences(a, b).map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        let byA = Dictionary(a.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        let byB = Dictionary(b.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        var rows: [FigureRow] = []
        var sameBlocks = 0
        for f in Figures.union(a, b) where !skip.contains(f.name) {
            let d = diffs[f.name]
            if f.name.hasPrefix("machine.free_blocks_o") && d == nil { sameBlocks += 1; continue }
            let av = d.map { Figure.format($0.a, $0.unit) } ?? byA[f.name]?.text ?? "-"
            let bv = d.map { Figure.format($0.b, $0.unit) } ?? byB[f.name]?.text ?? "-"
            rows.append((f.label, av, bv, d.map(change) ?? "", d != nil))
        }
        if sameBlocks > 0 { rows.append(("free blocks, \(sameBlocks) orders", "same", "same", "", false)) }
        return rows
    }

    /// The rows of the what-if panel: every headline figure, then the expects and the outcomes
    /// that changed. Changed rows are marked.
    static func whatIfRows(_ w: WhatIf) -> [FigureRow] {
        var rows = figureRows(w.before, w.after, skip: ["outcome", "failed_expects"], change: deltaText)
        rows.append(("failed expects", String(w.failedBefore), String(w.failedAfter),
                     w.failedAfter == w.failedBefore ? "" : (w.failedAfter > w.failedBefore ? "+" : "") + String(w.failedAfter - w.failedBefore),
                     w.failedAfter != w.failedBefore))
        if w.outcomes.isEmpty {
            rows.append(("outcomes", "", "", "none changed", false))
        }
        for o in w.outcomes {
            rows.append(("step \(o.step) \(o.command)", o.before, o.after, "outcome", true))
        }
        return rows
    }

    private static func deltaText(_ d: FigureDifference) -> String {
        guard let delta = d.delta, d.unit != .percent else { return d.unit == .percent ? "" : "changed" }
        let n = Int(delta)
        switch d.unit {
        case .bytes: return (n > 0 ? "+" : "-") + formatSizeCompact(UInt64(abs(n)))
        case .nanoseconds: return (n > 0 ? "+" : "-") + formatNs(abs(n))
        default: return (n > 0 ? "+" : "") + String(n)
        }
    }

    static func drawWhatIf(_ g: Glyphs, _ w: WhatIf, scroll: Int, _ c: inout Canvas) {
        let rows = whatIfRows(w)
        let width = min(c.width - 4, 100)
        let h = min(c.height - 2, rows.count + 4)
        let r = Rect(x: (c.width - width) / 2, y: (c.height - h) / 2, width: width, height: h)
        c.box(r, g, .overlayBorder, title: "WHAT IF  \(w.change) \(g.dot) step \(w.step)  (q or Esc closes, \(g.isASCII ? "Up/Down" : "↑↓") scroll)",
              titleRole: .overlayTitle)
        let valueW = max(8, min(14, (width - 8) / 5))
        let labelW = width - 4 - 3 * (valueW + 1) - 2
        let xBefore = r.x + 3 + labelW
        let xAfter = xBefore + valueW + 1
        let xDelta = xAfter + valueW + 1
        c.text(r.x + 3, r.y + 1, "figure", .section, limit: labelW)
        c.text(xBefore, r.y + 1, "before", .section)
        c.text(xAfter, r.y + 1, "after", .section)
        c.text(xDelta, r.y + 1, "change", .section)
        let visible = h - 3
        let start = min(scroll, max(0, rows.count - visible))
        for (i, row) in rows[start..<min(rows.count, start + visible)].enumerated() {
            let y = r.y + 2 + i
            if row.changed { c.put(r.x + 1, y, g.isASCII ? "*" : "●", .warning) }
            c.text(r.x + 3, y, row.label, row.changed ? .normal : .dim, limit: labelW - 1, ellipsis: g.ellipsis)
            c.text(xBefore, y, row.a, .overlayText, limit: valueW, ellipsis: g.ellipsis)
            c.text(xAfter, y, row.b, row.changed ? .warning : .overlayText, limit: valueW, ellipsis: g.ellipsis)
            c.text(xDelta, y, row.change, row.changed ? .warning : .dim, limit: r.maxX - xDelta - 1, ellipsis: g.ellipsis)
        }
        if rows.count > visible {
            c.text(r.maxX - 12, r.maxY - 1, " \(start + visible)/\(rows.count) ", .dim)
        }
    }
}
