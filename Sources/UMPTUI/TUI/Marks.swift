// The cross-highlight of the selection: what it maps or is mapped by, from the query layer.
// Built once per step or per selection, never per frame drawn.

import Engine

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
            frames = state.frames(mappedBy: p, range)
        case let .frames(range):
            frames.insert(range: range.clamped(to: 0..<state.phys.frameCount))
        case let .iopte(d, iova):
            guard let info = state.iopte(d, iova: iova) else { return }
            frames.insert(range: info.frames)
        }
        let found = state.mappers(of: frames)
        pages = found.pages
        ioptes = found.ioptes
    }
}
