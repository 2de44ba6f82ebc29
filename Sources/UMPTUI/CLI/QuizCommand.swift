// `umptui quiz FILE`: the TUI in quiz mode, or, with --answers, the questions answered in line mode
// (no terminal): each question, the answer given, right or wrong, why, and the kernel function
// that decided it, then the step's notes; the last line reads `score: N/M`.

import ArgumentParser
import Engine
import Foundation

struct QuizCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quiz",
        abstract: "Predict, then reveal: the scenario asks before each quizzed step (the TUI, or line mode with --answers).",
        discussion: "Questions come from the script's quiz lines and, for reads, writes, device maps and forks with pinned pages, from the step itself. See docs/teaching.md.")

    @Argument(help: "The scenario file (*.ump); without it, the built-in tour.", completion: .file(extensions: ["ump"]))
    var file: String?

    @Option(help: ArgumentHelp("Answer in line mode, no terminal: letters in question order (a,b,c), or `right` for every right answer.", valueName: "a,b,...|right"))
    var answers: String?

    @Flag(help: "With --answers: JSON Lines, one object per question, then {\"score\":N,\"questions\":M}.")
    var json = false

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a declaration option, e.g. machine.ram=1G.", valueName: "KEY=VALUE"))
    var overrides: [String] = []

    @OptionGroup var terminal: TerminalOptions

    /// What --answers says: every right answer, or these letters in order.
    enum Answers: Equatable {
        case right
        case letters([String])
    }

    static func parseAnswers(_ text: String) throws -> Answers {
        if text.trimmingCharacters(in: .whitespaces) == "right" { return .right }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        for (i, p) in parts.enumerated() where !(p.count == 1 && "abcdefgh".contains(p)) {
            throw ValidationError("--answers: answer \(i + 1) is '\(p)'; give letters a to h separated by commas (a,c,b), or `right`")
        }
        return .letters(parts)
    }

    func validate() throws {
        if json && answers == nil { throw ValidationError("--json writes line mode's answers; give --answers too (a,b,... or right)") }
        if let answers { _ = try QuizCommand.parseAnswers(answers) }
    }

    func run() throws {
        guard let answers else {
            let (session, _) = try Tui.openSession(file: file, overrides: overrides)
            guard isatty(0) == 1, isatty(1) == 1 else {
                printError("umptui quiz: quiz mode needs a terminal on stdin and stdout; without one, answer with --answers a,b,... (or --answers right)")
                throw ExitCode(2)
            }
            var options = terminal.options
            options.quiz = true
            options.output = FileOutput()
            try Tui.runTerminal(session, options)
            return
        }
        let given = try QuizCommand.parseAnswers(answers)
        let script: Script, traces: (any TraceProvider)?
        let name = file ?? Tour.fileName
        if let file {
            do {
                let loaded = try ScriptLoader.load(path: file, overrides: overrides)
                for w in loaded.warnings { printError(w) }
                (script, traces) = (loaded.script, loaded.traces)
            } catch let e as LoadError {
                printError(e.description)
                throw ExitCode(2)
            }
        } else {
            do {
                var tour = try parseScript(Tour.source, fileName: Tour.fileName)
                try applyOverrides(overrides, to: &tour)
                (script, traces) = (tour, nil)
            } catch {
                printError(error.rendered)
                throw ExitCode(2)
            }
        }
        var out = BufferedOutput()
        let run = QuizRun(answers: given)
        let report = TextReport(fileName: name, width: TextReport.terminalWidth())
        var badSet: String?
        let result = run.run(script, traces: traces) { event in
            switch event {
            case let .answered(a, number, record, extra):
                out.write(json ? QuizRun.json(a, number: number, record: record, extra: extra)
                    : QuizRun.text(a, number: number, record: record, extra: extra, report: report))
            case let .badSet(text):
                badSet = text
            }
            out.flushIfLarge()
        }
        if json {
            var w = JSONWriter()
            w.beginObject()
            w.field("score", result.score.right)
            w.field("questions", result.score.asked)
            w.field("expect_failures", result.failures.count)
            w.endObject()
            out.write(w.string)
        } else {
            for f in result.failures { out.write(report.failure(f)) }
            for warning in result.warnings { out.write("warning: " + warning) }
            out.write(result.score.text)
        }
        try out.flush()  // a failed write: Umptui.main says so, exit 2
        if let badSet {
            printError(badSet)
            throw ExitCode(2)
        }
        if !result.failures.isEmpty { throw ExitCode(1) }
    }
}

