// Quiz mode (`umptui quiz FILE`, or Q): before a step with a question, the screen asks; the choice
// letters answer (they do not step, go back or compare); the step runs; the answer is revealed with
// why and the kernel function that decided it, and only then does the narration show the step's note.

import Engine

/// What quiz mode keeps: the score, and which steps have been asked (each is asked once).
struct QuizMode: Equatable {
    var score = QuizScore()
    /// 0-based indices of the steps asked so far.
    var asked: Set<Int> = []
}

extension AppState {
    /// Q: quiz mode on or off.
    mutating func toggleQuiz() {
        if let q = quiz {
            quiz = nil
            if case .quiz? = overlay { overlay = nil }
            message = "quiz mode off (\(q.score.text))"
        } else {
            quiz = QuizMode()
            message = "quiz mode: steps with a question ask before they run (Q ends it)"
        }
    }

    /// In quiz mode, before the next step runs: puts up its question when it has one not asked
    /// yet. True when a question is now shown (the step waits for the answer).
    mutating func askBeforeStep() -> Bool {
        guard var mode = quiz, let step = session.nextStep, !mode.asked.contains(session.current) else { return false }
        // Finding the answer runs the step on a copy: a long one shows its progress, and Esc
        // cancels the question and the step with it.
        let cancelled = CancelFlag()
        let control = stepControl().map { inner in
            StepControl { p in
                let go = inner.check(p)
                if !go { cancelled.set() }
                return go
            }
        }
        let q = Quiz.question(for: step, number: session.current + 1, engine: session.engine,
                              traces: session.files.traces, control: control)
        if cancelled.isSet {
            message = "step \(session.current + 1) cancelled (Esc): nothing changed"
            playing = false
            return true
        }
        guard let q else { return false }
        mode.asked.insert(session.current)
        quiz = mode
        overlay = .quiz(q)
        playing = false
        return true
    }

    /// A key while a question is shown: a choice letter answers it and runs the step.
    mutating func handleQuizKey(_ key: Key, _ q: QuizQuestion) -> HandleResult {
        if case let .char(ch) = key, let choice = q.choice(String(ch)) {
            message = nil
            applyCues(waits: false)
            guard session.stepForward(control: stepControl()), let r = session.lastRecord else {
                // Cancelled (Esc during a long step): the question waits to be asked again.
                if session.cancelledStep != nil { quiz?.asked.remove(session.current) }
                overlay = nil
                message = cancelMessage
                return .redraw
            }
            afterStep()
            let answer = QuizAnswer(question: q, step: r.step, given: choice.letter, decidedBy: q.decidedBy ?? Quiz.decidedBy(r))
            quiz?.score.add(answer)
            overlay = .quizReveal(answer)
            return .redraw
        }
        switch key {
        case .escape:
            // Put the question away without running the step; Space asks it again.
            overlay = nil
            if var mode = quiz { mode.asked.remove(session.current); quiz = mode }
            message = "question put away: Space asks it again"
        case .char("Q"):
            toggleQuiz()
        case .char("q"):
            // q closes an overlay, the question included: Esc's meaning.
            return handleQuizKey(.escape, q)
        default:
            message = "answer with " + q.choices.map(\.letter).joined(separator: ", ") + " (Esc puts the question away, Q ends quiz mode)"
        }
        return .redraw
    }
}

extension Overlays {
    /// The rows of a question: the question, then its choices, lettered.
    static func quizRows(_ q: QuizQuestion, width: Int) -> [(String, Role)] {
        var rows = wrapText(q.question, width: width).map { ($0, Role.normal) }
        rows.append(("", .normal))
        for c in q.choices {
            let lines = wrapText(c.text, width: width - 4)
            for (i, l) in lines.enumerated() { rows.append(((i == 0 ? " \(c.letter)) " : "    ") + l, i == 0 ? .label : .overlayText)) }
        }
        return rows
    }

    static func drawQuiz(_ g: Glyphs, _ q: QuizQuestion, score: QuizScore, step: Int, _ c: inout Canvas) {
        let width = min(c.width - 4, 90)
        var rows = quizRows(q, width: width - 4)
        rows.append(("", .normal))
        rows.append(("press " + q.choices.map(\.letter).joined(separator: ", ") + " to answer; the step runs, then the answer shows", .dim))
        let room = c.height - 4
        if rows.count > room {
            // Too tall for the screen: every choice on one line (cut), the question in what is left.
            let choices = q.choices.map { (" \($0.letter)) " + $0.text, Role.label) }
            let questionRows = max(1, room - choices.count)
            var question = wrapText(q.question, width: width - 4).map { ($0, Role.normal) }
            if question.count > questionRows {
                question = Array(question.prefix(questionRows))
                question[question.count - 1].0 = String(question[question.count - 1].0.prefix(width - 5)) + String(g.ellipsis)
            }
            rows = question + choices
        }
        drawPanel(g, title: "QUIZ \(g.dot) before step \(step) \(g.dot) \(score.text)  (Esc or q puts it away)", rows: rows, width: width, &c)
    }

    /// The reveal: right or wrong, the right answer, why, and the kernel function that decided it.
    static func revealRows(_ a: QuizAnswer, g: Glyphs, width: Int, score: QuizScore, done: Bool) -> [(String, Role)] {
        let q = a.question
        var rows: [(String, Role)] = []
        let given = a.given.flatMap { q.choice($0) }
        if a.right {
            rows.append(((g.isASCII ? "RIGHT: " : "✓ right: ") + "\(q.answer)) \(q.answerText)", .ok))
        } else {
            rows += wrapText((g.isASCII ? "WRONG: " : "✗ wrong: ") + "\(a.given ?? "-")) \(given?.text ?? "")", width: width).map { ($0, .error) }
            rows += wrapText("the answer: \(q.answer)) \(q.answerText)", width: width).map { ($0, .ok) }
        }
        if !q.explain.isEmpty {
            rows.append(("", .normal))
            rows += wrapText(q.explain, width: width).map { ($0, .overlayText) }
        }
        rows.append(("", .normal))
        rows += wrapText("decided by: " + a.decidedBy, width: width).map { ($0, .label) }
        rows.append(("", .normal))
        rows.append((done ? "quiz done: \(score.text)" : "\(score.text) so far \(g.dot) any key goes on; the step's note is in the narration", done ? .section : .dim))
        return rows
    }

    static func drawReveal(_ g: Glyphs, _ a: QuizAnswer, score: QuizScore, done: Bool, _ c: inout Canvas) {
        let width = min(c.width - 4, 90)
        let rows = revealRows(a, g: g, width: width - 4, score: score, done: done)
        drawPanel(g, title: "ANSWER \(g.dot) step \(a.step)", rows: rows, width: width, &c)
    }

    /// A centred box with rows of text, cut to the screen.
    private static func drawPanel(_ g: Glyphs, title: String, rows: [(String, Role)], width: Int, _ c: inout Canvas) {
        let h = min(c.height - 2, rows.count + 2)
        let r = Rect(x: (c.width - width) / 2, y: max(1, (c.height - h) / 2), width: width, height: h)
        c.fill(r, " ", .overlayText)
        c.box(r, g, .overlayBorder, title: title, titleRole: .overlayTitle)
        for (i, (text, role)) in rows.prefix(h - 2).enumerated() {
            c.text(r.x + 2, r.y + 1 + i, text, role, limit: width - 4, ellipsis: g.ellipsis)
        }
    }
}

/// Set once by a StepControl that said stop (the loop's thread only).
final class CancelFlag: @unchecked Sendable {
    private(set) var isSet = false
    func set() { isSet = true }
}
