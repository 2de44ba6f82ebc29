// The whole simulated machine as one value. Equatable, so tests compare whole states.
// The machine-wide scalars, swap and shmem are written here only, through logged accessors.

/// `machine` options with their defaults filled in.
public struct MachineConfig: Equatable, Sendable {
    public var ram: UInt64 = 64 << 20
    public var thp: THPMode = .madvise
    /// The kernel's default, as 6.12 ships it.
    public var thpDefrag: THPDefrag = .madvise
    public var kernel: KernelPreset = .v6_12
    public var memlock: UInt64 = 8 << 20
    public var swap: UInt64 = 0
    public var cma: UInt64 = 0
    public var umpLimit: UMPLimit = .none
    public var seed: UInt64 = 1
    public var fragment: Int = 0
    /// Multi-size THP orders enabled (`always`) for anonymous faults, as a bit set; 0 by default, as in 6.12.
    public var mthpOrders: UInt16 = 0

    public init() {}

    public init(_ decl: MachineDecl?) {
        guard let d = decl else { return }
        if let v = d.ram { ram = v }
        if let v = d.thp { thp = v }
        if let v = d.thpDefrag { thpDefrag = v }
        if let v = d.kernel { kernel = v }
        if let v = d.memlock { memlock = v }
        if let v = d.swap { swap = v }
        if let v = d.cma { cma = v }
        if let v = d.umpLimit { umpLimit = v }
        if let v = d.seed { seed = v }
        if let v = d.fragment { fragment = v }
        if let v = d.mthpOrders { mthpOrders = v }
    }

    public var frames: Int { Int(ram >> pageShift) }
}

/// Machine-wide scalars, logged whole once per step.
public struct MachineMeta: Equatable, Sendable {
    public internal(set) var zeroPfn: Int32 = 0
    /// The huge zero folio (order 9), allocated on first use as get_huge_zero_page() does; -1 before.
    public internal(set) var hugeZeroPfn: Int32 = -1
    /// huge_zero_refcount: one for the folio itself, one for each mm that has mapped it
    /// (MMF_HUGE_ZERO_PAGE, mm_get_huge_zero_folio, mm/huge_memory.c:281); 0 before it exists.
    public internal(set) var hugeZeroRefcount: Int32 = 0
    public internal(set) var nextPid: Int32 = 101
    public internal(set) var nextAnonVMA: Int32 = 1
    public internal(set) var nextShmem: Int32 = 1
    /// Advances on every page allocation: the LRU age stamp.
    public internal(set) var allocClock: UInt32 = 0
    public internal(set) var swapUsed: Int = 0
    /// Lowest swap slot that may be free (a search hint, not state a user sees).
    public internal(set) var swapHint: Int = 0
    public internal(set) var kernelReservedFrames: Int = 0
    public internal(set) var oomKills: Int = 0
    /// user->locked_vm by user, in pages: what io_uring charges (io_uring/rsrc.c:44).
    public internal(set) var userLockedVM: [String: Int] = [:]
}

/// A file: a regular one (its pages read in from disk on a page-cache miss) or a memfd (shmem: zero-filled).
public struct FileObject: Equatable, Sendable {
    public var name: String
    public var size: UInt64
    /// Its page cache, a key of EngineState.shmem.
    public var object: Int32
    /// A memfd (tmpfs): no disk behind it, no dirty tracking.
    public var shmem: Bool
    public var pages: UInt64 { (size + pageSize - 1) >> pageShift }
}

public struct EngineState: Equatable, Sendable {
    public let config: MachineConfig
    public internal(set) var phys: PhysicalMemory
    public fileprivate(set) var meta: MachineMeta
    public internal(set) var processes: [ProcessState] = []
    public internal(set) var devices: [DeviceState] = []
    /// UMP allocations and dma-bufs: kernel memory that processes map and devices use.
    public fileprivate(set) var kernelBuffers: [KernelBuffer] = []
    /// swap_map: use count per swap slot.
    public fileprivate(set) var swapMap: [UInt16]
    /// Which chunks of swapMap changed since the last snapshot (Timeline/Snapshot.swift).
    fileprivate var swapChunks: ChunkTracker<ArrayChunk<UInt16>>
    /// What each used swap slot holds (a DataTag's raw value); slots never written are absent.
    public fileprivate(set) var swapData: [Int32: UInt64] = [:]
    /// Swap cache: slot → frame still holding the page after a swap-in shared by several PTEs.
    public fileprivate(set) var swapCache: [Int32: Int32] = [:]
    /// Page caches: object → (page index → frame). The objects of shared anonymous mappings and
    /// memfds (shmem), and of regular files.
    public fileprivate(set) var shmem: [Int32: [UInt64: Int32]] = [:]
    /// Files: regular files (`file NAME SIZE`) and memfds, in the order they were made.
    public fileprivate(set) var files: [FileObject] = []

    /// The machine as it boots: memory handed to the buddy allocator, the zero page reserved.
    init(config: MachineConfig) {
        self.config = config
        let boot = PhysicalMemory.booted(config)
        phys = boot.memory
        meta = MachineMeta()
        meta.zeroPfn = Int32(boot.zeroPfn)
        meta.kernelReservedFrames = boot.reserved
        swapMap = Array(repeating: 0, count: Int(config.swap >> pageShift))
        swapChunks = ChunkTracker(elements: swapMap.count)
    }

    public func processIndex(named name: String) -> Int? {
        processes.firstIndex { $0.meta.name == name }
    }

