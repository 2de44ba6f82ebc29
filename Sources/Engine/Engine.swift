// The Engine: a reducer over EngineState. `apply` runs one statement and returns a StepRecord;
// `undo` applies that record's Changes backwards. No clock, no terminal, no global state, and no
// stored property but the state: what a step collects lives in its StepJournal.

public struct Engine: Sendable {
    public internal(set) var state: EngineState

    /// Boots a machine: reserves kernel memory, frees the rest into the buddy allocator, fragments on request.
    public init(config: MachineConfig) {
        state = EngineState(config: config)
        if config.fragment > 0 {
            // Boot is not a step: nothing to undo, so its journal is dropped.
            var boot = StepJournal()
            fragment(percent: config.fragment, &boot)
        }
    }

    // MARK: - Undo

    /// Restores the state before `record` was applied. Records must be undone newest first.
    public mutating func undo(_ record: StepRecord) {
        for change in record.changes.reversed() { undo(change) }
    }

    /// Each kind of Change is undone beside the storage it logs; this switch says where.
    mutating func undo(_ change: Change) {
        switch change {
        case .frame, .frames, .dataRun, .freeListInsert, .freeListRemove:
            state.phys.undo(change)
        case .machine, .swapSlot, .swapCache, .swapData, .shmemPage, .fileAdded:
            undoMachine(change)
        case .pte, .pteTableCreated, .pteTableFreed, .pmd, .upperTable:
            undoPageTable(change)
        case .processAdded, .processCounters, .vma, .buffer, .heapChunk, .pinRecord:
            undoProcess(change)
        case .deviceAdded, .iopte, .ioTablePage, .deviceMapping, .flushQueue, .deviceCounters, .iotlb:
            undoDevice(change)
        case .kernelBuffer:
            undoKernelBuffer(change)
        }
    }
}
