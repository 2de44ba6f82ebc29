// The IOTLB against reference caches written here (not the Engine's code): fully associative LRU
// and FIFO, N-way set-associative LRU and FIFO, fed the same seeded traces of page numbers, both
// through IOTLBState directly and through `dma-trace` on a device with 4K IOPTEs.

import XCTest

@testable import Engine

/// A reference cache of page numbers: a dictionary for membership and a list for the order
/// (least to most recently used for LRU, oldest to newest fill for FIFO).
struct IORefCache {
    let capacity: Int
    let fifo: Bool
    var present: [UInt64: Bool] = [:]
    var order: [UInt64] = []
    var hits = 0
    var misses = 0

    init(capacity: Int, fifo: Bool) {
        self.capacity = capacity
        self.fifo = fifo
    }

    mutating func access(_ page: UInt64) {
        if present[page] != nil {
            hits += 1
            if !fifo {
                order.remove(at: order.firstIndex(of: page)!)
                order.append(page)
            }
            return
        }
        misses += 1
        if order.count == capacity {
            let victim = order.removeFirst()
            present[victim] = nil
        }
        order.append(page)
        present[page] = true
    }
}

/// N-way set-associative reference: set = page mod (capacity / ways), each set an IORefCache.
struct IORefSetAssoc {
    var sets: [IORefCache]
    init(capacity: Int, ways: Int, fifo: Bool) {
        sets = Array(repeating: IORefCache(capacity: ways, fifo: fifo), count: capacity / ways)
    }
    mutating func access(_ page: UInt64) { sets[Int(page % UInt64(sets.count))].access(page) }
    var hits: Int { sets.reduce(0) { $0 + $1.hits } }
    var misses: Int { sets.reduce(0) { $0 + $1.misses } }
}

final class IOTLBTests: XCTestCase {
    /// A seeded trace over `pages` page numbers: mostly a drifting hot set, some uniform noise.
    func ioTrace(seed: UInt64, count: Int, pages: UInt64, hot: UInt64) -> [UInt64] {
        var rng = IOLCG(seed: seed)
        var out: [UInt64] = []
        var base: UInt64 = 0
        for i in 0..<count {
            if i % 500 == 0 { base = rng.below(pages) }
            if rng.below(10) < 7 {
                out.append((base + rng.below(hot)) % pages)
            } else {
                out.append(rng.below(pages))
            }
        }
        return out
    }

    /// Feeds IOTLBState the trace as the DMA path does: lookup, insert on a miss.
    func ioFeed(_ tlb: inout IOTLBState, _ trace: [UInt64], base: UInt64 = 0) -> (hits: Int, misses: Int) {
        var hits = 0, misses = 0
        for page in trace {
            let iova = (base + page) << pageShift
            if tlb.lookup(iova, sizes: [pageSize]) >= 0 {
                hits += 1
            } else {
                misses += 1
                tlb.insert(IOPTE(iova: iova, pa: 0x4000_0000 + iova, size: pageSize, writable: true))
            }
        }
        return (hits, misses)
    }

    // MARK: - IOTLBState against the reference

    func testFullyAssociativeLRUAndFIFOMatchTheReference() {
        for policy in [IOTLBPolicy.lru, .fifo] {
            for capacity in [1, 8, 64] {
                for seed: UInt64 in [1, 2, 3] {
                    let trace = ioTrace(seed: seed, count: 5000, pages: 256, hot: UInt64(capacity) + 8)
                    var tlb = IOTLBState(capacity: capacity, ways: 0, policy: policy, seed: 9)
                    var ref = IORefCache(capacity: capacity, fifo: policy == .fifo)
                    for p in trace { ref.access(p) }
                    let (hits, misses) = ioFeed(&tlb, trace)
                    let what = "\(policy) capacity \(capacity) seed \(seed)"
                    XCTAssertEqual([hits, misses], [ref.hits, ref.misses], what)
                    XCTAssertEqual(tlb.replacementOrder.map { $0.iova >> pageShift }, ref.order, what)
                    XCTAssertEqual(tlb.entryCount, ref.order.count, what)
                }
            }
        }
    }

