// Narration made from a step's typed events, in one place: the event-count phrases, the words for
// OOM kills and flush drains, and the JSON names of the counts. The text, the JSON, the TUI and a
// quiz all read the same events; an operation's own sentence (with its addresses) stays with it.

extension KernelEvent {
    /// The event's key in a step's JSON `counts`, as the contract has always named it; nil for the
    /// events `counts` does not list (pins, OOM victims, flush drains: the narration tells them).
    public var countKey: String? {
        switch self {
        case .alreadyMapped: "mapped"
        case .zeroPageMapped: "do_anonymous_page:zero"
        case .anonymousPage: "do_anonymous_page"
        case let .mthpAnonymousFolio(order): "do_anonymous_page:" + formatSizeCompact(pageSize << UInt64(order))
        case .wpPageCopy(.zeroPage): "wp_page_copy:zero"
        case .wpPageCopy(.sharedPage): "wp_page_copy"
        case .wpPageCopy(.pageCache): "wp_page_copy:file"
        case .wpPageCopy(.largeFolio): "wp_page_copy:large"
        case .pageCacheHit: "filemap_fault"
        case .pageCacheRead: "filemap_fault:read"
        case .cowFault: "do_cow_fault"
        case .wpPageShared: "wp_page_shared"
        case .wpPageReuse(.exclusive): "wp_page_reuse:exclusive"
        case .wpPageReuse(.refcount): "wp_page_reuse:refcount"
        case .wpPageReuse(.mapcount): "wp_page_reuse:mapcount"
        case .hugeAnonymousPage: "do_huge_pmd_anonymous_page"
        case .hugeZeroPageMapped: "do_huge_pmd_anonymous_page:zero"
        case .thpFallback: "thp_fault_fallback"
        case .thpDirectCompaction: "thp:direct_compaction"
        case .collapseHugePage: "collapse_huge_page"
        case .hugeWPPageReuse: "do_huge_pmd_wp_page:reuse"
        case .splitHugePMD: "__split_huge_pmd"
        case .swapIn: "do_swap_page"
        case .shmemFault: "shmem_fault"
        case .faultAround: "do_fault_around"
        case .unshare: "unshare"
        case .migratePages: "migrate_pages"
        case .copyPresentPTEs: "copy_present_ptes"
        case .copyZeroPTEs: "copy_pte:zero"
        case .copyNonpresentPTEs: "copy_nonpresent_pte"
        case .copyHugePMD: "copy_huge_pmd"
        case .copyPresentPage: "copy_present_page"
        case .zapFreed: "zap:freed"
        case .zapKept: "zap:kept"
        case .zapZero: "zap:zero"
        case .zapSwap: "zap:swap"
        case .zapPFNMap: "zap:pfnmap"
        case .zapHugePMD: "zap_huge_pmd"
        case .shmemEvict: "shmem_evict"
        case .pageTableAlloc: "ptalloc"
        case .pageTableFree: "ptfree"
        case .directReclaim: "direct_reclaim"
        case .brk: "brk"
        case let .ioptesSet(size): "iopte:\(size)"
        case .iommuPgtableAlloc: "iommu_pgtable_alloc"
        case .iotlbLookup: "iotlb_lookup"
        case .iotlbHit: "iotlb_hit"
        case .iotlbMiss: "iotlb_miss"
        case .exitUnmap: "exit_unmap"
        case .kernelBufferFreed: "kernel_buffer_freed"
        case .oomKill, .oomNothingToKill, .pinned, .flushQueueDrained: nil
        }
    }

