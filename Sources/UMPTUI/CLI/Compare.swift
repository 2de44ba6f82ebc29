// `umptui compare FILE [--set K=V ...] --vs K=V ...`: side A is FILE with the --set overrides, side B
// is A plus the --vs ones. The TUI in compare mode, a screen with --print-screen, or JSON Lines.

import ArgumentParser
import Engine
import Foundation

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a scenario on two timelines side by side: A with --set, B with --set and --vs.",
        discussion: "Without --json it opens the terminal UI in compare mode (c closes it). See docs/tui.md and docs/scenario-language.md.")

    @Argument(help: "The scenario file (*.ump).", completion: .file(extensions: ["ump"]))
    var file: String

    @Option(name: .customLong("set"), help: ArgumentHelp("An override of both sides, e.g. machine.ram=1G.", valueName: "KEY=VALUE"))
    var overrides: [String] = []

    @Option(name: .customLong("vs"), help: ArgumentHelp("An override of side B only, e.g. nic.iotlb=16 (at least one).", valueName: "KEY=VALUE"))
    var vs: [String] = []

    @Flag(help: "JSON Lines: per step both records and the figures that differ, then {\"final\": ...}.")
    var json = false

    @Option(help: ArgumentHelp("Print the compare screen as text at COLSxROWS after --steps steps, and exit.", valueName: "COLSxROWS"))
    var printScreen: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("With --print-screen: how many steps to run first.", valueName: "N"))
    var steps: Int = 0

    @OptionGroup var terminal: TerminalOptions

    func validate() throws {
        if vs.isEmpty { throw ValidationError("give at least one --vs KEY=VALUE: what side B changes (e.g. --vs nic.iotlb=16)") }
        if json && printScreen != nil { throw ValidationError("--json and --print-screen are two outputs; give one") }
        if steps != 0 && printScreen == nil { throw ValidationError("--steps says how far --print-screen goes; give --print-screen COLSxROWS too") }
        if steps < 0 { throw ValidationError("--steps must be 0 or more") }
    }

    func run() throws {
        // B's overrides are checked against the file (with A's) before anything runs.
        let loaded: LoadedScript
        do {
            loaded = try ScriptLoader.load(path: file, overrides: overrides)
            var b = loaded.script
            do { try applyOverrides(vs, to: &b) } catch {
                throw LoadError(description: error.rendered.replacingOccurrences(of: "--set:", with: "--vs:"))
            }
        } catch let e as LoadError {
            printError(e.description)
            throw ExitCode(2)
        }
        for w in loaded.warnings { printError(w) }
        if json { return try runJSON(loaded) }
        let (session, _) = try Tui.openSession(file: file, overrides: overrides)
        if let spec = printScreen {
            guard let (w, h) = Tui.screenSize(spec) else {
                printError("umptui: --print-screen takes COLSxROWS, like 200x60")
                throw ExitCode(2)
            }
            var p = ScreenPlayer(session: session, glyphs: terminal.glyphs, width: w, height: h)
            if let problem = p.startCompare(vs: vs) {
                printError("umptui: --vs: \(problem)")
                throw ExitCode(2)
            }
            for _ in 0..<steps { if !p.step() { break } }
            print(TextDriver.text(p.render()), terminator: "")
            return
        }
        guard isatty(0) == 1, isatty(1) == 1 else {
            printError("umptui: compare's terminal UI needs a terminal on stdin and stdout; use --json (or --print-screen) for output to a file or a pipe")
            throw ExitCode(2)
        }
        var options = terminal.options
        options.output = FileOutput()
        options.compareVs = vs
        try Tui.runTerminal(session, options)
    }

    private func runJSON(_ loaded: LoadedScript) throws {
        var out = BufferedOutput()
        let result: CompareResult
        do {
            result = try ScenarioCompare.run(loaded.written, overrides: loaded.overrides, vs: vs, traces: loaded.traces) { event in
                out.write(CompareJSON.event(event))
                out.flushIfLarge()
            }
        } catch {
            try? out.flush()
            printError(error.rendered)
            throw ExitCode(2)
        }
        out.write(CompareJSON.final(result))
        try out.flush()  // a failed write: Umptui.main says so, exit 2
        if !result.failuresA.isEmpty || !result.failuresB.isEmpty { throw ExitCode(1) }
    }
}

/// `umptui compare --json`: docs/scenario-language.md gives the shape.
enum CompareJSON {
    static func event(_ e: CompareEvent) -> String {
        switch e {
        case let .moved(m): return JSONLines.event(m)
        case let .step(s):
            var w = JSONWriter()
            w.beginObject()
            w.field("step", s.a.step)
            w.field("line", s.a.line)
            w.field("command", s.a.command)
            w.raw("a", JSONLines.step(s.a))
            w.raw("b", JSONLines.step(s.b))
            differences(s.differences, "differences", &w)
            differences(s.stepDifferences, "step_differences", &w)
            w.field("summary", s.summary)
            w.endObject()
            return w.string
        }
    }

    static func differences(_ diffs: [FigureDifference], _ key: String, _ w: inout JSONWriter) {
        w.beginArray(key)
        for d in diffs {
            w.beginObject()
            w.field("figure", d.name)
            w.field("a", d.a)
            w.field("b", d.b)
            if let delta = d.delta, d.unit != .percent { w.field("delta", Int(delta)) }
            w.field("text", d.phrase)
            w.endObject()
        }
        w.endArray()
    }

    static func final(_ r: CompareResult) -> String {
        var w = JSONWriter()
        w.beginObject()
        w.beginObject("final")
        var a = JSONWriter(), b = JSONWriter()
        r.a.writeState(into: &a)
        r.b.writeState(into: &b)
        w.raw("a", a.string)
        w.raw("b", b.string)
        differences(r.differences, "differences", &w)
        w.beginObject("expect_failures")
        w.field("a", r.failuresA.count)
        w.field("b", r.failuresB.count)
        w.endObject()
        w.endObject()
        w.endObject()
        return w.string
    }
}
