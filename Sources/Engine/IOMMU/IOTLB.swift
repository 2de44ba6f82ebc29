// The IOTLB: one entry per IOPTE at its size, fully or N-way set associative, LRU, FIFO or
// (seeded) random replacement. A value type with flat, set-major arrays so the DMA loop can work
// on a local copy and scan a set's tags the way the hardware's CAM would.

extension IOTLBState {
    public init(capacity: Int, ways: Int, policy: IOTLBPolicy, seed: UInt64) {
        self.capacity = max(1, capacity)
        let w = ways <= 0 || ways > capacity ? capacity : ways
        self.ways = max(1, w)
        self.policy = policy
        self.rng = SplitMix64(seed: seed)
        let sets = max(1, self.capacity / self.ways)
        let slots = sets * self.ways
        tags = Array(repeating: 0, count: slots)
        sizes = Array(repeating: 0, count: slots)
        pas = Array(repeating: 0, count: slots)
        stamps = Array(repeating: 0, count: slots)
        staleFlags = Array(repeating: false, count: slots)
        fill = Array(repeating: 0, count: sets)
    }

    @inline(__always) func setIndex(iova: UInt64, size: UInt64) -> Int {
        fill.count == 1 ? 0 : Int((iova >> UInt64(size.trailingZeroBitCount)) % UInt64(fill.count))
    }

    /// Looks iova up; on a hit LRU refreshes the entry. Returns the slot, or -1 on a miss.
    @inline(__always) public mutating func lookup(_ iova: UInt64, sizes probe: [UInt64]) -> Int {
        if fill.count == 1 {
            let n = fill[0]
            let hit: Int = tags.withUnsafeBufferPointer { t in
                sizes.withUnsafeBufferPointer { z in
                    for i in 0..<n where iova &- t[i] < z[i] { return i }
                    return -1
                }
            }
            if hit >= 0 && policy == .lru {
                clock &+= 1
                stamps[hit] = clock
            }
            return hit
        }
        for s in probe {
            let si = setIndex(iova: iova, size: s)
            let base = iova & ~(s - 1)
            for w in 0..<fill[si] {
                let i = si * ways + w
                if tags[i] == base && sizes[i] == s {
                    if policy == .lru {
                        clock &+= 1
                        stamps[i] = clock
                    }
                    return i
                }
            }
        }
        return -1
    }

    @inline(__always) public func isStale(_ slot: Int) -> Bool { staleFlags[slot] }

    /// Fills an entry for an IOPTE after a walk, evicting by policy when its set is full.
    @inline(__always) public mutating func insert(_ e: IOPTE) {
        clock &+= 1
        let si = setIndex(iova: e.iova, size: e.size)
        var slot: Int
        if fill[si] < ways {
            slot = si * ways + fill[si]
            fill[si] += 1
        } else {
            let base = si * ways
            switch policy {
            case .lru, .fifo:
                slot = base
                for i in (base + 1)..<(base + ways) where stamps[i] < stamps[slot] { slot = i }
            case .random:
                slot = base + Int(rng.next() % UInt64(ways))
            }
        }
        tags[slot] = e.iova
        sizes[slot] = e.size
        pas[slot] = e.pa
        stamps[slot] = clock
        staleFlags[slot] = false
    }

    /// Removes the entries of set `si` for which `drop` is true, keeping the rest in place order.
    private mutating func compact(set si: Int, drop: (Int) -> Bool) -> Int {
        let base = si * ways
        var out = base
        for i in base..<(base + fill[si]) where !drop(i) {
            if out != i {
                tags[out] = tags[i]
                sizes[out] = sizes[i]
                pas[out] = pas[i]
                stamps[out] = stamps[i]
                staleFlags[out] = staleFlags[i]
            }
            out += 1
        }
        let removed = fill[si] - (out - base)
        fill[si] = out - base
        return removed
    }

    /// Invalidates every entry overlapping [iova, iova+size) (strict flush). Returns how many went.
    public mutating func invalidate(iova: UInt64, size: UInt64) -> Int {
        var n = 0
        let t = tags, z = sizes
        for si in 0..<fill.count {
            n += compact(set: si) { i in t[i] < iova + size && t[i] + z[i] > iova }
        }
        return n
    }

    /// Marks entries overlapping the range stale (lazy flush): still usable until the queue drains.
    public mutating func markStale(iova: UInt64, size: UInt64) {
        for si in 0..<fill.count {
            for i in (si * ways)..<(si * ways + fill[si]) where tags[i] < iova + size && tags[i] + sizes[i] > iova {
                staleFlags[i] = true
            }
        }
    }

    /// The entry in a slot.
    public func entry(_ slot: Int) -> IOTLBEntry {
        IOTLBEntry(iova: tags[slot], pa: pas[slot], size: sizes[slot], stamp: stamps[slot], stale: staleFlags[slot])
    }

    /// Entries from least to most recently used (LRU) or oldest to newest fill (FIFO, random).
    public var replacementOrder: [IOTLBEntry] { sets.flatMap { $0 }.sorted { $0.stamp < $1.stamp } }
}
