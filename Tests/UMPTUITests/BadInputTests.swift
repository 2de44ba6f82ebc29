// The bad-input suite: each case is a script (or a file, or a command line) a careless user or an
// attacker might give, with the message it must get. Script errors are what `check` and `run`
// print before anything runs (exit 2); outcomes are what a step says when the script is valid
// but the request is refused. None may trap, hang or run away. The cases are run in this process
// through the same loader the command line uses (ScriptLoader); the last tests spawn the binary
// for what only a process shows (exit statuses, a full or closed stdout).

import Engine
import Foundation
import XCTest
@testable import UMPTUI

final class BadInputTests: XCTestCase {
    /// A case: the script's lines after the standard head, and what must come of it.
    struct Case {
        enum Want {
            /// `check` refuses it; the message holds `text` and names `line` (and `column` when given).
            case error(line: Int, column: Int? = nil, String)
            /// It runs; the step on `line` fails with `outcome`, and its text holds `text`.
            case outcome(line: Int, String, String)
        }
        var lines: String
        var want: Want
        var head = "machine ram=64M\nprocess app\ndevice gpu\napp malloc buf 1M\n"
        init(_ lines: String, _ want: Want, head: String? = nil) {
            self.lines = lines
            self.want = want
            if let head { self.head = head }
        }
    }

