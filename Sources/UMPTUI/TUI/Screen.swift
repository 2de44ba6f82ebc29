// The whole screen as a function of AppState: header, the three panes, narration and log, footer,
// then overlays. Views write into a Canvas; they never touch the terminal.

import Engine

enum Screen {
    static func render(_ app: AppState) -> Canvas {
        if app.compare != nil && app.sideLabel == nil { return CompareScreen.render(app) }
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
        func ctx(_ pane: Pane) -> DrawContext {
            DrawContext(panel: app.context(pane), changes: app.cache.changes, highlight: highlight,
                        showsCursor: app.selectionPane == pane, focused: app.focus == pane)
        }
        if let label = app.sideLabel {
            c.fill(Rect(x: 0, y: 0, width: c.width, height: 1), " ", .header)
            c.text(1, 0, label, .headerAccent, limit: c.width - 2, ellipsis: g.ellipsis)
        } else {
            drawHeader(app, &c)
        }
        let panes: [(Pane, any Panel)] = [(.process, app.process), (.physical, app.physical), (.device, app.device)]
        for (pane, panel) in panes {
            drawPaneTitle(&c, layout.rect(pane), pane, panel.titleDetail(app.context(pane)), focused: app.focus == pane, g)
        }
        // Separators between the panes.
        for x in [layout.physical.x - 1, layout.device.x - 1] {
            for y in layout.process.y..<layout.process.maxY { c.put(x, y, g.vline, .separator) }
        }
        for (pane, panel) in panes { panel.draw(ctx(pane), &c) }
        if app.sideLabel != nil { return c }
        NarrationPane.draw(app.session, g, &c, layout.narration)
        app.log.draw(ctx(.log), &c)
        drawFooter(app, &c)
        if let e = app.editor { Overlays.drawEditor(g, e, &c) }
        drawOverlay(app, &c)
        return c
    }

    /// The overlay on top of everything, if one is open.
    static func drawOverlay(_ app: AppState, _ c: inout Canvas) {
        let g = app.glyphs
        switch app.overlay {
        case .help(let scroll)?: Overlays.drawHelp(g, scroll: scroll, &c)
        case .inspector?, .stepView?: Inspector.draw(app, &c)
        case let .whatIf(w, scroll)?: Overlays.drawWhatIf(g, w, scroll: scroll, &c)
        case let .quiz(q)?: Overlays.drawQuiz(g, q, score: app.quiz?.score ?? QuizScore(), step: app.session.current + 1, &c)
        case let .quizReveal(a)?:
            Overlays.drawReveal(g, a, score: app.quiz?.score ?? QuizScore(), done: app.session.current >= app.session.total, &c)
        case nil: break
        }
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
        // Recording shows at the left, where a lecturer's audience looks first.
        if app.recorder != nil { x = c.text(x, 0, g.isASCII ? " *REC" : " ●REC", .recording) }
        var parts = [file, "step \(s.current)/\(s.total)"]
        // Quiz mode and its score stay in view, beside the step.
        let quizText = app.quiz.map { "QUIZ \($0.score.right)/\($0.score.asked)" }
        if let quizText { parts.append(quizText) }
        // Overrides in force stay in view: what the screen shows is not the file as written.
        let overrides = overrideText(s.overrides, room: max(12, c.width / 3))
        if let overrides { parts.append(overrides) }
        parts += ["kernel \(cfg.kernel.rawValue)", "\(formatSize(cfg.ram)) RAM", "thp \(cfg.thp.rawValue)"]
        // Narrow screens drop the machine's details before the step, the kernel or play and speed.
        let rec = app.recorder != nil ? 5 : 0
        while parts.count > 2 + (overrides == nil ? 1 : 2) + (quizText == nil ? 0 : 1), 7 + rec + parts.reduce(0, { $0 + $1.count + 3 }) + play.count + 3 > c.width { parts.removeLast() }
        // Still too wide: the file name gives way (its end, the name, stays).
        let over = 7 + rec + parts.reduce(0, { $0 + $1.count + 3 }) + play.count + 3 - c.width
        if over > 0, file.count - over >= 8 { parts[0] = String(g.ellipsis) + file.suffix(file.count - over - 1) }
        for p in parts { x = c.text(x, 0, " \(g.dot) \(p)", p == overrides || p == quizText ? .headerAccent : .header) }
        x = c.text(x, 0, " \(g.dot) ", .header)
        c.text(x, 0, play, app.playing ? .headerAccent : .header)
        let hint = "? help "
        if c.width - hint.count > x + play.count + 2 { c.text(c.width - hint.count, 0, hint, .header) }
    }

    /// "set nic.iotlb=16, machine.ram=1G" in `room` columns, or "set nic.iotlb=16 +1"; nil with none.
    static func overrideText(_ overrides: [String], room: Int) -> String? {
        guard !overrides.isEmpty else { return nil }
        let all = "set " + overrides.joined(separator: ", ")
        if all.count <= room || overrides.count == 1 { return all.count <= room ? all : String(all.prefix(room - 1)) + "…" }
        var shown = overrides.count
        while shown > 1, "set ".count + overrides.prefix(shown).joined(separator: ", ").count + " +\(overrides.count - shown)".count > room { shown -= 1 }
        return "set " + overrides.prefix(shown).joined(separator: ", ") + " +\(overrides.count - shown)"
    }

    static func speedText(_ s: Double) -> String {
        s >= 1 ? "\(Int(s))x" : "\(s)x"
    }

    private static func drawPaneTitle(_ c: inout Canvas, _ r: Rect, _ pane: Pane, _ detail: String, focused: Bool, _ g: Glyphs) {
        let role: Role = focused ? .paneTitleFocused : .paneTitle
        c.fill(Rect(x: r.x, y: r.y, width: r.width, height: 1), " ", focused ? .paneTitleFocused : .normal)
        let x = c.text(r.x + 1, r.y, pane.title, role, limit: r.width - 1)
        c.text(x + 1, r.y, detail, focused ? .paneTitleFocused : .dim, limit: r.maxX - x - 2, ellipsis: g.ellipsis)
    }

    private static func drawFooter(_ app: AppState, _ c: inout Canvas) {
        let y = c.height - 1
        c.fill(Rect(x: 0, y: y, width: c.width, height: 1), " ", .footerText)
        var x = 1
        let msg = app.message ?? ""
        // While a find is active, n and N move through its matches: the footer says so first.
        let finding = app.activeFind != nil && app.overlay == nil && app.editor == nil
        let findKeys = [("n", "next match"), ("N", "previous"), ("Esc", "end find")]
        let findWidth = finding ? findKeys.reduce(0) { $0 + $1.0.count + $1.1.count + 3 } : 0
        var keys = KeyTable.footer(width: c.width - findWidth - (msg.isEmpty ? 0 : min(msg.count + 2, c.width / 2)), glyphs: app.glyphs)
        if finding { keys = findKeys + keys }
        // While a question is up only its letters, Esc, Q and q do anything: the footer says so.
        if case let .quiz(q)? = app.overlay {
            let letters = q.choices.count > 1 ? "\(q.choices.first?.letter ?? "a")-\(q.choices.last?.letter ?? "a")" : "a"
            keys = [(letters, "answer"), ("Esc", "put away"), ("Q", "end quiz"), ("q", "quit")]
        }
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
