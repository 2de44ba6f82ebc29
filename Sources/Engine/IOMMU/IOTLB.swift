// The IOTLB: one entry per IOPTE at its size, fully or N-way set associative, LRU, FIFO or
// (seeded) random replacement. A value type so the DMA loop can work on a local copy.

extension IOTLBState {
    public init(capacity: Int, ways: Int, policy: IOTLBPolicy, seed: UInt64) {
        self.capacity = max(1, capacity)
        let w = ways <= 0 || ways > capacity ? capacity : ways
        self.ways = max(1, w)
        self.policy = policy
        self.rng = SplitMix64(seed: seed)
        self.sets = Array(repeating: [], count: max(1, self.capacity / self.ways))
    }

    @inline(__always) func setIndex(iova: UInt64, size: UInt64) -> Int {
        setCount == 1 ? 0 : Int((iova >> UInt64(size.trailingZeroBitCount)) % UInt64(setCount))
    }

    /// Looks iova up. On a hit LRU refreshes the entry's stamp. Returns the entry or nil.
    @inline(__always) public mutating func lookup(_ iova: UInt64, sizes: [UInt64]) -> IOTLBEntry? {
        if setCount == 1 {
            let set = sets[0]
            for i in set.indices where iova &- set[i].iova < set[i].size {
                if policy == .lru {
                    clock &+= 1
                    sets[0][i].stamp = clock
                }
                return sets[0][i]
            }
            return nil
        }
        for s in sizes {
            let si = setIndex(iova: iova, size: s)
            let base = iova & ~(s - 1)
            for i in sets[si].indices where sets[si][i].size == s && sets[si][i].iova == base {
                if policy == .lru {
                    clock &+= 1
                    sets[si][i].stamp = clock
                }
                return sets[si][i]
            }
        }
        return nil
    }

    /// Fills an entry for an IOPTE after a walk, evicting by policy when its set is full.
    @inline(__always) public mutating func insert(_ e: IOPTE) {
        clock &+= 1
        let entry = IOTLBEntry(iova: e.iova, pa: e.pa, size: e.size, stamp: clock, stale: false)
        let si = setIndex(iova: e.iova, size: e.size)
        if sets[si].count < ways {
            sets[si].append(entry)
            return
        }
        var victim = 0
        switch policy {
        case .lru, .fifo:
            for i in 1..<sets[si].count where sets[si][i].stamp < sets[si][victim].stamp { victim = i }
        case .random:
            victim = Int(rng.next() % UInt64(sets[si].count))
        }
        sets[si][victim] = entry
    }

    /// Invalidates every entry overlapping [iova, iova+size) (strict flush).
    public mutating func invalidate(iova: UInt64, size: UInt64) -> Int {
        var n = 0
        for si in sets.indices {
            let before = sets[si].count
            sets[si].removeAll { $0.iova < iova + size && $0.iova + $0.size > iova }
            n += before - sets[si].count
        }
        return n
    }

    /// Marks entries overlapping the range stale (lazy flush): still usable until the queue drains.
    public mutating func markStale(iova: UInt64, size: UInt64) {
        for si in sets.indices {
            for i in sets[si].indices where sets[si][i].iova < iova + size && sets[si][i].iova + sets[si][i].size > iova {
                sets[si][i].stale = true
            }
        }
    }

    /// Entries from least to most recently used (LRU) or oldest to newest fill (FIFO, random).
    public var replacementOrder: [IOTLBEntry] { sets.flatMap { $0 }.sorted { $0.stamp < $1.stamp } }
}
