// The Timeline: the steps of a session (the script's and those typed since) and an Engine moved
// along them, forwards and back, to any step. Going to a step restores the nearest snapshot or
// stays where it is, whichever is cheaper, then undoes or replays the rest. The Engine is
// deterministic, so replaying a step gives the record it gave before.

/// An Engine plus the steps it runs: step forward, step back, go to any step, insert a step.
public struct Timeline: Sendable {
    public private(set) var engine: Engine
    /// Where `dma-trace` files come from, for every step the Timeline runs or replays.
    public let traces: (any TraceProvider)?
    /// Every step of the timeline, first to last.
    public private(set) var steps: [ScriptStep]
    /// How many steps the Engine has applied: the state is the one after step `current`.
    public private(set) var current = 0
    /// Records of the first `known.count` steps (at least `current`): steps stepped back over keep
    /// theirs until the timeline changes under them.
    public private(set) var known: [StepRecord] = []
    /// Failed expects by step; 0 holds those about the booted machine.
    public private(set) var failures: [Int: [ExpectFailure]] = [:]
    /// The snapshot spacing and budget.
    public let policy: SnapshotPolicy
    /// Snapshots by step, oldest first; the booted machine's is always first.
    public private(set) var snapshots: [StateSnapshot] = []
    /// work[i]: the work of steps 1...i (Changes applied, plus one per step), the cost model of going to a step.
    private var work: [Int] = [0]
    /// effort[i]: what steps 1...i did that leaves few Changes but costs time to replay (DMA
    /// accesses through the IOTLB, trace lines): replaying pays it, undoing does not.
    private var effort: [Int] = [0]
    /// Distinct frame and swap chunks the snapshots hold, with how many snapshots hold each.
    private var chunkRefs: [ObjectIdentifier: Int] = [:]
    public private(set) var snapshotChunkBytes = 0
    /// How the Timeline has moved: for the bench and the tests, never for the state.
    public private(set) var moves = TimelineMoves()

    /// When the whole state's invariants are checked after a new step (EngineState.invariantViolations);
    /// what breaks goes into the step's record as `bugs`.
    /// Off unless asked: `run` asks (every step with --check-invariants, small machines in debug
    /// builds), and so do the Engine's tests; sweeps, compares and the TUI do not pay for it.
    public var invariantChecks = InvariantChecks.off

    /// The `machine` line the Engine booted from (overrides folded in), if any.
    public private(set) var machine: Statement?
    /// Expects about the booted machine.
    public let bootExpects: [Statement]
    /// The overrides in force (`set`, `--set`), one per TARGET.KEY, in the order they were set.
    public private(set) var overrides: [String] = []
    /// The machine line and each step's statement as written, before any override: what a re-run
    /// with other overrides starts from. `written[i]` belongs to `steps[i]`.
    public private(set) var writtenMachine: Statement?
    public private(set) var written: [Statement] = []

    /// A Timeline with no steps yet, on a booted Engine.
    public init(engine: Engine, traces: (any TraceProvider)? = nil, policy: SnapshotPolicy = SnapshotPolicy()) {
        self.engine = engine
        self.traces = traces
        self.policy = policy
        steps = []
        bootExpects = []
        addSnapshot()
    }

    /// Boots the machine `machine` declares (the default machine when nil), checks the expects
    /// about the booted machine and lays out `steps`.
    public init(machine: Statement?, steps: [ScriptStep], bootExpects: [Statement] = [], traces: (any TraceProvider)? = nil,
                policy: SnapshotPolicy = SnapshotPolicy()) {
        var decl: MachineDecl?
        if let machine, case let .machine(d) = machine.kind { decl = d }
        self.engine = Engine(config: MachineConfig(decl))
        self.machine = machine
        self.writtenMachine = machine
        self.traces = traces
        self.policy = policy
        self.steps = steps
        self.written = steps.map(\.statement)
        self.bootExpects = bootExpects
        addSnapshot()
        let boot = check(bootExpects, last: nil)
        if !boot.isEmpty { failures[0] = boot }
    }

    /// The plan's machine and its leading steps (those before any `back` or `set`).
    public init(plan: StepPlan, traces: (any TraceProvider)? = nil, policy: SnapshotPolicy = SnapshotPolicy()) {
        self.init(machine: plan.machineStatement, steps: plan.steps, bootExpects: plan.bootExpects, traces: traces, policy: policy)
    }

