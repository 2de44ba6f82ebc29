// Writing scenario lines back out: what a recording and `:w` write. Statements keep the text they
// were written with (overrides fold into it), so a step prints as it was typed.

public enum ScriptText {
    /// The first words of a recording; files that start with them replay up to their last whole line.
    public static let recordingHeader = "# umptui recording"

    /// A `note` line for `text`, quoting as the lexer reads it back.
    public static func note(_ text: String) -> String {
        var out = "note \""
        for c in text {
            if c == "\\" || c == "\"" { out.append("\\") }
            out.append(c)
        }
        return out + "\""
    }

    /// A `wait` line for a pause of `ms` milliseconds, rounded to a tenth of a second.
    public static func wait(ms: Double) -> String {
        let tenths = Int((ms / 100).rounded())
        return "wait \(tenths / 10).\(tenths % 10)s"
    }

    /// A step as lines: its notes, its cues (when asked), the statement, then its expects.
    public static func lines(of step: ScriptStep, withCues: Bool) -> [String] {
        var out = step.notes.map(note)
        if let quiz = step.quiz { out.append(quiz.text) }
        if withCues { out += step.cues.map(\.text) }
        out.append(step.statement.text)
        out += step.expects.map(\.text)
        return out
    }

    /// Whether a source is a recording: its first line starts with the recorder's header.
    public static func isRecording(_ source: String) -> Bool {
        guard source.hasPrefix(recordingHeader) else { return false }
        guard let next = source.dropFirst(recordingHeader.count).first else { return true }
        return next == " " || next == "\t" || next.isNewline
    }

    /// A recording killed while a line was being written ends without a newline: its last line is
    /// cut off and is dropped (even when what is left happens to parse: `8M` cut to `8` would).
    /// Returns the source to run and the number of the dropped line, if one was dropped. Other
    /// sources come back unchanged.
    public static func wholeLines(of source: String) -> (source: String, cutLine: Int?) {
        guard isRecording(source), !source.isEmpty, let last = source.last, !last.isNewline else { return (source, nil) }
        let lines = scenarioSourceLines(source)
        guard let cut = source.lastIndex(where: \.isNewline) else { return ("", 1) }
        return (String(source[...cut]), lines.count)
    }
}
