// PROCESS: each process's address space, VMA by VMA, with a glyph per page (or per group of pages
// when a VMA is larger than the rows it may use): untouched, zero page, private, shared/COW,
// pinned, swapped, huge. What a page is comes from the query layer; this file lays it out.

import Engine

extension PageKind {
    func glyph(_ g: Glyphs) -> Character {
        switch self {
        case .untouched: g.untouched
        case .zero: g.zero
        case .privatePage: g.privatePage
        case .shared: g.shared
        case .huge: g.huge
        case .swapped: g.swapped
        case .pinned: g.pinned
        case .pinnedShared: g.pinnedShared
        case .ump: g.ump
        case .dmabuf: g.dmabuf
        }
    }

    var role: Role {
        switch self {
        case .untouched: .pageUntouched
        case .zero: .pageZero
        case .privatePage: .pagePrivate
        case .shared: .pageShared
        case .huge: .pageHuge
        case .swapped: .pageSwapped
        case .pinned, .pinnedShared: .pagePinned
        case .ump: .frameUMP
        case .dmabuf: .frameDmabuf
        }
    }

    /// The legend's shorter word.
    var legendName: String {
        switch self {
        case .shared: "shared"
        case .pinnedShared: "pinned+COW"
        case .huge: "huge"
        case .ump: "UMP"
        case .dmabuf: "dma-buf"
        default: name
        }
    }
}

struct ProcessPanel: Panel {
    /// The selected page: a process and a virtual page number in it.
    var cursor: (proc: Int, vpn: UInt64)?
    /// Pages per cell for every VMA; nil fits each VMA into its rows.
    var zoom: UInt64?
    var scroll = 0

    /// The legend's rows at the bottom of the pane: only where there is room to spare.
    static func legendRows(_ body: Rect) -> Int { body.height >= 20 ? (body.width >= 64 ? 1 : 2) : 0 }

    /// Rows of the list (the body less the legend).
    static func listHeight(_ body: Rect) -> Int { body.height - legendRows(body) }

    func layout(_ ctx: PanelContext) -> ProcessLayout {
        ProcessLayout(state: ctx.state, width: ctx.body.width, zoom: zoom, maxRows: max(2, min(16, ctx.body.height / 3)))
    }

    /// The cursor, clamped to a cell that exists.
    func resolvedCursor(_ l: ProcessLayout) -> (row: Int, col: Int)? {
        if let c = cursor, let hit = l.locate(proc: c.proc, vpn: c.vpn) { return hit }
        if let c = cursor {
            // The page went away (munmap, exit): the nearest row of the same process.
            let rows = l.rows.indices.filter { if case let .pages(p, _, _, _, _, _) = l.rows[$0] { p == c.proc } else { false } }
            if let r = rows.first { return (r, 0) }
        }
        return l.firstPagesRow.map { ($0, 0) }
    }

    func selection(_ ctx: PanelContext) -> Selection? {
        let l = layout(ctx)
        guard let (r, c) = resolvedCursor(l), let cell = l.cell(row: r, col: c) else { return nil }
        return .pages(proc: cell.proc, range: cell.range)
    }

    func titleDetail(_ ctx: PanelContext) -> String {
        ctx.state.processes.map { $0.meta.alive ? $0.meta.name : "\($0.meta.name)†" }.joined(separator: " ")
    }

    // MARK: Keys and the mouse

    mutating func move(_ action: Action, _ ctx: PanelContext) {
        let l = layout(ctx)
        guard var (r, c) = resolvedCursor(l) else { return }
        let page = max(1, ProcessPanel.listHeight(ctx.body) - 1)
        switch action {
        case .left:
            if c > 0 { c -= 1 } else if let p = l.pagesRow(from: r, step: -1) { r = p; c = l.cellCount(p) - 1 }
        case .right:
            if c + 1 < l.cellCount(r) { c += 1 } else if let n = l.pagesRow(from: r, step: 1) { r = n; c = 0 }
        case .up, .down, .pageUp, .pageDown:
            let step = action == .up || action == .pageUp ? -1 : 1
            for _ in 0..<(action == .up || action == .down ? 1 : page) {
                guard let n = l.pagesRow(from: r, step: step) else { break }
                r = n
            }
            c = min(c, l.cellCount(r) - 1)
        default: break
        }
        if let cell = l.cell(row: r, col: c) { cursor = (cell.proc, cell.range.lowerBound) }
    }

