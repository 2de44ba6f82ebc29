// What a virtual page is, answered once: its VMA, its PTE decoded, its frame and the kind the
// panes, the inspector, `expect`, the probe comparison and the tests all call it.

/// What one page is, from its PTE and its frame.
public enum PageKind: Int, CaseIterable, Sendable {
    case untouched, zero, privatePage, shared, huge, swapped, pinned, pinnedShared, ump, dmabuf

    public var name: String {
        switch self {
        case .untouched: "untouched"
        case .zero: "zero page"
        case .privatePage: "private"
        case .shared: "shared/COW"
        case .huge: "huge (THP)"
        case .swapped: "swapped"
        case .pinned: "pinned"
        case .pinnedShared: "pinned and COW-shared"
        case .ump: "UMP (kernel memory)"
        case .dmabuf: "dma-buf (kernel memory)"
        }
    }
}

/// A PTE's bits, decoded.
public struct DecodedPTE: Equatable, Sendable {
    public var raw: UInt64
    public var present: Bool
    public var writable: Bool
    public var dirty: Bool
    /// pte_special: the shared zero page.
    public var zero: Bool
    /// A PMD leaf (a THP).
    public var huge: Bool
    /// A swap entry: its slot and whether the page was PageAnonExclusive.
    public var swap: (slot: Int, exclusive: Bool)?
    /// The frame a present entry maps.
    public var pfn: Int?
    /// The set bits by their x86-64 names (P, RW, US, A, D, PSE, SPECIAL, NX) with their numbers.
    public var bits: [(bit: Int, name: String)]

    public init(_ e: PTE) {
        raw = e.raw
        present = e.present
        writable = e.writable
        dirty = e.dirty
        zero = e.isZero
        huge = e.isHuge
        swap = e.isSwap ? (e.number, e.swapExclusive) : nil
        bits = e.bitNames
        pfn = e.present ? e.number : nil
    }

    public var isNone: Bool { raw == 0 }

    /// The bits of a present entry in words: present, writable or read-only, dirty, special, huge.
    public var names: [String] {
        guard present else { return [] }
        var out = ["present", writable ? "writable" : "read-only", "user"]
        if raw & PTE.accessedBit != 0 { out.append("accessed") }
        if dirty { out.append("dirty") }
        if zero { out.append("special (the zero page)") }
        if huge { out.append("huge (PSE)") }
        out.append(raw & PTE.nxBit != 0 ? "no-execute" : "executable")
        return out
    }

    public static func == (a: DecodedPTE, b: DecodedPTE) -> Bool { a.raw == b.raw }
}

/// The struct-page counts of a mapped frame, as a page sees them.
public struct FrameCounts: Equatable, Sendable {
    public var use: FrameUse
    public var refcount: Int32
    public var mapcount: Int32
    public var pincount: Int32
    public var anonExclusive: Bool
}

/// One virtual page of one process.
public struct PageInfo: Equatable, Sendable {
    public var process: Int
    public var vpn: UInt64
    /// The VMA containing it, as an index into the process's VMAs.
    public var vma: Int?
    public var pte: DecodedPTE
    /// Mapped by a huge PMD.
    public var huge: Bool
    public var kind: PageKind
    /// The frame's counts when the page maps one (the zero page included).
    public var frame: FrameCounts?

    public var va: UInt64 { vpn << pageShift }
    public var present: Bool { pte.present }
    public var swapped: Bool { pte.swap != nil }
    public var zero: Bool { pte.present && pte.zero }
    /// Mapped by this process alone: present, not the zero page, frame mapcount 1 (pagemap's "exclusive").
    public var exclusive: Bool { present && !pte.zero && frame?.mapcount == 1 }
}

extension EngineState {
    /// Page `vpn` of process `p`.
    public func page(_ p: Int, vpn: UInt64) -> PageInfo {
        let proc = processes[p]
        let e = proc.pt.entry(vpn: vpn)
        let huge = proc.pt.hugePMDs[vpn >> 9] != nil
        var counts: FrameCounts?
        if e.present, e.number < phys.frameCount {
            let pfn = e.number
            counts = FrameCounts(use: phys.frameUse(pfn), refcount: phys.refcount[pfn], mapcount: phys.mapcount[pfn],
                                 pincount: phys.pincount[pfn], anonExclusive: phys.flags[pfn] & FrameFlag.anonExclusive != 0)
        }
        return PageInfo(process: p, vpn: vpn, vma: proc.meta.vmaIndex(containing: vpn << pageShift), pte: DecodedPTE(e),
                        huge: huge, kind: pageKind(proc.pt, vpn: vpn), frame: counts)
    }

