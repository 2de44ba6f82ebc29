// Reads scenario lines into `Statement`s: declarations, global commands and `expect` here,
// process and device events in EventParser.swift. Syntax only; names are checked by Checker.swift.

/// Parses a whole scenario. Every bad line gives one diagnostic; all of them are thrown together.
/// The longest line a scenario may have: a note of a few paragraphs fits many times over. The
/// lexer holds a line as Characters (16 bytes each), so this bounds what one line can cost.
public let maxScenarioLineLength = 65_536

/// At most this many errors are reported; the parse stops there (a binary file is not 10 million errors).
public let maxScenarioErrors = 50

/// At most this many statements (about 160 bytes each once parsed): a long recording is tens of
/// thousands; a generated file of millions of lines is refused before it costs gigabytes.
public let maxScenarioStatements = 1_000_000

public func parseScript(_ source: String, fileName: String) throws(Diagnostics) -> Script {
    try parseScript(source, fileName: fileName, statementLimit: maxScenarioStatements)
}

func parseScript(_ source: String, fileName: String, statementLimit: Int) throws(Diagnostics) -> Script {
    var statements: [Statement] = []
    var errors: [Diagnostic] = []
    let lines = scenarioSourceLines(source)
    for (index, line) in lines.enumerated() {
        if errors.count == maxScenarioErrors {
            errors.append(Diagnostic(file: fileName, location: SourceLocation(line: index + 1, column: 1),
                                     message: "\(maxScenarioErrors) errors before this line; the rest of the file (\(lines.count - index - (lines.last == "" ? 1 : 0)) lines) is not read"))
            break
        }
        if line.utf8.count > maxScenarioLineLength {
            errors.append(Diagnostic(file: fileName, location: SourceLocation(line: index + 1, column: 1),
                                     message: "the line is \(line.utf8.count) bytes long; a line may have at most \(maxScenarioLineLength)"))
            continue
        }
        do {
            if let statement = try parseStatement(line, lineNumber: index + 1, fileName: fileName) {
                guard statements.count < statementLimit else {
                    errors.append(Diagnostic(file: fileName, location: SourceLocation(line: index + 1, column: statement.location.column),
                                             message: "more than \(statementLimit) statements: a scenario may have at most \(statementLimit); split it, or record a shorter session"))
                    break
                }
                statements.append(statement)
            }
        } catch {
            errors.append(error)
        }
    }
    guard errors.isEmpty else { throw Diagnostics(errors) }
    return Script(fileName: fileName, statements: statements, isRecording: ScriptText.isRecording(source))
}

/// Parses one line (a scenario line or the TUI's `:` prompt); nil for a blank or comment line.
public func parseStatement(_ line: String, lineNumber: Int = 1, fileName: String = "<prompt>") throws(Diagnostic) -> Statement? {
    do {
        let lexed = try Lexer.lex(line)
        guard let first = lexed.tokens.first else { return nil }
        let kind = try LineParser(lexed: lexed, lineNumber: lineNumber).statement()
        return Statement(kind: kind, location: SourceLocation(line: lineNumber, column: first.column), text: lexed.text)
    } catch {
        throw Diagnostic(file: fileName, location: SourceLocation(line: lineNumber, column: error.column),
                         message: error.message, hint: error.hint, sourceLine: line)
    }
}

/// The lines of a scenario as `parseScript` numbers them (`\n`, `\r\n` or `\r` end a line, and
/// nothing else: a form feed, a vertical tab, U+0085 or U+2028 inside a line is the lexer's error,
/// so every tool counts lines as an editor does), for `checkScript(_:sourceLines:fileExists:)` and
/// for showing a line.
public func scenarioSourceLines(_ source: String) -> [String] {
    source.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }).map(String.init)
}

/// The words that start a statement rather than naming a process or device.
enum Keyword {
    static let statements = ["machine", "process", "device", "file", "pressure", "compact", "note", "wait", "expect",
                             "back", "set", "unset", "select", "inspect", "quiz"]
    /// Words no process or device may be called: the statements, `last` (an expect target),
    /// `pfn` (a select target) and the TUI's prompt command `w`.
    static let reserved = statements + ["last", "pfn", "w"]
}

struct LineParser {
    let lexed: LexedLine
    let lineNumber: Int
    var tokens: [Token] { lexed.tokens }