    public func swapDataTag(_ slot: Int) -> DataTag { DataTag(rawValue: swapData[Int32(slot)] ?? 0) }

    public func fileIndex(named name: String) -> Int? { files.firstIndex { $0.name == name } }

    /// The file whose page cache is `object`.
    public func fileIndex(object: Int32) -> Int? { files.firstIndex { $0.object == object } }

    public func deviceIndex(named name: String) -> Int? {
        devices.firstIndex { $0.name == name }
    }
}

// MARK: - Logged writes

extension Engine {
    /// Changes the machine-wide scalars, logging them whole the first time this step does.
    @inline(__always) mutating func updateMachine(_ j: inout StepJournal, _ body: (inout MachineMeta) -> Void) {
        if !j.machineLogged {
            j.machineLogged = true
            j.log(.machine(old: state.meta))
        }
        body(&state.meta)
    }

    mutating func setSwapSlot(_ slot: Int, _ count: UInt16, _ j: inout StepJournal) {
        j.log(.swapSlot(slot: Int32(slot), old: state.swapMap[slot]))
        state.swapChunks.touch(slot)
        state.swapMap[slot] = count
    }

    mutating func setSwapData(_ slot: Int, _ tag: DataTag, _ j: inout StepJournal) {
        let old = state.swapData[Int32(slot)] ?? 0
        guard old != tag.rawValue else { return }
        j.log(.swapData(slot: Int32(slot), old: old))
        state.swapData[Int32(slot)] = tag.rawValue == 0 ? nil : tag.rawValue
    }

    mutating func setSwapCache(_ slot: Int, _ pfn: Int32?, _ j: inout StepJournal) {
        j.log(.swapCache(slot: Int32(slot), old: state.swapCache[Int32(slot)]))
        state.swapCache[Int32(slot)] = pfn
    }

    mutating func addFile(_ f: FileObject, _ j: inout StepJournal) {
        state.files.append(f)
        j.log(.fileAdded)
    }

    mutating func setShmemPage(_ object: Int32, _ index: UInt64, _ pfn: Int32?, _ j: inout StepJournal) {
        j.log(.shmemPage(object: object, index: index, old: state.shmem[object]?[index]))
        state.setShmem(object, index, pfn)
    }

    /// Undoes a Change of the machine-wide records (Engine.undo routes them here).
    mutating func undoMachine(_ change: Change) {
        switch change {
        case let .machine(old): state.meta = old
        case let .swapSlot(slot, old):
            state.swapChunks.touch(Int(slot))
            state.swapMap[Int(slot)] = old
        case let .swapCache(slot, old): state.swapCache[slot] = old
        case let .swapData(slot, old): state.swapData[slot] = old == 0 ? nil : old
        case let .shmemPage(object, index, old): state.setShmem(object, index, old)
        case .fileAdded: state.files.removeLast()
        default: break
        }
    }
}

// MARK: - Snapshots of swap_map (chunked like the frame arrays)

extension EngineState {
    mutating func freezeSwap() -> [ArrayChunk<UInt16>] {
        var tracker = swapChunks
        let map = swapMap
        let out = tracker.freeze { ArrayChunk(map[$0]) }
        swapChunks = tracker
        return out
    }

    /// Empties swapMap (for a snapshot's copy of the rest of the state).
    mutating func clearSwapMap() {
        swapMap = []
        swapChunks = ChunkTracker(elements: 0)
    }

    /// Moves the live swap map and its bookkeeping out of `other`.
    mutating func takeSwapMap(from other: inout EngineState) {
        swap(&swapMap, &other.swapMap)
        swap(&swapChunks, &other.swapChunks)
    }

    mutating func thawSwap(_ chunks: [ArrayChunk<UInt16>]) {
        var tracker = swapChunks
        tracker.thaw(chunks) { r, chunk in
            swapMap.replaceSubrange(r, with: chunk.elements)
        }
        swapChunks = tracker
    }
}

extension EngineState {
    fileprivate mutating func setShmem(_ object: Int32, _ index: UInt64, _ pfn: Int32?) {
        shmem[object, default: [:]][index] = pfn
        if shmem[object]?.isEmpty == true { shmem[object] = nil }
    }
}

// MARK: - The kernel-buffer registry, logged

extension Engine {
    mutating func addKernelBuffer(_ kb: KernelBuffer, _ j: inout StepJournal) {
        state.kernelBuffers.append(kb)
        j.log(.kernelBuffer(.inserted(at: state.kernelBuffers.count - 1)))
    }

    /// Changes one kernel buffer's holders, device count or freed flag, logging its old record.
    mutating func updateKernelBuffer(_ k: Int, _ j: inout StepJournal, _ body: (inout KernelBuffer) -> Void) {
        j.log(.kernelBuffer(.replaced(at: k, old: state.kernelBuffers[k])))
        body(&state.kernelBuffers[k])
    }

    /// A process now holds the buffer (its fd or a UMP handle).
    mutating func addHolder(_ k: Int, _ holder: String, _ j: inout StepJournal) {
        guard !state.kernelBuffers[k].holders.contains(holder) else { return }
        updateKernelBuffer(k, &j) { $0.holders.append(holder) }
    }

    /// Undoes a kernel-buffer Change (Engine.undo routes them here).
    mutating func undoKernelBuffer(_ change: Change) {
        if case let .kernelBuffer(edit) = change { state.kernelBuffers.undo(edit) }
    }
}
