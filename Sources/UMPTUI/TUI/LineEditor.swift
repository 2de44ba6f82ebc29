// The one-line editor behind `:` (a scenario line), `/` (find) and `g` (go to step):
// insert, delete, move, history with Up/Down, Tab completion through a closure.

struct LineEditor: Sendable {
    enum Purpose: Sendable { case command, find, goTo, compare }

    /// A mistake shown under the line with a caret.
    struct Problem: Sendable, Equatable, Error {
        var message: String
        /// 1-based column in `text`, or nil for no caret.
        var column: Int?
        var hint: String?
    }

    var purpose: Purpose
    private(set) var chars: [Character] = []
    private(set) var cursor = 0
    var problem: Problem?
    /// Completions offered by the last Tab, when more than one fits.
    var choices: [String] = []
    private var historyIndex: Int?
    private var draft: [Character] = []

    init(_ purpose: Purpose) { self.purpose = purpose }

    var text: String { String(chars) }

    var promptLabel: String {
        switch purpose {
        case .command: ":"
        case .find: "find: "
        case .goTo: "go to step: "
        case .compare: "compare with: "
        }
    }

    mutating func set(_ s: String) {
        chars = Array(s)
        cursor = chars.count
    }

    mutating func insert(_ c: Character) {
        chars.insert(c, at: cursor)
        cursor += 1
        problem = nil
        choices = []
    }

    mutating func backspace() {
        guard cursor > 0 else { return }
        chars.remove(at: cursor - 1)
        cursor -= 1
        problem = nil
    }

    mutating func delete() {
        guard cursor < chars.count else { return }
        chars.remove(at: cursor)
        problem = nil
    }

    mutating func left() { cursor = max(0, cursor - 1) }
    mutating func right() { cursor = min(chars.count, cursor + 1) }
    mutating func home() { cursor = 0 }
    mutating func end() { cursor = chars.count }

    /// Up (older) or Down (newer) through `history`, keeping what was typed as the newest entry.
    mutating func browse(_ history: [String], older: Bool) {
        guard !history.isEmpty else { return }
        if historyIndex == nil {
            guard older else { return }
            draft = chars
            historyIndex = history.count
        }
        var i = (historyIndex ?? history.count) + (older ? -1 : 1)
        i = max(0, min(history.count, i))
        historyIndex = i
        chars = i == history.count ? draft : Array(history[i])
        cursor = chars.count
        problem = nil
    }

    /// Completes the word before the cursor from `candidates(wordsBefore, partial)`.
    mutating func complete(_ candidates: ([String], String) -> [String]) {
        let before = String(chars[..<cursor])
        let startOfWord = before.lastIndex(of: " ").map { before.index(after: $0) } ?? before.startIndex
        let partial = String(before[startOfWord...])
        let words = before[..<startOfWord].split(separator: " ").map(String.init)
        let matches = candidates(words, partial).filter { $0.hasPrefix(partial) }
        guard !matches.isEmpty else {
            choices = []
            return
        }
        let common = matches.dropFirst().reduce(matches[0]) { a, b in String(zip(a, b).prefix { $0 == $1 }.map(\.0)) }
        var addition = String(common.dropFirst(partial.count))
        if matches.count == 1 { addition += " " }
        for c in addition { chars.insert(c, at: cursor); cursor += 1 }
        choices = matches.count > 1 ? matches : []
        problem = nil
    }
}
