// Sorts the words after a command into positional arguments, flags and `key=value` options,
// following one rule for every statement: positionals first, then flags and options in any order.

/// The shape of a command's arguments, for splitting and for messages.
struct CommandShape: Sendable {
    /// The verb or keyword, as written.
    var name: String
    /// How messages name it: `'malloc'`, `device`.
    var subject: String
    var usage: String
    /// What the required positionals are, for `'malloc' needs a buffer name and a size`.
    var needs: String = ""
    var required = 0
    /// Optional positionals after the required ones; only words that start with a digit fill them.
    var optional = 0
    var flags: [String] = []
    var options: [String] = []
}

extension CommandShape {
    /// The message and hint for an option this command does not have (also used by `--set`).
    func unknownOption(_ key: String) -> (message: String, hint: String) {
        ("unknown option '\(key)' for \(subject)",
         Suggest.prefix(key, among: options) + "\(name) options: " + options.joined(separator: ", "))
    }
}

/// The arguments of one command, split.
struct Arguments: Sendable {
    var positionals: [Token]
    var flags: [String: Token]
    var options: [String: Token]
    /// Options in the order written, so values are read (and reported) left to right.
    var orderedOptions: [Token]
    /// Where a missing positional would go: the first word after the positionals, or the end of the line.
    var missingColumn: Int

    func has(_ flag: String) -> Bool { flags[flag] != nil }

    static func split(_ tokens: ArraySlice<Token>, as shape: CommandShape, endColumn: Int) throws(LineError) -> Arguments {
        var rest = tokens[...]
        var positionals: [Token] = []
        while positionals.count < shape.required, let next = rest.first, !next.isOption {
            positionals.append(next)
            rest = rest.dropFirst()
        }
        let missingColumn = rest.first?.column ?? endColumn
        if positionals.count < shape.required {
            throw LineError("'\(shape.name)' needs \(shape.needs)", at: missingColumn, hint: "usage: \(shape.usage)")
        }
        while positionals.count < shape.required + shape.optional, let next = rest.first,
              next.looksNumeric, !next.isOption {
            positionals.append(next)
            rest = rest.dropFirst()
        }
        var result = Arguments(positionals: positionals, flags: [:], options: [:], orderedOptions: [],
                               missingColumn: rest.first?.column ?? endColumn)
        for token in rest {
            if token.isOption {
                try result.addOption(token, shape)
            } else if !token.isString, shape.flags.contains(token.text) {
                guard result.flags[token.text] == nil else {
                    throw LineError("'\(token.text)' is given twice", at: token.column)
                }
                result.flags[token.text] = token
            } else if shape.flags.isEmpty || token.looksNumeric || token.isString {
                throw LineError("too many arguments for \(shape.subject)", at: token.column, hint: "usage: \(shape.usage)")
            } else {
                throw LineError(
                    "unknown flag '\(token.raw)' for \(shape.subject)", at: token.column,
                    hint: Suggest.prefix(token.text, among: shape.flags) + "usage: \(shape.usage)")
            }
        }
        return result
    }

    private mutating func addOption(_ token: Token, _ shape: CommandShape) throws(LineError) {
        let key = token.optionKey
        guard !key.isEmpty else { throw LineError("expected KEY=VALUE, got '\(token.raw)'", at: token.column) }
        guard shape.options.contains(key) else {
            if shape.options.isEmpty {
                throw LineError("\(shape.subject) takes no options", at: token.column, hint: "usage: \(shape.usage)")
            }
            let (message, hint) = shape.unknownOption(key)
            throw LineError(message, at: token.column, hint: hint)
        }
        guard options[key] == nil else { throw LineError("option '\(key)' is given twice", at: token.column) }
        guard !token.optionValue.isEmpty else {
            throw LineError("option '\(key)' needs a value", at: token.optionValueColumn)
        }
        options[key] = token
        orderedOptions.append(token)
    }
}
