// Writing to standard output and standard error without a trap: a full disk (/dev/full), a closed
// descriptor or a reader that went away is an error the command reports (on stderr when it can)
// and exit 2, never FileHandle's `try!`. Swift's `print` goes through C stdio; `finishStandardOutput`
// flushes it and checks its error flag, so a command that only prints learns of a failed write too.

import ArgumentParser
import CNcurses
import Foundation

/// A write to stdout or stderr that failed.
struct OutputWriteError: Error, CustomStringConvertible {
    var stream: String
    var errno: Int32
    var description: String { "cannot write to \(stream): \(String(cString: strerror(errno)))" }
}

enum StandardStreams {
    /// Writes every byte to `fd` with write(2), retrying on EINTR and short writes.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], stream: String) throws(OutputWriteError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Foundation.write(fd, base + done, raw.count - done)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw OutputWriteError(stream: stream, errno: errno)
            }
            if n == 0 { throw OutputWriteError(stream: stream, errno: EIO) }
            done += n
        }
    }

    /// Writes to standard output (after what `print` has buffered, so the order holds).
    static func out(_ text: String) throws(OutputWriteError) {
        fflush(nil)
        try writeAll(STDOUT_FILENO, Array(text.utf8), stream: "standard output")
    }

    /// Writes to standard error; a failure there has nowhere to be reported and is dropped.
    static func err(_ text: String) {
        fflush(nil)
        try? writeAll(STDERR_FILENO, Array(text.utf8), stream: "standard error")
    }

    /// Flushes what `print` buffered and reports a write that failed on the way (stdio's error
    /// flag stays set once a write failed). Commands call it before they return.
    static func finishStandardOutput() throws(OutputWriteError) {
        errno = 0
        if umptui_stdout_flush_failed() != 0 {
            throw OutputWriteError(stream: "standard output", errno: errno != 0 ? errno : EIO)
        }
    }
}
