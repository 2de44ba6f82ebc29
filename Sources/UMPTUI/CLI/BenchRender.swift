// `umptui bench`'s render section: the time to draw a full 200×60 frame of a 16 GiB machine with a
// 4 GiB process, against a 64 MiB machine at the same size. Drawing should cost what the cells
// cost, not what the frames cost, so the two should be close.

import Dispatch
import Engine

enum RenderBench {
    struct Result {
        var label: String
        var cells: Int
        /// The first frame after the step: includes building the index of what the step changed.
        var firstFrameMs: Double
        /// Median and worst of the frames after it (what every key press or play tick costs).
        var medianMs: Double
        var worstMs: Double
        /// A frame after moving the cursor: includes the cross-highlight (a scan of the page tables).
        var moveFrameMs: Double
    }

    static func run(ram: String, touch: String, width: Int = 200, height: Int = 60, frames: Int = 40) -> Result {
        let source = """
            machine ram=\(ram) thp=never
            process bench
            bench mmap buf \(touch)
            bench write buf
            """
        // The bench's own lines are fixed and valid.
        guard let script = try? parseScript(source, fileName: "bench") else { preconditionFailure("render bench script does not parse") }
        var app = AppState(session: Session(script: script), glyphs: .unicode)
        app.session.go(to: app.session.total)
        app.width = width
        app.height = height
        var t0 = BenchRunner.now()
        app.prepare()
        _ = Screen.render(app)
        let first = (BenchRunner.now() - t0) * 1000
        var times: [Double] = []
        for _ in 0..<frames {
            t0 = BenchRunner.now()
            app.prepare()
            _ = Screen.render(app)
            times.append((BenchRunner.now() - t0) * 1000)
        }
        times.sort()
        _ = app.handle(.right)
        t0 = BenchRunner.now()
        app.prepare()
        _ = Screen.render(app)
        let move = (BenchRunner.now() - t0) * 1000
        return Result(label: "ram=\(ram), \(touch) written", cells: width * height, firstFrameMs: first,
                      medianMs: times[times.count / 2], worstMs: times.last ?? 0, moveFrameMs: move)
    }
}
