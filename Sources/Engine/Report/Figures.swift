// The headline figures of a run: what a what-if panel shows before and after a change, what compare
// sets side by side and what a sweep tabulates. Each figure is named as an `expect` key is
// (`nic.misses`, `app.locked_vm`, `machine.free`), plus a few that only a comparison needs:
// `DEV.hit_rate`, `DEV.ioptes_4K` (IOPTEs of one page size), `machine.free_blocks_o9` (free buddy
// blocks of one order), `outcome` (the last step's) and `failed_expects`.

/// How a figure is counted, for formatting and for saying how two values differ.
public enum FigureUnit: Sendable, Equatable {
    case count, bytes, nanoseconds, percent, word
}

public enum FigureValue: Sendable, Equatable {
    case integer(Int)
    /// A percentage; nil when there is nothing to divide by (no DMA yet).
    case percent(Double?)
    case word(String)

    /// For CSV and the table: integers and words as they are, a percentage with one decimal.
    public var plain: String {
        switch self {
        case let .integer(n): String(n)
        case let .percent(p): p.map(percentText) ?? "-"
        case let .word(w): w
        }
    }

    public var number: Double? {
        switch self {
        case let .integer(n): Double(n)
        case let .percent(p): p
        case .word: nil
        }
    }
}

public struct Figure: Sendable, Equatable {
    /// The metric name: `nic.misses`.
    public var name: String
    /// Whose figure it is (a device, a process, `machine`), or "" for the run's own.
    public var subject: String
    /// What is counted, as a phrase: "IOTLB misses", "4K IOPTEs", "locked_vm".
    public var noun: String
    public var unit: FigureUnit
    public var value: FigureValue

    public init(_ name: String, subject: String, noun: String, unit: FigureUnit, value: FigureValue) {
        self.name = name
        self.subject = subject
        self.noun = noun
        self.unit = unit
        self.value = value
    }

    /// "nic IOTLB misses".
    public var label: String { subject.isEmpty ? noun : "\(subject) \(noun)" }

    /// The value as a person reads it: 14976, 8M, 4.5 ms, 99.7%, ENOMEM.
    public var text: String { Figure.format(value, unit) }

    public static func format(_ v: FigureValue, _ unit: FigureUnit) -> String {
        switch (v, unit) {
        case let (.integer(n), .bytes): n < 0 ? "-" + formatSizeCompact(UInt64(-n)) : formatSizeCompact(UInt64(n))
        case let (.integer(n), .nanoseconds): n < 0 ? "-" + formatNs(-n) : formatNs(n)
        case let (.percent(p), _): p.map { percentText($0) + "%" } ?? "-"
        default: v.plain
        }
    }
}

/// One figure that differs between two runs (or before and after a change).
public struct FigureDifference: Sendable, Equatable {
    public var name: String
    public var subject: String
    public var noun: String
    public var unit: FigureUnit
    public var a: FigureValue
    public var b: FigureValue

    public var label: String { subject.isEmpty ? noun : "\(subject) \(noun)" }

    /// "IOTLB misses" → "IOTLB miss", "4K IOPTEs set" → "4K IOPTE set": for a difference of one.
    static func singular(_ noun: String) -> String {
        let one = ["misses": "miss", "hits": "hit", "expects": "expect", "IOPTEs": "IOPTE", "faults": "fault", "blocks": "block"]
        return noun.split(separator: " ", omittingEmptySubsequences: false).map { one[String($0)] ?? String($0) }.joined(separator: " ")
    }

    /// B less A, for numbers.
    public var delta: Double? {
        guard let x = a.number, let y = b.number else { return nil }
        return y - x
    }