    static let cases: [Case] = [
        // Numbers at and past their limits, where they enter.
        Case("gpu map app.buf\ngpu dma app.buf read size=0xffffffffffffffff", .error(line: 6, column: 27, "size must be at most 1G")),
        Case("gpu map app.buf\ngpu dma app.buf read size=0", .error(line: 6, "size must be at least 1 byte")),
        Case("gpu map app.buf\ngpu dma app.buf read pattern=stride:9223372036854775808", .error(line: 6, "larger than a process's address space")),
        Case("gpu map app.buf\ngpu dma app.buf read pattern=tile:1x3@9223372036854775808", .error(line: 6, "larger than a process's address space")),
        Case("gpu map app.buf\ngpu dma app.buf read pattern=tile:1x18446744073709551615@1", .error(line: 6, "larger than a process's address space")),
        Case("gpu map app.buf\ngpu dma app.buf read pattern=tile:64x70000000000000@64", .error(line: 6, "spans more than a process's address space")),
        Case("gpu map app.buf\ngpu dma app.buf read pattern=tile:64x8@32", .error(line: 6, "tile pitch 32 is smaller than its width 64")),
        Case("gpu map app.buf\ngpu dma app.buf read count=1000000000000", .error(line: 6, "count must be at most 16777216")),
        Case("gpu map app.buf\ngpu dma app.buf read passes=0", .error(line: 6, "passes must be at least 1")),
        Case("gpu map app.buf\ngpu dma app.buf read passes=99999999999", .error(line: 6, "passes must be at most 1073741824")),
        Case("gpu map app.buf\ngpu dma app.buf read count=99999999999999999999", .error(line: 6, "too large for 64 bits")),
        Case("gpu map app.buf iova=0xfffffffffffff000", .error(line: 5, "past the largest IOMMU address space")),
        Case("app malloc big 0xfffffffffffff000", .error(line: 5, "larger than a process's address space")),
        Case("app mmap big 128T", .error(line: 5, "larger than a process's address space")),
        Case("app ump-alloc big 0xfffffffffffff000", .error(line: 5, "larger than a process's address space")),
        Case("pressure 0xffffffffffffffff", .error(line: 5, "larger than a process's address space")),
        Case("app write buf 0xfffffffffffff000 8K", .error(line: 5, "larger than a process's address space")),
        Case("app read buf 0xffffffffffffffff 2", .error(line: 5, "larger than a process's address space")),
        Case("app munmap buf 0xfffffffffffff000 0x2000", .error(line: 5, "larger than a process's address space")),
        Case("app pin buf 0xfffffffffffff000 0x2000", .error(line: 5, "larger than a process's address space")),
        Case("app madvise buf dontneed 0xfffffffffffff000 0x2000", .error(line: 5, "larger than a process's address space")),
        Case("app mmap m 64M\napp madvise m dontneed 0 0x4000000000000000", .error(line: 6, "larger than a process's address space")),
        Case("wait 99999999999999999999ms", .error(line: 5, "a duration must be at most an hour")),
        Case("", .error(line: 1, "ram must be between 1M and 16G"), head: "machine ram=1T\n"),
        Case("", .error(line: 1, "swap must be at most 64G"), head: "machine swap=8T\n"),
        Case("", .error(line: 1, "size '0xffffffffffffffffff' is too large for 64 bits"), head: "machine memlock=0xffffffffffffffffff\n"),
        Case("", .error(line: 1, column: 17, "cma=128M is more than half of ram=64M"), head: "machine ram=64M cma=128M\n"),
        Case("", .error(line: 1, "cma must be at most 8G"), head: "machine ram=64M cma=0xffffffffffffffff\n"),
        Case("", .error(line: 1, "fragment"), head: "machine fragment=101\n"),
        Case("", .error(line: 1, "mthp sizes are 16K"), head: "machine mthp=2M\n"),
        Case("", .error(line: 1, "mthp sizes are 16K"), head: "machine mthp=24K\n"),
        Case("", .error(line: 1, "unknown value"), head: "machine thp=sometimes\n"),
        // Device declarations that do not make sense.
        Case("", .error(line: 2, column: 24, "arm-v7s has no 2M page"), head: "machine\ndevice d iommu=arm-v7s pagesizes=2M\n"),
        Case("", .error(line: 2, column: 20, "vtd has no 64K page"), head: "machine\ndevice d iommu=vtd pagesizes=64K\n"),
        Case("", .error(line: 2, "iotlb"), head: "machine\ndevice d iotlb=0\n"),
        Case("", .error(line: 2, "unknown value"), head: "machine\ndevice d iommu=mmu500\n"),
        Case("", .error(line: 2, "unknown value"), head: "machine\ndevice d policy=mru\n"),
        Case("d map app.b iova=0x100000000", .error(line: 5, column: 13, "iova=0x100000000 is past arm-v7s's 32-bit IOVA space"),
             head: "machine\nprocess app\ndevice d iommu=arm-v7s\napp malloc b 1M\n"),
        Case("d map app.b iova=0x1000000000000", .error(line: 5, "past vtd's 48-bit IOVA space"),
             head: "machine\nprocess app\ndevice d iommu=vtd\napp malloc b 1M\n"),
        Case("d map app.b iova=0xffff0000", .outcome(line: 5, "ERANGE", "past arm-v7s's 32-bit IOVA space"),
             head: "machine\nprocess app\ndevice d iommu=arm-v7s\napp malloc b 1M\n"),
        Case("d map app.b iova=0x8000000000", .error(line: 5, "past amd-v1's 39-bit IOVA space"),
             head: "machine\nprocess app\ndevice d iommu=amd-v1\napp malloc b 1M\n"),
        // Expect values of the wrong kind.
        Case("expect app alive=5", .error(line: 5, column: 12, "alive is true or false, got '5'")),
        Case("expect app rss=true", .error(line: 5, "rss is a number or a size, got 'true'")),
        Case("app write buf\nexpect last ok=maybe", .error(line: 6, "ok is true or false, got 'maybe'")),
        Case("app write buf\nexpect last errno=12", .error(line: 6, "errno is a name such as ENOMEM")),
        Case("expect app flavour=1", .error(line: 5, "unknown key 'flavour'")),
        // Names and order.
        Case("ghost write buf", .error(line: 5, "ghost")),
        Case("app write nothing", .error(line: 5, "nothing")),
        Case("process app", .error(line: 5, "process 'app' already exists")),
        Case("process machine", .error(line: 5, "reserved word")),
        Case("machine ram=128M", .error(line: 5, "'machine' is declared twice")),
        Case("gpu dma app.nothing read", .error(line: 5, "nothing")),
        Case("app frobnicate buf", .error(line: 5, "frobnicate")),
        Case("app malloc", .error(line: 5, "needs a buffer name and a size")),
        // Characters that are not what they look like.
        Case("app write\u{0C}buf", .error(line: 5, column: 10, "a form feed (U+000C) in the line")),
        Case("app write\u{0B}buf", .error(line: 5, "a vertical tab (U+000B)")),
        Case("app write buf\u{2028}app read buf", .error(line: 5, "a line separator (U+2028)")),
        Case("app write buf\u{85}", .error(line: 5, "a next-line character (U+0085)")),
        Case("app write\u{A0}buf", .error(line: 5, "a no-break space (U+00A0)")),
        Case("note \"unterminated", .error(line: 5, column: 6, "unterminated string")),
        // Valid scripts whose requests the kernel (or UMPTUI's limits) refuse: outcomes, not errors.
        Case("gpu map app.buf 4K 4K\ngpu dma app.buf read", .outcome(line: 6, "ok", "DMA reads app.buf")),
        Case("app dmabuf-alloc d 64K\ngpu map app.d 128K 4K", .outcome(line: 6, "EINVAL", "a range past its end has no frames")),
        Case("app ump-alloc u 64K\ngpu map app.u 60K 8K", .outcome(line: 6, "EINVAL", "a range past its end has no frames")),
        Case("gpu map app.buf\ngpu dma app.buf read passes=1000000000", .outcome(line: 6, "E2BIG", "a dma step makes at most 1073741824 accesses")),
        Case("gpu map app.buf\ngpu dma app.buf read size=1 count=1024 passes=1048577", .outcome(line: 6, "E2BIG", "1024 accesses × 1048577 passes")),
        Case("app mmap big 64M\ngpu map app.big\ngpu dma app.big read size=1", .outcome(line: 7, "E2BIG", "more than 16777216 accesses a pass"),
             head: "machine ram=256M\nprocess app memlock=1G\ndevice gpu\napp malloc buf 1M\n"),
        Case("gpu dma app.buf read", .outcome(line: 5, "EINVAL", "no mapping of app.buf")),
        // Ranges far wider than what is mapped: the work is the pages that exist (these took 15 s each).
        Case("app mmap m 64M\napp write m 0 64K\napp madvise m dontneed 0 64T", .outcome(line: 7, "ENOMEM", "of the range is not mapped")),
        Case("app mmap m 64M\napp write m 0 64K\napp munmap m 0 64T", .outcome(line: 7, "ok", "the VMA goes")),
        Case("app free buf\napp write buf", .error(line: 6, "buf")),
        Case("app mremap buf 0", .outcome(line: 5, "EINVAL", "not page aligned")),
        Case("app mmap m 64K\napp mremap m 0", .outcome(line: 6, "EINVAL", "a new length of 0 makes no sense")),
    ]

    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("umptui-bad-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func testEveryBadInputGetsItsMessage() throws {
        XCTAssertGreaterThanOrEqual(Self.cases.count + Self.fileCases.count + 6, 60, "the issue asks for at least 60 cases")
        for (i, c) in Self.cases.enumerated() {
            let path = dir.appendingPathComponent("case\(i).ump").path
            let text = c.head + c.lines + "\n"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let context = "case \(i):\n\(text)"
            switch c.want {
            case let .error(line, column, message):
                do {
                    _ = try ScriptLoader.load(path: path)
                    XCTFail("\(context)accepted; wanted: \(message)")
                } catch let e as LoadError {
                    let where_ = "\(path):\(line):" + (column.map { "\($0):" } ?? "")
                    XCTAssertTrue(e.description.contains(where_), "\(context)wanted \(where_) in:\n\(e.description)")
                    XCTAssertTrue(e.description.contains(message), "\(context)wanted '\(message)' in:\n\(e.description)")
                }
            case let .outcome(line, outcome, message):
                let loaded: LoadedScript
                do {
                    loaded = try ScriptLoader.load(path: path)
                } catch {
                    XCTFail("\(context)refused: \(error)")
                    continue
                }
                let result = ScenarioRunner.run(loaded.script, traces: loaded.traces)
                guard let r = result.records.first(where: { $0.line == line }) else {
                    XCTFail("\(context)no step ran line \(line)")
                    continue
                }
                XCTAssertEqual(r.outcome.word, outcome, "\(context)\(r.text)")
                XCTAssertTrue(r.text.contains(message), "\(context)wanted '\(message)' in: \(r.text)")
                XCTAssertEqual(result.records.flatMap(\.bugs), [], context)
            }
        }
    }