    func testSetAssociativeMatchesTheReference() {
        for policy in [IOTLBPolicy.lru, .fifo] {
            for (capacity, ways) in [(64, 4), (64, 1), (32, 8), (16, 2)] {
                let trace = ioTrace(seed: UInt64(capacity * ways), count: 6000, pages: 512, hot: 96)
                var tlb = IOTLBState(capacity: capacity, ways: ways, policy: policy, seed: 9)
                XCTAssertEqual(tlb.setCount, capacity / ways)
                var ref = IORefSetAssoc(capacity: capacity, ways: ways, fifo: policy == .fifo)
                for p in trace { ref.access(p) }
                let (hits, misses) = ioFeed(&tlb, trace)
                let what = "\(policy) \(capacity) entries \(ways)-way"
                XCTAssertEqual([hits, misses], [ref.hits, ref.misses], what)
                let got = tlb.sets.map { $0.sorted { $0.stamp < $1.stamp }.map { $0.iova >> pageShift } }
                XCTAssertEqual(got, ref.sets.map(\.order), what)
            }
        }
    }

    /// A classic: a loop one page larger than an LRU cache misses every time; FIFO too.
    func testCyclicSweepOneLargerThanTheCacheAlwaysMisses() {
        let trace = (0..<2000).map { UInt64($0 % 65) }
        for policy in [IOTLBPolicy.lru, .fifo] {
            var tlb = IOTLBState(capacity: 64, ways: 0, policy: policy, seed: 1)
            let (hits, misses) = ioFeed(&tlb, trace)
            XCTAssertEqual([hits, misses], [0, 2000], "\(policy)")
        }
        // A loop that fits hits after the first round.
        var tlb = IOTLBState(capacity: 64, ways: 0, policy: .lru, seed: 1)
        let (hits, misses) = ioFeed(&tlb, (0..<2000).map { UInt64($0 % 64) })
        XCTAssertEqual([hits, misses], [2000 - 64, 64])
    }

    func testRandomPolicyIsDeterministicPerSeed() {
        let trace = ioTrace(seed: 5, count: 8000, pages: 300, hot: 80)
        var a = IOTLBState(capacity: 64, ways: 0, policy: .random, seed: 42)
        var b = IOTLBState(capacity: 64, ways: 0, policy: .random, seed: 42)
        var c = IOTLBState(capacity: 64, ways: 0, policy: .random, seed: 43)
        let ra = ioFeed(&a, trace), rb = ioFeed(&b, trace), rc = ioFeed(&c, trace)
        XCTAssertEqual([ra.hits, ra.misses], [rb.hits, rb.misses])
        XCTAssertTrue(a == b, "same seed, same trace: the same IOTLB")
        XCTAssertEqual(ra.hits + ra.misses, trace.count)
        XCTAssertEqual(a.entryCount, 64)
        XCTAssertNotEqual(Set(a.replacementOrder.map(\.iova)), Set(c.replacementOrder.map(\.iova)), "another seed evicts differently")
        _ = rc
        // Set-associative random too.
        var d = IOTLBState(capacity: 64, ways: 4, policy: .random, seed: 7)
        var e = IOTLBState(capacity: 64, ways: 4, policy: .random, seed: 7)
        _ = ioFeed(&d, trace)
        _ = ioFeed(&e, trace)
        XCTAssertTrue(d == e)
    }

    // MARK: - Entry semantics

    func testOneEntryPerIOPTEAtItsSize() {
        var tlb = IOTLBState(capacity: 4, ways: 0, policy: .lru, seed: 1)
        tlb.insert(IOPTE(iova: 0x200000, pa: 0x4000_0000, size: 2 * ioM, writable: true))
        XCTAssertGreaterThanOrEqual(tlb.lookup(0x200000, sizes: [pageSize, 2 * ioM]), 0)
        XCTAssertGreaterThanOrEqual(tlb.lookup(0x3fffff, sizes: [pageSize, 2 * ioM]), 0, "the whole 2M is one entry")
        XCTAssertEqual(tlb.lookup(0x400000, sizes: [pageSize, 2 * ioM]), -1)
        XCTAssertEqual(tlb.lookup(0x1ff000, sizes: [pageSize, 2 * ioM]), -1)
        XCTAssertEqual(tlb.entryCount, 1)
        // Set-associative: a 2M entry is found through its own set.
        var sa = IOTLBState(capacity: 16, ways: 2, policy: .lru, seed: 1)
        sa.insert(IOPTE(iova: 0x600000, pa: 0, size: 2 * ioM, writable: true))
        XCTAssertGreaterThanOrEqual(sa.lookup(0x7ff000, sizes: [pageSize, 2 * ioM]), 0)
    }

