// PHYSICAL: every frame as a grid coloured by owner. Zoomed out, a cell stands for many frames and
// shows their dominant use and how full they are; what a cell holds comes from the query layer
// (which reads the per-block summaries), this file lays it out.

import Engine

struct FrameCellLook {
    var glyph: Character
    var role: Role
}

struct PhysicalPanel: Panel {
    /// The selected frame.
    var cursor = 0
    /// Frames per cell; nil fits all of memory.
    var zoom: Int?
    var scroll = 0

    static func legendRows(_ width: Int) -> Int { width >= 40 ? 2 : 3 }

    static func gridHeight(_ body: Rect) -> Int { body.height - PhysicalLayout.infoRows - legendRows(body.width) }

    /// The grid; zoomed in past one screenful, one column narrower to leave the scroll bar its own.
    func layout(_ ctx: PanelContext) -> PhysicalLayout {
        let height = PhysicalPanel.gridHeight(ctx.body)
        let l = PhysicalLayout(frames: ctx.state.phys.frameCount, width: ctx.body.width, gridHeight: height, zoom: zoom)
        guard l.gridRows > height else { return l }
        return PhysicalLayout(frames: ctx.state.phys.frameCount, width: ctx.body.width - 1, gridHeight: height, zoom: zoom)
    }

    func selection(_ ctx: PanelContext) -> Selection? {
        let l = layout(ctx)
        let (r, c) = l.locate(cursor)
        return l.cell(row: r, col: c).map { .frames($0) }
    }

    func titleDetail(_ ctx: PanelContext) -> String {
        let phys = ctx.state.phys
        let width = ctx.body.width
        let l = layout(ctx)
        let size = formatSize(UInt64(phys.frameCount) << pageShift)
        let per = "1 cell = \(plural(l.framesPerCell, "frame"))"
        if width >= 48 { return "\(size) \(ctx.glyphs.dot) \(phys.frameCount) frames \(ctx.glyphs.dot) \(per)" }
        return width >= 36 ? "\(size) \(ctx.glyphs.dot) \(per)" : "\(formatSizeCompact(UInt64(phys.frameCount) << pageShift)) \(ctx.glyphs.dot) \(l.framesPerCell)/cell"
    }

    // MARK: Keys and the mouse

    mutating func move(_ action: Action, _ ctx: PanelContext) {
        let l = layout(ctx)
        var (r, c) = l.locate(cursor)
        let page = max(1, ctx.body.height - 4)
        switch action {
        case .left: if c > 0 { c -= 1 } else if r > 0 { r -= 1; c = l.columns - 1 }
        case .right: c += 1; if c >= l.columns { c = 0; r += 1 }
        case .up: r -= 1
        case .down: r += 1
        case .pageUp: r -= page
        case .pageDown: r += page
        default: break
        }
        r = max(0, min(r, l.gridRows - 1))
        if l.cell(row: r, col: c) == nil {
            let last = l.locate(l.frames - 1)
            (r, c) = r >= last.row ? last : (r, min(c, l.columns - 1))
        }
        cursor = l.cell(row: r, col: c)?.lowerBound ?? 0
    }

    mutating func zoom(in zoomIn: Bool, _ ctx: PanelContext) -> HandleResult {
        var fitting = self
        fitting.zoom = nil
        let fit = fitting.layout(ctx).framesPerCell
        let f = layout(ctx).framesPerCell
        let next = zoomIn ? max(1, f / 2) : f * 2
        zoom = next >= fit ? nil : next
        return .say("physical pane: \(plural(zoom ?? fit, "frame")) per cell\(zoom == nil ? " (all of memory)" : "")")
    }

    mutating func click(x: Int, y: Int, _ ctx: PanelContext) -> HandleResult {
        let l = layout(ctx)
        let gridTop = ctx.body.y + PhysicalLayout.infoRows
        guard y >= gridTop, y < gridTop + PhysicalPanel.gridHeight(ctx.body),
              let range = l.cell(row: scroll + (y - gridTop), col: x - (ctx.body.x + l.gutter)) else { return .redraw }
        cursor = range.lowerBound
        return .redraw
    }

    mutating func prepare(_ ctx: PanelContext) {
        let l = layout(ctx)
        cursor = max(0, min(cursor, ctx.state.phys.frameCount - 1))
        scroll = scrollToShow(scroll, row: l.locate(cursor).row, rows: PhysicalPanel.gridHeight(ctx.body), total: l.gridRows, context: 0)
    }

    // MARK: Drawing

