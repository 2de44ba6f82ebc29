// Taking mappings away: zap_page_range (MADV_DONTNEED, munmap, exit) and exit_mmap.

extension Engine {
    /// zap_pte_range / zap_pmd_range over [start, end): PTEs cleared, rmap and references dropped,
    /// swap entries freed. A huge PMD the range only partly covers is split first.
    /// Frames whose last reference goes are freed; a frame someone else still references
    /// (another process, a pin, the swap cache) stays.
    mutating func zapRange(_ p: Int, start: UInt64, end: UInt64) {
        pinnedZaps = []
        defer { reportPinnedZaps(p) }
        var vpn = start >> pageShift
        let endVPN = end >> pageShift
        while vpn < endVPN {
            let region = vpn >> 9
            let regionEnd = (region + 1) << 9
            let stop = min(endVPN, regionEnd)
            if state.processes[p].pt.hugePMDs[region] != nil {
                if vpn == region << 9 && stop == regionEnd {
                    zapHugePMD(p, region: region)
                    tally.add("zap_huge_pmd")
                    vpn = stop
                    continue
                }
                splitHugePMD(p, region: region)
            }
            if let table = state.processes[p].pt.tables[region], table.used > 0 {
                for v in vpn..<stop {
                    let e = state.processes[p].pt.tables[region]!.entries[Int(v & 511)]
                    if e.isNone { continue }
                    zapPTE(p, vpn: v, e)
                }
            }
            vpn = stop
        }
    }

    /// One hazard per zap: pinned frames the process just stopped mapping (the device keeps them).
    private mutating func reportPinnedZaps(_ p: Int) {
        guard let (vpn, pfn) = pinnedZaps.first else { return }
        let more = pinnedZaps.count > 1 ? " (and \(pinnedZaps.count - 1) more page\(pinnedZaps.count == 2 ? "" : "s"))" : ""
        hazards.append("\(describeVA(p, vpn << pageShift))\(more) stays pinned for the device after it is unmapped (frame \(pfn)): the process's next touch gets a fresh page while the device keeps using the old one")
        pinnedZaps = []
    }

    private mutating func zapPTE(_ p: Int, vpn: UInt64, _ e: PTE) {
        setPTE(p, vpn: vpn, .none)
        touchProcess(p)
        if e.isSwap {
            state.processes[p].meta.swapPages -= 1
            swapFree(e.number)
            tally.add("zap:swap")
            return
        }
        if e.isZero {
            tally.add("zap:zero")
            return
        }
        let pfn = e.number
        let use = state.phys.frameUse(pfn)
        if use == .ump || use == .dmabuf {
            // VM_PFNMAP: no struct-page accounting behind these PTEs.
            tally.add("zap:pfnmap")
            return
        }
        state.processes[p].meta.rssPages -= 1
        if state.phys.pincount[pfn] > 0 && !exiting {
            pinnedZaps.append((vpn, pfn))
        }
        logFrame(pfn)
        state.phys.mapcount[pfn] -= 1
        if state.phys.refcount[pfn] > 1 { tally.add("zap:kept") } else { tally.add("zap:freed") }
        putPage(pfn)
    }

    /// munmap of [start, end): zap, drop the VMAs (splitting at the edges), free page tables no VMA needs.
    mutating func unmapRange(_ p: Int, start: UInt64, end: UInt64) {
        touchProcess(p)
        let range = isolateVMAs(p, start: start, end: end)
        for i in range {
            let vma = state.processes[p].meta.vmas[i]
            if vma.flags.contains(.locked) { state.processes[p].meta.lockedVMPages -= Int(vma.length >> pageShift) }
        }
        zapRange(p, start: start, end: end)
        state.processes[p].meta.vmas.removeSubrange(range)
        freeUnusedTables(p)
        releaseUnusedShmem()
    }

    /// do_exit → exit_mmap: everything unmapped, every page table and the PGD freed.
    mutating func exitProcess(_ p: Int, reason: String) {
        guard state.processes[p].meta.alive else { return }
        touchProcess(p)
        exiting = true
        defer { exiting = false }
        // Closing its files releases what the process's pins and device mappings hold.
        releaseDeviceMappings(ofProcess: p)
        for r in state.processes[p].meta.pins { for pfn in r.pfns { release(Int(pfn), get: r.get) } }
        state.processes[p].meta.pins = []
        let held = state.processes[p].meta.buffers.filter { $0.kernelBuffer >= 0 }
        for vma in state.processes[p].meta.vmas { zapRange(p, start: vma.start, end: vma.end) }
        for b in held { dropKernelBufferHold(p, b) }
        state.processes[p].meta.vmas = []
        state.processes[p].meta.lockedVMPages = 0
        state.processes[p].meta.pinnedVMPages = 0
        state.processes[p].meta.buffers = []
        freeUnusedTables(p)
        if state.processes[p].pt.pgd >= 0 {
            let pgd = state.processes[p].pt.pgd
            log.changes.append(.upperTable(proc: Int32(p), key: Engine.pgdKey, old: pgd))
            state.processes[p].pt.pgd = -1
            releaseTablePage(p, Int(pgd))
        }
        state.processes[p].meta.alive = false
        state.processes[p].meta.exitReason = reason
        releaseUnusedShmem()
    }

    /// The change-log key that stands for the PGD slot.
    static let pgdKey: UInt64 = UInt64.max
}
