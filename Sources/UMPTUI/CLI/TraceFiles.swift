// dma-trace files: one address per line (decimal or 0x-hex; `unit=page` reads page numbers, as
// OSTEP's paging-policy.py traces are written). Streamed in large chunks, never loaded whole.

import Engine
import Foundation

struct TraceError: Error, CustomStringConvertible {
    var path: String
    var line: Int
    var message: String
    var column: Int?
    var description: String {
        line == 0 ? "\(path): error: \(message)" : "\(path):\(line)\(column.map { ":\($0)" } ?? ""): error: \(message)"
    }
}

/// Text from a file or a script made safe to print: control characters as ^X (newlines kept), so
/// a stray ESC cannot drive the terminal.
func printable(_ s: String) -> String {
    guard s.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" || $0.value == 0x7f }) else { return s }
    var out = ""
    for u in s.unicodeScalars {
        if u.value == 0x7f {
            out += "^?"
        } else if u.value < 0x20 && u != "\n", let shown = UnicodeScalar(u.value + 0x40) {
            out += "^" + String(shown)
        } else {
            out.unicodeScalars.append(u)
        }
    }
    return out
}

/// Moves the unread bytes [start, end) of a line buffer to its front before the next read.
func compactLineBuffer(_ buffer: inout [UInt8], start: inout Int, end: inout Int) {
    guard start > 0 else { return }
    buffer.withUnsafeMutableBufferPointer { b in
        guard let base = b.baseAddress else { return }
        _ = memmove(base, base + start, end - start)
    }
    end -= start
    start = 0
}

/// Reads a trace file chunk by chunk and parses one address per line.
final class FileAddressSource: AddressSource {
    private let path: String
    private let file: UnsafeMutablePointer<FILE>
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    private var eof = false
    private(set) var line = 0
    /// The largest entry: with unit=page, a page number whose address (× 4096) fits in 64 bits.
    private let limit: UInt64

    /// The longest line a trace may have (an address and a comment); a longer one is an error, so a
    /// file without newlines (/dev/zero copied to disk, a binary) cannot grow the buffer forever.
    static let maxLineBytes = 4096