    /// Files that are not scenarios, and traces that are not traces.
    static let fileCases: [(setup: @Sendable (URL) throws -> String, message: String)] = [
        ({ _ in "" }, "the scenario file name is empty"),
        ({ dir in dir.path }, "is a directory, not a scenario file"),
        ({ _ in "/dev/null" }, "is a character device, not a scenario file"),
        ({ dir in
            let fifo = dir.appendingPathComponent("fifo.ump").path
            _ = mkfifo(fifo, 0o600)
            return fifo
        }, "is a FIFO (a named pipe), not a scenario file"),
        ({ dir in
            let a = dir.appendingPathComponent("loop-a.ump").path, b = dir.appendingPathComponent("loop-b.ump").path
            _ = symlink(b, a)
            _ = symlink(a, b)
            return a
        }, "a symbolic link loop"),
        ({ dir in dir.appendingPathComponent("missing.ump").path }, "No such file or directory"),
        ({ dir in
            let p = dir.appendingPathComponent("bin.ump").path
            _ = FileManager.default.createFile(atPath: p, contents: Data([0x70, 0x72, 0x6f, 0x63, 0xff, 0xfe, 0x0a]))
            return p
        }, ":1:5: error: the file is not UTF-8 text"),
        ({ dir in
            let p = dir.appendingPathComponent("long.ump").path
            try ("machine\nnote \"" + String(repeating: "x", count: 70_000) + "\"\n").write(toFile: p, atomically: true, encoding: .utf8)
            return p
        }, ":2:1: error: the line is 70007 bytes long; a line may have at most 65536"),
        ({ dir in
            let p = dir.appendingPathComponent("junk.ump").path
            try String(repeating: "zz qq\n", count: 100_000).write(toFile: p, atomically: true, encoding: .utf8)
            return p
        }, ":51:1: error: 50 errors before this line; the rest of the file (99950 lines) is not read"),
        ({ dir in try traceScript(dir, trace: "1\r2\r3x\r") }, "got '1^M2^M3x^M'"),
        ({ dir in try traceScript(dir, trace: "1__2\n") }, "got '1__2'"),
        // unit=page: a page number whose address does not fit in 64 bits (it used to wrap to IOVA 0).
        ({ dir in try traceScript(dir, trace: "1\n4503599627370495\n4503599627370496\n") }, ".trace:3: error: page number 0x10000000000000 × 4096 is past 2^64"),
        ({ dir in try traceScript(dir, trace: "# hex\n0xfffffffffffff000\n") }, ".trace:2: error: page number 0xfffffffffffff000 × 4096 is past 2^64"),
        ({ dir in try traceScript(dir, trace: String(repeating: "7", count: 5000)) }, "the line is longer than 4096 bytes"),
        ({ dir in try traceScript(dir, tracePath: "/dev/zero") }, "not a regular file"),
        ({ dir in try traceScript(dir, tracePath: dir.path) }, "a directory: a trace is a regular file"),
    ]

