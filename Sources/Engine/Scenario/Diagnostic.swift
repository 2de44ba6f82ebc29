// Errors in a script: where, what, and a hint. Rendered as the compiler-style
// `FILE:LINE:COL: error: MESSAGE`, then the line and a caret under the column.

public struct Diagnostic: Error, Hashable, Sendable {
    public var file: String
    public var location: SourceLocation
    public var message: String
    /// One line of help, such as the names that do exist. nil when there is nothing useful to say.
    public var hint: String?
    /// The whole source line, for the caret display. nil when the error is not tied to a line.
    public var sourceLine: String?

    public init(file: String, location: SourceLocation, message: String, hint: String? = nil, sourceLine: String? = nil) {
        self.file = file
        self.location = location
        self.message = message
        self.hint = hint
        self.sourceLine = sourceLine
    }

    /// The text a person sees, without a trailing newline.
    public var rendered: String {
        var out = "\(file):\(location.line):\(location.column): error: \(message)"
        if let sourceLine {
            // Control and separator characters would move the terminal's cursor: one `?` each, so the caret still lines up.
            out += "\n" + String(sourceLine.map { c -> Character in
                guard let v = c.unicodeScalars.first?.value, c != "\t" else { return c }
                return v < 0x20 || v == 0x7f || (0x80...0x9f).contains(v) || v == 0x2028 || v == 0x2029 ? "?" : c
            })
            // Keep tabs so the caret lines up under tab-indented text.
            let prefix = sourceLine.prefix(max(0, location.column - 1)).map { $0 == "\t" ? "\t" : " " as Character }
            out += "\n" + String(prefix) + "^"
        }
        if let hint { out += "\nhint: \(hint)" }
        return out
    }
}

/// Several diagnostics from one check; `umptui check` prints them all.
public struct Diagnostics: Error, Sendable {
    public var items: [Diagnostic]
    public init(_ items: [Diagnostic]) { self.items = items }
    public var rendered: String { items.map(\.rendered).joined(separator: "\n") }
}
