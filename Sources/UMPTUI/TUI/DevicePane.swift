// DEVICE: per device, its IOMMU format and page sizes, the IOTLB (entries in replacement order,
// hit rate, stall time, a sparkline of misses per step) and its IOPTEs as a list with page sizes.

import Engine

struct DevicePanel: Panel {
    /// The selected IOPTE: the device shown (the active tab) and an index into its IOPTEs in IOVA order.
    var cursor = (device: 0, index: 0)
    var scroll = 0
    /// Where the cursor was in each device not shown, so a tab comes back where it was left.
    var remembered: [Int: Int] = [:]

    func layout(_ ctx: PanelContext) -> DeviceLayout {
        DeviceLayout(iopteCount: ctx.state.devices[safe: cursor.device]?.ioptes.count ?? 0)
    }

    func selection(_ ctx: PanelContext) -> Selection? {
        let devices = ctx.state.devices
        guard devices.indices.contains(cursor.device) else { return nil }
        let list = ctx.cache.ioptes(ctx.session, device: cursor.device)
        guard list.indices.contains(cursor.index) else { return nil }
        return .iopte(device: cursor.device, iova: list[cursor.index].iova)
    }

    /// The tab row: every device by name, the one shown in brackets when there are several.
    func titleDetail(_ ctx: PanelContext) -> String {
        let names = ctx.state.devices.map(\.name)
        guard names.count > 1 else { return names.first ?? "" }
        return names.enumerated().map { $0.offset == cursor.device ? "[\($0.element)]" : $0.element }.joined(separator: " ")
    }

    /// Shows device `d` (its tab), the cursor where it was left in it, or at `index`.
    mutating func show(device d: Int, index: Int? = nil) {
        if d != cursor.device { remembered[cursor.device] = cursor.index }
        cursor = (d, index ?? remembered[d] ?? 0)
    }

    // MARK: Keys and the mouse

    mutating func zoom(in: Bool, _ ctx: PanelContext) -> HandleResult {
        .say("the device pane lists one IOPTE per line; nothing to zoom")
    }

    /// Up and Down move through the shown device's IOPTEs; Left and Right go to the previous or
    /// next device's tab.
    mutating func move(_ action: Action, _ ctx: PanelContext) {
        let devices = ctx.state.devices
        guard !devices.isEmpty else { return }
        let d = min(cursor.device, devices.count - 1)
        switch action {
        case .left, .right:
            let next = d + (action == .left ? -1 : 1)
            if devices.indices.contains(next) { show(device: next) }
            return
        default: break
        }
        let page = max(1, ctx.body.height - DeviceLayout.headerRows - 1)
        let delta = [Action.up: -1, .down: 1, .pageUp: -page, .pageDown: page][action] ?? 0
        cursor = (d, max(0, min(cursor.index + delta, devices[d].ioptes.count - 1)))
    }

    /// A click on an IOPTE selects it; on a name in the title row, shows that device.
    mutating func click(x: Int, y: Int, _ ctx: PanelContext) -> HandleResult {
        if y == ctx.body.y - 1 {
            guard let d = tab(at: x, ctx) else { return .redraw }
            show(device: d)
            return .redraw
        }
        let l = layout(ctx)
        guard y >= ctx.body.y, let item = l.item(at: scroll + (y - ctx.body.y)), let index = item.index else { return .redraw }
        cursor.index = index
        return .redraw
    }

    /// The device whose name is at column `x` of the title row (as Screen draws it: the pane's
    /// title, a space, then the tab row).
    func tab(at x: Int, _ ctx: PanelContext) -> Int? {
        var cx = ctx.body.x + 1 + Pane.device.title.count + 1
        for (d, dev) in ctx.state.devices.enumerated() {
            let w = dev.name.count + (ctx.state.devices.count > 1 && d == cursor.device ? 2 : 0)
            if x >= cx && x < cx + w { return d }
            cx += w + 1
        }
        return nil
    }

    mutating func prepare(_ ctx: PanelContext) {
        let devices = ctx.state.devices
        guard !devices.isEmpty else {
            cursor = (0, 0)
            scroll = 0
            return
        }
        let d = min(cursor.device, devices.count - 1)
        cursor = (d, max(0, min(cursor.index, devices[d].ioptes.count - 1)))
        let l = layout(ctx)
        let row = l.row(index: cursor.index)
        // The cursor's row always shows; near the top of the list, the device's header too.
        var s = scrollToShow(scroll, row: row, rows: ctx.body.height, total: l.totalRows, context: 0)
        if row < ctx.body.height { s = 0 }
        scroll = s
    }

    // MARK: Drawing