    func statement() throws(LineError) -> StatementKind {
        let first = tokens[0]
        switch first.raw {
        case "machine": return .machine(try machine())
        case "process": return .process(try process())
        case "device": return .device(try device())
        case "file":
            let args = try arguments(CommandShape(name: "file", subject: "'file'", usage: "file NAME SIZE",
                                                  needs: "a file name and a size", required: 2))
            return .file(name: try name(args.positionals[0], "a file name"), size: try value(args.positionals[1], Literal.addressSpaceSize))
        case "pressure":
            let args = try arguments(CommandShape(name: "pressure", subject: "'pressure'", usage: "pressure SIZE",
                                                  needs: "a size", required: 1))
            return .pressure(try value(args.positionals[0], Literal.addressSpaceSize))
        case "compact":
            _ = try arguments(CommandShape(name: "compact", subject: "'compact'", usage: "compact"))
            return .compact
        case "note": return .note(try note())
        case "wait":
            let args = try arguments(CommandShape(name: "wait", subject: "'wait'", usage: "wait DURATION",
                                                  needs: "a duration like 500ms or 1.5s", required: 1))
            return .wait(try value(args.positionals[0], Literal.duration))
        case "expect": return try expect()
        case "back":
            _ = try arguments(CommandShape(name: "back", subject: "'back'", usage: "back"))
            return .back
        case "inspect":
            _ = try arguments(CommandShape(name: "inspect", subject: "'inspect'", usage: "inspect"))
            return .inspect
        case "set": return try set()
        case "unset": return try unset()
        case "select": return .select(try select())
        case "quiz": return .quiz(try quiz())
        case "w", "w!":
            throw LineError("'\(first.raw)' is a command of the terminal UI's ':' prompt, not a scenario line", at: first.column,
                            hint: "`:w FILE` saves the session from the terminal UI")
        default:
            guard Literal.isName(first.raw) else {
                throw LineError(
                    "expected a command or a process or device name, got '\(first.raw)'", at: first.column,
                    hint: Suggest.prefix(first.raw, among: Keyword.statements)
                        + "commands: " + Keyword.statements.joined(separator: ", "))
            }
            return try EventParser(line: self).event()
        }
    }

    /// The words after the first one, split for `shape`.
    func arguments(_ shape: CommandShape, from index: Int = 1) throws(LineError) -> Arguments {
        try Arguments.split(tokens.dropFirst(index), as: shape, endColumn: lexed.endColumn)
    }

    /// Reads a positional word; a string never passes, since its raw form keeps the quotes.
    func value<T>(_ token: Token, _ read: (String) throws(ValueError) -> T) throws(LineError) -> T {
        do { return try read(token.raw) } catch { throw LineError(error.message, at: token.column + error.offset, hint: error.hint) }
    }

    /// Reads option `key` if it was given.
    func option<T>(_ args: Arguments, _ key: String, _ read: (String) throws(ValueError) -> T) throws(LineError) -> T? {
        guard let token = args.options[key] else { return nil }
        return try optionValue(token, read)
    }

    func optionValue<T>(_ token: Token, _ read: (String) throws(ValueError) -> T) throws(LineError) -> T {
        do { return try read(token.optionValue) } catch {
            throw LineError(error.message, at: token.optionValueColumn + error.offset, hint: error.hint)
        }
    }

    /// A process, device, buffer or child name; `what` says which in the message.
    func name(_ token: Token, _ what: String) throws(LineError) -> String {
        guard Literal.isName(token.raw) else {
            throw LineError("expected \(what), got '\(token.raw)'", at: token.column, hint: Literal.nameRule)
        }
        return token.raw
    }

    // MARK: Declarations

    private func machine() throws(LineError) -> MachineDecl {
        let args = try arguments(DeclarationOptions.machineShape)
        var decl = MachineDecl()
        try apply(args, DeclarationOptions.machine, to: &decl)
        return decl
    }

    private func process() throws(LineError) -> ProcessDecl {
        let args = try arguments(DeclarationOptions.processShape)
        var decl = ProcessDecl(name: try name(args.positionals[0], "a process name"))
        try apply(args, DeclarationOptions.process, to: &decl)
        return decl
    }

    private func device() throws(LineError) -> DeviceDecl {
        let args = try arguments(DeclarationOptions.deviceShape)
        var decl = DeviceDecl(name: try name(args.positionals[0], "a device name"))
        try apply(args, DeclarationOptions.device, to: &decl)
        if let (key, error) = DeclarationOptions.consistency(of: decl), let token = args.options[key] {
            throw LineError(error.message, at: token.column, hint: error.hint)
        }
        return decl
    }

    private func apply<Decl>(_ args: Arguments, _ table: [DeclarationOption<Decl>], to decl: inout Decl) throws(LineError) {
        for token in args.orderedOptions {
            guard let option = DeclarationOptions.option(token.optionKey, in: table) else { continue }
            try optionValue(token) { (v: String) throws(ValueError) in try option.set(&decl, v) }
        }
    }

