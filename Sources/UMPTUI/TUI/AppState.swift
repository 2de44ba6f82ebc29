// The view state (focus, cursors, zoom, overlays, playing) and what each key does to it. Like
// htop's panels, a handler changes state and returns flags; only the App loop acts on them.

import Engine
import Foundation

struct HandleResult: OptionSet, Sendable {
    let rawValue: Int
    static let redraw = HandleResult(rawValue: 1)
    static let quit = HandleResult(rawValue: 2)
}

enum Overlay: Equatable, Sendable {
    case help(scroll: Int)
    case inspector
}

struct AppState {
    var session: Session
    var glyphs: Glyphs
    var width = 80
    var height = 24

    var focus: Pane = .process
    /// The data pane whose cursor is the selection (the log pane keeps the last one).
    var selectionPane: Pane = .process
    var procCursor: (proc: Int, vpn: UInt64)?
    var procZoom: UInt64?
    var procScroll = 0
    var physCursor = 0
    var physZoom: Int?
    var physScroll = 0
    var devCursor = (device: 0, index: 0)
    var devScroll = 0
    /// Log lines scrolled back from the newest.
    var logScroll = 0

    var overlay: Overlay?
    var editor: LineEditor?
    var history: [String] = []
    /// A short message for the footer (e.g. "at the last step").
    var message: String?

    var playing = false
    static let speeds: [Double] = [0.25, 0.5, 1, 2, 4, 8, 16]
    var speedIndex = 2
    var speed: Double { AppState.speeds[speedIndex] }
    /// Seconds between steps while playing.
    var playInterval: Double { 1.0 / speed }

    let cache = DerivedCache()

    init(session: Session, glyphs: Glyphs) {
        self.session = session
        self.glyphs = glyphs
    }

    var layout: ScreenLayout { ScreenLayout(width: width, height: height) }

    // MARK: Pane layouts at the current size

    func processLayout() -> ProcessLayout {
        let body = layout.body(.process)
        return ProcessLayout(state: session.state, width: body.width, zoom: procZoom,
                             maxRows: max(2, min(16, body.height / 3)))
    }

    func physicalLayout() -> PhysicalLayout {
        let body = layout.body(.physical)
        return PhysicalLayout(frames: session.state.phys.frameCount, width: body.width,
                              gridHeight: body.height - PhysicalLayout.infoRows - legendRows(body.width), zoom: physZoom)
    }

    func legendRows(_ width: Int) -> Int { width >= 40 ? 2 : 3 }

    /// The process pane's legend rows: only where there is room to spare.
    func processLegendRows() -> Int {
        let body = layout.body(.process)
        return body.height >= 20 ? (body.width >= 64 ? 1 : 2) : 0
    }

    /// Rows of the process pane's list (its body less the legend).
    var processListHeight: Int { layout.body(.process).height - processLegendRows() }

    func deviceLayout() -> DeviceLayout {
        DeviceLayout(iopteCounts: session.state.devices.map { $0.ioptes.count })
    }

    /// The process cursor, clamped to a cell that exists.
    func resolvedProcCursor(_ l: ProcessLayout) -> (row: Int, col: Int)? {
        if let c = procCursor, let hit = l.locate(proc: c.proc, vpn: c.vpn) { return hit }
        if let c = procCursor {
            // The page went away (munmap, exit): the nearest row of the same process.
            let rows = l.rows.indices.filter { if case let .pages(p, _, _, _, _, _) = l.rows[$0] { p == c.proc } else { false } }
            if let r = rows.first { return (r, 0) }
        }
        return l.firstPagesRow.map { ($0, 0) }
    }

    /// What the selection is: the cursor cell of the last focused data pane.
    func selection() -> Selection? {
        switch selectionPane {
        case .process, .log:
            let l = processLayout()
            guard let (r, c) = resolvedProcCursor(l), let cell = l.cell(row: r, col: c) else { return nil }
            return .pages(proc: cell.proc, range: cell.range)
        case .physical:
            let l = physicalLayout()
            let (r, c) = l.locate(physCursor)
            return l.cell(row: r, col: c).map { .frames($0) }
        case .device:
            let devices = session.state.devices
            guard devices.indices.contains(devCursor.device) else { return nil }
            let list = cache.ioptes(session, device: devCursor.device)
            guard list.indices.contains(devCursor.index) else { return nil }
            return .iopte(device: devCursor.device, iova: list[devCursor.index].iova)
        }
    }

    // MARK: Keys

