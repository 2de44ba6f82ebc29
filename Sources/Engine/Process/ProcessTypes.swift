// What a process is made of: VMAs, the buffers the script named, counters, and a page table.

/// A page-table entry, x86-like but with the bits the model needs in plain sight.
/// pfn (or swap slot) in bits 12...51.
public struct PTE: Equatable, Hashable, Sendable {
    public var raw: UInt64
    public init(raw: UInt64) { self.raw = raw }
    public static let none = PTE(raw: 0)

    public static let presentBit: UInt64 = 1 << 0
    public static let writeBit: UInt64 = 1 << 1
    /// A special PTE that maps the shared zero page (pte_special: vm_normal_page() returns NULL).
    public static let zeroBit: UInt64 = 1 << 2
    /// A swap entry (not present); the number field is the swap slot.
    public static let swapBit: UInt64 = 1 << 3
    /// A PMD leaf mapping 2 MiB.
    public static let hugeBit: UInt64 = 1 << 4
    public static let dirtyBit: UInt64 = 1 << 5
    /// pte_swp_exclusive: the swapped-out page was PageAnonExclusive.
    public static let swapExclusiveBit: UInt64 = 1 << 6

    @inline(__always) public var isNone: Bool { raw == 0 }
    @inline(__always) public var present: Bool { raw & PTE.presentBit != 0 }
    @inline(__always) public var writable: Bool { raw & PTE.writeBit != 0 }
    @inline(__always) public var isZero: Bool { raw & PTE.zeroBit != 0 }
    @inline(__always) public var isSwap: Bool { raw & PTE.swapBit != 0 }
    @inline(__always) public var isHuge: Bool { raw & PTE.hugeBit != 0 }
    @inline(__always) public var number: Int { Int((raw >> 12) & 0xff_ffff_ffff) }

    @inline(__always) public static func page(pfn: Int, writable: Bool, zero: Bool = false, huge: Bool = false) -> PTE {
        var r = PTE.presentBit | (UInt64(pfn) << 12)
        if writable { r |= PTE.writeBit | PTE.dirtyBit }
        if zero { r |= PTE.zeroBit }
        if huge { r |= PTE.hugeBit }
        return PTE(raw: r)
    }

    @inline(__always) public static func swapEntry(slot: Int, exclusive: Bool) -> PTE {
        PTE(raw: PTE.swapBit | (exclusive ? PTE.swapExclusiveBit : 0) | (UInt64(slot) << 12))
    }

    @inline(__always) public func writeProtected() -> PTE { PTE(raw: raw & ~PTE.writeBit) }
}

public struct VMFlags: OptionSet, Equatable, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let read = VMFlags(rawValue: 1 << 0)
    public static let write = VMFlags(rawValue: 1 << 1)
    public static let exec = VMFlags(rawValue: 1 << 2)
    public static let shared = VMFlags(rawValue: 1 << 3)
    /// VM_LOCKED: mlock or MAP_LOCKED; never reclaimed.
    public static let locked = VMFlags(rawValue: 1 << 4)
    /// VM_DONTCOPY: MADV_DONTFORK; the child gets no VMA here.
    public static let dontcopy = VMFlags(rawValue: 1 << 5)
    /// VM_HUGEPAGE: MADV_HUGEPAGE.
    public static let hugepage = VMFlags(rawValue: 1 << 6)
    public static let growsdown = VMFlags(rawValue: 1 << 7)
}

public enum VMAKind: UInt8, Equatable, Sendable {
    /// File-backed program image: never merged with anonymous memory, no frames modelled.
    case image
    /// The brk heap.
    case heap
    case stack
    /// Anonymous mmap (private or shared).
    case anon
    /// A kernel buffer mapped into the process (ump, dma-buf): VM_IO|VM_PFNMAP-like.
    case device
}

public struct VMA: Equatable, Sendable {
    public var start: UInt64
    public var end: UInt64
    public var flags: VMFlags
    public var kind: VMAKind
    /// The anon_vma this VMA's anonymous pages hang off; 0 until the first anonymous page (anon_vma_prepare).
    public var anonVMA: Int32
    /// The anon_vma_chain has more than one anon_vma (a VMA cloned by fork): a VMA without an
    /// anon_vma may no longer merge into it.
    public var chainedAnonVMA: Bool = false
    /// The shmem object behind a shared anonymous mapping; 0 otherwise.
    public var shmem: Int32
    /// Page offset of `start` inside the shmem object.
    public var shmemOffset: UInt64
    /// What /proc/PID/maps would show in its last column.
    public var label: String

    public var length: UInt64 { end - start }

    public var permissions: String {
        (flags.contains(.read) ? "r" : "-") + (flags.contains(.write) ? "w" : "-")
            + (flags.contains(.exec) ? "x" : "-") + (flags.contains(.shared) ? "s" : "p")
    }

    /// is_mergeable_vma + is_mergeable_anon_vma: same flags and kind, and anon_vmas that agree
    /// (equal, or one unset while the other's anon_vma_chain is singular).
    func canMerge(withFollowing next: VMA) -> Bool {
        guard end == next.start, flags == next.flags, kind == next.kind, kind == .anon || kind == .heap,
              !flags.contains(.shared) else { return false }
        if anonVMA == next.anonVMA { return true }
        if anonVMA == 0 { return !next.chainedAnonVMA }
        if next.anonVMA == 0 { return !chainedAnonVMA }
        return false
    }
}

public enum BufferKind: String, Equatable, Sendable {
    case heap, mmap, ump, dmabuf
}

/// A buffer the script named: what the program holds a pointer to.
public struct Buffer: Equatable, Sendable {
    public var name: String
    /// The address the program sees (for malloc: the chunk's user pointer, 16 bytes into the chunk).
    public var start: UInt64
    public var size: UInt64
    public var kind: BufferKind
    /// For malloc: the chunk (heap) or the mapping (mmapped chunk) behind it.
    public var chunkStart: UInt64
    public var chunkSize: UInt64
    /// For ump and dma-buf buffers: the kernel buffer (EngineState.kernelBuffers) mapped here.
    public var kernelBuffer: Int32 = -1

    public var firstPage: UInt64 { start & ~(pageSize - 1) }
    public var endPage: UInt64 { (start + size + pageSize - 1) & ~(pageSize - 1) }
}

public struct HeapChunk: Equatable, Sendable {
    public var start: UInt64
    public var size: UInt64
    /// The buffer it holds, or nil when free.
    public var owner: String?
}

/// One `pin` of a buffer: the frames it holds and how.
public struct PinRecord: Equatable, Sendable {
    public var buffer: String
    public var pfns: [Int32]
    /// FOLL_GET (a plain reference) rather than FOLL_PIN.
    public var get: Bool
    public var longterm: Bool
    /// Pages charged to pinned_vm (long-term FOLL_PIN, as RDMA and io_uring charge them).
    public var chargedPages: Int
}