    // MARK: Global commands

    /// `note "TEXT"`, or the rest of the line as written when it is not quoted.
    private func note() throws(LineError) -> String {
        guard tokens.count > 1 else {
            throw LineError("'note' needs a text", at: lexed.endColumn, hint: "usage: note \"TEXT\"")
        }
        let text = tokens[1]
        guard text.isString else {
            return String(lexed.text.dropFirst(text.column - tokens[0].column))
        }
        if tokens.count > 2 {
            throw LineError("unexpected '\(tokens[2].raw)' after the note's text", at: tokens[2].column,
                            hint: "put the whole text inside the quotes")
        }
        return text.text
    }

    /// `quiz "QUESTION" a="..." b="..." [c="..." ...] answer=b [explain="..."]`.
    private func quiz() throws(LineError) -> QuizSpec {
        let usage = "usage: quiz \"QUESTION\" a=\"...\" b=\"...\" [c=\"...\" ...] answer=b [explain=\"...\"]"
        guard tokens.count > 1, tokens[1].isString, !tokens[1].text.allSatisfy(\.isWhitespace) else {
            throw LineError("'quiz' needs a question in quotes", at: tokens.count > 1 ? tokens[1].column : lexed.endColumn, hint: usage)
        }
        let letters = "abcdefgh".map(String.init)
        var choices: [QuizChoice] = []
        var answer: Token?
        var explain: String?
        var seen = Set<String>()
        for token in tokens.dropFirst(2) {
            guard token.isOption, !token.optionKey.isEmpty else {
                throw LineError("expected KEY=VALUE, got '\(token.raw)'", at: token.column, hint: usage)
            }
            let key = token.optionKey
            guard seen.insert(key).inserted else { throw LineError("'\(key)' is given twice", at: token.column) }
            guard !token.optionValue.isEmpty else { throw LineError("'\(key)' needs a value", at: token.optionValueColumn, hint: usage) }
            switch key {
            case "answer": answer = token
            case "explain": explain = token.optionValue
            case _ where letters.contains(key):
                let expected = letters[choices.count]
                guard key == expected else {
                    throw LineError("choice '\(key)' comes before choice '\(expected)'", at: token.column,
                                    hint: "choices are lettered in order: a, b, c, ...")
                }
                choices.append(QuizChoice(letter: key, text: token.optionValue))
            case _ where key.count == 1 && key >= "i" && key <= "z":
                throw LineError("choice '\(key)': a quiz has at most eight choices, a to h", at: token.column, hint: usage)
            default:
                throw LineError("unknown key '\(key)' for 'quiz'", at: token.column,
                                hint: Suggest.prefix(key, among: ["answer", "explain"]) + "keys: a, b, ... (the choices), answer, explain")
            }
        }
        guard choices.count >= 2 else {
            throw LineError("'quiz' needs at least two choices, a=\"...\" and b=\"...\"", at: lexed.endColumn, hint: usage)
        }
        guard let answer else { throw LineError("'quiz' needs answer=LETTER", at: lexed.endColumn, hint: usage) }
        let letter = answer.optionValue
        guard choices.contains(where: { $0.letter == letter }) else {
            throw LineError("answer '\(letter)' is not a choice", at: answer.optionValueColumn,
                            hint: "the choices are " + choices.map(\.letter).joined(separator: ", "))
        }
        return QuizSpec(question: tokens[1].text, choices: choices, answer: letter, explain: explain)
    }

    // MARK: Recording lines

    /// `set TARGET.KEY=VALUE`, the `--set` spelling; the override itself is checked against the
    /// declarations by the checker.
    private func set() throws(LineError) -> StatementKind {
        let usage = "usage: set TARGET.KEY=VALUE, e.g. set machine.ram=1G or set gpu.iotlb=16"
        guard tokens.count > 1 else { throw LineError("'set' needs TARGET.KEY=VALUE", at: lexed.endColumn, hint: usage) }
        let token = tokens[1]
        guard token.isOption, token.optionKey.contains("."), !token.optionValue.isEmpty else {
            throw LineError("expected TARGET.KEY=VALUE, got '\(token.raw)'", at: token.column, hint: usage)
        }
        if tokens.count > 2 {
            throw LineError("unexpected '\(tokens[2].raw)': 'set' takes one override", at: tokens[2].column, hint: usage)
        }
        return .set(token.raw)
    }

