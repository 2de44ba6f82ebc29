// What a step touched, indexed for drawing: frames, pages, processes, VMAs, devices and IOPTEs.
// Built from the record's Changes and the state after the step: the VMA list and the IOPTEs as the
// step found them come from undoing those Changes, not from a copy kept beside the state.

public struct ChangeIndex: Sendable {
    public private(set) var frames: FrameSet
    public private(set) var pages: [Int: PageSet] = [:]
    /// Processes whose record (VMAs, buffers, counters) the step touched, or that it created.
    public private(set) var processes: Set<Int> = []
    /// VMAs (by start) whose extent or flags are new, per process.
    public private(set) var vmas: [Int: Set<UInt64>] = [:]
    public private(set) var devices: Set<Int> = []
    /// IOPTEs (by IOVA) set, changed or cleared, per device.
    public private(set) var ioptes: [Int: Set<UInt64>] = [:]

    public init(frames: Int) { self.frames = FrameSet(frames: frames) }

    /// What `record` changed; `state` is the state right after it.
    public init(record: StepRecord?, state: EngineState) {
        self.init(frames: state.phys.frameCount)
        guard let record else { return }
        var vmaEdits: [Int: [ListEdit<VMA>]] = [:]
        var ioptesBefore: [Int: [UInt64: IOPTE?]] = [:]
        for change in record.changes {
            switch change {
            case let .frame(pfn, _):
                frames.insert(Int(pfn))
            case let .frames(first, old):
                frames.insert(range: Int(first)..<Int(first) + old.count)
            case let .dataRun(first, count, _):
                frames.insert(range: Int(first)..<Int(first) + Int(count))
            case let .pte(proc, vpn, _):
                pages[Int(proc), default: PageSet()].insert(vpn)
            case let .pmd(proc, region, _):
                pages[Int(proc), default: PageSet()].insertRegion(region)
            case .processAdded:
                processes.insert(state.processes.count - 1)
            case let .processCounters(proc, _), let .buffer(proc, _), let .heapChunk(proc, _), let .pinRecord(proc, _):
                processes.insert(Int(proc))
            case let .vma(proc, edit):
                processes.insert(Int(proc))
                vmaEdits[Int(proc), default: []].append(edit)
            case .deviceAdded:
                devices.insert(state.devices.count - 1)
            case let .iopte(d, iova, old):
                devices.insert(Int(d))
                if ioptesBefore[Int(d)]?[iova] == nil { ioptesBefore[Int(d), default: [:]][iova] = .some(old) }
            case let .deviceCounters(d, _), let .ioTablePage(d, _, _), let .deviceMapping(d, _), let .flushQueue(d, _), let .iotlb(d, _):
                devices.insert(Int(d))
            default:
                break
            }
        }
        // A VMA is marked when no VMA before the step had its extent and flags.
        for (p, edits) in vmaEdits where p < state.processes.count {
            var before = state.processes[p].meta.vmas
            for edit in edits.reversed() { before.undo(edit) }
            let keys = Set(before.map { VMAKey($0) })
            let changed = state.processes[p].meta.vmas.filter { !keys.contains(VMAKey($0)) }.map(\.start)
            if !changed.isEmpty { vmas[p] = Set(changed) }
        }
        for (d, before) in ioptesBefore where d < state.devices.count {
            let changed = before.compactMap { iova, old in state.devices[d].ioptes[iova] != old ? iova : nil }
            if !changed.isEmpty { ioptes[d] = Set(changed) }
        }
    }
}

/// What the PROCESS pane shows of a VMA: where it is and its flags.
private struct VMAKey: Hashable {
    var start: UInt64
    var end: UInt64
    var flags: VMFlags
    init(_ v: VMA) {
        start = v.start
        end = v.end
        flags = v.flags
    }
}
