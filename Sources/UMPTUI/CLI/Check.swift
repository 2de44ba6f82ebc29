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
            let plan = StepPlan(loaded.script)
            print("\(file): ok, \(plural(plan.steps.count, "step"))")
        } catch let e as LoadError {
            printError(e.description)
            throw ExitCode(2)
        }
    }
}
