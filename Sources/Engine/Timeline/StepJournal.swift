// What one step did, collected while it runs. `apply` creates a StepJournal and passes it inout to
// every operation; the StepRecord is made from it. The Engine itself keeps nothing between steps
// but its state: no log, no tally, no flags beside it.

public struct StepJournal: Sendable {
    /// The Changes that undo the step, in the order they were made.
    public private(set) var changes: [Change] = []
    /// What the kernel did, counted, in the order each event first happened.
    public internal(set) var events = EventCounts()
    /// Things that went quietly wrong (the device and the process no longer see the same memory).
    public internal(set) var hazards: [Hazard] = []
    /// What a `trace` step replayed.
    public internal(set) var trace: TraceSummary?
    /// States the code found impossible (a bug in UMPTUI, not in the script): it carried on
    /// without trapping, and the step's record says so (the command line exits 3).
    public internal(set) var bugs: [String] = []

    /// Notes an impossible state instead of trapping on it.
    mutating func bug(_ what: String) { if bugs.count < 16 { bugs.append(what) } }

    // Small records are logged whole the first time a step touches them.
    var machineLogged = false
    var processCountersLogged: Set<Int32> = []
    var deviceCountersLogged: Set<Int32> = []
    var iotlbLogged: Set<Int32> = []

    /// How a long step reports its progress and learns it is to stop (nil: it runs to the end).
    var control: StepControl?
    /// The control asked the step to stop: apply undoes what it did and returns no record.
    public internal(set) var cancelled = false

    public init() {}

    /// The step being run, for its progress.
    var step = 0

    init(control: StepControl?, step: Int) {
        self.control = control
        self.step = step
    }

    @inline(__always) mutating func log(_ change: Change) { changes.append(change) }

    /// The data run being gathered: frames [first, first + count) that all held `old`.
    private var dataRun: (first: Int32, count: Int32, old: UInt64)?

    /// Logs that frame `pfn` held `old` before a write. A frame right after the run being gathered,
    /// that held the same, extends it. Data Changes touch nothing but the data array, so a run
    /// logged later than the Changes around it undoes the same.
    @inline(__always) mutating func logData(pfn: Int, old: UInt64) {
        if let r = dataRun, Int(r.first) + Int(r.count) == pfn, r.old == old, r.count < Int32.max {
            dataRun = (r.first, r.count + 1, old)
            return
        }
        flushData()
        dataRun = (Int32(pfn), 1, old)
    }

    /// Logs the run being gathered. Engine.apply calls it before it reads the Changes.
    mutating func flushData() {
        guard let r = dataRun else { return }
        changes.append(.dataRun(first: r.first, count: r.count, old: r.old))
        dataRun = nil
    }

    /// Tells the control how far a long loop has got (`total` 0: not known ahead, as for a
    /// streamed trace); false once the step is to stop. Loops call it every so many units of work,
    /// at points that depend on the work alone, so a run that is not cancelled is the same run.
    @inline(__always) mutating func poll(_ done: Int, of total: Int, _ unit: StepProgress.Unit) -> Bool {
        guard let c = control else { return true }
        if cancelled { return false }
        if !c.check(StepProgress(step: step, done: done, total: total, unit: unit)) { cancelled = true }
        return !cancelled
    }
}

/// How far a long step has got.
public struct StepProgress: Sendable, Equatable {
    public enum Unit: String, Sendable {
        case accesses = "DMA accesses", lines = "trace lines", pages
    }
    /// The step's number in the run.
    public var step: Int
    public var done: Int
    /// 0 when not known ahead.
    public var total: Int
    public var unit: Unit
    public init(step: Int, done: Int, total: Int, unit: Unit) {
        self.step = step
        self.done = done
        self.total = total
        self.unit = unit
    }
}

/// What a caller gives a step to watch it and stop it: `check` hears the progress of the step's
/// long loops (a DMA, a trace, reclaim, a fault over a large range) and returns false to cancel.
/// A cancelled step is undone before `apply` returns: no record, no Changes, the state as before.
public struct StepControl: Sendable {
    public var check: @Sendable (StepProgress) -> Bool
    public init(check: @escaping @Sendable (StepProgress) -> Bool) { self.check = check }
}

/// Counts of kernel events, in the order each first happened (a zero count still takes its place,
/// so the order says which code path ran first).
public struct EventCounts: Sendable, Equatable {
    public private(set) var order: [KernelEvent] = []
    private var counts: [KernelEvent: Int] = [:]

    public init() {}

    mutating func add(_ event: KernelEvent, _ n: Int = 1) {
        if counts[event] == nil { order.append(event) }
        counts[event, default: 0] += n
    }

    mutating func remove(_ event: KernelEvent) {
        guard counts.removeValue(forKey: event) != nil else { return }
        order.removeAll { $0 == event }
    }

    public subscript(_ event: KernelEvent) -> Int { counts[event] ?? 0 }

    /// The events that happened at least once, first-happened first.
    public var happened: [(event: KernelEvent, count: Int)] {
        order.compactMap { e in counts[e].flatMap { $0 > 0 ? (e, $0) : nil } }
    }

    /// The processes the OOM killer took, in order.
    public var oomVictims: [OOMVictim] {
        order.compactMap { if case let .oomKill(v) = $0 { v } else { nil } }
    }

    /// IOPTEs set, by page size, largest first.
    public var ioptesBySize: [(size: UInt64, count: Int)] {
        order.compactMap { e -> (UInt64, Int)? in
            if case let .ioptesSet(size) = e, self[e] > 0 { return (size, self[e]) }
            return nil
        }.sorted { $0.0 > $1.0 }
    }
}

/// One edit of an array, with what undoes it.
public enum ListEdit<Element: Sendable>: Sendable {
    case inserted(at: Int)
    case removed(at: Int, old: Element)
    case replaced(at: Int, old: Element)
    /// The whole list was replaced (fork, exit): the old list.
    case reset(old: [Element])
}

extension Array where Element: Sendable {
    /// Undoes one edit.
    mutating func undo(_ edit: ListEdit<Element>) {
        switch edit {
        case let .inserted(i): remove(at: i)
        case let .removed(i, old): insert(old, at: i)
        case let .replaced(i, old): self[i] = old
        case let .reset(old): self = old
        }
    }
}
