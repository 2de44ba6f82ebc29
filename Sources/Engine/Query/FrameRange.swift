// What a run of frames holds, for a view that shows many frames in one cell: pinned frames and the
// zero page show through; otherwise the dominant use, and for process memory how full the run is and
// whose it is. Runs of whole 512-frame blocks read the per-block summaries, so a 16 GiB machine costs
// what its cells cost.

public enum FrameClass: Equatable, Sendable {
    case free
    /// At least one frame is pinned.
    case pinned
    /// The shared zero page (or, in a run of at most 512 frames, the huge zero folio).
    case zeroPage
    /// Mostly process memory (anonymous or shmem) of the process `owner` (a pid); `fullness` is how
    /// much of the run is in use, in quarters 0...3, or nil for a single frame.
    case processMemory(FrameUse, owner: Int32, fullness: Int?)
    /// Mostly kernel memory of one use: kernel, page tables, I/O page tables, UMP, dma-buf.
    case kernelMemory(FrameUse)
}

extension EngineState {
    public func classifyFrames(_ range: Range<Int>) -> FrameClass {
        let n = range.count
        var counts = [Int](repeating: 0, count: PhysicalMemory.useCount)
        var pinned = 0
        var owner: Int32 = -1
        let block = PhysicalMemory.summaryBlockFrames
        let anon = FrameUse.anon.rawValue, shmemUse = FrameUse.shmem.rawValue, fileUse = FrameUse.file.rawValue
        if n >= block && range.lowerBound % block == 0 && (range.upperBound % block == 0 || range.upperBound == phys.frameCount) {
            for b in (range.lowerBound / block)..<((range.upperBound + block - 1) / block) {
                for u in 0..<PhysicalMemory.useCount { counts[u] += Int(phys.blockUseCounts[b * PhysicalMemory.useCount + u]) }
                pinned += Int(phys.blockPinned[b])
            }
            // Sample a few frames for the owner.
            let step = max(1, n / 8)
            var pfn = range.lowerBound
            while pfn < range.upperBound && owner < 0 {
                let u = phys.use[pfn]
                if u == anon || u == shmemUse || u == fileUse { owner = phys.owner[pfn] }
                pfn += step
            }
        } else {
            for pfn in range {
                counts[Int(phys.use[pfn])] += 1
                if phys.pincount[pfn] > 0 { pinned += 1 }
                if owner < 0, phys.use[pfn] == anon || phys.use[pfn] == shmemUse || phys.use[pfn] == fileUse { owner = phys.owner[pfn] }
            }
        }
        if pinned > 0 { return .pinned }
        let zero = Int(meta.zeroPfn)
        let hugeZero = Int(meta.hugeZeroPfn)
        if range.contains(zero) || (hugeZero >= 0 && range.overlaps(hugeZero..<hugeZero + pagesPerPMD) && n <= pagesPerPMD) {
            return .zeroPage
        }
        var best = FrameUse.free
        var bestCount = 0
        for u in FrameUse.allCases where u != .free && counts[Int(u.rawValue)] > bestCount {
            best = u
            bestCount = counts[Int(u.rawValue)]
        }
        switch best {
        case .free:
            return .free
        case .anon, .shmem, .file:
            let used = n - counts[Int(FrameUse.free.rawValue)]
            return .processMemory(best, owner: owner, fullness: n == 1 ? nil : min(3, max(0, (used * 4 - 1) / n)))
        default:
            return .kernelMemory(best)
        }
    }
}

extension EngineState {
    /// How many frames of each use a run holds, the commonest first (ties in FrameUse order).
    public func frameUses(in range: Range<Int>) -> [(use: FrameUse, count: Int)] {
        var counts = [Int](repeating: 0, count: PhysicalMemory.useCount)
        for pfn in range.clamped(to: 0..<phys.frameCount) { counts[Int(phys.use[pfn])] += 1 }
        return FrameUse.allCases.filter { counts[Int($0.rawValue)] > 0 }.map { ($0, counts[Int($0.rawValue)]) }
            .enumerated().sorted { ($0.element.1, -$0.offset) > ($1.element.1, -$1.offset) }.map(\.element)
    }

    /// The first frame of a run that is in use, or the run's first frame when all are free.
    public func firstFrameInUse(in range: Range<Int>) -> Int {
        let r = range.clamped(to: 0..<phys.frameCount)
        return r.first { phys.use[$0] != FrameUse.free.rawValue } ?? r.lowerBound
    }
}
