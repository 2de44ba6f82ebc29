// What a device is made of: an IOMMU domain (format, page sizes, an I/O page table whose table
// pages are frames), the mappings drivers made, an IOTLB and its counters.

/// The page-size bitmap and walk depth of an IOMMU page-table format (reference §4.2).
public struct IOMMUFormatInfo: Equatable, Sendable {
    public var format: IOMMUFormat
    /// Supported page sizes, one bit each (bit n = 2^n bytes).
    public var pgsizeBitmap: UInt64
    /// Levels of a full walk from the root to a 4 KiB leaf.
    public var levels: Int

    public static func of(_ f: IOMMUFormat) -> IOMMUFormatInfo {
        switch f {
        case .vtd: IOMMUFormatInfo(format: f, pgsizeBitmap: (1 << 12) | (1 << 21) | (1 << 30), levels: 4)
        case .armLPAE: IOMMUFormatInfo(format: f, pgsizeBitmap: (1 << 12) | (1 << 21) | (1 << 30), levels: 4)
        case .armV7s: IOMMUFormatInfo(format: f, pgsizeBitmap: (1 << 12) | (1 << 16) | (1 << 20) | (1 << 24), levels: 2)
        // AMD v1: every power of two from 4 KiB to 2^51 except 512 GiB; 3 levels for a 39-bit IOVA space.
        case .amdV1: IOMMUFormatInfo(format: f, pgsizeBitmap: ((1 << 52) - (1 << 12)) & ~(UInt64(1) << 39), levels: 3)
        // SVA walks the CPU's own 4-level page table (4K|2M|1G).
        case .sva: IOMMUFormatInfo(format: f, pgsizeBitmap: (1 << 12) | (1 << 21) | (1 << 30), levels: 4)
        case .none: IOMMUFormatInfo(format: f, pgsizeBitmap: 0, levels: 0)
        }
    }

    /// Bits of IOVA the table translates: ARM v7s 32 (ias), else 12 + 9 a level (vtd and ARM LPAE
    /// 48 with 4 levels, AMD v1 39 with the 3 the Engine builds); 64 for no IOMMU (physical addresses).
    public var inputBits: Int {
        switch format {
        case .armV7s: 32
        case .none: 64
        default: 12 + 9 * levels
        }
    }

    /// How many levels a walk takes to reach a leaf of this size.
    public func walkLevels(forPageSize size: UInt64) -> Int {
        switch format {
        case .armV7s: return size >= 1 << 20 ? 1 : 2
        case .none: return 0
        default:
            // 9 bits per level above the 4 KiB leaf: 2 MiB leaves sit one level up, 1 GiB two.
            var levels = self.levels
            var s = size >> 12
            while s >= 512 && levels > 1 { s >>= 9; levels -= 1 }
            return levels
        }
    }
}

/// One I/O page-table entry: a translation of `size` bytes at `iova` to `pa`.
public struct IOPTE: Equatable, Sendable {
    public var iova: UInt64
    public var pa: UInt64
    public var size: UInt64
    public var writable: Bool
}

/// One IOTLB entry: a cached IOPTE (one entry per IOPTE, at its size).
public struct IOTLBEntry: Equatable, Sendable {
    public var iova: UInt64
    public var pa: UInt64
    public var size: UInt64
    /// Replacement bookkeeping: last use (LRU) or fill time (FIFO).
    public var stamp: UInt64
    /// Still cached although its IOPTE is gone (lazy flush): a DMA through it is a hazard.
    public var stale: Bool
}

public struct IOTLBState: Equatable, Sendable {
    public var capacity: Int
    /// Associativity; equal to capacity when fully associative.
    public var ways: Int
    public var policy: IOTLBPolicy
    // Set-major flat slots (slot = set * ways + way); a set's live entries come first.
    var tags: [UInt64]
    var sizes: [UInt64]
    var pas: [UInt64]
    var stamps: [UInt64]
    var staleFlags: [Bool]
    var fill: [Int]
    public var clock: UInt64 = 0
    public var rng: SplitMix64

    // A fully associative IOTLB's index (IOTLB.swift): what a CAM finds in one cycle, found in O(1)
    // instead of a scan of every slot. Derived from the slots above (and their stamps), so equality
    // leaves it out; empty for a set-associative IOTLB, whose sets are scanned.
    /// Open addressing, linear probing: slot + 1, 0 for empty.
    var index: [Int32] = []
    /// Replacement order, oldest stamp first: the next victim is `orderHead` (LRU and FIFO).
    var orderPrev: [Int32] = []
    var orderNext: [Int32] = []
    var orderHead: Int32 = -1
    var orderTail: Int32 = -1
    /// Entries of each page size (by log2), and the sizes present: a lookup probes only those.
    var sizeCounts: [Int32] = []
    var presentSizes: UInt64 = 0

