// fork: dup_mmap, copy_page_range, copy_present_ptes, copy_huge_pmd (reference §1.4, §2.5).

extension Engine {
    mutating func doFork(_ parent: Int, child name: String, _ j: inout StepJournal) -> OpResult {
        let pm = state.processes[parent].meta
        let decl = ProcessDecl(name: name, memlock: pm.memlockLimit, capIPCLock: pm.capIPCLock, user: pm.user)
        let created = createProcess(decl, &j)
        guard created.outcome == .ok else { return .fail(.errno("ENOMEM"), "fork fails with ENOMEM: " + created.text) }
        let c = state.processes.count - 1
        // dup_mmap: VM_DONTCOPY VMAs are skipped; VM_LOCKED is not inherited; a VMA with an anon_vma gets one of its own.
        var vmas: [VMA] = []
        var nextAnonVMA = state.meta.nextAnonVMA
        for var vma in pm.vmas where !vma.flags.contains(.dontcopy) {
            vma.flags.remove(.locked)
            if vma.anonVMA != 0 {
                vma.anonVMA = nextAnonVMA
                nextAnonVMA += 1
                // anon_vma_fork chains the parent's anon_vma too: the chain is no longer singular.
                vma.chainedAnonVMA = true
            }
            vmas.append(vma)
        }
        updateMachine(&j) { $0.nextAnonVMA = nextAnonVMA }
        // The child starts as execve made it, then takes the parent's address space and heap.
        vmaReset(c, vmas, &j)
        bufferReset(c, pm.buffers, &j)
        // The child inherits the parent's file descriptors (dma-buf fds, the /dev/ump session), so it
        // holds every kernel buffer the parent holds, whatever is left mapped of it: exit lets go of
        // the same list.
        for b in pm.buffers where b.kernelBuffer >= 0 { addHolder(Int(b.kernelBuffer), name, &j) }
        chunkReset(c, pm.heapChunks, &j)
        updateCounters(c, &j) {
            $0.brk = pm.brk
            $0.mmapThreshold = pm.mmapThreshold
            $0.trimThreshold = pm.trimThreshold
        }
        var copiedVMAs = 0
        let skipped = pm.vmas.filter { $0.flags.contains(.dontcopy) }.count
        var eagerCopies = 0
        for vma in pm.vmas where !vma.flags.contains(.dontcopy) {
            if vma.kind == .device {
                // VM_PFNMAP: vma_needs_copy is true; the PTEs are copied as they are, and the child
                // inherits the file descriptor (or UMP handle) behind them.
                guard copyPFNMap(parent, c, vma, &j) else {
                    exitProcess(c, reason: "fork failed: out of memory while copying page tables", &j)
                    return .fail(.errno("ENOMEM"), "fork fails with ENOMEM: no memory for the child's page tables")
                }
                continue
            }
            // vma_needs_copy: only VMAs with an anon_vma have page tables worth copying now.
            guard vma.anonVMA != 0 else { continue }
            copiedVMAs += 1
            guard copyPageRange(parent, c, vma, eagerCopies: &eagerCopies, &j) else {
                exitProcess(c, reason: "fork failed: out of memory while copying page tables", &j)
                return .fail(.errno("ENOMEM"), "fork fails with ENOMEM: no memory for the child's page tables")
            }
        }
        var text = "fork: \(name) is pid \(state.processes[c].meta.pid); dup_mmap copies \(vmas.count) VMAs"
        if skipped > 0 { text += " (\(plural(skipped, "VM_DONTCOPY range")) left out: MADV_DONTFORK)" }
        text += "; copy_page_range copies the page tables of the \(copiedVMAs) with an anon_vma, making anonymous pages shared and read-only in both (copy_present_ptes); VMAs never written have no anon_vma and are left to fault again"
        if eagerCopies > 0 {
            text += "; \(pluralIsAre(eagerCopies, "possibly pinned exclusive page")) copied for the child now (folio_needs_cow_for_dma)"
        }
        return OpResult(text: text)
    }