    /// How B differs from A, in words: "14976 more IOTLB misses", "+4.5 ms stall", "ok → ENOMEM".
    public var phrase: String {
        switch (unit, a, b) {
        case let (.count, .integer(x), .integer(y)):
            return "\(abs(y - x)) \(y > x ? "more" : "fewer") \(abs(y - x) == 1 ? FigureDifference.singular(noun) : noun)"
        case let (.bytes, .integer(x), .integer(y)):
            return (y > x ? "+" : "-") + formatSizeCompact(UInt64(abs(y - x))) + " " + noun
        case let (.nanoseconds, .integer(x), .integer(y)):
            return (y > x ? "+" : "-") + formatNs(abs(y - x)) + " " + noun
        default:
            return "\(noun) \(Figure.format(a, unit)) → \(Figure.format(b, unit))"
        }
    }
}

public enum Figures {
    /// The figures of both sides in one order: `a`'s, with each one only `b` has placed after the
    /// last of `a`'s with the same subject (B's 2M IOPTEs next to A's 4K ones).
    public static func union(_ a: [Figure], _ b: [Figure]) -> [Figure] {
        var out = a
        let names = Set(a.map(\.name))
        // A figure of a family (`nic.ioptes_2M`, `machine.free_blocks_o3`) joins its family.
        func family(_ n: String) -> Substring { n.lastIndex(of: "_").map { n[..<$0] } ?? Substring(n) }
        for f in b where !names.contains(f.name) {
            let at = (out.lastIndex { family($0.name) == family(f.name) } ?? out.lastIndex { $0.subject == f.subject })
                .map { $0 + 1 } ?? out.count
            out.insert(f, at: at)
        }
        return out
    }

    /// Every figure of `a` and `b` whose values differ, in the order of `union`.
    /// A count, size or duration one side lacks counts as 0 there (no 2M IOPTEs is 0 of them).
    public static func differences(_ a: [Figure], _ b: [Figure]) -> [FigureDifference] {
        var byA: [String: Figure] = [:], byB: [String: Figure] = [:]
        for f in a { byA[f.name] = f }
        for f in b { byB[f.name] = f }
        var out: [FigureDifference] = []
        func absent(_ f: Figure) -> FigureValue {
            switch f.unit {
            case .count, .bytes, .nanoseconds: .integer(0)
            case .percent: .percent(nil)
            case .word: .word("-")
            }
        }
        for f in union(a, b) {
            let x = byA[f.name]?.value ?? absent(f), y = byB[f.name]?.value ?? absent(f)
            if x != y { out.append(FigureDifference(name: f.name, subject: f.subject, noun: f.noun, unit: f.unit, a: x, b: y)) }
        }
        return out
    }

    /// The differences as one line: "B: 14976 more IOTLB misses, +4.5 ms stall" (each subject named
    /// when more than one differs: "B: nic 64 more IOTLB misses; app +8M locked_vm").
    public static func summary(_ diffs: [FigureDifference], side: String = "B", limit: Int = 4) -> String {
        guard !diffs.isEmpty else { return "\(side): the same" }
        var subjects: [String] = []
        var phrases: [String: [String]] = [:]
        for d in diffs.prefix(limit) {
            if phrases[d.subject] == nil { subjects.append(d.subject) }
            phrases[d.subject, default: []].append(d.phrase)
        }
        let named = subjects.count > 1
        let parts = subjects.map { s in
            (named && !s.isEmpty ? s + " " : "") + (phrases[s] ?? []).joined(separator: ", ")
        }
        let more = diffs.count > limit ? "; \(diffs.count - limit) more" : ""
        return "\(side): " + parts.joined(separator: "; ") + more
    }
}

