// Sets the query layer answers in: frames as a bitset over every pfn, and a process's virtual
// pages as a 512-bit map per 2 MiB region. Constant-time membership, fast range tests, so a view
// can ask "does anything in this cell…" in time proportional to its cells.

/// A set of frames as a bitset over every pfn.
public struct FrameSet: Sendable, Equatable {
    public private(set) var words: [UInt64]
    public private(set) var count = 0

    public init(frames: Int) { words = Array(repeating: 0, count: (frames + 63) / 64) }

    @inline(__always) public func contains(_ pfn: Int) -> Bool {
        pfn >= 0 && pfn / 64 < words.count && words[pfn >> 6] & (1 << UInt64(pfn & 63)) != 0
    }

    @inline(__always) public mutating func insert(_ pfn: Int) {
        guard pfn >= 0, pfn / 64 < words.count else { return }
        let bit: UInt64 = 1 << UInt64(pfn & 63)
        if words[pfn >> 6] & bit == 0 { words[pfn >> 6] |= bit; count += 1 }
    }

    public mutating func insert(range: Range<Int>) { for p in range { insert(p) } }

    /// Whether any frame in `range` is in the set.
    public func intersects(_ range: Range<Int>) -> Bool {
        guard count > 0 else { return false }
        var p = max(0, range.lowerBound)
        let end = min(range.upperBound, words.count * 64)
        while p < end {
            let w = words[p >> 6]
            if p & 63 == 0 && end - p >= 64 {
                if w != 0 { return true }
                p += 64
            } else {
                if w & (1 << UInt64(p & 63)) != 0 { return true }
                p += 1
            }
        }
        return false
    }

    public var isEmpty: Bool { count == 0 }

    /// The lowest frame in the set.
    public var first: Int? {
        guard count > 0, let w = words.firstIndex(where: { $0 != 0 }) else { return nil }
        return w * 64 + words[w].trailingZeroBitCount
    }
}

/// A set of virtual pages of one process, as a 512-bit map per 2 MiB region.
public struct PageSet: Sendable, Equatable {
    public private(set) var regions: [UInt64: [UInt64]] = [:]

    public init() {}

    @inline(__always) public func contains(_ vpn: UInt64) -> Bool {
        guard let r = regions[vpn >> 9] else { return false }
        let i = Int(vpn & 511)
        return r[i >> 6] & (1 << UInt64(i & 63)) != 0
    }

    public mutating func insert(_ vpn: UInt64) {
        let i = Int(vpn & 511)
        regions[vpn >> 9, default: Array(repeating: 0, count: 8)][i >> 6] |= 1 << UInt64(i & 63)
    }

    public mutating func insertRegion(_ region: UInt64) {
        regions[region] = Array(repeating: ~0, count: 8)
    }

    public func intersects(_ range: Range<UInt64>) -> Bool {
        guard !regions.isEmpty, !range.isEmpty else { return false }
        var vpn = range.lowerBound
        while vpn < range.upperBound {
            let region = vpn >> 9
            let regionEnd = min(range.upperBound, (region + 1) << 9)
            if let r = regions[region] {
                var v = vpn
                while v < regionEnd {
                    let i = Int(v & 511)
                    if i & 63 == 0 && regionEnd - v >= 64 {
                        if r[i >> 6] != 0 { return true }
                        v += 64
                    } else {
                        if r[i >> 6] & (1 << UInt64(i & 63)) != 0 { return true }
                        v += 1
                    }
                }
            }
            vpn = regionEnd
        }
        return false
    }

    public var isEmpty: Bool { regions.isEmpty }

    /// The lowest page in the set.
    public var first: UInt64? {
        guard let region = regions.keys.min(), let r = regions[region], let w = r.firstIndex(where: { $0 != 0 }) else { return nil }
        return region << 9 + UInt64(w * 64 + r[w].trailingZeroBitCount)
    }
}
