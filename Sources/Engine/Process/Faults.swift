// Demand paging: handle_mm_fault and what it calls, for anonymous (and shared anonymous) memory.
// Reference §1: the zero page on read, a zeroed exclusive page on write, wp_page_copy after the
// zero page or a shared page, reuse when the page is exclusive or its refcount is back to 1.

/// What one page touch ended in.
enum FaultResult: Equatable {
    case ok
    case sigsegv(reason: String)
    /// A file mapping touched past the end of its file (filemap_fault: VM_FAULT_SIGBUS).
    case sigbus(reason: String)
    case oom
}

extension Engine {
    /// Is a THP fault possible for this 2 MiB region of this VMA? (thp_vma_allowable_order +
    /// thp_vma_suitable_order: the policy allows it and the aligned range lies wholly inside the VMA.)
    func thpAllowed(_ vma: VMA, region: UInt64) -> Bool {
        guard vma.kind == .anon || vma.kind == .heap, !vma.flags.contains(.shared), !vma.flags.contains(.nohugepage) else { return false }
        switch state.config.thp {
        case .never: return false
        case .madvise: guard vma.flags.contains(.hugepage) else { return false }
        case .always: break
        }
        let lo = region << 21
        return lo >= vma.start && lo + (1 << 21) <= vma.end
    }

    /// anon_vma_prepare: the first anonymous page of a VMA gives it an anon_vma.
    mutating func anonVMAPrepare(_ p: Int, vma v: Int, _ j: inout StepJournal) {
        guard state.processes[p].meta.vmas[v].anonVMA == 0 else { return }
        let id = state.meta.nextAnonVMA
        updateMachine(&j) { $0.nextAnonVMA += 1 }
        vmaUpdate(p, at: v, &j) { $0.anonVMA = id }
    }

    /// Touches every page of [start, end) as the CPU would, faulting as needed.
    /// Stops at the first SIGSEGV or OOM. `stores`: the CPU writes data there (the pages then hold
    /// this process's data of this step); a write fault taken for GUP or populate writes nothing.
    mutating func touchRange(_ p: Int, start: UInt64, end: UInt64, write: Bool, stores: Bool = false, _ j: inout StepJournal) -> FaultResult {
        var vpn = start >> pageShift
        let first = vpn
        let endVPN = (end + pageSize - 1) >> pageShift
        while vpn < endVPN {
            // A cancelled step is undone whole: what it returns no longer matters.
            if !j.poll(Int(vpn - first), of: Int(endVPN - first), .pages) { return .ok }
            let va = vpn << pageShift
            guard let v = state.processes[p].meta.vmaIndex(containing: va) else {
                return .sigsegv(reason: hex(va) + " is not in any VMA")
            }
            let vma = state.processes[p].meta.vmas[v]
            if write && !vma.flags.contains(.write) {
                return .sigsegv(reason: "\(hex(va)) is in a VMA without write permission (\(vma.permissions))")
            }
            if !write && !vma.flags.contains(.read) {
                return .sigsegv(reason: "\(hex(va)) is in a VMA without read permission (\(vma.permissions))")
            }
            // Work one 2 MiB region of one VMA at a time.
            let regionEnd = ((vpn >> 9) + 1) << 9
            let stop = min(endVPN, regionEnd, vma.end >> pageShift)
            let r = touchRegion(p, vma: v, from: vpn, to: stop, write: write, &j)
            if r != .ok { return r }
            if write && stores { tagWritten(p, from: vpn, to: stop, &j) }
            vpn = stop
        }
        return .ok
    }

    /// The CPU wrote pages [from, to) of one 2 MiB region, now mapped writable: each frame now holds
    /// this process's data of this step.
    private mutating func tagWritten(_ p: Int, from: UInt64, to: UInt64, _ j: inout StepJournal) {
        let tag = DataTag.process(pid: state.processes[p].meta.pid, step: j.step)
        let region = from >> 9
        if let huge = state.processes[p].pt.hugePMDs[region], huge.present && huge.writable {
            for vpn in from..<to { state.phys.setData(huge.number + Int(vpn & 511), tag, &j) }
            return
        }
        guard let table = state.processes[p].pt.tables[region] else { return }
        for vpn in from..<to {
            let e = table.entries[Int(vpn & 511)]
            if e.present && e.writable { state.phys.setData(e.number, tag, &j) }
        }
    }

