// Page-table pages are frames too: __pte_alloc / __pmd_alloc / __pud_alloc on first touch of a
// region, free_pgtables once no VMA covers the region any more.

extension Engine {
    static let pudKeyBit: UInt64 = 1 << 62

    /// Allocates one page-table frame for process p (GFP_PGTABLE_USER).
    mutating func allocTablePage(_ p: Int) -> Int32? {
        touchProcess(p)
        guard let pfn = allocPageOrReclaim(use: .pagetable, owner: state.processes[p].meta.pid, exclusive: false) else { return nil }
        state.processes[p].meta.pageTablePages += 1
        return Int32(pfn)
    }

    /// Makes sure the PUD and PMD tables above a 2 MiB region exist. False on OOM.
    mutating func ensureUpperTables(_ p: Int, region: UInt64) -> Bool {
        let pudKey = (region >> 18) | Engine.pudKeyBit   // one PUD table per 512 GiB
        let pmdKey = region >> 9                        // one PMD table per 1 GiB
        for key in [pudKey, pmdKey] where state.processes[p].pt.upper[key] == nil {
            guard let pfn = allocTablePage(p) else { return false }
            tally.add("ptalloc")
            log.changes.append(.upperTable(proc: Int32(p), key: key, old: nil))
            state.processes[p].pt.upper[key] = pfn
        }
        return true
    }

    /// __pte_alloc: the PTE table of a 2 MiB region, allocating it (and the tables above) on first use.
    mutating func ensurePTETable(_ p: Int, region: UInt64) -> Bool {
        if state.processes[p].pt.tables[region] != nil { return true }
        guard ensureUpperTables(p, region: region), let pfn = allocTablePage(p) else { return false }
        tally.add("ptalloc")
        log.changes.append(.pteTableCreated(proc: Int32(p), region: region))
        state.processes[p].pt.tables[region] = PTETable(pfn: pfn)
        return true
    }

    /// Sets one PTE (the table must exist), logging the old value.
    @inline(__always) mutating func setPTE(_ p: Int, vpn: UInt64, _ new: PTE) {
        let region = vpn >> 9, i = Int(vpn & 511)
        let old = state.processes[p].pt.tables[region]!.entries[i]
        log.changes.append(.pte(proc: Int32(p), vpn: vpn, old: old))
        state.processes[p].pt.tables[region]!.entries[i] = new
        state.processes[p].pt.tables[region]!.used += (new.isNone ? 0 : 1) - (old.isNone ? 0 : 1)
    }

    mutating func setHugePMD(_ p: Int, region: UInt64, _ new: PTE?) {
        log.changes.append(.pmd(proc: Int32(p), region: region, old: state.processes[p].pt.hugePMDs[region]))
        state.processes[p].pt.hugePMDs[region] = new
    }

    /// free_pgtables: frees PTE, PMD and PUD tables whose whole span no VMA covers any more.
    /// Tables still covered by a VMA stay, even when empty, as Linux leaves them.
    mutating func freeUnusedTables(_ p: Int) {
        let meta = state.processes[p].meta
        func covered(_ lo: UInt64, _ hi: UInt64) -> Bool {
            meta.vmas.contains { $0.start < hi && $0.end > lo }
        }
        for region in state.processes[p].pt.tables.keys.sorted() {
            let lo = region << 21
            guard !covered(lo, lo + (1 << 21)), let table = state.processes[p].pt.tables[region] else { continue }
            precondition(table.used == 0, "freeing a PTE table that still maps pages")
            log.changes.append(.pteTableFreed(proc: Int32(p), region: region, pfn: table.pfn))
            state.processes[p].pt.tables[region] = nil
            releaseTablePage(p, Int(table.pfn))
        }
        for key in state.processes[p].pt.upper.keys.sorted() {
            let isPUD = key & Engine.pudKeyBit != 0
            let lo = isPUD ? (key & ~Engine.pudKeyBit) << 39 : key << 30
            let span: UInt64 = isPUD ? 1 << 39 : 1 << 30
            guard !covered(lo, lo + span), let pfn = state.processes[p].pt.upper[key] else { continue }
            log.changes.append(.upperTable(proc: Int32(p), key: key, old: pfn))
            state.processes[p].pt.upper[key] = nil
            releaseTablePage(p, Int(pfn))
        }
    }

    mutating func releaseTablePage(_ p: Int, _ pfn: Int) {
        touchProcess(p)
        state.processes[p].meta.pageTablePages -= 1
        tally.add("ptfree")
        putPage(pfn)
    }
}
