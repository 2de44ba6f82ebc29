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

    /// The legend, in the order it is drawn: the rare pinned-and-COW-shared kind last.
    static let legendKinds = PageKind.allCases.filter { $0 != .pinnedShared } + [.pinnedShared]

    /// The legend's rows at the bottom of the pane: only where there is room to spare, and as many
    /// as it takes to show every kind.
    static func legendRows(_ body: Rect) -> Int {
        guard body.height >= 20 else { return 0 }
        var rows = 1, x = 1
        for k in legendKinds {
            let w = k.legendName.count + 3
            if x + w - 1 > body.width { rows += 1; x = 1 }
            x += w
        }
        return rows
    }

    /// Rows of the list (the body less the legend).
    static func listHeight(_ body: Rect) -> Int { body.height - legendRows(body) }

    /// The rows; longer than the pane, one column narrower to leave the scroll bar its own.
    func layout(_ ctx: PanelContext) -> ProcessLayout {
        let maxRows = max(2, min(16, ctx.body.height / 3))
        let l = ProcessLayout(state: ctx.state, width: ctx.body.width, zoom: zoom, maxRows: maxRows)
        guard l.rows.count > ProcessPanel.listHeight(ctx.body) else { return l }
        return ProcessLayout(state: ctx.state, width: ctx.body.width - 1, zoom: zoom, maxRows: maxRows)
    }

    /// Pages per cell: one figure when every VMA has the same, else the range (each VMA's row then
    /// says its own).
    func scaleText(_ l: ProcessLayout, short: Bool) -> String? {
        let all = Set(l.scale.values.flatMap(\.values))
        guard let lo = all.min(), let hi = all.max() else { return nil }
        let figure = lo == hi ? "\(lo)" : "\(lo)-\(hi)"
        if short { return figure + "/cell" }
        return lo == hi && lo == 1 ? "1 page/cell" : "\(figure) pages/cell"
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

    /// The processes (an exited one marked), then the scale, as PHYSICAL gives its frames per cell.
    /// The scale stays whole: its long form gives way first, then the names.
    func titleDetail(_ ctx: PanelContext) -> String {
        let names = ctx.state.processes.map { $0.meta.alive ? $0.meta.name : "\($0.meta.name)†" }.joined(separator: " ")
        // As Screen draws a title: the pane's name, a space, then this, one column short of the edge.
        let room = ctx.body.width - Pane.process.title.count - 3
        let l = layout(ctx)
        guard let long = scaleText(l, short: false), let short = scaleText(l, short: true) else { return names }
        let sep = " \(ctx.glyphs.dot) "
        if names.count + sep.count + long.count <= room { return names + sep + long }
        if names.count + sep.count + short.count <= room { return names + sep + short }
        let namesRoom = room - sep.count - short.count
        return (namesRoom >= 2 ? String(names.prefix(namesRoom - 1)) + String(ctx.glyphs.ellipsis) + sep : "") + short
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
        let w = ScrollBar.textWidth(r, total: l.rows.count)
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
                drawProcessTitle(ctx, &c, Rect(x: r.x, y: r.y, width: w, height: r.height), y, p)
            case let .image(p, first, count):
                let vmas = state.processes[p].meta.vmas
                let lo = vmas[first].start, hi = vmas[first + count - 1].end
                // A trace's text is file-backed too: named for what it is.
                let isText = vmas[first].label == "[trace text]"
                let name = isText ? "text" : "image", size = formatSizeCompact(hi - lo)
                let what = isText ? "file-backed, no frames" : "\(count) VMAs, no frames"
                // The address gives way before the words do.
                let text = fitFirst(["\(name) \(address(lo, r.width)) \(size) \(what)", "\(name) \(size) \(what)",
                                     "\(name) \(size), no frames", "\(name) \(size)"], w - 1)
                c.text(r.x + 1, y, text, .dim, limit: w - 1, ellipsis: g.ellipsis)
            case let .vma(p, v):
                drawVMA(ctx, &c, Rect(x: r.x, y: r.y, width: w, height: r.height), y, p, v, l)
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
                c.text(r.x + 1, y, s, .dim, limit: w - 1)
            }
        }
        ScrollBar.draw(&c, r, scroll: scroll, total: l.rows.count, g)
    }

    private func drawLegend(_ ctx: DrawContext, _ c: inout Canvas, _ r: Rect) {
        var x = r.x + 1, y = r.y
        for k in ProcessPanel.legendKinds {
            let name = k.legendName
            if x + name.count + 2 > r.maxX { y += 1; x = r.x + 1 }
            if y >= r.maxY { break }
            c.put(x, y, k.glyph(ctx.glyphs), k.role)
            x = c.text(x + 2, y, name, .dim) + 1
        }
    }

    private func drawProcessTitle(_ ctx: DrawContext, _ c: inout Canvas, _ r: Rect, _ y: Int, _ p: Int) {
        let m = ctx.state.processes[p].meta
        let g = ctx.glyphs
        let changed = ctx.changes.processes.contains(p)
        let x = c.text(r.x, y, m.name, Role.owner(p), mark: changed ? .changed : .none)
        guard m.alive else {
            let why = m.exitReason.map { $0 == "exit" ? "exited" : $0 } ?? "exited"
            // The reason in short where the whole does not fit: the pid goes first, then the words.
            let short = why.contains("OOM") ? "OOM-killed" : why.hasPrefix("killed by ") ? String(why.dropFirst("killed by ".count))
                : why.hasPrefix("fork failed") ? "fork failed" : why
            let text = fitFirst([" pid \(m.pid) \(g.dot) " + why, " " + why, " pid \(m.pid) \(g.dot) " + short, " " + short], r.maxX - x)
            c.text(x, y, text, m.exitReason == "exit" ? .dim : .error, limit: r.maxX - x, ellipsis: g.ellipsis)
            return
        }
        func size(_ pages: Int) -> String { formatSizeCompact(UInt64(pages) << pageShift) }
        // What fits, taken in a fixed order (rss, pinned, locked, swap, the pid, page tables) and
        // shown in reading order: a narrow pane drops whole figures, never half of one.
        var parts: [(order: Int, text: String)] = [(1, "rss \(size(m.rssPages))")]
        if m.pinnedVMPages > 0 { parts.append((4, "pinned \(size(m.pinnedVMPages))")) }
        if m.lockedVMPages > 0 { parts.append((3, "locked \(size(m.lockedVMPages))")) }
        if m.swapPages > 0 { parts.append((2, "swap \(size(m.swapPages))")) }
        parts.append((0, "pid \(m.pid)"))
        parts.append((5, "\(m.pageTablePages) pt"))
        // With dots between the figures where they all fit so; else as many as fit, spaced.
        func fit(_ sep: String) -> String {
            var chosen: [(order: Int, text: String)] = []
            var used = 0
            for part in parts where used + part.text.count + sep.count <= r.maxX - x {
                chosen.append(part)
                used += part.text.count + sep.count
            }
            let sorted = chosen.sorted { $0.order < $1.order }.map(\.text)
            return " " + sorted.joined(separator: sep)
        }
        let all = " " + parts.sorted { $0.order < $1.order }.map(\.text).joined(separator: " \(g.dot) ")
        let text = all.count <= r.maxX - x ? all : fit(" ")
        c.text(x, y, text, .section, limit: r.maxX - x)
    }

    private func drawVMA(_ ctx: DrawContext, _ c: inout Canvas, _ r: Rect, _ y: Int, _ p: Int, _ v: Int, _ l: ProcessLayout) {
        let meta = ctx.state.processes[p].meta
        let vma = meta.vmas[v]
        let names = meta.buffers.filter { $0.start < vma.end && $0.start + max($0.size, 1) > vma.start }.map(\.name)
        var label = names.isEmpty ? vma.label : names.joined(separator: ",")
        if label.isEmpty { label = "anon" }
        var flags = ""
        if vma.flags.contains(.locked) { flags += "L" }
        if vma.flags.contains(.dontcopy) { flags += "D" }
        if vma.flags.contains(.hugepage) { flags += "H" }
        if vma.flags.contains(.nohugepage) { flags += "N" }
        let changed = ctx.changes.vmas[p]?.contains(vma.start) == true
        // Under a mixed scale the title gives a range: the VMA's own row says its pages per cell.
        let k = l.scale[p]?[vma.start] ?? 1
        let mixed = Set(l.scale.values.flatMap(\.values)).count > 1
        let scale = mixed && k > 1 ? "\(k)/cell" : ""
        // Whole parts only: the address goes first, then the permissions, then the scale; the
        // name is cut only when nothing else is left.
        let size = formatSizeCompact(vma.length)
        let addr = address(vma.start, r.width)
        let variants: [[String]] = [[addr, size, vma.permissions, flags, scale], [size, vma.permissions, flags, scale],
                                    [size, flags, scale], [size, flags]]
        let room = r.width - 1 - label.count
        let tail = variants.first { v in v.filter { !$0.isEmpty }.reduce(0) { $0 + 1 + $1.count } <= room } ?? variants.last ?? []
        let roles: [Role] = tail.count == 5 ? [.address, .normal, .dim, .warning, .dim] : tail.count == 4 ? [.normal, .dim, .warning, .dim] : [.normal, .warning, .dim]
        let tailWidth = tail.filter { !$0.isEmpty }.reduce(0) { $0 + 1 + $1.count }
        let labelWidth = max(3, min(label.count, r.width - 1 - tailWidth))
        var x = c.text(r.x + 1, y, label, .label, limit: labelWidth, mark: changed ? .changed : .none, ellipsis: ctx.glyphs.ellipsis)
        for (i, part) in tail.enumerated() where !part.isEmpty {
            x = c.text(x, y, " ", .normal, limit: r.maxX - x)
            x = c.text(x, y, part, roles[min(i, roles.count - 1)], limit: r.maxX - x)
        }
    }

    /// An address that fits: 0x7ffff7efe000, or without 0x in a narrow pane.
    private func address(_ a: UInt64, _ width: Int) -> String {
        width >= 34 ? hex(a) : String(a, radix: 16)
    }
}
