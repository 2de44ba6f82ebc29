// Compare mode: side B follows the session (side A) with more overrides, stepping with it. On a
// screen wide enough for two (161 columns and 25 rows or more) each side gets the three panes,
// and every cell that differs between them is marked; narrower, a table of the headline figures
// of both sides. Below, one narration (what the step did on each side and a summary of how B
// differs) and one log.

import Engine

struct CompareState {
    var b: Session
    /// B's overrides on top of A's.
    var vs: [String]
    let cache = DerivedCache()
    /// The figures table's scroll (compact view).
    var scroll = 0
}

extension AppState {
    /// `c`, `umptui compare`: forks the session into side B with `vs` in force as well. An error
    /// message when the overrides do not fit.
    mutating func startCompare(vs: [String]) -> String? {
        guard !vs.isEmpty else { return "compare needs KEY=VALUE, e.g. nic.iotlb=16" }
        var b = session
        do {
            try b.follow(session, vs: vs)
        } catch {
            return error.items.first.map { "\($0.message)" + ($0.hint.map { " (\($0))" } ?? "") } ?? "bad override"
        }
        compare = CompareState(b: b, vs: vs)
        recorder?.note("# compare --vs " + vs.joined(separator: " "))
        return nil
    }

    /// After every move of side A: side B runs the same.
    mutating func syncCompare() {
        guard var c = compare else { return }
        if (try? c.b.follow(session, vs: c.vs)) == nil {
            compare = nil
            message = "compare closed: B's overrides no longer fit the declarations"
            return
        }
        compare = c
    }

    /// One side as an AppState drawing its panes only: A is this one; B has B's session and cache,
    /// and cursors on the same addresses as A's (the same VA, pfn and IOVA).
    func side(_ isB: Bool, width: Int, height: Int) -> AppState {
        var s = self
        s.overlay = nil
        s.editor = nil
        s.recorder = nil
        s.compare = nil
        (s.width, s.height) = (width, height)
        let overrides = Screen.overrideText(isB ? compare?.b.overrides ?? [] : session.overrides, room: width - 6) ?? "as written"
        s.sideLabel = (isB ? "B " : "A ") + glyphs.dot + " " + overrides
        guard isB, let c = compare else { return s }
        s.session = c.b
        s.cache = c.cache
        s.following = false
        let a = session.state, b = c.b.state
        if let cur = process.cursor, let p = a.processes[safe: cur.proc],
           let q = b.processes.firstIndex(where: { $0.meta.name == p.meta.name }) {
            s.process.cursor = (q, cur.vpn)
        } else {
            s.process.cursor = nil
        }
        s.physical.cursor = min(physical.cursor, max(0, b.phys.frameCount - 1))
        let dc = device.cursor
        if let dev = a.devices[safe: dc.device], let e = cache.ioptes(session, device: dc.device)[safe: dc.index],
           let d = b.devices.firstIndex(where: { $0.name == dev.name }) {
            let list = c.cache.ioptes(c.b, device: d)
            let i = list.firstIndex { e.iova >= $0.iova && e.iova < $0.iova + $0.size } ?? 0
            s.device.cursor = (d, i)
        }
        return s
    }
}

/// The overrides of the first `# compare --vs K=V ...` line of a recording (in its header when
/// recording began in compare mode, where `c` was pressed otherwise): a recording made in
/// compare mode replays in compare mode. Empty when there is none.
func compareOverrides(in source: String) -> [String] {
    guard ScriptText.isRecording(source) else { return [] }
    for line in scenarioSourceLines(source) {
        let t = line.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("# compare --vs ") {
            return t.dropFirst("# compare --vs ".count).split(separator: " ").map(String.init)
        }
    }
    return []
}

enum CompareScreen {
    /// Two full sides need this much room; below it the compact view.
    static let fullWidth = 2 * ScreenLayout.minWidth + 1
    static let fullHeight = ScreenLayout.minHeight + 1

    static func isFull(width: Int, height: Int) -> Bool { width >= fullWidth && height >= fullHeight }

