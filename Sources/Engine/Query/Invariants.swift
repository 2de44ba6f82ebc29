// Whole-state invariants: what every step must leave true whatever the script did. A violation is a
// bug in UMPTUI, not in the script; the Timeline checks after each step when asked (debug builds,
// `--check-invariants`) and the command line stops with exit 3 and this report. The walk is
// O(frames + page-table entries), with no allocation per frame.

extension EngineState {
    /// What is wrong with the state, at most `limit` lines (empty: every invariant holds).
    ///
    /// - The buddy allocator: every free block is aligned to its order, lies in memory, sits on its
    ///   migratetype's list, does not overlap another, and covers frames marked free; the frames
    ///   marked free are exactly those the lists hold, and `freeFrames` counts them.
    /// - The per-block use summaries count what the frames say.
    /// - Page tables: each PTE table's `used` is its non-none entries; no present PTE or huge PMD
    ///   points at a free frame or past memory; an exited process holds no page table.
    /// - rss is the pages a process maps (VM_PFNMAP kernel memory aside).
    /// - mapcount of each anonymous or shmem frame is the PTEs and PMDs that map it, and refcount
    ///   is at least mapcount plus 1024 per pin of a small frame (a pin holds a reference).
    /// - A FOLL_PIN'ed anonymous page that is mapped is PageAnonExclusive (kernel=6.12: pinning
    ///   unshares first, and fork copies pinned pages for the child).
    /// - Counters are not negative: locked_vm, pinned_vm, rss; refcount, mapcount, pin count.
    /// - An IOTLB entry that is not marked stale (a lazy unmap's) caches an IOPTE that is there
    ///   (SVA's device TLB caches the process's page table instead, and is left out).
    public func invariantViolations(limit: Int = 8) -> [String] {
        var out: [String] = []
        func fail(_ s: @autoclosure () -> String) -> Bool {
            if out.count < limit { out.append(s()) }
            return out.count < limit
        }
        let n = phys.frameCount

        // The buddy allocator.
        var inBlock = [Bool](repeating: false, count: n)
        var onLists = 0
        lists: for cma in [false, true] {
            for order in 0...maxPageOrder {
                var seen = 0
                for head in phys.freeList(order: order, cma: cma) {
                    seen += 1
                    if seen > n { guard fail("the order-\(order) free list loops") else { return out }; continue lists }
                    let end = head + (1 << order)
                    guard head >= 0, end <= n else {
                        guard fail("a free block at pfn \(head) of order \(order) runs past memory (\(n) frames)") else { return out }
                        continue
                    }
                    if head & ((1 << order) - 1) != 0 { guard fail("free block at pfn \(head) is not aligned to its order \(order)") else { return out } }
                    if phys.isCMA(head) != cma { guard fail("free block at pfn \(head) is on the \(cma ? "CMA" : "ordinary") list") else { return out } }
                    if Int(phys.freeOrder[head]) != order { guard fail("free block at pfn \(head) on the order-\(order) list records order \(phys.freeOrder[head])") else { return out } }
                    // (A used frame inside the block is found by the frame walk below.)
                    let twice = inBlock.withUnsafeMutableBufferPointer { marks -> Int? in
                        for pfn in head..<end {
                            if marks[pfn] { return pfn }
                            marks[pfn] = true
                        }
                        return nil
                    }
                    if let twice { guard fail("pfn \(twice) is in two free blocks") else { return out } }
                    onLists += 1 << order
                }
            }
        }
        if onLists != phys.freeFrames { guard fail("the free lists hold \(onLists) frames, freeFrames says \(phys.freeFrames)") else { return out } }

        // Frames: marked free exactly when on a list; counts not negative; summaries. The arrays are
        // read through buffer pointers: a debug build checks every step, and this loop is most of it.
        let useArray = phys.use, refArray = phys.refcount, mapArray = phys.mapcount, pinArray = phys.pincount
        var counts = [UInt16](repeating: 0, count: phys.blockUseCounts.count)
        var badFrames: [Int] = []
        useArray.withUnsafeBufferPointer { use in
            refArray.withUnsafeBufferPointer { ref in
                mapArray.withUnsafeBufferPointer { map in
                    pinArray.withUnsafeBufferPointer { pin in
                        inBlock.withUnsafeBufferPointer { free in
                            counts.withUnsafeMutableBufferPointer { c in
                                let freeUse = FrameUse.free.rawValue
                                for pfn in 0..<n {
                                    let u = use[pfn]
                                    c[(pfn / PhysicalMemory.summaryBlockFrames) * PhysicalMemory.useCount + Int(u)] &+= 1
                                    if (u == freeUse) != free[pfn] || ref[pfn] < 0 || map[pfn] < 0 || pin[pfn] < 0 {
                                        if badFrames.count < limit { badFrames.append(pfn) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        for pfn in badFrames {
            let u = phys.use[pfn]
            if (u == FrameUse.free.rawValue) != inBlock[pfn] {
                guard fail("pfn \(pfn) is \(u == FrameUse.free.rawValue ? "marked free but on no free list" : "on a free list but used")") else { return out }
            } else {
                guard fail("pfn \(pfn) has a negative count (refcount \(phys.refcount[pfn]), mapcount \(phys.mapcount[pfn]), pins \(phys.pincount[pfn]))") else { return out }
            }
        }
        if counts != phys.blockUseCounts { guard fail("the per-block use summaries disagree with the frames") else { return out } }

        // Page tables, rss and mapcounts.
        var maps = [Int32](repeating: 0, count: n)
        for proc in processes {
            let name = proc.meta.name
            if !proc.meta.alive, !proc.pt.tables.isEmpty || !proc.pt.hugePMDs.isEmpty {
                guard fail("\(name) has exited but still has page tables") else { return out }
            }
            if proc.meta.lockedVMPages < 0 || proc.meta.pinnedVMPages < 0 || proc.meta.rssPages < 0 {
                guard fail("\(name) has a negative counter (locked_vm \(proc.meta.lockedVMPages), pinned_vm \(proc.meta.pinnedVMPages), rss \(proc.meta.rssPages))") else { return out }
            }
            var rss = 0
            for (region, table) in proc.pt.tables {
                var used = 0
                for (i, e) in table.entries.enumerated() where !e.isNone {
                    used += 1
                    guard e.present, !e.isZero else { continue }
                    let pfn = e.number
                    guard pfn < n else {
                        guard fail("\(name)'s PTE for \(hex(((region << 9) + UInt64(i)) << pageShift)) points past memory (pfn \(pfn))") else { return out }
                        continue
                    }
                    let use = phys.frameUse(pfn)
                    if use == .free {
                        guard fail("\(name)'s PTE for \(hex(((region << 9) + UInt64(i)) << pageShift)) maps free pfn \(pfn)") else { return out }
                    }
                    // VM_PFNMAP mappings of UMP and dma-buf memory count in neither rss nor mapcount.
                    if use != .ump && use != .dmabuf {
                        maps[pfn] &+= 1
                        rss += 1
                    }
                }
                if used != table.used { guard fail("\(name)'s PTE table for region \(hex(region << 21)) counts \(table.used) entries, holds \(used)") else { return out } }
            }
            for (region, pmd) in proc.pt.hugePMDs where !pmd.isZero {
                guard pmd.number + pagesPerPMD <= n else {
                    guard fail("\(name)'s huge PMD at \(hex(region << 21)) points past memory") else { return out }
                    continue
                }
                if phys.use[pmd.number] == FrameUse.free.rawValue { guard fail("\(name)'s huge PMD at \(hex(region << 21)) maps free frames") else { return out } }
                for i in 0..<pagesPerPMD { maps[pmd.number + i] &+= 1 }
                rss += pagesPerPMD
            }
            if rss != proc.meta.rssPages { guard fail("\(name)'s rss is \(proc.meta.rssPages) pages, it maps \(rss)") else { return out } }
        }
        let flagArray = phys.flags
        var suspects: [Int] = []
        useArray.withUnsafeBufferPointer { use in
            refArray.withUnsafeBufferPointer { ref in
                mapArray.withUnsafeBufferPointer { map in
                    pinArray.withUnsafeBufferPointer { pin in
                        flagArray.withUnsafeBufferPointer { flags in
                            maps.withUnsafeBufferPointer { want in
                                let anon = FrameUse.anon.rawValue, shmem = FrameUse.shmem.rawValue
                                let large = FrameFlag.head | FrameFlag.tail, exclusive = FrameFlag.anonExclusive
                                let strictPins = config.kernel == .v6_12
                                for pfn in 0..<n {
                                    let u = use[pfn]
                                    guard u == anon || u == shmem else { continue }
                                    let pins = Int64(pin[pfn])
                                    let pinRefs = flags[pfn] & large != 0 ? pins : pins * 1024
                                    if map[pfn] != want[pfn] || Int64(ref[pfn]) < Int64(map[pfn]) + pinRefs
                                        || (strictPins && u == anon && pins > 0 && want[pfn] > 0 && flags[pfn] & exclusive == 0) {
                                        if suspects.count < limit { suspects.append(pfn) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        for pfn in suspects {
            let use = phys.frameUse(pfn)
            if phys.mapcount[pfn] != maps[pfn] {
                guard fail("pfn \(pfn) (\(use.name)) has mapcount \(phys.mapcount[pfn]), \(maps[pfn]) page-table entries map it") else { return out }
            }
            let pins = Int64(phys.pincount[pfn])
            let pinRefs = phys.isLarge(pfn) ? pins : pins * 1024
            if Int64(phys.refcount[pfn]) < Int64(phys.mapcount[pfn]) + pinRefs {
                guard fail("pfn \(pfn) (\(use.name)) has refcount \(phys.refcount[pfn]), below its mapcount \(phys.mapcount[pfn]) and \(pins) pins") else { return out }
            }
            if config.kernel == .v6_12, use == .anon, pins > 0, maps[pfn] > 0, phys.flags[pfn] & FrameFlag.anonExclusive == 0 {
                guard fail("pfn \(pfn) is pinned (FOLL_PIN) and mapped but not PageAnonExclusive") else { return out }
            }
        }
        // Devices: an IOTLB entry not marked stale caches a live IOPTE, as it was when cached.
        // (An SVA device's TLB caches the process's own page table, which has no IOPTEs.)
        for dev in devices where dev.info.format != .sva && dev.info.format != .none {
            let tlb = dev.iotlb
            for set in 0..<tlb.fill.count {
                if tlb.fill[set] > tlb.ways { guard fail("\(dev.name)'s IOTLB set \(set) holds \(tlb.fill[set]) entries in \(tlb.ways) ways") else { return out }; continue }
                for i in (set * tlb.ways)..<(set * tlb.ways + tlb.fill[set]) where !tlb.staleFlags[i] {
                    let iopte = dev.ioptes[tlb.tags[i]]
                    if iopte?.size != tlb.sizes[i] || iopte?.pa != tlb.pas[i] {
                        guard fail("\(dev.name)'s IOTLB caches IOVA \(hex(tlb.tags[i])) (\(formatSizeShort(tlb.sizes[i]))) → \(hex(tlb.pas[i])), which no IOPTE maps so, and it is not marked stale") else { return out }
                    }
                }
            }
        }
        return out
    }
}

/// When a Timeline checks the invariants after a step.
public enum InvariantChecks: Sendable, Equatable {
    case off
    /// After every new step (`--check-invariants`).
    case everyStep
    /// After every new step on machines of at most 1 GiB, where a whole-state walk is cheap next
    /// to a step; never on larger ones (debug builds' default).
    case smallMachines

    /// Debug builds check small machines; release builds check only when asked.
    public static var `default`: InvariantChecks {
        _isDebugAssertConfiguration() ? .smallMachines : .off
    }

    func applies(to state: EngineState) -> Bool {
        switch self {
        case .off: false
        case .everyStep: true
        case .smallMachines: state.phys.frameCount <= 1 << 18
        }
    }
}