    /// The multi-size THP orders a write fault in this VMA may use (`machine mthp=`, each size set to
    /// `always`): anonymous private memory without VM_NOHUGEPAGE (thp_vma_allowable_orders).
    func mthpOrders(_ vma: VMA) -> UInt16 {
        guard state.config.mthpOrders != 0, vma.kind == .anon || vma.kind == .heap, !vma.flags.contains(.shared),
              !vma.flags.contains(.nohugepage) else { return 0 }
        return state.config.mthpOrders
    }

    /// alloc_anon_folio (mm/memory.c:4654): the highest enabled order whose aligned range lies inside
    /// the VMA (thp_vma_suitable_orders) with every PTE none (pte_range_none); then that order or the
    /// next lower ones until the buddy allocator has a block. nil: fall back to one small page.
    private mutating func allocAnonFolio(_ vma: VMA, pid: Int32, vpn: UInt64, orders: UInt16, table: PTETable, _ j: inout StepJournal) -> (base: UInt64, order: Int, pfn: Int)? {
        var candidates = (2...8).reversed().filter { orders & (1 << UInt16($0)) != 0 }.filter { order in
            let base = vpn & ~((1 << UInt64(order)) - 1)
            return base >= vma.start >> pageShift && base + (1 << UInt64(order)) <= vma.end >> pageShift
        }
        // The first order whose range is all none; lower orders' ranges lie inside it.
        while let order = candidates.first {
            let base = Int(vpn & ~((1 << UInt64(order)) - 1)) & 511
            if (base..<(base + (1 << order))).allSatisfy({ table.entries[$0].isNone }) { break }
            candidates.removeFirst()
        }
        for order in candidates {
            if let pfn = allocPages(order: order, use: .anon, owner: pid, largeFolio: true, &j) {
                return (vpn & ~((1 << UInt64(order)) - 1), order, pfn)
            }
        }
        return nil
    }

    /// Pages [from, to) inside one 2 MiB region and one VMA.
    private mutating func touchRegion(_ p: Int, vma v: Int, from: UInt64, to: UInt64, write: Bool, _ j: inout StepJournal) -> FaultResult {
        let region = from >> 9
        if state.processes[p].pt.hugePMDs[region] != nil {
            for vpn in from..<to {
                guard state.processes[p].pt.hugePMDs[region] != nil else {
                    return touchPTERange(p, vma: v, from: vpn, to: to, write: write, &j)
                }
                let r = hugePMDFault(p, vma: v, vpn: vpn, write: write, &j)
                if r != .ok { return r }
            }
            return .ok
        }
        if state.processes[p].pt.tables[region] == nil, thpAllowed(state.processes[p].meta.vmas[v], region: region) {
            let r = doHugePMDAnonymousPage(p, vma: v, region: region, write: write, &j)
            if r == .oom { return r }
            if state.processes[p].pt.hugePMDs[region] != nil {
                j.events.add(.alreadyMapped, Int(to - from) - 1)
                return .ok
            }
        }
        return touchPTERange(p, vma: v, from: from, to: to, write: write, &j)
    }

