// What the kernel did during a step, as types: each event is named for the kernel function that
// acts. Operations count them in the StepJournal; Report/Narration.swift turns them into words and
// JSON keys, so the text, the JSON, the TUI's marks and a quiz all read the same facts.

public enum KernelEvent: Hashable, Sendable {
    // Faults (mm/memory.c, mm/huge_memory.c, mm/shmem.c, mm/swap_state.c)
    /// A touch found the page already mapped as it needs: no fault.
    case alreadyMapped
    /// do_anonymous_page on a read: the shared zero page, read-only.
    case zeroPageMapped
    /// do_anonymous_page on a write: a new zeroed exclusive page.
    case anonymousPage
    /// do_anonymous_page → alloc_anon_folio: a multi-size THP of this order, mapped by PTEs.
    case mthpAnonymousFolio(order: Int8)
    /// do_wp_page → wp_page_copy.
    case wpPageCopy(WPCopySource)
    /// filemap_fault found the page in the page cache.
    case pageCacheHit
    /// filemap_fault missed: the page is read from the file into the page cache.
    case pageCacheRead
    /// do_cow_fault: a write to a private file mapping gets an anonymous copy of the file's page.
    case cowFault
    /// wp_page_shared: a write to a shared file page mapped read-only for dirty tracking.
    case wpPageShared
    /// do_wp_page → wp_page_reuse.
    case wpPageReuse(WPReuseReason)
    /// do_huge_pmd_anonymous_page: a THP.
    case hugeAnonymousPage
    /// do_huge_pmd_anonymous_page on a read: the huge zero folio.
    case hugeZeroPageMapped
    /// No free order-9 block: 4 KiB pages instead.
    case thpFallback
    /// No free order-9 block, and thp-defrag lets the fault compact and reclaim first.
    case thpDirectCompaction
    /// collapse_huge_page (MADV_COLLAPSE): 512 PTEs' pages copied into a new THP mapped by one PMD.
    case collapseHugePage
    /// do_huge_pmd_wp_page reused the whole THP.
    case hugeWPPageReuse
    /// __split_huge_pmd.
    case splitHugePMD
    /// do_swap_page.
    case swapIn
    /// shmem_fault.
    case shmemFault
    /// do_fault_around: neighbours mapped from the page cache.
    case faultAround
    /// FAULT_FLAG_UNSHARE for a reliable pin.
    case unshare
    /// migrate_pages moved a page.
    case migratePages
    // fork (mm/memory.c copy_page_range)
    case copyPresentPTEs
    case copyZeroPTEs
    case copyNonpresentPTEs
    case copyHugePMD
    /// copy_present_page: a possibly pinned exclusive page copied for the child at fork.
    case copyPresentPage
    // Unmapping (zap_pte_range, zap_huge_pmd)
    case zapFreed
    case zapKept
    case zapZero
    case zapSwap
    case zapPFNMap
    case zapHugePMD
    /// A shmem object freed with its last VMA.
    case shmemEvict
    // Page tables
    case pageTableAlloc
    case pageTableFree
    // Reclaim and the OOM killer (mm/vmscan.c, mm/oom_kill.c)
    case directReclaim
    case oomKill(OOMVictim)
    /// out_of_memory() found no process whose death would free memory.
    case oomNothingToKill
    // glibc
    case brk
    // Pinning (mm/gup.c): pages pinned or referenced with these flags.
    case pinned(FollFlags)
    // The IOMMU (drivers/iommu)
    /// IOPTEs of one page size set by iommu_map.
    case ioptesSet(size: UInt64)
    case iommuPgtableAlloc
    case iotlbLookup
    case iotlbHit
    case iotlbMiss
    /// A lazy flush queue drained.
    case flushQueueDrained(FlushDrain)
    /// A device mapping released because its process exited.
    case exitUnmap
    /// A UMP buffer or dma-buf freed with its last holder.
    case kernelBufferFreed
}

public enum WPCopySource: Hashable, Sendable {
    /// Copying from the zero page: a new zeroed page.
    case zeroPage
    /// A shared (COW) page.
    case sharedPage
    /// A page of the page cache, in a private file mapping.
    case pageCache
    /// A page of a large folio that only this PTE references: a small page would be reused, but
    /// 6.12's wp_can_reuse_anon_folio never reuses a large folio's page that is not PageAnonExclusive.
    case largeFolio
}

public enum WPReuseReason: Hashable, Sendable {
    /// PageAnonExclusive: the page is this process's alone.
    case exclusive
    /// wp_can_reuse_anon_folio: the refcount is back to 1.
    case refcount
    /// Before 5.9 (kernel=legacy): reuse_swap_page saw one mapping, whatever references others held.
    case mapcount
}

/// The FOLL_* flags of one get_user_pages / pin_user_pages call.
public struct FollFlags: Hashable, Sendable {
    public var write = false
    public var longterm = false
    /// FOLL_GET rather than FOLL_PIN.
    public var get = false

    public init(write: Bool = false, longterm: Bool = false, get: Bool = false) {
        self.write = write
        self.longterm = longterm
        self.get = get
    }

    /// `FOLL_PIN|FOLL_LONGTERM|FOLL_WRITE` as the kernel writes them.
    public var names: String {
        var names = [get ? "FOLL_GET" : "FOLL_PIN"]
        if longterm { names.append("FOLL_LONGTERM") }
        if write { names.append("FOLL_WRITE") }
        return names.joined(separator: "|")
    }
}

/// A process the OOM killer took, with the oom_badness that chose it.
public struct OOMVictim: Hashable, Sendable {
    public var name: String
    public var pid: Int32
    public var badness: Int
}

/// A lazy flush queue drained: why, how many invalidations, how many stale IOTLB entries went.
public struct FlushDrain: Hashable, Sendable {
    public var device: String
    public var reason: String
    public var invalidations: Int
    public var dropped: Int
}

/// Something that went quietly wrong: the kernel reports nothing, and that silence is the lesson.
public struct Hazard: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// COW gave the process a new frame while a device keeps the pinned old one.
        case copyAwayFromPin
        /// munmap or MADV_DONTNEED of a pinned page: the device keeps the frame.
        case pinnedPageUnmapped
        /// DMA through IOTLB entries of an unmapped buffer (flush=lazy).
        case staleIOTLB
        /// DMA to pinned frames the process no longer maps.
        case deviceSeesOldFrame
        /// A reader got private data another process wrote after they parted at fork (CVE-2020-29374).
        case dataLeak
    }

    public var kind: Kind
    public var text: String

    public var description: String { text }
}
