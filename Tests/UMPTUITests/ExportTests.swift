// `export --cast`: asciicast v2 line by line, times that never go back, one marker per step, and
// a last frame that, played through a terminal emulator, is the screen `--print-screen` prints.

import Engine
import Foundation
import XCTest
@testable import UMPTUI

/// A small VT100 emulator for the escapes AnsiDriver emits (CUP, ED 2, SGR, DECTCEM): characters only.
struct MiniVT {
    let width: Int
    let height: Int
    private(set) var grid: [[Character]]
    private var x = 0, y = 0
    /// Escapes it did not know (a test fails on any).
    private(set) var unknown: [String] = []

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        grid = Array(repeating: Array(repeating: " ", count: width), count: height)
    }

    mutating func feed(_ s: String) {
        var it = Array(s)[...]
        while let c = it.first {
            it = it.dropFirst()
            if c == "\u{1b}" {
                guard it.first == "[" else { unknown.append("ESC \(it.first.map(String.init) ?? "")"); continue }
                it = it.dropFirst()
                var params = ""
                while let p = it.first, !(p.isLetter) { params.append(p); it = it.dropFirst() }
                guard let final = it.first else { unknown.append("cut CSI"); break }
                it = it.dropFirst()
                switch final {
                case "H":
                    let n = params.split(separator: ";").map { Int($0) ?? 1 }
                    y = max(0, min(height - 1, (n.first ?? 1) - 1))
                    x = max(0, min(width - 1, (n.count > 1 ? n[1] : 1) - 1))
                case "J" where params == "2":
                    grid = Array(repeating: Array(repeating: " ", count: width), count: height)
                case "m": break
                case "l" where params == "?25", "h" where params == "?25": break
                default: unknown.append("CSI \(params)\(final)")
                }
            } else if c == "\n" || c == "\r" {
                unknown.append("newline")
            } else {
                if x < width && y < height { grid[y][x] = c }
                x = min(width, x + 1)
            }
        }
    }

    var text: String {
        grid.map { row in
            var s = String(row)
            while s.last == " " { s.removeLast() }
            return s
        }.joined(separator: "\n") + "\n"
    }
}

final class ExportTests: XCTestCase {
    static let source = """
        machine ram=64M
        process app
        device gpu iommu=arm-v7s iotlb=8
        app malloc buf 1M
        wait 2s
        select app.buf 5
        app write buf
        inspect
        wait 500ms
        gpu map app.buf
        gpu dma app.buf read pattern=seq size=64
        app fork child
        child write buf 0 8K
        """

    func session() throws -> Session { Session(script: try parseScript(Self.source, fileName: "cast.ump")) }

    func testTheCastIsAsciicastV2AndItsLastFrameIsTheScreen() throws {
        for (w, h, steps) in [(120, 40, nil as Int?), (80, 24, 4), (200, 60, 7)] {
            let frames = Export.frames(session: try session(), glyphs: .unicode, width: w, height: h, steps: steps, stepTime: 1.5)
            let cast = Export.cast(frames, header: .init(width: w, height: h, timestamp: 1_800_000_000, title: "cast.ump"), theme: Theme(.color256))
            let lines = cast.split(separator: "\n").map(String.init)
            let header = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
            XCTAssertEqual(header["version"] as? Int, 2)
            XCTAssertEqual(header["width"] as? Int, w)
            XCTAssertEqual(header["height"] as? Int, h)
            XCTAssertEqual(header["timestamp"] as? Int, 1_800_000_000)
            XCTAssertEqual(header["title"] as? String, "cast.ump")
            XCTAssertEqual((header["env"] as? [String: String])?["TERM"], "xterm-256color")
            var vt = MiniVT(width: w, height: h)
            var last = -1.0, markers: [String] = [], times: [Double] = []
            for line in lines.dropFirst() {
                let event = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [Any], line)
                XCTAssertEqual(event.count, 3)
                let t = try XCTUnwrap(event[0] as? Double ?? (event[0] as? Int).map(Double.init))
                XCTAssertGreaterThanOrEqual(t, last, "times never go back")
                last = t
                switch event[1] as? String {
                case "o"?: vt.feed(try XCTUnwrap(event[2] as? String))
                case "m"?: markers.append(try XCTUnwrap(event[2] as? String)); times.append(t)
                default: XCTFail("unknown event \(line)")
                }
            }
            XCTAssertEqual(vt.unknown, [])
            let n = steps ?? 8
            XCTAssertEqual(markers.count, n + 1, "one marker per step, and step 0")
            XCTAssertEqual(markers[1], "step 1: process app")
            if n >= 4 {
                XCTAssertEqual(markers[4], "step 4: app write buf")
                XCTAssertEqual(times[4] - times[3], 2, accuracy: 1e-9, "the wait line times it")
                XCTAssertEqual(times[3] - times[2], 1.5, accuracy: 1e-9, "--step-time elsewhere")
            }
            let screen = ScreenPlayer.screen(session: try session(), glyphs: .unicode, width: w, height: h, steps: n)
            XCTAssertEqual(vt.text, TextDriver.text(screen), "the last frame at \(w)x\(h) after \(n) steps")
        }
    }

    /// Each event after the first carries only what changed: much less than a repaint.
    func testEventsCarryOnlyTheChanges() throws {
        let frames = Export.frames(session: try session(), glyphs: .unicode, width: 120, height: 40, steps: nil, stepTime: 1)
        let theme = Theme(.color256)
        let full = AnsiDriver.diff(from: nil, to: frames[5].canvas, theme: theme).utf8.count
        let delta = AnsiDriver.diff(from: frames[4].canvas, to: frames[5].canvas, theme: theme).utf8.count
        XCTAssertLessThan(delta, full * 3 / 4)
        XCTAssertEqual(AnsiDriver.diff(from: frames[5].canvas, to: frames[5].canvas, theme: theme), "", "no change, no bytes")
        // Played through from the first frame, every intermediate frame is right too.
        var vt = MiniVT(width: 120, height: 40)
        var previous: Canvas?
        for f in frames {
            vt.feed(AnsiDriver.diff(from: previous, to: f.canvas, theme: theme))
            XCTAssertEqual(vt.text, TextDriver.text(f.canvas), f.label)
            previous = f.canvas
        }
        // The select cue moved the cursor and inspect opened the inspector, as in a replay.
        XCTAssertTrue(frames[5].canvas.lines.joined().contains("PTE"), "the inspector is open after step 5")
    }

    func testTextAndHTML() throws {
        let frames = Export.frames(session: try session(), glyphs: .ascii, width: 80, height: 24, steps: 3, stepTime: 1)
        let text = Export.text(frames)
        XCTAssertEqual(text.components(separatedBy: "=== step ").count - 1, 4)
        XCTAssertTrue(text.hasPrefix("=== step 0: the booted machine ===\n"))
        let html = HTMLDriver.page(title: "cast <1>", screens: frames.map { ($0.label, $0.canvas) }, theme: Theme(.color256))
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertTrue(html.contains("<title>cast &lt;1&gt;</title>"))
        XCTAssertFalse(html.contains("<script"), "no scripts")
        XCTAssertFalse(html.contains("http"), "nothing fetched")
        XCTAssertEqual(html.components(separatedBy: "<pre>").count - 1, 4)
        XCTAssertTrue(html.contains("background:#005f87"), "the header's colour (xterm 24)")
    }
}
