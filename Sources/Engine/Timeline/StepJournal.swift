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

    // Small records are logged whole the first time a step touches them.
    var machineLogged = false
    var processCountersLogged: Set<Int32> = []
    var deviceCountersLogged: Set<Int32> = []
    var iotlbLogged: Set<Int32> = []

    public init() {}

    @inline(__always) mutating func log(_ change: Change) { changes.append(change) }
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