    mutating func handle(_ key: Key) -> HandleResult {
        if case .resize = key { return .redraw }
        if editor != nil { return handleEditor(key) }
        if case let .mouse(m) = key { return handleMouse(m) }
        if layout.tooSmall {
            return KeyTable.action(for: key) == .quit ? .quit : []
        }
        if let o = overlay {
            switch (o, KeyTable.action(for: key)) {
            case (.help(let s), .down?): overlay = .help(scroll: min(s + 1, Overlays.helpLines(glyphs).count))
            case (.help(let s), .up?): overlay = .help(scroll: max(0, s - 1))
            case (.help(let s), .pageDown?): overlay = .help(scroll: min(s + 10, Overlays.helpLines(glyphs).count))
            case (.help(let s), .pageUp?): overlay = .help(scroll: max(0, s - 10))
            case (_, .quit?): return .quit
            case (.inspector, .step?), (.inspector, .back?): return perform(KeyTable.action(for: key)!)
            default: overlay = nil
            }
            return .redraw
        }
        guard let action = KeyTable.action(for: key) else { return [] }
        return perform(action)
    }

    mutating func perform(_ action: Action) -> HandleResult {
        message = nil
        switch action {
        case .quit: return .quit
        case .step:
            if !session.stepForward() { message = "at the last step (\(session.total))" }
            logScroll = 0
        case .back:
            if !session.stepBack() { message = "at the start: step 0, the machine as it booted" }
            logScroll = 0
        case .playPause:
            playing.toggle()
            if playing && session.current >= session.total { session.go(to: 0) }
        case .faster: speedIndex = min(AppState.speeds.count - 1, speedIndex + 1)
        case .slower: speedIndex = max(0, speedIndex - 1)
        case .goTo: editor = LineEditor(.goTo)
        case .first: session.go(to: 0)
        case .last: session.go(to: session.total)
        case .nextPane, .prevPane:
            let all = Pane.allCases
            let i = all.firstIndex(of: focus)! + (action == .nextPane ? 1 : all.count - 1)
            setFocus(all[i % all.count])
        case .up, .down, .left, .right, .pageUp, .pageDown: move(action)
        case .zoomIn, .zoomOut: zoom(in: action == .zoomIn)
        case .inspect: overlay = .inspector
        case .find: editor = LineEditor(.find)
        case .prompt: editor = LineEditor(.command)
        case .help: overlay = .help(scroll: 0)
        case .close: overlay = nil
        }
        return .redraw
    }

    mutating func setFocus(_ pane: Pane) {
        focus = pane
        if pane != .log { selectionPane = pane }
    }

    /// Called by the loop while playing: one step, pausing at the end.
    mutating func tick() -> HandleResult {
        guard playing else { return [] }
        if !session.stepForward() {
            playing = false
            message = "played to the end"
        }
        logScroll = 0
        return .redraw
    }

    // MARK: Moving

    private mutating func move(_ action: Action) {
        switch focus {
        case .process: moveProcess(action)
        case .physical: movePhysical(action)
        case .device: moveDevice(action)
        case .log:
            let page = max(1, layout.log.height - 2)
            switch action {
            case .up: logScroll += 1
            case .down: logScroll = max(0, logScroll - 1)
            case .pageUp: logScroll += page
            case .pageDown: logScroll = max(0, logScroll - page)
            default: break
            }
            logScroll = min(logScroll, max(0, session.records.count - 1))
        }
    }

    private mutating func moveProcess(_ action: Action) {
        let l = processLayout()
        guard var (r, c) = resolvedProcCursor(l) else { return }
        let page = max(1, processListHeight - 1)
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
        if let cell = l.cell(row: r, col: c) { procCursor = (cell.proc, cell.range.lowerBound) }
    }

    private mutating func movePhysical(_ action: Action) {
        let l = physicalLayout()
        var (r, c) = l.locate(physCursor)
        let page = max(1, layout.body(.physical).height - 4)
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
        physCursor = l.cell(row: r, col: c)?.lowerBound ?? 0
    }

    private mutating func moveDevice(_ action: Action) {
        let devices = session.state.devices
        guard !devices.isEmpty else { return }
        var d = min(devCursor.device, devices.count - 1)
        var i = devCursor.index
        let delta: Int
        switch action {
        case .up, .left: delta = -1
        case .down, .right: delta = 1
        case .pageUp: delta = -max(1, layout.body(.device).height - 2)
        case .pageDown: delta = max(1, layout.body(.device).height - 2)
        default: delta = 0
        }
        i += delta
        while i < 0 && d > 0 { d -= 1; i += max(1, devices[d].ioptes.count) }
        while i >= max(1, devices[d].ioptes.count) && d < devices.count - 1 { i -= max(1, devices[d].ioptes.count); d += 1 }
        i = max(0, min(i, max(0, devices[d].ioptes.count - 1)))
        devCursor = (d, i)
    }

