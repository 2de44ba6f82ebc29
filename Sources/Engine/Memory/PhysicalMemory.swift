// Physical memory as Linux's mem_map sees it, held as flat arrays (one entry per 4 KiB frame),
// never as an object per frame: a 16 GiB machine is 4M frames.

public enum FrameUse: UInt8, Sendable, CaseIterable {
    case free = 0, anon, zero, kernel, pagetable, ump, dmabuf, shmem, iopagetable

    /// The name used in JSON and on screen.
    public var name: String {
        switch self {
        case .free: "free"
        case .anon: "anon"
        case .zero: "zero"
        case .kernel: "kernel"
        case .pagetable: "pagetable"
        case .ump: "ump"
        case .dmabuf: "dmabuf"
        case .shmem: "shmem"
        case .iopagetable: "iopagetable"
        }
    }
}

/// Per-frame flag bits (a small subset of struct page's flags).
public enum FrameFlag {
    /// PageAnonExclusive: this anonymous page is mapped by exactly one process and may be reused on write.
    public static let anonExclusive: UInt8 = 1 << 0
    /// First page of an order-9 THP folio.
    public static let head: UInt8 = 1 << 1
    /// Any other page of an order-9 THP folio; its head is pfn & ~511.
    public static let tail: UInt8 = 1 << 2
}

public let pageSize: UInt64 = 4096
public let pageShift: UInt64 = 12
/// Buddy orders 0...10: the largest block is 4 MiB (MAX_PAGE_ORDER = 10, inclusive, as in 6.12).
public let maxPageOrder = 10
/// A PMD maps 2 MiB: order 9.
public let pmdOrder = 9
public let pagesPerPMD = 512

public struct PhysicalMemory: Equatable, Sendable {
    public internal(set) var frameCount: Int
    // struct page, split by field.
    public internal(set) var use: [UInt8]
    public internal(set) var flags: [UInt8]
    public internal(set) var refcount: [Int32]
    public internal(set) var mapcount: [Int32]
    /// Logical FOLL_PIN pins (Linux folds them into refcount with a bias of 1024 for small folios).
    public internal(set) var pincount: [Int32]
    /// pid of the process the frame was allocated for; 0 for the kernel; -1 when free.
    public internal(set) var owner: [Int32]
    /// LRU age: the allocation clock when the frame was last allocated; reclaim takes the oldest first.
    public internal(set) var stamp: [UInt32]

    // The buddy allocator's free lists (zone->free_area[order]), threaded through the frames
    // as Linux threads them through struct page's lru field.
    /// order of the free block this frame heads, or -1.
    public internal(set) var freeOrder: [Int8]
    var next: [Int32]
    var prev: [Int32]
    /// Free lists per migratetype and order: index `order` for ordinary memory, `cmaList + order` for CMA.
    var freeHead: [Int32]
    var freeTail: [Int32]
    public internal(set) var freeBlocks: [Int]
    public internal(set) var freeFrames: Int
    /// Free frames inside the CMA region (NR_FREE_CMA_PAGES).
    public internal(set) var freeCMAFrames: Int = 0
    /// The CMA region [cmaStart, cmaEnd): MIGRATE_CMA pageblocks, movable allocations only.
    public internal(set) var cmaStart: Int
    public internal(set) var cmaEnd: Int
    static let cmaList = maxPageOrder + 1

    /// Frames per use in each block of `summaryBlockFrames` frames, kept up to date on every change
    /// of a frame's use, so a view can draw a 4M-frame machine in time proportional to its cells.
    /// Index: block * FrameUse.allCases.count + use.
    public internal(set) var blockUseCounts: [UInt16]
    /// Frames with a non-zero pin count, per block.
    public internal(set) var blockPinned: [UInt16]
    public static let summaryBlockFrames = 512
    public static let useCount = FrameUse.allCases.count

    init(frames: Int) {
        frameCount = frames
        use = Array(repeating: FrameUse.kernel.rawValue, count: frames)
        flags = Array(repeating: 0, count: frames)
        refcount = Array(repeating: 0, count: frames)
        mapcount = Array(repeating: 0, count: frames)
        pincount = Array(repeating: 0, count: frames)
        owner = Array(repeating: 0, count: frames)
        stamp = Array(repeating: 0, count: frames)
        freeOrder = Array(repeating: -1, count: frames)
        next = Array(repeating: -1, count: frames)
        prev = Array(repeating: -1, count: frames)
        freeHead = Array(repeating: -1, count: 2 * (maxPageOrder + 1))
        freeTail = Array(repeating: -1, count: 2 * (maxPageOrder + 1))
        cmaStart = frames
        cmaEnd = frames
        freeBlocks = Array(repeating: 0, count: maxPageOrder + 1)
        freeFrames = 0
        let blocks = (frames + PhysicalMemory.summaryBlockFrames - 1) / PhysicalMemory.summaryBlockFrames
        blockUseCounts = Array(repeating: 0, count: blocks * PhysicalMemory.useCount)
        blockPinned = Array(repeating: 0, count: blocks)
        for pfn in 0..<frames {
            blockUseCounts[(pfn / PhysicalMemory.summaryBlockFrames) * PhysicalMemory.useCount + Int(FrameUse.kernel.rawValue)] += 1
        }
    }

    /// Frames of `use` in summary block `block`.
    public func blockCount(_ block: Int, _ use: FrameUse) -> Int {
        Int(blockUseCounts[block * PhysicalMemory.useCount + Int(use.rawValue)])
    }