    /// The PTE-level loop. The common cases (already mapped; a fresh private page on read or write)
    /// run inline on a table moved out of the dictionary; everything else goes through handlePTEFault.
    private mutating func touchPTERange(_ p: Int, vma v: Int, from: UInt64, to: UInt64, write: Bool, _ j: inout StepJournal) -> FaultResult {
        let region = from >> 9
        guard ensurePTETable(p, region: region, &j) else { return .oom }
        let vma = state.processes[p].meta.vmas[v]
        let privateAnon = !vma.flags.contains(.shared) && vma.kind != .file
        let writable = vma.flags.contains(.write)
        let pid = state.processes[p].meta.pid
        let proc = Int32(p)
        let zero = Int(state.meta.zeroPfn)
        if write && privateAnon { anonVMAPrepare(p, vma: v, &j) }
        let mthp = write && privateAnon ? mthpOrders(vma) : 0
        var mthpPages = 0
        var mthpFolios: [Int: Int] = [:]
        var mapped = 0, zeroMapped = 0, fresh = 0, freshTotal = 0
        // ensurePTETable made sure it exists.
        guard var table = takePTETable(p, region: region) else {
            j.bug("touchPTERange: \(state.processes[p].meta.name) has no PTE table for \(hex(from << pageShift))")
            return .ok
        }
        var tableOut = true
        var vpn = from
        var result = FaultResult.ok
        while vpn < to {
            let i = Int(vpn & 511)
            let e = table.entries[i]
            if e.present && (!write || e.writable) {
                mapped += 1
            } else if e.isNone && privateAnon && !write {
                table.set(i, .page(pfn: zero, writable: false, zero: true), proc: proc, vpn: vpn, &j)
                zeroMapped += 1
            } else if e.isNone && mthp != 0, let (base, order, first) = allocAnonFolio(vma, pid: pid, vpn: vpn, orders: mthp, table: table, &j) {
                // alloc_anon_folio: a multi-size THP, mapped whole by PTEs (set_ptes), exclusive.
                let pages = 1 << order
                state.phys.update(first..<(first + pages), &j) { _, f in
                    f.mapcount = 1
                    f.flags |= FrameFlag.anonExclusive
                }
                for k in 0..<UInt64(pages) {
                    table.set(Int((base + k) & 511), .page(pfn: first + Int(k), writable: writable), proc: proc, vpn: base + k, &j)
                }
                mthpPages += pages
                mthpFolios[order, default: 0] += 1
                vpn = base + UInt64(pages)
                continue
            } else if e.isNone && privateAnon, let pfn = allocPage(use: .anon, owner: pid, exclusive: true, mapcount: 1, &j) {
                table.set(i, .page(pfn: pfn, writable: writable), proc: proc, vpn: vpn, &j)
                fresh += 1
            } else {
                // Everything else (and reclaim, which walks page tables) needs the table back in place.
                putBackPTETable(p, region: region, table)
                tableOut = false
                flushFresh(p, &fresh, &freshTotal, &j)
                result = handlePTEFault(p, vma: v, vpn: vpn, write: write, &j)
                guard result == .ok, let t = takePTETable(p, region: region) else { break }
                table = t
                tableOut = true
            }
            vpn += 1
        }
        if tableOut { putBackPTETable(p, region: region, table) }
        flushFresh(p, &fresh, &freshTotal, &j)
        if mthpPages > 0 { updateCounters(p, &j) { $0.rssPages += mthpPages } }
        for (order, n) in mthpFolios.sorted(by: { $0.key > $1.key }) { j.events.add(.mthpAnonymousFolio(order: Int8(order)), n) }
        j.events.add(.alreadyMapped, mapped)
        j.events.add(.zeroPageMapped, zeroMapped)
        j.events.add(.anonymousPage, freshTotal)
        return result
    }

    private mutating func flushFresh(_ p: Int, _ fresh: inout Int, _ total: inout Int, _ j: inout StepJournal) {
        guard fresh > 0 else { return }
        let n = fresh
        updateCounters(p, &j) { $0.rssPages += n }
        total += fresh
        fresh = 0
    }

    /// One PTE-level fault the fast loop did not handle: handle_pte_fault.
    mutating func handlePTEFault(_ p: Int, vma v: Int, vpn: UInt64, write: Bool, _ j: inout StepJournal) -> FaultResult {
        let vma = state.processes[p].meta.vmas[v]
        let e = state.processes[p].pt.pte(vpn)
        if e.isNone {
            if vma.kind == .device { return .sigsegv(reason: "\(hex(vpn << pageShift)) is in a VM_PFNMAP mapping with no page there") }
            if vma.kind == .file { return fileFault(p, vma: v, vpn: vpn, write: write, &j) }
            if vma.flags.contains(.shared) { return shmemFault(p, vma: v, vpn: vpn, write: write, &j) }
            // do_anonymous_page, write: a zeroed exclusive page (alloc failed on the fast path: reclaim or OOM).
            anonVMAPrepare(p, vma: v, &j)
            guard let pfn = allocPageOrReclaim(use: .anon, owner: state.processes[p].meta.pid, exclusive: true, mapcount: 1, &j) else { return .oom }
            guard state.processes[p].meta.alive else { return .oom }
            setPTE(p, vpn: vpn, .page(pfn: pfn, writable: vma.flags.contains(.write)), &j)
            updateCounters(p, &j) { $0.rssPages += 1 }
            j.events.add(.anonymousPage)
            return .ok
        }
        if e.isSwap {
            let r = doSwapPage(p, vma: v, vpn: vpn, write: write, &j)
            if r != .ok { return r }
            let now = state.processes[p].pt.pte(vpn)
            if !write || now.writable { return .ok }
            return doWPPage(p, vma: v, vpn: vpn, &j)
        }
        if e.present && write && !e.writable { return doWPPage(p, vma: v, vpn: vpn, &j) }
        j.events.add(.alreadyMapped)
        return .ok
    }

