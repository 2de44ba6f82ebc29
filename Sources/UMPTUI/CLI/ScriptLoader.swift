// Reading, parsing and checking a scenario file: everything `check` validates and `run` needs.

import Engine
import Foundation

/// A loaded, parsed and checked script.
struct LoadedScript {
    var path: String
    var source: String
    var script: Script
    /// Opens the trace files the script names, relative to its directory.
    var traces: FileTraceProvider
    /// Things to say that do not stop the run (a recording cut off mid-line).
    var warnings: [String] = []
}

/// Why loading failed: printed as is, exit 2.
struct LoadError: Error, CustomStringConvertible {
    var description: String
}

enum ScriptLoader {
    /// Reads, parses, checks and applies `--set` overrides. Throws a LoadError whose text lists every problem.
    static func load(path: String, overrides: [String] = []) throws -> LoadedScript {
        let raw: String
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            guard let text = String(data: data, encoding: .utf8) else {
                throw LoadError(description: "\(path): error: the file is not UTF-8 text")
            }
            raw = text
        } catch let e as LoadError {
            throw e
        } catch {
            throw LoadError(description: "\(path): error: cannot read the file: \(Self.reason(error))")
        }
        // A recording killed while writing a line replays up to its last whole line.
        var warnings: [String] = []
        let (source, cut) = ScriptText.wholeLines(of: raw)
        if let cut {
            warnings.append("\(path):\(cut): warning: the recording stops in the middle of line \(cut) (cut off while it was written); "
                            + (cut > 1 ? "replaying up to line \(cut - 1)" : "nothing to replay"))
        }
        var script: Script
        do {
            script = try parseScript(source, fileName: path)
        } catch {
            throw LoadError(description: error.rendered)
        }
        do {
            try applyOverrides(overrides, to: &script)
        } catch {
            throw LoadError(description: error.rendered)
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        let problems = checkScript(script, sourceLines: scenarioSourceLines(source)) { file in
            FileManager.default.isReadableFile(atPath: resolve(file, against: base))
        }
        if !problems.isEmpty {
            throw LoadError(description: problems.map(\.rendered).joined(separator: "\n"))
        }
        // Every trace file is read through once, so a bad line stops the run before anything runs.
        let traces = FileTraceProvider(base: base)
        var traceProblems: [String] = []
        for st in script.statements {
            guard case let .deviceEvent(_, .dmaTrace(file, _)) = st.kind else { continue }
            do {
                _ = try traces.validate(file)
            } catch {
                traceProblems.append("\(error)\n  (read by \(path):\(st.location.line): \(st.text))")
            }
        }
        if !traceProblems.isEmpty { throw LoadError(description: traceProblems.joined(separator: "\n")) }
        return LoadedScript(path: path, source: source, script: script, traces: traces, warnings: warnings)
    }

    /// A path as written in a script, resolved against the script's directory.
    static func resolve(_ file: String, against base: URL) -> String {
        file.hasPrefix("/") ? file : base.appendingPathComponent(file).path
    }

    private static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if ns.domain == NSCocoaErrorDomain && ns.code == NSFileReadNoSuchFileError { return "No such file or directory" }
        return ns.localizedDescription
    }
}

/// Writes to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
