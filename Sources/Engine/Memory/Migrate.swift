// Page migration (mm/migrate.c) and contiguous allocation (alloc_contig_range): what FOLL_LONGTERM,
// the CMA heap, linear UMP buffers and compaction need.

extension Engine {
    /// Can migrate_pages move this frame? A movable small page whose every reference is a mapping.
    func isMigratable(_ pfn: Int) -> Bool {
        let use = state.phys.frameUse(pfn)
        guard PhysicalMemory.isMovable(use), !state.phys.isLarge(pfn), state.phys.pincount[pfn] == 0 else { return false }
        let cacheRef: Int32 = use == .shmem ? 1 : 0
        return state.phys.refcount[pfn] == state.phys.mapcount[pfn] + cacheRef
    }

    /// migrate_pages for one small page: a new frame (outside CMA when asked), every PTE switched to it
    /// (try_to_migrate + remove_migration_ptes), the old frame freed. nil when it cannot move.
    mutating func migratePage(_ pfn: Int, avoidCMA: Bool, excluding range: Range<Int>? = nil, _ j: inout StepJournal) -> Int? {
        guard isMigratable(pfn) else { return nil }
        let owner = state.phys.owner[pfn]
        var taken: [Int] = []
        var target: Int?
        // The destination must lie outside the range being emptied (alloc_contig_range's rule).
        while let cand = allocPage(use: state.phys.frameUse(pfn), owner: owner, exclusive: false, avoidCMA: avoidCMA, &j) {
            if let range, range.contains(cand) { taken.append(cand); continue }
            target = cand
            break
        }
        for t in taken { freePages(t, order: 0, &j) }
        guard let new = target else { return nil }
        movePage(pfn, to: new, &j)
        return new
    }

    /// The second half of a migration: the frame's record moves to `new` (already allocated), every
    /// PTE and the page cache switch to it, the old frame is freed. `rmap`, when given, says who maps
    /// and caches the page (compaction builds it once for the whole zone instead of walking every
    /// page table per page, which made `compact` quadratic).
    mutating func movePage(_ pfn: Int, to new: Int, rmap: ReverseMap? = nil, _ j: inout StepJournal) {
        let old = state.phys.frame(pfn)
        state.phys.set(new, old, &j)   // the page keeps its LRU age: migration is not a new allocation
        state.phys.setData(new, state.phys.dataTag(pfn), &j)   // folio_migrate_copy
        let ptes = rmap.map { ($0.ptes[pfn] ?? []).sorted { ($0.process, $0.vpn) < ($1.process, $1.vpn) } }
            ?? state.mappers(of: pfn).filter { !$0.huge }.map { (process: $0.process, vpn: $0.vpn) }
        for m in ptes {
            let e = state.processes[m.process].pt.entry(vpn: m.vpn)
            setPTE(m.process, vpn: m.vpn, .page(pfn: new, writable: e.writable), &j)
        }
        if old.use == FrameUse.shmem.rawValue {
            if let rmap {
                for slot in (rmap.cache[pfn] ?? []).sorted(by: { ($0.object, $0.index) < ($1.object, $1.index) }) {
                    setShmemPage(slot.object, slot.index, Int32(new), &j)
                }
            } else {
                for (obj, pages) in state.shmem.sorted(by: { $0.key < $1.key }) {
                    for (index, f) in pages where Int(f) == pfn { setShmemPage(obj, index, Int32(new), &j) }
                }
            }
        }
        freePages(pfn, order: 0, &j)
        j.events.add(.migratePages)
    }

    /// Who maps each frame by a PTE, and which page-cache slots hold it: built once by a walk of
    /// every page table and the page cache (what the kernel's rmap keeps all the time).
    struct ReverseMap {
        var ptes: [Int: [(process: Int, vpn: UInt64)]] = [:]
        var cache: [Int: [(object: Int32, index: UInt64)]] = [:]

        init(_ state: EngineState) {
            for (p, proc) in state.processes.enumerated() where proc.meta.alive {
                for (region, table) in proc.pt.tables where table.used > 0 {
                    for (i, e) in table.entries.enumerated() where e.present && !e.isZero {
                        ptes[e.number, default: []].append((p, (region << 9) + UInt64(i)))
                    }
                }
            }
            for (object, pages) in state.shmem {
                for (index, pfn) in pages { cache[Int(pfn), default: []].append((object, index)) }
            }
        }
    }

    /// alloc_contig_range: `count` frames in one run, aligned to `align` frames, inside CMA or in
    /// ordinary memory; movable pages in the way are migrated out. nil when no run can be emptied.
    mutating func allocContig(count: Int, align: Int, cma: Bool, use: FrameUse, owner: Int32, _ j: inout StepJournal) -> Int? {
        let (cmaStart, cmaEnd, frameCount) = (state.phys.cmaStart, state.phys.cmaEnd, state.phys.frameCount)
        let lo = cma ? cmaStart : state.meta.kernelReservedFrames
        let hi = cma ? cmaEnd : (cmaEnd > cmaStart ? cmaStart : frameCount)
        guard count > 0, hi - lo >= count else { return nil }
        var start = (lo + align - 1) / align * align
        // First fit: a run whose frames are all free or migratable.
        while start + count <= hi {
            var ok = true, blocker = start
            for pfn in start..<(start + count) where state.phys.use[pfn] != FrameUse.free.rawValue && !isMigratable(pfn) {
                ok = false
                blocker = pfn
                break
            }
            if ok { break }
            start = (blocker / align + 1) * align
        }
        guard start + count <= hi else { return nil }
        let range = start..<(start + count)
        for pfn in range where state.phys.use[pfn] != FrameUse.free.rawValue {
            guard migratePage(pfn, avoidCMA: cma, excluding: range, &j) != nil else { return nil }
        }
        for pfn in range { guard claimFrame(pfn, use: use, owner: owner, &j) else { return nil } }
        return start
    }
}
