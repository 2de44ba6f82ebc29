// The narration: the current step's what and why (naming the kernel function), its notes and any
// failed expect; below it the LOG panel: the steps so far, outcomes marked, scrolled with its keys.

import Engine

enum NarrationPane {
    static func draw(_ session: Session, _ g: Glyphs, _ c: inout Canvas, _ r: Rect) {
        let s = session
        c.fill(Rect(x: r.x, y: r.y, width: r.width, height: 1), g.hline, .separator)
        var lines: [(String, Role)] = []
        let width = r.width - 2
        // Something was left out: the last row says so, with the key that shows it all.
        var cut = false
        if let rec = s.lastRecord {
            var x = c.text(r.x + 1, r.y, " STEP \(rec.step) of \(s.total) ", .paneTitle)
            x = c.text(x, r.y, rec.line > 0 ? "line \(rec.line) " : "typed ", .dim)
            x = c.text(x, r.y, " " + rec.command + " ", .current, limit: r.maxX - x - 12, ellipsis: g.ellipsis)
            c.text(x + 1, r.y, " " + rec.outcome.word + " ", rec.outcome.ok ? .ok : .error)
            let tag = rec.outcome.ok ? "" : "[\(rec.outcome.word)] "
            // Hazards first: they are what a kernel engineer must not miss.
            var what = rec.hazards.flatMap { wrapText("HAZARD: " + $0.text, width: width) }.map { ($0, Role.warning) }
            what += wrapText(tag + rec.text, width: width).map { ($0, rec.outcome.ok ? Role.normal : .error) }
            if let t = rec.trace, t.rssSamples.count > 1 {
                let top = formatSizeCompact(UInt64(t.rssSamples.max() ?? 0) << pageShift)
                what.insert(("rss over the trace " + t.sparkline(g.spark, width: max(8, min(64, width - 30))) + " up to \(top)", .label), at: 0)
            }
            var why = rec.notes.flatMap { wrapText($0, width: width) }.map { ($0, Role.note) }
            // A note describes the run as written; under overrides this step ran otherwise.
            if !rec.notes.isEmpty && s.ranDifferently(rec.step) {
                why = wrapText("[written for other settings] " + rec.notes.joined(separator: " "), width: width).map { ($0, Role.dim) }
            }
            // When both do not fit the note wins: the script's "why" is what a lecture is built on.
            // It keeps all its rows but one for the narration; `s` shows the step whole.
            let rows = r.height - 1
            if what.count + why.count > rows {
                let whyRows = min(why.count, max(1, rows - 1))
                let whatRows = min(what.count, rows - whyRows)
                if why.count > whyRows { why = Array(why.prefix(whyRows)); cut = true }
                if what.count > whatRows { what = Array(what.prefix(whatRows)); what[what.count - 1].0 = ellipsize(what[what.count - 1].0, width, g); cut = true }
            }
            lines += what + why
        } else {
            c.text(r.x + 1, r.y, " STEP 0 of \(s.total) ", .paneTitle)
            let st = s.state
            let free = formatSize(UInt64(st.phys.freeFrames) << pageShift)
            lines += wrapText("The machine has booted: \(formatSize(st.config.ram)) of RAM, \(free) free in the buddy allocator; the rest is the kernel image, the memmap and low memory.", width: width).map { ($0, .normal) }
        }
        // Failed expects of this step (at step 0: those before the first step, about the booted machine).
        for f in s.expectFailures[s.current] ?? [] { lines += wrapText("expect failed: " + f, width: width).map { ($0, .error) } }
        // The hint of what comes next shows only where there is room for it.
        var hint: [(String, Role)] = []
        if let next = s.nextStep {
            hint = wrapText("next: \(next.statement.text)   (\(g.space) to run it, b to step back)", width: width).map { ($0, .dim) }
        } else if s.current > 0 {
            for n in s.trailingNotes { lines += wrapText(n, width: width).map { ($0, .note) } }
            hint = [("the end: \(g.enter) inspects, : runs a line of your own, Home starts over", .dim)]
        }
        let rows = r.height - 1
        if lines.count + hint.count <= rows { lines += hint }
        guard rows > 0 else { return }
        var shown = Array(lines.prefix(rows))
        let marker = "\(g.ellipsis)more s"
        if cut || lines.count > rows, !shown.isEmpty {
            // The marker takes the end of the last row; the text before it ends at a word.
            var last = shown[shown.count - 1].0
            let room = width - marker.count - 1
            if last.count > room {
                last = String(last.prefix(room))
                if let space = last.lastIndex(of: " "), last.distance(from: last.startIndex, to: space) > room / 2 { last = String(last[..<space]) }
            }
            shown[shown.count - 1].0 = last
            c.text(r.x + 1 + width - marker.count, r.y + rows, marker, .dim)
        }
        for (i, (text, role)) in shown.enumerated() {
            c.text(r.x + 1, r.y + 1 + i, text, role, limit: width)
        }
    }

    private static func ellipsize(_ s: String, _ width: Int, _ g: Glyphs) -> String {
        String(s.prefix(max(0, width - 1))) + String(g.ellipsis)
    }
}

/// The LOG: every step so far, newest at the bottom; Up and Down scroll back through them.
struct LogPanel: Panel {
    /// Entries scrolled back from the newest.
    var scroll = 0

