// Page-table pages are frames too: __pte_alloc / __pmd_alloc / __pud_alloc on first touch of a
// region, free_pgtables once no VMA covers the region any more.

extension Engine {
    static let pudKeyBit: UInt64 = 1 << 62

    /// Allocates one page-table frame for process p (GFP_PGTABLE_USER).
    mutating func allocTablePage(_ p: Int, _ j: inout StepJournal) -> Int32? {
        guard let pfn = allocPageOrReclaim(use: .pagetable, owner: state.processes[p].meta.pid, exclusive: false, &j) else { return nil }
        updateCounters(p, &j) { $0.pageTablePages += 1 }
        return Int32(pfn)
    }

    /// Makes sure the PUD and PMD tables above a 2 MiB region exist. False on OOM.
    mutating func ensureUpperTables(_ p: Int, region: UInt64, _ j: inout StepJournal) -> Bool {
        let pudKey = (region >> 18) | Engine.pudKeyBit   // one PUD table per 512 GiB
        let pmdKey = region >> 9                        // one PMD table per 1 GiB
        for key in [pudKey, pmdKey] where state.processes[p].pt.upper[key] == nil {
            guard let pfn = allocTablePage(p, &j) else { return false }
            j.events.add(.pageTableAlloc)
            setUpperTable(p, key: key, pfn, &j)
        }
        return true
    }

    /// __pte_alloc: the PTE table of a 2 MiB region, allocating it (and the tables above) on first use.
    mutating func ensurePTETable(_ p: Int, region: UInt64, _ j: inout StepJournal) -> Bool {
        if state.processes[p].pt.tables[region] != nil { return true }
        guard ensureUpperTables(p, region: region, &j), let pfn = allocTablePage(p, &j) else { return false }
        j.events.add(.pageTableAlloc)
        addPTETable(p, region: region, pfn: pfn, &j)
        return true
    }

    /// free_pgtables: frees PTE, PMD and PUD tables whose whole span no VMA covers any more.
    /// Tables still covered by a VMA stay, even when empty, as Linux leaves them.
    mutating func freeUnusedTables(_ p: Int, _ j: inout StepJournal) {
        let meta = state.processes[p].meta
        func covered(_ lo: UInt64, _ hi: UInt64) -> Bool {
            meta.vmas.contains { $0.start < hi && $0.end > lo }
        }
        for region in state.processes[p].pt.tables.keys.sorted() {
            let lo = region << 21
            guard !covered(lo, lo + (1 << 21)), let table = state.processes[p].pt.tables[region] else { continue }
            guard table.used == 0 else {
                j.bug("free_pgtables: \(meta.name)'s PTE table for \(hex(lo)) still maps \(table.used) pages, no VMA covers it")
                continue
            }
            guard let pfn = removePTETable(p, region: region, &j) else { continue }
            releaseTablePage(p, Int(pfn), &j)
        }
        for key in state.processes[p].pt.upper.keys.sorted() {
            let isPUD = key & Engine.pudKeyBit != 0
            let lo = isPUD ? (key & ~Engine.pudKeyBit) << 39 : key << 30
            let span: UInt64 = isPUD ? 1 << 39 : 1 << 30
            guard !covered(lo, lo + span), let pfn = state.processes[p].pt.upper[key] else { continue }
            setUpperTable(p, key: key, nil, &j)
            releaseTablePage(p, Int(pfn), &j)
        }
    }

    mutating func releaseTablePage(_ p: Int, _ pfn: Int, _ j: inout StepJournal) {
        updateCounters(p, &j) { $0.pageTablePages -= 1 }
        j.events.add(.pageTableFree)
        putPage(pfn, &j)
    }
}
