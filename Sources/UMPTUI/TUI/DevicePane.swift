// DEVICE: per device, its IOMMU format and page sizes, the IOTLB (entries in replacement order,
// hit rate, stall time, a sparkline of misses per step) and its IOPTEs as a list with page sizes.

import Engine

struct DevicePanel: Panel {
    /// The selected IOPTE: a device and an index into its IOPTEs in IOVA order.
    var cursor = (device: 0, index: 0)
    var scroll = 0

    func layout(_ ctx: PanelContext) -> DeviceLayout {
        DeviceLayout(iopteCounts: ctx.state.devices.map { $0.ioptes.count })
    }

    func selection(_ ctx: PanelContext) -> Selection? {
        let devices = ctx.state.devices
        guard devices.indices.contains(cursor.device) else { return nil }
        let list = ctx.cache.ioptes(ctx.session, device: cursor.device)
        guard list.indices.contains(cursor.index) else { return nil }
        return .iopte(device: cursor.device, iova: list[cursor.index].iova)
    }

    func titleDetail(_ ctx: PanelContext) -> String {
        ctx.state.devices.map(\.name).joined(separator: " ")
    }

    // MARK: Keys and the mouse

    mutating func zoom(in: Bool, _ ctx: PanelContext) -> HandleResult {
        .say("the device pane lists one IOPTE per line; nothing to zoom")
    }

    mutating func move(_ action: Action, _ ctx: PanelContext) {
        let devices = ctx.state.devices
        guard !devices.isEmpty else { return }
        var d = min(cursor.device, devices.count - 1)
        var i = cursor.index
        let delta: Int
        switch action {
        case .up, .left: delta = -1
        case .down, .right: delta = 1
        case .pageUp: delta = -max(1, ctx.body.height - 2)
        case .pageDown: delta = max(1, ctx.body.height - 2)
        default: delta = 0
        }
        i += delta
        while i < 0 && d > 0 { d -= 1; i += max(1, devices[d].ioptes.count) }
        while i >= max(1, devices[d].ioptes.count) && d < devices.count - 1 { i -= max(1, devices[d].ioptes.count); d += 1 }
        i = max(0, min(i, max(0, devices[d].ioptes.count - 1)))
        cursor = (d, i)
    }

    mutating func click(x: Int, y: Int, _ ctx: PanelContext) -> HandleResult {
        let l = layout(ctx)
        guard y >= ctx.body.y, let item = l.item(at: scroll + (y - ctx.body.y)), let index = item.index else { return .redraw }
        cursor = (item.device, index)
        return .redraw
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
        let row = l.row(device: d, index: cursor.index)
        // The cursor's row always shows; near the top of a device's list, its header too.
        var s = scrollToShow(scroll, row: row, rows: ctx.body.height, total: l.totalRows, context: 0)
        if cursor.index < 3, row - l.starts[d] < ctx.body.height { s = min(s, l.starts[d]) }
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
        let l = layout(ctx.panel)
        let cursorRow = l.row(device: min(cursor.device, devices.count - 1), index: cursor.index)
        var lists: [Int: [IOPTE]] = [:]
        for i in 0..<r.height {
            let row = scroll + i
            guard row < l.totalRows, let item = l.item(at: row) else { break }
            let y = r.y + i
            let d = item.device
            if let h = item.header {
                drawHeaderLine(ctx, &c, r, y, d, h)
            } else if let idx = item.index {
                let list = lists[d] ?? ctx.panel.cache.ioptes(ctx.session, device: d)
                lists[d] = list
                let e = list[idx]
                let sel = ctx.showsCursor && row == cursorRow
                let rel = ctx.highlight.ioptes[d]?.contains(e.iova) == true
                let chg = ctx.changes.ioptes[d]?.contains(e.iova) == true
                let mark = ctx.mark(selected: sel, related: rel, changed: chg)
                let wide = r.width >= 30
                let text = wide ? pad(hex(e.iova), 13) + pad(hex(e.pa), 12) + pad(formatSizeCompact(e.size), 5) + (e.writable ? "rw" : "r-")
                                : pad(String(e.iova, radix: 16), 10) + pad(String(e.pa, radix: 16), 9) + formatSizeCompact(e.size)
                c.text(r.x + 1, y, text, e.size > pageSize ? .iopteLarge : .iopteSmall, limit: r.width - 1, mark: mark)
            } else if devices[d].ioptes.isEmpty && row == l.starts[d] + DeviceLayout.headerRows {
                c.text(r.x + 1, y, "no IOPTEs: nothing mapped yet", .dim, limit: r.width - 1)
            }
        }
    }

    private func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s + " " : s + String(repeating: " ", count: w - s.count) }

    private func drawHeaderLine(_ ctx: DrawContext, _ c: inout Canvas, _ r: Rect, _ y: Int, _ d: Int, _ h: Int) {
        let dev = ctx.state.devices[d]
        let g = ctx.glyphs
        let w = r.width - 1
        let x = r.x + 1
        switch h {
        case 0:
            let changed = ctx.changes.devices.contains(d)
            let nx = c.text(r.x, y, dev.name, .section, mark: changed ? .changed : .none)
            c.text(nx, y, " \(g.dot) \(dev.info.format.rawValue) \(g.dot) \(formatPageSizesCompact(dev.pgsizeBitmap))", .dim, limit: r.maxX - nx, ellipsis: g.ellipsis)
        case 1:
            let s = dev.stats
            let tlb = dev.iotlb
            let hit = s.accesses > 0 ? percentText(Double(s.hits) * 100 / Double(max(1, s.hits + s.misses))) + "%" : "-"
            var text = "IOTLB \(tlb.entryCount)/\(tlb.capacity) \(tlb.policy.rawValue) \(g.dot) hit \(hit)"
            if s.faults > 0 { text += " \(g.dot) \(s.faults) faults" }
            if s.hazards > 0 { text += " \(g.dot) \(s.hazards) hazards" }
            c.text(x, y, text, s.faults > 0 || s.hazards > 0 ? .warning : .normal, limit: w, ellipsis: g.ellipsis)
        case 2:
            let misses = ctx.panel.cache.misses(ctx.session, device: d)
            let label = "stall \(formatNsCompact(dev.stats.stallNs)) \(g.dot) misses/step "
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
            // Entries in replacement order: the next victim first.
            let entries = dev.iotlb.replacementOrder
            var cx = c.text(x, y, dev.iotlb.policy == .random ? "IOTLB " : "victim\(g.arrow) ", .dim, limit: w)
            if entries.isEmpty { c.text(cx, y, "empty", .dim, limit: r.maxX - cx) }
            for e in entries {
                let s = String(e.iova >> 12, radix: 16) + "/" + formatSizeCompact(e.size)
                if cx + s.count + 1 > r.maxX { c.put(r.maxX - 1, y, g.ellipsis, .dim); break }
                cx = c.text(cx, y, s, e.stale ? .iotlbStale : .iotlbEntry) + 1
            }
        case 4:
            // The I/O page table by level: how many leaves of each size, at which walk depth.
            var parts = ctx.state.ioptesBySize(d).map { "\($0.count)\(g.times)\(formatSizeCompact($0.size)) L\($0.levels)" }
            if parts.isEmpty { parts = ["no IOPTEs"] }
            parts.append(plural(dev.tablePages.count, "table page"))
            c.text(x, y, parts.joined(separator: " \(g.dot) "), .dim, limit: w, ellipsis: g.ellipsis)
        default:
            c.text(x, y, r.width >= 30 ? "IOVA         PA          size" : "IOVA      PA       size", .dim, limit: w)
        }
    }
}
