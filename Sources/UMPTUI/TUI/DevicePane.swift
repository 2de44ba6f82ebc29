// DEVICE: per device, its IOMMU format and page sizes, the IOTLB (entries in replacement order,
// hit rate, stall time, a sparkline of misses per step) and its IOPTEs as a list with page sizes.

import Engine

enum DevicePane {
    static func titleDetail(_ ctx: DrawContext) -> String {
        ctx.state.devices.map(\.name).joined(separator: " ")
    }

    static func draw(_ ctx: DrawContext, _ c: inout Canvas, _ r: Rect) {
        let app = ctx.app
        let devices = ctx.state.devices
        if devices.isEmpty {
            c.text(r.x + 1, r.y, "no devices", .dim, limit: r.width - 1)
            let hint = wrapText("declare one with `device NAME iommu=vtd` (or arm-lpae, arm-v7s, amd-v1, sva), then `NAME map PROC.BUF`", width: r.width - 2)
            for (i, line) in hint.prefix(max(0, r.height - 2)).enumerated() { c.text(r.x + 1, r.y + 2 + i, line, .dim) }
            return
        }
        let l = app.deviceLayout()
        let showCursor = app.selectionPane == .device
        let cursorRow = l.row(device: min(app.devCursor.device, devices.count - 1), index: app.devCursor.index)
        for i in 0..<r.height {
            let row = app.devScroll + i
            guard row < l.totalRows, let item = l.item(at: row) else { break }
            let y = r.y + i
            let d = item.device
            if let h = item.header {
                drawHeaderLine(ctx, &c, r, y, d, h)
            } else if let idx = item.index {
                let list = app.cache.ioptes(ctx.session, device: d)
                let e = list[idx]
                let sel = showCursor && row == cursorRow
                let rel = ctx.highlight.ioptes[d]?.contains(e.iova) == true
                let chg = ctx.changes.ioptes[d]?.contains(e.iova) == true
                let mark = ctx.mark(selected: sel, related: rel, changed: chg)
                let wide = r.width >= 30
                let text = wide ? pad(hex(e.iova), 13) + pad(hex(e.pa), 12) + pad(shortSize(e.size), 5) + (e.writable ? "rw" : "r-")
                                : pad(String(e.iova, radix: 16), 10) + pad(String(e.pa, radix: 16), 9) + shortSize(e.size)
                c.text(r.x + 1, y, text, e.size > pageSize ? .iopteLarge : .iopteSmall, limit: r.width - 1, mark: mark)
                c.hits.append(Hit(rect: Rect(x: r.x, y: y, width: r.width, height: 1), target: .iopte(device: d, index: idx)))
            } else if devices[d].ioptes.isEmpty && row == l.starts[d] + DeviceLayout.headerRows {
                c.text(r.x + 1, y, "no IOPTEs: nothing mapped yet", .dim, limit: r.width - 1)
            }
        }
    }

    private static func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s + " " : s + String(repeating: " ", count: w - s.count) }

    private static func drawHeaderLine(_ ctx: DrawContext, _ c: inout Canvas, _ r: Rect, _ y: Int, _ d: Int, _ h: Int) {
        let dev = ctx.state.devices[d]
        let g = ctx.glyphs
        let w = r.width - 1
        let x = r.x + 1
        switch h {
        case 0:
            let sizes = pageSizes(dev.pgsizeBitmap)
            let changed = ctx.changes.devices.contains(d)
            let nx = c.text(r.x, y, dev.name, .section, mark: changed ? .changed : .none)
            c.text(nx, y, " \(g.dot) \(dev.info.format.rawValue) \(g.dot) \(sizes)", .dim, limit: r.maxX - nx, ellipsis: g.ellipsis)
        case 1:
            let s = dev.stats
            let tlb = dev.iotlb
            let hit = s.accesses > 0 ? oneDecimal(Double(s.hits) * 100 / Double(max(1, s.hits + s.misses))) + "%" : "-"
            var text = "IOTLB \(tlb.entryCount)/\(tlb.capacity) \(tlb.policy.rawValue) \(g.dot) hit \(hit)"
            if s.faults > 0 { text += " \(g.dot) \(s.faults) faults" }
            if s.hazards > 0 { text += " \(g.dot) \(s.hazards) hazards" }
            c.text(x, y, text, s.faults > 0 || s.hazards > 0 ? .warning : .normal, limit: w, ellipsis: g.ellipsis)
        case 2:
            let misses = ctx.app.cache.misses(ctx.session, device: d)
            let label = "stall \(stall(dev.stats.stallNs)) \(g.dot) misses/step "
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
            let entries = dev.iotlb.sets.flatMap { $0 }.sorted { $0.stamp < $1.stamp }
            var cx = c.text(x, y, dev.iotlb.policy == .random ? "IOTLB " : "victim\(g.arrow) ", .dim, limit: w)
            if entries.isEmpty { c.text(cx, y, "empty", .dim, limit: r.maxX - cx) }
            for e in entries {
                let s = String(e.iova >> 12, radix: 16) + "/" + shortSize(e.size)
                if cx + s.count + 1 > r.maxX { c.put(r.maxX - 1, y, g.ellipsis, .dim); break }
                cx = c.text(cx, y, s, e.stale ? .iotlbStale : .iotlbEntry) + 1
            }
        case 4:
            // The I/O page table by level: how many leaves of each size, at which walk depth.
            var bySize: [UInt64: Int] = [:]
            for e in dev.ioptes.values { bySize[e.size, default: 0] += 1 }
            var parts = bySize.sorted { $0.key < $1.key }.map { "\($0.value)\(g.times)\(shortSize($0.key)) L\(dev.info.walkLevels(forPageSize: $0.key))" }
            if parts.isEmpty { parts = ["no IOPTEs"] }
            parts.append("\(dev.tablePages.count) table page\(dev.tablePages.count == 1 ? "" : "s")")
            c.text(x, y, parts.joined(separator: " \(g.dot) "), .dim, limit: w, ellipsis: g.ellipsis)
        default:
            c.text(x, y, r.width >= 30 ? "IOVA         PA          size" : "IOVA      PA       size", .dim, limit: w)
        }
    }

    static func pageSizes(_ bitmap: UInt64) -> String {
        var sizes: [String] = []
        var anyCount = 0
        for bit in 12..<52 where bitmap & (1 << UInt64(bit)) != 0 {
            anyCount += 1
            if sizes.count < 5 { sizes.append(shortSize(1 << UInt64(bit))) }
        }
        if anyCount > 5 { return "4K..\(shortSize(1 << 51)) (any 2^n)" }
        return sizes.isEmpty ? "no IOMMU" : sizes.joined(separator: "|")
    }

    static func stall(_ ns: Int) -> String {
        if ns >= 1_000_000 { return oneDecimal(Double(ns) / 1e6) + "ms" }
        if ns >= 1_000 { return oneDecimal(Double(ns) / 1e3) + "us" }
        return "\(ns)ns"
    }
}

/// One decimal place, without Foundation's format machinery.
func oneDecimal(_ v: Double) -> String {
    let tenths = Int((v * 10).rounded())
    return "\(tenths / 10).\(abs(tenths % 10))"
}
