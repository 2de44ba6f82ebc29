import ArgumentParser
import Engine
import Foundation

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a scenario headless: a short narration per step and a summary, or JSON Lines with --json.")

    @Argument(help: "The scenario file (*.ump).", completion: .file(extensions: ["ump"]))
    var file: String

    @Flag(help: "JSON Lines: one object per step, then {\"final\": STATE}.")
    var json = false

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a declaration option, e.g. machine.ram=1G or app.memlock=16M.", valueName: "KEY=VALUE"))
    var overrides: [String] = []

    func run() throws {
        let loaded: LoadedScript
        do {
            loaded = try ScriptLoader.load(path: file, overrides: overrides)
        } catch let e as LoadError {
            printError(e.description)
            throw ExitCode(2)
        }
        for w in loaded.warnings { printError(w) }
        var out = BufferedOutput()
        let report = TextReport(fileName: file, width: TextReport.terminalWidth())
        var badSet: String?
        let result = ScenarioRunner.run(loaded.script, traces: loaded.traces, onEvent: { (event: RunEvent, _) in
            if case let .badSet(d, _) = event { badSet = d.rendered }
            out.write(json ? JSONLines.event(event) : report.event(event))
            out.flushIfLarge()
        })
        if json {
            out.write(JSONLines.final(result))
        } else {
            out.write(report.summary(result))
            for f in result.failures { out.write(report.failure(f)) }
        }
        out.flush()
        if let badSet {
            printError(badSet)
            throw ExitCode(2)
        }
        if !result.failures.isEmpty { throw ExitCode(1) }
    }
}

/// Collects output and writes it in large pieces (a 10,000-step run should not make 10,000 syscalls).
struct BufferedOutput {
    private var pending = ""

    mutating func write(_ s: String) {
        pending += s
        // Bytes, not Characters: "\r\n" is one Character, which hasSuffix("\n") does not see.
        if s.utf8.last != 0x0A { pending += "\n" }
    }

    mutating func flushIfLarge() { if pending.utf8.count > 1 << 16 { flush() } }

    mutating func flush() {
        FileHandle.standardOutput.write(Data(pending.utf8))
        pending = ""
    }
}
