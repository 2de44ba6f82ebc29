// Conventions of htop, less and tig: q closes an overlay before it quits, F10 quits, quitting
// with unsaved prompt steps asks once; ASCII spellings that read; percentages that never round
// to 100% while a miss happened.

import Engine
import Foundation
import XCTest
@testable import UMPTUI

final class ConventionTests: XCTestCase {
    func testQClosesEveryOverlayBeforeItQuits() throws {
        var app = try makeApp("process app\napp mmap buf 64K\napp write buf", steps: 3)
        XCTAssertTrue(app.select(.page(BufferRef(process: "app", buffer: "buf"), index: 0)))
        for open in [Key.char("?"), .enter] {
            _ = app.press(open)
            XCTAssertNotNil(app.overlay)
            XCTAssertFalse(app.handle(.char("q")).quit, "q quit with \(String(describing: app.overlay)) open")
            XCTAssertNil(app.overlay)
        }
        // A quiz question: q puts it away, as Esc does; the step does not run.
        _ = app.press(.char("b"), .char("Q"), .char(" "))
        guard case .quiz? = app.overlay else { return XCTFail("no question") }
        XCTAssertFalse(app.handle(.char("q")).quit)
        XCTAssertNil(app.overlay)
        XCTAssertEqual(app.session.current, 2)
        XCTAssertTrue(app.handle(.char("q")).quit, "q quits from the main screen")
        XCTAssertTrue(app.handle(.f(10)).quit, "F10 quits, as in htop")
    }

    func testQuittingWithUnsavedPromptStepsAsksOnce() throws {
        var app = try makeApp("process app\napp mmap buf 64K", steps: 2)
        _ = app.press(.char(":"))
        app.type("app write buf")
        _ = app.press(.enter)
        XCTAssertFalse(app.handle(.char("q")).quit)
        XCTAssertEqual(app.message, "q again quits: 1 typed step not saved (:w FILE saves)")
        // Another key takes the question back; then q asks again, and q twice quits.
        _ = app.press(.char("j"))
        XCTAssertFalse(app.handle(.char("q")).quit)
        XCTAssertTrue(app.handle(.char("q")).quit)
        // Saved with :w, q quits at once.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("umptui-conv-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        app.output = FileOutput()
        _ = app.press(.char(":"))
        app.type("w \(dir.appendingPathComponent("s.ump").path)")
        _ = app.press(.enter)
        XCTAssertTrue(app.message?.hasPrefix("wrote ") == true, app.message ?? "")
        XCTAssertTrue(app.handle(.char("q")).quit)
    }

    func testASCIISpellingsRead() {
        var c = Canvas(width: 60, height: 1)
        c.asciiOnly = true
        let end = c.text(0, 0, "do_wp_page → wp_page_copy ≥ 2 · child†", .normal)
        XCTAssertEqual(TextDriver.text(c).trimmingCharacters(in: .whitespacesAndNewlines), "do_wp_page -> wp_page_copy >= 2 . child (exited)")
        XCTAssertEqual(end, 48)
    }

    func testPercentagesKeepTheirExtremesForTheExactCases() {
        XCTAssertEqual(percentText(4798.0 * 100 / 4800), "99.9")
        XCTAssertEqual(percentText(100), "100.0")
        XCTAssertEqual(percentText(0.01), "0.1")
        XCTAssertEqual(percentText(0), "0.0")
        XCTAssertEqual(percentText(50.04), "50.0")
        XCTAssertEqual(Figure.format(.percent(99.97), .percent), "99.9%")
    }
}
