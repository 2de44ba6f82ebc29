// Physical memory as Linux's mem_map sees it, held as flat arrays (one entry per 4 KiB frame),
// never as an object per frame: a 16 GiB machine is 4M frames.

public enum FrameUse: UInt8, Sendable, CaseIterable {
    case free = 0, anon, zero, kernel, pagetable, ump, dmabuf, shmem, iopagetable, file

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
        case .file: "file"
        }
    }
}

/// Per-frame flag bits (a small subset of struct page's flags).
public enum FrameFlag {
    /// PageAnonExclusive: this anonymous page is mapped by exactly one process and may be reused on write.
    public static let anonExclusive: UInt8 = 1 << 0
    /// First page of an order-9 THP folio.
    public static let head: UInt8 = 1 << 1
    /// Any other page of a large folio; its head is pfn rounded down to the folio's size.
    public static let tail: UInt8 = 1 << 2
    /// Bits 3-6 of a multi-size THP's pages: its order (2...8). A THP's (order 9) are 0, so its
    /// flags read as they always have.
    public static let orderShift: UInt8 = 3
    public static let orderMask: UInt8 = 0xf << 3
    /// The flags of a page of a large folio of `order`.
    public static func folio(order: Int, head: Bool) -> UInt8 {
        (head ? FrameFlag.head : FrameFlag.tail) | (order == pmdOrder ? 0 : UInt8(order) << orderShift)
    }
}

public let pageSize: UInt64 = 4096
public let pageShift: UInt64 = 12
/// Buddy orders 0...10: the largest block is 4 MiB (MAX_PAGE_ORDER = 10, inclusive, as in 6.12).
public let maxPageOrder = 10
/// A PMD maps 2 MiB: order 9.
public let pmdOrder = 9
public let pagesPerPMD = 512

public struct PhysicalMemory: Equatable, Sendable {
    public fileprivate(set) var frameCount: Int
    // struct page, split by field.
    public fileprivate(set) var use: [UInt8]
    public fileprivate(set) var flags: [UInt8]
    public fileprivate(set) var refcount: [Int32]
    public fileprivate(set) var mapcount: [Int32]
    /// Logical FOLL_PIN pins (Linux folds them into refcount with a bias of 1024 for small folios).
    public fileprivate(set) var pincount: [Int32]
    /// pid of the process the frame was allocated for; 0 for the kernel; -1 when free.
    public fileprivate(set) var owner: [Int32]
    /// LRU age: the allocation clock when the frame was last allocated; reclaim takes the oldest first.
    public fileprivate(set) var stamp: [UInt32]
    /// What the frame holds: who wrote it last and at which step (a DataTag's raw value); 0 for a
    /// zero-filled frame. Free frames hold 0, so an allocation starts zero-filled without a write.
    public fileprivate(set) var data: [UInt64]

    // The buddy allocator's free lists (zone->free_area[order]), threaded through the frames
    // as Linux threads them through struct page's lru field.
    /// order of the free block this frame heads, or -1.
    public fileprivate(set) var freeOrder: [Int8]
    fileprivate var next: [Int32]
    fileprivate var prev: [Int32]
    /// Free lists per migratetype and order: index `order` for ordinary memory, `cmaList + order` for CMA.
    fileprivate(set) var freeHead: [Int32]
    fileprivate var freeTail: [Int32]
    public fileprivate(set) var freeBlocks: [Int]
    public fileprivate(set) var freeFrames: Int
    /// Free frames inside the CMA region (NR_FREE_CMA_PAGES).
    public fileprivate(set) var freeCMAFrames: Int = 0
    /// The CMA region [cmaStart, cmaEnd): MIGRATE_CMA pageblocks, movable allocations only.
    public fileprivate(set) var cmaStart: Int
    public fileprivate(set) var cmaEnd: Int
    static let cmaList = maxPageOrder + 1