    private mutating func zoom(in zoomIn: Bool) {
        switch focus {
        case .process, .log:
            let l = processLayout()
            var k: UInt64 = procZoom ?? 1
            if procZoom == nil, let c = procCursor, let v = session.state.processes[safe: c.proc]?.meta.vmaIndex(containing: c.vpn << pageShift),
               let start = session.state.processes[c.proc].meta.vmas[safe: v]?.start {
                k = l.scale[c.proc]?[start] ?? 1
            } else if procZoom == nil {
                k = l.scale.values.flatMap(\.values).max() ?? 1
            }
            procZoom = zoomIn ? max(1, k / 2) : min(1 << 30, k * 2)
            message = "process pane: \(procZoom!) page\(procZoom == 1 ? "" : "s") per cell"
        case .physical:
            let fit = PhysicalLayout(frames: session.state.phys.frameCount, width: layout.body(.physical).width,
                                     gridHeight: layout.body(.physical).height - PhysicalLayout.infoRows - legendRows(layout.body(.physical).width),
                                     zoom: nil).framesPerCell
            let f = physicalLayout().framesPerCell
            let next = zoomIn ? max(1, f / 2) : f * 2
            physZoom = next >= fit ? nil : next
            message = "physical pane: \(physZoom ?? fit) frame\((physZoom ?? fit) == 1 ? "" : "s") per cell\(physZoom == nil ? " (all of memory)" : "")"
        case .device:
            message = "the device pane lists one IOPTE per line; nothing to zoom"
        }
    }

    // MARK: Mouse

    private mutating func handleMouse(_ m: MouseEvent) -> HandleResult {
        guard !layout.tooSmall else { return [] }
        if overlay != nil {
            overlay = nil
            return .redraw
        }
        let pane = Pane.allCases.first { layout.rect($0).contains(m.x, m.y) }
        switch m.kind {
        case .wheelUp, .wheelDown:
            guard let pane else { return [] }
            setFocus(pane)
            for _ in 0..<3 { move(m.kind == .wheelUp ? .up : .down) }
            return .redraw
        case .click:
            guard let pane else { return [] }
            setFocus(pane)
            let canvas = Screen.render(self)
            for hit in canvas.hits.reversed() where hit.rect.contains(m.x, m.y) {
                let col = m.x - hit.rect.x
                switch hit.target {
                case let .pages(p, vpn, k, end):
                    let v = vpn + UInt64(col) * k
                    if v < end { procCursor = (p, v) }
                case let .frames(pfn, f, end):
                    let v = pfn + col * f
                    if v < end { physCursor = v }
                case let .iopte(d, i):
                    devCursor = (d, i)
                case .pane:
                    break
                }
                break
            }
            return .redraw
        }
    }

    // MARK: The line editor

    private mutating func handleEditor(_ key: Key) -> HandleResult {
        guard var e = editor else { return [] }
        switch key {
        case let .char(c): e.insert(c)
        case .backspace:
            if e.text.isEmpty { editor = nil; return .redraw }
            e.backspace()
        case .delete: e.delete()
        case .left: e.left()
        case .right: e.right()
        case .home: e.home()
        case .end: e.end()
        case .up: e.browse(history, older: true)
        case .down: e.browse(history, older: false)
        case .escape:
            editor = nil
            return .redraw
        case .tab:
            if e.purpose == .command {
                let state = session.state
                e.complete { words, partial in Completion.candidates(words: words, partial: partial, state: state) }
            }
        case .enter:
            editor = nil
            let text = e.text
            if !text.trimmingCharacters(in: .whitespaces).isEmpty && history.last != text { history.append(text) }
            if let problem = submit(e.purpose, text) {
                e.problem = problem
                e.choices = []
                editor = e
            }
            return .redraw
        case .mouse, .resize, .f, .backTab, .pageUp, .pageDown: return .redraw
        }
        editor = e
        return .redraw
    }

    /// Runs what the editor holds; a Problem keeps the editor open with the line as typed.
    private mutating func submit(_ purpose: LineEditor.Purpose, _ text: String) -> LineEditor.Problem? {
        let t = text.trimmingCharacters(in: .whitespaces)
        switch purpose {
        case .goTo:
            guard let n = Int(t), n >= 0 else {
                return LineEditor.Problem(message: "a step number from 0 to \(session.total)", column: 1, hint: nil)
            }
            session.go(to: n)
            logScroll = 0
            return nil
        case .find:
            return find(t)
        case .command:
            switch session.runPrompt(text) {
            case let .ran(record):
                logScroll = 0
                message = "ran as step \(record.step): \(record.outcome.word)"
                return nil
            case let .info(s):
                message = s
                return nil
            case let .error(msg, column, hint):
                return LineEditor.Problem(message: msg, column: column, hint: hint)
            }
        }
    }

