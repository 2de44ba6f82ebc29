// Screen snapshots, as tig tests its screens: a scripted state rendered as text at a fixed size and
// compared with a file under Snapshots/. UMPTUI_RECORD_SNAPSHOTS=1 writes the files instead, and
// that run fails, so a recording is never silently accepted.

import Engine
import Foundation
import XCTest
@testable import UMPTUI

enum Snapshot {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Snapshots")
    static var recording: Bool { ProcessInfo.processInfo.environment["UMPTUI_RECORD_SNAPSHOTS"] == "1" }

    static func assert(_ canvas: Canvas, named name: String, file: StaticString = #filePath, line: UInt = #line) {
        let actual = TextDriver.snapshot(canvas)
        let url = directory.appendingPathComponent(name + ".txt")
        if recording {
            try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try? actual.write(to: url, atomically: true, encoding: .utf8)
            XCTFail("recorded snapshot \(name); run again without UMPTUI_RECORD_SNAPSHOTS to check it", file: file, line: line)
            return
        }
        guard let expected = try? String(contentsOf: url, encoding: .utf8) else {
            XCTFail("no snapshot \(url.path); record it with UMPTUI_RECORD_SNAPSHOTS=1", file: file, line: line)
            return
        }
        if expected != actual {
            let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
            let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
            var diff: [String] = []
            for i in 0..<max(a.count, e.count) where (i < a.count ? a[i] : "") != (i < e.count ? e[i] : "") {
                diff.append("line \(i + 1):\n  expected: \(i < e.count ? String(e[i]) : "<none>")\n  actual:   \(i < a.count ? String(a[i]) : "<none>")")
                if diff.count >= 8 { break }
            }
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("\(name).actual.txt")
            try? actual.write(to: out, atomically: true, encoding: .utf8)
            XCTFail("snapshot \(name) differs (actual screen in \(out.path)):\n" + diff.joined(separator: "\n"), file: file, line: line)
        }
    }
}

extension Snapshot {
    /// A screen captured from a real terminal against the Canvas the same state renders: every
    /// row, whole (trailing blanks aside, which a terminal capture drops).
    static func assertScreen(_ captured: String, equals canvas: Canvas, named name: String, file: StaticString = #filePath, line: UInt = #line) {
        func rows(_ s: String) -> [String] {
            var r = s.split(separator: "\n", omittingEmptySubsequences: false).map { String($0.reversed().drop { $0 == " " }.reversed()) }
            while r.last?.isEmpty == true { r.removeLast() }
            return r
        }
        let want = rows(TextDriver.text(canvas)), got = rows(captured)
        var diff: [String] = []
        for i in 0..<max(want.count, got.count) where (i < want.count ? want[i] : "") != (i < got.count ? got[i] : "") {
            diff.append("row \(i + 1):\n  canvas:   \(i < want.count ? want[i] : "<none>")\n  terminal: \(i < got.count ? got[i] : "<none>")")
            if diff.count >= 8 { break }
        }
        if !diff.isEmpty { XCTFail("\(name): the terminal does not show the canvas:\n" + diff.joined(separator: "\n"), file: file, line: line) }
    }
}

/// A TUI state made from a scenario text, as a test scripts it.
func makeApp(_ source: String, steps: Int = 0, width: Int = 120, height: Int = 40, ascii: Bool = false) throws -> AppState {
    let script = try parseScript(source, fileName: "test.ump")
    var app = AppState(session: Session(script: script), glyphs: ascii ? .ascii : .unicode)
    app.session.go(to: steps)
    app.width = width
    app.height = height
    app.prepare()
    return app
}

extension AppState {
    /// Presses keys (as the loop would) and returns the screen after them.
    mutating func press(_ keys: Key...) -> Canvas {
        for k in keys { _ = handle(k) }
        prepare()
        return Screen.render(self)
    }

    mutating func type(_ text: String) {
        for c in text { _ = handle(.char(c)) }
    }

    func screen() -> Canvas { Screen.render(self) }
}
