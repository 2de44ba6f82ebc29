// valgrind lackey traces (`valgrind --tool=lackey --trace-mem=yes PROGRAM`), read as they stream:
// `I  ADDR,SIZE` an instruction fetch, ` L`, ` S`, ` M` a data load, store or modify; lines of
// valgrind's own (`==PID== ...`, `--PID-- ...`) and blank lines are skipped. ADDR is hex (lackey
// prints %08lx), SIZE decimal. A gzip-compressed file reads the same (zlib's gzread passes plain
// files through). Only regular files: a FIFO or a device would block or never end.

import CZlib
import Engine
import Foundation

final class LackeySource: MemoryAccessSource {
    /// The longest line accepted: lackey's are under 30 bytes.
    static let maxLine = 4096

    private let path: String
    private let file: gzFile
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    private var eof = false
    private(set) var linesRead = 0

    init(path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw TraceError(path: path, line: 0, message: "cannot open: \(String(cString: strerror(errno)))")
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw TraceError(path: path, line: 0, message: "not a regular file: a trace is a file (a FIFO or a device would block or never end)")
        }
        guard let f = gzopen(path, "rb") else {
            throw TraceError(path: path, line: 0, message: "cannot open: \(String(cString: strerror(errno)))")
        }
        self.path = path
        file = f
        buffer = [UInt8](repeating: 0, count: 1 << 20)
    }

    deinit { gzclose(file) }

    private func refill() throws {
        compactLineBuffer(&buffer, start: &start, end: &end)
        let n = buffer.withUnsafeMutableBufferPointer { b -> Int32 in
            guard let base = b.baseAddress else { return 0 }
            return gzread(file, base + end, UInt32(b.count - end))
        }
        if n < 0 {
            var code: Int32 = 0
            let message = gzerror(file, &code).map { String(cString: $0) } ?? "read error"
            throw TraceError(path: path, line: linesRead + 1, message: "cannot read: \(message)")
        }
        if n == 0 {
            var code: Int32 = 0
            _ = gzerror(file, &code)
            if code == Z_BUF_ERROR {
                throw TraceError(path: path, line: linesRead + 1, message: "the gzip data ends early: the file is truncated")
            }
            eof = true
        }
        end += Int(n)
    }

    func nextBatch(_ batch: inout [MemoryAccess]) throws -> Bool {
        batch.removeAll(keepingCapacity: true)
        while batch.count < 1 << 14 {
            // A whole line in the buffer, or the last line of the file.
            var nl = -1
            while true {
                if let i = buffer[start..<end].firstIndex(of: 0x0A) { nl = i; break }
                if end - start > LackeySource.maxLine {
                    throw TraceError(path: path, line: linesRead + 1, message: "a line longer than \(LackeySource.maxLine) bytes: not a lackey trace")
                }
                if eof { break }
                try refill()
            }
            if nl < 0 {
                if start == end { return !batch.isEmpty }
                nl = end
            }
            linesRead += 1
            if nl - start > LackeySource.maxLine {
                throw TraceError(path: path, line: linesRead, message: "a line longer than \(LackeySource.maxLine) bytes: not a lackey trace")
            }
            let lineStart = start
            start = min(nl + 1, end)
            if let a = try parse(lineStart, nl) { batch.append(a) }
        }
        return true
    }

    /// One line; nil for valgrind's own lines and blank ones.
    private func parse(_ from: Int, _ to: Int) throws -> MemoryAccess? {
        var j = to
        while j > from, buffer[j - 1] == 0x0D || buffer[j - 1] == 0x20 || buffer[j - 1] == 0x09 { j -= 1 }
        var i = from
        while i < j, buffer[i] == 0x20 { i += 1 }
        if i == j { return nil }
        func fail(_ at: Int, _ message: String) -> TraceError {
            TraceError(path: path, line: linesRead, message: message, column: at - from + 1)
        }
        // valgrind's messages: ==PID== and --PID--.
        if j - i >= 2, (buffer[i] == UInt8(ascii: "=") && buffer[i + 1] == UInt8(ascii: "="))
            || (buffer[i] == UInt8(ascii: "-") && buffer[i + 1] == UInt8(ascii: "-")) { return nil }
        let kind: MemoryAccess.Kind
        switch buffer[i] {
        case UInt8(ascii: "I"): kind = .instruction
        case UInt8(ascii: "L"): kind = .load
        case UInt8(ascii: "S"): kind = .store
        case UInt8(ascii: "M"): kind = .modify
        default:
            throw fail(i, "expected I, L, S or M (a lackey access) or a ==PID== line, got '\(printable(String(decoding: buffer[i..<min(j, i + 20)], as: UTF8.self)))'")
        }
        i += 1
        guard i < j, buffer[i] == 0x20 || buffer[i] == 0x09 else { throw fail(i, "expected a space after the access kind") }
        while i < j, buffer[i] == 0x20 || buffer[i] == 0x09 { i += 1 }
        if j - i > 2, buffer[i] == UInt8(ascii: "0"), buffer[i + 1] | 0x20 == UInt8(ascii: "x") { i += 2 }
        var address: UInt64 = 0
        let digits = i
        while i < j, let d = hexDigit(buffer[i]) {
            guard address >> 60 == 0 else { throw fail(digits, "the address does not fit in 64 bits") }
            address = address << 4 | UInt64(d)
            i += 1
        }
        guard i > digits else { throw fail(i, "expected a hex address") }
        guard i < j, buffer[i] == UInt8(ascii: ",") else { throw fail(i, "expected ',' and a size after the address") }
        i += 1
        var size: UInt64 = 0
        let sizeStart = i
        while i < j, buffer[i] >= 0x30, buffer[i] <= 0x39 {
            size = size * 10 + UInt64(buffer[i] - 0x30)
            guard size <= 1 << 20 else { throw fail(sizeStart, "an access size above 1 MiB: not a lackey trace") }
            i += 1
        }
        guard i > sizeStart else { throw fail(i, "expected a decimal size after ','") }
        guard i == j else { throw fail(i, "unexpected '\(printable(String(decoding: buffer[i..<min(j, i + 20)], as: UTF8.self)))' after the size") }
        return MemoryAccess(address: address, size: UInt32(size), kind: kind)
    }

    private func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }
}
