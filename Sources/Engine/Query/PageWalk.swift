// The page-table walk of an address, as the MMU (or the IOMMU) does it: the address split into the
// index of each level and the offset, the table frame each level reads, and where the walk ends (a
// leaf PTE, a huge PMD, a missing entry). x86-64 4-level paging for a process (the P4D folds into
// the PGD without LA57: include/asm-generic/pgtable-nop4d.h); each IOMMU format's own levels.

/// One level of a walk.
public struct WalkLevel: Equatable, Sendable {
    /// PGD, P4D, PUD, PMD, PTE; or the format's name for an I/O table level.
    public var name: String
    /// The address bits that index this level, high and low (e.g. 47 and 39).
    public var highBit: Int
    public var lowBit: Int
    /// The index into this level's table.
    public var index: UInt64
    /// The frame of the table read at this level; nil when the walk stopped above it.
    public var tableFrame: Int?
    /// What the entry holds: "PUD table at pfn 0x123", "huge PMD: 2 MiB THP", "none".
    public var entry: String
    /// A folded level (the P4D of 4-level paging): no table of its own.
    public var folded: Bool = false
}

/// How a walk ended.
public enum WalkEnd: Equatable, Sendable {
    /// A leaf mapping `size` bytes at `pfn` (for an IOPTE, the physical address's frame).
    case leaf(pfn: Int, size: UInt64)
    /// A swap entry (not present).
    case swap(slot: Int)
    /// The entry at `level` is none: nothing is mapped there (a touch would fault).
    case missing(level: String)
}

public struct PageWalk: Equatable, Sendable {
    /// The address walked.
    public var address: UInt64
    /// How many address bits the walk translates.
    public var inputBits: Int
    public var levels: [WalkLevel]
    /// Bits below the last level used: the offset inside the page (12 for 4 KiB, 21 for a 2 MiB leaf).
    public var offsetBits: Int
    public var end: WalkEnd

    public var offset: UInt64 { address & ((UInt64(1) << UInt64(offsetBits)) - 1) }
}

extension EngineState {
    /// The x86-64 walk of `va` in process `p`'s page table: PGD → (P4D) → PUD → PMD → PTE.
    public func walk(process p: Int, va: UInt64) -> PageWalk {
        let pt = processes[p].pt
        func idx(_ hi: Int, _ lo: Int) -> UInt64 { (va >> UInt64(lo)) & ((UInt64(1) << UInt64(hi - lo + 1)) - 1) }
        var levels: [WalkLevel] = []
        let region = va >> 21
        let pgd = pt.pgd >= 0 ? Int(pt.pgd) : nil
        let pud = pt.upper[(va >> 39) | Engine.pudKeyBit].map(Int.init)
        let pmd = pt.upper[va >> 30].map(Int.init)
        let pte = pt.tables[region].map { Int($0.pfn) }
        func table(_ name: String, _ pfn: Int?) -> String { pfn.map { "\(name) table at pfn \(hex($0))" } ?? "none" }
        levels.append(WalkLevel(name: "PGD", highBit: 47, lowBit: 39, index: idx(47, 39), tableFrame: pgd, entry: table("PUD", pud)))
        levels.append(WalkLevel(name: "P4D", highBit: 47, lowBit: 39, index: 0, tableFrame: pgd,
                                entry: "folded into the PGD (4-level paging)", folded: true))
        guard pgd != nil, let pud else { return PageWalk(address: va, inputBits: 48, levels: levels, offsetBits: 12, end: .missing(level: "PGD")) }
        levels.append(WalkLevel(name: "PUD", highBit: 38, lowBit: 30, index: idx(38, 30), tableFrame: pud, entry: table("PMD", pmd)))
        guard let pmd else { return PageWalk(address: va, inputBits: 48, levels: levels, offsetBits: 12, end: .missing(level: "PUD")) }
        if let huge = pt.hugePMDs[region] {
            let what = huge.isZero ? "huge PMD (PSE): the huge zero folio" : "huge PMD (PSE): a 2 MiB THP"
            levels.append(WalkLevel(name: "PMD", highBit: 29, lowBit: 21, index: idx(29, 21), tableFrame: pmd,
                                    entry: "\(what) at pfn \(hex(huge.number)), raw \(hex(huge.raw))"))
            return PageWalk(address: va, inputBits: 48, levels: levels, offsetBits: 21, end: .leaf(pfn: huge.number, size: 1 << 21))
        }
        levels.append(WalkLevel(name: "PMD", highBit: 29, lowBit: 21, index: idx(29, 21), tableFrame: pmd, entry: table("PTE", pte)))
        guard let pte else { return PageWalk(address: va, inputBits: 48, levels: levels, offsetBits: 12, end: .missing(level: "PMD")) }
        let e = pt.tables[region]?.entries[Int(idx(20, 12))] ?? .none
        let end: WalkEnd
        let entry: String
        if e.present {
            end = .leaf(pfn: e.number, size: pageSize)
            entry = "\(e.isZero ? "the zero page" : "page") at pfn \(hex(e.number)), raw \(hex(e.raw))"
        } else if e.isSwap {
            end = .swap(slot: e.number)
            entry = "swap entry: slot \(e.number), raw \(hex(e.raw))"
        } else {
            end = .missing(level: "PTE")
            entry = "none"
        }
        levels.append(WalkLevel(name: "PTE", highBit: 20, lowBit: 12, index: idx(20, 12), tableFrame: pte, entry: entry))
        return PageWalk(address: va, inputBits: 48, levels: levels, offsetBits: 12, end: end)
    }