    public var summaryBlocks: Int { blockPinned.count }

    public func frameUse(_ pfn: Int) -> FrameUse { FrameUse(rawValue: use[pfn]) ?? .kernel }

    /// The THP head of a frame, or the frame itself when it is a small page.
    @inline(__always) public func folioHead(_ pfn: Int) -> Int {
        flags[pfn] & FrameFlag.tail != 0 ? pfn & ~(pagesPerPMD - 1) : pfn
    }

    @inline(__always) public func isLarge(_ pfn: Int) -> Bool {
        flags[pfn] & (FrameFlag.head | FrameFlag.tail) != 0
    }

    /// Everything one frame holds, for the change log and the inspector.
    public struct Frame: Equatable, Sendable {
        public var use: UInt8
        public var flags: UInt8
        public var refcount: Int32
        public var mapcount: Int32
        public var pincount: Int32
        public var owner: Int32
        public var stamp: UInt32
    }

    @inline(__always) func frame(_ pfn: Int) -> Frame {
        Frame(use: use[pfn], flags: flags[pfn], refcount: refcount[pfn], mapcount: mapcount[pfn],
              pincount: pincount[pfn], owner: owner[pfn], stamp: stamp[pfn])
    }

    @inline(__always) mutating func setFrame(_ pfn: Int, _ f: Frame) {
        if use[pfn] != f.use {
            let base = (pfn / PhysicalMemory.summaryBlockFrames) * PhysicalMemory.useCount
            blockUseCounts[base + Int(use[pfn])] -= 1
            blockUseCounts[base + Int(f.use)] += 1
        }
        if (pincount[pfn] > 0) != (f.pincount > 0) {
            blockPinned[pfn / PhysicalMemory.summaryBlockFrames] &+= f.pincount > 0 ? 1 : UInt16.max
        }
        use[pfn] = f.use
        flags[pfn] = f.flags
        refcount[pfn] = f.refcount
        mapcount[pfn] = f.mapcount
        pincount[pfn] = f.pincount
        owner[pfn] = f.owner
        stamp[pfn] = f.stamp
    }

    /// Bytes the arrays above hold per frame (the bench's "Engine bytes per frame" starts here).
    public static let bytesPerFrame = 1 + 1 + 4 + 4 + 4 + 4 + 4 + 1 + 4 + 4 + 1
}

// MARK: - Free lists (raw, unlogged; the Engine logs around them)

extension PhysicalMemory {
    @inline(__always) public func isCMA(_ pfn: Int) -> Bool { pfn >= cmaStart && pfn < cmaEnd }

    /// Movable allocations (anonymous and shmem pages) may live in CMA and be migrated.
    @inline(__always) static func isMovable(_ use: FrameUse) -> Bool { use == .anon || use == .shmem }

    mutating func listInsert(order o: Int, pfn: Int, afterPrev prevPfn: Int32) {
        let cma = isCMA(pfn)
        let order = cma ? PhysicalMemory.cmaList + o : o
        if cma { freeCMAFrames += 1 << o }
        let p = Int32(pfn)
        if prevPfn < 0 {
            next[pfn] = freeHead[order]
            prev[pfn] = -1
            if freeHead[order] >= 0 { prev[Int(freeHead[order])] = p } else { freeTail[order] = p }
            freeHead[order] = p
        } else {
            let n = next[Int(prevPfn)]
            next[pfn] = n
            prev[pfn] = prevPfn
            next[Int(prevPfn)] = p
            if n >= 0 { prev[Int(n)] = p } else { freeTail[order] = p }
        }
        freeOrder[pfn] = Int8(o)
        freeBlocks[o] += 1
        freeFrames += 1 << o
    }

    mutating func listInsertTail(order: Int, pfn: Int) {
        listInsert(order: order, pfn: pfn, afterPrev: freeTail[isCMA(pfn) ? PhysicalMemory.cmaList + order : order])
    }

    /// Removes a free block; returns the block before it so the removal can be undone in place.
    @discardableResult
    mutating func listRemove(order o: Int, pfn: Int) -> Int32 {
        let cma = isCMA(pfn)
        let order = cma ? PhysicalMemory.cmaList + o : o
        if cma { freeCMAFrames -= 1 << o }
        let p = prev[pfn], n = next[pfn]
        if p >= 0 { next[Int(p)] = n } else { freeHead[order] = n }
        if n >= 0 { prev[Int(n)] = p } else { freeTail[order] = p }
        next[pfn] = -1
        prev[pfn] = -1
        freeOrder[pfn] = -1
        freeBlocks[o] -= 1
        freeFrames -= 1 << o
        return p
    }

    /// The free block that contains pfn: (head, order), or nil when pfn is allocated.
    func freeBlock(containing pfn: Int) -> (Int, Int)? {
        for order in 0...maxPageOrder {
            let head = pfn & ~((1 << order) - 1)
            if head + (1 << order) > frameCount { break }
            if Int(freeOrder[head]) == order { return (head, order) }
        }
        return nil
    }

    /// Free blocks of one order, head to tail: what /proc/buddyinfo counts (ordinary memory, or CMA).
    public func freeList(order: Int, cma: Bool = false) -> [Int] {
        var out: [Int] = []
        var p = freeHead[cma ? PhysicalMemory.cmaList + order : order]
        while p >= 0 { out.append(Int(p)); p = next[Int(p)] }
        return out
    }
}
