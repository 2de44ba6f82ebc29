// Where everything goes on a screen of a given size, and the row structure of each pane. A panel
// draws, moves its cursor and hit-tests its clicks through the same layout, so they always agree.

import Engine

enum Pane: Int, CaseIterable, Sendable {
    case process, physical, device, log

    var title: String {
        switch self {
        case .process: "PROCESS"
        case .physical: "PHYSICAL"
        case .device: "DEVICE"
        case .log: "LOG"
        }
    }
}

struct ScreenLayout: Equatable {
    static let minWidth = 80
    static let minHeight = 24

    let width: Int
    let height: Int
    /// One side of compare: sized from part of a screen that was big enough.
    let panesOnly: Bool
    var tooSmall: Bool { !panesOnly && (width < ScreenLayout.minWidth || height < ScreenLayout.minHeight) }

    /// Each pane including its title row.
    let process: Rect
    let physical: Rect
    let device: Rect
    /// The narration: a title row, then the text.
    let narration: Rect
    /// The log: a title row, then entries.
    let log: Rect

    /// `panesOnly`: the three panes below a title row and nothing else (one side of compare).
    init(width: Int, height: Int, panesOnly: Bool = false) {
        self.width = width
        self.height = height
        self.panesOnly = panesOnly
        // One side of compare: only the title row above the panes.
        let bottom = panesOnly ? -1 : max(7, min(22, height * 3 / 10))
        let paneTop = 1
        let paneHeight = max(2, height - 2 - bottom)
        let avail = max(0, width - 2)
        let pw = avail * 36 / 100
        let dw = avail * 30 / 100
        let fw = avail - pw - dw
        process = Rect(x: 0, y: paneTop, width: pw, height: paneHeight)
        physical = Rect(x: pw + 1, y: paneTop, width: fw, height: paneHeight)
        device = Rect(x: pw + 1 + fw + 1, y: paneTop, width: dw, height: paneHeight)
        // On a short screen the narration gets the rows and the log keeps its newest entry.
        let narrationRows = panesOnly ? 0 : bottom <= 8 ? bottom - 3 : min(7, max(3, (bottom - 2) / 2))
        narration = Rect(x: 0, y: paneTop + paneHeight, width: width, height: 1 + narrationRows)
        log = Rect(x: 0, y: narration.maxY, width: width, height: max(2, height - 1 - narration.maxY))
    }

    func rect(_ pane: Pane) -> Rect {
        switch pane {
        case .process: process
        case .physical: physical
        case .device: device
        case .log: log
        }
    }

    /// A pane's rows below its title.
    func body(_ pane: Pane) -> Rect {
        let r = rect(pane)
        return Rect(x: r.x, y: r.y + 1, width: r.width, height: max(0, r.height - 1))
    }
}

// MARK: - The process pane

/// One row of the process pane.
enum ProcessRow: Equatable {
    /// A process's title: name, pid, rss.
    case process(Int)
    /// The program image's small VMAs, folded into one row.
    case image(proc: Int, first: Int, count: Int)
    case vma(proc: Int, vma: Int)
    /// Cells of `pagesPerCell` pages each, from `vpn`, up to `endVpn`.
    case pages(proc: Int, vma: Int, vpn: UInt64, pagesPerCell: UInt64, cells: Int, endVpn: UInt64)
    case text(String)
}

struct ProcessLayout {
    static let indent = 2
    let rows: [ProcessRow]
    /// Pages per cell of each VMA, keyed by process and VMA start.
    let scale: [Int: [UInt64: UInt64]]

    /// `zoom` nil fits each VMA into at most `maxRows` rows of glyphs; otherwise every VMA uses it.
    init(state: EngineState, width: Int, zoom: UInt64?, maxRows: Int) {
        var rows: [ProcessRow] = []
        var scale: [Int: [UInt64: UInt64]] = [:]
        let cellsPerRow = max(1, width - ProcessLayout.indent)
        for (p, proc) in state.processes.enumerated() {
            rows.append(.process(p))
            guard proc.meta.alive else { continue }
            let vmas = proc.meta.vmas
            var i = 0
            while i < vmas.count {
                if vmas[i].kind == .image {
                    var j = i
                    while j < vmas.count && vmas[j].kind == .image { j += 1 }
                    rows.append(.image(proc: p, first: i, count: j - i))
                    i = j
                    continue
                }
                let v = vmas[i]
                rows.append(.vma(proc: p, vma: i))
                let startVpn = v.start >> pageShift
                let endVpn = v.end >> pageShift
                let pages = endVpn - startVpn
                var k: UInt64 = zoom ?? 1
                if zoom == nil {
                    while (pages + k - 1) / k > UInt64(cellsPerRow * maxRows) { k <<= 1 }
                }
                scale[p, default: [:]][v.start] = k
                let cells = Int((pages + k - 1) / k)
                var c = 0
                while c < cells {
                    let n = min(cellsPerRow, cells - c)
                    rows.append(.pages(proc: p, vma: i, vpn: startVpn + UInt64(c) * k, pagesPerCell: k, cells: n, endVpn: endVpn))
                    c += n
                }
                i += 1
            }
        }
        if rows.isEmpty { rows.append(.text("no process yet")) }
        self.rows = rows
        self.scale = scale
    }