    /// The same, with `overrides` (TARGET.KEY=VALUE, as `--set` takes them) in force from boot.
    public init(plan: StepPlan, overrides: [String], traces: (any TraceProvider)? = nil,
                policy: SnapshotPolicy = SnapshotPolicy()) throws(Diagnostics) {
        self.init(plan: plan, traces: traces, policy: policy)
        if !overrides.isEmpty { try rebuild(overrides: Timeline.merge(overrides, [])) }
    }

    /// The records of the steps applied, oldest first.
    public var records: ArraySlice<StepRecord> { known[..<current] }
    /// The record of the step the state is after (nil at boot).
    public var last: StepRecord? { current > 0 ? known[current - 1] : nil }
    public var total: Int { steps.count }
    /// The next step to run, if any.
    public var next: ScriptStep? { current < steps.count ? steps[current] : nil }
    /// Step `i` (0-based) as written, before the overrides: what a recording writes.
    public func writtenStep(_ i: Int) -> ScriptStep {
        var s = steps[i]
        s.statement = written[i]
        return s
    }
    /// Failed expects of the steps up to the current one (and of the booted machine).
    public var failedExpectCount: Int {
        failures.reduce(0) { $0 + ($1.key <= current ? $1.value.count : 0) }
    }
    /// The headline figures now (Figures.swift).
    public var figures: [Figure] { engine.figures(last: last, failedExpects: failedExpectCount) }

    // MARK: - Moving

    /// Applies the next step; nil at the end.
    @discardableResult
    public mutating func stepForward() -> StepRecord? { stepForward(control: nil) }

    /// Applies the next step watched by `control`; nil at the end, or when the control cancelled
    /// it (then nothing moved: `current`, the records and the state are as they were).
    @discardableResult
    public mutating func stepForward(control: StepControl?) -> StepRecord? {
        guard current < steps.count else { return nil }
        let step = steps[current]
        guard var r = engine.apply(step.statement, step: current + 1, notes: step.notes, traces: traces, control: control) else { return nil }
        moves.applied += 1
        if current == known.count {
            // A replay gives the record it gave before: only a new step is checked.
            if invariantChecks.applies(to: engine.state) {
                r.bugs += engine.state.invariantViolations().map { "invariant broken: " + $0 }
            }
            known.append(r)
            work.append(work[current] + r.changes.count + 1)
            effort.append(effort[current] + r.replayEffort)
            let failed = check(step.expects, last: r)
            if !failed.isEmpty { failures[current + 1] = failed }
        }
        current += 1
        if policy.enabled, replayCost(from: snapshotAtOrBefore(current).step, to: current) >= policy.spacing { addSnapshot() }
        return known[current - 1]
    }

    /// Undoes the newest step (it stays in the timeline, to step forward to again); nil at the start.
    @discardableResult
    public mutating func stepBack() -> StepRecord? {
        guard current > 0 else { return nil }
        current -= 1
        engine.undo(known[current])
        moves.undone += 1
        return known[current]
    }

    /// Goes to the state after step `n` (clamped to the timeline): from here or from the snapshot
    /// that costs least to get there, then undoing or replaying one step at a time.
    public mutating func go(to n: Int) { go(to: n, control: nil) }

    /// `go(to:)` watched by `control`: a cancelled step stops the jump at the step before it.
    public mutating func go(to n: Int, control: StepControl?) {
        let target = max(0, min(n, steps.count))
        var best = cost(from: current, to: target)
        var from: StateSnapshot?
        for s in nearestSnapshots(to: target) {
            let c = policy.restoreCost + cost(from: s.step, to: target)
            if c < best { best = c; from = s }
        }
        if let s = from {
            engine.restore(s)
            current = s.step
            moves.restores += 1
        }
        while current > target { stepBack() }
        while current < target { if stepForward(control: control) == nil { break } }
    }

    /// Going from step a to step b: undo costs a step's Changes, replay about twice that.
    /// Steps not run yet count one unit each (their cost is unknown; it has to be paid anyway).
    private func cost(from a: Int, to b: Int) -> Int {
        if b <= a { return work[a] - work[b] }
        let knownEnd = min(b, known.count)
        return a < knownEnd ? 2 * replayCost(from: a, to: knownEnd) + (b - knownEnd) : b - a
    }

    /// Replaying steps a+1...b (all known): their Changes and their effort.
    private func replayCost(from a: Int, to b: Int) -> Int {
        work[b] - work[a] + effort[b] - effort[a]
    }