extension Engine {
    /// The headline figures of the state now: per device, IOPTEs by page size, IOTLB hits, misses,
    /// hit rate, stall time and IOMMU faults; per live process, RSS, locked_vm and pinned_vm; the
    /// machine's free memory and free buddy blocks by order; the last step's outcome and how many
    /// expects failed so far.
    public func figures(last: StepRecord?, failedExpects: Int) -> [Figure] {
        var out: [Figure] = []
        for d in state.devices {
            var bySize: [UInt64: Int] = [:]
            for e in d.ioptes.values { bySize[e.size, default: 0] += 1 }
            for (size, count) in bySize.sorted(by: { $0.key > $1.key }) {
                let s = formatSizeShort(size)
                out.append(Figure("\(d.name).ioptes_\(s)", subject: d.name, noun: "\(s) IOPTEs", unit: .count, value: .integer(count)))
            }
            out.append(contentsOf: Engine.deviceFigures(d.name, d.stats))
        }
        for p in state.processes where p.meta.alive {
            let m = p.meta
            out.append(Figure("\(m.name).rss", subject: m.name, noun: "rss", unit: .bytes, value: .integer(m.rssPages << 12)))
            out.append(Figure("\(m.name).locked_vm", subject: m.name, noun: "locked_vm", unit: .bytes, value: .integer(m.lockedVMPages << 12)))
            out.append(Figure("\(m.name).pinned_vm", subject: m.name, noun: "pinned_vm", unit: .bytes, value: .integer(m.pinnedVMPages << 12)))
        }
        out.append(Figure("machine.free", subject: "machine", noun: "free", unit: .bytes, value: .integer(state.phys.freeFrames << 12)))
        for (order, n) in state.phys.freeBlocks.enumerated() {
            out.append(Figure("machine.free_blocks_o\(order)", subject: "machine", noun: "free order-\(order) blocks", unit: .count, value: .integer(n)))
        }
        out.append(Figure("outcome", subject: "", noun: "outcome", unit: .word, value: .word(last?.outcome.word ?? "none")))
        out.append(Figure("failed_expects", subject: "", noun: "failed expects", unit: .count, value: .integer(failedExpects)))
        return out
    }

    /// What one step did, as figures: how each device's counters moved, the IOPTEs it set by size,
    /// the pages each kernel function handled, and its outcome. Compare's per-step summary.
    public func stepFigures(_ r: StepRecord) -> [Figure] {
        var out: [Figure] = []
        for (d, delta) in r.deviceDeltas.sorted(by: { $0.key < $1.key }) {
            let name = d < state.devices.count ? state.devices[d].name : "device\(d)"
            out.append(contentsOf: Engine.deviceFigures(name, delta))
        }
        for (size, n) in r.events.ioptesBySize {
            let s = formatSizeShort(size)
            out.append(Figure("ioptes_set_\(s)", subject: "", noun: "\(s) IOPTEs set", unit: .count, value: .integer(n)))
        }
        for (name, n) in r.counts where !name.hasPrefix("iopte:") {
            out.append(Figure("count.\(name)", subject: "", noun: name, unit: .count, value: .integer(n)))
        }
        out.append(Figure("outcome", subject: "", noun: "outcome", unit: .word, value: .word(r.outcome.word)))
        return out
    }

    private static func deviceFigures(_ name: String, _ s: DeviceStats) -> [Figure] {
        // Misses and stall first: what a summary line leads with.
        var out = [
            Figure("\(name).misses", subject: name, noun: "IOTLB misses", unit: .count, value: .integer(s.misses)),
            Figure("\(name).stall_ns", subject: name, noun: "stall", unit: .nanoseconds, value: .integer(s.stallNs)),
            Figure("\(name).hit_rate", subject: name, noun: "hit rate", unit: .percent,
                   value: .percent(s.accesses > 0 ? Double(s.hits) * 100 / Double(s.accesses) : nil)),
            Figure("\(name).hits", subject: name, noun: "IOTLB hits", unit: .count, value: .integer(s.hits)),
        ]
        if s.faults > 0 { out.append(Figure("\(name).faults", subject: name, noun: "IOMMU faults", unit: .count, value: .integer(s.faults))) }
        return out
    }