    /// What "N × …" says for a count of this event, naming the kernel function; nil when the
    /// narration leaves the count out (the operation's own sentence covers it).
    public var phrase: String? {
        switch self {
        case .anonymousPage: "do_anonymous_page: new zeroed exclusive page"
        case let .mthpAnonymousFolio(order): "do_anonymous_page → alloc_anon_folio: \(formatSize(pageSize << UInt64(order))) folios (order \(order), multi-size THP), each mapped whole by \(1 << Int(order)) PTEs"
        case .zeroPageMapped: "do_anonymous_page: the shared zero page, read-only, no reference taken"
        case .wpPageCopy(.zeroPage): "do_wp_page → wp_page_copy: zero page replaced by a new zeroed page"
        case .wpPageCopy(.sharedPage): "do_wp_page → wp_page_copy: shared page copied (COW)"
        case .wpPageCopy(.pageCache): "do_wp_page → wp_page_copy: a private copy of the file's page-cache page (the page cache keeps its own)"
        case .wpPageCopy(.largeFolio): "do_wp_page → wp_page_copy: a page of a large folio copied though nothing else maps it (wp_can_reuse_anon_folio reuses no large folio that is not PageAnonExclusive in 6.12; 6.15 reuses one a single mm maps)"
        case .pageCacheHit: "filemap_fault: the page was in the page cache, mapped from there"
        case .pageCacheRead: "filemap_fault: a page-cache miss, read from the file (filemap_read_folio)"
        case .cowFault: "do_cow_fault: a write to a private file mapping, an anonymous copy of the file's page"
        case .wpPageShared: "wp_page_shared: a shared file page mapped read-only for dirty tracking, now writable and dirty"
        case .wpPageReuse(.exclusive): "do_wp_page → wp_page_reuse: PageAnonExclusive, made writable in place"
        case .wpPageReuse(.refcount): "wp_can_reuse_anon_folio: refcount back to 1, reused in place"
        case .wpPageReuse(.mapcount): "do_wp_page → reuse_swap_page: mapped once, reused in place (before 5.9 references held elsewhere did not count)"
        case .hugeAnonymousPage: "do_huge_pmd_anonymous_page: a 2 MiB THP (one order-9 block, one PMD)"
        case .hugeZeroPageMapped: "do_huge_pmd_anonymous_page: the huge zero page mapped by a PMD"
        case .thpFallback: "THP fallback (no free order-9 block): 4 KiB pages instead"
        case .collapseHugePage: "collapse_huge_page: a new THP, the small pages copied in (none and zero PTEs zero-filled), one PMD; the old pages released"
        case .thpDirectCompaction: "THP fault with no free order-9 block: direct compaction (then, if that was not enough, one round of direct reclaim and compaction again), as thp-defrag allows (__GFP_DIRECT_RECLAIM, __alloc_pages_slowpath)"
        case .hugeWPPageReuse: "do_huge_pmd_wp_page: whole THP reused"
        case .splitHugePMD: "__split_huge_pmd: a PMD becomes 512 PTEs"
        case .swapIn: "do_swap_page: swapped back in"
        case .shmemFault: "shmem_fault: the shared page from the page cache"
        case .faultAround: "do_fault_around: neighbours already in the page cache mapped too"
        case .shmemEvict: "shmem pages freed with their object: no VMA maps it any more"
        case .copyPresentPTEs: "copy_present_ptes: now shared read-only (refcount+1, mapcount+1, AnonExclusive cleared)"
        case .copyZeroPTEs: "zero-page PTEs copied to the child"
        case .copyNonpresentPTEs: "swap entries duplicated (swap_duplicate)"
        case .copyHugePMD: "copy_huge_pmd: THP PMDs shared read-only"
        case .zapFreed: "zap_pte_range: pages freed, their last reference gone"
        case .zapKept: "zap_pte_range: pages unmapped but still referenced elsewhere, so not freed"
        case .zapZero: "zero-page PTEs cleared"
        case .zapSwap: "swap entries freed"
        case .zapHugePMD: "zap_huge_pmd: whole THPs unmapped"
        case .pageTableAlloc: "page-table pages allocated (__pte_alloc, __pmd_alloc, pgd_alloc)"
        case .pageTableFree: "page-table pages freed (free_pgtables)"
        case .directReclaim: "rounds of direct reclaim (__alloc_pages_slowpath)"
        case .alreadyMapped: "already mapped: no fault"
        default: nil
        }
    }
}

public enum Narration {
    /// The order the counted events are told in: faults first, then fork, unmapping, page tables.
    static let order: [KernelEvent] = [
        .mthpAnonymousFolio(order: 8), .mthpAnonymousFolio(order: 7), .mthpAnonymousFolio(order: 6), .mthpAnonymousFolio(order: 5),
        .mthpAnonymousFolio(order: 4), .mthpAnonymousFolio(order: 3), .mthpAnonymousFolio(order: 2),
        .anonymousPage, .zeroPageMapped, .wpPageCopy(.zeroPage), .wpPageCopy(.sharedPage), .wpPageCopy(.largeFolio), .wpPageCopy(.pageCache), .pageCacheHit, .pageCacheRead, .cowFault, .wpPageShared, .wpPageReuse(.exclusive),
        .wpPageReuse(.refcount), .wpPageReuse(.mapcount), .thpDirectCompaction, .collapseHugePage, .hugeAnonymousPage, .hugeZeroPageMapped, .thpFallback, .hugeWPPageReuse, .splitHugePMD,
        .swapIn, .shmemFault, .faultAround, .shmemEvict, .copyPresentPTEs, .copyZeroPTEs, .copyNonpresentPTEs,
        .copyHugePMD, .zapFreed, .zapKept, .zapZero, .zapSwap, .zapHugePMD, .pageTableAlloc, .pageTableFree,
        .directReclaim, .alreadyMapped,
    ]

    /// "3 × do_anonymous_page: …; 1 × page-table pages allocated …": the counted events, one or two sentences.
    public static func story(_ events: EventCounts) -> String {
        order.compactMap { e in
            let n = events[e]
            guard n > 0, let phrase = e.phrase else { return nil }
            return "\(n) × \(phrase)"
        }.joined(separator: "; ")
    }

    /// The JSON `counts` of a step: every counted event that happened, first-happened first.
    public static func counts(_ events: EventCounts) -> [(String, Int)] {
        events.happened.compactMap { e, n in e.countKey.map { ($0, n) } }
    }

    /// What the kernel did beside the operation: flush queues that drained, the OOM killer.
    static func aside(_ events: EventCounts) -> String {
        var text = ""
        for case let .flushQueueDrained(f) in events.order {
            text += "; \(f.reason) drains \(f.device)'s flush queue: \(plural(f.invalidations, "invalidation")), \(plural(f.dropped, "stale IOTLB entry", "stale IOTLB entries")) dropped, the IOVAs free again"
        }
        let victims = events.oomVictims
        if !victims.isEmpty {
            text += "; out_of_memory() kills " + victims.map { "\($0.name) (pid \($0.pid), oom_badness \($0.badness) pages)" }.joined(separator: ", then ")
        } else if events[.oomNothingToKill] > 0 {
            text += "; out_of_memory() finds no process whose death would free memory"
        }
        return text
    }

    /// A step's whole narration: the operation's sentence, what happened beside it, then the counts.
    static func stepText(_ operation: String, _ events: EventCounts) -> String {
        let text = operation + aside(events)
        let story = story(events)
        return story.isEmpty ? text : text + ". " + story
    }
}