    /// do_wp_page: a write to a present, write-protected PTE of a private mapping.
    mutating func doWPPage(_ p: Int, vma v: Int, vpn: UInt64, _ j: inout StepJournal) -> FaultResult {
        let e = state.processes[p].pt.pte(vpn)
        let writable = state.processes[p].meta.vmas[v].flags.contains(.write)
        if e.isZero {
            // vm_normal_page() is NULL for the zero page: no folio to reuse, wp_page_copy to a zeroed page.
            return wpPageCopy(p, vma: v, vpn: vpn, from: nil, &j)
        }
        let pfn = e.number
        let use = state.phys.frameUse(pfn)
        if use == .shmem || use == .file {
            if state.processes[p].meta.vmas[v].flags.contains(.shared) {
                // wp_page_shared (mm/memory.c:3546): a shared page-cache page becomes writable (and dirty) in place.
                setPTE(p, vpn: vpn, .page(pfn: pfn, writable: writable), &j)
                j.events.add(use == .file ? .wpPageShared : .alreadyMapped)
                return .ok
            }
            // A private mapping of a file: only anonymous pages are ever reused; this one is copied.
            return wpPageCopy(p, vma: v, vpn: vpn, from: pfn, &j)
        }
        if state.phys.flags[pfn] & FrameFlag.anonExclusive != 0 {
            setPTE(p, vpn: vpn, .page(pfn: pfn, writable: writable), &j)
            j.events.add(.wpPageReuse(.exclusive))
            return .ok
        }
        // wp_can_reuse_anon_folio: large folios are never reused; otherwise only when nobody else holds
        // a reference. Before 5.9 (kernel=legacy) reuse was decided by mapcount (reuse_swap_page): a page
        // mapped once is reused even if GUP holds references — which is how COW "broke the wrong way".
        let sole = state.config.kernel == .legacy ? state.phys.mapcount[pfn] == 1 : state.phys.refcount[pfn] == 1
        if !state.phys.isLarge(pfn), sole {
            state.phys.update(pfn, &j) { $0.flags |= FrameFlag.anonExclusive }
            setPTE(p, vpn: vpn, .page(pfn: pfn, writable: writable), &j)
            j.events.add(.wpPageReuse(state.config.kernel == .legacy ? .mapcount : .refcount))
            return .ok
        }
        return wpPageCopy(p, vma: v, vpn: vpn, from: pfn, largeSole: sole, &j)
    }

    /// wp_page_copy: a new exclusive page (zeroed when copying from the zero page), the PTE switched
    /// to it, then the old page's mapping and reference dropped (folio_remove_rmap_pte, folio_put).
    /// `largeSole`: `old` is a page of a large folio that a small page's rule would have reused.
    mutating func wpPageCopy(_ p: Int, vma v: Int, vpn: UInt64, from old: Int?, largeSole: Bool = false, _ j: inout StepJournal) -> FaultResult {
        let fromCache = old.map { state.phys.frameUse($0) == .file || state.phys.frameUse($0) == .shmem } ?? false
        anonVMAPrepare(p, vma: v, &j)
        guard let pfn = allocPageOrReclaim(use: .anon, owner: state.processes[p].meta.pid, exclusive: true, mapcount: 1, &j) else { return .oom }
        guard state.processes[p].meta.alive else { return .oom }
        setPTE(p, vpn: vpn, .page(pfn: pfn, writable: state.processes[p].meta.vmas[v].flags.contains(.write)), &j)
        if let old {
            // copy_mc_user_highpage: the new page starts as a copy (an unshare keeps it as that).
            state.phys.setData(pfn, state.phys.dataTag(old), &j)
            touchProcess(p, &j)
            if state.phys.pincount[old] > 0 {
                j.hazards.append(Hazard(kind: .copyAwayFromPin, text: "the device's pinned frame \(hex(old)) is no longer \(describeVA(p, vpn << pageShift)): COW gave \(state.processes[p].meta.name) frame \(hex(pfn)), so the device's writes no longer reach it"))
            }
            state.phys.update(old, &j) { $0.mapcount -= 1 }
            putPage(old, &j)
        } else {
            updateCounters(p, &j) { $0.rssPages += 1 }
        }
        j.events.add(.wpPageCopy(old == nil ? .zeroPage : fromCache ? .pageCache : largeSole ? .largeFolio : .sharedPage))
        return .ok
    }

