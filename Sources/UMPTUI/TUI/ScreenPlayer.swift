// Plays a session the way Space presses would (each step's `select` and `inspect` cues first)
// and renders the screen after each: what `--print-screen`, `export` and its tests all use, so
// the last frame of an export is the screen `--print-screen --steps N` prints.

import Engine

struct ScreenPlayer {
    private(set) var app: AppState

    init(session: Session, glyphs: Glyphs, width: Int, height: Int) {
        app = AppState(session: session, glyphs: glyphs)
        (app.width, app.height) = (width, height)
    }

    /// Opens compare mode (`umptui compare --print-screen`); an error message when B's overrides do not fit.
    mutating func startCompare(vs: [String]) -> String? { app.startCompare(vs: vs) }

    /// The screen as it is now.
    mutating func render() -> Canvas {
        app.prepare()
        return Screen.render(app)
    }

    /// What the next press of Space does, for a marker: "step 3: app write buf" or "back".
    var nextLabel: String? {
        switch app.session.nextItem {
        case nil: nil
        case let .step(s)?: "step \(app.session.current + 1): \(s.statement.text)"
        case .back?: "back to step \(max(0, app.session.current - 1))"
        case let .set(_, text)?: "set \(text)"
        case let .unset(_, key)?: "unset \(key)"
        }
    }

    /// The milliseconds of `wait` before the next step, if its cues give any.
    var nextWaitMs: Double? {
        guard let cues = app.session.nextItem?.step.cues else { return nil }
        var total = 0.0, any = false
        for c in cues { if case let .wait(ms) = c.kind { total += ms; any = true } }
        return any ? total : nil
    }

    /// Presses Space: false at the end.
    mutating func step() -> Bool {
        guard app.session.nextItem != nil else { return false }
        _ = app.perform(.step)
        app.syncCompare()
        // Nothing records here: drop the moves the session keeps for a recorder.
        _ = app.session.takeMoves()
        return true
    }

    /// The screen after `steps` presses of Space (fewer at the end of the script).
    static func screen(session: Session, glyphs: Glyphs, width: Int, height: Int, steps: Int) -> Canvas {
        var p = ScreenPlayer(session: session, glyphs: glyphs, width: width, height: height)
        _ = p.render()
        for _ in 0..<max(0, steps) {
            guard p.step() else { break }
            _ = p.render()
        }
        return p.render()
    }
}