    func draw(_ ctx: DrawContext, _ c: inout Canvas) {
        // Read once: these are values, and a computed read per cell would copy them per cell.
        let r = ctx.body
        let g = ctx.glyphs
        let state = ctx.state
        let owners = ctx.panel.cache.processByPid
        let l = layout(ctx.panel)
        drawInfo(ctx, &c, Rect(x: r.x, y: r.y, width: r.width, height: 1))
        let legendRows = PhysicalPanel.legendRows(r.width)
        let gridTop = r.y + PhysicalLayout.infoRows
        let gridHeight = max(0, PhysicalPanel.gridHeight(r))
        let cursorCell = l.locate(cursor)
        let digits = max(0, l.gutter - 1)
        for i in 0..<gridHeight {
            let row = scroll + i
            guard row < l.gridRows else { break }
            let y = gridTop + i
            if l.gutter > 0 {
                let label = hex(row * l.columns * l.framesPerCell)
                c.text(r.x + digits - label.count, y, label, .dim)
            }
            let x0 = r.x + l.gutter
            for col in 0..<l.columns {
                guard let range = l.cell(row: row, col: col) else { break }
                let look = Self.look(state.classifyFrames(range), g, owners)
                let sel = ctx.showsCursor && cursorCell.row == row && cursorCell.col == col
                let rel = ctx.highlight.frames.intersects(range)
                let chg = ctx.changes.frames.intersects(range)
                c.put(x0 + col, y, look.glyph, look.role, ctx.mark(selected: sel, related: rel, changed: chg))
            }
        }
        ScrollBar.draw(&c, Rect(x: r.x, y: gridTop, width: r.width, height: gridHeight), scroll: scroll, total: l.gridRows, g)
        drawLegend(ctx, &c, Rect(x: r.x, y: r.maxY - legendRows, width: r.width, height: legendRows))
    }

    /// One line of totals: free, anonymous, page tables, kernel.
    private func drawInfo(_ ctx: DrawContext, _ c: inout Canvas, _ r: Rect) {
        let totals = ctx.state.frameTotals()
        func size(_ u: FrameUse) -> String { formatSizeCompact(UInt64(totals[u] ?? 0) << pageShift) }
        var parts = ["free \(size(.free))", "anon \(size(.anon))"]
        if totals[.shmem, default: 0] > 0 { parts.append("shmem \(size(.shmem))") }
        if totals[.file, default: 0] > 0 { parts.append("file \(size(.file))") }
        parts.append("pt \(size(.pagetable))")
        if totals[.ump, default: 0] > 0 { parts.append("ump \(size(.ump))") }
        if totals[.dmabuf, default: 0] > 0 { parts.append("dma-buf \(size(.dmabuf))") }
        if totals[.iopagetable, default: 0] > 0 { parts.append("iopt \(size(.iopagetable))") }
        parts.append("kernel \(size(.kernel))")
        var x = r.x + 1
        for p in parts {
            if x + p.count > r.maxX { break }
            x = c.text(x, r.y, p, .dim) + 2
        }
    }

    private func drawLegend(_ ctx: DrawContext, _ c: inout Canvas, _ r: Rect) {
        let g = ctx.glyphs
        var items: [(Character, Role, String)] = [
            (g.free, .frameFree, "free"), (g.zero, .frameZero, "zero"), (g.kernel, .frameKernel, "kernel"),
            (g.pageTable, .frameTable, "page table"), (g.pinned, .framePinned, "pinned"),
            (g.ump, .frameUMP, "UMP"), (g.dmabuf, .frameDmabuf, "dma-buf"), (g.ioPageTable, .frameTable, "IO pt"),
        ]
        if ctx.state.frameTotals()[.file, default: 0] > 0 { items.append((g.file, .normal, "file page")) }
        for (p, proc) in ctx.state.processes.enumerated() where proc.meta.alive {
            items.append((g.fill[3], Role.owner(p), proc.meta.name))
        }
        var x = r.x + 1, y = r.y
        for (glyph, role, name) in items {
            let w = name.count + 3
            if x + w > r.maxX { y += 1; x = r.x + 1 }
            if y >= r.maxY { break }
            c.put(x, y, glyph, role)
            x = c.text(x + 2, y, name, .dim) + 1
        }
    }

    /// How a class of frames is drawn: process memory in its owner's colour, shaded by how full.
    static func look(_ k: FrameClass, _ g: Glyphs, _ owners: [Int32: Int]) -> FrameCellLook {
        switch k {
        case .free: return FrameCellLook(glyph: g.free, role: .frameFree)
        case .pinned: return FrameCellLook(glyph: g.pinned, role: .framePinned)
        case .zeroPage, .kernelMemory(.zero): return FrameCellLook(glyph: g.zero, role: .frameZero)
        case let .processMemory(use, owner, fullness):
            let role = owners[owner].map { Role.owner($0) } ?? .normal
            guard let fullness else { return FrameCellLook(glyph: use == .shmem ? g.shmem : use == .file ? g.file : g.fill[3], role: role) }
            return FrameCellLook(glyph: g.fill[fullness], role: role)
        case .kernelMemory(.pagetable): return FrameCellLook(glyph: g.pageTable, role: .frameTable)
        case .kernelMemory(.iopagetable): return FrameCellLook(glyph: g.ioPageTable, role: .frameTable)
        case .kernelMemory(.ump): return FrameCellLook(glyph: g.ump, role: .frameUMP)
        case .kernelMemory(.dmabuf): return FrameCellLook(glyph: g.dmabuf, role: .frameDmabuf)
        case .kernelMemory: return FrameCellLook(glyph: g.kernel, role: .frameKernel)
        }
    }
}
