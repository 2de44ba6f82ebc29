// The screen follows the story: the panes show the device and the process a step is about, every
// find lands on screen, relatives are brought into view, the narration's note fits or says it
// goes on, long steps can be cancelled, and every demo's last step reads at 80x24.

import Engine
import Foundation
import XCTest
@testable import UMPTUI

/// The demos, as files a session reads (traces resolve against demos/).
enum Demos {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("demos")

    static var names: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".ump") }.sorted()
    }

    static func app(_ name: String, steps: Int? = nil, width: Int = 80, height: Int = 24, ascii: Bool = false) throws -> AppState {
        let url = directory.appendingPathComponent(name)
        let script = try parseScript(String(contentsOf: url, encoding: .utf8), fileName: "demos/" + name)
        var app = AppState(session: Session(script: script, files: FileTraceProvider(base: directory)), glyphs: ascii ? .ascii : .unicode)
        app.width = width
        app.height = height
        app.session.go(to: steps ?? app.session.total)
        app.prepare()
        return app
    }
}

extension Canvas {
    /// The text of row `y` between columns `x` and `maxX`.
    func row(_ y: Int, _ r: Rect) -> String { String(cells[(y * width + r.x)..<(y * width + r.maxX)].map(\.char)) }

    /// Cells inside `r` that carry `mark`.
    func count(_ mark: Mark, in r: Rect) -> Int {
        var n = 0
        for y in r.y..<r.maxY { for x in r.x..<r.maxX where cells[y * width + x].mark == mark { n += 1 } }
        return n
    }
}

final class ScreenStoryTests: XCTestCase {
    // MARK: The device and process panes follow the step

    func testTheDevicePaneShowsTheDeviceTheStepIsAbout() throws {
        var app = try Demos.app("iotlb-reach.ump")
        let nic2 = try XCTUnwrap(app.session.state.deviceIndex(named: "nic2"))
        XCTAssertEqual(app.device.cursor.device, nic2, "the last step is nic2's DMA")
        let screen = app.screen()
        let title = screen.row(app.layout.device.y, app.layout.device)
        XCTAssertTrue(title.contains("DEVICE nic [nic2]"), title)
        XCTAssertTrue(screen.row(app.layout.device.y + 1, app.layout.device).hasPrefix("nic2 "), "nic2's own header is the first row")
        // Back to a step about nic: the pane goes back to nic, where its cursor was left.
        let nic = try XCTUnwrap(app.session.state.deviceIndex(named: "nic"))
        app.session.go(to: 7)
        app.prepare()
        XCTAssertEqual(app.device.cursor.device, nic)
        // Left and Right go through the tabs; a click on a tab shows that device.
        app.setFocus(.device)
        _ = app.press(.right)
        XCTAssertEqual(app.device.cursor.device, nic2)
        _ = app.press(.left)
        XCTAssertEqual(app.device.cursor.device, nic)
        let tabX = app.layout.device.x + 1 + "DEVICE ".count + "[nic] ".count
        _ = app.handle(.mouse(MouseEvent(kind: .click, x: tabX, y: app.layout.device.y)))
        XCTAssertEqual(app.device.cursor.device, nic2, "a click on nic2's tab")
    }

    func testADeviceAddedAtThePromptIsShown() throws {
        var app = try Demos.app("iotlb-reach.ump")
        _ = app.press(.char(":"))
        app.type("device gpu iommu=arm-lpae")
        let screen = app.press(.enter)
        XCTAssertEqual(app.session.state.devices[app.device.cursor.device].name, "gpu")
        XCTAssertTrue(screen.row(app.layout.device.y + 1, app.layout.device).hasPrefix("gpu "))
    }

