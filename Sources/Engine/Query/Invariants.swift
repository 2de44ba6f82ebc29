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
    /// - refcount of each anonymous, shmem or file frame is exactly its mappings, its pins and GUP
    ///   references (1024 a pin on a small folio, 1 on a large one), and the swap cache's and page
    ///   cache's reference.
    /// - locked_vm, pinned_vm and each user's locked_vm equal what their holders charged.
    /// - No IOPTE maps a free frame (a pin or a kernel buffer holds what a device maps).
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
        // References: each one to an anonymous, shmem or file frame has a holder the state names.
        if !exactReferences(maps, limit: limit, &out) { return out }
        // Charges: locked_vm, pinned_vm and the users' locked_vm are what their holders charged.
        if !chargesMatch(limit: limit, &out) { return out }
        // Devices: an IOPTE maps frames that are allocated (a pin or a kernel buffer holds them).
        // (Only the IOPTEs that break it are sorted, for a stable report: a debug build checks every step.)
        for dev in devices {
            var broken: [(iova: UInt64, text: String)] = []
            for (iova, e) in dev.ioptes {
                let first = Int(e.pa >> pageShift), count = Int(max(e.size, pageSize) >> pageShift)
                if first + count > n {
                    broken.append((iova, "\(dev.name)'s IOPTE at IOVA \(hex(iova)) maps \(hex(e.pa)), past memory"))
                } else if let pfn = (first..<(first + count)).first(where: { phys.use[$0] == FrameUse.free.rawValue }) {
                    broken.append((iova, "\(dev.name)'s IOPTE at IOVA \(hex(iova)) maps free pfn \(pfn)"))
                }
            }
            for b in broken.sorted(by: { $0.iova < $1.iova }) { guard fail(b.text) else { return out } }
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

extension EngineState {
    /// A pin's references: GUP_PIN_COUNTING_BIAS on a small folio, 1 on a large one (a THP, an
    /// mTHP, the huge zero folio), as try_grab_folio takes them.
    private func pinBias(_ pfn: Int) -> Int64 {
        let hz = Int(meta.hugeZeroPfn)
        return phys.isLarge(pfn) || (hz >= 0 && pfn >= hz && pfn < hz + pagesPerPMD) ? 1 : 1024
    }

    /// refcount = the page-table entries that map the frame (`maps`) + what each pin and GUP
    /// reference holds (a process's pins, a pipe's buffers, io_uring's fixed buffers, a driver's
    /// mapping) + the swap cache's and the page cache's own reference. False once `out` is full.
    fileprivate func exactReferences(_ maps: [Int32], limit: Int, _ out: inout [String]) -> Bool {
        let n = phys.frameCount
        var held = [Int64](repeating: 0, count: n)
        func hold(_ pfn32: Int32, _ refs: (Int) -> Int64) {
            let pfn = Int(pfn32)
            guard pfn32 != meta.zeroPfn, pfn >= 0, pfn < n else { return }
            held[pfn] += refs(pfn)
        }
        for proc in processes {
            for r in proc.meta.pins { for pfn in r.pfns { hold(pfn) { r.get ? 1 : pinBias($0) } } }
        }
        for dev in devices {
            for m in dev.mappings where m.pinnedPages > 0 { for pfn in m.pfns { hold(pfn, pinBias) } }
        }
        for pfn in swapCache.values { hold(pfn) { _ in 1 } }
        for pages in shmem.values { for pfn in pages.values { hold(pfn) { _ in 1 } } }
        var wrong: [Int] = []
        let anon = FrameUse.anon.rawValue, shm = FrameUse.shmem.rawValue, file = FrameUse.file.rawValue
        phys.use.withUnsafeBufferPointer { use in
            phys.refcount.withUnsafeBufferPointer { ref in
                for pfn in 0..<n {
                    let u = use[pfn]
                    guard u == anon || u == shm || u == file else { continue }
                    if Int64(ref[pfn]) != Int64(maps[pfn]) + held[pfn], wrong.count < limit { wrong.append(pfn) }
                }
            }
        }
        for pfn in wrong {
            guard out.count < limit else { return false }
            out.append("pfn \(pfn) (\(phys.frameUse(pfn).name)) has refcount \(phys.refcount[pfn]), but \(maps[pfn]) page-table entries and its pins, GUP references and caches hold \(Int64(maps[pfn]) + held[pfn])")
        }
        return out.count < limit
    }

    /// A live process's locked_vm is its VM_LOCKED VMAs, the UMP buffers it made under
    /// `ump-limit=memlock` and the driver mappings charged to it; pinned_vm its long-term pins'
    /// charges; a user's locked_vm (io_uring) what its live processes' fixed buffers charged.
    fileprivate func chargesMatch(limit: Int, _ out: inout [String]) -> Bool {
        var locked: [String: Int] = [:], user: [String: Int] = [:]
        for proc in processes where proc.meta.alive {
            locked[proc.meta.name, default: 0] += proc.meta.vmas.reduce(0) { $0 + ($1.flags.contains(.locked) ? Int(($1.end - $1.start) >> pageShift) : 0) }
            user[proc.meta.user, default: 0] += proc.meta.pins.reduce(0) { $0 + $1.userCharged }
            let pinned = proc.meta.pins.reduce(0) { $0 + $1.chargedPages }
            if pinned != proc.meta.pinnedVMPages {
                guard out.count < limit else { return false }
                out.append("\(proc.meta.name)'s pinned_vm is \(proc.meta.pinnedVMPages) pages; its long-term pins charged \(pinned)")
            }
        }
        for kb in kernelBuffers where !kb.freed && kb.chargedPages > 0 && locked[kb.creator] != nil { locked[kb.creator, default: 0] += kb.chargedPages }
        for dev in devices { for m in dev.mappings where locked[m.process] != nil { locked[m.process, default: 0] += m.lockedPages } }
        for proc in processes where proc.meta.alive && locked[proc.meta.name] != proc.meta.lockedVMPages {
            guard out.count < limit else { return false }
            out.append("\(proc.meta.name)'s locked_vm is \(proc.meta.lockedVMPages) pages; its VM_LOCKED VMAs, UMP buffers and device mappings charged \(locked[proc.meta.name] ?? 0)")
        }
        for name in Set(user.keys).union(meta.userLockedVM.keys).sorted() where (user[name] ?? 0) != (meta.userLockedVM[name] ?? 0) {
            guard out.count < limit else { return false }
            out.append("user \(name)'s locked_vm is \(meta.userLockedVM[name] ?? 0) pages; its processes' io_uring buffers charged \(user[name] ?? 0)")
        }
        return out.count < limit
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
