// A process's page table: PTE tables per 2 MiB region, huge PMD leaves, the upper tables and the
// PGD. Written here only, through logged accessors: every PTE write records the old entry.

/// The PTE table of one 2 MiB region, living in one page-table frame.
public struct PTETable: Equatable, Sendable {
    public let pfn: Int32
    public fileprivate(set) var entries: [PTE]
    /// Entries that are not none; the table is freed when the region leaves every VMA.
    public fileprivate(set) var used: Int

    init(pfn: Int32) {
        self.pfn = pfn
        entries = Array(repeating: .none, count: pagesPerPMD)
        used = 0
    }

    /// Sets entry `i` (virtual page `vpn` of process `proc`), logging the old entry.
    @inline(__always) mutating func set(_ i: Int, _ new: PTE, proc: Int32, vpn: UInt64, _ j: inout StepJournal) {
        let old = entries[i]
        j.log(.pte(proc: proc, vpn: vpn, old: old))
        entries[i] = new
        used += (new.isNone ? 0 : 1) - (old.isNone ? 0 : 1)
    }

    fileprivate mutating func restore(_ i: Int, _ old: PTE) {
        let cur = entries[i]
        entries[i] = old
        used += (old.isNone ? 0 : 1) - (cur.isNone ? 0 : 1)
    }
}

public struct PageTable: Equatable, Sendable {
    /// The entry of `vpn` in its PTE table; none when the region has no table (a huge PMD's pages
    /// are read with `entry(vpn:)`).
    @inline(__always) public func pte(_ vpn: UInt64) -> PTE {
        tables[vpn >> 9]?.entries[Int(vpn & 511)] ?? .none
    }

    /// PTE tables by 2 MiB region number (va >> 21).
    public fileprivate(set) var tables: [UInt64: PTETable] = [:]
    /// PMD leaf entries (THP mappings) by region number.
    public fileprivate(set) var hugePMDs: [UInt64: PTE] = [:]
    /// Upper-level tables: PMD tables by 1 GiB number (key < 2^40), PUD tables by 512 GiB number | 1 << 62.
    public fileprivate(set) var upper: [UInt64: Int32] = [:]
    public fileprivate(set) var pgd: Int32 = -1

    /// The PTE for a virtual page number, looking through a huge PMD.
    public func entry(vpn: UInt64) -> PTE {
        let region = vpn >> 9
        if let h = hugePMDs[region] {
            var e = h
            e.raw += (vpn & 511) << 12
            return e
        }
        return tables[region]?.entries[Int(vpn & 511)] ?? .none
    }

    /// Whether the region has neither a PTE table nor a huge PMD (nothing can be mapped there).
    @inline(__always) public func isEmpty(region: UInt64) -> Bool {
        hugePMDs[region] == nil && tables[region] == nil
    }
}

// MARK: - Logged writes

extension Engine {
    /// The change-log key that stands for the PGD slot.
    static let pgdKey: UInt64 = UInt64.max

    /// Sets one PTE (the table must exist: the callers make sure of it), logging the old value.
    @inline(__always) mutating func setPTE(_ p: Int, vpn: UInt64, _ new: PTE, _ j: inout StepJournal) {
        guard state.processes[p].pt.tables[vpn >> 9]?.set(Int(vpn & 511), new, proc: Int32(p), vpn: vpn, &j) != nil else {
            j.bug("setPTE: \(state.processes[p].meta.name) has no PTE table for \(hex(vpn << pageShift))")
            return
        }
    }

    mutating func setHugePMD(_ p: Int, region: UInt64, _ new: PTE?, _ j: inout StepJournal) {
        j.log(.pmd(proc: Int32(p), region: region, old: state.processes[p].pt.hugePMDs[region]))
        state.processes[p].pt.hugePMDs[region] = new
    }

    /// A new, empty PTE table for a region, living in frame `pfn`.
    mutating func addPTETable(_ p: Int, region: UInt64, pfn: Int32, _ j: inout StepJournal) {
        j.log(.pteTableCreated(proc: Int32(p), region: region))
        state.processes[p].pt.tables[region] = PTETable(pfn: pfn)
    }

    /// Removes a region's PTE table; returns the frame it lived in.
    mutating func removePTETable(_ p: Int, region: UInt64, _ j: inout StepJournal) -> Int32? {
        guard let table = state.processes[p].pt.tables.removeValue(forKey: region) else { return nil }
        j.log(.pteTableFreed(proc: Int32(p), region: region, pfn: table.pfn))
        return table.pfn
    }

    /// Sets an upper table (or the PGD, with key pgdKey).
    mutating func setUpperTable(_ p: Int, key: UInt64, _ pfn: Int32?, _ j: inout StepJournal) {
        if key == Engine.pgdKey {
            let old = state.processes[p].pt.pgd
            j.log(.upperTable(proc: Int32(p), key: key, old: old >= 0 ? old : nil))
            state.processes[p].pt.pgd = pfn ?? -1
        } else {
            j.log(.upperTable(proc: Int32(p), key: key, old: state.processes[p].pt.upper[key]))
            state.processes[p].pt.upper[key] = pfn
        }
    }

    /// The fault loop's fast path works on one PTE table moved out of the dictionary (no hashing per
    /// page); it must give it back with `putBackPTETable`. Every entry written meanwhile still logs.
    mutating func takePTETable(_ p: Int, region: UInt64) -> PTETable? {
        state.processes[p].pt.tables.removeValue(forKey: region)
    }

    mutating func putBackPTETable(_ p: Int, region: UInt64, _ table: PTETable) {
        state.processes[p].pt.tables[region] = table
    }

    /// Undoes a page-table Change (Engine.undo routes them here).
    mutating func undoPageTable(_ change: Change) {
        switch change {
        case let .pte(proc, vpn, old):
            state.processes[Int(proc)].pt.tables[vpn >> 9]?.restore(Int(vpn & 511), old)
        case let .pteTableCreated(proc, region):
            state.processes[Int(proc)].pt.tables[region] = nil
        case let .pteTableFreed(proc, region, pfn):
            state.processes[Int(proc)].pt.tables[region] = PTETable(pfn: pfn)
        case let .pmd(proc, region, old):
            state.processes[Int(proc)].pt.hugePMDs[region] = old
        case let .upperTable(proc, key, old):
            if key == Engine.pgdKey {
                state.processes[Int(proc)].pt.pgd = old ?? -1
            } else {
                state.processes[Int(proc)].pt.upper[key] = old
            }
        default:
            break
        }
    }
}
