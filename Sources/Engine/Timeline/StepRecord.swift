// What one step did: the command, its outcome, the typed events and their narration, and the
// Changes that undo it. Made from the step's StepJournal.

/// A kernel-level result. Script mistakes never get here: they are Diagnostics before anything runs.
public enum Outcome: Equatable, Sendable {
    case ok
    /// A system call failed: ENOMEM, EAGAIN, EINVAL, EPERM, ESRCH, ENOSYS, ...
    case errno(String)
    /// The process took a signal (SIGSEGV), which killed it.
    case signal(String)
    /// Out of memory: the OOM killer ran (or found nothing to kill).
    case oom
    /// A device access the IOMMU blocked (no IOPTE, or a write through a read-only one).
    case iommuFault

    public var ok: Bool { self == .ok }

    public var errnoName: String? {
        switch self {
        case let .errno(e): e
        case .oom: "ENOMEM"
        default: nil
        }
    }

    public var signalName: String? {
        if case let .signal(s) = self { return s }
        return nil
    }

    /// One word for `expect last outcome=...` and the log pane: ok, ENOMEM, SIGSEGV, OOM, ...
    public var word: String {
        switch self {
        case .ok: "ok"
        case let .errno(e): e
        case let .signal(s): s
        case .oom: "OOM"
        case .iommuFault: "IOMMU_FAULT"
        }
    }
}

public struct StepRecord: Sendable {
    /// 1-based step number in the run.
    public var step: Int
    /// Source line of the statement (0 for the prompt).
    public var line: Int
    public var command: String
    public var outcome: Outcome
    /// The narration: what happened and which kernel function did it. Never a line per page.
    public var text: String
    /// `note` lines written just before this step.
    public var notes: [String]
    public var changes: [Change]
    /// What the kernel did, counted, in the order each event first happened.
    public var events: EventCounts
    /// Things that went quietly wrong: the device and the process no longer see the same memory,
    /// or a DMA went through a stale IOTLB entry.
    public var hazards: [Hazard]
    /// How each device's counters moved in this step (devices the step did not touch are absent).
    public var deviceDeltas: [Int: DeviceStats]
    /// What a `trace` step replayed (nil for other steps). Held out of line: a timeline keeps a
    /// record per step, and only trace steps have one.
    public var trace: TraceSummary? {
        get { traceStorage.first }
        set { traceStorage = newValue.map { [$0] } ?? [] }
    }
    var traceStorage: [TraceSummary] = []
    /// Internal errors: impossible states the code met, and broken invariants when the Timeline
    /// checks them. Empty unless UMPTUI has a bug; the command line then exits 3.
    public var bugs: [String] = []

    /// The event counts as the JSON names them (kernel function → pages), first-happened first.
    public var counts: [(String, Int)] { Narration.counts(events) }

    /// Work a replay of the step pays beyond its Changes: every DMA access put through an IOTLB
    /// and every trace line read (the Timeline's snapshots and jumps weigh it).
    public var replayEffort: Int {
        deviceDeltas.values.reduce(0) { $0 + $1.accesses } + (trace?.lines ?? 0)
    }

    /// A record for a step that could not have one (a bug in UMPTUI): it did nothing, and says why.
    static func impossible(_ st: Statement, step: Int, _ why: String) -> StepRecord {
        var r = StepRecord(step: step, line: st.location.line, command: st.text, outcome: .errno("ECANCELED"),
                           text: "nothing ran: \(why)", notes: [], changes: [], events: EventCounts(), hazards: [], deviceDeltas: [:])
        r.bugs = [why]
        return r
    }

    /// The step went wrong: an errno, a signal, OOM, an IOMMU fault, or a hazard (what the TUI's
    /// `[` and `]` jump between).
    public var wentWrong: Bool {
        !outcome.ok || !hazards.isEmpty || deviceDeltas.values.contains { $0.faults > 0 || $0.hazards > 0 }
    }
}

extension DeviceStats {
    /// The counters of `self` less those of `before`.
    func minus(_ before: DeviceStats) -> DeviceStats {
        DeviceStats(accesses: accesses - before.accesses, hits: hits - before.hits, misses: misses - before.misses,
                    walks: walks - before.walks, stallNs: stallNs - before.stallNs, faults: faults - before.faults,
                    hazards: hazards - before.hazards, ioPageFaults: ioPageFaults - before.ioPageFaults)
    }
}