    static func traceScript(_ dir: URL, trace: String? = nil, tracePath: String? = nil) throws -> String {
        var path = tracePath ?? dir.appendingPathComponent("t-\(UUID().uuidString).trace").path
        if let trace { try trace.write(toFile: path, atomically: true, encoding: .utf8) } else { path = tracePath ?? path }
        let script = dir.appendingPathComponent("trace-\(UUID().uuidString).ump").path
        try "machine\nprocess app\ndevice gpu\napp malloc buf 1M\ngpu map app.buf\ngpu dma-trace \"\(path)\" unit=page\n"
            .write(toFile: script, atomically: true, encoding: .utf8)
        return script
    }

    func testFilesThatAreNotScriptsOrTracesAreSaidToBeSo() throws {
        for (i, c) in Self.fileCases.enumerated() {
            let path = try c.setup(dir)
            XCTAssertThrowsError(try ScriptLoader.load(path: path), "file case \(i): \(path)") { e in
                XCTAssertTrue("\(e)".contains(c.message), "file case \(i): wanted '\(c.message)' in:\n\(e)")
                XCTAssertFalse("\(e)".contains("NSCocoaErrorDomain"), "\(e)")
            }
        }
    }

    /// What only a process shows: the statuses, and writes that fail.
    func testExitStatusesAndFailedWrites() throws {
        guard let bin = EndToEndTests.binary else { throw XCTSkip("the umptui binary is not built beside the tests") }
        let script = dir.appendingPathComponent("ok.ump").path
        try "machine\nprocess app\napp malloc buf 1M\napp write buf\n".write(toFile: script, atomically: true, encoding: .utf8)
        func sh(_ command: String) -> (status: Int32, stderr: String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", command]
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            do { try p.run() } catch { return (-1, "\(error)") }
            let data = err.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        let u = "'\(bin.path)'"
        for (command, status, message) in [
            ("\(u) run '\(script)' > /dev/full", Int32(2), "cannot write to standard output: No space left on device"),
            ("\(u) run '\(script)' --json > /dev/full", 2, "No space left on device"),
            ("\(u) check '\(script)' > /dev/full", 2, "No space left on device"),
            ("\(u) run '\(script)' >&-", 2, "Bad file descriptor"),
            ("\(u) run -dash.ump", 2, "'-dash.ump' reads as options"),
            ("\(u) run --frobnicate '\(script)'", 2, "Unknown option"),
            ("\(u) export '\(script)' --text /dev/null --steps -1", 2, "--steps must be 0 or more"),
        ] {
            let r = sh(command)
            XCTAssertEqual(r.status, status, "\(command): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(message), "\(command): wanted '\(message)' in: \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("Fatal error") || r.stderr.contains("Program crashed"), "\(command): \(r.stderr)")
        }
        // A reader that goes away: EPIPE is a failed write like any other (no silent SIGPIPE death,
        // status 141). The output must outgrow the pipe's 64 KiB for the write to fail.
        let long = dir.appendingPathComponent("long.ump").path
        try ("machine\nprocess app\n" + (0..<600).map { "app mmap b\($0) 4K\n" }.joined()).write(toFile: long, atomically: true, encoding: .utf8)
        let piped = sh("{ \(u) run '\(long)'; echo \"status $?\" >&2; } | head -c 10 > /dev/null")
        XCTAssertTrue(piped.stderr.contains("cannot write to standard output: Broken pipe"), piped.stderr)
        XCTAssertTrue(piped.stderr.contains("status 2"), piped.stderr)
    }
}