    /// The walk of `iova` through device `d`'s I/O page table, in its format's levels: VT-d second
    /// level and ARM LPAE 4 levels of 9 bits over 48 bits, ARM v7s 12 + 8 bits over 32, AMD v1 as
    /// many 9-bit levels as its IOVA space needs (3 here: 39 bits).
    public func ioWalk(device d: Int, iova: UInt64) -> PageWalk? {
        let dev = devices[d]
        let format = dev.info.format
        guard format != .none, format != .sva else { return nil }
        func idx(_ hi: Int, _ lo: Int) -> UInt64 { (iova >> UInt64(lo)) & ((UInt64(1) << UInt64(hi - lo + 1)) - 1) }
        // Levels top (the root) to 1, with their bit ranges and names.
        var shape: [(level: Int, hi: Int, lo: Int, name: String)] = []
        let inputBits: Int
        switch format {
        case .armV7s:
            inputBits = 32
            shape = [(2, 31, 20, "L1"), (1, 19, 12, "L2")]
        default:
            let top = dev.info.levels
            inputBits = dev.info.inputBits
            let names: [String]
            switch format {
            case .vtd: names = ["SL-PML4", "SL-PDP", "SL-PD", "SL-PT"]
            case .armLPAE: names = ["L0", "L1", "L2", "L3"]
            default: names = (1...top).reversed().map { "level \($0)" }
            }
            for level in stride(from: top, through: 1, by: -1) {
                let lo = 12 + 9 * (level - 1)
                shape.append((level, lo + 8, lo, names[names.count - level]))
            }
        }
        let leaf = iopteCovering(d, iova: iova)
        let leafLevel = leaf.map { Engine.leafLevel(size: $0.size, format: format) }
        var levels: [WalkLevel] = []
        for (i, s) in shape.enumerated() {
            let key = Engine.ioTableKey(level: s.level, iova: iova, format: format) | (i == 0 ? 1 << 63 : 0)
            let frame = dev.tablePages[key].map(Int.init)
            guard let frame else {
                return PageWalk(address: iova, inputBits: inputBits, levels: levels, offsetBits: 12, end: .missing(level: levels.last?.name ?? s.name))
            }
            if let e = leaf, s.level == leafLevel {
                let pfn = Int(e.pa >> pageShift)
                levels.append(WalkLevel(name: s.name, highBit: s.hi, lowBit: s.lo, index: idx(s.hi, s.lo), tableFrame: frame,
                                        entry: "leaf: \(formatSizeShort(e.size)) IOPTE, PA \(hex(e.pa))\(e.writable ? "" : ", read-only")"))
                return PageWalk(address: iova, inputBits: inputBits, levels: levels, offsetBits: e.size.trailingZeroBitCount,
                                end: .leaf(pfn: pfn, size: e.size))
            }
            let next = i + 1 < shape.count
                ? dev.tablePages[Engine.ioTableKey(level: shape[i + 1].level, iova: iova, format: format)].map { "next table at pfn \(hex(Int($0)))" }
                : nil
            levels.append(WalkLevel(name: s.name, highBit: s.hi, lowBit: s.lo, index: idx(s.hi, s.lo), tableFrame: frame, entry: next ?? "none"))
            if next == nil {
                return PageWalk(address: iova, inputBits: inputBits, levels: levels, offsetBits: 12, end: .missing(level: s.name))
            }
        }
        return PageWalk(address: iova, inputBits: inputBits, levels: levels, offsetBits: 12, end: .missing(level: shape.last?.name ?? "PTE"))
    }

    /// The IOPTE of device `d` that translates `iova`, if any.
    func iopteCovering(_ d: Int, iova: UInt64) -> IOPTE? {
        var bits = devices[d].pgsizeBitmap
        while bits != 0 {
            let s = UInt64(1) << UInt64(bits.trailingZeroBitCount)
            bits &= bits - 1
            if let e = devices[d].ioptes[iova & ~(s - 1)], e.size == s { return e }
        }
        return nil
    }
}
