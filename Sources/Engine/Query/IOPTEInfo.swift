// What an IOPTE is: its translation, how deep a walk finds it, the driver mapping it belongs to
// and the process address it stands for.

public struct IOPTEInfo: Equatable, Sendable {
    public var device: Int
    public var iopte: IOPTE
    public var format: IOMMUFormat
    /// Levels a miss walks to reach this leaf.
    public var walkLevels: Int
    /// The driver mapping (`DEV map PROC.BUF`) it belongs to, if any.
    public var mapping: IOMapping?
    /// The first frame it translates to.
    public var frame: Int { Int(iopte.pa >> pageShift) }
    /// Every frame it translates to.
    public var frames: Range<Int> { frame..<frame + Int(max(1, iopte.size >> pageShift)) }
    /// The process address the IOPTE's IOVA stands for.
    public var va: UInt64? { mapping.map { $0.va + (iopte.iova - $0.iova) } }
}

extension EngineState {
    /// The IOPTE of device `d` that starts at `iova`.
    public func iopte(_ d: Int, iova: UInt64) -> IOPTEInfo? {
        guard devices.indices.contains(d), let e = devices[d].ioptes[iova] else { return nil }
        let dev = devices[d]
        return IOPTEInfo(device: d, iopte: e, format: dev.info.format, walkLevels: dev.info.walkLevels(forPageSize: e.size),
                         mapping: dev.mappings.first { iova >= $0.iova && iova < $0.iova + $0.size })
    }

    /// IOPTEs of device `d` by page size, smallest first: (size, count, walk levels).
    public func ioptesBySize(_ d: Int) -> [(size: UInt64, count: Int, levels: Int)] {
        var bySize: [UInt64: Int] = [:]
        for e in devices[d].ioptes.values { bySize[e.size, default: 0] += 1 }
        return bySize.sorted { $0.key < $1.key }.map { ($0.key, $0.value, devices[d].info.walkLevels(forPageSize: $0.key)) }
    }
}