    func testThePanesLeaveACursorTheUserPutSinceTheLastStep() throws {
        var app = try Demos.app("iotlb-reach.ump", steps: 13)
        let nic = try XCTUnwrap(app.session.state.deviceIndex(named: "nic"))
        // The user looks at nic while the next step is about nic2: the pane stays on nic.
        app.setFocus(.device)
        if app.device.cursor.device != nic { _ = app.press(.left) }
        XCTAssertEqual(app.device.cursor.device, nic)
        _ = app.press(.char(" "), .char(" "))
        XCTAssertEqual(app.session.current, 15)
        XCTAssertEqual(app.device.cursor.device, try XCTUnwrap(app.session.state.deviceIndex(named: "nic2")),
                       "one step later (no move since), the pane follows again")
        _ = app.press(.char("b"))
        app.place(.device)
        app.device.show(device: nic)
        _ = app.press(.char(" "))
        XCTAssertEqual(app.device.cursor.device, nic, "moved there since the last step: left where it was")
    }

    func testTheProcessPaneFollowsTheStepsProcess() throws {
        var app = try Demos.app("fork-cow.ump", steps: 0)
        var seen: Set<String> = []
        while app.session.current < app.session.total {
            _ = app.press(.char(" "))
            guard let rec = app.session.lastRecord, let c = app.process.cursor else { continue }
            let name = app.session.state.processes[c.proc].meta.name
            // A line that names a process leaves the cursor in that process.
            if let first = rec.command.split(separator: " ").first.map(String.init), app.session.state.processIndex(named: first) != nil,
               app.session.state.processes[app.session.state.processIndex(named: first)!].meta.alive {
                XCTAssertEqual(name, first, "step \(rec.step): \(rec.command)")
            }
            seen.insert(name)
        }
        XCTAssertGreaterThan(seen.count, 1, "the cursor went to the child and back")
    }

    // MARK: Find

    func testEveryFindTargetIsOnScreenAfterTheFind() throws {
        var app = try Demos.app("iotlb-reach.ump", width: 80, height: 24)
        let state = app.session.state
        var targets = ["iova 0xfc000000", "iova 0xfe000000", "nic", "nic2", "app", "app.w16m", "w64m", "pfn 0x1000", "pfn 4096"]
        if let last = state.devices[0].sortedIOPTEs.last { targets.append("iova " + hex(last.iova)) }
        if let b = state.processes[0].meta.buffer(named: "w256") { targets.append(hex(b.start + 0x3000)) }
        for t in targets {
            _ = app.press(.char("/"))
            app.type(t)
            let screen = app.press(.enter)
            XCTAssertNil(app.editor, "\(t): \(app.editor?.problem?.message ?? "")")
            let pane = app.selectionPane
            let body = app.layout.body(pane)
            let rows = (body.y..<body.maxY).filter { screen.count(.selected, in: Rect(x: body.x, y: $0, width: body.width, height: 1)) > 0 }
            XCTAssertEqual(rows.count, 1, "\(t): the match is drawn, selected, in \(pane.title)")
        }
    }

    func testNAndShiftNGoThroughTheMatchesUntilEscEndsTheFind() throws {
        // After fork, parent and child both map buf at the same address: two matches.
        var app = try makeApp("process app\napp mmap buf 64K\napp write buf\napp fork child", steps: 4, width: 80, height: 24)
        _ = app.press(.char("/"))
        app.type("buf")
        let first = app.press(.enter)
        XCTAssertEqual(app.process.cursor?.proc, 0)
        XCTAssertTrue(TextDriver.text(first).contains("n next match"), "the footer says n and N work now")
        _ = app.press(.char("n"))
        XCTAssertEqual(app.process.cursor?.proc, 1)
        XCTAssertEqual(app.message, "match 2 of 2 for 'buf'")
        _ = app.press(.char("n"))
        XCTAssertEqual(app.process.cursor?.proc, 0, "wraps around")
        _ = app.press(.char("N"))
        XCTAssertEqual(app.process.cursor?.proc, 1)
        XCTAssertEqual(app.session.current, 4, "n and N moved through matches, not steps")
        _ = app.press(.escape)
        XCTAssertNil(app.activeFind)
        _ = app.press(.char("n"))
        XCTAssertEqual(app.session.current, 4, "at the last step: n steps again, and there is none")
        XCTAssertEqual(app.message, "at the last step (4)")
        XCTAssertTrue(KeyTable.helpLines(glyphs: .unicode).contains { $0.key == "N" && $0.text.contains("previous match") })
    }

