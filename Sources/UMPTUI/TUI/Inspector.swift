// Enter: everything about the selection in one box. For a page: its VMA and the PTE bits; for its
// frame: use, refcount, mapcount, pin count, owner and flags; who else maps the frame, and which
// IOPTEs (with their size) point at it.

import Engine

enum Inspector {
    static func lines(_ ctx: DrawContext) -> (title: String, lines: [(String, Role)]) {
        if ctx.app.focus == .log { return stepLines(ctx) }
        let state = ctx.state
        let sel = ctx.app.selection()
        var out: [(String, Role)] = []
        var frames: [Int] = []
        var title = "INSPECT"
        switch sel {
        case nil:
            return ("INSPECT", [("nothing selected: move the cursor onto a page, a frame or an IOPTE", .dim)])
        case let .pages(p, range)?:
            let m = state.processes[p].meta
            let vpn = range.lowerBound
            let va = vpn << pageShift
            title = "PAGE \(m.name) \(hex(va))"
            if range.count > 1 { out.append(("this cell covers \(range.count) pages; the first is shown (z zooms in)", .dim)) }
            if let v = m.vmaIndex(containing: va) {
                let vma = m.vmas[v]
                out.append(("VMA \(hex(vma.start))-\(hex(vma.end)) \(vma.permissions) \(vma.label) (\(shortSize(vma.length)))", .normal))
            }
            let e = state.processes[p].pt.entry(vpn: vpn)
            let huge = state.processes[p].pt.hugePMDs[vpn >> 9] != nil
            out.append(("PTE raw \(hex(e.raw))" + (huge ? " (through a 2 MiB PMD)" : ""), .label))
            if e.isNone {
                out.append(("none: never touched, or zapped; the next touch faults", .dim))
            } else if e.isSwap {
                out.append(("swap entry: slot \(e.number)\(e.raw & PTE.swapExclusiveBit != 0 ? ", exclusive" : "") (do_swap_page brings it back)", .normal))
            } else {
                var bits = ["present"]
                bits.append(e.writable ? "writable" : "read-only")
                if e.raw & PTE.dirtyBit != 0 { bits.append("dirty") }
                if e.isZero { bits.append("special (zero page)") }
                if huge { bits.append("huge") }
                out.append((bits.joined(separator: ", ") + "; pfn \(e.number) (\(hex(e.number)))", .normal))
                frames = [e.number]
            }
        case let .frames(range)?:
            title = range.count == 1 ? "FRAME \(range.lowerBound)" : "FRAMES \(range.lowerBound)-\(range.upperBound - 1)"
            let phys = state.phys
            let r = range.clamped(to: 0..<phys.frameCount)
            if range.count > 1 {
                var counts: [FrameUse: Int] = [:]
                for pfn in r { counts[phys.frameUse(pfn), default: 0] += 1 }
                let mix = counts.sorted { $0.value > $1.value }.map { "\($0.value) \($0.key.name)" }.joined(separator: ", ")
                out.append(("this cell covers \(range.count) frames (\(mix)); the first in use is shown (z zooms in)", .dim))
            }
            frames = [r.first { phys.frameUse($0) != .free } ?? r.lowerBound]
        case let .iopte(d, iova)?:
            let dev = state.devices[d]
            title = "IOPTE \(dev.name) \(hex(iova))"
            if let e = dev.ioptes[iova] {
                out.append(("IOVA \(hex(e.iova)) \(ctx.glyphs.arrow) PA \(hex(e.pa)), \(shortSize(e.size)) IOPTE, \(e.writable ? "read-write" : "read-only")", .normal))
                out.append(("walk: \(dev.info.walkLevels(forPageSize: e.size)) level\(dev.info.walkLevels(forPageSize: e.size) == 1 ? "" : "s") (\(dev.info.format.rawValue)); one IOTLB entry covers all \(shortSize(e.size))", .dim))
                if let m = dev.mappings.first(where: { iova >= $0.iova && iova < $0.iova + $0.size }) {
                    out.append(("mapping of \(m.process).\(m.buffer): VA \(hex(m.va + (iova - m.iova))), pinned \(m.pinnedPages) pages", .normal))
                }
                frames = [Int(e.pa >> pageShift)]
            }
        }
        for pfn in frames where pfn < state.phys.frameCount {
            let phys = state.phys
            out.append(("", .normal))
            let use = phys.frameUse(pfn)
            out.append(("frame \(pfn) (\(hex(pfn << pageShift))): \(use.name)\(pfn == Int(state.meta.zeroPfn) ? " — the shared zero page" : "")", .section))
            var flags: [String] = []
            if phys.flags[pfn] & FrameFlag.anonExclusive != 0 { flags.append("PageAnonExclusive") }
            if phys.flags[pfn] & FrameFlag.head != 0 { flags.append("THP head") }
            if phys.flags[pfn] & FrameFlag.tail != 0 { flags.append("THP tail of \(phys.folioHead(pfn))") }
            out.append(("refcount \(phys.refcount[pfn]) \(ctx.glyphs.dot) mapcount \(phys.mapcount[pfn]) \(ctx.glyphs.dot) pins \(phys.pincount[pfn])" + (flags.isEmpty ? "" : " \(ctx.glyphs.dot) " + flags.joined(separator: ", ")), .normal))
            let ownerPid = phys.owner[pfn]
            let ownerName = ownerPid == 0 ? "kernel" : ownerPid < 0 ? "none" : state.processes.first { $0.meta.pid == ownerPid }.map { "\($0.meta.name) (pid \(ownerPid))" } ?? "pid \(ownerPid)"
            out.append(("allocated for: \(ownerName)", .normal))
            var mappers: [String] = []
            for (p, pages) in ctx.highlight.pages.sorted(by: { $0.key < $1.key }) {
                let pt = state.processes[p].pt
                var vas: [String] = []
                for (region, bits) in pages.regions.sorted(by: { $0.key < $1.key }) {
                    for w in 0..<8 where bits[w] != 0 {
                        for b in 0..<64 where bits[w] & (1 << UInt64(b)) != 0 {
                            let vpn = region << 9 | UInt64(w * 64 + b)
                            let e = pt.entry(vpn: vpn)
                            if e.present && e.number == pfn && vas.count < 4 { vas.append(hex(vpn << pageShift)) }
                        }
                    }
                }
                if !vas.isEmpty { mappers.append("\(state.processes[p].meta.name) \(vas.joined(separator: " "))") }
            }
            out.append(("mapped by: " + (mappers.isEmpty ? "no page table" : mappers.joined(separator: "; ")), mappers.isEmpty ? .dim : .normal))
            var iovas: [String] = []
            for (d, set) in ctx.highlight.ioptes.sorted(by: { $0.key < $1.key }) {
                for iova in set.sorted() {
                    guard let e = state.devices[d].ioptes[iova] else { continue }
                    let first = Int(e.pa >> pageShift)
                    if pfn >= first && pfn < first + Int(e.size >> pageShift) {
                        iovas.append("\(state.devices[d].name) \(hex(iova + UInt64(pfn - first) << pageShift)) in a \(shortSize(e.size)) IOPTE")
                    }
                }
            }
            out.append(("device sees it at: " + (iovas.isEmpty ? "no IOVA" : iovas.prefix(4).joined(separator: "; ")), iovas.isEmpty ? .dim : .normal))
        }
        return (title, out)
    }

