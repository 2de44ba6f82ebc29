// The whole screen as a function of AppState: header, the three panes, narration and log, footer,
// then overlays. Views write into a Canvas; they never touch the terminal.

import Engine

enum Screen {
    static func render(_ app: AppState) -> Canvas {
        var c = Canvas(width: app.width, height: app.height)
        c.asciiOnly = app.glyphs.isASCII
        let layout = app.layout
        if layout.tooSmall {
            drawTooSmall(app, &c)
            return c
        }
        let g = app.glyphs
        app.cache.refresh(app.session)
        let highlight = app.cache.highlight(app.session, app.selection())
        let ctx = DrawContext(app: app, glyphs: g, changes: app.cache.changes, highlight: highlight)
        drawHeader(app, &c)
        for pane in [Pane.process, .physical, .device] {
            let r = layout.rect(pane)
            drawPaneTitle(&c, r, pane, app, ctx)
            c.hits.append(Hit(rect: r, target: .pane(pane)))
        }
        // Separators between the panes.
        for x in [layout.physical.x - 1, layout.device.x - 1] {
            for y in layout.process.y..<layout.process.maxY { c.put(x, y, g.vline, .separator) }
        }
        ProcessPane.draw(ctx, &c, layout.body(.process))
        PhysicalPane.draw(ctx, &c, layout.body(.physical))
        DevicePane.draw(ctx, &c, layout.body(.device))
        NarrationPane.draw(ctx, &c, layout.narration)
        NarrationPane.drawLog(ctx, &c, layout.log)
        c.hits.append(Hit(rect: layout.log, target: .pane(.log)))
        drawFooter(app, &c)
        if let e = app.editor { Overlays.drawEditor(ctx, e, &c) }
        switch app.overlay {
        case .help(let scroll)?: Overlays.drawHelp(ctx, scroll: scroll, &c)
        case .inspector?: Inspector.draw(ctx, &c)
        case nil: break
        }
        return c
    }

    private static func drawTooSmall(_ app: AppState, _ c: inout Canvas) {
        let lines = ["terminal too small: \(app.width)\(app.glyphs.times)\(app.height), needs \(ScreenLayout.minWidth)\(app.glyphs.times)\(ScreenLayout.minHeight)",
                     "enlarge the window, or press q to quit"]
        for (i, s) in lines.enumerated() {
            let y = max(0, app.height / 2 - 1 + i)
            c.text(max(0, (app.width - s.count) / 2), y, s, i == 0 ? .error : .dim)
        }
    }

    private static func drawHeader(_ app: AppState, _ c: inout Canvas) {
        let g = app.glyphs
        let s = app.session
        c.fill(Rect(x: 0, y: 0, width: c.width, height: 1), " ", .header)
        let cfg = s.state.config
        var x = c.text(1, 0, "UMPTUI", .headerAccent)
        var file = s.fileName
        if file.count > 32 { file = String(g.ellipsis) + file.suffix(31) }
        let play = (app.playing ? g.playing : g.paused) + " \(speedText(app.speed))"
        var parts = [file, "step \(s.current)/\(s.total)", "kernel \(cfg.kernel.rawValue)",
                     "\(formatSize(cfg.ram)) RAM", "thp \(cfg.thp.rawValue)"]
        // Narrow screens drop the machine's details before the step, the kernel or play and speed.
        while parts.count > 3, 7 + parts.reduce(0, { $0 + $1.count + 3 }) + play.count + 3 > c.width { parts.removeLast() }
        for p in parts { x = c.text(x, 0, " \(g.dot) \(p)", .header) }
        x = c.text(x, 0, " \(g.dot) ", .header)
        c.text(x, 0, play, app.playing ? .headerAccent : .header)
        let hint = "? help "
        if c.width - hint.count > x + play.count + 2 { c.text(c.width - hint.count, 0, hint, .header) }
    }

    static func speedText(_ s: Double) -> String {
        s >= 1 ? "\(Int(s))x" : "\(s)x"
    }

    private static func drawPaneTitle(_ c: inout Canvas, _ r: Rect, _ pane: Pane, _ app: AppState, _ ctx: DrawContext) {
        let focused = app.focus == pane
        let role: Role = focused ? .paneTitleFocused : .paneTitle
        c.fill(Rect(x: r.x, y: r.y, width: r.width, height: 1), " ", focused ? .paneTitleFocused : .normal)
        let detail: String
        switch pane {
        case .process: detail = ProcessPane.titleDetail(ctx)
        case .physical: detail = PhysicalPane.titleDetail(ctx, width: r.width)
        case .device: detail = DevicePane.titleDetail(ctx)
        case .log: detail = ""
        }
        let x = c.text(r.x + 1, r.y, pane.title, role, limit: r.width - 1)
        c.text(x + 1, r.y, detail, focused ? .paneTitleFocused : .dim, limit: r.maxX - x - 2, ellipsis: ctx.glyphs.ellipsis)
    }

    private static func drawFooter(_ app: AppState, _ c: inout Canvas) {
        let y = c.height - 1
        c.fill(Rect(x: 0, y: y, width: c.width, height: 1), " ", .footerText)
        var x = 1
        let msg = app.message ?? ""
        let keys = KeyTable.footer(width: c.width - (msg.isEmpty ? 0 : min(msg.count + 2, c.width / 2)), glyphs: app.glyphs)
        for (key, word) in keys {
            x = c.text(x, y, key, .footerKey)
            x = c.text(x, y, " " + word + "  ", .footerText)
        }
        if !msg.isEmpty {
            let start = max(x, c.width - msg.count - 1)
            c.text(start, y, msg, .footerText, limit: c.width - start - 1, ellipsis: app.glyphs.ellipsis)
        }
    }
}

/// What every view reads while drawing one frame.
struct DrawContext {
    let app: AppState
    let glyphs: Glyphs
    let changes: ChangeIndex
    let highlight: Highlight
    var session: Session { app.session }
    var state: EngineState { app.session.state }

    /// The mark of a cell: selected beats related beats changed.
    @inline(__always) func mark(selected: Bool, related: Bool, changed: Bool) -> Mark {
        selected ? .selected : related ? .related : changed ? .changed : .none
    }
}

/// Sizes as the panes write them: 4K, 132K, 8M, 1.5G.
func shortSize(_ bytes: UInt64) -> String {
    let units: [(UInt64, String)] = [(1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")]
    for (unit, name) in units where bytes >= unit {
        if bytes % unit == 0 { return "\(bytes / unit)\(name)" }
        if bytes / unit >= 100 || unit == 1 << 10 { return "\((bytes + unit / 2) / unit)\(name)" }
        let tenths = (bytes * 10 + unit / 2) / unit
        return "\(tenths / 10).\(tenths % 10)\(name)"
    }
    return bytes == 0 ? "0" : "\(bytes)B"
}

/// Word-wraps `text` to `width` columns.
func wrapText(_ text: String, width: Int) -> [String] {
    guard width > 0 else { return [] }
    var lines: [String] = []
    var line = ""
    for word in text.split(separator: " ", omittingEmptySubsequences: true) {
        var w = String(word)
        while w.count > width {
            if !line.isEmpty { lines.append(line); line = "" }
            lines.append(String(w.prefix(width)))
            w = String(w.dropFirst(width))
        }
        if line.isEmpty { line = w } else if line.count + 1 + w.count <= width { line += " " + w } else {
            lines.append(line)
            line = w
        }
    }
    if !line.isEmpty { lines.append(line) }
    return lines
}
