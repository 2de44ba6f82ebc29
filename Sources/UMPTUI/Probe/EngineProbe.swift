// Runs a probe script's scenario through the Engine, for the comparison with the real kernel.

import Engine
import Foundation

enum EngineProbe {
    struct Failure: Error, CustomStringConvertible { var description: String }

    /// The Engine's final STATE JSON for the script's scenario text.
    static func state(for script: ProbeScript) throws -> Data {
        let parsed: Script
        do {
            parsed = try parseScript(script.scenarioText, fileName: "<probe \(script.name)>")
        } catch {
            throw Failure(description: error.rendered)
        }
        let result = ScenarioRunner.run(parsed)
        return Data(result.engine.stateJSON().utf8)
    }
}
