// The loop: draw, wait for a key (or the play timer, or a signal), hand the key to AppState, act on
// the flags it returns. Everything that touches the terminal goes through NcursesDriver.

import Dispatch
import Engine
import Foundation

enum TUIApp {
    struct Options {
        var noColor = false
        var mouse = true
        var ascii = false
        var play = false
        var exitAtEnd = false
        /// `--record`: the file, opened before the TUI started.
        var recording: (path: String, sink: any RecordingSink)?
        var output: (any SessionOutput)?
        var startMessage: String?
        /// Open in compare mode with B = A plus these overrides.
        var compareVs: [String] = []
        /// `umptui quiz`: start in quiz mode.
        var quiz = false
    }

    /// Whether the locale's character set is UTF-8 (it sets the locale from the environment first):
    /// ASCII glyphs otherwise, in the TUI and in sweep's table.
    static func localeIsUTF8() -> Bool {
        setlocale(LC_ALL, "")
        return String(cString: nl_langinfo(nl_item(CODESET))).uppercased().replacingOccurrences(of: "-", with: "") == "UTF8"
    }

    /// Runs the TUI until q or a signal; returns the signal that ended it, if any.
    static func run(session: Session, options: Options) throws -> Int32? {
        let glyphs = options.ascii || !localeIsUTF8() ? Glyphs.ascii : Glyphs.unicode
        let noColor = options.noColor || !(ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty
        var app = AppState(session: session, glyphs: glyphs)
        app.clock = now()
        app.output = options.output
        app.message = options.startMessage
        if options.quiz { app.toggleQuiz() }
        // Before the recorder starts, so a recording of compare names B in its header.
        if !options.compareVs.isEmpty, let problem = app.startCompare(vs: options.compareVs) {
            throw OutputError(description: "umptui: --vs: \(problem)")
        }
        if let (path, sink) = options.recording {
            let header = (options.output?.header(kind: "recording", base: session.fileName) ?? [ScriptText.recordingHeader])
                + (app.compare.map { ["# compare --vs " + $0.vs.joined(separator: " ")] } ?? [])
            app.recorder = Recorder(path: path, sink: sink, header: header, session: session, now: app.clock)
            app.message = "recording to \(path)"
        }
        if options.play {
            app.playing = true
            app.exitAtEnd = options.exitAtEnd
            app.playDelay = 0
        }
        let driver = try NcursesDriver(options: .init(noColor: noColor, mouse: options.mouse))
        defer {
            driver.stop()
            app.recorder?.stop()
        }
        // The end-to-end tests crash the real binary on purpose to check the terminal comes back.
        let crashForTest = ProcessInfo.processInfo.environment["UMPTUI_TEST_CRASH"] == "1"
        var lastStep = now()
        var dirty = true
        // A long step draws its progress over the last frame and hears Esc (and the signals).
        var lastFrame = Canvas(width: 80, height: 24)
        app.makeStepControl = { [glyphs] steps in
            let painter = StepPainter(driver: driver, glyphs: glyphs, frame: lastFrame, steps: steps)
            return StepControl { painter.check($0) }
        }
        while true {
            let sig = NcursesDriver.caughtSignal.load(ordering: .sequentiallyConsistent)
            if sig != 0 { return sig }
            if dirty {
                (app.width, app.height) = driver.size
                app.prepare()
                lastFrame = Screen.render(app)
                driver.draw(lastFrame)
                dirty = false
                if crashForTest { crash() }
            }
            var timeout = 100
            if app.playing {
                let due = lastStep + app.playDelay
                timeout = max(0, min(100, Int((due - now()) * 1000)))
            }
            if let key = driver.readKey(timeout: timeout) {
                if key == .resize { driver.invalidate() }
                app.clock = now()
                let r = app.handle(key)
                if r.quit { return nil }
                if r.redraw { dirty = true }
                if !app.playing { lastStep = now() }
            }
            if app.playing && now() - lastStep >= app.playDelay {
                lastStep = now()
                app.clock = lastStep
                let r = app.tick()
                if r.quit { return nil }
                if r.redraw { dirty = true }
            }
        }
    }

    private static func crash() -> Never {
        StandardStreams.err("umptui: crashing on purpose (UMPTUI_TEST_CRASH=1)\n")
        fatalError("a crash for the end-to-end test")
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

/// Watches one long step for the loop: after a fifth of a second it draws the progress over the
/// last frame (ten times a second at most), and it reads the keyboard so that Esc, or a signal,
/// cancels the step. Other keys pressed meanwhile are dropped: the step they would act on is not
/// there yet. Used only on the loop's thread, inside the step.
final class StepPainter: @unchecked Sendable {
    private let driver: NcursesDriver
    private let glyphs: Glyphs
    private let frame: Canvas
    /// The timeline's steps, to name the one running.
    private let steps: [ScriptStep]
    private let started = TUIApp.now()
    private var lastDraw = 0.0
    private var lastPoll = 0.0

    init(driver: NcursesDriver, glyphs: Glyphs, frame: Canvas, steps: [ScriptStep]) {
        self.driver = driver
        self.glyphs = glyphs
        self.frame = frame
        self.steps = steps
    }

    func check(_ p: StepProgress) -> Bool {
        if NcursesDriver.caughtSignal.load(ordering: .sequentiallyConsistent) != 0 { return false }
        let t = TUIApp.now()
        if t - lastPoll >= 0.03 {
            lastPoll = t
            while let key = driver.readKey(timeout: 0) {
                if key == .escape { return false }
            }
        }
        if t - started >= 0.2 && t - lastDraw >= 0.1 {
            lastDraw = t
            var c = frame
            let title = "STEP \(p.step) of \(steps.count): " + (steps[safe: p.step - 1]?.statement.text ?? "")
            Overlays.drawProgress(glyphs, title: String(title.prefix(frame.width - 12)), p, seconds: t - started, &c)
            driver.draw(c)
        }
        return true
    }
}
