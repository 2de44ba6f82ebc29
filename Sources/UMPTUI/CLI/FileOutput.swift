// The files the TUI writes, for real: recordings line by line (each line one write(2), so a
// `kill -9` loses at most the line being written) and `:w` scripts. Nothing existing is
// overwritten unless asked.

import Engine
import Foundation

/// A recording file: every line goes to the kernel as one write(2) as soon as it is recorded.
final class FileSink: RecordingSink {
    let path: String
    private var fd: Int32

    /// Creates the file; refuses an existing one unless `force`.
    init(path: String, force: Bool) throws {
        self.path = path
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL)
        fd = open(path, flags, 0o644)
        guard fd >= 0 else {
            let e = errno
            if e == EEXIST { throw OutputError(description: "\(path) exists; --force overwrites it") }
            throw OutputError(description: "cannot write \(path): \(String(cString: strerror(e)))")
        }
    }

    func write(_ line: String) throws {
        guard fd >= 0 else { throw OutputError(description: "the recording is closed") }
        var bytes = Array((line + "\n").utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Foundation.write(fd, base.advanced(by: done), raw.count - done)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw OutputError(description: "cannot write \(path): " + String(cString: strerror(errno)))
            }
            done += n
        }
        bytes.removeAll()
    }

    func close() {
        if fd >= 0 { _ = Foundation.close(fd) }
        fd = -1
    }

    deinit { close() }
}

/// Files in the current directory (or wherever a path says).
struct FileOutput: SessionOutput {
    func openRecording(path: String?, force: Bool) throws -> (path: String, sink: any RecordingSink) {
        let name = path ?? FileOutput.defaultRecordingName(Date())
        return (name, try FileSink(path: name, force: force))
    }

    func save(_ text: String, to path: String, overwrite: Bool) throws {
        let sink = try FileSink(path: path, force: overwrite)
        defer { sink.close() }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        for line in lines { try sink.write(line) }
    }

    /// Why `path` cannot be created (it exists without `force`, or its directory is not writable),
    /// checked before anything starts; nil when it can.
    static func cannotCreate(_ path: String, force: Bool) -> String? {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDir) {
            if isDir.boolValue { return "\(path) is a directory" }
            if !force { return "\(path) exists; --force overwrites it" }
            return fm.isWritableFile(atPath: path) ? nil : "cannot write \(path): Permission denied"
        }
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard fm.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            return "cannot write \(path): No such directory \(dir)"
        }
        return fm.isWritableFile(atPath: dir) ? nil : "cannot write \(path): Permission denied"
    }

    /// What a path names, however it is spelled: the resolved path of the file (links followed),
    /// or of its directory plus its name when it does not exist yet; hard links share device and inode.
    static func identity(_ path: String) -> String {
        var st = stat()
        if stat(path, &st) == 0 { return "inode \(st.st_dev):\(st.st_ino)" }
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().resolvingSymlinksInPath().appendingPathComponent(url.lastPathComponent).path
    }

    func header(kind: String, base: String) -> [String] {
        FileOutput.header(kind: kind, base: base, date: Date())
    }

    /// `# umptui recording`, the version, the date and the base scenario (`kind` "script" for :w).
    static func header(kind: String, base: String, date: Date) -> [String] {
        let first = kind == "recording" ? ScriptText.recordingHeader : "# umptui script"
        return [first, "# version \(Umptui.version)", "# date \(iso8601(date))", "# base \(base)"]
    }

    /// umptui-YYYYMMDD-HHMMSS.ump, local time.
    static func defaultRecordingName(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyyMMdd-HHmmss"
        return "umptui-\(f.string(from: date)).ump"
    }

    static func iso8601(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'"
        return f.string(from: date)
    }
}