    /// With the log focused: the step shown whole, as the narration pane may have cut it.
    static func stepLines(_ ctx: DrawContext) -> (title: String, lines: [(String, Role)]) {
        let s = ctx.session
        guard let rec = s.records.dropLast(ctx.app.logScroll).last else {
            return ("STEP 0", [("the machine as it booted; no step has run", .dim)])
        }
        var out: [(String, Role)] = [("outcome: \(rec.outcome.word)" + (rec.line > 0 ? " \(ctx.glyphs.dot) line \(rec.line)" : " \(ctx.glyphs.dot) typed at the prompt"), rec.outcome.ok ? .ok : .error)]
        out.append((rec.text, .normal))
        for h in rec.hazards { out.append(("HAZARD: " + h.text, .warning)) }
        for n in rec.notes { out.append(("note: " + n, .note)) }
        for f in s.expectFailures[rec.step] ?? [] { out.append(("expect failed: " + f, .error)) }
        if !rec.counts.isEmpty {
            out.append(("events: " + rec.counts.map { "\($0.0) \(ctx.glyphs.times) \($0.1)" }.joined(separator: ", "), .dim))
        }
        out.append(("\(rec.changes.count) changes recorded for undo", .dim))
        return ("STEP \(rec.step): \(rec.command)", out)
    }

    static func draw(_ ctx: DrawContext, _ c: inout Canvas) {
        let g = ctx.glyphs
        let (title, raw) = lines(ctx)
        let w = min(c.width - 4, 100)
        var lines: [(String, Role)] = []
        for (text, role) in raw {
            if text.isEmpty { lines.append(("", role)); continue }
            lines += wrapText(text, width: w - 4).map { ($0, role) }
        }
        let h = min(c.height - 2, lines.count + 3)
        let r = Rect(x: (c.width - w) / 2, y: max(1, (c.height - h) / 2), width: w, height: h)
        c.box(r, g, .overlayBorder, title: title + "  (Esc closes)", titleRole: .overlayTitle)
        for (i, (text, role)) in lines.prefix(h - 3).enumerated() {
            c.text(r.x + 2, r.y + 2 + i, text, role, limit: w - 4)
        }
    }
}
