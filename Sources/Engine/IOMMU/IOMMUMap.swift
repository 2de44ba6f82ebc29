// The IOMMU's page table: iommu_pgsize splits a range into the largest IOPTEs that fit
// (reference §4.1), iommu_map / iommu_unmap install and remove them, an IOVA allocator places
// mappings, and table pages are frames.

/// One map_pages call: `count` IOPTEs of `pgsize` bytes.
public struct PgsizeRun: Equatable, Sendable {
    public var pgsize: UInt64
    public var count: UInt64
}

@inline(__always) func fls64(_ x: UInt64) -> Int { 63 - x.leadingZeroBitCount }
@inline(__always) func ffs64(_ x: UInt64) -> Int { x.trailingZeroBitCount }
/// The smallest power of two ≥ x (1 for 0 and 1).
@inline(__always) func roundUpPow2(_ x: UInt64) -> UInt64 { x <= 1 ? 1 : UInt64(1) << UInt64(fls64(x - 1) + 1) }
/// GENMASK(h, 0)
@inline(__always) func genmask(_ h: Int) -> UInt64 { h >= 63 ? UInt64.max : (UInt64(1) << (h + 1)) - 1 }

/// drivers/iommu/iommu.c: iommu_pgsize, line for line. Returns the page size and how many of them.
public func iommuPgsize(bitmap: UInt64, iova: UInt64, paddr: UInt64, size: UInt64) -> PgsizeRun {
    let addrMerge = iova | paddr
    var pgsizes = bitmap & genmask(fls64(size))
    if addrMerge != 0 { pgsizes &= genmask(ffs64(addrMerge)) }
    // No page size fits: the kernel's callers check min alignment first (as the Engine's do), so
    // this is their bug. A zero run says so; the loops below stop on it rather than spin.
    if pgsizes == 0 { return PgsizeRun(pgsize: 0, count: 0) }
    let pgsizeIdx = fls64(pgsizes)
    let pgsize = UInt64(1) << pgsizeIdx
    var size = size
    let bigger = bitmap & ~genmask(pgsizeIdx)
    if bigger != 0 {
        let pgsizeNext = UInt64(1) << ffs64(bigger)
        if (iova ^ paddr) & (pgsizeNext - 1) == 0 {
            let offset = pgsizeNext - (addrMerge & (pgsizeNext - 1))
            let (sum, overflow) = offset.addingReportingOverflow(pgsizeNext)
            if !overflow && sum <= size { size = offset }
        }
    }
    return PgsizeRun(pgsize: pgsize, count: size >> UInt64(pgsizeIdx))
}

/// __iommu_map's loop: the sequence of map_pages calls for one physically contiguous range.
public func iommuMapRuns(bitmap: UInt64, iova: UInt64, paddr: UInt64, size: UInt64) -> [PgsizeRun] {
    var runs: [PgsizeRun] = []
    var iova = iova, paddr = paddr, size = size
    while size > 0 {
        let run = iommuPgsize(bitmap: bitmap, iova: iova, paddr: paddr, size: size)
        if run.count == 0 { break }
        runs.append(run)
        let mapped = run.pgsize * run.count
        iova += mapped
        paddr += mapped
        size -= mapped
    }
    return runs
}

extension Engine {
    /// Table-page key for the table at `level` (1 = leaf tables) that covers iova.
    static func ioTableKey(level: Int, iova: UInt64, format: IOMMUFormat) -> UInt64 {
        let shift: UInt64 = format == .armV7s ? (level == 1 ? 20 : 32) : UInt64(12 + 9 * level)
        return (UInt64(level) << 56) | (iova >> shift)
    }

    /// The level whose entries hold a leaf of this size: 1 for 4 KiB-class pages.
    static func leafLevel(size: UInt64, format: IOMMUFormat) -> Int {
        if format == .armV7s { return size >= 1 << 20 ? 2 : 1 }
        var level = 1
        var s = size >> 12
        while s >= 512 { s >>= 9; level += 1 }
        return level
    }

