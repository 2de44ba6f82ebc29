// Indexes the views look things up in while drawing: what the last step changed, and what the
// selection maps or is mapped by (cross-highlighting). Built once per step or per selection,
// never per frame drawn, so drawing stays proportional to the cells.

import Engine

/// A set of frames as a bitset over every pfn: constant-time tests and fast range tests.
struct FrameSet: Sendable {
    private(set) var words: [UInt64]
    private(set) var count = 0

    init(frames: Int) { words = Array(repeating: 0, count: (frames + 63) / 64) }

    @inline(__always) func contains(_ pfn: Int) -> Bool {
        pfn >= 0 && pfn / 64 < words.count && words[pfn >> 6] & (1 << UInt64(pfn & 63)) != 0
    }

    @inline(__always) mutating func insert(_ pfn: Int) {
        guard pfn >= 0, pfn / 64 < words.count else { return }
        let bit: UInt64 = 1 << UInt64(pfn & 63)
        if words[pfn >> 6] & bit == 0 { words[pfn >> 6] |= bit; count += 1 }
    }

    mutating func insert(range: Range<Int>) { for p in range { insert(p) } }

    /// Whether any frame in `range` is in the set.
    func intersects(_ range: Range<Int>) -> Bool {
        guard count > 0 else { return false }
        var p = max(0, range.lowerBound)
        let end = min(range.upperBound, words.count * 64)
        while p < end {
            let w = words[p >> 6]
            if p & 63 == 0 && end - p >= 64 {
                if w != 0 { return true }
                p += 64
            } else {
                if w & (1 << UInt64(p & 63)) != 0 { return true }
                p += 1
            }
        }
        return false
    }

    var isEmpty: Bool { count == 0 }
}

/// A set of virtual pages of one process, as a 512-bit map per 2 MiB region.
struct PageSet: Sendable {
    private(set) var regions: [UInt64: [UInt64]] = [:]

    @inline(__always) func contains(_ vpn: UInt64) -> Bool {
        guard let r = regions[vpn >> 9] else { return false }
        let i = Int(vpn & 511)
        return r[i >> 6] & (1 << UInt64(i & 63)) != 0
    }

    mutating func insert(_ vpn: UInt64) {
        let i = Int(vpn & 511)
        regions[vpn >> 9, default: Array(repeating: 0, count: 8)][i >> 6] |= 1 << UInt64(i & 63)
    }

    mutating func insertRegion(_ region: UInt64) {
        regions[region] = Array(repeating: ~0, count: 8)
    }

    func intersects(_ range: Range<UInt64>) -> Bool {
        guard !regions.isEmpty, !range.isEmpty else { return false }
        var vpn = range.lowerBound
        while vpn < range.upperBound {
            let region = vpn >> 9
            let regionEnd = min(range.upperBound, (region + 1) << 9)
            if let r = regions[region] {
                var v = vpn
                while v < regionEnd {
                    let i = Int(v & 511)
                    if i & 63 == 0 && regionEnd - v >= 64 {
                        if r[i >> 6] != 0 { return true }
                        v += 64
                    } else {
                        if r[i >> 6] & (1 << UInt64(i & 63)) != 0 { return true }
                        v += 1
                    }
                }
            }
            vpn = regionEnd
        }
        return false
    }

    var isEmpty: Bool { regions.isEmpty }
}

/// What the last step changed, as each pane needs it.
struct ChangeIndex: Sendable {
    var frames: FrameSet
    var pages: [Int: PageSet] = [:]
    /// Processes whose record (VMAs, buffers, counters) changed, or that the step created.
    var processes: Set<Int> = []
    /// VMAs (by start) that are new or differ, per process.
    var vmas: [Int: Set<UInt64>] = [:]
    var devices: Set<Int> = []
    /// IOPTEs (by IOVA) set or cleared, per device.
    var ioptes: [Int: Set<UInt64>] = [:]

    init(frames: Int) { self.frames = FrameSet(frames: frames) }

    init(record: StepRecord?, state: EngineState) {
        self.init(frames: state.phys.frameCount)
        guard let record else { return }
        for change in record.changes {
            switch change {
            case let .frame(pfn, _):
                frames.insert(Int(pfn))
            case let .pte(proc, vpn, _):
                pages[Int(proc), default: PageSet()].insert(vpn)
            case let .pmd(proc, region, _):
                pages[Int(proc), default: PageSet()].insertRegion(region)
            case let .process(index, old):
                let p = Int(index)
                processes.insert(p)
                guard p < state.processes.count else { continue }
                let before = Set(old.vmas.map { "\($0.start)-\($0.end)-\($0.flags.rawValue)" })
                for v in state.processes[p].meta.vmas where !before.contains("\(v.start)-\(v.end)-\(v.flags.rawValue)") {
                    vmas[p, default: []].insert(v.start)
                }
            case .processAdded:
                processes.insert(state.processes.count - 1)
            case let .device(index, old):
                let d = Int(index)
                devices.insert(d)
                guard d < state.devices.count else { continue }
                let now = state.devices[d].ioptes
                var changed = Set<UInt64>()
                for (iova, e) in now where old.ioptes[iova] != e { changed.insert(iova) }
                for (iova, _) in old.ioptes where now[iova] == nil { changed.insert(iova) }
                ioptes[d] = changed
            case .deviceAdded:
                devices.insert(state.devices.count - 1)
            default:
                break
            }
        }
    }
}

/// What is selected: a cell of one pane.
enum Selection: Equatable, Sendable {
    case pages(proc: Int, range: Range<UInt64>)
    case frames(Range<Int>)
    case iopte(device: Int, iova: UInt64)
}

/// Everything the selection maps or is mapped by: its frames, every page mapping them, every IOPTE over them.
struct Highlight: Sendable {
    var frames: FrameSet
    var pages: [Int: PageSet] = [:]
    var ioptes: [Int: Set<UInt64>] = [:]

    init(frames: Int) { self.frames = FrameSet(frames: frames) }

    init(selection: Selection?, state: EngineState) {
        self.init(frames: state.phys.frameCount)
        guard let selection else { return }
        switch selection {
        case let .pages(p, range):
            guard p < state.processes.count else { return }
            let pt = state.processes[p].pt
            var vpn = range.lowerBound
            while vpn < range.upperBound {
                let region = vpn >> 9
                if pt.hugePMDs[region] == nil && pt.tables[region] == nil {
                    vpn = (region + 1) << 9
                    continue
                }
                let e = pt.entry(vpn: vpn)
                if e.present { frames.insert(e.number) }
                vpn += 1
            }
        case let .frames(range):
            frames.insert(range: range.clamped(to: 0..<state.phys.frameCount))
        case let .iopte(d, iova):
            guard d < state.devices.count, let e = state.devices[d].ioptes[iova] else { return }
            let first = Int(e.pa >> pageShift)
            frames.insert(range: first..<first + Int(max(1, e.size >> pageShift)))
        }
        guard !frames.isEmpty else { return }
        // Every page mapping one of these frames, in every process (a reverse map built by scanning
        // the page tables: linear in mapped pages, done once per selection).
        for (p, proc) in state.processes.enumerated() where proc.meta.alive {
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
            if !set.isEmpty { pages[p] = set }
        }
        // Every IOPTE over them, in every device.
        for (d, dev) in state.devices.enumerated() {
            var hits = Set<UInt64>()
            for (iova, e) in dev.ioptes {
                let first = Int(e.pa >> pageShift)
                if frames.intersects(first..<first + Int(max(1, e.size >> pageShift))) { hits.insert(iova) }
            }
            if !hits.isEmpty { ioptes[d] = hits }
        }
    }
}
