// Reading, parsing and checking a scenario file: everything `check` validates and `run` needs.

import Engine
import Foundation

/// A loaded, parsed and checked script.
struct LoadedScript {
    var path: String
    var source: String
    /// The script with the `--set` overrides folded into its declarations: what `run` runs.
    var script: Script
    /// The script as written, and the overrides (checked against it): what the TUI opens, so
    /// `:unset` can take an override out again.
    var written: Script
    var overrides: [String] = []
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
        let data = try readScript(path)
        // A recording killed while writing a line replays up to its last whole line. The cut is
        // made on bytes, before decoding: a cut can fall inside a UTF-8 character.
        var bytes = [UInt8](data)
        var warnings: [String] = []
        if ScriptText.isRecording(String(decoding: bytes.prefix(64), as: UTF8.self)), let last = bytes.last, last != 0x0A, last != 0x0D {
            let cutLine = bytes.reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }
            let end = bytes.lastIndex(where: { $0 == 0x0A || $0 == 0x0D }).map { $0 + 1 } ?? 0
            bytes.removeSubrange(end...)
            warnings.append("\(path):\(cutLine): warning: the recording stops in the middle of line \(cutLine) (cut off while it was written); "
                            + (cutLine > 1 ? "replaying up to line \(cutLine - 1)" : "nothing to replay"))
        }
        do {
            guard let source = String(validating: bytes, as: UTF8.self) else {
                throw LoadError(description: Self.notUTF8(bytes, path))
            }
            var loaded = try parse(source, path: path, overrides: overrides)
            loaded.warnings = warnings
            return loaded
        } catch let e as LoadError {
            // The cut is said first, so an error in what is left reads in its light.
            throw LoadError(description: (warnings + [e.description]).joined(separator: "\n"))
        }
    }

    private static func parse(_ source: String, path: String, overrides: [String]) throws -> LoadedScript {
        var script: Script
        do {
            script = try parseScript(source, fileName: path)
        } catch {
            throw LoadError(description: error.rendered)
        }
        let written = script
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
            do {
                switch st.kind {
                case let .deviceEvent(_, .dmaTrace(file, unit)): _ = try traces.validate(file, unit: unit)
                case let .processEvent(_, .trace(file, _)): _ = try traces.validateMemoryTrace(file)
                default: continue
                }
            } catch {
                traceProblems.append("\(error)\n  (read by \(path):\(st.location.line): \(st.text))")
            }
        }
        if !traceProblems.isEmpty { throw LoadError(description: traceProblems.joined(separator: "\n")) }
        return LoadedScript(path: path, source: source, script: script, written: written, overrides: overrides, traces: traces)
    }

    /// The most a scenario file may hold: a recording of a long session is a few MiB.
    static let maxScriptBytes = 256 << 20

    /// The file's bytes with read(2). Only a regular file is a script: a directory, a FIFO (which
    /// would block with no writer), a device (/dev/null reads as empty, /dev/zero never ends), a
    /// socket, an unreadable file or one past the limit is an error that says which and why.
    static func readScript(_ path: String) throws -> Data {
        guard !path.isEmpty else { throw LoadError(description: "error: the scenario file name is empty") }
        // O_NONBLOCK: opening a FIFO nobody writes returns at once instead of waiting forever.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            let why = e == ELOOP ? "a symbolic link loop" : String(cString: strerror(e))
            throw LoadError(description: "\(path): error: cannot read the file: \(why)")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw LoadError(description: "\(path): error: cannot read the file: \(String(cString: strerror(e)))")
        }
        let kind = st.st_mode & S_IFMT
        guard kind == S_IFREG else {
            close(fd)
            let what: String
            switch kind {
            case S_IFDIR: what = "is a directory"
            case S_IFIFO: what = "is a FIFO (a named pipe)"
            case S_IFCHR: what = "is a character device"
            case S_IFBLK: what = "is a block device"
            case S_IFSOCK: what = "is a socket"
            default: what = "is not a regular file"
            }
            throw LoadError(description: "\(path): error: \(what), not a scenario file: a scenario is a regular file (write one, or save a pipe's output to a file first)")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        defer { close(fd) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LoadError(description: "\(path): error: cannot read the file: \(String(cString: strerror(errno)))")
            }
            if n == 0 { return data }
            data.append(contentsOf: buffer[..<n])
            if data.count > maxScriptBytes {
                throw LoadError(description: "\(path): error: more than \(maxScriptBytes >> 20) MiB: not a scenario file")
            }
        }
    }

    /// Where the first byte that is not UTF-8 is: FILE:LINE:COLUMN (the column counts bytes).
    static func notUTF8(_ bytes: [UInt8], _ path: String) -> String {
        var line = 1, start = 0, i = 0
        while i < bytes.count {
            let b = bytes[i]
            let n = b < 0x80 ? 1 : b >> 5 == 0b110 ? 2 : b >> 4 == 0b1110 ? 3 : b >> 3 == 0b11110 ? 4 : 0
            let end = i + n
            if n == 0 || end > bytes.count || String(validating: bytes[i..<end], as: UTF8.self) == nil {
                return "\(path):\(line):\(i - start + 1): error: the file is not UTF-8 text (byte 0x\(String(b, radix: 16)) at byte \(i + 1))"
            }
            if b == 0x0A { line += 1; start = end }
            i = end
        }
        return "\(path): error: the file is not UTF-8 text"
    }

    /// A path as written in a script, resolved against the script's directory.
    static func resolve(_ file: String, against base: URL) -> String {
        file.hasPrefix("/") ? file : base.appendingPathComponent(file).path
    }
}

/// Writes to standard error.
func printError(_ text: String) {
    StandardStreams.err(text + "\n")
}