    /// What one page is; the panes ask this for every cell, so it reads the arrays directly.
    public func pageKind(_ pt: PageTable, vpn: UInt64) -> PageKind {
        let e = pt.entry(vpn: vpn)
        if e.isNone { return .untouched }
        if e.isSwap { return .swapped }
        guard e.present else { return .untouched }
        if e.isZero { return .zero }
        let pfn = e.number
        guard pfn < phys.frameCount else { return .privatePage }
        if phys.pincount[pfn] > 0 {
            // A pinned page fork left shared read-only (kernel=legacy): the next write copies away from the pin.
            let cow = phys.frameUse(pfn) == .anon && (phys.mapcount[pfn] > 1 || phys.flags[pfn] & FrameFlag.anonExclusive == 0)
            return cow ? .pinnedShared : .pinned
        }
        if pt.hugePMDs[vpn >> 9] != nil { return .huge }
        let use = phys.frameUse(pfn)
        // VM_PFNMAP mappings of kernel buffers.
        if use == .ump { return .ump }
        if use == .dmabuf { return .dmabuf }
        if use == .shmem || phys.mapcount[pfn] > 1 || phys.refcount[pfn] > 1
            || (use == .anon && phys.flags[pfn] & FrameFlag.anonExclusive == 0) {
            return .shared
        }
        return .privatePage
    }

    /// The kind a cell covering many pages shows: the most common among up to `samples` evenly
    /// spaced pages (a 4 GiB VMA costs what a small one does); untouched only if all are.
    public func dominantPageKind(_ p: Int, _ range: Range<UInt64>, samples maxSamples: UInt64 = 16) -> PageKind {
        dominantPageKind(processes[p].pt, range, samples: maxSamples)
    }

    /// The same for a page table already in hand (a view drawing a row of cells asks once per cell).
    public func dominantPageKind(_ pt: PageTable, _ range: Range<UInt64>, samples maxSamples: UInt64 = 16) -> PageKind {
        let n = range.upperBound - range.lowerBound
        if n <= 1 { return pageKind(pt, vpn: range.lowerBound) }
        let samples = min(n, maxSamples)
        var counts = [Int](repeating: 0, count: PageKind.allCases.count)
        for i in 0..<samples {
            let vpn = range.lowerBound + i * n / samples
            if pt.isEmpty(region: vpn >> 9) { continue }
            counts[pageKind(pt, vpn: vpn).rawValue] += 1
        }
        var best = PageKind.untouched
        var bestCount = 0
        for k in PageKind.allCases.dropFirst() where counts[k.rawValue] >= bestCount && counts[k.rawValue] > 0 {
            best = k
            bestCount = counts[k.rawValue]
        }
        return best
    }

    /// The frames the present pages of [range) map (the zero page included).
    public func frames(mappedBy p: Int, _ range: Range<UInt64>) -> FrameSet {
        var set = FrameSet(frames: phys.frameCount)
        let pt = processes[p].pt
        var vpn = range.lowerBound
        while vpn < range.upperBound {
            let region = vpn >> 9
            if pt.isEmpty(region: region) {
                vpn = (region + 1) << 9
                continue
            }
            let e = pt.entry(vpn: vpn)
            if e.present { set.insert(e.number) }
            vpn += 1
        }
        return set
    }

    /// The pages `listedPages` and the JSON list: present or swapped pages inside any buffer, by address.
    public func listedPages(_ p: Int) -> [(vpn: UInt64, pte: PTE)] {
        let proc = processes[p]
        var vpns = Set<UInt64>()
        var out: [(UInt64, PTE)] = []
        for b in proc.meta.buffers.sorted(by: { $0.start < $1.start }) {
            var vpn = b.firstPage >> pageShift
            let end = b.endPage >> pageShift
            while vpn < end {
                let region = vpn >> 9
                if proc.pt.isEmpty(region: region) {
                    vpn = (region + 1) << 9
                    continue
                }
                let e = proc.pt.entry(vpn: vpn)
                if (e.present || e.isSwap) && vpns.insert(vpn).inserted { out.append((vpn, e)) }
                vpn += 1
            }
        }
        return out.sorted { $0.0 < $1.0 }
    }
}