    func draw(_ ctx: DrawContext, _ c: inout Canvas) {
        let r = ctx.body
        let devices = ctx.state.devices
        if devices.isEmpty {
            c.text(r.x + 1, r.y, "no devices", .dim, limit: r.width - 1)
            let hint = wrapText("declare one with `device NAME iommu=vtd` (or arm-lpae, arm-v7s, amd-v1, sva), then `NAME map PROC.BUF`", width: r.width - 2)
            for (i, line) in hint.prefix(max(0, r.height - 2)).enumerated() { c.text(r.x + 1, r.y + 2 + i, line, .dim) }
            return
        }
        let d = min(cursor.device, devices.count - 1)
        let l = layout(ctx.panel)
        let cursorRow = l.row(index: cursor.index)
        let list = ctx.panel.cache.ioptes(ctx.session, device: d)
        let w = ScrollBar.textWidth(r, total: l.totalRows)
        let columns = IOPTEColumns(list: list, frames: ctx.state.phys.frameCount, width: w - 1)
        for i in 0..<r.height {
            let row = scroll + i
            guard let item = l.item(at: row) else { break }
            let y = r.y + i
            if let h = item.header {
                drawHeaderLine(ctx, &c, Rect(x: r.x, y: r.y, width: w, height: r.height), y, d, h, columns)
            } else if let idx = item.index {
                let e = list[idx]
                let sel = ctx.showsCursor && row == cursorRow
                let rel = ctx.highlight.ioptes[d]?.contains(e.iova) == true
                let chg = ctx.changes.ioptes[d]?.contains(e.iova) == true
                let mark = ctx.mark(selected: sel, related: rel, changed: chg)
                c.text(r.x + 1, y, columns.row(e), e.size > pageSize ? .iopteLarge : .iopteSmall, limit: w - 1, mark: mark)
            } else if devices[d].ioptes.isEmpty {
                c.text(r.x + 1, y, fitFirst(["no IOPTEs: nothing mapped yet", "nothing mapped yet", "none yet"], w - 1), .dim, limit: w - 1)
            }
        }
        ScrollBar.draw(&c, r, scroll: scroll, total: l.totalRows, ctx.glyphs)
    }

    private func drawHeaderLine(_ ctx: DrawContext, _ c: inout Canvas, _ r: Rect, _ y: Int, _ d: Int, _ h: Int, _ columns: IOPTEColumns) {
        let dev = ctx.state.devices[d]
        let g = ctx.glyphs
        let w = r.width - 1
        let x = r.x + 1
        switch h {
        case 0:
            let changed = ctx.changes.devices.contains(d)
            let nx = c.text(r.x, y, dev.name, .section, mark: changed ? .changed : .none)
            let sizes = formatPageSizesCompact(dev.pgsizeBitmap)
            let text = fitFirst([" \(g.dot) \(dev.info.format.rawValue) \(g.dot) \(sizes)", " \(dev.info.format.rawValue) \(sizes)", " \(sizes)"], r.maxX - nx)
            c.text(nx, y, text, .dim, limit: r.maxX - nx, ellipsis: g.ellipsis)
        case 1:
            let s = dev.stats
            let tlb = dev.iotlb
            let hit = s.accesses > 0 ? percentText(Double(s.hits) * 100 / Double(max(1, s.hits + s.misses))) + "%" : "-"
            let fill = "\(tlb.entryCount)/\(tlb.capacity)"
            let policy = tlb.policy.rawValue
            var trouble: [String] = []
            if s.faults > 0 { trouble.append(plural(s.faults, "fault")) }
            if s.hazards > 0 { trouble.append(plural(s.hazards, "hazard")) }
            // Abbreviated in a fixed order: separators, the row's name, the policy, the fill, then
            // the word "hit"; faults and hazards are the last to go.
            let t1 = trouble.isEmpty ? "" : " \(g.dot) " + trouble.joined(separator: " \(g.dot) ")
            let t2 = trouble.isEmpty ? "" : " " + trouble.joined(separator: " ")
            let text = fitFirst([
                "IOTLB \(fill) \(policy) \(g.dot) hit \(hit)" + t1,
                "IOTLB \(fill) \(policy) hit \(hit)" + t2,
                "\(fill) \(policy) hit \(hit)" + t2,
                "\(fill) hit \(hit)" + t2,
                "hit \(hit)" + t2,
                hit + t2,
            ], w)
            c.text(x, y, text, s.faults > 0 || s.hazards > 0 ? .warning : .normal, limit: w, ellipsis: g.ellipsis)
        case 2:
            let misses = ctx.panel.cache.misses(ctx.session, device: d)
            let stall = formatNsCompact(dev.stats.stallNs)
            // The sparkline needs a few cells to say anything; its label gives way first.
            let spark = min(8, max(1, misses.count))
            let label = fitFirst(["stall \(stall) \(g.dot) misses/step ", "stall \(stall) misses ", "stall \(stall) "], w - spark)
            let nx = c.text(x, y, label, .dim, limit: w)
            let room = max(0, r.maxX - nx)
            let shown = misses.suffix(room)
            let top = max(1, shown.max() ?? 1)
            var cx = nx
            for m in shown {
                let level = m == 0 ? 0 : max(1, min(g.spark.count - 1, m * (g.spark.count - 1) / top))
                c.put(cx, y, m == 0 ? " " : g.spark[level], .spark)
                cx += 1
            }
            if shown.isEmpty { c.text(nx, y, "none yet", .dim, limit: room) }
        case 3:
            // Entries in replacement order: the next victim first; "+N" counts those past the edge.
            let entries = dev.iotlb.replacementOrder
            var cx = c.text(x, y, dev.iotlb.policy == .random ? "IOTLB " : "victim\(g.arrow) ", .dim, limit: w)
            if entries.isEmpty { c.text(cx, y, "empty", .dim, limit: r.maxX - cx) }
            for (i, e) in entries.enumerated() {
                let s = String(e.iova >> 12, radix: 16) + "/" + formatSizeCompact(e.size)
                let left = entries.count - i - 1
                let more = left > 0 ? " +\(left)".count : 0
                if cx + s.count + more > r.maxX {
                    c.text(cx, y, "+\(entries.count - i)", .dim, limit: r.maxX - cx)
                    break
                }
                cx = c.text(cx, y, s, e.stale ? .iotlbStale : .iotlbEntry) + 1
            }
        case 4:
            // The I/O page table by level: how many leaves of each size, at which walk depth.
            let bySize = ctx.state.ioptesBySize(d)
            let tables = dev.tablePages.count
            let leaves = bySize.map { "\($0.count)\(g.times)\(formatSizeCompact($0.size))" }
            let withLevels = bySize.map { "\($0.count)\(g.times)\(formatSizeCompact($0.size)) L\($0.levels)" }
            let none = bySize.isEmpty ? ["no IOPTEs"] : []
            let text = fitFirst([
                (none + withLevels + [plural(tables, "table page")]).joined(separator: " \(g.dot) "),
                (none + withLevels + [plural(tables, "table page")]).joined(separator: " "),
                (none + leaves + [plural(tables, "table page")]).joined(separator: " "),
                (none + leaves + [plural(tables, "table")]).joined(separator: " "),
                (none + leaves).joined(separator: " "),
            ], w)
            c.text(x, y, text, .dim, limit: w, ellipsis: g.ellipsis)
        default:
            c.text(x, y, columns.head, .dim, limit: w)
        }
    }
}

