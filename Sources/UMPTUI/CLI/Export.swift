// `umptui export FILE --cast OUT.cast | --text OUT.txt | --html OUT.html`: every step's screen,
// rendered by the same Canvas as the terminal UI, as an asciicast v2 recording (escapes for what
// changed between steps, a marker per step), as text, or as a self-contained HTML page.

import ArgumentParser
import Engine
import Foundation

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render every step's screen to an asciicast v2 file (--cast), text (--text) or HTML (--html).",
        discussion: "Times come from the script's wait lines, or --step-time per step. Existing files are kept unless --force.")

    @Argument(help: "The scenario or recording (*.ump).", completion: .file(extensions: ["ump"]))
    var file: String

    @Option(help: ArgumentHelp("Write an asciicast v2 recording (asciinema play OUT.cast).", valueName: "OUT.cast"))
    var cast: String?

    @Option(help: ArgumentHelp("Write every step's screen as text, for handouts.", valueName: "OUT.txt"))
    var text: String?

    @Option(help: ArgumentHelp("Write a self-contained HTML page of the screens with their colours.", valueName: "OUT.html"))
    var html: String?

    @Option(help: ArgumentHelp("The terminal size of the screens.", valueName: "COLSxROWS"))
    var size: String = "120x40"

    @Option(help: ArgumentHelp("Colours: 256, 8 or mono.", valueName: "256|8|mono"))
    var theme: String = "256"

    @Option(parsing: .unconditional, help: ArgumentHelp("Export only the first N steps.", valueName: "N"))
    var steps: Int?

    @Option(name: .customLong("step-time"), parsing: .unconditional, help: ArgumentHelp("Seconds per step where the script has no wait line.", valueName: "S"))
    var stepTime: Double = 1.5

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a declaration option, e.g. machine.ram=1G.", valueName: "KEY=VALUE"))
    var overrides: [String] = []

    @Flag(help: "Overwrite output files that exist.")
    var force = false

    @Flag(help: "ASCII glyphs only.")
    var ascii = false

    func validate() throws {
        if cast == nil && text == nil && html == nil { throw ValidationError("say what to write: --cast OUT.cast, --text OUT.txt or --html OUT.html") }
        if Export.parseSize(size) == nil { throw ValidationError("--size takes COLSxROWS from 80x24 to 1000x1000, like 120x40; got '\(size)'") }
        if Export.parseTheme(theme) == nil { throw ValidationError("--theme is 256, 8 or mono; got '\(theme)'") }
        if let steps, steps < 0 { throw ValidationError("--steps must be 0 or more") }
        if !(stepTime > 0 && stepTime <= 3600) { throw ValidationError("--step-time must be a positive number of seconds (at most 3600)") }
        let outs = [cast, text, html].compactMap { $0 }
        if Set(outs).count != outs.count { throw ValidationError("each output needs its own file") }
        if outs.contains(file) { throw ValidationError("an output file cannot be the scenario itself") }
    }

    static func parseSize(_ s: String) -> (Int, Int)? {
        let parts = s.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 2, let w = parts[0], let h = parts[1], (80...1000).contains(w), (24...1000).contains(h) else { return nil }
        return (w, h)
    }

    static func parseTheme(_ s: String) -> ThemeKind? {
        switch s {
        case "256": .color256
        case "8": .color8
        case "mono": .mono
        default: nil
        }
    }

    func run() throws {
        let (session, _) = try Tui.openSession(file: file, overrides: overrides)
        // Refuse before any work: an existing file is kept unless --force, and no output may be the
        // scenario itself or another output, however the path is spelled (./x, links).
        let outs = [cast, text, html].compactMap { $0 }
        let input = FileOutput.identity(file)
        var seen: [String: String] = [:]
        for path in outs {
            if let problem = FileOutput.cannotCreate(path, force: force) {
                printError("umptui: \(problem)")
                throw ExitCode(2)
            }
            let id = FileOutput.identity(path)
            if id == input {
                printError("umptui: \(path) is the scenario itself; pick another output file")
                throw ExitCode(2)
            }
            if let other = seen[id] {
                printError("umptui: \(path) and \(other) are the same file; each output needs its own")
                throw ExitCode(2)
            }
            seen[id] = path
        }
        // validate() refused anything these do not parse.
        guard let (width, height) = Export.parseSize(size), let themeKind = Export.parseTheme(theme) else {
            throw ValidationError("--size takes COLSxROWS and --theme 256, 8 or mono")
        }
        let theme = Theme(themeKind)
        // Every output is written as the steps render, so memory holds two screens, not all of them.
        var created: [String] = []
        var sinks: [FileSink] = []
        func open(_ path: String?) throws -> FileSink? {
            guard let path else { return nil }
            let existed = FileManager.default.fileExists(atPath: path)
            let sink = try FileSink(path: path, force: force)
            if !existed { created.append(path) }
            sinks.append(sink)
            return sink
        }
        var count = 0
        do {
            let castSink = try open(cast), textSink = try open(text), htmlSink = try open(html)
            try castSink?.write(Export.castHeader(CastHeader(width: width, height: height, timestamp: Export.timestamp(), title: session.fileName)))
            try htmlSink?.write(HTMLDriver.head(title: session.fileName, theme: theme))
            let classes = HTMLDriver.classes(theme)
            var last: Frame?
            try Export.forEachFrame(session: session, glyphs: ascii ? .ascii : .unicode, width: width, height: height,
                                    steps: steps, stepTime: stepTime) { f, previous in
                for line in castSink == nil ? [] : Export.castEvents(f, previous: previous, theme: theme) { try castSink?.write(line) }
                if count > 0 { try textSink?.write("") }
                try textSink?.write(String(Export.textBlock(f).dropLast()))
                try htmlSink?.write(HTMLDriver.screen(label: f.label, canvas: f.canvas, theme: theme, classes: classes))
                last = f
                count += 1
            }
            if let last { try castSink?.write(Export.castEnd(after: last)) }
            try htmlSink?.write(HTMLDriver.tail)
            for s in sinks { s.close() }
        } catch {
            for s in sinks { s.close() }
            // What this run created is removed: a failed export leaves nothing half written.
            for path in created { try? FileManager.default.removeItem(atPath: path) }
            printError("umptui: \(error)")
            throw ExitCode(2)
        }
        print("\(file): \(plural(count - 1, "step")) exported to \(outs.joined(separator: ", "))")
    }

    /// One rendered screen: when it appears (seconds from the start) and what the step was.
    struct Frame {
        var time: Double
        var label: String
        var canvas: Canvas
    }

    /// The booted machine's screen, then one per step, timed by wait lines or `stepTime`; `body`
    /// gets each with the screen before it.
    static func forEachFrame(session: Session, glyphs: Glyphs, width: Int, height: Int, steps: Int?, stepTime: Double,
                             _ body: (Frame, Canvas?) throws -> Void) rethrows {
        var p = ScreenPlayer(session: session, glyphs: glyphs, width: width, height: height)
        var previous = p.render()
        try body(Frame(time: 0, label: "step 0: the booted machine", canvas: previous), nil)
        var t = 0.0, n = 0
        while steps.map({ n < $0 }) ?? true, let label = p.nextLabel {
            t += (p.nextWaitMs.map { $0 / 1000 } ?? stepTime)
            guard p.step() else { break }
            n += 1
            let canvas = p.render()
            try body(Frame(time: t, label: label, canvas: canvas), previous)
            previous = canvas
        }
    }

    /// Every frame, kept (for tests and small exports).
    static func frames(session: Session, glyphs: Glyphs, width: Int, height: Int, steps: Int?, stepTime: Double) -> [Frame] {
        var out: [Frame] = []
        forEachFrame(session: session, glyphs: glyphs, width: width, height: height, steps: steps, stepTime: stepTime) { f, _ in
            out.append(f)
        }
        return out
    }

    struct CastHeader {
        var width: Int
        var height: Int
        var timestamp: Int
        var title: String
    }

    /// asciicast v2: a header line, then [time, "m", label] and [time, "o", escapes] per step; the
    /// last frame stays up for one more second before a final empty event ends the cast.
    static func cast(_ frames: [Frame], header h: CastHeader, theme: Theme) -> String {
        var lines = [castHeader(h)]
        var previous: Canvas?
        for f in frames {
            lines += castEvents(f, previous: previous, theme: theme)
            previous = f.canvas
        }
        if let last = frames.last { lines.append(castEnd(after: last)) }
        return lines.joined(separator: "\n") + "\n"
    }

    static func castHeader(_ h: CastHeader) -> String {
        var w = JSONWriter()
        w.beginObject()
        w.field("version", 2)
        w.field("width", h.width)
        w.field("height", h.height)
        w.field("timestamp", h.timestamp)
        w.field("title", h.title)
        w.beginObject("env")
        w.field("TERM", "xterm-256color")
        w.field("SHELL", "/bin/sh")
        w.endObject()
        w.endObject()
        return w.string
    }

    static func castEvents(_ f: Frame, previous: Canvas?, theme: Theme) -> [String] {
        let t = String(format: "%.3f", f.time)
        return ["[\(t), \"m\", \(JSONWriter.quote(f.label))]",
                "[\(t), \"o\", \(JSONWriter.quote(AnsiDriver.diff(from: previous, to: f.canvas, theme: theme)))]"]
    }

    static func castEnd(after last: Frame) -> String {
        "[\(String(format: "%.3f", last.time + 1)), \"o\", \"\"]"
    }

    static func textBlock(_ f: Frame) -> String {
        "=== \(f.label) ===\n" + TextDriver.text(f.canvas)
    }

    static func text(_ frames: [Frame]) -> String {
        frames.map(textBlock).joined(separator: "\n")
    }

    /// Now, or SOURCE_DATE_EPOCH when set (reproducible builds' convention).
    static func timestamp() -> Int {
        if let s = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"], let n = Int(s) { return n }
        return Int(Date().timeIntervalSince1970)
    }
}