    init(path: String, unit: TraceUnit = .addr) throws {
        limit = unit == .page ? UInt64.max >> pageShift : .max
        // Only a regular file: a FIFO with no writer would block, a device (/dev/zero) never ends.
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw TraceError(path: path, line: 0, message: "cannot open: \(String(cString: strerror(errno)))")
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            let what = st.st_mode & S_IFMT == S_IFDIR ? "a directory" : "not a regular file"
            throw TraceError(path: path, line: 0, message: "\(what): a trace is a regular file (a FIFO or a device would block or never end)")
        }
        guard let f = fopen(path, "rb") else {
            throw TraceError(path: path, line: 0, message: "cannot open: \(String(cString: strerror(errno)))")
        }
        self.path = path
        file = f
        buffer = [UInt8](repeating: 0, count: 1 << 20)
    }

    deinit { fclose(file) }

    /// Reads more; the buffer (1 MiB) always has room, as no line may be longer than maxLineBytes.
    private func refill() throws {
        compactLineBuffer(&buffer, start: &start, end: &end)
        if end - start > Self.maxLineBytes {
            throw TraceError(path: path, line: line + 1, message: "the line is longer than \(Self.maxLineBytes) bytes (a trace has one address per line)")
        }
        let n = buffer.withUnsafeMutableBufferPointer { b -> Int in
            guard let base = b.baseAddress else { return 0 }
            return fread(base + end, 1, b.count - end, file)
        }
        if n == 0 {
            if ferror(file) != 0 { throw TraceError(path: path, line: line + 1, message: "cannot read: \(String(cString: strerror(errno)))") }
            eof = true
        }
        end += n
    }

    /// Parses every complete line in the buffer at once (the fast path `dma-trace` uses).
    func nextBatch(_ batch: inout [UInt64]) throws -> Bool {
        batch.removeAll(keepingCapacity: true)
        while batch.isEmpty {
            if start == end || !buffer[start..<end].contains(0x0A) {
                if eof {
                    if start == end { return false }
                    // A last line without a newline.
                    if let v = try next() { batch.append(v) }
                    return !batch.isEmpty
                }
                try refill()
                continue
            }
            var failure: (Int, Int)?
            let (consumed, lines) = buffer.withUnsafeBufferPointer { b -> (Int, Int) in
                var i = start, lines = 0
                let n = end
                var lineStart = i
                var value: UInt64 = 0
                var digits = 0
                var plain = true
                while i < n {
                    let c = b[i]
                    if c == 0x0A {
                        lines += 1
                        if plain && digits > 0 && digits < 19 && value <= limit {
                            batch.append(value)
                        } else if !(plain && digits == 0 && isBlank(b, lineStart, i)) {
                            // Anything but plain decimal digits: leave it to the careful parser.
                            failure = (lineStart, i)
                            return (lineStart - start, lines - 1)
                        }
                        value = 0
                        digits = 0
                        plain = true
                        lineStart = i + 1
                    } else if c >= 0x30 && c <= 0x39 && plain {
                        value = value &* 10 &+ UInt64(c &- 0x30)
                        digits += 1
                    } else {
                        plain = false
                    }
                    i += 1
                }
                return (lineStart - start, lines)
            }
            start += consumed
            line += lines
            if failure != nil {
                if let v = try next() { batch.append(v) }
                return true
            }
        }
        return true
    }

    private func isBlank(_ b: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> Bool {
        for i in from..<to where b[i] != 0x20 && b[i] != 0x09 && b[i] != 0x0D { return false }
        return true
    }

    func next() throws -> UInt64? {
        while true {
            // Find the end of the current line.
            var nl = -1
            while nl < 0 {
                if let i = buffer[start..<end].firstIndex(of: 0x0A) {
                    nl = i
                } else if eof {
                    if start == end { return nil }
                    nl = end
                } else {
                    try refill()
                }
            }
            line += 1
            let lineStart = start
            start = min(nl + 1, end)
            if let value = try parse(lineStart, nl) { return value }
        }
    }

    private func isDigit(_ c: UInt8, _ hex: Bool) -> Bool {
        (c >= 0x30 && c <= 0x39) || (hex && ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66))
    }

    /// nil for a blank or comment line.
    private func parse(_ from: Int, _ to: Int) throws -> UInt64? {
        var i = from, j = to
        while i < j, buffer[i] == 0x20 || buffer[i] == 0x09 { i += 1 }
        while j > i, buffer[j - 1] == 0x20 || buffer[j - 1] == 0x09 || buffer[j - 1] == 0x0D { j -= 1 }
        if i == j || buffer[i] == UInt8(ascii: "#") { return nil }
        var value: UInt64 = 0
        var hex = false
        if j - i > 2, buffer[i] == UInt8(ascii: "0"), buffer[i + 1] | 0x20 == UInt8(ascii: "x") {
            hex = true
            i += 2
        }
        let digitsStart = i
        while i < j {
            let c = buffer[i]
            var d: UInt64
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt64(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f") where hex: d = UInt64(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F") where hex: d = UInt64(c - UInt8(ascii: "A") + 10)
            // 1_000_000: one underscore between two digits, as in a scenario's numbers.
            case UInt8(ascii: "_") where i > digitsStart && i + 1 < j && isDigit(buffer[i - 1], hex) && isDigit(buffer[i + 1], hex):
                i += 1
                continue
            default:
                let text = printable(String(decoding: buffer[from..<to], as: UTF8.self))
                throw TraceError(path: path, line: line, message: "expected one \(hex ? "hex" : "decimal or 0x-hex") address, got '\(text.prefix(40))'")
            }
            let (m, o1) = value.multipliedReportingOverflow(by: hex ? 16 : 10)
            let (s, o2) = m.addingReportingOverflow(d)
            if o1 || o2 { throw TraceError(path: path, line: line, message: "address too large for 64 bits") }
            value = s
            i += 1
        }
        if value > limit {
            throw TraceError(path: path, line: line, message: "page number 0x\(String(value, radix: 16)) × 4096 is past 2^64 (unit=page numbers are at most 0x\(String(limit, radix: 16)))")
        }
        return value
    }
}

/// Opens trace files relative to the script's directory: what a TUI session reads through.
struct FileTraceProvider: TraceProvider, SessionFiles {
    var base: URL

    var traces: (any TraceProvider)? { self }

    func exists(_ path: String) -> Bool { FileManager.default.isReadableFile(atPath: resolve(path)) }

    func resolve(_ path: String) -> String { ScriptLoader.resolve(path, against: base) }

    func open(_ path: String) throws -> any AddressSource { try FileAddressSource(path: resolve(path)) }

    func open(_ path: String, unit: TraceUnit) throws -> any AddressSource { try FileAddressSource(path: resolve(path), unit: unit) }

    func openMemoryTrace(_ path: String) throws -> any MemoryAccessSource { try LackeySource(path: resolve(path)) }

    /// Reads a whole lackey trace to find its first bad line; returns its accesses.
    func validateMemoryTrace(_ path: String) throws -> Int {
        let source = try LackeySource(path: resolve(path))
        var n = 0
        var batch: [MemoryAccess] = []
        while try source.nextBatch(&batch) { n += batch.count }
        return n
    }

    /// Reads a whole trace to find its first bad line (what `check` and `run` do before anything runs).
    func validate(_ path: String, unit: TraceUnit = .addr) throws -> Int {
        let source = try FileAddressSource(path: resolve(path), unit: unit)
        var n = 0
        var batch: [UInt64] = []
        while try source.nextBatch(&batch) { n += batch.count }
        return n
    }
}