    // MARK: Cross-highlight in view

    func testASelectionsRelativesAreBroughtIntoViewInTheOtherPanes() throws {
        var app = try Demos.app("iotlb-reach.ump", width: 80, height: 24)
        // A page of w256 (the first buffer): its frame and its IOPTE are far from where the panes were.
        XCTAssertTrue(app.select(.page(BufferRef(process: "app", buffer: "w256"), index: 3)))
        let screen = app.press()
        let nic = try XCTUnwrap(app.session.state.deviceIndex(named: "nic"))
        XCTAssertEqual(app.device.cursor.device, nic, "only nic maps w256")
        XCTAssertGreaterThan(screen.count(.related, in: app.layout.body(.device)), 0, "its IOPTE shows in DEVICE")
        XCTAssertGreaterThan(screen.count(.related, in: app.layout.body(.physical)), 0, "its frame shows in PHYSICAL")
    }

    // MARK: The narration

    func testTheNoteFitsOrSaysItGoesOnAt80x24() throws {
        var app = try Demos.app("tour.ump", steps: 0)
        for _ in 0..<app.session.total {
            let screen = app.press(.char(" "))
            guard let rec = app.session.lastRecord, let note = rec.notes.first else { continue }
            let r = app.layout.narration
            let shown = (r.y + 1..<r.maxY).map { screen.row($0, r) }.joined(separator: " ")
            let words = note.split(separator: " ").joined(separator: " ")
            let flat = shown.split(separator: " ").joined(separator: " ")
            XCTAssertTrue(flat.contains(words) || flat.hasSuffix("…more s"), "step \(rec.step): the note is whole or marked: \(flat)")
            // s shows the step whole, note included.
            _ = app.press(.char("s"))
            let lines = Inspector.wrappedLines(app, width: 200).lines.map(\.0).joined(separator: " ")
            XCTAssertTrue(lines.contains(note), "step \(rec.step)")
            _ = app.press(.escape)
        }
    }

    // MARK: Long steps

    func testEscDuringALongStepCancelsItAndLeavesTheStateAsItWas() throws {
        var app = try makeApp("machine ram=256M thp=never\nprocess app\napp mmap buf 32M\napp write buf\napp write buf 0 4K", steps: 2)
        let before = app.session.state
        let heard = ProgressCounter()
        // The loop's control: here, one that cancels at its first report, as Esc does.
        app.makeStepControl = { _ in StepControl { _ in heard.add(); return false } }
        _ = app.press(.char(" "))
        XCTAssertEqual(app.session.current, 2)
        XCTAssertEqual(app.message, "step 3 cancelled (Esc): nothing changed")
        XCTAssertTrue(app.session.state == before)
        XCTAssertEqual(heard.count, 1)
        // End stops at the cancelled step too; without a control, the step runs.
        _ = app.press(.end)
        XCTAssertEqual(app.session.current, 2)
        app.makeStepControl = nil
        _ = app.press(.end)
        XCTAssertEqual(app.session.current, 4)
    }

    func testEscWhileQuizModeWorksOutTheAnswerCancelsTheStepToo() throws {
        var app = try makeApp("machine ram=256M thp=never\nprocess app\napp mmap buf 32M\napp write buf", steps: 2)
        _ = app.press(.char("Q"))
        app.makeStepControl = { _ in StepControl { _ in false } }
        _ = app.press(.char(" "))
        XCTAssertNil(app.overlay, "no question: working out its answer was cancelled")
        XCTAssertEqual(app.session.current, 2, "and the step did not run")
        XCTAssertEqual(app.message, "step 3 cancelled (Esc): nothing changed")
        app.makeStepControl = nil
        _ = app.press(.char(" "))
        guard case .quiz? = app.overlay else { return XCTFail("the question is asked once the answer can be found") }
    }

