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

    @Flag(help: "Check the whole state's invariants after every step (debug builds do on machines up to 1 GiB); a broken one exits 3.")
    var checkInvariants = false

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
        var writeFailed = false
        // A failed write stops the run: nobody reads the rest.
        let checks: InvariantChecks = checkInvariants ? .everyStep : .default
        let result = ScenarioRunner.run(loaded.script, traces: loaded.traces, invariants: checks, shouldStop: { writeFailed }, onEvent: { (event: RunEvent, _) in
            if case let .badSet(d, _) = event { badSet = d.rendered }
            out.write(json ? JSONLines.event(event) : report.event(event))
            out.flushIfLarge()
            writeFailed = out.failed
        })
        if json {
            out.write(JSONLines.final(result))
        } else {
            out.write(report.summary(result))
            for f in result.failures { out.write(report.failure(f)) }
        }
        do throws(OutputWriteError) {
            try out.flush()
        } catch {
            printError("umptui run: \(error)")
            throw ExitCode(2)
        }
        if let badSet {
            printError(badSet)
            throw ExitCode(2)
        }
        if let bad = result.records.first(where: { !$0.bugs.isEmpty }) {
            printError("\(file):\(bad.line): internal error at step \(bad.step) (\(bad.command)): " + bad.bugs.joined(separator: "; ")
                       + "\nThis is a bug in UMPTUI, not in the script: please report it with the script.")
            throw ExitCode(3)
        }
        if !result.failures.isEmpty { throw ExitCode(1) }
    }
}

/// Collects output and writes it in large pieces (a 10,000-step run should not make 10,000 syscalls).
/// The first failed write (a full disk, a closed stdout) is kept: later output is dropped, `failed`
/// tells a long run to stop, and `flush` throws it.
struct BufferedOutput {
    private var pending = ""
    private(set) var failure: OutputWriteError?
    var failed: Bool { failure != nil }

    mutating func write(_ s: String) {
        guard failure == nil else { return }
        pending += s
        // Bytes, not Characters: "\r\n" is one Character, which hasSuffix("\n") does not see.
        if s.utf8.last != 0x0A { pending += "\n" }
    }

    mutating func flushIfLarge() { if pending.utf8.count > 1 << 16 { write() } }

    /// Writes what is pending; throws the first write that failed, now or before.
    mutating func flush() throws(OutputWriteError) {
        write()
        if let failure { throw failure }
    }

    private mutating func write() {
        let text = pending
        pending = ""
        guard failure == nil else { return }
        do throws(OutputWriteError) { try StandardStreams.out(text) } catch { failure = error }
    }
}