    /// Frames per use in each block of `summaryBlockFrames` frames, kept up to date on every change
    /// of a frame's use, so a view can draw a 4M-frame machine in time proportional to its cells.
    /// Index: block * FrameUse.allCases.count + use.
    public fileprivate(set) var blockUseCounts: [UInt16]
    /// Frames with a non-zero pin count, per block.
    public fileprivate(set) var blockPinned: [UInt16]
    public static let summaryBlockFrames = 512
    public static let useCount = FrameUse.allCases.count

    /// Which chunks of the per-frame arrays changed since the last snapshot (Snapshot.swift).
    fileprivate var chunks: ChunkTracker<FrameChunk>

    /// Every frame a kernel frame with no references (what booted() starts from, frame by frame).
    init(frames: Int) { self.init(frames: frames, kernelFrames: frames) }

    /// Frames [0, kernelFrames) kernel memory (refcount 1, owner 0), the rest free (owner -1), in
    /// whole-array fills: what setting each frame one by one gives, without a write per frame.
    /// Nothing is on a free list yet.
    init(frames: Int, kernelFrames k: Int, kernelRefcount: Int32 = 0) {
        let k = min(max(0, k), frames)
        frameCount = frames
        use = Array(repeating: FrameUse.kernel.rawValue, count: k) + Array(repeating: FrameUse.free.rawValue, count: frames - k)
        flags = Array(repeating: 0, count: frames)
        refcount = Array(repeating: kernelRefcount, count: k) + Array(repeating: 0, count: frames - k)
        mapcount = Array(repeating: 0, count: frames)
        pincount = Array(repeating: 0, count: frames)
        owner = Array(repeating: 0, count: k) + Array(repeating: -1, count: frames - k)
        stamp = Array(repeating: 0, count: frames)
        data = Array(repeating: 0, count: frames)
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
        chunks = ChunkTracker(elements: frames)
        for block in 0..<blocks {
            let lo = block * PhysicalMemory.summaryBlockFrames, hi = min(frames, lo + PhysicalMemory.summaryBlockFrames)
            let kernel = max(0, min(hi, k) - lo)
            blockUseCounts[block * PhysicalMemory.useCount + Int(FrameUse.kernel.rawValue)] = UInt16(kernel)
            blockUseCounts[block * PhysicalMemory.useCount + Int(FrameUse.free.rawValue)] = UInt16(hi - lo - kernel)
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
        flags[pfn] & FrameFlag.tail != 0 ? pfn & ~((1 << folioOrder(pfn)) - 1) : pfn
    }

    /// The order of the folio the frame belongs to (0 for a small page).
    @inline(__always) public func folioOrder(_ pfn: Int) -> Int {
        guard isLarge(pfn) else { return 0 }
        let bits = Int((flags[pfn] & FrameFlag.orderMask) >> FrameFlag.orderShift)
        return bits == 0 ? pmdOrder : bits
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

        public init(use: FrameUse, flags: UInt8 = 0, refcount: Int32, mapcount: Int32 = 0, pincount: Int32 = 0,
                    owner: Int32, stamp: UInt32 = 0) {
            self.init(raw: use.rawValue, flags: flags, refcount: refcount, mapcount: mapcount, pincount: pincount, owner: owner, stamp: stamp)
        }

        fileprivate init(raw use: UInt8, flags: UInt8, refcount: Int32, mapcount: Int32, pincount: Int32, owner: Int32, stamp: UInt32) {
            self.use = use
            self.flags = flags
            self.refcount = refcount
            self.mapcount = mapcount
            self.pincount = pincount
            self.owner = owner
            self.stamp = stamp
        }

        /// A frame in the buddy allocator.
        public static let free = Frame(use: .free, refcount: 0, owner: -1)
    }

    @inline(__always) public func frame(_ pfn: Int) -> Frame {
        Frame(raw: use[pfn], flags: flags[pfn], refcount: refcount[pfn], mapcount: mapcount[pfn],
              pincount: pincount[pfn], owner: owner[pfn], stamp: stamp[pfn])
    }

    @inline(__always) fileprivate mutating func setFrame(_ pfn: Int, _ f: Frame) {
        if use[pfn] != f.use {
            let base = (pfn / PhysicalMemory.summaryBlockFrames) * PhysicalMemory.useCount
            blockUseCounts[base + Int(use[pfn])] -= 1
            blockUseCounts[base + Int(f.use)] += 1
        }
        if (pincount[pfn] > 0) != (f.pincount > 0) {
            blockPinned[pfn / PhysicalMemory.summaryBlockFrames] &+= f.pincount > 0 ? 1 : UInt16.max
        }
        chunks.touch(pfn)
        use[pfn] = f.use
        flags[pfn] = f.flags
        refcount[pfn] = f.refcount
        mapcount[pfn] = f.mapcount
        pincount[pfn] = f.pincount
        owner[pfn] = f.owner
        stamp[pfn] = f.stamp
    }

    /// Bytes the arrays above hold per frame (the bench's "Engine bytes per frame" starts here).
    public static let bytesPerFrame = 1 + 1 + 4 + 4 + 4 + 4 + 4 + 8 + 1 + 4 + 4 + 1
}

// MARK: - Free lists (raw; the logged versions below are the only callers outside undo and boot)

extension PhysicalMemory {
    @inline(__always) public func isCMA(_ pfn: Int) -> Bool { pfn >= cmaStart && pfn < cmaEnd }