    /// Allocates the I/O page-table pages a leaf at `iova` needs (root excluded: it exists from the start).
    mutating func ensureIOTables(_ d: Int, iova: UInt64, size: UInt64, _ j: inout StepJournal) -> Bool {
        let info = state.devices[d].info   // not the whole device: it would be copied by the first write below
        let top = info.format == .armV7s ? 2 : info.levels
        let leaf = Engine.leafLevel(size: size, format: info.format)
        // Tables below the root down to the one holding the leaf: levels top-1 ... leaf.
        var level = top - 1
        while level >= leaf {
            let key = Engine.ioTableKey(level: level, iova: iova, format: info.format)
            if state.devices[d].tablePages[key] == nil {
                guard let pfn = allocPageOrReclaim(use: .iopagetable, owner: 0, exclusive: false, &j) else { return false }
                setIOTablePage(d, key: key, Int32(pfn), &j)
                j.events.add(.iommuPgtableAlloc)
            }
            level -= 1
        }
        return true
    }

    /// iommu_map of one physically contiguous range: IOPTEs by iommu_pgsize. False on OOM, after
    /// unmapping what it mapped of the range (__iommu_map's "unroll mapping in case something went wrong").
    mutating func iommuMap(_ d: Int, iova start: UInt64, paddr: UInt64, size: UInt64, writable: Bool, _ j: inout StepJournal) -> Bool {
        touchDevice(d, &j)
        var iova = start, paddr = paddr, size = size
        while size > 0 {
            let run = iommuPgsize(bitmap: state.devices[d].pgsizeBitmap, iova: iova, paddr: paddr, size: size)
            if run.count == 0 {
                j.bug("iommu_pgsize: no page size of \(formatPageSizes(state.devices[d].pgsizeBitmap)) fits \(hex(iova)) → \(hex(paddr)), \(formatSize(size)) (the caller should have checked alignment)")
                iommuUnmap(d, iova: start, size: iova - start, &j)
                return false
            }
            for _ in 0..<run.count {
                guard ensureIOTables(d, iova: iova, size: run.pgsize, &j) else {
                    iommuUnmap(d, iova: start, size: iova - start, &j)
                    return false
                }
                setIOPTE(d, iova: iova, IOPTE(iova: iova, pa: paddr, size: run.pgsize, writable: writable), &j)
                j.events.add(.ioptesSet(size: run.pgsize))
                iova += run.pgsize
                paddr += run.pgsize
                size -= run.pgsize
            }
        }
        return true
    }

    /// The IOPTE that translates iova, if any.
    func iopte(_ d: Int, covering iova: UInt64) -> IOPTE? {
        let dev = state.devices[d]
        var bits = dev.pgsizeBitmap
        while bits != 0 {
            let s = UInt64(1) << ffs64(bits)
            bits &= bits - 1
            if let e = dev.ioptes[iova & ~(s - 1)], e.size == s { return e }
        }
        return nil
    }

    /// iommu_unmap of [iova, iova+size): every IOPTE that starts inside goes whole (an unmap that
    /// cuts a large IOPTE removes all of it, the modern contract). Returns the bytes removed.
    @discardableResult
    mutating func iommuUnmap(_ d: Int, iova: UInt64, size: UInt64, _ j: inout StepJournal) -> UInt64 {
        touchDevice(d, &j)
        var removed: UInt64 = 0
        var a = iova
        let end = iova + size
        while a < end {
            if let e = iopte(d, covering: a) {
                setIOPTE(d, iova: e.iova, nil, &j)
                removed += e.size
                a = e.iova + e.size
            } else {
                a += pageSize
            }
        }
        return removed
    }

    /// alloc_iova(size_aligned): the highest free range below the 32-bit limit (then the 48-bit one),
    /// aligned to the size rounded up to a power of two (sizes under 32 pages are rounded up too).
    func iovaReservation(_ size: UInt64) -> UInt64 {
        let pages = size >> pageShift
        return (pages < 32 ? roundUpPow2(pages) : pages) << pageShift
    }

    func allocIOVA(_ d: Int, size: UInt64) -> UInt64? {
        let pages = size >> pageShift
        let len = iovaReservation(size)
        let align = roundUpPow2(pages) << pageShift
        var busy = state.devices[d].mappings.map { ($0.iova, $0.iova + max($0.size, $0.iovaLength)) }
        busy += state.devices[d].lazyUnmapped.map { ($0.iova, $0.iova + max($0.size, $0.iovaLength)) }
        for limit in [UInt64(1) << 32, UInt64(1) << 48] {
            var top = limit
            while top >= len {
                let cand = alignDown(top - len, align)
                if cand < pageSize { break }   // IOVA 0 is never handed out
                if let clash = busy.filter({ $0.0 < cand + len && $0.1 > cand }).min(by: { $0.0 < $1.0 }) {
                    top = clash.0
                } else {
                    return cand
                }
            }
        }
        return nil
    }
}
