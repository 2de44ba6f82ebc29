// Per-state memo of what drawing needs but must not recompute every frame: the change index of
// the last step, IOPTEs in IOVA order, misses per step, the cross-highlight of the selection and
// the inspected frame. Every fact in it comes from the Engine's records and query layer.

import Engine

final class DerivedCache {
    private var generation = -1
    private(set) var changes = ChangeIndex(frames: 0)
    private var sortedIOPTEs: [Int: [IOPTE]] = [:]
    private var missHistory: [Int: [Int]] = [:]
    private var troubleByStep: [Int: String]?
    private var troubleList: [Int]?
    private var highlightKey: (generation: Int, selection: Selection?)?
    private(set) var highlight = Highlight(frames: 0)
    private var inspected: FrameInfo?
    /// pid → process index, for colouring frames by owner.
    private(set) var processByPid: [Int32: Int] = [:]

    func refresh(_ session: Session) {
        guard session.generation != generation else { return }
        generation = session.generation
        changes = ChangeIndex(record: session.lastRecord, state: session.state)
        sortedIOPTEs = [:]
        missHistory = [:]
        troubleByStep = nil
        troubleList = nil
        inspected = nil
        processByPid = [:]
        for (i, p) in session.state.processes.enumerated() { processByPid[p.meta.pid] = i }
    }

    func ioptes(_ session: Session, device d: Int) -> [IOPTE] {
        refresh(session)
        if let s = sortedIOPTEs[d] { return s }
        let s = session.state.devices[d].sortedIOPTEs
        sortedIOPTEs[d] = s
        return s
    }

    func highlight(_ session: Session, _ selection: Selection?) -> Highlight {
        refresh(session)
        if let k = highlightKey, k.generation == generation, k.selection == selection { return highlight }
        highlight = Highlight(selection: selection, state: session.state)
        highlightKey = (generation, selection)
        return highlight
    }

    /// Frame `pfn` with every mapper (a scan of the page tables, so once per step and frame).
    func frameInfo(_ session: Session, _ pfn: Int) -> FrameInfo {
        refresh(session)
        if let f = inspected, f.pfn == pfn { return f }
        let f = session.state.frame(pfn)
        inspected = f
        return f
    }

    /// The steps known to have gone wrong (run so far, stepped back over included), in order.
    func troubleSteps(_ session: Session) -> [Int] {
        refresh(session)
        if let t = troubleList { return t }
        let t = session.troubleSteps
        troubleList = t
        return t
    }

    /// IOTLB misses of device `d` in each step so far, oldest first.
    func misses(_ session: Session, device d: Int) -> [Int] {
        refresh(session)
        if let m = missHistory[d] { return m }
        let out = Self.perStep(session, device: d) { $0.misses }
        missHistory[d] = out
        return out
    }

    /// Device trouble per step (IOMMU faults, DMA hazards), for the log's marks.
    func trouble(_ session: Session) -> [Int: String] {
        refresh(session)
        if let t = troubleByStep { return t }
        var out: [Int: String] = [:]
        for d in session.state.devices.indices {
            let faults = Self.perStep(session, device: d) { $0.faults }
            let hazards = Self.perStep(session, device: d) { $0.hazards }
            for i in faults.indices {
                var words: [String] = []
                if faults[i] > 0 { words.append("IOMMU fault") }
                if hazards[i] > 0 { words.append("hazard") }
                if !words.isEmpty { out[i + 1] = ([out[i + 1]].compactMap { $0 } + words).joined(separator: ", ") }
            }
        }
        for r in session.records where !r.hazards.isEmpty && out[r.step]?.contains("hazard") != true {
            out[r.step] = ([out[r.step]].compactMap { $0 } + ["hazard"]).joined(separator: ", ")
        }
        troubleByStep = out
        return out
    }

    /// A device counter's growth in each step, as each record says it.
    private static func perStep(_ session: Session, device d: Int, _ counter: (DeviceStats) -> Int) -> [Int] {
        session.records.map { r in r.deviceDeltas[d].map(counter) ?? 0 }
    }
}
