// Screens of scripted states at fixed sizes, compared with Snapshots/*.txt (text, then the marks
// that colour shows: selected, related, changed). Re-record with UMPTUI_RECORD_SNAPSHOTS=1.

import Engine
import XCTest
@testable import UMPTUI

enum Scenarios {
    static let fork = """
        machine ram=64M seed=1
        process app
        app malloc buf 64K
        app write buf
        app fork child
        note "the child writes {wp_page_copy} pages: each a COW copy"
        child write buf 0 8K
        """

    static let device = """
        machine ram=64M memlock=16M
        process app
        device isp iommu=arm-v7s iotlb=8
        app malloc frame 256K
        app write frame
        isp map app.frame write
        isp dma app.frame write pattern=seq size=64
        """
}

final class SnapshotTests: XCTestCase {
    func testTourAtStartAt80x24() throws {
        let app = try makeApp(Tour.source, width: 80, height: 24)
        Snapshot.assert(app.screen(), named: "tour-start-80x24")
    }

    func testTourAfterFirstWritesAt120x40() throws {
        let app = try makeApp(Tour.source, steps: 4)
        Snapshot.assert(app.screen(), named: "tour-step4-120x40")
    }

    func testTourEndAt300x100() throws {
        let app = try makeApp(Tour.source, steps: 1000, width: 300, height: 100)
        Snapshot.assert(app.screen(), named: "tour-end-300x100")
    }

    func testASCIIGlyphsAt80x24() throws {
        let app = try makeApp(Tour.source, steps: 5, width: 80, height: 24, ascii: true)
        Snapshot.assert(app.screen(), named: "tour-step5-ascii-80x24")
        // Under LANG=C nothing may reach the terminal but ASCII, narration included.
        let text = Screen.render(app).cells.map { String($0.char) }.joined()
        XCTAssertEqual(text.unicodeScalars.filter { !$0.isASCII }.map(String.init), [])
    }

    /// A page of the child still shared with the parent: its frame and the parent's page light up.
    func testCrossHighlightFromAChildPage() throws {
        var app = try makeApp(Scenarios.fork, steps: 100)
        let child = app.session.state.processes[1].meta
        let buf = try XCTUnwrap(child.buffer(named: "buf"))
        app.process.cursor = (1, (buf.start >> 12) + 3)
        app.prepare()
        Snapshot.assert(app.screen(), named: "fork-child-page-selected-120x40")
    }

    /// An IOPTE selected: its frame and the page of app behind it light up.
    func testDevicePaneWithAnIOPTESelectedAt200x60() throws {
        var app = try makeApp(Scenarios.device, steps: 100, width: 200, height: 60)
        _ = app.press(.tab, .tab, .down, .down)
        Snapshot.assert(app.screen(), named: "device-iopte-selected-200x60")
    }

    func testPhysicalPaneZoomedIn() throws {
        var app = try makeApp(Scenarios.fork, steps: 100, width: 100, height: 30)
        let screen = app.press(.tab, .char("z"), .char("z"), .right)
        Snapshot.assert(screen, named: "fork-physical-zoomed-100x30")
    }

    func testHelpAt100x30() throws {
        var app = try makeApp(Scenarios.fork, steps: 2, width: 100, height: 30)
        Snapshot.assert(app.press(.char("?")), named: "help-100x30")
    }

    func testInspectorOnASharedPage() throws {
        var app = try makeApp(Scenarios.fork, steps: 100)
        let buf = try XCTUnwrap(app.session.state.processes[1].meta.buffer(named: "buf"))
        app.process.cursor = (1, (buf.start >> 12) + 3)
        Snapshot.assert(app.press(.enter), named: "fork-inspector-120x40")
    }

    func testPromptErrorShowsACaret() throws {
        var app = try makeApp(Scenarios.fork, steps: 2, width: 100, height: 30)
        _ = app.press(.char(":"))
        app.type("app wrte buf")
        Snapshot.assert(app.press(.enter), named: "prompt-error-100x30")
    }

    func testTooSmall() throws {
        let app = try makeApp(Scenarios.fork, steps: 2, width: 60, height: 20)
        Snapshot.assert(app.screen(), named: "too-small-60x20")
    }
}