    static func render(_ app: AppState) -> Canvas {
        var c = Canvas(width: app.width, height: app.height)
        c.asciiOnly = app.glyphs.isASCII
        let layout = ScreenLayout(width: app.width, height: app.height)
        guard !layout.tooSmall, let cmp = app.compare else {
            var plain = app
            plain.compare = nil
            return Screen.render(plain)
        }
        let g = app.glyphs
        drawHeader(app, &c)
        let top = 1, paneRows = layout.narration.y - top
        if isFull(width: app.width, height: app.height) {
            let w = (app.width - 1) / 2
            var a = app.side(false, width: w, height: paneRows)
            // Both sides the same width, so that the same thing sits in the same cell on each.
            var b = app.side(true, width: w, height: paneRows)
            a.prepare()
            b.prepare()
            let ca = Screen.render(a), cb = Screen.render(b)
            blit(ca, &c, x: 0, y: top)
            blit(cb, &c, x: w + 1, y: top)
            for y in top..<(top + paneRows) { c.put(w, y, g.vline, .separator) }
            // What differs is marked on both sides, cell by cell below the side labels.
            for y in 1..<paneRows {
                for x in 0..<min(ca.width, cb.width) where ca[x, y].char != cb[x, y].char {
                    var l = c[x, top + y], r = c[w + 1 + x, top + y]
                    if l.mark == .none { l.mark = .differs; c[x, top + y] = l }
                    if r.mark == .none { r.mark = .differs; c[w + 1 + x, top + y] = r }
                }
            }
        } else {
            drawTable(app, cmp, &c, Rect(x: 0, y: top, width: app.width, height: paneRows))
        }
        drawNarration(app, cmp, &c, layout.narration)
        drawLog(app, cmp, &c, layout.log)
        drawFooter(app, &c)
        if let e = app.editor { Overlays.drawEditor(g, e, &c) }
        // Side A's selection is the one the inspector shows: the cursor the panes and `/` move.
        Screen.drawOverlay(app, &c)
        return c
    }

    private static func blit(_ src: Canvas, _ dst: inout Canvas, x: Int, y: Int) {
        for sy in 0..<src.height where y + sy < dst.height {
            for sx in 0..<src.width where x + sx < dst.width { dst[x + sx, y + sy] = src[sx, sy] }
        }
    }

    private static func drawHeader(_ app: AppState, _ c: inout Canvas) {
        let g = app.glyphs
        let s = app.session
        c.fill(Rect(x: 0, y: 0, width: c.width, height: 1), " ", .header)
        var x = c.text(1, 0, "UMPTUI", .headerAccent)
        if app.recorder != nil { x = c.text(x, 0, g.isASCII ? " *REC" : " ●REC", .recording) }
        x = c.text(x, 0, " \(g.dot) compare \(g.dot) \(s.fileName) \(g.dot) step \(s.current)/\(s.total)", .header)
        let vs = " \(g.dot) B: " + (app.compare?.vs.joined(separator: " ") ?? "")
        x = c.text(x, 0, vs, .headerAccent, limit: c.width - x - 9, ellipsis: g.ellipsis)
        if c.width - 8 > x { c.text(c.width - 7, 0, "? help ", .header) }
    }

    private static func drawTable(_ app: AppState, _ cmp: CompareState, _ c: inout Canvas, _ r: Rect) {
        let g = app.glyphs
        let rows = Overlays.figureRows(app.session.timeline.figures, cmp.b.timeline.figures) { $0.phrase }
        let valueW = 12
        let labelW = min(30, max(16, r.width / 3))
        let xa = r.x + 2 + labelW, xb = xa + valueW + 1, xd = xb + valueW + 1
        c.fill(Rect(x: r.x, y: r.y, width: r.width, height: 1), " ", .paneTitle)
        c.text(r.x + 2, r.y, "FIGURE", .paneTitle)
        c.text(xa, r.y, "A", .paneTitle)
        c.text(xb, r.y, "B", .paneTitle)
        let differing = rows.filter(\.changed).count
        c.text(xd, r.y, differing == 0 ? "the same" : "B against A (\(plural(differing, "figure")) differ)", .paneTitle,
               limit: r.maxX - xd - 1, ellipsis: g.ellipsis)
        let visible = r.height - 1
        let start = min(cmp.scroll, max(0, rows.count - visible))
        for (i, row) in rows[start..<min(rows.count, start + visible)].enumerated() {
            let y = r.y + 1 + i
            let mark: Mark = row.changed ? .differs : .none
            if row.changed { c.put(r.x, y, g.isASCII ? "*" : "≠", .warning) }
            c.text(r.x + 2, y, row.label, row.changed ? .normal : .dim, limit: labelW - 1, ellipsis: g.ellipsis)
            c.text(xa, y, row.a, .normal, limit: valueW, ellipsis: g.ellipsis)
            c.text(xb, y, row.b, row.changed ? .warning : .normal, limit: valueW, mark: mark, ellipsis: g.ellipsis)
            c.text(xd, y, row.change, .warning, limit: r.maxX - xd - 1, ellipsis: g.ellipsis)
        }
        if rows.count > visible {
            c.text(r.maxX - 14, r.maxY - 1, " \(start + visible)/\(rows.count) \(g.isASCII ? "j/k" : "↑↓") ", .dim)
        }
    }

    /// What B's step did otherwise, in words: "B: 14976 more IOTLB misses, +4.5 ms stall".
    static func stepSummary(_ a: Session, _ b: Session, step n: Int) -> String? {
        guard n >= 1, n <= a.records.count, n <= b.records.count else { return nil }
        let ra = a.records[a.records.startIndex + n - 1], rb = b.records[b.records.startIndex + n - 1]
        return Figures.summary(Figures.differences(a.engine.stepFigures(ra), b.engine.stepFigures(rb)))
    }