    func selection(_ ctx: PanelContext) -> Selection? { nil }

    func titleDetail(_ ctx: PanelContext) -> String { "" }

    /// The record the log's cursor is on (Enter shows it whole).
    func record(_ session: Session) -> StepRecord? { session.records.dropLast(scroll).last }

    /// `ctx.body` is the whole log region: its title row, then the entries.
    mutating func move(_ action: Action, _ ctx: PanelContext) {
        let page = max(1, ctx.body.height - 2)
        switch action {
        case .up: scroll += 1
        case .down: scroll = max(0, scroll - 1)
        case .pageUp: scroll += page
        case .pageDown: scroll = max(0, scroll - page)
        default: break
        }
        scroll = min(scroll, max(0, ctx.session.records.count - 1))
    }

    /// Nothing to zoom in the log (AppState zooms the pages instead).
    mutating func zoom(in: Bool, _ ctx: PanelContext) -> HandleResult { .none }

    mutating func click(x: Int, y: Int, _ ctx: PanelContext) -> HandleResult { .redraw }

    mutating func prepare(_ ctx: PanelContext) {
        scroll = min(scroll, max(0, ctx.session.records.count - 1))
    }

    func draw(_ ctx: DrawContext, _ c: inout Canvas) {
        let s = ctx.session
        let g = ctx.glyphs
        let r = ctx.body
        c.fill(Rect(x: r.x, y: r.y, width: r.width, height: 1), g.hline, .separator)
        var x = c.text(r.x + 1, r.y, " LOG ", ctx.focused ? .paneTitleFocused : .paneTitle)
        var outcomes: [String: Int] = [:]
        for rec in s.records { outcomes[rec.outcome.word, default: 0] += 1 }
        let summary = outcomes.sorted { ($0.key == "ok" ? 0 : 1, $0.key) < ($1.key == "ok" ? 0 : 1, $1.key) }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        if !summary.isEmpty { x = c.text(x, r.y, " \(summary) ", .dim) }
        LogPanel.drawScrubber(ctx, &c, from: x + 1)
        let rows = r.height - 1
        let records = s.records
        let end = max(0, records.count - scroll)
        let start = max(0, end - rows)
        let numberWidth = String(max(1, s.total)).count
        let trouble = ctx.panel.cache.trouble(s)
        for (i, rec) in records[start..<end].enumerated() {
            let y = r.y + 1 + i
            let current = rec.step == records.count
            c.put(r.x, y, current ? g.cursor : " ", .current)
            let num = String(rec.step)
            var cx = c.text(r.x + 1 + numberWidth - num.count, y, num, current ? .current : .dim)
            let word = rec.outcome.word
            let failed = s.expectFailures[rec.step] != nil
            cx = c.text(cx + 1, y, word + String(repeating: " ", count: max(1, 12 - word.count)), rec.outcome.ok ? .ok : .error)
            cx = c.text(cx, y, rec.command, current ? .current : .normal, limit: min(60, r.maxX - cx - 1), ellipsis: g.ellipsis)
            if let t = trouble[rec.step] { cx = c.text(cx + 2, y, "[\(t)]", .warning, limit: r.maxX - cx - 3) }
            let detail = failed ? "expect failed" : LogPanel.firstClause(rec.text)
            c.text(cx + 2, y, detail, failed ? .error : .dim, limit: r.maxX - cx - 3, ellipsis: g.ellipsis)
        }
        if records.isEmpty { c.text(r.x + 2, r.y + 1, "no steps yet", .dim) }
    }

    /// The timeline on the log's title row: steps run (heavy), the current step, steps ahead
    /// (light), and `!` where a known step went wrong (`[` and `]` jump there).
    static func drawScrubber(_ ctx: DrawContext, _ c: inout Canvas, from minX: Int) {
        let s = ctx.session
        let g = ctx.glyphs
        let r = ctx.body
        let total = max(1, s.total)
        let label = " [ ] "
        let width = min(60, max(0, r.maxX - 2 - minX - label.count - 2))
        guard width >= 10 else { return }
        let x0 = r.maxX - 2 - width
        let trouble = ctx.panel.cache.troubleSteps(s)
        // Cell i holds steps (i*total/width, (i+1)*total/width]; cell 0 holds step 0 too.
        func cell(_ step: Int) -> Int { min(width - 1, max(0, (step * width - 1) / total)) }
        var bad = Set<Int>()
        for t in trouble where t <= s.total { bad.insert(cell(t)) }
        let here = cell(s.current)
        c.text(x0 - label.count, r.y, label, .dim)
        for i in 0..<width {
            let done = s.current > 0 && i <= here
            var ch: Character = done ? (g.isASCII ? "=" : "━") : g.hline
            var role: Role = done ? .paneTitle : .dim
            if bad.contains(i) { ch = "!"; role = .warning }
            if i == here { ch = g.isASCII ? "|" : "●"; role = .current }
            c.put(x0 + i, r.y, ch, role)
        }
    }

    /// The narration up to its first clause, for a one-line log entry.
    static func firstClause(_ text: String) -> String {
        if let i = text.firstIndex(where: { $0 == ":" || $0 == ";" }) { return String(text[..<i]) }
        return text
    }
}
