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
        if sets == 1 {
            var size = 16
            while size < slots * 4 { size <<= 1 }
            index = Array(repeating: 0, count: size)
            orderPrev = Array(repeating: -1, count: slots)
            orderNext = Array(repeating: -1, count: slots)
            sizeCounts = Array(repeating: 0, count: 64)
        }
    }

    // MARK: The fully associative index

    @inline(__always) private func home(_ tag: UInt64, _ size: UInt64) -> Int {
        Int(truncatingIfNeeded: ((tag ^ (size &* 0x9E37_79B9)) &* 0x9E37_79B9_7F4A_7C15) >> 32) & (index.count - 1)
    }

    /// The slot holding (tag, size), or -1.
    @inline(__always) private func find(_ tag: UInt64, _ size: UInt64) -> Int {
        index.withUnsafeBufferPointer { ix in
            let mask = ix.count - 1
            var i = home(tag, size)
            while true {
                let v = Int(ix[i])
                if v == 0 { return -1 }
                if tags[v - 1] == tag && sizes[v - 1] == size { return v - 1 }
                i = (i + 1) & mask
            }
        }
    }

    private mutating func indexInsert(_ slot: Int) {
        let mask = index.count - 1
        var i = home(tags[slot], sizes[slot])
        while index[i] != 0 { i = (i + 1) & mask }
        index[i] = Int32(slot + 1)
        let lg = sizes[slot].trailingZeroBitCount
        sizeCounts[lg] += 1
        presentSizes |= 1 << UInt64(lg)
    }

    /// Removes the slot's key (backward-shift deletion keeps every probe run unbroken).
    private mutating func indexRemove(_ slot: Int) {
        let mask = index.count - 1
        var i = home(tags[slot], sizes[slot])
        while Int(index[i]) != slot + 1 { i = (i + 1) & mask }
        var j = (i + 1) & mask
        while index[j] != 0 {
            let s = Int(index[j]) - 1
            let h = home(tags[s], sizes[s])
            if (j - h) & mask >= (j - i) & mask {
                index[i] = index[j]
                i = j
            }
            j = (j + 1) & mask
        }
        index[i] = 0
        let lg = sizes[slot].trailingZeroBitCount
        sizeCounts[lg] -= 1
        if sizeCounts[lg] == 0 { presentSizes &= ~(1 << UInt64(lg)) }
    }

    @inline(__always) private mutating func unlink(_ s: Int) {
        let p = orderPrev[s], n = orderNext[s]
        if p >= 0 { orderNext[Int(p)] = n } else { orderHead = n }
        if n >= 0 { orderPrev[Int(n)] = p } else { orderTail = p }
    }

    @inline(__always) private mutating func append(_ s: Int) {
        orderPrev[s] = orderTail
        orderNext[s] = -1
        if orderTail >= 0 { orderNext[Int(orderTail)] = Int32(s) } else { orderHead = Int32(s) }
        orderTail = Int32(s)
    }

    /// Builds the index and the order again from the slots (after entries moved between slots).
    private mutating func rebuildIndex() {
        guard fill.count == 1, !index.isEmpty else { return }
        for i in index.indices { index[i] = 0 }
        for i in sizeCounts.indices { sizeCounts[i] = 0 }
        presentSizes = 0
        orderHead = -1
        orderTail = -1
        for s in 0..<fill[0] { indexInsert(s) }
        for s in (0..<fill[0]).sorted(by: { (stamps[$0], $0) < (stamps[$1], $1) }) { append(s) }
    }

    /// The slot a scan of every slot finds first for iova (the reference the index must agree
    /// with: IOTLBTests compares them on random traces).
    func scanLookup(_ iova: UInt64) -> Int {
        for i in 0..<fill[0] where iova &- tags[i] < sizes[i] { return i }
        return -1
    }

    @inline(__always) func setIndex(iova: UInt64, size: UInt64) -> Int {
        fill.count == 1 ? 0 : Int((iova >> UInt64(size.trailingZeroBitCount)) % UInt64(fill.count))
    }

    /// Looks iova up; on a hit LRU refreshes the entry. Returns the slot, or -1 on a miss.
    @inline(__always) public mutating func lookup(_ iova: UInt64, sizes probe: [UInt64]) -> Int {
        if fill.count == 1 {
            // Every page size an entry has, not only `probe`: a stale entry may outlive its size's IOPTEs.
            // Where entries of two sizes both cover iova, the lower slot wins, as a scan in slot order finds.
            var hit = -1
            var bits = presentSizes
            while bits != 0 {
                let size = UInt64(1) << UInt64(bits.trailingZeroBitCount)
                bits &= bits - 1
                let s = find(iova & ~(size - 1), size)
                if s >= 0 && (hit < 0 || s < hit) { hit = s }
            }
            if hit >= 0 && policy == .lru {
                clock &+= 1
                stamps[hit] = clock
                if Int32(hit) != orderTail {
                    unlink(hit)
                    append(hit)
                }
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
        let indexed = fill.count == 1
        let si = setIndex(iova: e.iova, size: e.size)
        var slot: Int
        if fill[si] < ways {
            slot = si * ways + fill[si]
            fill[si] += 1
        } else {
            let base = si * ways
            switch policy {
            case .lru where indexed, .fifo where indexed:
                // The head of the replacement order: the entry with the oldest stamp.
                slot = Int(orderHead)
            case .lru, .fifo:
                slot = base
                for i in (base + 1)..<(base + ways) where stamps[i] < stamps[slot] { slot = i }
            case .random:
                slot = base + Int(rng.next() % UInt64(ways))
            }
            if indexed {
                indexRemove(slot)
                unlink(slot)
            }
        }
        tags[slot] = e.iova
        sizes[slot] = e.size
        pas[slot] = e.pa
        stamps[slot] = clock
        staleFlags[slot] = false
        if indexed {
            indexInsert(slot)
            append(slot)
        }
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
        if n > 0 { rebuildIndex() }
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
