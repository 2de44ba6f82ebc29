// What a physical frame is and who uses it: struct page's counts and flags, its owner, and every
// mapper: the PTEs of processes, the IOPTEs of devices, the kernel's own users (UMP, dma-buf, shmem,
// the swap cache). Linux finds PTE mappers through anon_vma; the model scans the page tables, once
// per question, and keeps no reverse map beside its state.

/// A PTE (or a page under a huge PMD) that maps a frame.
public struct PageMapper: Equatable, Sendable {
    public var process: Int
    public var vpn: UInt64
    /// Through a huge PMD.
    public var huge: Bool
}

/// An IOPTE over a frame, and the IOVA at which the device sees that frame.
public struct IOMapper: Equatable, Sendable {
    public var device: Int
    public var iova: UInt64
    public var iopte: IOPTE
}

/// Who a frame was allocated for.
public enum FrameOwner: Equatable, Sendable {
    case none
    case kernel
    case process(pid: Int32, name: String?)
}

/// The kernel's own references to a frame.
public enum KernelUser: Equatable, Sendable {
    /// A UMP buffer or dma-buf (index in `kernelBuffers`).
    case kernelBuffer(Int)
    /// A page of a shmem object (the page cache).
    case shmem(object: Int32, index: UInt64)
    /// The swap cache keeps it for a slot still named by other PTEs.
    case swapCache(slot: Int32)
}

public struct FrameInfo: Equatable, Sendable {
    public var pfn: Int
    public var use: FrameUse
    public var refcount: Int32
    public var mapcount: Int32
    public var pincount: Int32
    public var anonExclusive: Bool
    /// The head of the THP folio this frame is a tail of.
    public var thpTailOf: Int?
    public var thpHead: Bool
    public var owner: FrameOwner
    public var isZeroPage: Bool
    public var mappers: [PageMapper]
    public var ioMappers: [IOMapper]
    public var kernelUsers: [KernelUser]
    /// What it holds: who wrote it last, at which step.
    public var data: DataTag = .zero
    /// References GUP took and someone still holds: "pipe p of child", "pin of app.buf".
    public var gupHolders: [String] = []

    /// The flags in words: PageAnonExclusive, THP head, THP tail of N.
    public var flagNames: [String] {
        var out: [String] = []
        if anonExclusive { out.append("PageAnonExclusive") }
        if thpHead { out.append("THP head") }
        if let head = thpTailOf { out.append("THP tail of \(head)") }
        return out
    }
}

/// Everything that maps a set of frames: pages per process, IOPTEs (by IOVA) per device.
public struct FrameSetMappers: Sendable {
    public var pages: [Int: PageSet] = [:]
    public var ioptes: [Int: Set<UInt64>] = [:]
}

extension EngineState {
    /// Frame `pfn`, with every mapper.
    public func frame(_ pfn: Int) -> FrameInfo {
        let flags = phys.flags[pfn]
        let ownerPid = phys.owner[pfn]
        let owner: FrameOwner = ownerPid == 0 ? .kernel : ownerPid < 0 ? .none
            : .process(pid: ownerPid, name: processes.first { $0.meta.pid == ownerPid }?.meta.name)
        var users: [KernelUser] = []
        for (k, kb) in kernelBuffers.enumerated() where !kb.freed && kb.pfns.contains(Int32(pfn)) { users.append(.kernelBuffer(k)) }
        for (object, pages) in shmem.sorted(by: { $0.key < $1.key }) {
            for (index, f) in pages.sorted(by: { $0.key < $1.key }) where Int(f) == pfn { users.append(.shmem(object: object, index: index)) }
        }
        for (slot, f) in swapCache.sorted(by: { $0.key < $1.key }) where Int(f) == pfn { users.append(.swapCache(slot: slot)) }
        var holders: [String] = []
        for proc in processes where proc.meta.alive {
            for r in proc.meta.pins where r.pfns.contains(Int32(pfn)) {
                let what = r.pipe.map { "pipe \($0)" } ?? (r.uring ? "io_uring registration" : r.get ? "get_user_pages reference" : "pin")
                holders.append("\(what) of \(proc.meta.name).\(r.buffer)")
            }
        }
        return FrameInfo(pfn: pfn, use: phys.frameUse(pfn), refcount: phys.refcount[pfn], mapcount: phys.mapcount[pfn],
                         pincount: phys.pincount[pfn], anonExclusive: flags & FrameFlag.anonExclusive != 0,
                         thpTailOf: flags & FrameFlag.tail != 0 ? phys.folioHead(pfn) : nil, thpHead: flags & FrameFlag.head != 0,
                         owner: owner, isZeroPage: Int32(pfn) == meta.zeroPfn, mappers: mappers(of: pfn),
                         ioMappers: ioMappers(of: pfn), kernelUsers: users, data: phys.dataTag(pfn), gupHolders: holders)
    }