    /// copy_page_range for one VMA. False on OOM.
    private mutating func copyPageRange(_ p: Int, _ c: Int, _ vma: VMA, eagerCopies: inout Int, _ j: inout StepJournal) -> Bool {
        let firstRegion = vma.start >> 21, lastRegion = (vma.end - 1) >> 21
        for region in firstRegion...lastRegion {
            if let pmd = state.processes[p].pt.hugePMDs[region] {
                guard ensurePTETable(c, region: region, &j) else { return false }   // the deposited table
                if pmd.isZero {
                    // copy_huge_pmd: "It just takes a reference" for the child's mm.
                    mmGetHugeZeroFolio(c, &j)
                    setHugePMD(c, region: region, pmd, &j)
                } else if state.config.kernel == .v6_12 && state.processes[p].meta.hasPinned && folioMaybePinned(pmd.number) {
                    // copy_huge_pmd: a possibly pinned exclusive THP makes the parent split the PMD; the PTE path copies.
                    splitHugePMD(p, region: region, &j)
                    guard copyPTEs(p, c, vma, region: region, eagerCopies: &eagerCopies, &j) else { return false }
                    continue
                } else {
                    let head = pmd.number
                    state.phys.update(head..<(head + pagesPerPMD), &j) { _, f in
                        f.refcount += 1
                        f.mapcount += 1
                        f.flags &= ~FrameFlag.anonExclusive
                    }
                    let ro = pmd.writeProtected()
                    setHugePMD(p, region: region, ro, &j)
                    setHugePMD(c, region: region, ro, &j)
                    updateCounters(c, &j) { $0.rssPages += pagesPerPMD }
                }
                j.events.add(.copyHugePMD)
                continue
            }
            // copy_pmd_range skips only a none PMD: an existing PTE table is copied even when empty.
            guard state.processes[p].pt.tables[region] != nil else { continue }
            guard copyPTEs(p, c, vma, region: region, eagerCopies: &eagerCopies, &j) else { return false }
        }
        return true
    }

    private mutating func copyPFNMap(_ p: Int, _ c: Int, _ vma: VMA, _ j: inout StepJournal) -> Bool {
        for vpn in (vma.start >> pageShift)..<(vma.end >> pageShift) {
            let e = state.processes[p].pt.entry(vpn: vpn)
            guard e.present else { continue }
            guard ensurePTETable(c, region: vpn >> 9, &j) else { return false }
            setPTE(c, vpn: vpn, e, &j)
        }
        return true
    }

    /// folio_maybe_dma_pinned: an exact pin count for large folios, refcount ≥ 1024 for small ones.
    func folioMaybePinned(_ pfn: Int) -> Bool {
        let head = state.phys.folioHead(pfn)
        if state.phys.isLarge(pfn) { return (0..<(1 << state.phys.folioOrder(pfn))).contains { state.phys.pincount[head + $0] > 0 } }
        return state.phys.pincount[pfn] > 0 || state.phys.refcount[pfn] >= 1024
    }

    /// copy_pte_range over the part of one region inside the VMA.
    private mutating func copyPTEs(_ p: Int, _ c: Int, _ vma: VMA, region: UInt64, eagerCopies: inout Int, _ j: inout StepJournal) -> Bool {
        let lo = max(vma.start >> pageShift, region << 9)
        let hi = min(vma.end >> pageShift, (region + 1) << 9)
        guard ensurePTETable(c, region: region, &j) else { return false }
        var shared = 0, zero = 0, swap = 0
        for vpn in lo..<hi {
            let e = state.processes[p].pt.pte(vpn)
            if e.isNone { continue }
            if e.isSwap {
                // copy_nonpresent_pte: swap_duplicate, and the parent's entry loses its exclusive mark.
                setSwapSlot(e.number, state.swapMap[e.number] + 1, &j)
                let plain = PTE.swapEntry(slot: e.number, exclusive: false)
                if plain != e { setPTE(p, vpn: vpn, plain, &j) }
                setPTE(c, vpn: vpn, plain, &j)
                updateCounters(c, &j) { $0.swapPages += 1 }
                swap += 1
                continue
            }
            if e.isZero {
                setPTE(c, vpn: vpn, e, &j)
                zero += 1
                continue
            }
            let pfn = e.number
            if state.phys.frameUse(pfn) == .anon, state.config.kernel == .v6_12, state.processes[p].meta.hasPinned,
               state.phys.flags[pfn] & FrameFlag.anonExclusive != 0, folioMaybePinned(pfn) {
                // __folio_try_dup_anon_rmap says -EBUSY: copy_present_page gives the child its own copy now.
                guard let copy = allocPageOrReclaim(use: .anon, owner: state.processes[c].meta.pid, exclusive: true, mapcount: 1, &j) else { return false }
                setPTE(c, vpn: vpn, .page(pfn: copy, writable: e.writable), &j)
                state.phys.setData(copy, state.phys.dataTag(pfn), &j)
                updateCounters(c, &j) { $0.rssPages += 1 }
                j.events.add(.copyPresentPage)
                eagerCopies += 1
                continue
            }
            // copy_present_ptes: folio_get + folio_try_dup_anon_rmap_pte (mapcount +1, AnonExclusive cleared),
            // and a COW mapping is write-protected on both sides.
            let cow = !vma.flags.contains(.shared)
            state.phys.update(pfn, &j) { f in
                f.refcount += 1
                f.mapcount += 1
                if cow { f.flags &= ~FrameFlag.anonExclusive }
            }
            let child = cow ? e.writeProtected() : e
            if cow && e.writable { setPTE(p, vpn: vpn, child, &j) }
            setPTE(c, vpn: vpn, child, &j)
            updateCounters(c, &j) { $0.rssPages += 1 }
            shared += 1
        }
        j.events.add(.copyPresentPTEs, shared)
        j.events.add(.copyZeroPTEs, zero)
        j.events.add(.copyNonpresentPTEs, swap)
        return true
    }
}
