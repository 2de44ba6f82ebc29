// Teaching from the outside: the lackey reader (every line shape, malformed lines with their line
// and column, gzip, non-files, a large trace in bounded memory), `umptui quiz` in line mode, quiz
// mode in the TUI, and the demos: every note's numbers come from placeholders, and every demo's
// quiz is consistent (`--answers right` scores full marks).

import Engine
import Foundation
import XCTest
@testable import UMPTUI

/// A test case with a fresh directory of its own, removed afterwards.
class TempDirTestCase: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("umptui-\(Self.self)-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }
}

final class LackeyReaderTests: TempDirTestCase {

    private func file(_ name: String, _ text: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// Runs a shell command (gzip and head make the compressed and cut files).
    private func sh(_ command: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, command)
    }

    private func read(_ path: String) throws -> [MemoryAccess] {
        let s = try LackeySource(path: path)
        var all: [MemoryAccess] = [], batch: [MemoryAccess] = []
        while try s.nextBatch(&batch) { all += batch }
        return all
    }

    func testEveryLineShapeReads() throws {
        let path = try file("t.lackey", """
            ==1234== Lackey, an example Valgrind tool
            ==1234== Command: ./touch
            ==1234== \u{20}
            --1234-- a debug line
            I  04010173,3
             L 04222cac,8
             S 1fff000750,16
             M 0x4a7000,4\r

            I  0045ffff,6
            ==1234== Exit code:       0
            """)
        XCTAssertEqual(try read(path), [
            MemoryAccess(address: 0x4010173, size: 3, kind: .instruction),
            MemoryAccess(address: 0x4222cac, size: 8, kind: .load),
            MemoryAccess(address: 0x1fff000750, size: 16, kind: .store),
            MemoryAccess(address: 0x4a7000, size: 4, kind: .modify),
            MemoryAccess(address: 0x45ffff, size: 6, kind: .instruction),
        ])
    }

    func testMalformedLinesNameTheirLineAndColumn() throws {
        let cases: [(String, String)] = [
            ("I  0401,3\n X 0402,8\n", ":2:2: error: expected I, L, S or M"),
            ("I  0401,3\nI  zz,3\n", ":2:4: error: expected a hex address"),
            ("L 0401\n", ":1:7: error: expected ',' and a size after the address"),
            (" S 0401,\n", ":1:9: error: expected a decimal size after ','"),
            (" S 0401,8 extra\n", ":1:10: error: unexpected ' extra' after the size"),
            ("L0401,8\n", ":1:2: error: expected a space after the access kind"),
            ("I  11112222333344445,1\n", ":1:4: error: the address does not fit in 64 bits"),
            ("\n\n L 1000,9999999\n", ":3:9: error: an access size above 1 MiB"),
        ]
        for (i, (text, expected)) in cases.enumerated() {
            let path = try file("bad\(i).lackey", text)
            XCTAssertThrowsError(try read(path), text) { error in
                XCTAssertTrue("\(error)".hasPrefix(path + expected), "\(error)")
            }
        }
        let long = try file("long.lackey", "I  1000,1\n" + String(repeating: "x", count: 5000) + "\n")
        XCTAssertThrowsError(try read(long)) { XCTAssertTrue("\($0)".contains(":2: error: a line longer than 4096 bytes"), "\($0)") }
    }

    func testATruncatedGzipIsAnErrorNotAShortTrace() throws {
        var text = ""
        for i in 0..<20_000 { text += " L \(String(0x480_0000 + i * 8, radix: 16)),8\n" }
        let plain = try file("t.lackey", text)
        let gz = dir.appendingPathComponent("t.lackey.gz").path
        try sh("gzip -c '\(plain)' > '\(gz)' && head -c 20 '\(gz)' > '\(gz).head' && head -c -4 '\(gz)' > '\(gz).tail'")
        XCTAssertEqual(try read(gz).count, 20_000)
        for cut in [gz + ".head", gz + ".tail"] {
            XCTAssertThrowsError(try read(cut), cut) { XCTAssertTrue("\($0)".contains("the gzip data ends early"), "\($0)") }
        }
    }

