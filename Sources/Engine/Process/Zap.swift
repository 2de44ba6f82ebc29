// Taking mappings away: zap_page_range (MADV_DONTNEED, munmap, exit) and exit_mmap.

extension Engine {
    /// zap_pte_range / zap_pmd_range over [start, end): PTEs cleared, rmap and references dropped,
    /// swap entries freed. A huge PMD the range only partly covers is split first.
    /// Frames whose last reference goes are freed; a frame someone else still references
    /// (another process, a pin, the swap cache) stays. Unless the process is exiting, pinned frames
    /// it stops mapping are a hazard: the device keeps them.
    mutating func zapRange(_ p: Int, start: UInt64, end: UInt64, exiting: Bool = false, _ j: inout StepJournal) {
        var pinned: [(vpn: UInt64, pfn: Int)] = []
        let startVPN = start >> pageShift, endVPN = end >> pageShift
        guard endVPN > startVPN else { return }
        // The 2 MiB regions to visit: all of them for a range no wider than what is mapped, else
        // only those with a PTE table or a huge PMD (zap_pmd_range skips pmd_none the same way),
        // so the work is what exists, not the width of the range (64 TiB is 32M regions).
        let firstRegion = startVPN >> 9, lastRegion = (endVPN - 1) >> 9
        // (In a scope of its own: a copy of the page tables alive during the zap would make its
        // first write copy the whole table dictionary, once per VMA at exit.)
        let regions: [UInt64]
        do {
            let pt = state.processes[p].pt
            let mapped = pt.tables.count + pt.hugePMDs.count
            regions = lastRegion - firstRegion < UInt64(mapped) * 4 + 64
                ? Array(firstRegion...lastRegion)
                : Set(pt.tables.keys).union(pt.hugePMDs.keys).filter { $0 >= firstRegion && $0 <= lastRegion }.sorted()
        }
        for region in regions {
            let vpn = max(startVPN, region << 9)
            let regionEnd = (region + 1) << 9
            let stop = min(endVPN, regionEnd)
            if state.processes[p].pt.hugePMDs[region] != nil {
                if vpn == region << 9 && stop == regionEnd {
                    zapHugePMD(p, region: region, &j)
                    j.events.add(.zapHugePMD)
                    continue
                }
                splitHugePMD(p, region: region, &j)
            }
            if let table = state.processes[p].pt.tables[region], table.used > 0 {
                for v in vpn..<stop {
                    let e = state.processes[p].pt.pte(v)
                    if e.isNone { continue }
                    if let pfn = zapPTE(p, vpn: v, e, &j), !exiting { pinned.append((v, pfn)) }
                }
            }
        }
        // One hazard per zap: pinned frames the process just stopped mapping (the device keeps them).
        if let (vpn, pfn) = pinned.first {
            let more = pinned.count > 1 ? " (and \(plural(pinned.count - 1, "more page")))" : ""
            j.hazards.append(Hazard(kind: .pinnedPageUnmapped, text: "\(describeVA(p, vpn << pageShift))\(more) stays pinned for the device after it is unmapped (frame \(hex(pfn))): the process's next touch gets a fresh page while the device keeps using the old one"))
        }
    }

    /// Clears one PTE and drops what it held; returns the frame when it was pinned.
    private mutating func zapPTE(_ p: Int, vpn: UInt64, _ e: PTE, _ j: inout StepJournal) -> Int? {
        setPTE(p, vpn: vpn, .none, &j)
        if e.isSwap {
            updateCounters(p, &j) { $0.swapPages -= 1 }
            swapFree(e.number, &j)
            j.events.add(.zapSwap)
            return nil
        }
        touchProcess(p, &j)
        if e.isZero {
            j.events.add(.zapZero)
            return nil
        }
        let pfn = e.number
        let use = state.phys.frameUse(pfn)
        if use == .ump || use == .dmabuf {
            // VM_PFNMAP: no struct-page accounting behind these PTEs.
            j.events.add(.zapPFNMap)
            return nil
        }
        updateCounters(p, &j) { $0.rssPages -= 1 }
        let pinned = state.phys.pincount[pfn] > 0
        state.phys.update(pfn, &j) { $0.mapcount -= 1 }
        j.events.add(state.phys.refcount[pfn] > 1 ? .zapKept : .zapFreed)
        putPage(pfn, &j)
        return pinned ? pfn : nil
    }

    /// munmap of [start, end): zap, drop the VMAs (splitting at the edges), free page tables no VMA needs.
    mutating func unmapRange(_ p: Int, start: UInt64, end: UInt64, _ j: inout StepJournal) {
        touchProcess(p, &j)
        let range = isolateVMAs(p, start: start, end: end, &j)
        var unlocked = 0
        for i in range where state.processes[p].meta.vmas[i].flags.contains(.locked) {
            unlocked += Int(state.processes[p].meta.vmas[i].length >> pageShift)
        }
        if unlocked > 0 { updateCounters(p, &j) { $0.lockedVMPages -= unlocked } }
        zapRange(p, start: start, end: end, &j)
        for i in range.reversed() { vmaRemove(p, at: i, &j) }
        freeUnusedTables(p, &j)
        releaseUnusedShmem(&j)
    }

    /// do_exit → exit_mmap: everything unmapped, every page table and the PGD freed.
    mutating func exitProcess(_ p: Int, reason: String, _ j: inout StepJournal) {
        guard state.processes[p].meta.alive else { return }
        touchProcess(p, &j)
        // Closing its files releases what the process's pins and device mappings hold.
        releaseDeviceMappings(ofProcess: p, &j)
        for r in state.processes[p].meta.pins { for pfn in r.pfns { release(Int(pfn), get: r.get, &j) } }
        // The ring goes with the process: io_unaccount_mem gives the user back what it charged.
        let userCharged = state.processes[p].meta.pins.reduce(0) { $0 + $1.userCharged }
        if userCharged > 0 { updateMachine(&j) { [user = state.processes[p].meta.user] in $0.userLockedVM[user, default: 0] -= userCharged } }
        pinReset(p, [], &j)
        let held = state.processes[p].meta.buffers.filter { $0.kernelBuffer >= 0 }
        for vma in state.processes[p].meta.vmas { zapRange(p, start: vma.start, end: vma.end, exiting: true, &j) }
        for b in held { dropKernelBufferHold(p, b, exiting: true, &j) }
        vmaReset(p, [], &j)
        mmPutHugeZeroFolio(p, &j)
        updateCounters(p, &j) {
            $0.lockedVMPages = 0
            $0.pinnedVMPages = 0
        }
        bufferReset(p, [], &j)
        freeUnusedTables(p, &j)
        let pgd = state.processes[p].pt.pgd
        if pgd >= 0 {
            setUpperTable(p, key: Engine.pgdKey, nil, &j)
            releaseTablePage(p, Int(pgd), &j)
        }
        updateCounters(p, &j) {
            $0.alive = false
            $0.exitReason = reason
        }
        releaseUnusedShmem(&j)
    }
}
