// `umptui run --set TARGET.KEY=VALUE`: change one option of a declaration before the run.
// Values are read by the same option tables as the parser, so both accept the same text.

/// Applies `--set` overrides in order (a later one wins). `TARGET` is `machine` (a `machine`
/// statement is inserted at the top when the script has none) or a declared process or device.
/// All bad overrides are reported together, with file `--set`, line 0 and the column in the
/// override; on error `script` is left unchanged.
public func applyOverrides(_ overrides: [String], to script: inout Script) throws(Diagnostics) {
    var result = script
    var errors: [Diagnostic] = []
    for override in overrides {
        do { try Override(text: override).apply(to: &result) } catch { errors.append(error) }
    }
    guard errors.isEmpty else { throw Diagnostics(errors) }
    script = result
}

/// What is wrong with the override `text` (`TARGET.KEY=VALUE`) for these declarations, or nil;
/// the column is in `text`. The checker's test of a `set` line.
func overrideProblem(_ text: String, declarations: [Statement]) -> Diagnostic? {
    var script = Script(fileName: "set", statements: declarations)
    do { try Override(text: text).apply(to: &script) } catch { return error }
    return nil
}

/// The options of a `machine` line as overrides: `machine ram=1G thp=always` gives
/// `machine.ram=1G` and `machine.thp=always` (the prompt's `:machine`).
public func machineOverrides(_ line: String) -> [String] {
    guard let tokens = try? Lexer.lex(line).tokens, tokens.first?.raw == "machine" else { return [] }
    return tokens.dropFirst().filter(\.isOption).map { "machine.\($0.optionKey)=\($0.optionValue)" }
}

/// What is wrong with `unset TARGET.KEY` for these declarations (no such target, no such option),
/// or nil; the column is in `key`.
func unsetProblem(_ key: String, declarations: [Statement]) -> Diagnostic? {
    var script = Script(fileName: "unset", statements: declarations)
    do { try Override(text: key, keyOnly: true).apply(to: &script) } catch { return error }
    return nil
}

private struct Override {
    let text: String
    /// `unset TARGET.KEY`: only the target and the key are checked; nothing is set.
    var keyOnly = false

    func apply(to script: inout Script) throws(Diagnostic) {
        let example = "write TARGET.KEY=VALUE, e.g. --set machine.ram=1G or --set gpu.iotlb=16"
        let equals: String.Index
        if keyOnly {
            equals = text.endIndex
        } else if let e = text.firstIndex(of: "=") {
            equals = e
        } else {
            throw error("expected TARGET.KEY=VALUE, got '\(text)'", at: 1, hint: example)
        }
        let lhs = text[..<equals]
        guard let dot = lhs.firstIndex(of: "."), dot != lhs.startIndex else {
            throw error(keyOnly ? "expected TARGET.KEY, got '\(lhs)'" : "expected TARGET.KEY before '=', got '\(lhs)'", at: 1,
                        hint: keyOnly ? "e.g. unset machine.ram or unset gpu.iotlb" : example)
        }
        let target = String(lhs[..<dot])
        let key = String(lhs[lhs.index(after: dot)...])
        let value = keyOnly ? "" : String(text[text.index(after: equals)...])
        let keyColumn = target.count + 2
        let valueColumn = lhs.count + 2
        guard keyOnly || !value.isEmpty else { throw error("option '\(key)' needs a value", at: valueColumn) }
        let site = Site(key: key, keyColumn: keyColumn, value: value, valueColumn: valueColumn)

        if target == "machine" {
            if !script.statements.contains(where: { if case .machine = $0.kind { true } else { false } }) {
                script.statements.insert(
                    Statement(kind: .machine(MachineDecl()), location: SourceLocation(line: 0, column: 1), text: "machine"), at: 0)
            }
        }
        for (index, statement) in script.statements.enumerated() {
            var updated = statement
            switch statement.kind {
            case .machine(var d) where target == "machine":
                try set(site, &d, DeclarationOptions.machine, DeclarationOptions.machineShape)
                updated.kind = .machine(d)
            case .process(var d) where d.name == target:
                try set(site, &d, DeclarationOptions.process, DeclarationOptions.processShape)
                updated.kind = .process(d)
            case .device(var d) where d.name == target:
                try set(site, &d, DeclarationOptions.device, DeclarationOptions.deviceShape)
                if let (_, problem) = DeclarationOptions.consistency(of: d) {
                    throw error(problem.message, at: valueColumn, hint: problem.hint)
                }
                updated.kind = .device(d)
            default:
                continue
            }
            updated.text = Self.replacingOption(key, with: "\(key)=\(value)", in: statement.text)
            script.statements[index] = updated
            return
        }
        throw unknownTarget(target, in: script)
    }

    private struct Site {
        var key: String
        var keyColumn: Int
        var value: String
        var valueColumn: Int
    }

    private func set<Decl>(_ site: Site, _ decl: inout Decl, _ table: [DeclarationOption<Decl>], _ shape: CommandShape)
        throws(Diagnostic) {
        guard let option = DeclarationOptions.option(site.key, in: table) else {
            let (message, hint) = shape.unknownOption(site.key)
            throw error(message, at: site.keyColumn, hint: hint)
        }
        if keyOnly { return }
        do {
            try option.set(&decl, site.value)
        } catch {
            throw self.error(error.message, at: site.valueColumn + error.offset, hint: error.hint)
        }
    }

    private func unknownTarget(_ target: String, in script: Script) -> Diagnostic {
        let names = script.statements.compactMap { s -> String? in
            switch s.kind {
            case .process(let d): d.name
            case .device(let d): d.name
            default: nil
            }
        }
        let targets = ["machine"] + names
        return error("no process or device named '\(target)' is declared", at: 1,
                     hint: Suggest.prefix(target, among: targets) + "targets: " + targets.joined(separator: ", "))
    }

    private func error(_ message: String, at column: Int, hint: String? = nil) -> Diagnostic {
        Diagnostic(file: "--set", location: SourceLocation(line: 0, column: column), message: message, hint: hint,
                   sourceLine: text)
    }

    /// The statement text with `key=...` replaced by `option`, or `option` appended.
    static func replacingOption(_ key: String, with option: String, in text: String) -> String {
        guard let tokens = try? Lexer.lex(text).tokens,
              let old = tokens.first(where: { $0.isOption && $0.optionKey == key }) else {
            return text + " " + option
        }
        let chars = Array(text)
        return String(chars[..<(old.column - 1)]) + option + String(chars[(old.endColumn - 1)...])
    }
}