    func testInvalidateAndMarkStale() {
        var tlb = IOTLBState(capacity: 16, ways: 0, policy: .fifo, seed: 1)
        _ = ioFeed(&tlb, Array(0..<10))
        XCTAssertEqual(tlb.invalidate(iova: 2 << pageShift, size: 3 << pageShift), 3)
        XCTAssertEqual(tlb.replacementOrder.map { $0.iova >> pageShift }, [0, 1, 5, 6, 7, 8, 9])
        tlb.markStale(iova: 5 << pageShift, size: 2 << pageShift)
        XCTAssertEqual(tlb.replacementOrder.filter(\.stale).map { $0.iova >> pageShift }, [5, 6])
        let slot = tlb.lookup(5 << pageShift, sizes: [pageSize])
        XCTAssertGreaterThanOrEqual(slot, 0, "a stale entry still translates")
        XCTAssertTrue(tlb.isStale(slot))
        XCTAssertEqual(tlb.entryCount, 7)
    }

    // MARK: - Through dma-trace

    /// A device with 4K IOPTEs over 256 pages mapped at IOVA 1M; trace page numbers 256...511.
    func ioTraceScenario(_ deviceOptions: String, trace: [UInt64]) -> EngineRun {
        let traces = IOArrayTraces(files: ["t.txt": trace.map { 256 + $0 }])
        return scenario("""
        process app
        device gpu pagesizes=4K \(deviceOptions)
        app mmap buf 1M
        app write buf
        gpu map app.buf iova=0x100000
        """, traces: traces)
    }

    func testDMATraceLRUAndFIFOMatchTheReference() {
        for policy in ["lru", "fifo"] {
            let trace = ioTrace(seed: 11, count: 20000, pages: 256, hot: 72)
            var s = ioTraceScenario("iotlb=64 policy=\(policy)", trace: trace)
            XCTAssertEqual(s.ioptes("gpu").count, 256)
            var ref = IORefCache(capacity: 64, fifo: policy == "fifo")
            for p in trace { ref.access(256 + p) }
            s.ok("gpu dma-trace t.txt unit=page")
            let st = s.dev("gpu").stats
            XCTAssertEqual(st, DeviceStats(accesses: 20000, hits: ref.hits, misses: ref.misses, walks: ref.misses,
                                           stallNs: ref.misses * 4 * 300, faults: 0, hazards: 0, ioPageFaults: 0), policy)
            XCTAssertEqual(s.dev("gpu").iotlb.replacementOrder.map { $0.iova >> pageShift }, ref.order, policy)
        }
    }

    func testDMATraceSetAssociativeMatchesTheReference() {
        for policy in ["lru", "fifo"] {
            let trace = ioTrace(seed: 12, count: 20000, pages: 256, hot: 90)
            var s = ioTraceScenario("iotlb=64 ways=4 policy=\(policy)", trace: trace)
            var ref = IORefSetAssoc(capacity: 64, ways: 4, fifo: policy == "fifo")
            for p in trace { ref.access(256 + p) }
            s.ok("gpu dma-trace t.txt unit=page")
            let st = s.dev("gpu").stats
            XCTAssertEqual([st.accesses, st.hits, st.misses], [20000, ref.hits, ref.misses], policy)
            let tlb = s.dev("gpu").iotlb
            XCTAssertEqual(tlb.setCount, 16)
            XCTAssertEqual(tlb.sets.map { $0.sorted { $0.stamp < $1.stamp }.map { $0.iova >> pageShift } }, ref.sets.map(\.order), policy)
        }
    }

    /// unit=addr replays byte addresses: many addresses in one page are one entry.
    func testDMATraceByAddress() {
        let pages: [UInt64] = [0, 0, 1, 0, 2, 1]
        let addrs = pages.map { (256 + $0) << pageShift + 0x123 }
        let traces = IOArrayTraces(files: ["a.txt": addrs])
        var s = scenario("""
        process app
        device gpu pagesizes=4K iotlb=64
        app mmap buf 1M
        gpu map app.buf iova=0x100000
        """, traces: traces)
        s.ok("gpu dma-trace a.txt")
        XCTAssertEqual(s.dev("gpu").stats, DeviceStats(accesses: 6, hits: 3, misses: 3, walks: 3, stallNs: 3 * 1200, faults: 0, hazards: 0, ioPageFaults: 0))
        XCTAssertEqual(s.dev("gpu").iotlb.replacementOrder.map { $0.iova >> pageShift }, [256 + 0, 256 + 2, 256 + 1])
    }

