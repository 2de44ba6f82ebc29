// What `umptui sweep` runs: the values of each `--vary KEY=...` (lists, ranges, bracketed values),
// their cartesian product in a stable order, and the metrics each run reports.

import Engine

/// A `--vary` argument that cannot be read: said with the argument and a caret, exit 2.
struct SweepError: Error, CustomStringConvertible {
    var description: String

    init(_ argument: String, _ message: String, column: Int? = nil, hint: String? = nil) {
        var s = "--vary \(argument): error: \(message)"
        if let column {
            s += "\n    \(argument)\n    " + String(repeating: " ", count: max(0, column - 1)) + "^"
        }
        if let hint { s += "\n  hint: \(hint)" }
        description = s
    }

    init(message: String) { description = message }
}

/// One `--vary KEY=V1,V2,...`: the override key and its values, as text for `--set`.
struct Variation: Equatable {
    var key: String
    var values: [String]

    /// The most values one `--vary` may give, and the most runs a sweep may make.
    static let maxValues = 10_000
    static let maxRuns = 100_000

    /// Reads `KEY=V1,V2`, `KEY=A..B*K`, `KEY=A..B+K` and `KEY=[a,b],[c]` (or a mix of them).
    init(_ argument: String) throws(SweepError) {
        guard let eq = argument.firstIndex(of: "=") else {
            throw SweepError(argument, "expected KEY=V1,V2,... (e.g. nic.iotlb=16,64 or nic.iotlb=16..1024*2)", column: argument.count + 1)
        }
        key = String(argument[..<eq])
        guard key.contains("."), !key.hasPrefix("."), !key.hasSuffix(".") else {
            throw SweepError(argument, "expected TARGET.KEY before '=', got '\(key)'", column: 1,
                             hint: "the keys --set takes: machine.ram, nic.iotlb, app.memlock, ...")
        }
        let list = String(argument[argument.index(after: eq)...])
        let listColumn = key.count + 2
        var values: [String] = []
        for (item, offset) in try Variation.split(list, argument: argument, column: listColumn) {
            if let range = try Variation.range(item, argument: argument, column: listColumn + offset) {
                values += range
            } else {
                values.append(item)
            }
            if values.count > Variation.maxValues {
                throw SweepError(argument, "more than \(Variation.maxValues) values", column: listColumn + offset)
            }
        }
        guard !values.isEmpty else { throw SweepError(argument, "no values after '='", column: listColumn) }
        self.values = values
    }

    /// The items of a list: split at commas outside brackets; a bracketed item loses its brackets.
    /// Each with its 0-based offset in `list`.
    private static func split(_ list: String, argument: String, column: Int) throws(SweepError) -> [(String, Int)] {
        var out: [(String, Int)] = []
        var current = "", start = 0, depth = 0, bracketed = false
        for (i, c) in list.enumerated() {
            switch c {
            case "[" where current.isEmpty && depth == 0:
                depth = 1
                bracketed = true
                continue
            case "]" where depth == 1:
                depth = 0
                continue
            case "," where depth == 0:
                guard !current.isEmpty || bracketed else {
                    throw SweepError(argument, "an empty value", column: column + i)
                }
                out.append((current, start))
                current = ""
                bracketed = false
                start = i + 1
                continue
            default:
                if depth == 0 && bracketed {
                    throw SweepError(argument, "text after ']': a bracketed value ends its item", column: column + i)
                }
            }
            current.append(c)
        }
        if depth != 0 { throw SweepError(argument, "'[' is never closed", column: column + list.count) }
        guard !current.isEmpty || bracketed else { throw SweepError(argument, "an empty value", column: column + list.count) }
        out.append((current, start))
        return out
    }

    /// `A..B*K` (multiply by K) or `A..B+K` (add K), end inclusive; nil when `item` is no range.
    private static func range(_ item: String, argument: String, column: Int) throws(SweepError) -> [String]? {
        guard let dots = item.range(of: "..") else { return nil }
        let a = String(item[..<dots.lowerBound])
        let rest = item[dots.upperBound...]
        guard let opIndex = rest.firstIndex(where: { $0 == "*" || $0 == "+" }) else {
            throw SweepError(argument, "a range needs a step: A..B*K multiplies, A..B+K adds", column: column + item.count,
                             hint: "e.g. 16..1024*2 or 1M..8M+1M")
        }
        let b = String(rest[..<opIndex])
        let k = String(rest[rest.index(after: opIndex)...])
        let multiply = rest[opIndex] == "*"
        guard !a.isEmpty else { throw SweepError(argument, "a range needs a start: A..B*K or A..B+K", column: column) }
        let bColumn = column + a.count + 2
        let kColumn = bColumn + b.count + 1
        guard let lo = parseSize(a) else { throw SweepError(argument, "'\(a)' is not a number or a size", column: column) }
        guard let hi = parseSize(b) else { throw SweepError(argument, "'\(b)' is not a number or a size", column: bColumn) }
        guard let step = parseSize(k) else { throw SweepError(argument, "'\(k)' is not a number or a size", column: kColumn) }
        guard lo <= hi else { throw SweepError(argument, "the range runs backwards: \(a) is more than \(b)", column: column) }
        if multiply {
            guard step >= 2 else { throw SweepError(argument, "a range that multiplies needs a factor of 2 or more", column: kColumn) }
            guard lo >= 1 else { throw SweepError(argument, "a range that multiplies cannot start at 0", column: column) }
        } else {
            guard step >= 1 else { throw SweepError(argument, "a range that adds needs a step of 1 or more", column: kColumn) }
        }
        let sized = [a, b, k].contains { s in s.last.map { "KkMmGgTt".contains($0) } ?? false }
        var out: [String] = []
        var v = lo
        while v <= hi {
            out.append(sized ? formatSizeShort(v) : String(v))
            if out.count > maxValues { throw SweepError(argument, "the range gives more than \(maxValues) values", column: column) }
            let (next, overflow) = multiply ? v.multipliedReportingOverflow(by: step) : v.addingReportingOverflow(step)
            if overflow { break }
            v = next
        }
        return out
    }
}

/// Every combination of the variations, the first `--vary` slowest: each is a list of overrides.
func combinations(_ variations: [Variation]) -> [[String]] {
    var out: [[String]] = [[]]
    for v in variations {
        out = out.flatMap { prefix in v.values.map { prefix + ["\(v.key)=\($0)"] } }
    }
    return out
}

/// The metrics a sweep reports without `--metric`: per device misses, hit rate, stall and IOPTEs by
/// size (the sizes any run used, largest first); per process locked_vm; the last outcome.
/// `ioptes_*` stands for the sizes, filled in once the runs are done.
func defaultMetrics(_ script: Script) -> [String] {
    var devices: [String] = [], processes: [String] = []
    for st in script.statements {
        switch st.kind {
        case let .device(d): devices.append(d.name)
        case let .process(p): processes.append(p.name)
        default: break
        }
    }
    return devices.flatMap { ["\($0).misses", "\($0).hit_rate", "\($0).stall_ns", "\($0).ioptes_*"] }
        + processes.map { "\($0).locked_vm" } + ["outcome"]
}
