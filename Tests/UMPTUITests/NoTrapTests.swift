// The rule of docs/DECISIONS.md ("No trap is reachable from input"): no `try!`, force unwrap,
// `fatalError` or `precondition` in Sources/, outside the allow-list below, each with its reason.
// The scan reads code only: comments and the text of string literals are blanked out first, but
// what a string interpolates is code and is scanned.

import Foundation
import XCTest

final class NoTrapTests: XCTestCase {
    /// file (under Sources/) and the trap's kind → why it is allowed. Keep it short.
    static let allowed: [String: (kind: String, why: String)] = [
        "UMPTUI/TUI/TUIApp.swift": ("fatalError(", "the end-to-end test's deliberate crash, only with UMPTUI_TEST_CRASH=1: it checks that a crash restores the terminal and keeps the recording"),
        "UMPTUI/CLI/BenchRender.swift": ("preconditionFailure(", "`umptui bench` parses its own built-in script, not input; BenchTests run it"),
        "UMPTUI/CLI/Bench.swift": ("preconditionFailure(", "`umptui bench` parses its own built-in statements, not input"),
        "UMPTUI/CLI/BenchTimeline.swift": ("preconditionFailure(", "`umptui bench` parses its own built-in timeline, not input"),
        "UMPTUI/CLI/BenchScript.swift": ("precondition", "`umptui bench` parses and runs its own built-in malloc script, not input"),
    ]

    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources").standardized

    func testNoTrapIsReachableFromInput() throws {
        var found: [String] = []
        let files = FileManager.default.enumerator(atPath: Self.sources.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
        XCTAssertGreaterThan(files.count, 50, "the scan found Sources/")
        for file in files.sorted() {
            let text = try String(contentsOf: Self.sources.appendingPathComponent(file), encoding: .utf8)
            for (n, line) in Self.codeOnly(text).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                for kind in Self.traps(in: String(line)) {
                    if let allow = Self.allowed[file], kind.hasPrefix(allow.kind) || allow.kind.hasPrefix(kind) { continue }
                    found.append("Sources/\(file):\(n + 1): \(kind): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        XCTAssertEqual(found, [], "traps reachable from input (fix them, or allow one in NoTrapTests.allowed with its reason):\n" + found.joined(separator: "\n"))
    }

    func testTheScanFindsEachKindAndSkipsCommentsAndStrings() {
        let sample = """
            let a = try! f()
            let b = c!.d // a comment with x!
            let s = "not code: y! try! fatalError(" + "\\(z!)"
            /* block: precondition(false) */ fatalError("x")
            precondition(ok)
            if a != b, !c { }
            let m = \"""
              text x! inside
              \""" + w!
            """
        let lines = Self.codeOnly(sample).split(separator: "\n", omittingEmptySubsequences: false).map { Self.traps(in: String($0)) }
        XCTAssertEqual(lines, [["try!"], ["!"], ["!"], ["fatalError("], ["precondition("], [], [], [], ["!"]])
    }

    /// The traps on one line of code.
    static func traps(in line: String) -> [String] {
        var out: [String] = []
        for kind in ["try!", "fatalError(", "preconditionFailure(", "precondition(", "unsafelyUnwrapped"] where line.contains(kind) {
            if kind == "precondition(" && line.contains("preconditionFailure(") && !line.replacingOccurrences(of: "preconditionFailure(", with: "").contains(kind) { continue }
            out.append(kind)
        }
        // A force unwrap: `!` right after an identifier, `)`, `]` or `?`, and not `!=`.
        let chars = Array(line)
        for i in chars.indices where chars[i] == "!" && i > 0 {
            let before = chars[i - 1]
            guard before.isLetter || before.isNumber || before == "_" || before == ")" || before == "]" || before == "?" else { continue }
            if i + 1 < chars.count, chars[i + 1] == "=" { continue }
            if i >= 3, String(chars[(i - 3)..<i]) == "try" { continue }  // try! is counted above
            out.append("!")
            break
        }
        return out
    }

    /// The text with comments and the literal parts of strings replaced by spaces (newlines kept,
    /// so line numbers hold); interpolations `\( ... )` stay, as they are code.
    static func codeOnly(_ text: String) -> String {
        let c = Array(text)
        var out: [Character] = []
        out.reserveCapacity(c.count)
        var i = 0
        func blank(_ ch: Character) { out.append(ch == "\n" ? "\n" : " ") }
        while i < c.count {
            if c[i] == "/", i + 1 < c.count, c[i + 1] == "/" {
                while i < c.count, c[i] != "\n" { blank(c[i]); i += 1 }
            } else if c[i] == "/", i + 1 < c.count, c[i + 1] == "*" {
                var depth = 0
                repeat {
                    if c[i] == "/", i + 1 < c.count, c[i + 1] == "*" { depth += 1; blank(c[i]); blank(c[i + 1]); i += 2; continue }
                    if c[i] == "*", i + 1 < c.count, c[i + 1] == "/" { depth -= 1; blank(c[i]); blank(c[i + 1]); i += 2; continue }
                    blank(c[i]); i += 1
                } while i < c.count && depth > 0
            } else if c[i] == "\"" {
                let triple = i + 2 < c.count && c[i + 1] == "\"" && c[i + 2] == "\""
                let quote = triple ? 3 : 1
                for _ in 0..<quote { out.append("\""); i += 1 }
                // The literal's text, up to its closing quote(s); interpolations copied as code.
                while i < c.count {
                    if c[i] == "\\", i + 1 < c.count {
                        if c[i + 1] == "(" {
                            out.append(" "); out.append("(")
                            i += 2
                            var depth = 1
                            while i < c.count, depth > 0 {
                                if c[i] == "(" { depth += 1 }
                                if c[i] == ")" { depth -= 1 }
                                if depth > 0 { out.append(c[i]) } else { out.append(")") }
                                i += 1
                            }
                        } else {
                            blank(c[i]); blank(c[i + 1]); i += 2
                        }
                        continue
                    }
                    if c[i] == "\"", !triple { out.append("\""); i += 1; break }
                    if triple, c[i] == "\"", i + 2 < c.count, c[i + 1] == "\"", c[i + 2] == "\"" {
                        out.append(contentsOf: "\"\"\""); i += 3; break
                    }
                    if !triple, c[i] == "\n" { break }  // an unterminated literal: stop at the line's end
                    blank(c[i]); i += 1
                }
            } else {
                out.append(c[i]); i += 1
            }
        }
        return String(out)
    }
}