    /// Movable allocations (anonymous and shmem pages) may live in CMA and be migrated.
    @inline(__always) static func isMovable(_ use: FrameUse) -> Bool { use == .anon || use == .shmem }

    fileprivate mutating func listInsert(order o: Int, pfn: Int, afterPrev prevPfn: Int32) {
        let cma = isCMA(pfn)
        let order = cma ? PhysicalMemory.cmaList + o : o
        if cma { freeCMAFrames += 1 << o }
        let p = Int32(pfn)
        chunks.touch(pfn)
        if prevPfn < 0 {
            next[pfn] = freeHead[order]
            prev[pfn] = -1
            if freeHead[order] >= 0 { prev[Int(freeHead[order])] = p; chunks.touch(Int(freeHead[order])) } else { freeTail[order] = p }
            freeHead[order] = p
        } else {
            let n = next[Int(prevPfn)]
            next[pfn] = n
            prev[pfn] = prevPfn
            next[Int(prevPfn)] = p
            chunks.touch(Int(prevPfn))
            if n >= 0 { prev[Int(n)] = p; chunks.touch(Int(n)) } else { freeTail[order] = p }
        }
        freeOrder[pfn] = Int8(o)
        freeBlocks[o] += 1
        freeFrames += 1 << o
    }

    fileprivate mutating func listInsertTail(order: Int, pfn: Int) {
        listInsert(order: order, pfn: pfn, afterPrev: freeTail[isCMA(pfn) ? PhysicalMemory.cmaList + order : order])
    }

