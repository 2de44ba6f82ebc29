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

final class FindTests: XCTestCase {
    /// The rows of the screen where the cursor is drawn (cells marked selected).
    private func selectedRows(_ c: Canvas) -> [Int] {
        (0..<c.height).filter { y in (0..<c.width).contains { c[$0, y].mark == .selected } }
    }

    /// Every find target is on screen after the find, in the pane that shows it, at 80x24, with the
    /// device's section far below another device's thousands of IOPTEs.
    func testEveryFindTargetIsVisibleAfterTheFind() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../demos/iotlb-reach.ump").standardized
        var app = try makeApp(try String(contentsOf: url, encoding: .utf8), width: 80, height: 24)
        app.session.go(to: app.session.total)
        for target in ["nic2", "iova 0xfc000000", "iova 0xffff0000", "nic", "app", "app.w64m", "pfn 0x600", "pfn 1536", "0xfc000000"] {
            _ = app.press(.char("/"))
            app.type(target)
            let screen = app.press(.enter)
            XCTAssertNil(app.editor, "\(target): \(app.editor?.problem?.message ?? "")")
            let rows = selectedRows(screen)
            XCTAssertFalse(rows.isEmpty, "\(target): the match is not on screen:\n\(TextDriver.text(screen))")
            let pane = app.layout.rect(app.focus)
            XCTAssertTrue(rows.allSatisfy { $0 >= pane.y && $0 < pane.maxY }, "\(target): the cursor is outside \(app.focus)")
        }
        XCTAssertEqual(app.focus, .device, "an address no process maps is found as an IOVA")
    }

    func testFindNamesDevicesAndProcessesAndSuggests() throws {
        var app = try makeApp("process app\ndevice nic2 iommu=vtd\napp mmap buf 64K", steps: 3)
        _ = app.press(.char("/"))
        app.type("nic2")
        _ = app.press(.enter)
        XCTAssertEqual(app.focus, .device)
        XCTAssertEqual(app.message, "nic2 has no IOPTEs yet")
        _ = app.press(.char("/"))
        app.type("nic")
        _ = app.press(.enter)
        XCTAssertEqual(app.editor?.problem?.message, "no process, device or buffer 'nic'")
        XCTAssertTrue(app.editor?.problem?.hint?.hasPrefix("did you mean 'nic2'?") == true, app.editor?.problem?.hint ?? "")
    }

    /// `/` then `.` (or `..`, `app.`, `.buf`, `a.b.c`) trapped on an index; each is a name that is not there.
    func testFindOfDotsIsANameNotATrap() throws {
        var app = try makeApp("process app\napp mmap buf 64K", steps: 2)
        for text in [".", "..", "app.", ".buf", "app.buf.x", "a.b.c"] {
            _ = app.press(.char("/"))
            app.type(text)
            _ = app.press(.enter)
            XCTAssertEqual(app.editor?.problem?.message, "no process, device or buffer '\(text)'", text)
            _ = app.press(.escape)
        }
        _ = app.press(.char("/"))
        app.type("app.buf")
        _ = app.press(.enter)
        XCTAssertNil(app.editor, "app.buf is found")
    }
}
