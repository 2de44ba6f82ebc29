// The TUI's behaviour without a terminal: stepping and undo, the prompt, cross-highlighting,
// the key table behind help and footer, and the built-in tour.

import Engine
import Foundation
import XCTest
@testable import UMPTUI

final class TUITests: XCTestCase {
    func testTourFileMatchesTheEmbeddedTour() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../demos/tour.ump").standardized
        let file = try String(contentsOf: url, encoding: .utf8)
        XCTAssertEqual(file, Tour.source + "\n", "demos/tour.ump and Tour.source must stay identical")
    }

    func testTourRunsEveryStepWithoutAFailure() throws {
        var app = try makeApp(Tour.source)
        app.session.go(to: app.session.total)
        XCTAssertEqual(app.session.current, app.session.total)
        for r in app.session.records { XCTAssertTrue(r.outcome.ok, "step \(r.step) \(r.command): \(r.outcome.word) \(r.text)") }
        XCTAssertTrue(app.session.expectFailures.isEmpty)
    }

    func testStepBackRestoresTheWholeState() throws {
        var app = try makeApp(Scenarios.fork, steps: 3)
        let before = app.session.state
        _ = app.press(.char(" "))
        XCTAssertEqual(app.session.current, 4)
        XCTAssertNotEqual(app.session.state, before)
        _ = app.press(.char("b"))
        XCTAssertEqual(app.session.current, 3)
        XCTAssertEqual(app.session.state, before)
        _ = app.press(.end)
        XCTAssertEqual(app.session.current, app.session.total)
        _ = app.press(.home)
        XCTAssertEqual(app.session.current, 0)
    }

    func testGoToStep() throws {
        var app = try makeApp(Scenarios.fork)
        _ = app.press(.char("g"))
        app.type("3")
        _ = app.press(.enter)
        XCTAssertEqual(app.session.current, 3)
        XCTAssertNil(app.editor)
    }

    func testPromptRunsALineAsTheNextStep() throws {
        var app = try makeApp(Scenarios.fork, steps: 2)
        let total = app.session.total
        _ = app.press(.char(":"))
        app.type("app write buf 0 4K")
        _ = app.press(.enter)
        XCTAssertNil(app.editor)
        XCTAssertEqual(app.session.current, 3)
        XCTAssertEqual(app.session.total, total + 1)
        XCTAssertEqual(app.session.lastRecord?.command, "app write buf 0 4K")
        XCTAssertEqual(app.history, ["app write buf 0 4K"])
        // b undoes it like any step.
        _ = app.press(.char("b"))
        XCTAssertEqual(app.session.current, 2)
    }

    func testBadPromptLineLeavesTheStateUntouched() throws {
        var app = try makeApp(Scenarios.fork, steps: 2)
        let state = app.session.state
        let generation = app.session.generation
        for line in ["app wrte buf", "nobody write buf", "app write nothing", "machine ram=banana"] {
            _ = app.press(.char(":"))
            app.type(line)
            _ = app.press(.enter)
            let problem = try XCTUnwrap(app.editor?.problem, line)
            XCTAssertNotNil(problem.column, line)
            XCTAssertEqual(app.editor?.text, line)
            _ = app.press(.escape)
            XCTAssertNil(app.editor)
        }
        XCTAssertEqual(app.session.state, state)
        XCTAssertEqual(app.session.generation, generation)
    }

    func testPromptErrorCaretSitsUnderTheBadWord() throws {
        var app = try makeApp(Scenarios.fork, steps: 2, width: 100, height: 30)
        _ = app.press(.char(":"))
        app.type("app wrte buf")
        let screen = app.press(.enter)
        let lines = screen.lines
        let input = try XCTUnwrap(lines.firstIndex { $0.hasPrefix(":app wrte buf") })
        let caret = lines[input + 1].firstIndex(of: "^").map { lines[input + 1].distance(from: lines[input + 1].startIndex, to: $0) }
        XCTAssertEqual(caret, 1 + 4, "the caret is under 'wrte'")
        XCTAssertTrue(lines.contains { $0.contains("error: unknown verb 'wrte'") })
    }

    func testTabCompletesVerbsAndNames() throws {
        var app = try makeApp(Scenarios.fork, steps: 100)
        _ = app.press(.char(":"))
        app.type("ch")
        _ = app.press(.tab)
        XCTAssertEqual(app.editor?.text, "child ")
        app.type("wr")
        _ = app.press(.tab)
        XCTAssertEqual(app.editor?.text, "child write ")
        _ = app.press(.tab)
        XCTAssertEqual(app.editor?.text, "child write buf ")
        _ = app.press(.escape)
        _ = app.press(.char(":"))
        app.type("app m")
        _ = app.press(.tab)
        XCTAssertEqual(app.editor?.choices.sorted(), ["madvise", "malloc", "memfd", "mlock", "mmap", "mprotect", "mremap", "munlock", "munmap"])
    }

    func testHistoryWithUpAndDown() throws {
        var app = try makeApp(Scenarios.fork, steps: 2)
        for line in ["app read buf 0 4K", "app read buf 4K 4K"] {
            _ = app.press(.char(":"))
            app.type(line)
            _ = app.press(.enter)
        }
        _ = app.press(.char(":"))
        app.type("draft")
        _ = app.press(.up)
        XCTAssertEqual(app.editor?.text, "app read buf 4K 4K")
        _ = app.press(.up)
        XCTAssertEqual(app.editor?.text, "app read buf 0 4K")
        _ = app.press(.down, .down)
        XCTAssertEqual(app.editor?.text, "draft")
    }

    /// The picture no other tool draws: a child's page, still COW-shared, lights up its frame and
    /// the parent's page; a copied page lights up only its own new frame.
    func testCrossHighlightFollowsOnePageAcrossProcessesAndFrames() throws {
        var app = try makeApp(Scenarios.fork, steps: 100)
        let st = app.session.state
        let buf = try XCTUnwrap(st.processes[1].meta.buffer(named: "buf"))
        let shared = (buf.start >> 12) + 3
        app.process.cursor = (1, shared)
        let h = app.cache.highlight(app.session, app.selection())
        let pfn = st.processes[1].pt.entry(vpn: shared).number
        XCTAssertEqual(st.processes[0].pt.entry(vpn: shared).number, pfn)
        XCTAssertTrue(h.frames.contains(pfn))
        XCTAssertTrue(h.pages[0]?.contains(shared) == true, "the parent's page maps the same frame")
        XCTAssertTrue(h.pages[1]?.contains(shared) == true)
        let copied = buf.start >> 12
        app.process.cursor = (1, copied)
        let h2 = app.cache.highlight(app.session, app.selection())
        XCTAssertNil(h2.pages[0], "a COW copy is the child's alone")
        // Selecting the frame from the physical pane lights up both pages too.
        app.setFocus(.physical)
        app.physical.zoom = 1
        app.physical.cursor = pfn
        let h3 = app.cache.highlight(app.session, app.selection())
        XCTAssertTrue(h3.pages[0]?.contains(shared) == true && h3.pages[1]?.contains(shared) == true)
    }

    func testIOPTESelectionLightsUpItsFrameAndPage() throws {
        var app = try makeApp(Scenarios.device, steps: 100, width: 200, height: 60)
        app.setFocus(.device)
        app.device.cursor = (0, 0)
        guard case let .iopte(_, iova)? = app.selection() else { return XCTFail("no IOPTE selected") }
        let e = try XCTUnwrap(app.session.state.devices[0].ioptes[iova])
        let h = app.cache.highlight(app.session, app.selection())
        XCTAssertTrue(h.frames.contains(Int(e.pa >> 12)))
        XCTAssertFalse(h.pages[0]?.isEmpty ?? true, "app's page behind the IOVA lights up")
        XCTAssertTrue(h.ioptes[0]?.contains(iova) == true)
    }

    func testLastStepChangesAreMarked() throws {
        let app = try makeApp(Scenarios.fork, steps: 100)
        app.cache.refresh(app.session)
        let changes = app.cache.changes
        let buf = try XCTUnwrap(app.session.state.processes[1].meta.buffer(named: "buf"))
        XCTAssertTrue(changes.pages[1]?.contains(buf.start >> 12) == true)
        let newFrame = app.session.state.processes[1].pt.entry(vpn: buf.start >> 12).number
        XCTAssertTrue(changes.frames.contains(newFrame))
        let marks = TextDriver.marks(app.screen())
        XCTAssertTrue(marks.contains("c"))
    }

    func testEveryBindingIsInTheHelpAndNoKeyIsBoundTwice() {
        var seen = Set<Key>()
        for b in KeyTable.bindings {
            for k in b.keys { XCTAssertTrue(seen.insert(k).inserted, "\(k) bound twice") }
        }
        let help = Overlays.helpLines(.unicode).map(\.1)
        for b in KeyTable.bindings { XCTAssertTrue(help.contains(b.help), b.help) }
        for width in [80, 120, 200] {
            let used = KeyTable.footer(width: width, glyphs: .unicode).reduce(1) { $0 + $1.key.count + $1.word.count + 3 }
            XCTAssertLessThanOrEqual(used, width)
        }
    }

    func testFindAddressBufferAndFrame() throws {
        var app = try makeApp(Scenarios.fork, steps: 100)
        _ = app.press(.char("/"))
        app.type("child.buf")
        _ = app.press(.enter)
        XCTAssertEqual(app.focus, .process)
        XCTAssertEqual(app.process.cursor?.proc, 1)
        _ = app.press(.char("/"))
        app.type("pfn 1000")
        _ = app.press(.enter)
        XCTAssertEqual(app.focus, .physical)
        XCTAssertEqual(app.physical.cursor, 1000)
        _ = app.press(.char("/"))
        app.type("nothing")
        _ = app.press(.enter)
        XCTAssertNotNil(app.editor?.problem)
    }

    func testMouseClickSelectsAFrame() throws {
        var app = try makeApp(Scenarios.fork, steps: 100)
        // The third cell of the grid's first row, found from the physical panel's own layout.
        let ctx = app.context(.physical)
        let l = app.physical.layout(ctx)
        let x = ctx.body.x + l.gutter + 2, y = ctx.body.y + PhysicalLayout.infoRows
        _ = app.press(.mouse(MouseEvent(kind: .click, x: x, y: y)))
        XCTAssertEqual(app.focus, .physical)
        XCTAssertEqual(app.physical.cursor, (app.physical.scroll * l.columns + 2) * l.framesPerCell)
        // The screen shows that cell selected, where the click was.
        let marks = TextDriver.marks(app.screen()).split(separator: "\n", omittingEmptySubsequences: false).map(Array.init)
        XCTAssertEqual(marks[y].indices.contains(x) ? marks[y][x] : " ", "s")
    }

    func testMouseClicksSelectAPageAndAnIOPTEWithoutRendering() throws {
        var app = try makeApp(Scenarios.device, steps: 100, width: 200, height: 60)
        let vpn = try XCTUnwrap(app.session.state.processes[0].meta.buffer(named: "frame")).start >> 12 + 2
        // Where page `vpn` is drawn, from the process panel's own layout.
        let pctx = app.context(.process)
        let (row, col) = try XCTUnwrap(app.process.layout(pctx).locate(proc: 0, vpn: vpn))
        _ = app.handle(.mouse(MouseEvent(kind: .click, x: pctx.body.x + ProcessLayout.indent + col, y: pctx.body.y + row - app.process.scroll)))
        XCTAssertEqual(app.focus, .process)
        XCTAssertEqual(app.process.cursor?.proc, 0)
        XCTAssertEqual(app.process.cursor?.vpn, vpn)
        // The second IOPTE line of the device pane.
        let dctx = app.context(.device)
        let line = app.device.layout(dctx).row(index: 1) - app.device.scroll
        _ = app.handle(.mouse(MouseEvent(kind: .click, x: dctx.body.x + 3, y: dctx.body.y + line)))
        XCTAssertEqual(app.focus, .device)
        XCTAssertEqual(app.device.cursor.index, 1)
        guard case let .iopte(0, iova)? = app.selection() else { return XCTFail("no IOPTE selected") }
        XCTAssertEqual(iova, app.session.state.devices[0].sortedIOPTEs[1].iova)
        // A click on a pane's title only focuses it.
        _ = app.handle(.mouse(MouseEvent(kind: .click, x: pctx.body.x + 3, y: pctx.body.y - 1)))
        XCTAssertEqual(app.focus, .process)
        XCTAssertEqual(app.process.cursor?.vpn, vpn)
    }

    /// Expects before the first step check the booted machine, in the TUI as in `umptui run`.
    func testExpectsBeforeTheFirstStepAreCheckedAtStepZero() throws {
        let source = """
            machine ram=64M
            expect machine ram=32M
            process app
            expect app rss=4K
            """
        let app = try makeApp(source, width: 120, height: 40)
        let run = ScenarioRunner.run(try parseScript(source, fileName: "test.ump"))
        XCTAssertEqual(app.session.expectFailures[0], ["line 2: \(run.failures[0].message)"])
        XCTAssertEqual(run.failures[0].message, "machine ram is 67108864, expected 33554432")
        XCTAssertTrue(app.screen().lines.contains { $0.contains("expect failed: line 2: machine ram is 67108864, expected 33554432") })
        var stepped = app
        stepped.session.stepForward()
        XCTAssertEqual(stepped.session.expectFailures[1], ["line 4: \(run.failures[1].message)"])
        stepped.session.stepBack()
        // Step 1 stays in the timeline with what it found; the screen at step 0 shows step 0's only.
        XCTAssertEqual(stepped.session.expectFailures[1], ["line 4: \(run.failures[1].message)"])
        XCTAssertNotNil(stepped.session.expectFailures[0], "step 0's failures stay")
        XCTAssertFalse(stepped.screen().lines.contains { $0.contains("line 4:") }, "step 1's failure is not shown at step 0")
    }

    /// The files a session reads come from whoever opens it: here trace files held in memory.
    func testSessionReadsTraceFilesThroughItsFiles() throws {
        struct MemoryFiles: SessionFiles, TraceProvider {
            var traces: (any TraceProvider)? { self }
            func exists(_ path: String) -> Bool { path == "hot.txt" }
            func open(_ path: String) throws -> any AddressSource { ArrayAddressSource([0, 0x1000, 0, 0x1000]) }
        }
        let script = try parseScript("""
            machine memlock=16M
            process app
            device d iommu=vtd iotlb=8
            app mmap buf 64K
            d map app.buf iova=0
            d dma-trace hot.txt
            """, fileName: "test.ump")
        var session = Session(script: script, files: MemoryFiles())
        session.go(to: session.total)
        XCTAssertEqual(session.lastRecord?.outcome, .ok)
        XCTAssertEqual(session.state.devices[0].stats.accesses, 4)
        XCTAssertEqual(session.state.devices[0].stats.misses, 2)
        // The prompt checks trace files through the same files.
        guard case .error(let message, _, _) = session.runPrompt("d dma-trace cold.txt") else { return XCTFail("a missing trace ran") }
        XCTAssertTrue(message.contains("cold.txt"), message)
        guard case .ran = session.runPrompt("d dma-trace hot.txt") else { return XCTFail("a trace the files hold did not run") }
        // Without files, dma-trace is an outcome, not a crash.
        var none = Session(script: script)
        none.go(to: none.total)
        XCTAssertEqual(none.lastRecord?.outcome, .errno("ENOENT"))
    }

    /// Whatever the keys do, the selected cell is drawn: every pane scrolls to keep its cursor visible.
    func testCursorStaysOnScreenInEveryPane() throws {
        var app = try makeApp(Tour.source, steps: 100, width: 80, height: 24)
        for pane in 0..<3 {
            // Each run of keys goes past a pane's 80x24 height or width at least once.
            for key in Array(repeating: Key.down, count: 24) + Array(repeating: Key.right, count: 20)
                + Array(repeating: Key.pageDown, count: 3) + Array(repeating: Key.up, count: 36) + [Key.pageUp, .pageUp] {
                let screen = app.press(key)
                XCTAssertTrue(TextDriver.marks(screen).contains("s"), "pane \(pane) after \(key): no selected cell on screen")
            }
            _ = app.press(.tab)
        }
    }

    func testThemesCarryMarksWithoutColour() {
        let mono = Theme(.mono)
        XCTAssertTrue(mono.style(.pagePrivate, .selected).attrs.contains(.reverse))
        XCTAssertTrue(mono.style(.pagePrivate, .related).attrs.contains(.reverse))
        XCTAssertNotEqual(mono.style(.pagePrivate, .changed), mono.style(.pagePrivate, .none))
        // The selection's relatives outweigh the change marks in every theme and for every role,
        // and the selected cell differs from its relatives.
        func weight(_ t: Theme, _ role: Role, _ mark: Mark) -> Int {
            let s = t.style(role, mark), base = t.style(role, .none)
            // A coloured ground weighs 3, a grey one (232...243, faint on any background) 1.
            let ground = s.bg == base.bg ? 0 : (232...243).contains(s.bg) ? 1 : 3
            return (s.attrs.contains(.reverse) && !base.attrs.contains(.reverse) ? 4 : 0) + ground + (s.fg != base.fg ? 1 : 0)
                + (s.attrs.contains(.bold) && !base.attrs.contains(.bold) ? 1 : 0) + (s.attrs.contains(.underline) ? 1 : 0)
        }
        // The roles of cells that carry marks: pages, frames, owners, IOPTEs, and the names of
        // processes, devices and VMAs.
        let marked: [Role] = [.normal, .section, .label, .pageUntouched, .pageZero, .pagePrivate, .pageShared, .pagePinned, .pageSwapped, .pageHuge,
                              .frameFree, .frameZero, .frameKernel, .frameUMP, .frameDmabuf, .frameTable, .framePinned, .iopteSmall, .iopteLarge] + Role.owners
        for kind in [ThemeKind.mono, .color8, .color256] {
            let t = Theme(kind)
            for role in marked {
                XCTAssertGreaterThanOrEqual(weight(t, role, .related), weight(t, role, .changed) + 2, "\(kind) \(role)")
                // More than bold tells them apart, and a change mark is no coloured ground (a grey at most).
                var r = t.style(role, .related), c = t.style(role, .changed)
                r.attrs.remove(.bold); c.attrs.remove(.bold)
                XCTAssertNotEqual(r, c, "\(kind) \(role)")
                XCTAssertFalse(c.bg >= 0 && c.bg < 232 && c.bg != t.style(role, .none).bg, "\(kind) \(role): changed on colour \(c.bg)")
                XCTAssertGreaterThan(weight(t, role, .changed), 0, "\(kind) \(role)")
                XCTAssertNotEqual(t.style(role, .selected), t.style(role, .related), "\(kind) \(role)")
            }
        }
        for role in Role.allCases { XCTAssertEqual(mono.style(role, .none).fg, -1) }
        XCTAssertEqual(Theme.choose(colors: 256, noColor: true).kind, .mono)
        XCTAssertEqual(Theme.choose(colors: 8, noColor: false).kind, .color8)
    }
}