    /// The row and column of the cell holding page `vpn` of process `proc`.
    func locate(proc: Int, vpn: UInt64) -> (row: Int, col: Int)? {
        for (r, row) in rows.enumerated() {
            if case let .pages(p, _, start, k, cells, _) = row, p == proc, vpn >= start, vpn < start + UInt64(cells) * k {
                return (r, Int((vpn - start) / k))
            }
        }
        return nil
    }

    /// The pages a cell covers.
    func cell(row: Int, col: Int) -> (proc: Int, range: Range<UInt64>)? {
        guard rows.indices.contains(row), case let .pages(p, _, start, k, cells, end) = rows[row], col >= 0, col < cells else { return nil }
        let lo = start + UInt64(col) * k
        return (p, lo..<min(end, lo + k))
    }

    var firstPagesRow: Int? { rows.firstIndex { if case .pages = $0 { true } else { false } } }

    func pagesRow(from row: Int, step: Int) -> Int? {
        var r = row + step
        while rows.indices.contains(r) {
            if case .pages = rows[r] { return r }
            r += step
        }
        return nil
    }

    func cellCount(_ row: Int) -> Int {
        if case let .pages(_, _, _, _, cells, _) = rows[row] { return cells }
        return 0
    }
}

// MARK: - The physical pane

struct PhysicalLayout {
    let frames: Int
    let framesPerCell: Int
    let gutter: Int
    let columns: Int
    let gridRows: Int
    /// Rows of the body: an information row, the grid, the legend.
    static let infoRows = 1

    init(frames: Int, width: Int, gridHeight: Int, zoom: Int?) {
        self.frames = frames
        // Rows are labelled by their first pfn, in hex with 0x as pfns are everywhere.
        let digits = String(max(1, frames - 1), radix: 16).count
        gutter = width >= 24 ? digits + 3 : 0
        columns = max(1, width - gutter)
        var f = 1
        while (frames + f - 1) / f > columns * max(1, gridHeight) { f <<= 1 }
        let fit = f
        framesPerCell = zoom.map { max(1, min($0, fit)) } ?? fit
        let cells = (frames + framesPerCell - 1) / framesPerCell
        gridRows = (cells + columns - 1) / columns
    }

    /// The frames a cell covers.
    func cell(row: Int, col: Int) -> Range<Int>? {
        let first = (row * columns + col) * framesPerCell
        guard col >= 0, col < columns, row >= 0, first < frames else { return nil }
        return first..<min(frames, first + framesPerCell)
    }

    func locate(_ pfn: Int) -> (row: Int, col: Int) {
        let c = max(0, min(pfn, frames - 1)) / framesPerCell
        return (c / columns, c % columns)
    }
}

// MARK: - The device pane

struct DeviceLayout {
    /// Rows above the IOPTE list: title, IOTLB counters, sparkline, IOTLB entries, IOPTEs by page
    /// size (the levels they sit at), column heads.
    static let headerRows = 6
    /// How many IOPTE rows follow the header (at least one: "no IOPTEs" needs a row).
    let count: Int
    let totalRows: Int

    /// The layout of the one device the pane shows (the others wait behind their tabs).
    init(iopteCount: Int) {
        count = iopteCount
        totalRows = DeviceLayout.headerRows + max(1, iopteCount)
    }

    /// The row of IOPTE `index`.
    func row(index: Int) -> Int { DeviceLayout.headerRows + index }

    /// What row `r` shows: a header line or an IOPTE index (neither: the empty list's row).
    func item(at r: Int) -> (header: Int?, index: Int?)? {
        guard r >= 0, r < totalRows else { return nil }
        if r < DeviceLayout.headerRows { return (r, nil) }
        let i = r - DeviceLayout.headerRows
        return (nil, i < count ? i : nil)
    }
}
