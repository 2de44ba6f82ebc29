// What a process is made of: VMAs, the buffers the script named, counters, and a page table.

/// A page-table entry in the x86-64 layout (arch/x86/include/asm/pgtable_types.h), so a raw value
/// reads as a kernel engineer expects: P, RW, US, A, D, PSE (a huge PMD), _PAGE_SPECIAL (software
/// bit 9: the zero page, which vm_normal_page() refuses), NX (bit 63); the pfn in bits 12...51.
/// A swap entry is not present: type in bits 59...63, the offset inverted in bits 9...58, and
/// _PAGE_SWP_EXCLUSIVE in bit 3 (arch/x86/include/asm/pgtable_64.h, pgtable_64_types.h).
public struct PTE: Equatable, Hashable, Sendable {
    public var raw: UInt64
    public init(raw: UInt64) { self.raw = raw }
    public static let none = PTE(raw: 0)

    /// _PAGE_PRESENT
    public static let presentBit: UInt64 = 1 << 0
    /// _PAGE_RW
    public static let writeBit: UInt64 = 1 << 1
    /// _PAGE_USER: reachable from user mode (every user mapping has it).
    public static let userBit: UInt64 = 1 << 2
    /// _PAGE_ACCESSED: set by the CPU on the access that follows the fault.
    public static let accessedBit: UInt64 = 1 << 5
    /// _PAGE_DIRTY: written (pte_mkdirty on a write fault).
    public static let dirtyBit: UInt64 = 1 << 6
    /// _PAGE_PSE: a PMD leaf mapping 2 MiB.
    public static let hugeBit: UInt64 = 1 << 7
    /// _PAGE_SPECIAL (_PAGE_BIT_SOFTW1): pte_special, the shared zero page.
    public static let zeroBit: UInt64 = 1 << 9
    /// _PAGE_NX: not executable (a data mapping's vm_page_prot has it).
    public static let nxBit: UInt64 = 1 << 63
    /// _PAGE_SWP_EXCLUSIVE (_PAGE_PWT) in a swap entry: the swapped-out page was PageAnonExclusive.
    public static let swapExclusiveBit: UInt64 = 1 << 3
    /// SWP_TYPE_BITS and SWP_OFFSET_SHIFT of x86-64: the offset sits inverted in bits 9...58.
    static let swapTypeBits: UInt64 = 5
    static let swapOffsetShift: UInt64 = 14
    /// Bits 12...51: PTE_PFN_MASK.
    static let pfnMask: UInt64 = 0x000f_ffff_ffff_f000

    @inline(__always) public var isNone: Bool { raw == 0 }
    @inline(__always) public var present: Bool { raw & PTE.presentBit != 0 }
    @inline(__always) public var writable: Bool { raw & PTE.writeBit != 0 }
    @inline(__always) public var isZero: Bool { raw & (PTE.presentBit | PTE.zeroBit) == PTE.presentBit | PTE.zeroBit }
    /// is_swap_pte: not none and not present.
    @inline(__always) public var isSwap: Bool { raw != 0 && raw & PTE.presentBit == 0 }
    @inline(__always) public var isHuge: Bool { raw & (PTE.presentBit | PTE.hugeBit) == PTE.presentBit | PTE.hugeBit }
    @inline(__always) public var dirty: Bool { present && raw & PTE.dirtyBit != 0 }
    /// The pfn of a present entry, or the swap offset (slot) of a swap entry.
    @inline(__always) public var number: Int {
        if raw & PTE.presentBit != 0 { return Int((raw & PTE.pfnMask) >> 12) }
        return Int((~raw << PTE.swapTypeBits) >> PTE.swapOffsetShift)
    }
    /// pte_swp_exclusive.
    @inline(__always) public var swapExclusive: Bool { isSwap && raw & PTE.swapExclusiveBit != 0 }

    /// mk_pte for a user data page: P|US|A|NX, plus RW|D for a writable one (maybe_mkwrite(pte_mkdirty)),
    /// _PAGE_SPECIAL for the zero page, PSE for a PMD leaf; `exec` leaves NX clear.
    @inline(__always) public static func page(pfn: Int, writable: Bool, zero: Bool = false, huge: Bool = false, exec: Bool = false) -> PTE {
        var r = PTE.presentBit | PTE.userBit | PTE.accessedBit | (UInt64(pfn) << 12)
        if !exec { r |= PTE.nxBit }
        if writable { r |= PTE.writeBit | PTE.dirtyBit }
        if zero { r |= PTE.zeroBit }
        if huge { r |= PTE.hugeBit }
        return PTE(raw: r)
    }

    /// __swp_entry(0, slot) as a PTE, with _PAGE_SWP_EXCLUSIVE when asked.
    @inline(__always) public static func swapEntry(slot: Int, exclusive: Bool) -> PTE {
        let entry = (~UInt64(slot) << PTE.swapOffsetShift) >> PTE.swapTypeBits
        return PTE(raw: entry | (exclusive ? PTE.swapExclusiveBit : 0))
    }

    /// ptep_set_wrprotect: RW cleared; D stays.
    @inline(__always) public func writeProtected() -> PTE { PTE(raw: raw & ~PTE.writeBit) }

    /// The set bits by their x86-64 names, lowest first: "P", "RW", "US", "A", "D", "PSE", "SPECIAL", "NX".
    public var bitNames: [(bit: Int, name: String)] {
        guard present else { return isSwap ? (swapExclusive ? [(3, "SWP_EXCLUSIVE")] : []) : [] }
        let names: [(Int, String)] = [(0, "P"), (1, "RW"), (2, "US"), (3, "PWT"), (4, "PCD"), (5, "A"), (6, "D"),
                                      (7, isHuge ? "PSE" : "PAT"), (8, "G"), (9, "SPECIAL"), (63, "NX")]
        return names.filter { raw & (UInt64(1) << UInt64($0.0)) != 0 }
    }
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
    /// VM_NOHUGEPAGE: MADV_NOHUGEPAGE; no THP here, whatever the thp setting.
    public static let nohugepage = VMFlags(rawValue: 1 << 8)
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
    /// A mapping of a file (`mmap ... file=NAME`) or a memfd: its pages live in the page cache.
    case file
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
    /// `trace`: a VMA a `PROC trace` made.
    case heap, mmap, ump, dmabuf, trace
    /// A file or memfd mapping.
    case file
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
    /// An io_uring fixed buffer: pages charged to the user's locked_vm (0 with CAP_IPC_LOCK).
    public var uring = false
    public var userCharged = 0
    /// Held by the pipe of this name (vmsplice): one pipe buffer per page, released by reading or closing it.
    public var pipe: String?
    /// The address of the first page taken (an io_uring registration of part of a buffer).
    public var start: UInt64 = 0
}