    mutating func zoom(in zoomIn: Bool, _ ctx: PanelContext) -> HandleResult {
        let l = layout(ctx)
        var k: UInt64 = zoom ?? 1
        let state = ctx.state
        if zoom == nil, let c = cursor, let v = state.processes[safe: c.proc]?.meta.vmaIndex(containing: c.vpn << pageShift),
           let start = state.processes[c.proc].meta.vmas[safe: v]?.start {
            k = l.scale[c.proc]?[start] ?? 1
        } else if zoom == nil {
            k = l.scale.values.flatMap(\.values).max() ?? 1
        }
        let next = zoomIn ? max(1, k / 2) : min(1 << 30, k * 2)
        zoom = next
        return .say("process pane: \(plural(Int(next), "page")) per cell")
    }

    mutating func click(x: Int, y: Int, _ ctx: PanelContext) -> HandleResult {
        let l = layout(ctx)
        let row = scroll + (y - ctx.body.y)
        let col = x - (ctx.body.x + ProcessLayout.indent)
        guard y < ctx.body.y + ProcessPanel.listHeight(ctx.body), let cell = l.cell(row: row, col: col) else { return .redraw }
        cursor = (cell.proc, cell.range.lowerBound)
        return .redraw
    }

    mutating func prepare(_ ctx: PanelContext) {
        let l = layout(ctx)
        let rows = ProcessPanel.listHeight(ctx.body)
        guard let (row, _) = resolvedCursor(l) else {
            scroll = 0
            return
        }
        scroll = scrollToShow(scroll, row: row, rows: rows, total: l.rows.count, context: 1)
        // Show the process title when the cursor is near the top of it.
        if scroll > 0, row - scroll < 3 {
            var r = row
            while r > 0, case .pages = l.rows[r] { r -= 1 }
            while r > 0, case .vma = l.rows[r] { r -= 1; break }
            // Only while the cursor stays on screen.
            if row - r < rows { scroll = min(scroll, r) }
        }
    }

    // MARK: Drawing

    func draw(_ ctx: DrawContext, _ c: inout Canvas) {
        let body = ctx.body
        let legend = ProcessPanel.legendRows(body)
        let r = Rect(x: body.x, y: body.y, width: body.width, height: ProcessPanel.listHeight(body))
        if legend > 0 { drawLegend(ctx, &c, Rect(x: body.x, y: r.maxY, width: body.width, height: legend)) }
        let l = layout(ctx.panel)
        let g = ctx.glyphs
        let state = ctx.state
        let cursor = resolvedCursor(l)
        if state.processes.isEmpty {
            c.text(r.x + 1, r.y, "no process yet", .dim, limit: r.width - 1)
            if let next = ctx.session.nextStep {
                c.text(r.x + 1, r.y + 1, "next: \(next.statement.text)", .dim, limit: r.width - 1, ellipsis: g.ellipsis)
            }
            return
        }
        for i in 0..<r.height {
            let ri = scroll + i
            guard l.rows.indices.contains(ri) else { break }
            let y = r.y + i
            switch l.rows[ri] {
            case let .process(p):
                drawProcessTitle(ctx, &c, r, y, p)
            case let .image(p, first, count):
                let vmas = state.processes[p].meta.vmas
                let lo = vmas[first].start, hi = vmas[first + count - 1].end
                // A trace's text is file-backed too: named for what it is.
                let isText = vmas[first].label == "[trace text]"
                let text = isText ? "text \(address(lo, r.width)) \(formatSizeCompact(hi - lo)) file-backed, no frames"
                    : "image \(address(lo, r.width)) \(formatSizeCompact(hi - lo)) \(count) VMAs, no frames"
                c.text(r.x + 1, y, text, .dim, limit: r.width - 1, ellipsis: g.ellipsis)
            case let .vma(p, v):
                drawVMA(ctx, &c, r, y, p, v)
            case let .pages(p, _, vpn, k, cells, end):
                let pt = state.processes[p].pt
                let changed = ctx.changes.pages[p]
                let related = ctx.highlight.pages[p]
                let showsCursor = ctx.showsCursor
                let x0 = r.x + ProcessLayout.indent
                for col in 0..<cells {
                    let lo = vpn + UInt64(col) * k
                    let range = lo..<min(end, lo + k)
                    let kind = state.dominantPageKind(pt, range)
                    let sel = showsCursor && cursor.map { $0.row == ri && $0.col == col } == true
                    let rel = related?.intersects(range) == true
                    let chg = changed?.intersects(range) == true
                    c.put(x0 + col, y, kind.glyph(g), kind.role, ctx.mark(selected: sel, related: rel, changed: chg))
                }
            case let .text(s):
                c.text(r.x + 1, y, s, .dim, limit: r.width - 1)
            }
        }
        if l.rows.count > r.height {
            // A scroll mark on the right edge: where this screenful sits in the list.
            let pos = r.y + min(r.height - 1, scroll * r.height / max(1, l.rows.count - r.height + 1))
            c.put(r.maxX - 1, pos, g.thumb, .dim)
        }
    }

