// `umptui bench`'s key latency: from a key press to the next frame drawn, at 200×60 on a demo (by
// default demos/iotlb-reach.ump), for cursor moves in each pane, a step, a step back, and End from
// step 0. What is timed is what the loop does for a key: the state update (AppState.handle), the
// panes' scroll and follow (prepare) and the render into a Canvas; the terminal's own output is not
// (ncurses writes only the cells that changed). The budget is one 60 Hz frame, 16 ms: no peer to
// compare with, so each figure is reported with its spread.

import Engine
import Foundation

enum BenchKeys {
    struct Row {
        var label: String
        /// Milliseconds per press, sorted.
        var ms: [Double]
        var median: Double { ms.isEmpty ? 0 : ms[ms.count / 2] }
        var p90: Double { ms.isEmpty ? 0 : ms[min(ms.count - 1, ms.count * 9 / 10)] }
        var worst: Double { ms.last ?? 0 }
        var best: Double { ms.first ?? 0 }
    }

    struct Result {
        var demo: String
        var rows: [Row]
    }

    static let budgetMs = 16.0

    static func run(demo path: String, width: Int = 200, height: Int = 60, presses: Int = 30) throws -> Result {
        let url = URL(fileURLWithPath: path)
        let script = try parseScript(String(contentsOf: url, encoding: .utf8), fileName: path)
        var app = AppState(session: Session(script: script, files: FileTraceProvider(base: url.deletingLastPathComponent())), glyphs: .unicode)
        app.width = width
        app.height = height
        let total = app.session.total
        /// Milliseconds from the key to the frame.
        func press(_ key: Key) -> Double {
            let t0 = BenchRunner.now()
            _ = app.handle(key)
            app.prepare()
            _ = Screen.render(app)
            return (BenchRunner.now() - t0) * 1000
        }
        func frame() {
            app.prepare()
            _ = Screen.render(app)
        }
        var rows: [Row] = []
        // Cursor moves at the last step, where every pane is full.
        app.session.go(to: total)
        frame()
        for (pane, keys, label) in [(Pane.process, [Key.right, .left], "cursor move in PROCESS"),
                                    (.physical, [.right, .left], "cursor move in PHYSICAL"),
                                    (.device, [.down, .up], "cursor move in DEVICE")] {
            app.setFocus(pane)
            frame()
            var ms: [Double] = []
            for i in 0..<presses { ms.append(press(keys[i % 2])) }
            rows.append(Row(label: label, ms: ms.sorted()))
        }
        // A step, and a step back, at every step of the demo (each step of it costs what it costs).
        app.setFocus(.process)
        app.session.go(to: 0)
        frame()
        var step: [Double] = [], back: [Double] = []
        for _ in 0..<total {
            step.append(press(.char(" ")))
            back.append(press(.char("b")))
            _ = press(.char(" "))
        }
        rows.append(Row(label: "step (Space), each step of the demo", ms: step.sorted()))
        rows.append(Row(label: "step back (b), each step of the demo", ms: back.sorted()))
        // End from step 0: the jump replays from the nearest snapshot.
        var end: [Double] = []
        for _ in 0..<max(5, presses / 3) {
            _ = press(.home)
            end.append(press(.end))
        }
        rows.append(Row(label: "End from step 0 (\(total) steps)", ms: end.sorted()))
        return Result(demo: path, rows: rows)
    }

    static func print(_ r: Result) {
        Swift.print("  key to frame at 200×60 on \(r.demo) (state update, follow, render; budget one 60 Hz frame, \(Int(budgetMs)) ms):")
        for row in r.rows {
            Swift.print(String(format: "    %@: median %.2f ms, p90 %.2f ms, worst %.2f ms, best %.2f ms over %d presses%@",
                               row.label, row.median, row.p90, row.worst, row.best, row.ms.count,
                               row.worst > budgetMs ? " (worst over budget)" : ""))
        }
    }

    static func write(_ r: Result, _ w: inout JSONWriter) {
        w.beginObject("key_latency")
        w.field("demo", r.demo)
        w.field("budget_ms", Int(budgetMs))
        w.beginArray("keys")
        for row in r.rows {
            w.beginObject()
            w.field("key", row.label)
            w.field("presses", row.ms.count)
            w.field("ms_median", String(format: "%.3f", row.median))
            w.field("ms_p90", String(format: "%.3f", row.p90))
            w.field("ms_worst", String(format: "%.3f", row.worst))
            w.field("ms_best", String(format: "%.3f", row.best))
            w.endObject()
        }
        w.endArray()
        w.endObject()
    }
}