    public var setCount: Int { fill.count }
    public var entryCount: Int { fill.reduce(0, +) }

    /// The same entries in the same slots with the same replacement state; the index is derived.
    public static func == (a: IOTLBState, b: IOTLBState) -> Bool {
        a.capacity == b.capacity && a.ways == b.ways && a.policy == b.policy && a.fill == b.fill && a.clock == b.clock
            && a.rng == b.rng && a.tags == b.tags && a.sizes == b.sizes && a.pas == b.pas && a.stamps == b.stamps
            && a.staleFlags == b.staleFlags
    }

    /// The entries, set by set.
    public var sets: [[IOTLBEntry]] {
        (0..<setCount).map { s in
            (0..<fill[s]).map { w in
                let i = s * ways + w
                return IOTLBEntry(iova: tags[i], pa: pas[i], size: sizes[i], stamp: stamps[i], stale: staleFlags[i])
            }
        }
    }
}

/// A driver's mapping of (part of) a process buffer: what `map` pinned and where it put it.
public struct IOMapping: Equatable, Sendable {
    public var process: String
    public var buffer: String
    public var iova: UInt64
    public var size: UInt64
    /// Process virtual address that IOVA `iova` stands for.
    public var va: UInt64
    /// The frames behind each 4 KiB of the mapping, in order (the pinned pages for user memory).
    public var pfns: [Int32]
    public var writable: Bool
    /// Pages pinned (FOLL_PIN | FOLL_LONGTERM) for this mapping; 0 for ump and dma-buf memory.
    public var pinnedPages: Int
    /// Pages charged to the process's locked_vm.
    public var lockedPages: Int
    /// Index in EngineState.kernelBuffers for ump and dma-buf memory, else -1.
    public var kernelBuffer: Int32 = -1
    /// IOVA space the allocator reserved (sizes under 32 pages are rounded up to a power of two).
    public var iovaLength: UInt64 = 0
}

public struct DeviceStats: Equatable, Sendable {
    public var accesses = 0
    public var hits = 0
    public var misses = 0
    public var walks = 0
    public var stallNs = 0
    public var faults = 0
    /// DMA that went through a stale IOTLB entry (lazy flush) or reached a frame the process no longer maps.
    public var hazards = 0
    /// I/O page faults handled by the CPU fault path (SVA).
    public var ioPageFaults = 0
}

/// A device's counters and small mutable scalars: logged whole the first time a step touches them.
public struct DeviceCounters: Equatable, Sendable {
    public var stats = DeviceStats()
    /// The seeded generator behind `pattern=random`.
    public var dmaRng = SplitMix64(seed: 1)
    /// SVA: the process whose page table the device walks (bound by its first map).
    public var svaProcess: String?
}

public struct DeviceState: Equatable, Sendable {
    public let name: String
    public let info: IOMMUFormatInfo
    /// The format's bitmap restricted by `pagesizes=`.
    public let pgsizeBitmap: UInt64
    public let walkNs: Int
    public let hitNs: Int
    public let flush: FlushMode
    /// IOPTEs by IOVA (one per mapped page of its own size).
    public fileprivate(set) var ioptes: [UInt64: IOPTE] = [:]
    /// I/O page-table pages by (level, index) key → frame.
    public fileprivate(set) var tablePages: [UInt64: Int32] = [:]
    public fileprivate(set) var mappings: [IOMapping] = []
    public fileprivate(set) var iotlb: IOTLBState
    /// flush=lazy: mappings already unmapped whose IOTLB invalidation waits in the flush queue.
    /// Their IOVA stays allocated and their IOTLB entries stay usable until the queue drains.
    public fileprivate(set) var lazyUnmapped: [IOMapping] = []
    public fileprivate(set) var counters = DeviceCounters()

    init(name: String, info: IOMMUFormatInfo, pgsizeBitmap: UInt64, walkNs: Int, hitNs: Int, flush: FlushMode,
         iotlb: IOTLBState, tablePages: [UInt64: Int32]) {
        self.name = name
        self.info = info
        self.pgsizeBitmap = pgsizeBitmap
        self.walkNs = walkNs
        self.hitNs = hitNs
        self.flush = flush
        self.iotlb = iotlb
        self.tablePages = tablePages
    }

