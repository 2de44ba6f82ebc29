import ArgumentParser
import Engine
import Foundation

/// How the terminal UI draws: the flags `umptui`, `umptui compare` and `umptui quiz` share.
struct TerminalOptions: ParsableArguments {
    @Flag(name: .customLong("no-mouse"), help: "Do not capture the mouse (keep the terminal's own selection).")
    var noMouse = false

    @Flag(name: .customLong("no-color"), help: "No colours: bold, reverse and underline only (as NO_COLOR does).")
    var noColor = false

    @Flag(help: "ASCII glyphs only (the default when the locale is not UTF-8).")
    var ascii = false

    var options: TUIApp.Options { TUIApp.Options(noColor: noColor, mouse: !noMouse, ascii: ascii) }
    var glyphs: Glyphs { ascii ? .ascii : .unicode }
}

/// `umptui [FILE]`: the terminal UI, the default subcommand. With no FILE, the built-in tour.
struct Tui: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tui",
        abstract: "Open the terminal UI on a scenario (the default; with no file, a narrated tour).",
        discussion: "Keys: space step, b back, p play, Tab pane, arrows select, Enter inspect, : command, ? help, q quit. See docs/tui.md.")

    @Argument(help: "The scenario file (*.ump); without it, the built-in tour.", completion: .file(extensions: ["ump"]))
    var file: String?

    @OptionGroup var terminal: TerminalOptions

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a declaration option, e.g. machine.ram=1G.", valueName: "KEY=VALUE"))
    var overrides: [String] = []

    @Option(help: ArgumentHelp("Print the screen as text at COLSxROWS after --steps steps, and exit (no terminal needed).", valueName: "COLSxROWS"))
    var printScreen: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("With --print-screen: how many steps to run first.", valueName: "N"))
    var steps: Int = 0

    @Option(help: ArgumentHelp("Record the session to OUT.ump as it happens (R toggles recording in the TUI).", valueName: "OUT.ump"),
            completion: .file(extensions: ["ump"]))
    var record: String?

    @Flag(help: "With --record: overwrite OUT.ump if it exists.")
    var force = false

    @Flag(help: "Start playing at once, honouring the script's wait lines.")
    var play = false

    @Flag(name: .customLong("exit"), help: "With --play: quit when playing reaches the end.")
    var exitAtEnd = false

    func validate() throws {
        if exitAtEnd && !play { throw ValidationError("--exit quits at the end of --play; give --play too") }
        if force && record == nil { throw ValidationError("--force overwrites the --record file; give --record OUT.ump too") }
        if record != nil && printScreen != nil { throw ValidationError("--record records the terminal UI; --print-screen has none") }
        if play && printScreen != nil { throw ValidationError("--play plays in the terminal UI; --print-screen has none (--steps N says how far)") }
        if steps != 0 && printScreen == nil { throw ValidationError("--steps says how far --print-screen goes; give --print-screen COLSxROWS too") }
        if steps < 0 { throw ValidationError("--steps must be 0 or more") }
        if let record, let file, FileOutput.identity(record) == FileOutput.identity(file) {
            throw ValidationError("--record \(record) is the scenario itself; record to another file")
        }
    }

    func run() throws {
        let (session, warnings) = try Tui.openSession(file: file, overrides: overrides)
        if let spec = printScreen {
            guard let (w, h) = Tui.screenSize(spec) else {
                printError("umptui: --print-screen takes COLSxROWS, like 120x40")
                throw ExitCode(2)
            }
            // Space pressed --steps times, as export plays it, so the two show the same last screen.
            let screen = ScreenPlayer.screen(session: session, glyphs: terminal.glyphs,
                                             width: w, height: h, steps: steps)
            print(TextDriver.text(screen), terminator: "")
            return
        }
        // A recording that cannot be written is an error now, not after the TUI has started.
        if let record, let problem = FileOutput.cannotCreate(record, force: force) {
            printError("umptui: \(problem)")
            throw ExitCode(2)
        }
        guard isatty(0) == 1, isatty(1) == 1 else {
            printError("umptui: the terminal UI needs a terminal on stdin and stdout; for output to a file or a pipe use `umptui run FILE` (or --print-screen)")
            throw ExitCode(2)
        }
        let output = FileOutput()
        var recording: (path: String, sink: any RecordingSink)?
        if let record {
            do {
                recording = try output.openRecording(path: record, force: force)
            } catch {
                printError("umptui: \(error)")
                throw ExitCode(2)
            }
        }
        var options = terminal.options
        options.play = play
        options.exitAtEnd = exitAtEnd
        options.recording = recording
        options.output = output
        if let file, let source = try? String(contentsOfFile: file, encoding: .utf8) {
            options.compareVs = compareOverrides(in: source)
        }
        options.startMessage = warnings.first.map { _ in "the recording was cut off mid-line; replaying up to its last whole line" }
        try Tui.runTerminal(session, options)
    }

    /// Runs the TUI; an error starting it is exit 2, and a signal that ended it is raised again
    /// (as a shell expects) once the terminal is restored.
    static func runTerminal(_ session: Session, _ options: TUIApp.Options) throws {
        let ended: Int32?
        do {
            ended = try TUIApp.run(session: session, options: options)
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
        if let sig = ended {
            signal(sig, SIG_DFL)
            raise(sig)
        }
    }

    /// COLSxROWS, each 1 to 1000.
    static func screenSize(_ spec: String) -> (Int, Int)? {
        let parts = spec.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 2, let w = parts[0], let h = parts[1], (1...1000).contains(w), (1...1000).contains(h) else { return nil }
        return (w, h)
    }

    /// As loadSession, for a command: the warnings printed, a load error printed and exit 2.
    static func openSession(file: String?, overrides: [String]) throws -> (Session, [String]) {
        do {
            let (session, warnings) = try loadSession(file: file, overrides: overrides)
            for w in warnings { printError(w) }
            return (session, warnings)
        } catch let e as LoadError {
            printError(e.description)
            throw ExitCode(2)
        }
    }

    /// The session for FILE (the tour without one), and the loader's warnings.
    static func loadSession(file: String?, overrides: [String]) throws -> (Session, [String]) {
        guard let file else {
            do {
                let script = try parseScript(Tour.source, fileName: Tour.fileName)
                return (try Session(script: script, overrides: overrides), [])
            } catch {
                throw LoadError(description: error.rendered)
            }
        }
        let loaded = try ScriptLoader.load(path: file, overrides: overrides)
        do {
            return (try Session(script: loaded.written, overrides: loaded.overrides, files: loaded.traces), loaded.warnings)
        } catch {
            throw LoadError(description: error.rendered)
        }
    }
}