/// The IOPTE list's columns, as wide as the longest IOVA and the highest physical address need,
/// with 0x when there is room: the head and each row line up and never cut the size.
struct IOPTEColumns {
    let iovaWidth: Int
    let paWidth: Int
    let prefix: Bool
    let access: Bool
    /// "size", or "sz" where even the narrowest columns leave no room for the word.
    let sizeHead: String

    init(list: [IOPTE], frames: Int, width: Int) {
        let iovaDigits = String(list.last.map { $0.iova } ?? 0, radix: 16).count
        let paDigits = String(UInt64(max(1, frames)) << pageShift - 1, radix: 16).count
        // IOVA PA size rw, with 0x; then without the access; then without 0x.
        func total(_ prefix: Bool, _ access: Bool) -> Int { (prefix ? 4 : 0) + iovaDigits + paDigits + 2 + 4 + (access ? 3 : 0) }
        let choice = [(true, true), (false, true), (false, false)].first { total($0.0, $0.1) <= width } ?? (false, false)
        prefix = choice.0
        access = choice.1
        sizeHead = total(choice.0, choice.1) <= width ? "size" : "sz"
        iovaWidth = iovaDigits + (prefix ? 2 : 0) + 1
        paWidth = paDigits + (prefix ? 2 : 0) + 1
    }

    private func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s + " " : s + String(repeating: " ", count: w - s.count) }

    var head: String { pad("IOVA", iovaWidth) + pad("PA", paWidth) + sizeHead }

    func row(_ e: IOPTE) -> String {
        let iova = prefix ? hex(e.iova) : String(e.iova, radix: 16)
        let pa = prefix ? hex(e.pa) : String(e.pa, radix: 16)
        return pad(iova, iovaWidth) + pad(pa, paWidth) + (access ? pad(formatSizeCompact(e.size), 4) + (e.writable ? "rw" : "r-") : formatSizeCompact(e.size))
    }
}

/// The first of `candidates` (longest first) that fits in `width` columns, or the last one.
func fitFirst(_ candidates: [String], _ width: Int) -> String {
    candidates.first { $0.count <= width } ?? candidates.last ?? ""
}