    // MARK: - Changing the timeline

    /// Runs `step` next: the steps stepped back over (run, then undone) are dropped first, as an
    /// editor's undo drops its redo history; steps never run stay after it. Returns the record,
    /// the expects of `step` that failed and how many steps were dropped.
    @discardableResult
    public mutating func insert(_ step: ScriptStep) -> (record: StepRecord, failures: [ExpectFailure], dropped: Int) {
        let dropped = known.count - current
        steps.removeSubrange(current..<known.count)
        written.removeSubrange(current..<known.count)
        truncate(to: current)
        steps.insert(step, at: current)
        written.insert(step.statement, at: current)
        let r = stepForward() ?? .impossible(step.statement, step: current + 1, "insert: the step just inserted did not run")
        return (r, failures[current] ?? [], dropped)
    }

    /// Runs a statement next (see insert): the tests' and the bench's way to drive an Engine.
    @discardableResult
    public mutating func apply(_ st: Statement, notes: [String] = []) -> StepRecord {
        insert(ScriptStep(statement: st, notes: notes)).record
    }

    /// Adds steps after the last one (a replayed recording's next run of lines).
    public mutating func append(_ more: [ScriptStep]) {
        if more.contains(where: { Timeline.declares($0.statement) }) && !overrides.isEmpty {
            // An override may name what the new steps declare: fold it in as a re-run would.
            let at = steps.count
            steps += more
            written += more.map(\.statement)
            if let folded = try? Timeline.fold(overrides, machine: writtenMachine, into: written) {
                for i in at..<steps.count { steps[i].statement = folded.statements[i] }
            }
            return
        }
        steps += more
        written += more.map(\.statement)
    }

    private static func declares(_ st: Statement) -> Bool {
        switch st.kind {
        case .process, .device: true
        default: false
        }
    }

    /// Drops every step after the current one, run or not.
    public mutating func dropFuture() {
        steps.removeSubrange(current...)
        written.removeSubrange(current...)
        truncate(to: current)
    }

    /// Forgets records, failures, work and snapshots of steps after step `n`.
    private mutating func truncate(to n: Int) {
        known.removeSubrange(n...)
        work.removeSubrange((n + 1)...)
        effort.removeSubrange((n + 1)...)
        failures = failures.filter { $0.key <= n }
        while let s = snapshots.last, s.step > n { removeSnapshot(at: snapshots.count - 1) }
    }

    /// `set TARGET.KEY=VALUE`: puts the override in force (replacing one of the same TARGET.KEY)
    /// and re-runs from boot up to the current step. Nothing changes when the override is bad.
    public mutating func override(_ text: String) throws(Diagnostics) {
        try rebuild(overrides: Timeline.merge(overrides, [text]))
    }

    /// Several overrides put in force at once, with one re-run.
    public mutating func override(all texts: [String]) throws(Diagnostics) {
        try rebuild(overrides: Timeline.merge(overrides, texts))
    }

    /// `unset TARGET.KEY`: takes an override out of force and re-runs from boot up to the current
    /// step, as written for that key. False (nothing changes) when no override of the key is in force.
    /// Throws (nothing changes) when the other overrides do not fit without it (`nic.ways=64` set
    /// on top of `nic.iotlb=64`, with the declaration's iotlb=16).
    @discardableResult
    public mutating func unset(_ key: String) throws(Diagnostics) -> Bool {
        guard overrides.contains(where: { Timeline.key(of: $0) == key }) else { return false }
        try rebuild(overrides: overrides.filter { Timeline.key(of: $0) != key })
        return true
    }

    /// Re-runs the written steps from boot with exactly `overrides`, up to the current step.
    private mutating func rebuild(overrides wanted: [String]) throws(Diagnostics) {
        let folded = try Timeline.fold(wanted, machine: writtenMachine, into: written)
        var changed = steps
        for i in changed.indices { changed[i].statement = folded.statements[i] }
        var t = Timeline(machine: folded.machine, steps: changed, bootExpects: bootExpects, traces: traces, policy: policy)
        t.writtenMachine = writtenMachine
        t.written = written
        t.overrides = wanted
        t.go(to: current)
        self = t
    }

