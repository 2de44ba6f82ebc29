// `expect` through ScenarioRunner.run: passing clauses give no failure, a failing clause gives
// exactly one ExpectFailure with its line, statement and message.

import XCTest

@testable import Engine

final class ExpectTests: XCTestCase {
    private func runScript(_ source: String, file: StaticString = #filePath, line: UInt = #line) -> RunResult? {
        do {
            return ScenarioRunner.run(try parseScript(source, fileName: "t.ump"))
        } catch {
            XCTFail(error.rendered, file: file, line: line)
            return nil
        }
    }

    func testPassingExpectsGiveNoFailures() {
        guard let r = runScript("""
            process app
            app mmap buf 64K
            app read buf
            expect app.buf present=16 zero=16 writable=0
            app write buf 0 16K
            expect app.buf present=16 zero=12 writable=4 exclusive=4
            expect app rss=16384 rss_pages=4
            app fork kid
            expect app.buf shared=4 writable=0
            expect kid.buf present=16 zero=12
            app munmap buf 16K 16K
            app write buf
            expect last outcome=SIGSEGV ok=false
            expect app alive=false
            """) else { return }
        XCTAssertEqual(r.failures, [])
        XCTAssertEqual(r.records.count, 7)
        XCTAssertEqual(r.records.map(\.outcome.word), ["ok", "ok", "ok", "ok", "ok", "ok", "SIGSEGV"])
    }

    func testAFailingExpectIsReportedWithItsLineAndMessage() {
        guard let r = runScript("""
            process app
            app mmap buf 64K
            app read buf
            app write buf 0 4K
            expect app.buf present=16 zero=16
            """) else { return }
        XCTAssertEqual(r.failures, [ExpectFailure(location: SourceLocation(line: 5, column: 27),
                                                  statement: "expect app.buf present=16 zero=16",
                                                  message: "app.buf zero is 15, expected 16")])
    }
}