    private func drawLegend(_ ctx: DrawContext, _ c: inout Canvas, _ r: Rect) {
        var x = r.x + 1, y = r.y
        // The rare pinned-and-COW-shared kind comes last, so a narrow legend drops it first.
        for k in PageKind.allCases.filter({ $0 != .pinnedShared }) + [.pinnedShared] {
            let name = k.legendName
            if x + name.count + 2 > r.maxX { y += 1; x = r.x + 1 }
            if y >= r.maxY { break }
            c.put(x, y, k.glyph(ctx.glyphs), k.role)
            x = c.text(x + 2, y, name, .dim) + 1
        }
    }

    private func drawProcessTitle(_ ctx: DrawContext, _ c: inout Canvas, _ r: Rect, _ y: Int, _ p: Int) {
        let m = ctx.state.processes[p].meta
        let changed = ctx.changes.processes.contains(p)
        var x = c.text(r.x, y, m.name, Role.owner(p), mark: changed ? .changed : .none)
        var info = " pid \(m.pid)"
        if m.alive {
            info += " \(ctx.glyphs.dot) rss \(formatSizeCompact(UInt64(m.rssPages) << pageShift))"
            if m.swapPages > 0 { info += " swap \(formatSizeCompact(UInt64(m.swapPages) << pageShift))" }
            if m.lockedVMPages > 0 { info += " locked \(formatSizeCompact(UInt64(m.lockedVMPages) << pageShift))" }
            if m.pinnedVMPages > 0 { info += " pinned \(formatSizeCompact(UInt64(m.pinnedVMPages) << pageShift))" }
            info += " \(ctx.glyphs.dot) \(m.pageTablePages) pt"
            x = c.text(x, y, info, .section, limit: r.maxX - x, ellipsis: ctx.glyphs.ellipsis)
        } else {
            let why = m.exitReason == nil || m.exitReason == "exit" ? "exited" : m.exitReason!
            c.text(x, y, info + " \(ctx.glyphs.dot) " + why, m.exitReason == "exit" ? .dim : .error, limit: r.maxX - x, ellipsis: ctx.glyphs.ellipsis)
        }
    }

    private func drawVMA(_ ctx: DrawContext, _ c: inout Canvas, _ r: Rect, _ y: Int, _ p: Int, _ v: Int) {
        let meta = ctx.state.processes[p].meta
        let vma = meta.vmas[v]
        let names = meta.buffers.filter { $0.start < vma.end && $0.start + max($0.size, 1) > vma.start }.map(\.name)
        var label = names.isEmpty ? vma.label : names.joined(separator: ",")
        if label.isEmpty { label = "anon" }
        var flags = ""
        if vma.flags.contains(.locked) { flags += "L" }
        if vma.flags.contains(.dontcopy) { flags += "D" }
        if vma.flags.contains(.hugepage) { flags += "H" }
        let changed = ctx.changes.vmas[p]?.contains(vma.start) == true
        let tail = " \(address(vma.start, r.width)) \(formatSizeCompact(vma.length)) \(vma.permissions)" + (flags.isEmpty ? "" : " " + flags)
        let labelWidth = max(3, min(label.count, r.width - 1 - tail.count))
        var x = c.text(r.x + 1, y, label, .label, limit: labelWidth, mark: changed ? .changed : .none, ellipsis: ctx.glyphs.ellipsis)
        let parts = tail.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let roles: [Role] = [.normal, .address, .normal, .dim, .warning]
        for (i, part) in parts.enumerated() {
            if i > 0 { x = c.text(x, y, " ", .normal, limit: r.maxX - x) }
            x = c.text(x, y, part, roles[min(i, roles.count - 1)], limit: r.maxX - x)
        }
    }

    /// An address that fits: 0x7ffff7efe000, or without 0x in a narrow pane.
    private func address(_ a: UInt64, _ width: Int) -> String {
        width >= 34 ? hex(a) : String(a, radix: 16)
    }
}