    /// The machine line and statements with `overrides` applied (a `machine` line is made when an
    /// override names the machine and none is written).
    static func fold(_ overrides: [String], machine: Statement?, into statements: [Statement])
        throws(Diagnostics) -> (machine: Statement?, statements: [Statement]) {
        var script = Script(fileName: "set", statements: (machine.map { [$0] } ?? []) + statements)
        try applyOverrides(overrides, to: &script)
        var rest = script.statements[...]
        var m: Statement?
        if let first = rest.first, case .machine = first.kind { m = first; rest = rest.dropFirst() }
        return (m, Array(rest))
    }

    /// TARGET.KEY of an override `TARGET.KEY=VALUE`.
    public static func key(of override: String) -> String {
        override.firstIndex(of: "=").map { String(override[..<$0]) } ?? override
    }

    /// `base` with each of `more` put in force: one of the same TARGET.KEY is replaced, the rest
    /// keep their order and the new one goes last.
    public static func merge(_ base: [String], _ more: [String]) -> [String] {
        var out: [String] = []
        for o in base + more {
            out.removeAll { key(of: $0) == key(of: o) }
            out.append(o)
        }
        return out
    }

    /// How many leading steps (at most `n`) this timeline and `other` write alike.
    public func sharedSteps(with other: Timeline, upTo n: Int) -> Int {
        let n = min(n, written.count, other.written.count)
        var k = 0
        while k < n && written[k] == other.written[k] { k += 1 }
        return k
    }

    /// Makes this timeline run what `leader` runs, with `overrides` in force instead of the
    /// leader's: the same written steps (a divergent tail is dropped and replaced), then the
    /// leader's current step. A change of overrides re-runs from boot. What compare's B side does
    /// after every move of side A.
    public mutating func follow(_ leader: Timeline, overrides wanted: [String]) throws(Diagnostics) {
        if wanted != overrides || writtenMachine != leader.writtenMachine {
            var t = Timeline(machine: leader.writtenMachine, steps: leader.steps.indices.map(leader.writtenStep),
                             bootExpects: leader.bootExpects, traces: traces, policy: policy)
            if !wanted.isEmpty { try t.rebuild(overrides: wanted) }
            t.go(to: leader.current)
            self = t
            return
        }
        let k = sharedSteps(with: leader, upTo: written.count)
        if k < steps.count || k < leader.steps.count {
            if current > k { go(to: k) }
            if k < steps.count {
                steps.removeSubrange(k...)
                written.removeSubrange(k...)
                truncate(to: min(k, known.count))
            }
            append(leader.steps[k...].indices.map(leader.writtenStep))
        }
        for i in steps.indices { steps[i].notes = leader.steps[i].notes }
        go(to: leader.current)
    }

    /// Adds a note to the next step (the prompt's `note` line).
    public mutating func addNote(_ text: String) {
        guard current < steps.count else { return }
        steps[current].notes.append(text)
    }

    /// Sets the question of the next step (the prompt's `quiz` line); it replaces one written before.
    public mutating func setQuiz(_ quiz: Statement) {
        guard current < steps.count else { return }
        steps[current].quiz = quiz
    }

    /// Checks expect statements against the state now (`last`: the step they follow, nil at boot).
    public func check(_ expects: [Statement], last: StepRecord?) -> [ExpectFailure] {
        expects.flatMap { st -> [ExpectFailure] in
            guard case let .expect(target, clauses) = st.kind else { return [] }
            return engine.check(target, clauses, last: last, statement: st)
        }
    }

    // MARK: - Snapshots

