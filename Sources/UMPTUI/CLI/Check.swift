import ArgumentParser
import Engine

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Parse and validate a scenario without running it: syntax, names, expect keys and the files it reads.")

    @Argument(help: "The scenario file (*.ump).", completion: .file(extensions: ["ump"]))
    var file: String

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a declaration option, e.g. machine.ram=1G.", valueName: "KEY=VALUE"))
    var overrides: [String] = []

    func run() throws {
        do {
            let loaded = try ScriptLoader.load(path: file, overrides: overrides)
            for w in loaded.warnings { printError(w) }
            // Counted from the statements: a StepPlan would copy every one into a ScriptStep (and
            // a filter into another), tripling what a long script costs to check.
            let steps = loaded.script.statements.count { StepPlan.isStep($0.kind) }
            let backs = loaded.script.statements.count { $0.kind == .back }
            print("\(file): ok, \(plural(steps, "step"))" + (backs > 0 ? " and \(plural(backs, "step-back"))" : ""))
        } catch let e as LoadError {
            printError(e.description)
            throw ExitCode(2)
        }
    }
}