    /// Every page of a live process that maps `pfn`, by process, then address.
    public func mappers(of pfn: Int) -> [PageMapper] {
        let found = pageMappers(OneFrame(pfn: pfn))
        var out: [PageMapper] = []
        for (p, pages) in found.sorted(by: { $0.key < $1.key }) {
            let pt = processes[p].pt
            for (region, bits) in pages.regions.sorted(by: { $0.key < $1.key }) {
                for w in 0..<8 where bits[w] != 0 {
                    for b in 0..<64 where bits[w] & (1 << UInt64(b)) != 0 {
                        out.append(PageMapper(process: p, vpn: region << 9 | UInt64(w * 64 + b), huge: pt.hugePMDs[region] != nil))
                    }
                }
            }
        }
        return out
    }

    /// Every IOPTE over `pfn`, by device, then IOVA.
    public func ioMappers(of pfn: Int) -> [IOMapper] {
        var out: [IOMapper] = []
        for (d, dev) in devices.enumerated() {
            for e in dev.sortedIOPTEs {
                let first = Int(e.pa >> pageShift)
                if pfn >= first && pfn < first + Int(max(1, e.size >> pageShift)) {
                    out.append(IOMapper(device: d, iova: e.iova + UInt64(pfn - first) << pageShift, iopte: e))
                }
            }
        }
        return out
    }

    /// Everything that maps any of `frames`: a linear scan of the page tables and the IOPTEs.
    public func mappers(of frames: FrameSet) -> FrameSetMappers {
        var out = FrameSetMappers()
        guard !frames.isEmpty else { return out }
        out.pages = pageMappers(frames)
        for (d, dev) in devices.enumerated() {
            var hits = Set<UInt64>()
            for (iova, e) in dev.ioptes {
                let first = Int(e.pa >> pageShift)
                if frames.intersects(first..<first + Int(max(1, e.size >> pageShift))) { hits.insert(iova) }
            }
            if !hits.isEmpty { out.ioptes[d] = hits }
        }
        return out
    }

    /// The pages of live processes whose PTE (or huge PMD) maps one of `frames` (generic, so the
    /// scan of every PTE is specialised for one frame and for a set).
    private func pageMappers<F: FrameMatch>(_ frames: F) -> [Int: PageSet] {
        var out: [Int: PageSet] = [:]
        for (p, proc) in processes.enumerated() where proc.meta.alive {
            var set = PageSet()
            for (region, table) in proc.pt.tables where table.used > 0 {
                for (i, e) in table.entries.enumerated() where e.present && frames.contains(e.number) {
                    set.insert(region << 9 | UInt64(i))
                }
            }
            for (region, pmd) in proc.pt.hugePMDs where pmd.present {
                let base = pmd.number
                guard frames.intersects(base..<base + pagesPerPMD) else { continue }
                for i in 0..<pagesPerPMD where frames.contains(base + i) { set.insert(region << 9 | UInt64(i)) }
            }
            if !set.isEmpty { out[p] = set }
        }
        return out
    }

    /// Frames of each use over the whole machine (the block summaries, summed).
    public func frameTotals() -> [FrameUse: Int] {
        var totals = [Int](repeating: 0, count: PhysicalMemory.useCount)
        let n = PhysicalMemory.useCount
        phys.blockUseCounts.withUnsafeBufferPointer { b in
            for i in 0..<b.count { totals[i % n] += Int(b[i]) }
        }
        var out: [FrameUse: Int] = [:]
        for u in FrameUse.allCases { out[u] = totals[Int(u.rawValue)] }
        return out
    }
}

/// Which frames a reverse-map scan looks for.
protocol FrameMatch {
    func contains(_ pfn: Int) -> Bool
    func intersects(_ range: Range<Int>) -> Bool
}

extension FrameSet: FrameMatch {}

private struct OneFrame: FrameMatch {
    var pfn: Int
    func contains(_ p: Int) -> Bool { p == pfn }
    func intersects(_ range: Range<Int>) -> Bool { range.contains(pfn) }
}
