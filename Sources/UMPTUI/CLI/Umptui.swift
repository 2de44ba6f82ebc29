// The command line: `umptui [FILE]` opens the TUI (the default subcommand); `umptui run|check|bench|probe`.

import ArgumentParser
import Foundation

@main
struct Umptui: ParsableCommand {
    /// Written in recordings' headers and by --version.
    static let version = "0.8.0"

    static let configuration = CommandConfiguration(
        commandName: "umptui",
        abstract: "Explore how Linux backs memory for devices: demand paging, pinning and the IOMMU, step by step.",
        discussion: """
            Scenario files (*.ump) describe a machine, processes and what they do; see docs/scenario-language.md.
            Exit status: 0 the script ran (kernel-level outcomes such as SIGSEGV or ENOMEM included),
            1 an `expect` failed, 2 an error in the script, its files or the command line.
            """,
        version: version,
        subcommands: [Tui.self, Run.self, Check.self, Compare.self, Sweep.self, QuizCommand.self, Export.self, Bench.self, Probe.self],
        defaultSubcommand: Tui.self
    )

    /// As ArgumentParser's main, but a mistake on the command line exits 2 (SCENARIO.md's status for
    /// every error in the script, its files or the command line), not EX_USAGE (64).
    static func main() {
        // A reader that goes away (`umptui run x.ump | head`) makes write(2) fail with EPIPE, which
        // StandardStreams reports (exit 2) after files being written are closed, instead of SIGPIPE
        // killing the process in the middle of a recording or an export.
        signal(SIGPIPE, SIG_IGN)
        // `run -dash.ump` would read as the short options -d -a -s -h (help, exit 0).
        if let odd = CommandLine.arguments.dropFirst().first(where: { $0.hasPrefix("-") && !$0.hasPrefix("--") && $0.hasSuffix(".ump") }) {
            printError("Error: '\(odd)' reads as options; a file whose name starts with '-' is written ./\(odd) (or after --)")
            exit(withError: ExitCode(2))
        }
        do {
            var command = try parseAsRoot()
            try command.run()
            try StandardStreams.finishStandardOutput()
        } catch let e as OutputWriteError {
            printError("umptui: \(e)")
            exit(withError: ExitCode(2))
        } catch {
            // What the command printed before it failed must reach the reader; if it cannot, that is
            // the error to report (exit 2), whatever else went wrong.
            do throws(OutputWriteError) {
                try StandardStreams.finishStandardOutput()
            } catch let e {
                printError("umptui: \(e)")
                exit(withError: ExitCode(2))
            }
            let code = exitCode(for: error)
            if code == .validationFailure {
                printError(fullMessage(for: error))
                exit(withError: ExitCode(2))
            }
            exit(withError: error)
        }
    }
}
