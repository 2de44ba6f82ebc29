// The panes follow the story. After a step, the DEVICE pane shows the device the step is about and
// the PROCESS pane the step's process, unless the user put that pane's cursor somewhere since the
// step before. When the selection changes, every other pane moves its cursor onto what the
// selection maps or is mapped by, so its relatives are in view wherever they are.

import Engine

/// What a step is about: the device and the process it names (or, for lines that name neither, the
/// first each of its changes touched), and the buffer it acts on.
struct StepFocus: Equatable {
    var device: Int?
    var process: Int?
    var buffer: String?

    init(statement: Statement?, changes: ChangeIndex, state: EngineState) {
        switch statement?.kind {
        case let .device(decl)?:
            device = state.deviceIndex(named: decl.name)
        case let .deviceEvent(name, event)?:
            device = state.deviceIndex(named: name)
            let ref: BufferRef? = switch event {
            case let .map(r, _, _, _), let .unmap(r), let .dma(r, _, _, _, _, _, _): r
            default: nil
            }
            if let ref {
                process = state.processIndex(named: ref.process)
                buffer = ref.buffer
            }
        case let .process(decl)?:
            process = state.processIndex(named: decl.name)
        case let .processEvent(name, event)?:
            process = state.processIndex(named: name)
            buffer = event.bufferName
        default:
            break
        }
        if device == nil {
            device = (changes.devices.union(changes.ioptes.keys)).min()
        }
        if process == nil {
            process = (changes.processes.union(changes.pages.keys)).min()
        }
    }
}

extension AppState {
    /// Before drawing: follow the step if the timeline moved, then bring the selection's relatives
    /// into the other panes.
    mutating func follow() {
        var followed = false
        if session.generation != followedGeneration {
            followedGeneration = session.generation
            followed = followStep()
            placed = []
        }
        reveal(switchTabs: !followed)
    }

    /// Marks that the user put a pane's cursor somewhere: the next step leaves that pane be.
    mutating func place(_ pane: Pane) {
        if pane != .log { placed.insert(pane) }
    }

    /// Moves the device and process panes to what the last step is about. Returns whether the
    /// device pane changed tabs.
    private mutating func followStep() -> Bool {
        guard let record = session.lastRecord else { return false }
        cache.refresh(session)
        let changes = cache.changes
        let state = session.state
        let focus = StepFocus(statement: session.timeline.steps[safe: record.step - 1]?.statement, changes: changes, state: state)
        var switched = false
        if let d = focus.device, state.devices.indices.contains(d), !placed.contains(.device) {
            let list = cache.ioptes(session, device: d)
            let changed = changes.ioptes[d].flatMap { set in list.firstIndex { set.contains($0.iova) } }
            if d != device.cursor.device {
                device.show(device: d, index: changed)
                switched = true
            } else if let changed, let here = list[safe: device.cursor.index], changes.ioptes[d]?.contains(here.iova) != true {
                device.cursor.index = changed
            }
        }
        if let p = focus.process, state.processes.indices.contains(p), !placed.contains(.process) {
            let meta = state.processes[p].meta
            let onChanged = process.cursor.map { $0.proc == p && changes.pages[p]?.contains($0.vpn) == true } ?? false
            if let first = changes.pages[p]?.first, !onChanged {
                process.cursor = (p, first)
            } else if process.cursor?.proc != p {
                let buffer = focus.buffer.flatMap { meta.buffer(named: $0) }
                if let start = buffer?.start ?? meta.vmas.first(where: { $0.kind != .image })?.start ?? meta.vmas.first?.start {
                    process.cursor = (p, start >> pageShift)
                }
            }
        }
        return switched
    }

    /// When the selection changed: the panes that do not hold it move their cursors onto its
    /// relatives (unless already on one), so the cross-highlight is on screen in each of them.
    private mutating func reveal(switchTabs: Bool) {
        let sel = selection()
        guard sel != revealedSelection else { return }
        revealedSelection = sel
        guard sel != nil else { return }
        let h = cache.highlight(session, sel)
        if selectionPane != .physical, let first = h.frames.first, !h.frames.contains(physical.cursor) {
            physical.cursor = first
        }
        if selectionPane != .process, !h.pages.isEmpty {
            let onRelated = process.cursor.map { h.pages[$0.proc]?.contains($0.vpn) == true } ?? false
            if !onRelated, let p = h.pages.keys.sorted().first(where: { h.pages[$0]?.first != nil }), let vpn = h.pages[p]?.first {
                process.cursor = (p, vpn)
            }
        }
        if selectionPane != .device, !h.ioptes.isEmpty {
            let d = device.cursor.device
            let list = session.state.devices.indices.contains(d) ? cache.ioptes(session, device: d) : []
            let here = list[safe: device.cursor.index].map { h.ioptes[d]?.contains($0.iova) == true } ?? false
            if !here {
                if let set = h.ioptes[d], let i = list.firstIndex(where: { set.contains($0.iova) }) {
                    device.cursor.index = i
                } else if switchTabs, let other = h.ioptes.keys.sorted().first, let set = h.ioptes[other] {
                    device.show(device: other, index: cache.ioptes(session, device: other).firstIndex { set.contains($0.iova) })
                }
            }
        }
    }
}