    /// shmem_fault for a shared anonymous mapping: the page lives in the shmem object (page cache)
    /// and every mapper maps the same frame. No zero page here: even a read allocates. A read fault
    /// first maps the neighbours already in the page cache (do_fault_around: a 64 KiB window).
    mutating func shmemFault(_ p: Int, vma v: Int, vpn: UInt64, write: Bool, _ j: inout StepJournal) -> FaultResult {
        if !write { faultAround(p, vma: v, vpn: vpn, &j) }
        if !state.processes[p].pt.pte(vpn).isNone {
            j.events.add(.alreadyMapped)
            return .ok
        }
        let vma = state.processes[p].meta.vmas[v]
        let index = vma.shmemOffset + (vpn - (vma.start >> pageShift))
        let pfn: Int
        if let existing = state.shmem[vma.shmem]?[index] {
            pfn = Int(existing)
            state.phys.update(pfn, &j) { $0.refcount += 1; $0.mapcount += 1 }
        } else {
            guard let new = allocPageOrReclaim(use: .shmem, owner: state.processes[p].meta.pid, exclusive: false, &j) else { return .oom }
            guard state.processes[p].meta.alive else { return .oom }
            pfn = new
            setShmemPage(vma.shmem, index, Int32(pfn), &j)
            // One reference for the page cache, one for this mapping.
            state.phys.update(pfn, &j) { $0.refcount += 1; $0.mapcount += 1 }
        }
        setPTE(p, vpn: vpn, .page(pfn: pfn, writable: vma.flags.contains(.write)), &j)
        updateCounters(p, &j) { $0.rssPages += 1 }
        j.events.add(.shmemFault)
        return .ok
    }

    /// do_fault_around → filemap_map_pages: map the pages of the aligned 16-page window (inside the
    /// VMA and the PTE table) that the page cache already holds and no PTE maps yet.
    mutating func faultAround(_ p: Int, vma v: Int, vpn: UInt64, _ j: inout StepJournal) {
        let vma = state.processes[p].meta.vmas[v]
        let window: UInt64 = 16
        // from_pte: the aligned window start clamped to the VMA; to_pte: 16 pages on, clamped to VMA and table.
        let lo = max(vpn & ~(window - 1), vma.start >> pageShift, (vpn >> 9) << 9)
        let hi = min(lo + window, vma.end >> pageShift, ((vpn >> 9) + 1) << 9)
        var mapped = 0
        let writable = faultAroundWritable(vma)
        for n in lo..<hi where n != vpn {
            guard state.processes[p].pt.pte(n).isNone else { continue }
            let index = vma.shmemOffset + (n - (vma.start >> pageShift))
            guard let cached = state.shmem[vma.shmem]?[index] else { continue }
            let pfn = Int(cached)
            state.phys.update(pfn, &j) { $0.refcount += 1; $0.mapcount += 1 }
            setPTE(p, vpn: n, .page(pfn: pfn, writable: writable), &j)
            mapped += 1
        }
        if mapped > 0 {
            updateCounters(p, &j) { $0.rssPages += mapped }
            j.events.add(.faultAround, mapped)
        }
    }

    /// The last VMA of a shmem object is gone: the object (its page cache) is released with it.
    mutating func releaseUnusedShmem(_ j: inout StepJournal) {
        for obj in state.shmem.keys.sorted() {
            // A regular file's page cache outlives its mappings.
            if let f = state.fileIndex(object: obj), !state.files[f].shmem { continue }
            let used = state.processes.contains { $0.meta.alive && $0.meta.vmas.contains { $0.shmem == obj } }
            guard !used, let pages = state.shmem[obj] else { continue }
            for (index, pfn) in pages.sorted(by: { $0.key < $1.key }) {
                setShmemPage(obj, index, nil, &j)
                putPage(Int(pfn), &j)
            }
            j.events.add(.shmemEvict, pages.count)
        }
    }

    /// Marks a process as touched by this step (the TUI shows it as changed) when nothing of its
    /// record changes: a COW copy, say, changes only its PTEs and frames.
    mutating func touchProcess(_ p: Int, _ j: inout StepJournal) { updateCounters(p, &j) { _ in } }

    /// "app.buf page 3" for an address inside a named buffer, else the address.
    func describeVA(_ p: Int, _ va: UInt64) -> String {
        let m = state.processes[p].meta
        if let b = m.buffers.first(where: { va >= $0.firstPage && va < $0.endPage }) {
            return "\(m.name).\(b.name) page \((va - b.firstPage) >> pageShift)"
        }
        return "\(m.name) \(hex(va))"
    }
}
