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
        out.append(("select", "the cursor of the focused pane (reverse)", .normal))
        out.append(("related", "maps or is mapped by the selection: its frame, every page and IOVA over it", .normal))
        out.append(("changed", "changed by the last step", .normal))
        return out
    }

    static func drawHelp(_ g: Glyphs, scroll: Int, _ c: inout Canvas) {
        let lines = helpLines(g)
        let w = min(c.width - 4, 96)
        let h = min(c.height - 2, lines.count + 2)
        let r = Rect(x: (c.width - w) / 2, y: (c.height - h) / 2, width: w, height: h)
        c.box(r, g, .overlayBorder, title: "HELP  (Esc closes, \(g.isASCII ? "Up/Down" : "↑↓") scroll)", titleRole: .overlayTitle)
        let rows = h - 2
        let start = min(scroll, max(0, lines.count - rows))
        for (i, (key, text, role)) in lines[start..<min(lines.count, start + rows)].enumerated() {
            let y = r.y + 1 + i
            if key.isEmpty {
                c.text(r.x + 2, y, text, role, limit: w - 4)
            } else {
                c.text(r.x + 2, y, key, role == .normal ? .label : role, limit: 10)
                c.text(r.x + 13, y, text, .overlayText, limit: w - 15, ellipsis: g.ellipsis)
            }
        }
    }

    static func drawEditor(_ g: Glyphs, _ e: LineEditor, _ c: inout Canvas) {
        let y = c.height - 1
        var rows: [(String, Role)] = []
        if let p = e.problem {
            rows.append(("error: " + p.message, .error))
            if let hint = p.hint { rows += wrapText("hint: " + hint, width: c.width - 2).prefix(2).map { ($0, .dim) } }
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