    /// The value of metric `name` now: a headline figure, or any `expect` key written TARGET.KEY
    /// (`nic.walks`, `app.buf.present`, `last.errno`). Nil when the target does not exist now.
    public func metric(_ name: String, last: StepRecord?, failedExpects: Int) -> FigureValue? {
        if let f = figures(last: last, failedExpects: failedExpects).first(where: { $0.name == name }) { return f.value }
        // A page size with no IOPTEs: 0 of them (every order's free blocks are figures).
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 2, state.deviceIndex(named: parts[0]) != nil, parts[1].hasPrefix("ioptes_") { return .integer(0) }
        let target: ExpectTarget
        let key: String
        switch parts.count {
        case 2:
            key = parts[1]
            target = parts[0] == "machine" ? .machine : parts[0] == "last" ? .last : .name(parts[0])
        case 3:
            key = parts[2]
            target = .buffer(BufferRef(process: parts[0], buffer: parts[1]))
        default:
            return nil
        }
        guard case let .success(v) = measure(target, key, last: last) else { return nil }
        switch v {
        case let .integer(n): return .integer(Int(clamping: n))
        case let .bool(b): return .word(b ? "true" : "false")
        case let .word(w): return .word(w ?? "null")
        }
    }
}

/// What is wrong with a metric name for a script (an unknown target or key), or nil. Targets are
/// the machine, `last`, the processes and devices the script declares (fork children included)
/// and PROC.BUF; keys are the `expect` keys of the target plus the figures above.
public func metricProblem(_ name: String, in script: Script) -> (message: String, hint: String)? {
    var processes: [String] = [], devices: [String] = []
    for st in script.statements {
        switch st.kind {
        case let .process(d): processes.append(d.name)
        case let .device(d): devices.append(d.name)
        case let .processEvent(_, .fork(child)): processes.append(child)
        default: break
        }
    }
    return metricProblem(name, processes: processes, devices: devices)
}

/// The same, for these process and device names.
public func metricProblem(_ name: String, processes: [String], devices: [String]) -> (message: String, hint: String)? {
    if name == "outcome" || name == "failed_expects" { return nil }
    let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    let example = "metrics are named as expect keys are: nic.misses, app.locked_vm, machine.free, app.buf.present, outcome"
    guard parts.count == 2 || parts.count == 3, !parts.contains(where: \.isEmpty) else {
        return ("'\(name)' is not a metric", example)
    }
    func check(_ key: String, _ keys: [String], extra: (String) -> Bool = { _ in false }, _ what: String) -> (String, String)? {
        if keys.contains(key) || extra(key) { return nil }
        return ("unknown key '\(key)' for \(what)", Suggest.prefix(key, among: keys) + "keys: " + keys.joined(separator: ", "))
    }
    if parts.count == 3 {
        guard processes.contains(parts[0]) else {
            return ("no process named '\(parts[0])' in the script", "processes: " + (processes.isEmpty ? "none" : processes.joined(separator: ", ")))
        }
        return check(parts[2], ExpectKeys.names(ExpectKeys.buffer), "a buffer")
    }
    let (target, key) = (parts[0], parts[1])
    switch target {
    case "machine":
        return check(key, ExpectKeys.names(ExpectKeys.machine) + ["free_blocks_o0..o\(maxPageOrder)"],
                     extra: { k in k.hasPrefix("free_blocks_o") && Int(k.dropFirst(13)).map { (0...maxPageOrder).contains($0) } == true }, "the machine")
    case "last":
        return check(key, ExpectKeys.names(ExpectKeys.last), "last")
    case _ where devices.contains(target):
        return check(key, ExpectKeys.names(ExpectKeys.device) + ["hit_rate", "ioptes_SIZE"], extra: { k in
            guard k.hasPrefix("ioptes_"), let size = try? Literal.size(String(k.dropFirst(7))) else { return false }
            return size >= pageSize && size.nonzeroBitCount == 1
        }, "a device")
    case _ where processes.contains(target):
        return check(key, ExpectKeys.names(ExpectKeys.process), "a process")
    default:
        let targets = ["machine", "last"] + processes + devices
        return ("no process or device named '\(target)' in the script", Suggest.prefix(target, among: targets) + "targets: " + targets.joined(separator: ", "))
    }
}