    func testTheProgressBoxSaysHowFarAndThatEscCancels() {
        var c = Canvas(width: 80, height: 24)
        Overlays.drawProgress(.unicode, title: "STEP 7 of 8: nic dma app.buf", StepProgress(step: 7, done: 250_000, total: 1_000_000, unit: .accesses), seconds: 1.25, &c)
        let text = TextDriver.text(c)
        XCTAssertTrue(text.contains("STEP 7 of 8: nic dma app.buf"))
        XCTAssertTrue(text.contains(" 25.0%"), text)
        XCTAssertTrue(text.contains("250000 of 1000000 DMA accesses · 1.3 s"), text)
        XCTAssertTrue(text.contains("Esc cancels"))
    }

    // MARK: Legible at 80x24

    func testEveryDemosLastStepAt80x24() throws {
        for name in Demos.names {
            let app = try Demos.app(name)
            Snapshot.assert(app.screen(), named: "demo-" + name.replacingOccurrences(of: ".ump", with: "") + "-end-80x24")
        }
    }

    /// The screens of the fixes that a demo's last step does not show: a find in force (its
    /// footer), a long step's progress over the last frame, the step shown whole.
    func testSnapshotsOfFindProgressAndTheStepAt80x24() throws {
        var app = try Demos.app("iotlb-reach.ump")
        _ = app.press(.char("/"))
        app.type("iova 0xfc000000")
        Snapshot.assert(app.press(.enter), named: "iotlb-reach-find-iova-80x24")
        var c = app.screen()
        Overlays.drawProgress(.unicode, title: "STEP 15 of 15: nic2 dma app.w64m read pattern=random",
                              StepProgress(step: 15, done: 12_000, total: 20_000, unit: .accesses), seconds: 0.4, &c)
        Snapshot.assert(c, named: "iotlb-reach-progress-80x24")
        Snapshot.assert(app.press(.escape, .char("s")), named: "iotlb-reach-step-whole-80x24")
    }

    func testTheScrollBarHasAColumnOfItsOwn() throws {
        for ascii in [false, true] {
            let app = try Demos.app("iotlb-reach.ump", ascii: ascii)
            let screen = app.screen()
            let g: Glyphs = ascii ? .ascii : .unicode
            for pane in [Pane.process, .device] {
                let body = app.layout.body(pane)
                let column = (body.y..<body.maxY).map { screen.cells[$0 * screen.width + body.maxX - 1].char }
                XCTAssertTrue(column.contains(g.thumb), "\(pane.title) scrolls at 80x24")
                XCTAssertTrue(column.allSatisfy { $0 == g.thumb || $0 == " " }, "\(pane.title): only the bar in its column: \(String(column))")
            }
            XCTAssertNotEqual(g.thumb, g.privatePage)
        }
    }

    func testHeadersAbbreviateByWholeWordsAt80x24() throws {
        let app = try Demos.app("iotlb-reach.ump")
        let screen = app.screen()
        let body = app.layout.body(.device)
        let header = (body.y..<body.y + DeviceLayout.headerRows).map { screen.row($0, body) }
        XCTAssertFalse(header.joined().contains("…"), "no header line is cut: \(header)")
        XCTAssertTrue(header[1].contains("hit 99.8%"), header[1])
        let head = header[5].trimmingCharacters(in: .whitespaces)
        XCTAssertTrue(head.hasPrefix("IOVA") && (head.hasSuffix(" size") || head.hasSuffix(" sz")), "column heads are words or their short forms: \(head)")
        // The process pane's title gives its scale, as PHYSICAL gives frames per cell.
        let title = screen.row(app.layout.process.y, app.layout.process)
        XCTAssertTrue(title.contains("/cell"), title)
        // A pfn is hex with 0x wherever it is written.
        let pin = try Demos.app("gup-after-fork.ump")
        let hazards = pin.session.records.flatMap(\.hazards).map(\.text)
        XCTAssertFalse(hazards.isEmpty)
        for h in hazards where h.contains("frame ") {
            XCTAssertNotNil(h.range(of: #"frame 0x[0-9a-f]+"#, options: .regularExpression), h)
        }
    }
}

final class ProgressCounter: @unchecked Sendable {
    private(set) var count = 0
    func add() { count += 1 }
}
