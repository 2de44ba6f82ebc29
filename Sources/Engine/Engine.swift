// The Engine: a reducer over EngineState. `apply` runs one statement and returns a StepRecord;
// `undo` applies that record's Changes backwards. No clock, no terminal, no global state.

public struct Engine: Sendable {
    public internal(set) var state: EngineState
    var log = ChangeLog()
    /// Per-step tallies that become the narration (what happened, how often, which kernel function).
    var tally = Tally()
    /// Processes the OOM killer took during the current step.
    var oomKilled: [String] = []
    /// The OOM killer found nothing to kill during the current step.
    var oomNothingToKill = false
    /// Hazards found during the current step.
    var hazards: [String] = []
    /// Lazy flush queues drained during the current step.
    var flushNotes: [String] = []
    /// Pinned frames the current zap unmapped: (vpn, pfn).
    var pinnedZaps: [(UInt64, Int)] = []
    /// A process is exiting: its pinned pages' unmapping is no hazard.
    var exiting = false

    /// Boots a machine: reserves kernel memory, frees the rest into the buddy allocator, fragments on request.
    public init(config: MachineConfig) {
        state = EngineState(config: config, phys: PhysicalMemory(frames: config.frames), meta: MachineMeta(),
                            swapMap: Array(repeating: 0, count: Int(config.swap >> pageShift)))
        boot()
        log.reset()
        tally = Tally()
    }

    // MARK: - Logged primitives: every state mutation goes through these.

    @inline(__always) mutating func logFrame(_ pfn: Int) {
        log.changes.append(.frame(pfn: Int32(pfn), old: state.phys.frame(pfn)))
    }

    mutating func touchMachine() {
        if !log.machineLogged {
            log.machineLogged = true
            log.changes.append(.machine(old: state.meta))
        }
    }

    mutating func touchProcess(_ p: Int) {
        if log.processesLogged.insert(Int32(p)).inserted {
            log.changes.append(.process(index: Int32(p), old: state.processes[p].meta))
        }
    }

    mutating func touchKernelBuffers() {
        if !log.kernelBuffersLogged {
            log.kernelBuffersLogged = true
            log.changes.append(.kernelBuffers(old: state.kernelBuffers))
        }
    }

    mutating func touchDevice(_ d: Int) {
        if log.devicesLogged.insert(Int32(d)).inserted {
            log.changes.append(.device(index: Int32(d), old: state.devices[d]))
        }
    }

    mutating func swapSet(_ slot: Int, _ count: UInt16) {
        log.changes.append(.swapSlot(slot: Int32(slot), old: state.swapMap[slot]))
        state.swapMap[slot] = count
    }

    mutating func swapCacheSet(_ slot: Int, _ pfn: Int32?) {
        log.changes.append(.swapCache(slot: Int32(slot), old: state.swapCache[Int32(slot)]))
        state.swapCache[Int32(slot)] = pfn
    }

    mutating func shmemSet(_ object: Int32, _ index: UInt64, _ pfn: Int32?) {
        log.changes.append(.shmemPage(object: object, index: index, old: state.shmem[object]?[index]))
        state.shmem[object, default: [:]][index] = pfn
        if state.shmem[object]?.isEmpty == true { state.shmem[object] = nil }
    }

    // MARK: - Undo

    /// Restores the state before `record` was applied. Records must be undone newest first.
    public mutating func undo(_ record: StepRecord) {
        for change in record.changes.reversed() { revert(change) }
    }

    mutating func revert(_ change: Change) {
        switch change {
        case let .frame(pfn, old):
            state.phys.setFrame(Int(pfn), old)
        case let .freeListInsert(order, pfn):
            state.phys.listRemove(order: Int(order), pfn: Int(pfn))
        case let .freeListRemove(order, pfn, prev):
            state.phys.listInsert(order: Int(order), pfn: Int(pfn), afterPrev: prev)
        case let .pte(proc, vpn, old):
            let region = vpn >> 9
            let i = Int(vpn & 511)
            let cur = state.processes[Int(proc)].pt.tables[region]!.entries[i]
            state.processes[Int(proc)].pt.tables[region]!.entries[i] = old
            state.processes[Int(proc)].pt.tables[region]!.used += (old.isNone ? 0 : 1) - (cur.isNone ? 0 : 1)
        case let .pteTableCreated(proc, region):
            state.processes[Int(proc)].pt.tables[region] = nil
        case let .pteTableFreed(proc, region, pfn):
            state.processes[Int(proc)].pt.tables[region] = PTETable(pfn: pfn)
        case let .pmd(proc, region, old):
            state.processes[Int(proc)].pt.hugePMDs[region] = old
        case let .upperTable(proc, key, old):
            if key == Engine.pgdKey {
                state.processes[Int(proc)].pt.pgd = old ?? -1
            } else {
                state.processes[Int(proc)].pt.upper[key] = old
            }
        case let .process(index, old):
            state.processes[Int(index)].meta = old
        case .processAdded:
            state.processes.removeLast()
        case let .device(index, old):
            state.devices[Int(index)] = old
        case .deviceAdded:
            state.devices.removeLast()
        case let .machine(old):
            state.meta = old
        case let .kernelBuffers(old):
            state.kernelBuffers = old
        case let .swapSlot(slot, old):
            state.swapMap[Int(slot)] = old
        case let .swapCache(slot, old):
            state.swapCache[slot] = old
        case let .shmemPage(object, index, old):
            state.shmem[object, default: [:]][index] = old
            if state.shmem[object]?.isEmpty == true { state.shmem[object] = nil }
        }
    }
}

/// Counts of what a step did, keyed by a short event name; turned into narration at the end of the step.
struct Tally: Sendable {
    var counts: [String: Int] = [:]
    var order: [String] = []

    mutating func add(_ key: String, _ n: Int = 1) {
        if counts[key] == nil { order.append(key) }
        counts[key, default: 0] += n
    }

    subscript(_ key: String) -> Int { counts[key] ?? 0 }
}
