// The whole simulated machine as one value. Equatable, so tests compare whole states.

/// `machine` options with their defaults filled in.
public struct MachineConfig: Equatable, Sendable {
    public var ram: UInt64 = 64 << 20
    public var thp: THPMode = .madvise
    public var kernel: KernelPreset = .v6_12
    public var memlock: UInt64 = 8 << 20
    public var swap: UInt64 = 0
    public var cma: UInt64 = 0
    public var umpLimit: UMPLimit = .none
    public var seed: UInt64 = 1
    public var fragment: Int = 0

    public init() {}

    public init(_ decl: MachineDecl?) {
        guard let d = decl else { return }
        if let v = d.ram { ram = v }
        if let v = d.thp { thp = v }
        if let v = d.kernel { kernel = v }
        if let v = d.memlock { memlock = v }
        if let v = d.swap { swap = v }
        if let v = d.cma { cma = v }
        if let v = d.umpLimit { umpLimit = v }
        if let v = d.seed { seed = v }
        if let v = d.fragment { fragment = v }
    }

    public var frames: Int { Int(ram >> pageShift) }
}

/// A UMP allocation or a dma-buf: non-swappable kernel memory handed to user space.
public struct KernelBuffer: Equatable, Sendable {
    /// The UMP secure id (1...4095), or the dma-buf's inode-like number.
    public var id: Int32
    public var kind: BufferKind
    public var size: UInt64
    public var pfns: [Int32]
    /// Physically contiguous (ump `linear`, the CMA heap).
    public var contiguous: Bool
    public var creator: String
    /// Processes that hold it: the fd (dma-buf) or a UMP handle.
    public var holders: [String]
    /// Device mappings that use it.
    public var deviceMaps: Int
    /// Pages charged to the creator's locked_vm (`ump-limit=memlock`).
    public var chargedPages: Int
    public var freed: Bool
}

/// Machine-wide scalars, logged whole once per step.
public struct MachineMeta: Equatable, Sendable {
    public var zeroPfn: Int32 = 0
    /// The huge zero folio (order 9), allocated on first use as get_huge_zero_page() does; -1 before.
    public var hugeZeroPfn: Int32 = -1
    public var nextPid: Int32 = 101
    public var nextAnonVMA: Int32 = 1
    public var nextShmem: Int32 = 1
    /// Advances on every page allocation: the LRU age stamp.
    public var allocClock: UInt32 = 0
    public var swapUsed: Int = 0
    /// Lowest swap slot that may be free (a search hint, not state a user sees).
    public var swapHint: Int = 0
    public var kernelReservedFrames: Int = 0
    public var oomKills: Int = 0
}

public struct EngineState: Equatable, Sendable {
    public internal(set) var config: MachineConfig
    public internal(set) var phys: PhysicalMemory
    public internal(set) var meta: MachineMeta
    public internal(set) var processes: [ProcessState] = []
    public internal(set) var devices: [DeviceState] = []
    /// UMP allocations and dma-bufs: kernel memory that processes map and devices use.
    public internal(set) var kernelBuffers: [KernelBuffer] = []
    /// swap_map: use count per swap slot.
    public internal(set) var swapMap: [UInt16]
    /// Swap cache: slot → frame still holding the page after a swap-in shared by several PTEs.
    public internal(set) var swapCache: [Int32: Int32] = [:]
    /// shmem objects: object → (page index → frame).
    public internal(set) var shmem: [Int32: [UInt64: Int32]] = [:]

    public func processIndex(named name: String) -> Int? {
        processes.firstIndex { $0.meta.name == name }
    }

    public func deviceIndex(named name: String) -> Int? {
        devices.firstIndex { $0.name == name }
    }
}
