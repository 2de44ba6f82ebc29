// mremap(2) of a buffer: shrink, grow in place, or move (mm/mremap.c, 6.12).

extension Engine {
    /// `PROC mremap BUF NEWSIZE [move]`: mremap(start, old_len, new_len, move ? MREMAP_MAYMOVE : 0).
    /// Shrinking unmaps the tail (do_vmi_munmap, mm/mremap.c:1156), splitting a THP the new end falls
    /// inside. Growing checks vma_to_resize (:880): the old range inside one VMA (EFAULT), no
    /// VM_PFNMAP (EFAULT), RLIMIT_MEMLOCK for a locked VMA (EAGAIN). It expands in place when the
    /// range ends the VMA and nothing lies above (vma_expandable, :1026), else with `move` it
    /// moves (move_vma, :687): a new VMA where get_unmapped_area says, the page tables moved over
    /// (move_page_tables, :563: a huge PMD whole when both ends are 2 MiB aligned, else split
    /// first), the old range unmapped. No page is copied. Without `move` that is ENOMEM.
    mutating func doMremap(_ p: Int, buffer b: Buffer, newSize: UInt64, mayMove: Bool, _ j: inout StepJournal) -> OpResult {
        let start = b.start
        let call = "mremap(\(hex(start)), \(formatSize(alignUp(max(b.size, 1), pageSize))), \(formatSize(alignUp(newSize, pageSize)))\(mayMove ? ", MREMAP_MAYMOVE" : ""))"
        guard start % pageSize == 0 else {
            return .fail(.errno("EINVAL"), "\(call) fails with EINVAL: the address is not page aligned (malloc returns the chunk + 16 bytes; glibc's realloc remaps the whole chunk)")
        }
        let oldLen = alignUp(max(b.size, 1), pageSize)
        let newLen = alignUp(newSize, pageSize)
        guard newLen > 0 else { return .fail(.errno("EINVAL"), "\(call) fails with EINVAL: a new length of 0 makes no sense") }
        guard let v = state.processes[p].meta.vmaIndex(containing: start) else {
            return .fail(.errno("EFAULT"), "\(call) fails with EFAULT: \(hex(start)) is in no VMA")
        }
        let vma = state.processes[p].meta.vmas[v]
        if newLen == oldLen {
            return OpResult(text: "\(call): the length does not change, nothing to do")
        }
        if newLen < oldLen {
            // do_vmi_munmap of the tail, as munmap would.
            unmapRange(p, start: start + newLen, end: start + oldLen, &j)
            bufferReplace(p, resized(b, start: start, size: newSize, len: newLen), &j)
            return OpResult(text: "\(call): shrinking only unmaps the tail, \(formatSize(oldLen - newLen)) from \(hex(start + newLen)) (do_vmi_munmap)")
        }
        // vma_to_resize.
        if oldLen > vma.end - start {
            return .fail(.errno("EFAULT"), "\(call) fails with EFAULT: the old range runs past its VMA (vma_to_resize: no remapping across VMAs)")
        }
        if b.kind == .ump || b.kind == .dmabuf {
            return .fail(.errno("EFAULT"), "\(call) fails with EFAULT: a VM_PFNMAP mapping of kernel memory cannot grow (vma_to_resize)")
        }
        let delta = newLen - oldLen
        let deltaPages = Int(delta >> pageShift)
        let locked = vma.flags.contains(.locked)
        if locked, memlockCheck(p, pages: deltaPages) != nil {
            return .fail(.errno("EAGAIN"), "\(call) fails with EAGAIN (mlock_future_ok): " + memlockMessage(p, request: deltaPages, counter: "locked_vm", current: state.processes[p].meta.lockedVMPages))
        }
        let above = state.processes[p].meta.vmas.first { $0.start < vma.end + delta && $0.end > vma.end }
        if start + oldLen == vma.end, above == nil, vma.end + delta <= stackTop {
            // vma_merge_extend: the VMA grows in place, and may merge with the next one.
            vmaUpdate(p, at: v, &j) { $0.end += delta }
            remergeAll(p, &j)
            bufferReplace(p, resized(b, start: start, size: newSize, len: newLen), &j)
            var text = "\(call): nothing lies above, so vma_merge_extend grows the VMA in place by \(formatSize(delta)); no frame until the first touch"
            if locked {
                updateCounters(p, &j) { $0.lockedVMPages += deltaPages }
                let r = populateRange(p, start: start + oldLen, end: start + newLen, &j)
                if r != .ok { return faultOutcome(r, text: text) }
                text += "; VM_LOCKED: locked_vm +\(formatSize(delta)) and mm_populate faults the new part in"
            }
            return OpResult(text: text)
        }
        let blocker = above.map { "\(hex($0.start))-\(hex($0.end)) \($0.label)" } ?? "the top of the mmap area"
        guard mayMove else {
            return .fail(.errno("ENOMEM"), "\(call) fails with ENOMEM: it cannot grow in place (\(start + oldLen == vma.end ? "\(blocker) is in the way" : "the range does not end its VMA")) and MREMAP_MAYMOVE was not given")
        }
        let thpAlign = !vma.flags.contains(.shared) && state.config.kernel == .v6_12 && newLen % pmdSize == 0
        guard let to = getUnmappedArea(p, length: newLen, thpAlign: thpAlign) else {
            return .fail(.errno("ENOMEM"), "\(call) fails with ENOMEM: no gap of \(formatSize(newLen)) left in the address space")
        }
        // move_vma: copy_vma at the new place (it may merge), move_page_tables, then unmap the old range.
        let isolated = isolateVMAs(p, start: start, end: start + oldLen, &j)
        guard let first = isolated.first else { return .fail(.errno("EFAULT"), "\(call) fails with EFAULT: \(hex(start)) is in no VMA") }
        var moved = state.processes[p].meta.vmas[first]
        if moved.shmem != 0 { moved.shmemOffset += (start - moved.start) >> pageShift }
        moved.start = to
        moved.end = to + newLen
        insertVMA(p, moved, &j)
        let (ptes, hugeMoved, split) = movePageTables(p, from: start, to: to, length: oldLen, &j)
        if locked { updateCounters(p, &j) { $0.lockedVMPages += Int(newLen >> pageShift) } }
        unmapRange(p, start: start, end: start + oldLen, &j)
        bufferReplace(p, resized(b, start: to, size: newSize, len: newLen), &j)
        // A device mapping of the buffer still reaches the same frames; only the VA it stands for moves.
        for d in state.devices.indices {
            for (i, m) in state.devices[d].mappings.enumerated() where m.process == state.processes[p].meta.name && m.buffer == b.name {
                var n = m
                n.va = m.va &- start &+ to
                if state.devices[d].info.format == .sva {
                    // An SVA bind is the process's address space: it covers the buffer where it now is,
                    // and the move's mmu_notifier invalidation flushed the device TLB of the old range.
                    n.iova = n.va
                    n.size = newLen
                    _ = updateIOTLB(d, &j) { $0.invalidate(iova: start, size: oldLen) }
                }
                mappingReplace(d, at: i, n, &j)
            }
        }
        var text = "\(call) = \(hex(to)): it cannot grow in place (\(start + oldLen == vma.end ? "\(blocker) is in the way" : "the range does not end its VMA")), so move_vma makes a VMA at \(hex(to))"
        text += thpAlign ? " (a multiple of 2 MiB: 2 MiB aligned)" : ""
        text += " and move_page_tables moves \(plural(ptes, "PTE"))"
        if hugeMoved > 0 { text += " and \(plural(hugeMoved, "huge PMD")) whole (move_huge_pmd)" }
        if split > 0 { text += "; \(plural(split, "THP")) not 2 MiB aligned at both ends \(split == 1 ? "is" : "are") split first (split_huge_pmd)" }
        text += "; no page is copied, the frames stay; the old range is unmapped"
        if locked {
            let r = populateRange(p, start: to + oldLen, end: to + newLen, &j)
            if r != .ok { return faultOutcome(r, text: text) }
            text += "; VM_LOCKED: mm_populate faults the new part in"
        }
        return OpResult(text: text)
    }