    /// Removes a free block; returns the block before it so the removal can be undone in place.
    @discardableResult
    fileprivate mutating func listRemove(order o: Int, pfn: Int) -> Int32 {
        let cma = isCMA(pfn)
        let order = cma ? PhysicalMemory.cmaList + o : o
        if cma { freeCMAFrames -= 1 << o }
        let p = prev[pfn], n = next[pfn]
        chunks.touch(pfn)
        if p >= 0 { next[Int(p)] = n; chunks.touch(Int(p)) } else { freeHead[order] = n }
        if n >= 0 { prev[Int(n)] = p; chunks.touch(Int(n)) } else { freeTail[order] = p }
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

// MARK: - Logged writes: the only way to change a frame or a free list from outside this file

extension PhysicalMemory {
    /// Changes one frame's struct-page fields, logging the old record first.
    @inline(__always) mutating func update(_ pfn: Int, _ j: inout StepJournal, _ body: (inout Frame) -> Void) {
        var f = frame(pfn)
        j.log(.frame(pfn: Int32(pfn), old: f))
        body(&f)
        setFrame(pfn, f)
    }

    /// Replaces one frame's record, logging the old one.
    @inline(__always) mutating func set(_ pfn: Int, _ f: Frame, _ j: inout StepJournal) {
        j.log(.frame(pfn: Int32(pfn), old: frame(pfn)))
        setFrame(pfn, f)
    }

    /// Changes a run of frames, logged as one Change. `body` gets each pfn and its record.
    mutating func update(_ range: Range<Int>, _ j: inout StepJournal, _ body: (Int, inout Frame) -> Void) {
        guard range.count > 1 else {
            if let pfn = range.first { update(pfn, &j) { body(pfn, &$0) } }
            return
        }
        var old: [Frame] = []
        old.reserveCapacity(range.count)
        for pfn in range { old.append(frame(pfn)) }
        j.log(.frames(first: Int32(range.lowerBound), old: old))
        for (i, pfn) in range.enumerated() {
            var f = old[i]
            body(pfn, &f)
            setFrame(pfn, f)
        }
    }

    /// Puts a free block on free_area[order]: at the head, or at the tail.
    @inline(__always) mutating func pushFree(order: Int, pfn: Int, tail: Bool, _ j: inout StepJournal) {
        if tail { listInsertTail(order: order, pfn: pfn) } else { listInsert(order: order, pfn: pfn, afterPrev: -1) }
        j.log(.freeListInsert(order: Int8(order), pfn: Int32(pfn)))
    }

    /// Takes a free block off free_area[order].
    @inline(__always) mutating func removeFree(order: Int, pfn: Int, _ j: inout StepJournal) {
        let prev = listRemove(order: order, pfn: pfn)
        j.log(.freeListRemove(order: Int8(order), pfn: Int32(pfn), prev: prev))
    }

    /// Says what a frame now holds. Consecutive frames that held the same thing are logged as one run
    /// (StepJournal.logData), so a bulk write does not add a Change per page.
    @inline(__always) mutating func setData(_ pfn: Int, _ tag: DataTag, _ j: inout StepJournal) {
        let old = data[pfn]
        guard old != tag.rawValue else { return }
        j.logData(pfn: pfn, old: old)
        chunks.touch(pfn)
        data[pfn] = tag.rawValue
    }

    /// The frame's content as a tag.
    @inline(__always) public func dataTag(_ pfn: Int) -> DataTag { DataTag(rawValue: data[pfn]) }

    /// Undoes one of the Changes above (Engine.undo routes them here).
    mutating func undo(_ change: Change) {
        switch change {
        case let .dataRun(first, count, old):
            for pfn in Int(first)..<Int(first) + Int(count) {
                chunks.touch(pfn)
                data[pfn] = old
            }
        case let .frame(pfn, old): setFrame(Int(pfn), old)
        case let .frames(first, old): for (i, f) in old.enumerated() { setFrame(Int(first) + i, f) }
        case let .freeListInsert(order, pfn): listRemove(order: Int(order), pfn: Int(pfn))
        case let .freeListRemove(order, pfn, prev): listInsert(order: Int(order), pfn: Int(pfn), afterPrev: prev)
        default: break
        }
    }
}

// MARK: - Snapshots (the Timeline's; see Timeline/Snapshot.swift)

/// One chunk of every per-frame array, frozen: the arrays' bytes one after another.
final class FrameChunk: Sendable {
    let storage: [UInt8]
    var bytes: Int { storage.count }
    init(storage: [UInt8]) { self.storage = storage }
}

extension PhysicalMemory {
    /// The per-frame arrays' chunks, and the rest of the struct with those arrays emptied.
    struct Snapshot: Sendable {
        let chunks: [FrameChunk]
        let rest: PhysicalMemory
    }

    /// Bytes of the arrays a snapshot holds whole (free lists, summaries), for the footprint.
    var smallArrayBytes: Int {
        (freeHead.count + freeTail.count) * 4 + freeBlocks.count * 8 + blockUseCounts.count * 2 + blockPinned.count * 2
    }

    /// Every per-frame array, by element type: the one list snapshot, restore and the chunk
    /// layout go by. An array added to struct page's fields is added here.
    private static var bytes: [WritableKeyPath<PhysicalMemory, [UInt8]>] { [\.use, \.flags] }
    private static var signedBytes: [WritableKeyPath<PhysicalMemory, [Int8]>] { [\.freeOrder] }
    private static var words: [WritableKeyPath<PhysicalMemory, [Int32]>] { [\.refcount, \.mapcount, \.pincount, \.owner, \.next, \.prev] }
    private static var unsignedWords: [WritableKeyPath<PhysicalMemory, [UInt32]>] { [\.stamp] }
    private static var longs: [WritableKeyPath<PhysicalMemory, [UInt64]>] { [\.data] }

    /// Bytes per frame of the chunked arrays.
    static let bytesPerFrameArrays = bytes.count + signedBytes.count + 4 * words.count + 4 * unsignedWords.count + 8 * longs.count

    /// Calls `visit` on each per-frame array of `m`, in chunk-layout order.
    private static func forEachArray(_ m: inout PhysicalMemory, _ visit: FrameArrayVisitor) {
        for k in bytes { visit.visit(&m[keyPath: k]) }
        for k in signedBytes { visit.visit(&m[keyPath: k]) }
        for k in words { visit.visit(&m[keyPath: k]) }
        for k in unsignedWords { visit.visit(&m[keyPath: k]) }
        for k in longs { visit.visit(&m[keyPath: k]) }
    }

    /// Swaps every per-frame array of `a` with `b`'s (moves the buffers, copies nothing).
    private static func swapArrays(_ a: inout PhysicalMemory, _ b: inout PhysicalMemory) {
        for k in bytes { swap(&a[keyPath: k], &b[keyPath: k]) }
        for k in signedBytes { swap(&a[keyPath: k], &b[keyPath: k]) }
        for k in words { swap(&a[keyPath: k], &b[keyPath: k]) }
        for k in unsignedWords { swap(&a[keyPath: k], &b[keyPath: k]) }
        for k in longs { swap(&a[keyPath: k], &b[keyPath: k]) }
    }

    mutating func snapshot() -> Snapshot {
        var tracker = chunks
        let frozen = tracker.freeze { r in
            var storage = [UInt8](repeating: 0, count: r.count * PhysicalMemory.bytesPerFrameArrays)
            storage.withUnsafeMutableBytes { out in
                PhysicalMemory.forEachArray(&self, FrameArrayVisitor(range: r, chunk: out, toChunk: true))
            }
            return FrameChunk(storage: storage)
        }
        chunks = tracker
        // The rest of the struct: its per-frame arrays swapped for empty ones (nothing copied).
        var rest = self
        var empty = PhysicalMemory(frames: 0)
        PhysicalMemory.swapArrays(&rest, &empty)
        rest.chunks = ChunkTracker(elements: 0)
        return Snapshot(chunks: frozen, rest: rest)
    }

    /// Becomes the snapshot's memory, copying into the live arrays only the chunks that differ.
    mutating func restore(_ s: Snapshot) {
        var r = s.rest
        // Move the live arrays into r (one reference each, so the copies below write in place).
        PhysicalMemory.swapArrays(&r, &self)
        var tracker = chunks
        tracker.thaw(s.chunks) { range, chunk in
            chunk.storage.withUnsafeBytes { src in
                PhysicalMemory.forEachArray(&r, FrameArrayVisitor(range: range, chunk: UnsafeMutableRawBufferPointer(mutating: src), toChunk: false))
            }
        }
        r.chunks = tracker
        self = r
    }
}

/// Copies one range of frames between a per-frame array and a chunk's bytes, the arrays one after
/// another in the chunk.
private final class FrameArrayVisitor {
    let range: Range<Int>
    let chunk: UnsafeMutableRawBufferPointer
    let toChunk: Bool
    private var at = 0

    init(range: Range<Int>, chunk: UnsafeMutableRawBufferPointer, toChunk: Bool) {
        self.range = range
        self.chunk = chunk
        self.toChunk = toChunk
    }

    func visit<T>(_ a: inout [T]) {
        let n = range.count * MemoryLayout<T>.stride
        let offset = range.lowerBound * MemoryLayout<T>.stride
        a.withUnsafeMutableBytes { array in
            guard let base = array.baseAddress, let c = chunk.baseAddress else { return }
            if toChunk {
                c.advanced(by: at).copyMemory(from: base.advanced(by: offset), byteCount: n)
            } else {
                base.advanced(by: offset).copyMemory(from: c.advanced(by: at), byteCount: n)
            }
        }
        at += n
    }
}

// MARK: - Boot

extension PhysicalMemory {
    /// mem_init: the kernel keeps low memory, its image and the memmap; memblock_free_all hands the
    /// rest to the buddy allocator in maximal aligned blocks, each at the tail of its list
    /// (__free_pages_core uses FPI_TO_TAIL), so a fresh machine allocates from low addresses up.
    /// Returns the memory, the zero page (empty_zero_page, in the kernel image's bss) and how many
    /// frames the kernel kept.
    static func booted(_ config: MachineConfig) -> (memory: PhysicalMemory, zeroPfn: Int, reserved: Int) {
        booted(config, frameByFrame: false)
    }

    /// `frameByFrame`: the reference way, setting each frame (kept for the test that the fills
    /// give the same memory); otherwise whole-array fills, which a 16 GiB boot needs (4M frames).
    static func booted(_ config: MachineConfig, frameByFrame: Bool) -> (memory: PhysicalMemory, zeroPfn: Int, reserved: Int) {
        let frames = config.frames
        let low = min(256, frames / 16)
        let memmap = (frames * 64 + Int(pageSize) - 1) / Int(pageSize)
        let image = config.ram >= 256 << 20 ? 4096 : frames / 16
        let reserved = min(frames - 1, low + memmap + image)
        var m: PhysicalMemory
        if frameByFrame {
            m = PhysicalMemory(frames: frames)
            for p in 0..<reserved { m.setFrame(p, Frame(use: .kernel, refcount: 1, owner: 0)) }
        } else {
            m = PhysicalMemory(frames: frames, kernelFrames: reserved, kernelRefcount: 1)
        }
        let zero = low + memmap
        var zf = m.frame(zero)
        zf.use = FrameUse.zero.rawValue
        m.setFrame(zero, zf)
        // cma=SIZE: a region at the top of memory, in whole 4 MiB blocks so buddies never straddle it.
        let cmaFrames = min(Int(alignUp(config.cma, 4 << 20) >> pageShift), (frames - reserved) & ~((1 << maxPageOrder) - 1))
        if cmaFrames > 0 {
            m.cmaEnd = frames & ~((1 << maxPageOrder) - 1)
            m.cmaStart = m.cmaEnd - cmaFrames
        }
        var pfn = reserved
        while pfn < frames {
            var order = maxPageOrder
            while order > 0 && (pfn & ((1 << order) - 1) != 0 || pfn + (1 << order) > frames
                                || (pfn < m.cmaStart && pfn + (1 << order) > m.cmaStart)) { order -= 1 }
            if frameByFrame { for i in 0..<(1 << order) { m.setFrame(pfn + i, .free) } }
            m.listInsertTail(order: order, pfn: pfn)
            pfn += 1 << order
        }
        return (m, zero, reserved)
    }
}
