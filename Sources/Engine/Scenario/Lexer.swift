// Splits one scenario line into words and strings, dropping the `#` comment.
// Columns are 1-based counts of Characters, the same unit `Diagnostic.rendered` uses for the caret.

/// An error tied to a column of the line being read; the parser adds the file and line.
struct LineError: Error, Hashable, Sendable {
    var message: String
    var column: Int
    var hint: String?
    init(_ message: String, at column: Int, hint: String? = nil) {
        self.message = message
        self.column = column
        self.hint = hint
    }
}

/// One word or string of a line.
struct Token: Hashable, Sendable {
    /// As written in the source, quotes and escapes included.
    var raw: String
    /// The value: for a string, its text with the escapes resolved; for a word, `raw`.
    var text: String
    var isString: Bool
    /// 1-based column of the first character.
    var column: Int
    /// 1-based column just past the last character.
    var endColumn: Int

    /// A word with `=` in it is a `key=value` option; a string never is.
    var isOption: Bool { !isString && text.contains("=") }
    var optionKey: String { String(text.prefix { $0 != "=" }) }
    var optionValue: String {
        guard let equals = text.firstIndex(of: "=") else { return "" }
        return String(text[text.index(after: equals)...])
    }
    var optionValueColumn: Int { column + optionKey.count + 1 }
    /// A word that starts like a number (a size, an offset, a count).
    var looksNumeric: Bool { !isString && (text.first?.isASCII ?? false) && (text.first?.isNumber ?? false) }
}

/// A line split into tokens.
struct LexedLine: Hashable, Sendable {
    var tokens: [Token]
    /// The line without its comment and surrounding spaces: `Statement.text`.
    var text: String
    /// Where a missing word would go: one past the last token (1 for an empty line).
    var endColumn: Int
}

enum Lexer {
    /// Whitespace other than a space or a tab (a form feed, a no-break space, U+2028...): an error
    /// that names it, since it looks like a space or a line end and is neither here.
    static func invisible(_ c: Character, at column: Int) -> LineError {
        let code = c.unicodeScalars.first.map { String($0.value, radix: 16, uppercase: true) } ?? "?"
        let name: String
        switch c.unicodeScalars.first?.value ?? 0 {
        case 0x0B: name = "a vertical tab"
        case 0x0C: name = "a form feed"
        case 0x85: name = "a next-line character"
        case 0xA0: name = "a no-break space"
        case 0x2028: name = "a line separator"
        case 0x2029: name = "a paragraph separator"
        default: name = "a space character"
        }
        return LineError("\(name) (U+\(String(repeating: "0", count: max(0, 4 - code.count)) + code)) in the line: words are separated by spaces and tabs, and lines end with a newline",
                         at: column)
    }

    static func lex(_ line: String) throws(LineError) -> LexedLine {
        let chars = Array(line)
        var tokens: [Token] = []
        var i = 0
        scan: while i < chars.count {
            let c = chars[i]
            if c.isWhitespace {
                guard c == " " || c == "\t" else { throw invisible(c, at: i + 1) }
                i += 1
            } else if c == "#" {
                break scan
            } else if c == "\"" {
                let token = try string(chars, from: i)
                tokens.append(token)
                i = token.endColumn - 1
            } else {
                let start = i
                while i < chars.count, !chars[i].isWhitespace, chars[i] != "#" {
                    if chars[i] == "\"", i > start, chars[i - 1] == "=", !chars[start..<(i - 1)].contains("=") {
                        // KEY="a quoted value": an option whose value is a string (quiz choices).
                        let value = try string(chars, from: i)
                        let key = String(chars[start..<i])
                        tokens.append(Token(raw: key + value.raw, text: key + value.text, isString: false,
                                            column: start + 1, endColumn: value.endColumn))
                        i = value.endColumn - 1
                        continue scan
                    }
                    if chars[i] == "\"" {
                        throw LineError(
                            "unexpected '\"' inside a word", at: i + 1,
                            hint: "a string starts at the beginning of a word: put a space before the quote")
                    }
                    i += 1
                }
                let word = String(chars[start..<i])
                tokens.append(Token(raw: word, text: word, isString: false, column: start + 1, endColumn: i + 1))
            }
        }
        guard let first = tokens.first, let last = tokens.last else {
            return LexedLine(tokens: [], text: "", endColumn: 1)
        }
        let text = String(chars[(first.column - 1)..<(last.endColumn - 1)])
        return LexedLine(tokens: tokens, text: text, endColumn: last.endColumn)
    }

    /// A double-quoted string starting at `start`; `\"` and `\\` are the only escapes.
    private static func string(_ chars: [Character], from start: Int) throws(LineError) -> Token {
        var value = ""
        var i = start + 1
        while i < chars.count {
            let c = chars[i]
            if c == "\"" {
                let end = i + 1
                if end < chars.count, !chars[end].isWhitespace, chars[end] != "#" {
                    throw LineError("expected a space after the closing quote", at: end + 1)
                }
                let raw = String(chars[start..<end])
                return Token(raw: raw, text: value, isString: true, column: start + 1, endColumn: end + 1)
            }
            if c == "\\" {
                guard i + 1 < chars.count, chars[i + 1] == "\"" || chars[i + 1] == "\\" else {
                    let shown = i + 1 < chars.count ? "\\" + String(chars[i + 1]) : "\\"
                    throw LineError(
                        "unknown escape '\(shown)' in a string", at: i + 1,
                        hint: "the escapes are \\\" and \\\\")
                }
                value.append(chars[i + 1])
                i += 2
                continue
            }
            value.append(c)
            i += 1
        }
        throw LineError("unterminated string", at: start + 1, hint: "close the string with a '\"'")
    }
}
