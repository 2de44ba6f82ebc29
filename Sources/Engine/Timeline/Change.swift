// Invertible deltas. Every mutation of Engine state goes through a logged accessor that records one
// of these, so undoing a step is applying its Changes' inverses in reverse order, and the UI can
// mark what a step changed. A Change records what changed (a frame, a PTE, a VMA, a counter), never
// a copy of a whole table, so a step's undo costs what the step did.
//
// The accessors live beside the storage they guard (PhysicalMemory.swift, PageTable.swift,
// ProcessMeta.swift, DeviceTypes.swift, EngineState.swift, KernelBuffers.swift), which keep their
// fields `fileprivate(set)`: a write that does not log cannot be written anywhere else.

public enum Change: Sendable {
    // MARK: Physical memory
    /// A frame's struct-page fields before the change.
    case frame(pfn: Int32, old: PhysicalMemory.Frame)
    /// A run of frames (first, first + old.count) before a bulk change.
    case frames(first: Int32, old: [PhysicalMemory.Frame])
    /// What frames [first, first + count) held before the step wrote them; all held `old`.
    case dataRun(first: Int32, count: Int32, old: UInt64)
    /// A free block was put on free_area[order].
    case freeListInsert(order: Int8, pfn: Int32)
    /// A free block was taken off free_area[order]; it sat after `prev` (-1: at the head).
    case freeListRemove(order: Int8, pfn: Int32, prev: Int32)

    // MARK: Machine-wide
    /// Machine-wide scalars before this step first touched them.
    indirect case machine(old: MachineMeta)
    /// A swap slot's use count before the change.
    case swapSlot(slot: Int32, old: UInt16)
    /// What a swap slot held (a DataTag's raw value) before the change.
    case swapData(slot: Int32, old: UInt64)
    /// The swap cache entry of a slot before the change.
    case swapCache(slot: Int32, old: Int32?)
    /// A file was made (a `file` declaration or a memfd).
    case fileAdded
    /// A shared-memory (shmem) object's page before the change.
    case shmemPage(object: Int32, index: UInt64, old: Int32?)

    // MARK: Page tables
    /// A PTE of process `proc` at virtual page `vpn` before the change.
    case pte(proc: Int32, vpn: UInt64, old: PTE)
    /// A PTE table for a 2 MiB region was created (with its page-table frame).
    case pteTableCreated(proc: Int32, region: UInt64)
    /// An empty PTE table was freed; it lived in frame `pfn`.
    case pteTableFreed(proc: Int32, region: UInt64, pfn: Int32)
    /// A PMD-level entry (huge page or none) before the change.
    case pmd(proc: Int32, region: UInt64, old: PTE?)
    /// An upper-level table (PMD or PUD table, or the PGD) before the change.
    case upperTable(proc: Int32, key: UInt64, old: Int32?)

    // MARK: Processes
    /// A process was created (fork, or a `process` declaration run as a step).
    case processAdded
    /// A process's scalars (counters, brk, liveness) before this step first touched them.
    indirect case processCounters(proc: Int32, old: ProcessCounters)
    indirect case vma(proc: Int32, ListEdit<VMA>)
    indirect case buffer(proc: Int32, ListEdit<Buffer>)
    indirect case heapChunk(proc: Int32, ListEdit<HeapChunk>)
    indirect case pinRecord(proc: Int32, ListEdit<PinRecord>)

    // MARK: Devices
    /// A device was declared.
    case deviceAdded
    /// An IOPTE at `iova` before the change.
    indirect case iopte(device: Int32, iova: UInt64, old: IOPTE?)
    /// An I/O page-table page before the change.
    case ioTablePage(device: Int32, key: UInt64, old: Int32?)
    indirect case deviceMapping(device: Int32, ListEdit<IOMapping>)
    indirect case flushQueue(device: Int32, ListEdit<IOMapping>)
    /// A device's counters before this step first touched them.
    indirect case deviceCounters(device: Int32, old: DeviceCounters)
    /// The IOTLB before this step first touched it (a fixed-size cache: the copy is its capacity).
    indirect case iotlb(device: Int32, old: IOTLBState)

    // MARK: Kernel buffers
    indirect case kernelBuffer(ListEdit<KernelBuffer>)
}