    public var stats: DeviceStats { counters.stats }
    public var dmaRng: SplitMix64 { counters.dmaRng }
    public var svaProcess: String? { counters.svaProcess }

    /// IOPTEs in IOVA order.
    public var sortedIOPTEs: [IOPTE] { ioptes.values.sorted { $0.iova < $1.iova } }
}

// MARK: - Logged writes

extension Engine {
    /// A new device at the end of the device list.
    mutating func addDevice(_ dev: DeviceState, _ j: inout StepJournal) {
        state.devices.append(dev)
        j.log(.deviceAdded)
    }

    /// Changes a device's counters, logging them whole the first time this step does.
    @inline(__always) mutating func updateDeviceCounters(_ d: Int, _ j: inout StepJournal, _ body: (inout DeviceCounters) -> Void) {
        if j.deviceCountersLogged.insert(Int32(d)).inserted {
            j.log(.deviceCounters(device: Int32(d), old: state.devices[d].counters))
        }
        body(&state.devices[d].counters)
    }

    /// Marks a device as touched by this step (the TUI shows it as changed) without changing it.
    mutating func touchDevice(_ d: Int, _ j: inout StepJournal) { updateDeviceCounters(d, &j) { _ in } }

    /// Works on the IOTLB, logging it whole the first time this step does.
    @discardableResult
    mutating func updateIOTLB<R>(_ d: Int, _ j: inout StepJournal, _ body: (inout IOTLBState) -> R) -> R {
        if j.iotlbLogged.insert(Int32(d)).inserted {
            j.log(.iotlb(device: Int32(d), old: state.devices[d].iotlb))
        }
        return body(&state.devices[d].iotlb)
    }

    mutating func setIOPTE(_ d: Int, iova: UInt64, _ e: IOPTE?, _ j: inout StepJournal) {
        j.log(.iopte(device: Int32(d), iova: iova, old: state.devices[d].ioptes[iova]))
        state.devices[d].ioptes[iova] = e
    }

    mutating func setIOTablePage(_ d: Int, key: UInt64, _ pfn: Int32?, _ j: inout StepJournal) {
        j.log(.ioTablePage(device: Int32(d), key: key, old: state.devices[d].tablePages[key]))
        state.devices[d].tablePages[key] = pfn
    }

    mutating func mappingAppend(_ d: Int, _ m: IOMapping, _ j: inout StepJournal) {
        state.devices[d].mappings.append(m)
        j.log(.deviceMapping(device: Int32(d), .inserted(at: state.devices[d].mappings.count - 1)))
    }

    mutating func mappingReplace(_ d: Int, at i: Int, _ m: IOMapping, _ j: inout StepJournal) {
        j.log(.deviceMapping(device: Int32(d), .replaced(at: i, old: state.devices[d].mappings[i])))
        state.devices[d].mappings[i] = m
    }

    mutating func mappingRemove(_ d: Int, at i: Int, _ j: inout StepJournal) -> IOMapping {
        let old = state.devices[d].mappings.remove(at: i)
        j.log(.deviceMapping(device: Int32(d), .removed(at: i, old: old)))
        return old
    }

    mutating func flushQueueAppend(_ d: Int, _ m: IOMapping, _ j: inout StepJournal) {
        state.devices[d].lazyUnmapped.append(m)
        j.log(.flushQueue(device: Int32(d), .inserted(at: state.devices[d].lazyUnmapped.count - 1)))
    }

    mutating func flushQueueReset(_ d: Int, _ j: inout StepJournal) {
        j.log(.flushQueue(device: Int32(d), .reset(old: state.devices[d].lazyUnmapped)))
        state.devices[d].lazyUnmapped = []
    }

    /// Undoes a device Change (Engine.undo routes them here).
    mutating func undoDevice(_ change: Change) {
        switch change {
        case .deviceAdded: state.devices.removeLast()
        case let .iopte(d, iova, old): state.devices[Int(d)].ioptes[iova] = old
        case let .ioTablePage(d, key, old): state.devices[Int(d)].tablePages[key] = old
        case let .deviceMapping(d, edit): state.devices[Int(d)].mappings.undo(edit)
        case let .flushQueue(d, edit): state.devices[Int(d)].lazyUnmapped.undo(edit)
        case let .deviceCounters(d, old): state.devices[Int(d)].counters = old
        case let .iotlb(d, old): state.devices[Int(d)].iotlb = old
        default: break
        }
    }
}
