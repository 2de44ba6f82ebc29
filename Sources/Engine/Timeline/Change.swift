// Invertible deltas. Every mutation of Engine state goes through a logged primitive, so undoing a
// step is applying its Changes' inverses in reverse order, and the UI can mark what a step changed.
//
// Hot, numerous state (frames, PTEs, free lists) is logged field by field. Small per-process and
// machine-wide records (VMAs, buffers, counters) are logged as a whole old copy, once per step,
// the first time the step touches them: cheaper than a delta per counter and trivially exact.

public enum Change: Sendable {
    /// A frame's struct-page fields before the change.
    case frame(pfn: Int32, old: PhysicalMemory.Frame)
    /// A free block was put on free_area[order] after `prev` (-1: at the head).
    case freeListInsert(order: Int8, pfn: Int32)
    /// A free block was taken off free_area[order]; it sat after `prev`.
    case freeListRemove(order: Int8, pfn: Int32, prev: Int32)
    /// A PTE of process `proc` at virtual page `vpn` before the change.
    case pte(proc: Int32, vpn: UInt64, old: PTE)
    /// A PTE table for a 2 MiB region was created (with its page-table frame).
    case pteTableCreated(proc: Int32, region: UInt64)
    /// An empty PTE table was freed; it lived in frame `pfn`.
    case pteTableFreed(proc: Int32, region: UInt64, pfn: Int32)
    /// A PMD-level entry (huge page or none) before the change.
    case pmd(proc: Int32, region: UInt64, old: PTE?)
    /// An upper-level table (PMD or PUD table) map entry before the change.
    case upperTable(proc: Int32, key: UInt64, old: Int32?)
    /// A process record (VMAs, buffers, counters, malloc state) before this step first touched it.
    indirect case process(index: Int32, old: ProcessMeta)
    /// A process was created (fork, or a `process` declaration run as a step).
    case processAdded
    /// A device (IOPTEs, mappings, IOTLB, counters) before this step first touched it.
    indirect case device(index: Int32, old: DeviceState)
    /// A device was declared.
    case deviceAdded
    /// Machine-wide scalars before this step first touched them.
    indirect case machine(old: MachineMeta)
    /// The UMP and dma-buf registry before this step first touched it.
    indirect case kernelBuffers(old: [KernelBuffer])
    /// A swap slot's use count before the change.
    case swapSlot(slot: Int32, old: UInt16)
    /// The swap cache entry of a slot before the change.
    case swapCache(slot: Int32, old: Int32?)
    /// A shared-memory (shmem) object's page before the change.
    case shmemPage(object: Int32, index: UInt64, old: Int32?)
}

/// Collects the Changes of the step being applied.
struct ChangeLog: Sendable {
    var changes: [Change] = []
    var machineLogged = false
    var kernelBuffersLogged = false
    var processesLogged = Set<Int32>()
    var devicesLogged = Set<Int32>()

    mutating func reset() {
        changes.removeAll(keepingCapacity: false)
        machineLogged = false
        kernelBuffersLogged = false
        processesLogged.removeAll()
        devicesLogged.removeAll()
    }
}