    private static func drawNarration(_ app: AppState, _ cmp: CompareState, _ c: inout Canvas, _ r: Rect) {
        let g = app.glyphs
        let a = app.session, b = cmp.b
        c.fill(Rect(x: r.x, y: r.y, width: r.width, height: 1), g.hline, .separator)
        let width = r.width - 2
        var lines: [(String, Role)] = []
        if let ra = a.lastRecord {
            let rb = b.lastRecord
            var x = c.text(r.x + 1, r.y, " STEP \(ra.step) of \(a.total) ", .paneTitle)
            x = c.text(x, r.y, " " + ra.command + " ", .current, limit: r.maxX - x - 26, ellipsis: g.ellipsis)
            x = c.text(x + 1, r.y, " A " + ra.outcome.word + " ", ra.outcome.ok ? .ok : .error)
            if let rb { c.text(x + 1, r.y, " B " + rb.outcome.word + " ", rb.outcome.ok ? .ok : .error) }
            if let s = stepSummary(a, b, step: ra.step) { lines += wrapText(s, width: width).map { ($0, .warning) } }
            lines += wrapText("A: " + ra.text, width: width).prefix(2).map { ($0, .normal) }
            if let rb { lines += wrapText("B: " + rb.text, width: width).prefix(2).map { ($0, .normal) } }
            for n in ra.notes { lines += wrapText(n, width: width).map { ($0, .note) } }
        } else {
            c.text(r.x + 1, r.y, " STEP 0 of \(a.total) ", .paneTitle)
            lines += wrapText("Two timelines of one script: A as the session runs it, B with \(cmp.vs.joined(separator: " ")) as well. "
                              + "Space steps both; : lines run on both; c closes compare.", width: width).map { ($0, .normal) }
        }
        if let next = a.nextStep, lines.count < r.height - 1 {
            lines += wrapText("next: \(next.statement.text)   (\(g.space) runs it on both sides)", width: width).map { ($0, .dim) }
        }
        let rows = r.height - 1
        for (i, (text, role)) in lines.prefix(rows).enumerated() { c.text(r.x + 1, r.y + 1 + i, text, role, limit: width) }
        if lines.count > rows, rows > 0 { c.put(r.maxX - 2, r.y + rows, g.ellipsis, .dim) }
    }

    private static func drawLog(_ app: AppState, _ cmp: CompareState, _ c: inout Canvas, _ r: Rect) {
        let g = app.glyphs
        let a = app.session, b = cmp.b
        c.fill(Rect(x: r.x, y: r.y, width: r.width, height: 1), g.hline, .separator)
        c.text(r.x + 1, r.y, " LOG ", app.focus == .log ? .paneTitleFocused : .paneTitle)
        let rows = r.height - 1
        let records = a.records
        let end = max(0, records.count - app.log.scroll)
        let start = max(0, end - rows)
        let numberWidth = String(max(1, a.total)).count
        for (i, ra) in records[(records.startIndex + start)..<(records.startIndex + end)].enumerated() {
            let y = r.y + 1 + i
            let current = ra.step == records.count
            c.put(r.x, y, current ? g.cursor : " ", .current)
            let num = String(ra.step)
            var x = c.text(r.x + 1 + numberWidth - num.count, y, num, current ? .current : .dim)
            let wb = ra.step <= b.records.count ? b.records[b.records.startIndex + ra.step - 1].outcome : nil
            x = c.text(x + 1, y, "A " + ra.outcome.word, ra.outcome.ok ? .ok : .error)
            x = c.text(x + 1, y, "B " + (wb?.word ?? "-"), wb?.ok ?? true ? .ok : .error)
            x = c.text(x + 2, y, ra.command, current ? .current : .normal, limit: min(48, r.maxX - x - 3), ellipsis: g.ellipsis)
            if let s = stepSummary(a, b, step: ra.step) {
                c.text(x + 2, y, s, s.hasSuffix("the same") ? .dim : .warning, limit: r.maxX - x - 3, ellipsis: g.ellipsis)
            }
        }
        if records.isEmpty { c.text(r.x + 2, r.y + 1, "no steps yet", .dim) }
    }

    private static func drawFooter(_ app: AppState, _ c: inout Canvas) {
        let y = c.height - 1
        c.fill(Rect(x: 0, y: y, width: c.width, height: 1), " ", .footerText)
        var x = 1
        let g = app.glyphs
        for (k, w) in [(g.space, "step both"), ("b", "back"), (":", "both"), ("c", "close compare"), ("?", "help"), ("q", "quit")] {
            x = c.text(x, y, k, .footerKey)
            x = c.text(x, y, " " + w + "  ", .footerText)
        }
        if let msg = app.message, c.width - x > 10 {
            let start = max(x, c.width - msg.count - 1)
            c.text(start, y, msg, .footerText, limit: c.width - start - 1, ellipsis: g.ellipsis)
        }
    }
}
