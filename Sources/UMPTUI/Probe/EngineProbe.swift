// Runs a probe script's scenario through the Engine, for the comparison with the real kernel.

import Engine

enum EngineProbe {
    struct Failure: Error, CustomStringConvertible { var description: String }

    /// The Engine after the script's scenario text.
    static func engine(for script: ProbeScript) throws -> Engine {
        let parsed: Script
        do {
            parsed = try parseScript(script.scenarioText, fileName: "<probe \(script.name)>")
        } catch {
            throw Failure(description: error.rendered)
        }
        return ScenarioRunner.run(parsed).engine
    }
}