    func testErrorsShowControlBytesPrintably() throws {
        let path = try file("c.lackey", "\u{1b}[2J,8\n")
        XCTAssertThrowsError(try read(path)) { XCTAssertTrue("\($0)".contains("got '^[[2J,8'"), "\($0)") }
        XCTAssertEqual(printable("a\u{1b}b\u{7f}\nc\u{0}"), "a^[b^?\nc^@")
        XCTAssertThrowsError(try LackeySource(path: dir.path)) { XCTAssertFalse("\($0)".contains(":0:"), "\($0)") }
    }

    func testOnlyRegularFilesAreTraces() throws {
        XCTAssertThrowsError(try LackeySource(path: dir.path)) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
        let fifo = dir.appendingPathComponent("fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        XCTAssertThrowsError(try LackeySource(path: fifo)) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
        XCTAssertThrowsError(try LackeySource(path: dir.appendingPathComponent("none").path)) {
            XCTAssertTrue("\($0)".contains("cannot open"), "\($0)")
        }
    }

    func testAGzipTraceReadsLikeThePlainOne() throws {
        let text = "==1== x\nI  401000,4\n L 4800000,8\n S 4800008,8\n"
        let plain = try file("p.lackey", text)
        let gz = dir.appendingPathComponent("p.lackey.gz").path
        try sh("gzip -c '\(plain)' > '\(gz)'")
        XCTAssertEqual(try read(gz), try read(plain))
        XCTAssertEqual(try read(gz).count, 3)
    }

    /// The issue's size: ten million lines, read and replayed through the Engine, in bounded memory.
    /// Long (a minute in a debug build): `UMPTUI_LONG_TESTS=1 swift test --filter LongTraceTests`.
    func testTenMillionLinesReplayInBoundedMemory() throws {
        guard ProcessInfo.processInfo.environment["UMPTUI_LONG_TESTS"] == "1" else {
            throw XCTSkip("long: UMPTUI_LONG_TESTS=1 swift test --filter LackeyReaderTests")
        }
        try BenchLackey.write(lines: 10_000_000, to: dir.appendingPathComponent("huge.lackey").path)
        let script = try parseScript("machine ram=64M\nprocess app\napp trace huge.lackey", fileName: "t.ump")
        let before = BenchLackey.maxRSSKiB()
        let result = ScenarioRunner.run(script, traces: FileTraceProvider(base: dir))
        XCTAssertEqual(result.records.last?.outcome, .ok, result.records.last?.text ?? "")
        XCTAssertEqual(result.records.last?.trace?.lines, 10_000_000)
        XCTAssertLessThan(BenchLackey.maxRSSKiB() - before, 64 << 10, "memory grew with the trace")
    }

    /// Half a million lines stream through a fixed buffer: memory does not grow with the trace (a
    /// reader that kept the accesses would need 8 MB for these).
    func testALargeTraceStreamsInBoundedMemory() throws {
        let url = dir.appendingPathComponent("big.lackey")
        try BenchLackey.write(lines: 500_000, to: url.path)
        let s = try LackeySource(path: url.path)
        var batch: [MemoryAccess] = []
        var n = 0
        let before = BenchLackey.maxRSSKiB()
        while try s.nextBatch(&batch) { n += batch.count }
        XCTAssertEqual(n, 500_000)
        XCTAssertEqual(s.linesRead, 500_000)
        XCTAssertLessThan(BenchLackey.maxRSSKiB() - before, 4 << 10, "the reader's memory grew with the trace")
    }
}

final class QuizCLITests: TempDirTestCase {