/// A headless quiz: asks before each step that has a question, answers from the list, scores.
struct QuizRun {
    var answers: QuizCommand.Answers

    enum Event {
        /// A question answered; `extra` is a remark about the answer given (not a choice, none left).
        case answered(QuizAnswer, number: Int, StepRecord, extra: String?)
        case badSet(String)
    }

    struct Result {
        var score: QuizScore
        var failures: [ExpectFailure]
        var warnings: [String]
    }

    func run(_ script: Script, traces: (any TraceProvider)?, onEvent: (Event) -> Void) -> Result {
        var score = QuizScore()
        var pending: QuizQuestion?
        var next = 0
        var extra: String?
        var warnings: [String] = []
        let result = ScenarioRunner.run(script, traces: traces, shouldStop: { false }, willStep: { step, number, engine in
            pending = Quiz.question(for: step, number: number, engine: engine, traces: traces)
        }, onEvent: { event, _ in
            switch event {
            case let .step(r):
                guard let q = pending else { return }
                pending = nil
                var given: String?
                extra = nil
                switch answers {
                case .right: given = q.answer
                case let .letters(list):
                    if next < list.count {
                        let letter = list[next]
                        given = letter
                        if q.choice(letter) == nil {
                            extra = "'\(letter)' is not a choice (\(q.choices.map(\.letter).joined(separator: ", ")))"
                        }
                    } else {
                        extra = "no answer given (--answers has \(list.count))"
                    }
                }
                next += 1
                let a = QuizAnswer(question: q, step: r.step, given: given, decidedBy: q.decidedBy ?? Quiz.decidedBy(r))
                score.add(a)
                onEvent(.answered(a, number: score.asked, r, extra: extra))
            case let .badSet(d, _):
                onEvent(.badSet(d.rendered))
            default:
                break
            }
        })
        if case let .letters(list) = answers, list.count > next {
            warnings.append("--answers has \(list.count) answers for \(plural(next, "question")); the last \(list.count - next) went unused")
        }
        return Result(score: score, failures: result.failures, warnings: warnings)
    }

    static func text(_ a: QuizAnswer, number: Int, record r: StepRecord, extra: String?, report: TextReport) -> String {
        let q = a.question
        var s = "question \(number) \(q.kindLabel), before step \(r.step)   [line \(q.line)]\n"
        s += report.wrap(q.question, indent: "   ")
        for c in q.choices { s += report.wrap("\(c.letter)) \(c.text)", indent: "      ") }
        let verdict: String
        if a.right {
            verdict = "answer \(a.given ?? "-"): right"
        } else {
            verdict = "answer \(a.given ?? "-"): wrong" + (extra.map { " (\($0))" } ?? "") + "; right: \(q.answer)) \(q.answerText)"
        }
        s += report.wrap(verdict, indent: "   ")
        if !q.explain.isEmpty { s += report.wrap("why: " + q.explain, indent: "   ") }
        s += report.wrap("decided by: " + a.decidedBy, indent: "   ")
        s += report.wrap("step \(r.step). \(r.command): " + (r.outcome.ok ? "" : "[\(r.outcome.word)] ") + r.text, indent: "   ")
        for n in r.notes { s += report.wrap("note: " + n, indent: "   ") }
        return s
    }

    static func json(_ a: QuizAnswer, number: Int, record r: StepRecord, extra: String?) -> String {
        let q = a.question
        var w = JSONWriter()
        w.beginObject()
        w.field("quiz", number)
        w.field("kind", q.kind.rawValue)
        w.field("step", r.step)
        w.field("line", q.line)
        w.field("question", q.question)
        w.beginObject("choices")
        for c in q.choices { w.field(c.letter, c.text) }
        w.endObject()
        w.field("answer", q.answer)
        w.field("given", a.given)
        w.field("right", a.right)
        w.field("explain", q.explain)
        w.field("decided_by", a.decidedBy)
        w.field("outcome", r.outcome.word)
        w.field("remark", extra)
        w.endObject()
        return w.string
    }
}

extension QuizQuestion {
    /// "(written)", "(automatic: fault)": how the question came to be asked.
    var kindLabel: String { kind == .written ? "(written)" : "(automatic: \(kind.rawValue))" }
}