    /// The newest snapshot at or before `step` (the boot one exists whenever snapshots are enabled).
    private func snapshotAtOrBefore(_ step: Int) -> StateSnapshot {
        var lo = 0, hi = snapshots.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if snapshots[mid].step <= step { lo = mid } else { hi = mid - 1 }
        }
        return snapshots[lo]
    }

    /// The snapshots either side of a step.
    private func nearestSnapshots(to step: Int) -> [StateSnapshot] {
        guard !snapshots.isEmpty else { return [] }
        let below = snapshotAtOrBefore(step)
        guard let i = snapshots.firstIndex(where: { $0.step > step }) else { return [below] }
        return [below, snapshots[i]]
    }

    private mutating func addSnapshot() {
        guard policy.enabled else { return }
        let s = engine.snapshot(step: current)
        let at = snapshots.firstIndex { $0.step >= current } ?? snapshots.count
        if at < snapshots.count, snapshots[at].step == current { return }
        snapshots.insert(s, at: at)
        retain(s, 1)
        thin()
    }

    private mutating func removeSnapshot(at i: Int) {
        retain(snapshots[i], -1)
        snapshots.remove(at: i)
    }

    private mutating func retain(_ s: StateSnapshot, _ delta: Int) {
        func count(_ id: ObjectIdentifier, _ bytes: Int) {
            let n = chunkRefs[id, default: 0] + delta
            if n == 0 { chunkRefs[id] = nil; snapshotChunkBytes -= bytes } else {
                if n == 1 && delta > 0 { snapshotChunkBytes += bytes }
                chunkRefs[id] = n
            }
        }
        for c in s.phys.chunks { count(ObjectIdentifier(c), c.bytes) }
        for c in s.swap { count(ObjectIdentifier(c), c.elements.count * MemoryLayout<UInt16>.stride) }
    }

    /// rr's spacing: dense near the current step, sparser with distance. Walking out from the current
    /// step on each side, a snapshot stays when it is at least max(spacing, distance / density) work
    /// from the last one kept; the booted machine's always stays. Then, while the chunks held exceed
    /// the budget, the snapshot with the smallest gap for its distance goes.
    private mutating func thin() {
        // Distances are replay work: Changes and effort.
        func at(_ i: Int) -> Int { work[min(i, work.count - 1)] + effort[min(i, effort.count - 1)] }
        let here = at(current)
        func w(_ s: StateSnapshot) -> Int { at(s.step) }
        var keep = Array(repeating: true, count: snapshots.count)
        // Snapshots after the current step are walked outwards too (after a jump back they are ahead).
        let split = snapshots.firstIndex { $0.step > current } ?? snapshots.count
        var lastKept = here
        for i in stride(from: split - 1, to: 0, by: -1) where snapshots[i].step != current {
            let d = here - w(snapshots[i])
            if lastKept - w(snapshots[i]) < max(policy.spacing, d / policy.density) { keep[i] = false } else { lastKept = w(snapshots[i]) }
        }
        lastKept = here
        for i in split..<snapshots.count {
            let d = w(snapshots[i]) - here
            if w(snapshots[i]) - lastKept < max(policy.spacing, d / policy.density) { keep[i] = false } else { lastKept = w(snapshots[i]) }
        }
        for i in stride(from: snapshots.count - 1, to: 0, by: -1) where !keep[i] { removeSnapshot(at: i) }
        while snapshotChunkBytes > policy.budgetBytes, snapshots.count > 2 {
            // The one whose neighbours are closest, for its distance from here: the least useful.
            var worst = 1, worstScore = Double.infinity
            for i in 1..<snapshots.count {
                let prev = w(snapshots[i - 1])
                let next = i + 1 < snapshots.count ? w(snapshots[i + 1]) : at(work.count - 1)
                let score = Double(next - prev) / Double(max(1, abs(w(snapshots[i]) - here)))
                if score < worstScore && snapshots[i].step != current { worst = i; worstScore = score }
            }
            removeSnapshot(at: worst)
        }
    }

    /// What the snapshots hold, each shared chunk and page table counted once.
    public var snapshotFootprint: SnapshotFootprint { SnapshotFootprint(snapshots) }
}

/// Counts of what going to steps took.
public struct TimelineMoves: Sendable {
    public var applied = 0
    public var undone = 0
    public var restores = 0
}

/// How the Timeline spaces its snapshots. Work is counted in Changes (one per PTE, frame, list or
/// counter record a step writes) plus one per step.
public struct SnapshotPolicy: Sendable {
    /// Off for headless runs, which only go forward: no copy of the state is ever made.
    public var enabled = true
    /// Work between the newest snapshot and the next.
    public var spacing: Int
    /// Further away, a gap of up to distance / density is allowed.
    public var density: Int
    /// The most bytes of frame and swap chunks the snapshots may hold.
    public var budgetBytes: Int
    /// What restoring a snapshot costs, in work units.
    public var restoreCost: Int

    public init(spacing: Int = 20_000, density: Int = 32, budgetBytes: Int = 512 << 20, restoreCost: Int = 2_000) {
        self.spacing = spacing
        self.density = density
        self.budgetBytes = budgetBytes
        self.restoreCost = restoreCost
    }

    /// No snapshots: going back undoes step by step.
    public static let none: SnapshotPolicy = { var p = SnapshotPolicy(); p.enabled = false; return p }()
}

