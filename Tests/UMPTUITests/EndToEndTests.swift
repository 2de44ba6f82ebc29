// The real binary in a real terminal (tmux): start, step, step back, the prompt and a bad line,
// resize and too small, NO_COLOR, LANG=C, signals and q, and each time whether `stty -g` after
// equals `stty -g` before. Skipped when tmux is missing.

import Engine
import Foundation
import XCTest
@testable import UMPTUI

final class EndToEndTests: XCTestCase {
    /// Steps in the built-in tour, which these tests drive.
    static let n: Int = (try? parseScript(Tour.source, fileName: "tour")).map { StepPlan($0).steps.count } ?? 0
    var n: Int { Self.n }

    /// The umptui binary beside this test bundle (swift build puts both in the same directory).
    static var binary: URL? {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("umptui")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    static let tmuxPath: String? = ["/usr/bin/tmux", "/usr/local/bin/tmux", "/bin/tmux"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    func start(_ args: [String] = [], env: [String: String] = [:], size: (Int, Int) = (100, 30)) throws -> Tmux {
        guard let tmux = Self.tmuxPath else { throw XCTSkip("tmux is not installed") }
        guard let bin = Self.binary else { throw XCTSkip("the umptui binary is not built beside the tests (run swift build first)") }
        return try Tmux(tmux: tmux, command: [bin.path] + args, env: env, size: size)
    }

    func testStepBackQuitAndTerminalRestored() throws {
        let t = try start()
        defer { t.close() }
        try t.waitFor("step 0/\(n)")
        t.keys("Space")
        try t.waitFor("step 1/\(n)")
        t.keys("Space")
        try t.waitFor("step 2/\(n)")
        t.keys("b")
        try t.waitFor("step 1/\(n)")
        t.keys("BSpace")
        try t.waitFor("step 0/\(n)")
        t.keys("q")
        XCTAssertEqual(try t.waitExit(), 0)
        XCTAssertEqual(t.sttyBefore, t.sttyAfter, "terminal settings restored after q")
    }

    func testPromptRunsALineAndABadLineShowsACaret() throws {
        let t = try start(["--no-mouse"])
        defer { t.close() }
        try t.waitFor("step 0/\(n)")
        t.keys("Space")
        try t.waitFor("step 1/\(n)")
        t.keys(":")
        t.type("app malloc extra 8K")
        t.keys("Enter")
        try t.waitFor("step 2/\(n + 1)")
        t.keys(":")
        t.type("app wrte extra")
        t.keys("Enter")
        let screen = try t.waitFor("unknown verb 'wrte'")
        let lines = screen.components(separatedBy: "\n")
        let input = try XCTUnwrap(lines.firstIndex { $0.hasPrefix(":app wrte extra") })
        XCTAssertEqual(lines[input + 1].firstIndex(of: "^").map { lines[input + 1].distance(from: lines[input + 1].startIndex, to: $0) }, 5)
        XCTAssertTrue(screen.contains("step 2/\(n + 1)"), "a bad line runs nothing")
        t.keys("Escape")
        try t.waitGone("unknown verb")
        // A step typed at the prompt and not saved: q asks once, the second q quits.
        t.keys("q")
        try t.waitFor("q again quits")
        t.keys("q")
        XCTAssertEqual(try t.waitExit(), 0)
        XCTAssertEqual(t.sttyBefore, t.sttyAfter)
    }

    func testResizeRedrawsAndTooSmallStillQuits() throws {
        let t = try start(size: (120, 40))
        defer { t.close() }
        try t.waitFor("step 0/\(n)")
        t.resize(80, 24)
        try t.waitFor { $0.components(separatedBy: "\n").first.map { $0.contains("step 0/\(n)") } == true && $0.contains("PHYSICAL") }
        t.resize(200, 60)
        try t.waitFor { ($0.components(separatedBy: "\n").first?.count ?? 0) > 190 }
        t.resize(60, 20)
        try t.waitFor("terminal too small: 60")
        t.keys("q")
        XCTAssertEqual(try t.waitExit(), 0)
        XCTAssertEqual(t.sttyBefore, t.sttyAfter)
    }

    /// The real binary in tmux shows, row for row, the Canvas the same keys give in process: at
    /// 80x24 after End in the two-device demo (the pane on nic2), after a find, after a resize,
    /// and in ASCII without colour.
    func testTheTerminalShowsWholeScreensAsTheCanvasDoes() throws {
        let path = Demos.directory.appendingPathComponent("iotlb-reach.ump").path
        let script = try parseScript(String(contentsOf: URL(fileURLWithPath: path), encoding: .utf8), fileName: path)
        func app(_ width: Int, _ height: Int, ascii: Bool = false) -> AppState {
            var a = AppState(session: Session(script: script, files: FileTraceProvider(base: Demos.directory)), glyphs: ascii ? .ascii : .unicode)
            a.width = width
            a.height = height
            a.prepare()
            return a
        }
        for ascii in [false, true] {
            let env = ascii ? ["LC_ALL": "C", "LANG": "C", "NO_COLOR": "1"] : [:]
            let t = try start(["--no-mouse", path], env: env, size: (80, 24))
            defer { t.close() }
            var a = app(80, 24, ascii: ascii)
            try t.waitFor("step 0/15")
            t.keys("End")
            let total = "step 15/15"
            var screen = try t.waitFor { $0.contains(total) && $0.contains("LOG  15 ok") }
            Snapshot.assertScreen(screen, equals: a.press(.end), named: "End at 80x24\(ascii ? " in ASCII" : "")")
            t.keys("/")
            t.type("iova 0xfc000000")
            t.keys("Enter")
            screen = try t.waitFor { $0.contains("n next match") }
            _ = a.press(.char("/"))
            a.type("iova 0xfc000000")
            Snapshot.assertScreen(screen, equals: a.press(.enter), named: "a find\(ascii ? " in ASCII" : "")")
            t.resize(120, 40)
            screen = try t.waitFor { s in
                let rows = s.components(separatedBy: "\n")
                return (rows.first?.count ?? 0) > 100 && rows.count >= 40 && rows[39].contains("n next match")
            }
            a.width = 120
            a.height = 40
            Snapshot.assertScreen(screen, equals: a.press(.resize), named: "resized to 120x40\(ascii ? " in ASCII" : "")")
            t.keys("q")
            XCTAssertEqual(try t.waitExit(), 0)
        }
    }

    func testNoColorUsesAttributesOnly() throws {
        let t = try start(env: ["NO_COLOR": "1"])
        defer { t.close() }
        try t.waitFor("step 0/\(n)")
        let coloured = t.capture(escapes: true)
        XCTAssertFalse(coloured.contains("[3") && coloured.range(of: #"\[3[0-7]m|38;5;"#, options: .regularExpression) != nil,
                       "no foreground colours under NO_COLOR")
        XCTAssertTrue(coloured.contains("[7m") || coloured.contains(";7m"), "reverse video still marks the focus")
        t.keys("q")
        XCTAssertEqual(try t.waitExit(), 0)
    }

    func testColoursByDefault() throws {
        let t = try start()
        defer { t.close() }
        try t.waitFor("step 0/\(n)")
        XCTAssertNotNil(t.capture(escapes: true).range(of: #"38;5;\d+"#, options: .regularExpression), "256 colours in tmux")
        t.keys("q")
        _ = try t.waitExit()
    }

    func testLangCGivesASCIIGlyphs() throws {
        let t = try start(env: ["LANG": "C", "LC_ALL": "C"])
        defer { t.close() }
        let screen = try t.waitFor("step 0/\(n)")
        XCTAssertFalse(screen.contains("·") || screen.contains("│") || screen.contains("─"), screen)
        XCTAssertTrue(screen.contains("||") || screen.contains("| "), "ASCII separators")
        t.keys("q")
        XCTAssertEqual(try t.waitExit(), 0)
        XCTAssertEqual(t.sttyBefore, t.sttyAfter)
    }

    func testSIGTERMRestoresTheTerminal() throws {
        try signalTest("TERM", SIGTERM)
    }

    func testSIGINTRestoresTheTerminal() throws {
        try signalTest("INT", SIGINT)
    }

    func testSIGHUPRestoresTheTerminal() throws {
        try signalTest("HUP", SIGHUP)
    }

    private func signalTest(_ name: String, _ sig: Int32) throws {
        let t = try start()
        defer { t.close() }
        try t.waitFor("step 0/\(n)")
        t.keys("Space")
        try t.waitFor("step 1/\(n)")
        try t.signal(name)
        XCTAssertEqual(try t.waitExit(), 128 + sig, "dies of the signal once the terminal is restored")
        XCTAssertEqual(t.sttyBefore, t.sttyAfter, "terminal settings restored after SIG\(name)")
    }

    /// A crash in curses mode: the terminal comes back, and what went to stderr (the program's own
    /// line and Swift's "Fatal error") is shown after the screen is restored.
    func testCrashRestoresTheTerminalAndShowsStderr() throws {
        let t = try start(env: ["UMPTUI_TEST_CRASH": "1"])
        defer { t.close() }
        let status = try t.waitExit(timeout: 30)
        XCTAssertNotEqual(status, 0)
        XCTAssertEqual(t.sttyBefore, t.sttyAfter, "terminal settings restored after a crash")
        let text = t.capture(history: true)
        XCTAssertTrue(text.contains("crashing on purpose"), text)
        XCTAssertTrue(text.contains("Fatal error"), text)
    }

    func testUnknownTERMSaysSoAndExits2() throws {
        let t = try start(env: ["TERM": "no-such-terminal"])
        defer { t.close() }
        XCTAssertEqual(try t.waitExit(), 2)
        XCTAssertTrue(t.capture().contains("cannot use the terminal \"no-such-terminal\""), t.capture())
        XCTAssertEqual(t.sttyBefore, t.sttyAfter)
    }

    /// `--record`, then `kill -9` in the middle of the session: the file has every line written
    /// before the kill, and it replays to the state the same keys give in-process.
    func testARecorderKilledWithSIGKILLLeavesAFileThatReplays() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("umptui-rec-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("lecture.ump").path
        let t = try start(["--record", path])
        defer { t.close() }
        try t.waitFor("recording to")
        t.keys("Space")
        try t.waitFor("step 1/\(n)")
        t.keys("Space")
        try t.waitFor("step 2/\(n)")
        t.keys(":")
        t.type("app malloc extra 8K")
        t.keys("Enter")
        try t.waitFor("step 3/\(n + 1)")
        t.keys("b")
        try t.waitFor("step 2/\(n + 1)")
        t.keys("Space")
        try t.waitFor("step 3/\(n + 1)")
        t.keys("Enter")
        try t.waitFor("Esc closes)")
        t.keys("Escape")
        t.keys("Space")
        try t.waitFor("step 4/\(n + 1)")
        try t.signal("KILL")
        XCTAssertEqual(try t.waitExit(), 128 + SIGKILL)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.hasPrefix(ScriptText.recordingHeader), text)
        XCTAssertTrue(text.hasSuffix("\n"), "every line was written whole")
        let loaded = try ScriptLoader.load(path: path)
        XCTAssertEqual(loaded.warnings, [])
        let replayed = ScenarioRunner.run(loaded.script)
        XCTAssertEqual(replayed.failures.map(\.message), [])
        // The same keys, in-process.
        var app = AppState(session: Session(script: try parseScript(Tour.source, fileName: Tour.fileName)), glyphs: .unicode)
        (app.width, app.height) = (100, 30)
        for k in [Key.char(" "), .char(" ")] { _ = app.handle(k) }
        _ = app.handle(.char(":"))
        for c in "app malloc extra 8K" { _ = app.handle(.char(c)) }
        for k in [Key.enter, .char("b"), .char(" "), .enter, .escape, .char(" ")] { _ = app.handle(k) }
        XCTAssertEqual(app.session.current, 4)
        XCTAssertEqual(replayed.engine.stateJSON(), app.session.engine.stateJSON(), text)
        XCTAssertTrue(text.contains("\ninspect\n"), text)
        XCTAssertTrue(text.contains("\nback\napp malloc extra 8K\n"), "the step back, then the step again: \(text)")
    }

    /// `--play --exit` plays a recording at its own pace and quits at the end.
    func testPlayExitPlaysARecordingToTheEnd() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("umptui-play-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("demo.ump").path
        try "# umptui recording\nprocess app\nwait 200ms\napp malloc buf 64K\nwait 300ms\napp write buf\n".write(toFile: path, atomically: true, encoding: .utf8)
        let t = try start([path, "--play", "--exit"])
        defer { t.close() }
        let started = Date()
        XCTAssertEqual(try t.waitExit(), 0)
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 0.4, "the waits were honoured")
        XCTAssertEqual(t.sttyBefore, t.sttyAfter)
    }

    func testNotATerminalExitsWithStatus2() throws {
        guard let bin = Self.binary else { throw XCTSkip("the umptui binary is not built beside the tests") }
        // stdin from /dev/null, stdout and stderr to files: no terminal anywhere. `timeout` turns a
        // busy loop into a failure instead of a hang.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("umptui-notty-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let err = dir.appendingPathComponent("err").path
        let r = Tmux.spawn(["/bin/sh", "-c", "exec timeout 10 \(Tmux.quote(bin.path)) > \(dir.path)/out 2> \(err)"], capture: false)
        XCTAssertEqual(r.status, 2)
        let message = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
        XCTAssertTrue(message.contains("needs a terminal"), message)
    }
}

/// A detached tmux server running one command in a shell that records `stty -g` before and after.
final class Tmux {
    let tmux: String
    let socket: String
    let dir: URL

    init(tmux: String, command: [String], env: [String: String], size: (Int, Int)) throws {
        self.tmux = tmux
        socket = "umptui-e2e-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(socket)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var environment = ["TERM": "tmux-256color", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "SWIFT_BACKTRACE": "interactive=no"]
        environment.merge(env) { $1 }
        let envs = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\(Tmux.quote($0.value))" }.joined(separator: " ")
        let cmd = command.map(Tmux.quote).joined(separator: " ")
        let d = dir.path
        // The test runner's own NO_COLOR (swift test may set it) must not leak into the terminal under test.
        let unset = env["NO_COLOR"] == nil ? "-u NO_COLOR " : ""
        let script = "stty -g > \(d)/before; env \(unset)\(envs) \(cmd); echo $? > \(d)/rc.tmp; stty -g > \(d)/after; mv \(d)/rc.tmp \(d)/rc; sleep 60"
        // The server this starts keeps whatever descriptors it inherits: give it none to hold open.
        run(["-f", "/dev/null", "new-session", "-d", "-s", "main", "-x", "\(size.0)", "-y", "\(size.1)", "sh", "-c", script])
    }

    static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// Runs tmux and returns what it printed. posix_spawn and waitpid rather than Foundation's
    /// Process, whose child reaping hung here once tmux had forked its server.
    @discardableResult
    func run(_ args: [String]) -> String {
        Tmux.spawn([tmux, "-L", socket] + args, capture: args.first == "capture-pane" || args.first == "display").output
    }

    @discardableResult
    static func spawn(_ argv: [String], capture: Bool) -> (output: String, status: Int32) {
        var fds: [Int32] = [-1, -1]
        if capture { guard pipe(&fds) == 0 else { return ("", -1) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // A command that starts the server must not hand it a pipe of ours: it would never close.
        if capture {
            posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
            posix_spawn_file_actions_addclose(&actions, fds[0])
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let cargs = argv.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, cargs, environ)
        if capture { Glibc.close(fds[1]) }
        guard rc == 0 else {
            if capture { Glibc.close(fds[0]) }
            return ("", -1)
        }
        var data = [UInt8]()
        if capture {
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(fds[0], &buf, buf.count)
                if n <= 0 { break }
                data += buf[0..<n]
            }
            Glibc.close(fds[0])
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let exit = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (String(decoding: data, as: UTF8.self), exit)
    }

    func keys(_ k: String...) { run(["send-keys", "-t", "main"] + k) }
    func type(_ s: String) { run(["send-keys", "-t", "main", "-l", s]) }
    func resize(_ w: Int, _ h: Int) { run(["resize-window", "-t", "main", "-x", "\(w)", "-y", "\(h)"]) }
    func capture(escapes: Bool = false, history: Bool = false) -> String {
        run(["capture-pane", "-p", "-t", "main"] + (escapes ? ["-e"] : []) + (history ? ["-S", "-2000"] : []))
    }

    /// Polls the screen until `done` holds; fails with the last screen after `timeout` seconds.
    @discardableResult
    func waitFor(timeout: Double = 10, _ done: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var screen = ""
        while Date() < deadline {
            screen = capture()
            if done(screen) { return screen }
            usleep(50_000)
        }
        throw Failure(message: "timed out; the screen was:\n\(screen)")
    }

    @discardableResult
    func waitFor(_ text: String, timeout: Double = 10) throws -> String {
        try waitFor(timeout: timeout) { $0.contains(text) }
    }

    func waitGone(_ text: String) throws { try waitFor { !$0.contains(text) } }

    /// The command's exit status, once the shell has written it.
    func waitExit(timeout: Double = 10) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        let rc = dir.appendingPathComponent("rc")
        while Date() < deadline {
            if let s = try? String(contentsOf: rc, encoding: .utf8), let n = Int32(s.trimmingCharacters(in: .whitespacesAndNewlines)) { return n }
            usleep(50_000)
        }
        throw Failure(message: "the program did not exit; the screen was:\n\(capture())")
    }

    var sttyBefore: String? { try? String(contentsOf: dir.appendingPathComponent("before"), encoding: .utf8) }
    var sttyAfter: String? { try? String(contentsOf: dir.appendingPathComponent("after"), encoding: .utf8) }

    /// Sends a signal to the program: the child of the pane's shell.
    func signal(_ name: String) throws {
        let shell = run(["display", "-p", "-t", "main", "#{pane_pid}"]).trimmingCharacters(in: .whitespacesAndNewlines)
        Tmux.spawn(["/usr/bin/pkill", "-\(name)", "-P", shell], capture: false)
    }

    func close() {
        run(["kill-server"])
        try? FileManager.default.removeItem(at: dir)
    }

    struct Failure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}

/// `umptui bench --boot-only --json`: the boot figure and its spread, as scripts read them.
final class BenchBootTests: XCTestCase {
    func testTheBootBenchReportsBothSidesAndTheDifference() throws {
        guard let bin = EndToEndTests.binary else { throw XCTSkip("the umptui binary is not built beside the tests") }
        // The bench's own runner: it throws unless the status is 0.
        let out = try IOTLBBench.runProcess(bin.path, ["bench", "--boot-only", "--json"])
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let boot = try XCTUnwrap(obj["boot"] as? [String: Any])
        func ms(_ key: String) -> Double { Double(boot[key] as? String ?? "") ?? -1 }
        XCTAssertGreaterThan(ms("ram_64m_ms_median"), 0)
        XCTAssertGreaterThanOrEqual(ms("ram_16g_ms_max"), ms("ram_16g_ms_median"))
        XCTAssertLessThanOrEqual(ms("ram_16g_ms_min"), ms("ram_16g_ms_median"))
        XCTAssertEqual(ms("added_ms"), ms("ram_16g_ms_median") - ms("ram_64m_ms_median"), accuracy: 0.02)
        XCTAssertEqual(boot["target_added_ms"] as? Int, 5)
    }
}