    /// `/`: an address, PROC.BUF, a buffer name, `pfn N` or `iova ADDR`.
    private mutating func find(_ t: String) -> LineEditor.Problem? {
        let words = t.split(separator: " ").map(String.init)
        let state = session.state
        func number(_ s: String) -> UInt64? { parseSizeLiteral(s) }
        if words.count == 2, words[0] == "pfn" || words[0] == "frame", let n = number(words[1]) {
            guard n < UInt64(state.phys.frameCount) else {
                return LineEditor.Problem(message: "pfn \(n) is past the last frame (\(state.phys.frameCount - 1))", column: nil, hint: nil)
            }
            physCursor = Int(n)
            setFocus(.physical)
            return nil
        }
        if words.count == 2, words[0] == "iova", let a = number(words[1]) {
            return findIOVA(a) ? nil : LineEditor.Problem(message: "no device maps IOVA \(hex(a))", column: nil, hint: nil)
        }
        guard words.count == 1 else {
            return LineEditor.Problem(message: "find what?", column: nil, hint: "an address, PROC.BUF, a buffer name, pfn N or iova ADDR")
        }
        let w = words[0]
        if let a = number(w), w.first?.isNumber == true {
            for (p, proc) in state.processes.enumerated() where proc.meta.alive && proc.meta.vmaIndex(containing: a) != nil {
                procCursor = (p, a >> pageShift)
                setFocus(.process)
                return nil
            }
            if findIOVA(a) { return nil }
            return LineEditor.Problem(message: "no process or device maps \(hex(a))", column: nil, hint: "pfn N finds a frame")
        }
        let parts = w.split(separator: ".").map(String.init)
        for (p, proc) in state.processes.enumerated() where proc.meta.alive {
            let name = parts.count == 2 ? parts[1] : parts[0]
            if parts.count == 2 && proc.meta.name != parts[0] { continue }
            if let b = proc.meta.buffer(named: name) {
                procCursor = (p, b.start >> pageShift)
                setFocus(.process)
                return nil
            }
        }
        return LineEditor.Problem(message: "no buffer '\(w)'", column: 1, hint: "buffers: " + state.processes.filter(\.meta.alive).flatMap { p in p.meta.buffers.map { "\(p.meta.name).\($0.name)" } }.joined(separator: ", "))
    }

    private mutating func findIOVA(_ a: UInt64) -> Bool {
        for (d, _) in session.state.devices.enumerated() {
            let list = cache.ioptes(session, device: d)
            if let i = list.firstIndex(where: { a >= $0.iova && a < $0.iova + $0.size }) {
                devCursor = (d, i)
                setFocus(.device)
                return true
            }
        }
        return false
    }
}

func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
func hex(_ v: Int) -> String { "0x" + String(v, radix: 16) }

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}

extension AppState {
    /// Scrolls each pane so its cursor is on screen, moving as little as possible. Called before drawing.
    mutating func prepare() {
        guard !layout.tooSmall else { return }
        let pl = processLayout()
        if let (row, _) = resolvedProcCursor(pl) {
            procScroll = Self.scroll(procScroll, toShow: row, rows: processListHeight, total: pl.rows.count, context: 1)
            // Show the process title when the cursor is near the top of it.
            if procScroll > 0, row - procScroll < 3 {
                var r = row
                while r > 0, case .pages = pl.rows[r] { r -= 1 }
                while r > 0, case .vma = pl.rows[r] { r -= 1; break }
                // Only while the cursor stays on screen.
                if row - r < processListHeight { procScroll = min(procScroll, r) }
            }
        } else {
            procScroll = 0
        }
        let fl = physicalLayout()
        let fb = layout.body(.physical)
        let gridHeight = fb.height - PhysicalLayout.infoRows - legendRows(fb.width)
        physCursor = max(0, min(physCursor, session.state.phys.frameCount - 1))
        physScroll = Self.scroll(physScroll, toShow: fl.locate(physCursor).row, rows: gridHeight, total: fl.gridRows, context: 0)
        let devices = session.state.devices
        if devices.isEmpty {
            devCursor = (0, 0)
            devScroll = 0
        } else {
            let d = min(devCursor.device, devices.count - 1)
            devCursor = (d, max(0, min(devCursor.index, devices[d].ioptes.count - 1)))
            let dl = deviceLayout()
            var row = dl.row(device: d, index: devCursor.index)
            if devCursor.index < 3 { row = dl.starts[d] }
            devScroll = Self.scroll(devScroll, toShow: row, rows: layout.body(.device).height, total: dl.totalRows, context: 0)
            if devScroll > dl.row(device: d, index: devCursor.index) { devScroll = dl.row(device: d, index: devCursor.index) }
        }
    }

    static func scroll(_ current: Int, toShow row: Int, rows: Int, total: Int, context: Int) -> Int {
        guard rows > 0 else { return 0 }
        var s = current
        if row < s + context { s = row - context }
        if row >= s + rows - context { s = row - rows + 1 + context }
        return max(0, min(s, max(0, total - rows)))
    }
}
