// The values written in a scenario: sizes, numbers, durations, percentages, names and choices.
// The parser and `--set` overrides read values with these same functions.

/// A bad value. `offset` is in Characters from the value's first character, so a caret can
/// point inside a list such as `pagesizes=4K,3K`.
struct ValueError: Error, Hashable, Sendable {
    var message: String
    var hint: String?
    var offset: Int
    init(_ message: String, hint: String? = nil, offset: Int = 0) {
        self.message = message
        self.hint = hint
        self.offset = offset
    }
}

enum Literal {
    static let kib: UInt64 = 1024
    static let mib: UInt64 = 1024 * 1024
    static let gib: UInt64 = 1024 * 1024 * 1024
    static let tib: UInt64 = 1024 * 1024 * 1024 * 1024

    static let nameRule = "a name starts with a letter or '_' and goes on with letters, digits, '_' or '-'"

    /// `[a-zA-Z_][a-zA-Z0-9_-]*`
    static func isName(_ s: String) -> Bool {
        guard let first = s.first, first.isASCII, first.isLetter || first == "_" else { return false }
        return s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }

    /// `4096`, `0x1000`, `4K`, `64k`, `2M`, `1G`, `1T`, with `_` between digits. Binary units.
    static func size(_ s: String) throws(ValueError) -> UInt64 {
        let bad = ValueError("expected a size like 4K, 2M or 0x1000, got '\(s)'")
        var digits = Substring(s)
        var radix: UInt64 = 10
        var unit: UInt64 = 1
        if s.hasPrefix("0x") || s.hasPrefix("0X") {
            digits = digits.dropFirst(2)
            radix = 16
        } else if let last = s.last, let multiplier = unitMultiplier(last) {
            digits = digits.dropLast()
            unit = multiplier
        }
        switch number(digits, radix: radix) {
        case .bad: throw bad
        case .overflow: throw ValueError("size '\(s)' is too large for 64 bits")
        case .value(let v):
            let (bytes, overflow) = v.multipliedReportingOverflow(by: unit)
            if overflow { throw ValueError("size '\(s)' is too large for 64 bits") }
            return bytes
        }
    }

    /// A size or offset inside one process's memory: at most 64 TiB (x86-64 gives a process 128 TiB
    /// of addresses), so address arithmetic on it cannot overflow.
    static func addressSpaceSize(_ s: String) throws(ValueError) -> UInt64 {
        let v = try size(s)
        guard v <= 1 << 46 else { throw ValueError("'\(s)' is larger than a process's address space: at most 64T") }
        return v
    }

    /// An IOVA: below 2^57, the most a five-level IOMMU table translates.
    static func iova(_ s: String) throws(ValueError) -> UInt64 {
        let v = try size(s)
        guard v < 1 << 57 else { throw ValueError("IOVA '\(s)' is past the largest IOMMU address space (57 bits)") }
        return v
    }

    /// A plain count: decimal or `0x` hex, `_` between digits, no units.
    static func count(_ s: String) throws(ValueError) -> UInt64 {
        let hex = s.hasPrefix("0x") || s.hasPrefix("0X")
        switch number(hex ? Substring(s).dropFirst(2) : Substring(s), radix: hex ? 16 : 10) {
        case .bad: throw ValueError("expected a number, got '\(s)'")
        case .overflow: throw ValueError("number '\(s)' is too large for 64 bits")
        case .value(let v): return v
        }
    }

    /// A count that must lie in `range`; `what` names it in the message.
    static func count(_ s: String, _ what: String, in range: ClosedRange<Int>) throws(ValueError) -> Int {
        let v = try count(s)
        guard v <= UInt64(range.upperBound), Int(v) >= range.lowerBound else {
            throw ValueError("\(what) must be between \(range.lowerBound) and \(range.upperBound), got '\(s)'")
        }
        return Int(v)
    }

    /// `500ms`, `1.5s`, `2s`: milliseconds.
    static func duration(_ s: String) throws(ValueError) -> Double {
        let bad = ValueError("expected a duration like 500ms or 1.5s, got '\(s)'")
        let (number, scale): (Substring, Double) =
            s.hasSuffix("ms") ? (Substring(s).dropLast(2), 1) : s.hasSuffix("s") ? (Substring(s).dropLast(), 1000) : ("", 0)
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        guard scale > 0, (1...2).contains(parts.count),
              parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }),
              let value = Double(number), value.isFinite, (value * scale).isFinite
        else { throw bad }
        guard value * scale <= 3_600_000 else { throw ValueError("a duration must be at most an hour (3600s), got '\(s)'") }
        return value * scale
    }

    /// `0` to `100`, optionally followed by `%`.
    static func percent(_ s: String, _ what: String) throws(ValueError) -> Int {
        let digits = s.hasSuffix("%") ? String(s.dropLast()) : s
        let bad = ValueError("\(what) must be a percentage from 0 to 100, got '\(s)'")
        guard case .value(let v) = number(Substring(digits), radix: 10), v <= 100 else { throw bad }
        return Int(v)
    }

    /// One of an enum's raw values.
    static func choice<E: RawRepresentable & CaseIterable>(_ s: String, for option: String) throws(ValueError) -> E
    where E.RawValue == String {
        if let value = E(rawValue: s) { return value }
        throw unknownChoice(s, for: option, among: E.allCases.map(\.rawValue))
    }

    static func unknownChoice(_ s: String, for option: String, among choices: [String]) -> ValueError {
        ValueError("unknown value '\(s)' for \(option)",
                   hint: Suggest.prefix(s, among: choices) + "\(option) is one of " + choices.joined(separator: ", "))
    }

    private static func unitMultiplier(_ c: Character) -> UInt64? {
        switch c {
        case "K", "k": kib
        case "M", "m": mib
        case "G", "g": gib
        case "T", "t": tib
        default: nil
        }
    }

    private enum Number { case value(UInt64), bad, overflow }

    /// Digits in `radix` with single `_` separators between them.
    private static func number(_ s: Substring, radix: UInt64) -> Number {
        guard let first = s.first, first != "_", s.last != "_", !s.contains("__") else { return .bad }
        var digits: [UInt64] = []
        for c in s where c != "_" {
            guard c.isASCII, let d = c.hexDigitValue, UInt64(d) < radix else { return .bad }
            digits.append(UInt64(d))
        }
        var value: UInt64 = 0
        for d in digits {
            let (shifted, o1) = value.multipliedReportingOverflow(by: radix)
            let (sum, o2) = shifted.addingReportingOverflow(d)
            if o1 || o2 { return .overflow }
            value = sum
        }
        return .value(value)
    }
}

/// A size as the language writes it (`4096`, `0x1000`, `4K`, `2M`), or nil: for the command line's
/// own values (sweep ranges).
public func parseSize(_ s: String) -> UInt64? { try? Literal.size(s) }