    func testDMATraceRandomPolicyIsDeterministic() {
        let trace = ioTrace(seed: 13, count: 10000, pages: 256, hot: 80)
        func runIt(seed: Int) -> DeviceState {
            let traces = IOArrayTraces(files: ["t.txt": trace.map { 256 + $0 }])
            var s = scenario("""
            machine seed=\(seed)
            process app
            device gpu pagesizes=4K iotlb=64 policy=random
            app mmap buf 1M
            app write buf
            gpu map app.buf iova=0x100000
            """, traces: traces)
            s.ok("gpu dma-trace t.txt unit=page")
            return s.dev("gpu")
        }
        let a = runIt(seed: 1), b = runIt(seed: 1), c = runIt(seed: 2)
        XCTAssertTrue(a.iotlb == b.iotlb)
        XCTAssertEqual(a.stats, b.stats)
        XCTAssertNotEqual(Set(a.iotlb.replacementOrder.map(\.iova)), Set(c.iotlb.replacementOrder.map(\.iova)))
    }

    /// An address no IOPTE translates is an IOMMU fault, counted and reported as the step's outcome.
    func testDMATraceToAnUnmappedIOVAFaults() {
        let traces = IOArrayTraces(files: ["t.txt": [256, 257, 9999]])
        var s = scenario("""
        process app
        device gpu pagesizes=4K
        app mmap buf 1M
        gpu map app.buf iova=0x100000
        """, traces: traces)
        s.expect("gpu dma-trace t.txt unit=page", .iommuFault)
        XCTAssertEqual(s.dev("gpu").stats, DeviceStats(accesses: 3, hits: 0, misses: 2, walks: 2, stallNs: 2 * 1200, faults: 1, hazards: 0, ioPageFaults: 0))
        s.expect("gpu dma-trace missing.txt", .errno("ENOENT"))
    }
}

/// The fully associative IOTLB's O(1) index against the CAM scan it replaced: on random traces of
/// mixed page sizes, with invalidations and lazy (stale) marks between them, every lookup finds the
/// slot a scan in slot order finds, and every eviction takes the slot with the oldest stamp.
final class IOTLBIndexTests: XCTestCase {
    func testTheIndexAgreesWithTheScanForEveryPolicy() {
        for policy in IOTLBPolicy.allCases {
            for capacity in [1, 2, 7, 64, 300] {
                var rng = SplitMix64(seed: UInt64(capacity) &* 31 &+ UInt64(IOTLBPolicy.allCases.firstIndex(of: policy) ?? 0))
                var tlb = IOTLBState(capacity: capacity, ways: 0, policy: policy, seed: 5)
                var hits = 0, misses = 0, evictions = 0
                let sizes: [UInt64] = [4096, 64 << 10, 2 << 20]
                for step in 0..<4000 {
                    let r = rng.next()
                    let size = sizes[Int(r % 3)]
                    let iova = (r >> 8) % (64 << 20)
                    if step % 97 == 96 {
                        let start = iova & ~((1 << 20) - 1)
                        if r & 0x100 == 0 { _ = tlb.invalidate(iova: start, size: 1 << 20) } else { tlb.markStale(iova: start, size: 1 << 20) }
                        continue
                    }
                    let expected = tlb.scanLookup(iova)
                    let slot = tlb.lookup(iova, sizes: [size])
                    XCTAssertEqual(slot, expected, "\(policy) \(capacity) step \(step)")
                    if slot >= 0 { hits += 1; continue }
                    misses += 1
                    // The reference victim: the lowest stamp (the first such slot) once the IOTLB is full.
                    let full = tlb.entryCount == tlb.capacity
                    let oldest = (0..<tlb.entryCount).min { (tlb.stamps[$0], $0) < (tlb.stamps[$1], $1) }
                    var probe = tlb.rng
                    let randomSlot = Int(probe.next() % UInt64(tlb.ways))
                    let base = iova & ~(size - 1)
                    tlb.insert(IOPTE(iova: base, pa: base, size: size, writable: true))
                    if full {
                        evictions += 1
                        let victim = policy == .random ? randomSlot : oldest
                        XCTAssertEqual(tlb.tags[victim ?? -1], base, "\(policy) \(capacity) step \(step): the victim")
                    }
                    XCTAssertEqual(tlb.scanLookup(iova), tlb.lookup(iova, sizes: [size]), "\(policy) \(capacity) step \(step): after the fill")
                }
                XCTAssertGreaterThan(hits, 0, "\(policy) \(capacity)")
                if capacity < 300 { XCTAssertGreaterThan(evictions, 0, "\(policy) \(capacity)") }
                XCTAssertGreaterThan(misses, 0)
            }
        }
    }
}