    private func unset() throws(LineError) -> StatementKind {
        let usage = "usage: unset TARGET.KEY, e.g. unset gpu.iotlb (back to the value as written)"
        guard tokens.count > 1 else { throw LineError("'unset' needs TARGET.KEY", at: lexed.endColumn, hint: usage) }
        let token = tokens[1]
        guard !token.isOption, !token.isString, token.raw.contains("."), !token.raw.hasPrefix("."), !token.raw.hasSuffix(".") else {
            throw LineError("expected TARGET.KEY, got '\(token.raw)'", at: token.column, hint: usage)
        }
        if tokens.count > 2 {
            throw LineError("unexpected '\(tokens[2].raw)': 'unset' takes one TARGET.KEY", at: tokens[2].column, hint: usage)
        }
        return .unset(token.raw)
    }

    private func select() throws(LineError) -> SelectTarget {
        let usage = "usage: select PROC.BUF PAGE, select pfn N or select DEV iova ADDR"
        guard tokens.count > 2 else {
            throw LineError("'select' needs what to select", at: tokens.count > 1 ? tokens[1].endColumn : lexed.endColumn, hint: usage)
        }
        let first = tokens[1]
        let count: Int
        let selection: SelectTarget
        if first.raw == "pfn" {
            selection = .pfn(try value(tokens[2], Literal.count))
            count = 3
        } else if first.raw.contains(".") {
            selection = .page(try bufferRef(first), index: try value(tokens[2], Literal.count))
            count = 3
        } else {
            let dev = try name(first, "a buffer as PROC.BUF, pfn or a device name")
            guard tokens[2].raw == "iova" else {
                throw LineError("expected 'iova' after the device name, got '\(tokens[2].raw)'", at: tokens[2].column, hint: usage)
            }
            guard tokens.count > 3 else { throw LineError("'select \(dev) iova' needs an address", at: lexed.endColumn, hint: usage) }
            selection = .iova(device: dev, try value(tokens[3], Literal.size))
            count = 4
        }
        if tokens.count > count {
            throw LineError("unexpected '\(tokens[count].raw)' after the selection", at: tokens[count].column, hint: usage)
        }
        return selection
    }

    // MARK: expect

    private func expect() throws(LineError) -> StatementKind {
        let usage = "usage: expect TARGET KEY=VALUE ..., e.g. expect app.buf present=16"
        guard tokens.count > 1, !tokens[1].isOption else {
            throw LineError("'expect' needs a target and at least one KEY=VALUE",
                            at: tokens.count > 1 ? tokens[1].column : lexed.endColumn, hint: usage)
        }
        let target = try expectTarget(tokens[1])
        guard tokens.count > 2 else {
            throw LineError("'expect' needs at least one KEY=VALUE", at: lexed.endColumn, hint: usage)
        }
        var clauses: [ExpectClause] = []
        for token in tokens.dropFirst(2) {
            guard token.isOption, !token.optionKey.isEmpty else {
                throw LineError("expected KEY=VALUE, got '\(token.raw)'", at: token.column, hint: usage)
            }
            let key = token.optionKey
            guard !clauses.contains(where: { $0.key == key }) else {
                throw LineError("'\(key)' is given twice", at: token.column)
            }
            guard !token.optionValue.isEmpty else {
                throw LineError("'\(key)' needs a value", at: token.optionValueColumn)
            }
            let value = try optionValue(token, Self.expectValue)
            clauses.append(ExpectClause(key: key, value: value, location: SourceLocation(line: lineNumber, column: token.column)))
        }
        return .expect(target, clauses)
    }

    private func expectTarget(_ token: Token) throws(LineError) -> ExpectTarget {
        switch token.raw {
        case "machine": return .machine
        case "last": return .last
        case let raw where raw.contains("."): return .buffer(try bufferRef(token))
        default:
            guard Literal.isName(token.raw) else {
                throw LineError("expected machine, last, a process, PROC.BUF or a device, got '\(token.raw)'",
                                at: token.column, hint: Literal.nameRule)
            }
            return .name(token.raw)
        }
    }

    /// `16`, `8M`, `0x1000` → integer; `true`/`false` → bool; any other word → word.
    static func expectValue(_ v: String) throws(ValueError) -> ExpectValue {
        if v.first?.isASCII == true, v.first?.isNumber == true { return .integer(try Literal.size(v)) }
        switch v {
        case "true": return .bool(true)
        case "false": return .bool(false)
        default: return .word(v)
        }
    }

    /// `PROC.BUF`.
    func bufferRef(_ token: Token) throws(LineError) -> BufferRef {
        let parts = token.raw.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, Literal.isName(parts[0]), Literal.isName(parts[1]) else {
            throw LineError("expected a buffer as PROC.BUF, got '\(token.raw)'", at: token.column,
                            hint: "name the buffer with its process, e.g. app.buf")
        }
        return BufferRef(process: parts[0], buffer: parts[1])
    }
}