/// What `umptui run` produces.
public struct RunResult: Sendable {
    public var records: [StepRecord]
    public var failures: [ExpectFailure]
    public var engine: Engine
}

/// What a headless run reports as it goes.
public enum RunEvent: Sendable {
    /// A step ran.
    case step(StepRecord)
    /// A `back` line (at `line`) undid the step with this record.
    case back(StepRecord, line: Int)
    /// A `back` line with nothing left to undo (the checker refuses it in a file; kept for safety).
    case backAtStart(line: Int)
    /// A `set` line re-ran the first `steps` steps from boot with the override.
    case set(String, line: Int, steps: Int)
    /// A `set` line whose override does not fit the declarations.
    case badSet(Diagnostics, line: Int)
    /// An `unset` line re-ran the first `steps` steps from boot without the override of `key`;
    /// `wasSet` false: no override of it was in force, nothing ran again.
    case unset(String, line: Int, steps: Int, wasSet: Bool)
}

public enum ScenarioRunner {
    /// Boots the machine of the script and runs it item by item, checking expects as it goes (those
    /// before the first step check the booted machine). `onEvent` sees each step, `back` and `set`
    /// as soon as it happens (for streaming output).
    public static func run(_ script: Script, traces: (any TraceProvider)? = nil,
                           onEvent: (RunEvent, Engine) -> Void = { _, _ in }) -> RunResult {
        run(script, traces: traces, shouldStop: { false }, onEvent: onEvent)
    }

    /// The same; `shouldStop` is asked before each item: true ends the run there (a sweep's Ctrl-C).
    public static func run(_ script: Script, traces: (any TraceProvider)?, invariants: InvariantChecks = .off,
                           shouldStop: () -> Bool, onEvent: (RunEvent, Engine) -> Void) -> RunResult {
        run(script, traces: traces, invariants: invariants, shouldStop: shouldStop, willStep: { _, _, _ in }, onEvent: onEvent)
    }

    /// The same; `willStep` sees each step (its number and the Engine) just before it runs: a quiz asks there.
    public static func run(_ script: Script, traces: (any TraceProvider)?, invariants: InvariantChecks = .off,
                           shouldStop: () -> Bool, willStep: (ScriptStep, Int, Engine) -> Void,
                           onEvent: (RunEvent, Engine) -> Void) -> RunResult {
        let plan = StepPlan(script)
        var timeline = Timeline(machine: plan.machineStatement, steps: [], bootExpects: plan.bootExpects, traces: traces,
                                policy: .none)
        timeline.invariantChecks = invariants
        var failures = timeline.failures[0] ?? []
        for item in plan.items {
            if shouldStop() { break }
            switch item {
            case let .step(s):
                willStep(s, timeline.current + 1, timeline.engine)
                let (r, failed, _) = timeline.insert(s)
                onEvent(.step(r), timeline.engine)
                failures += failed
            case let .back(s):
                if let r = timeline.stepBack() {
                    timeline.dropFuture()
                    onEvent(.back(r, line: s.statement.location.line), timeline.engine)
                } else {
                    onEvent(.backAtStart(line: s.statement.location.line), timeline.engine)
                }
                failures += timeline.check(s.expects, last: timeline.last)
            case let .set(s, text):
                do {
                    try timeline.override(text)
                    onEvent(.set(text, line: s.statement.location.line, steps: timeline.current), timeline.engine)
                } catch {
                    onEvent(.badSet(error, line: s.statement.location.line), timeline.engine)
                }
                failures += timeline.check(s.expects, last: timeline.last)
            case let .unset(s, key):
                do {
                    let was = try timeline.unset(key)
                    onEvent(.unset(key, line: s.statement.location.line, steps: was ? timeline.current : 0, wasSet: was), timeline.engine)
                } catch {
                    onEvent(.badSet(error, line: s.statement.location.line), timeline.engine)
                }
                failures += timeline.check(s.expects, last: timeline.last)
            }
        }
        return RunResult(records: Array(timeline.records), failures: failures, engine: timeline.engine)
    }

    /// The same, seeing only the steps.
    public static func run(_ script: Script, traces: (any TraceProvider)? = nil,
                           onStep: (StepRecord, Engine) -> Void) -> RunResult {
        run(script, traces: traces, onEvent: { (event: RunEvent, engine: Engine) in
            if case let .step(r) = event { onStep(r, engine) }
        })
    }
}