    private func umptui(_ args: [String], stdin: String? = nil) throws -> CLITests.Output {
        guard let bin = EndToEndTests.binary else { throw XCTSkip("the umptui binary is not built beside the tests") }
        let p = Process()
        p.executableURL = bin
        p.arguments = args
        p.currentDirectoryURL = dir
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        try inp.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return .init(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static let script = """
        machine ram=64M
        process app
        app mmap buf 64K
        quiz "Reading an untouched mmap: how many frames?" a="16" b="none, the zero page" answer=b explain="do_anonymous_page maps the zero page"
        app read buf
        app write buf
        """

    private func write(_ text: String) throws -> String {
        let url = dir.appendingPathComponent("q.ump")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func testAnswersRightScoresFullMarksAndAnswersAreScored() throws {
        let f = try write(QuizCLITests.script)
        let right = try umptui(["quiz", f, "--answers", "right"])
        XCTAssertEqual(right.status, 0, right.stderr)
        XCTAssertEqual(right.stdout.split(separator: "\n").last, "score: 2/2")
        XCTAssertTrue(right.stdout.contains("question 1 (written), before step 3   [line 4]"), right.stdout)
        XCTAssertTrue(right.stdout.contains("question 2 (automatic: fault), before step 4   [line 6]"), right.stdout)
        XCTAssertTrue(right.stdout.contains("decided by: do_wp_page → wp_page_copy"), right.stdout)
        let wrong = try umptui(["quiz", f, "--answers", "a,c"])
        XCTAssertEqual(wrong.status, 0, wrong.stderr)
        XCTAssertTrue(wrong.stdout.contains("answer a: wrong; right: b) none, the zero page"), wrong.stdout)
        XCTAssertEqual(wrong.stdout.split(separator: "\n").last, "score: 1/2")
        let short = try umptui(["quiz", f, "--answers", "b"])
        XCTAssertTrue(short.stdout.contains("answer -: wrong (no answer given (--answers has 1))"), short.stdout)
        XCTAssertEqual(short.stdout.split(separator: "\n").last, "score: 1/2")
    }

    func testQuizJSONHasAnObjectPerQuestionAndTheScore() throws {
        let f = try write(QuizCLITests.script)
        let r = try umptui(["quiz", f, "--answers", "b,b", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        XCTAssertEqual(lines.count, 3)
        XCTAssertEqual(lines[0]["quiz"] as? Int, 1)
        XCTAssertEqual(lines[0]["kind"] as? String, "written")
        XCTAssertEqual(lines[0]["answer"] as? String, "b")
        XCTAssertEqual(lines[0]["right"] as? Bool, true)
        XCTAssertEqual((lines[0]["choices"] as? [String: String])?["a"], "16")
        XCTAssertEqual(lines[1]["kind"] as? String, "fault")
        XCTAssertEqual(lines[1]["answer"] as? String, "c")
        XCTAssertEqual(lines[1]["right"] as? Bool, false)
        XCTAssertEqual(lines[2]["score"] as? Int, 1)
        XCTAssertEqual(lines[2]["questions"] as? Int, 2)
    }

    func testBadAnswersAndNoTerminalAreErrors() throws {
        let f = try write(QuizCLITests.script)
        let spaced = try umptui(["quiz", f, "--answers", " right "])
        XCTAssertEqual(spaced.stdout.split(separator: "\n").last, "score: 2/2", spaced.stderr)
        let bad = try umptui(["quiz", f, "--answers", "a,zz"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("--answers: answer 2 is 'zz'"), bad.stderr)
        let noTTY = try umptui(["quiz", f])
        XCTAssertEqual(noTTY.status, 2)
        XCTAssertTrue(noTTY.stderr.contains("quiz mode needs a terminal"), noTTY.stderr)
        let json = try umptui(["quiz", f, "--json"])
        XCTAssertEqual(json.status, 2)
        let badQuiz = try write("process app\nquiz \"Q?\" a=\"x\" b=\"y\" answer=c\napp malloc b 4K\n")
        let located = try umptui(["quiz", badQuiz, "--answers", "right"])
        XCTAssertEqual(located.status, 2)
        XCTAssertTrue(located.stderr.contains("q.ump:2:30: error: answer 'c' is not a choice"), located.stderr)
    }
}

final class QuizModeTUITests: XCTestCase {
    func testAChoiceLetterAnswersRunsTheStepAndRevealsBeforeTheNote() throws {
        var app = try makeApp("""
            machine ram=64M
            process app
            app mmap buf 64K
            note "the note that gives it away"
            app read buf
            app write buf
            """, steps: 2, width: 100, height: 30)
        _ = app.press(.char("Q"))
        XCTAssertNotNil(app.quiz)
        _ = app.press(.char(" "))
        guard case let .quiz(q)? = app.overlay else { return XCTFail("no question: \(String(describing: app.overlay))") }
        XCTAssertEqual(app.session.current, 2, "the step waits for the answer")
        XCTAssertFalse(TextDriver.text(app.screen()).contains("the note that gives it away"), "the note shows only after the answer")
        // `b` answers here: it does not step back.
        var screen = app.press(.char("b"))
        XCTAssertEqual(app.session.current, 3)
        guard case let .quizReveal(a)? = app.overlay else { return XCTFail("no reveal") }
        XCTAssertEqual(a.given, "b")
        XCTAssertEqual(q.answer, "a")
        XCTAssertFalse(a.right)
        XCTAssertTrue(TextDriver.text(screen).contains("the answer: a) map the shared zero page"), TextDriver.text(screen))
        XCTAssertTrue(TextDriver.text(screen).contains("decided by: do_anonymous_page"), TextDriver.text(screen))
        XCTAssertTrue(TextDriver.text(screen).contains("the note that gives it away"), TextDriver.text(screen))
        XCTAssertTrue(TextDriver.text(screen).contains("QUIZ 0/1"), TextDriver.text(screen))
        // Space closes the reveal and asks the next step's question; the right letter scores.
        _ = app.press(.char(" "))
        guard case .quiz? = app.overlay else { return XCTFail("no second question") }
        screen = app.press(.char("c"))
        XCTAssertEqual(app.quiz?.score.text, "score: 1/2")
        XCTAssertTrue(TextDriver.text(screen).contains("quiz done: score: 1/2"), TextDriver.text(screen))
        // Stepping back and forth again asks nothing twice; Q ends quiz mode.
        _ = app.press(.escape, .char("b"), .char(" "))
        XCTAssertNil(app.overlay)
        XCTAssertEqual(app.session.current, 4)
        _ = app.press(.char("Q"))
        XCTAssertNil(app.quiz)
    }

    func testALongQuestionFitsAt80x24() throws {
        let long = String(repeating: "a long choice that wraps over more than one line of the panel ", count: 2)
        let choices = "abcdefgh".map { "\($0)=\"\($0): \(long)\"" }.joined(separator: " ")
        var app = try makeApp("process app\napp mmap buf 64K\nquiz \"\(long) \(long)?\" \(choices) answer=h\napp read buf", steps: 2, width: 80, height: 24)
        let screen = TextDriver.text(app.press(.char("Q"), .char(" ")))
        for letter in "abcdefgh" { XCTAssertTrue(screen.contains(" \(letter)) \(letter): a long"), "\(letter) is not on screen:\n\(screen)") }
        XCTAssertTrue(screen.contains("a-h answer  Esc put away  Q end quiz"), screen)
    }

    func testTheInspectorScrollsNoFurtherThanItsLastLine() throws {
        var app = try makeApp("process app\ndevice nic iommu=vtd\napp mmap buf 64K\napp write buf\nnic map app.buf", steps: 5, width: 80, height: 24)
        XCTAssertTrue(app.select(.page(BufferRef(process: "app", buffer: "buf"), index: 0)))
        _ = app.press(.enter)
        let most = Inspector.maxScroll(app)
        XCTAssertGreaterThan(most, 0, "the walk does not fit 80x24")
        for _ in 0..<30 { _ = app.press(.down) }
        XCTAssertEqual(app.inspectorScroll, most)
        _ = app.press(.up)
        XCTAssertEqual(app.inspectorScroll, most - 1, "Up moves at once after scrolling past the end")
        _ = app.press(.pageDown, .pageDown, .pageUp)
        XCTAssertEqual(app.inspectorScroll, max(0, most - 10))
    }

    func testARecordingWritesAStepWithItsNoteAndQuizInOneWrite() throws {
        final class CountingSink: RecordingSink {
            var writes: [String] = []
            func write(_ line: String) throws { writes.append(line) }
            func close() {}
        }
        var app = try makeApp("process app\napp mmap buf 64K\nnote \"n\"\nquiz \"Q?\" a=\"x\" b=\"y\" answer=a\napp read buf", steps: 2)
        let sink = CountingSink()
        app.recorder = Recorder(path: "r.ump", sink: sink, header: ["# umptui recording"], session: app.session, now: 0)
        _ = app.press(.char(" "))
        XCTAssertEqual(sink.writes.last, "note \"n\"\nquiz \"Q?\" a=\"x\" b=\"y\" answer=a\napp read buf")
    }

    func testEscPutsTheQuestionAwayWithoutRunningTheStep() throws {
        var app = try makeApp("process app\napp mmap buf 64K\napp read buf", steps: 2)
        _ = app.press(.char("Q"), .char(" "))
        guard case .quiz? = app.overlay else { return XCTFail("no question") }
        _ = app.press(.char("x"))
        XCTAssertEqual(app.session.current, 2)
        XCTAssertTrue(app.message?.hasPrefix("answer with a, b, c, d, e") == true, app.message ?? "")
        _ = app.press(.escape)
        XCTAssertNil(app.overlay)
        XCTAssertEqual(app.session.current, 2)
        _ = app.press(.char(" "))
        guard case .quiz? = app.overlay else { return XCTFail("not asked again") }
    }
}

final class DemoTeachingTests: XCTestCase {
    static let demos: [URL] = {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../demos").standardized
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix(".ump") }.sorted().map { dir.appendingPathComponent($0) }
    }()

    /// A word of a note (letters, digits, `_ . - :`) that starts with a digit, once placeholders are out.
    static func strayNumbers(_ note: String) -> [String] {
        var text = ""
        var depth = 0
        var chars = Array(note)[...]
        while let c = chars.popFirst() {
            if (c == "{" || c == "}"), chars.first == c { chars.removeFirst(); text.append(" "); continue }
            if c == "{" { depth += 1; continue }
            if c == "}" { depth = max(0, depth - 1); text.append(" "); continue }
            if depth == 0 { text.append(c) }
        }
        let words = text.split { !($0.isLetter || $0.isNumber || "_.-:".contains($0)) }
        return words.filter { $0.first?.isNumber == true }.map(String.init)
    }

    func testTheStrayNumberRuleItself() {
        XCTAssertEqual(DemoTeachingTests.strayNumbers("17 pages on nic2 in x86-64 order-9 at 0x1000, {wp_page_copy} {=2 MiB}"), ["17", "0x1000"])
        XCTAssertEqual(DemoTeachingTests.strayNumbers("{{literal}} 6.12 (3 of them)"), ["6.12", "3"])
    }

    func testEveryDemoNoteTakesItsNumbersFromPlaceholders() throws {
        XCTAssertGreaterThan(DemoTeachingTests.demos.count, 10)
        for url in DemoTeachingTests.demos {
            let script = try parseScript(try String(contentsOf: url, encoding: .utf8), fileName: url.lastPathComponent)
            for st in script.statements {
                guard case let .note(text) = st.kind else { continue }
                let stray = DemoTeachingTests.strayNumbers(text)
                XCTAssertTrue(stray.isEmpty, "\(url.lastPathComponent):\(st.location.line): numbers \(stray) are not placeholders ({KEY}) or fixed facts ({=TEXT})")
            }
        }
    }

    func testEveryDemosQuizIsConsistent() throws {
        for url in DemoTeachingTests.demos {
            let source = try String(contentsOf: url, encoding: .utf8)
            let script = try parseScript(source, fileName: url.lastPathComponent)
            var traces: (any TraceProvider)? = nil
            if script.statements.contains(where: { if case .processEvent(_, .trace) = $0.kind { true } else { false } }) {
                traces = FileTraceProvider(base: url.deletingLastPathComponent())
            }
            let run = QuizRun(answers: .right).run(script, traces: traces) { _ in }
            XCTAssertGreaterThanOrEqual(run.score.asked, 2, "\(url.lastPathComponent) asks fewer than two questions")
            XCTAssertEqual(run.score.right, run.score.asked, url.lastPathComponent)
            XCTAssertTrue(run.failures.isEmpty, "\(url.lastPathComponent): \(run.failures.map(\.message))")
            let written = script.statements.filter { if case .quiz = $0.kind { true } else { false } }.count
            XCTAssertGreaterThanOrEqual(run.score.answers.filter { $0.question.kind == .written }.count, written,
                                        "\(url.lastPathComponent): a written quiz was never asked")
        }
    }
}