    private func resized(_ b: Buffer, start: UInt64, size: UInt64, len: UInt64) -> Buffer {
        var n = b
        n.start = start
        n.size = size
        n.chunkStart = start
        n.chunkSize = len
        return n
    }

    /// move_page_tables: every entry of [from, from + length) moves to the same offset at `to`.
    /// Returns the PTEs moved, the huge PMDs moved whole, and the huge PMDs split first.
    private mutating func movePageTables(_ p: Int, from: UInt64, to: UInt64, length: UInt64, _ j: inout StepJournal) -> (Int, Int, Int) {
        var ptes = 0, huge = 0, split = 0
        var off: UInt64 = 0
        while off < length {
            let old = from + off, new = to + off
            // get_extent: up to the next 2 MiB boundary of either address, or the end.
            let extent = min(pmdSize - (old & (pmdSize - 1)), pmdSize - (new & (pmdSize - 1)), length - off)
            let region = old >> 21
            if let pmd = state.processes[p].pt.hugePMDs[region] {
                if extent == pmdSize, ensurePTETable(p, region: new >> 21, &j) {
                    // move_huge_pmd: the PMD and its deposited table go over as they are.
                    setHugePMD(p, region: new >> 21, pmd, &j)
                    setHugePMD(p, region: region, nil, &j)
                    if let pfn = removePTETable(p, region: region, &j) { releaseTablePage(p, Int(pfn), &j) }
                    huge += 1
                    off += extent
                    continue
                }
                splitHugePMD(p, region: region, &j)
                split += 1
            }
            if let table = state.processes[p].pt.tables[region] {
                var vpn = old >> pageShift
                let endVPN = (old + extent) >> pageShift
                while vpn < endVPN {
                    let e = table.entries[Int(vpn & 511)]
                    if !e.isNone {
                        let target = (new >> pageShift) + (vpn - (old >> pageShift))
                        guard ensurePTETable(p, region: target >> 9, &j) else { return (ptes, huge, split) }
                        setPTE(p, vpn: target, e, &j)
                        setPTE(p, vpn: vpn, .none, &j)
                        ptes += 1
                    }
                    vpn += 1
                }
            }
            off += extent
        }
        return (ptes, huge, split)
    }
}
