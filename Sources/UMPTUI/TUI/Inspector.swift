// Enter: everything about the selection in one box. For a page: its VMA and the PTE bits; for its
// frame: use, refcount, mapcount, pin count, owner and flags; who else maps the frame, and which
// IOPTEs (with their size) point at it. Every fact comes from the query layer; this lays it out.

import Engine

enum Inspector {
    static func lines(_ app: AppState) -> (title: String, lines: [(String, Role)]) {
        if app.focus == .log || app.overlay == .stepView { return stepLines(app) }
        let state = app.session.state
        let g = app.glyphs
        var out: [(String, Role)] = []
        var frame: Int?
        var title = "INSPECT"
        switch app.selection() {
        case nil:
            return ("INSPECT", [("nothing selected: move the cursor onto a page, a frame or an IOPTE", .dim)])
        case let .pages(p, range)?:
            let page = state.page(p, vpn: range.lowerBound)
            let m = state.processes[p].meta
            title = "PAGE \(m.name) \(hex(page.va))"
            if range.count > 1 { out.append(("this cell covers \(range.count) pages; the first is shown (z zooms in)", .dim)) }
            if let v = page.vma {
                let vma = m.vmas[v]
                out.append(("VMA \(hex(vma.start))-\(hex(vma.end)) \(vma.permissions) \(vma.label) (\(formatSizeCompact(vma.length)))", .normal))
            }
            let e = page.pte
            let bits = e.bits.map { "\($0.name)(\($0.bit))" }.joined(separator: " ")
            out.append(("PTE raw \(hex(e.raw))" + (bits.isEmpty ? "" : ": " + bits) + (page.huge ? " (the 2 MiB PMD's, at this page)" : ""), .label))
            if e.isNone {
                out.append(("none: never touched, or zapped; the next touch faults", .dim))
            } else if let swap = e.swap {
                out.append(("swap entry: slot \(swap.slot)\(swap.exclusive ? ", SWP_EXCLUSIVE" : "") (do_swap_page brings it back)", .normal))
            } else if let pfn = e.pfn {
                out.append((e.names.joined(separator: ", ") + "; pfn \(hex(pfn))", .normal))
                frame = pfn
            }
            out += walkLines(state.walk(process: p, va: page.va), what: "VA", g)
        case let .frames(range)?:
            title = range.count == 1 ? "FRAME \(hex(range.lowerBound))" : "FRAMES \(hex(range.lowerBound))-\(hex(range.upperBound - 1))"
            if range.count > 1 {
                let mix = state.frameUses(in: range).map { "\($0.count) \($0.use.name)" }.joined(separator: ", ")
                out.append(("this cell covers \(range.count) frames (\(mix)); the first in use is shown (z zooms in)", .dim))
            }
            frame = state.firstFrameInUse(in: range)
        case let .iopte(d, iova)?:
            title = "IOPTE \(state.devices[d].name) \(hex(iova))"
            if let info = state.iopte(d, iova: iova) {
                let e = info.iopte
                out.append(("IOVA \(hex(e.iova)) \(g.arrow) PA \(hex(e.pa)), \(formatSizeCompact(e.size)) IOPTE, \(e.writable ? "read-write" : "read-only")", .normal))
                out.append(("one IOTLB entry covers all \(formatSizeCompact(e.size)); a miss walks \(plural(info.walkLevels, "level")) (\(info.format.rawValue))", .dim))
                if let m = info.mapping, let va = info.va {
                    out.append(("mapping of \(m.process).\(m.buffer): VA \(hex(va)), pinned \(m.pinnedPages) pages", .normal))
                }
                if let w = state.ioWalk(device: d, iova: iova) { out += walkLines(w, what: "IOVA", g) }
                frame = info.frame
            }
        }
        if let pfn = frame, pfn < state.phys.frameCount {
            out += frameLines(app.cache.frameInfo(app.session, pfn), state, g)
        }
        return (title, out)
    }

    /// The walk of an address: its bits split level by level, each level's table frame and entry,
    /// and where the walk ends.
    static func walkLines(_ w: PageWalk, what: String, _ g: Glyphs) -> [(String, Role)] {
        var out: [(String, Role)] = [("", .normal)]
        let real = w.levels.filter { !$0.folded }.count
        out.append(("walk of \(what) \(hex(w.address)): \(w.inputBits)-bit, \(plural(real, "level"))", .section))
        for l in w.levels {
            let name = l.name.padding(toLength: 8, withPad: " ", startingAt: 0)
            if l.folded {
                out.append(("  \(name)\(l.entry)", .dim))
                continue
            }
            let bits = "[\(l.highBit):\(l.lowBit)]".padding(toLength: 8, withPad: " ", startingAt: 0)
            let index = String(l.index).padding(toLength: 5, withPad: " ", startingAt: 0)
            let table = l.tableFrame.map { "table \(hex($0))" } ?? "no table"
            out.append(("  \(name)\(bits)\(index)\(table) \(g.arrow) \(l.entry)", l.entry == "none" ? .dim : .normal))
        }
        out.append(("  offset  [\(w.offsetBits - 1):0]  \(hex(w.offset))", .normal))
        switch w.end {
        case let .leaf(_, size): out.append(("ends in a \(formatSizeShort(size)) leaf" + (size > pageSize ? " one level up: the offset keeps \(w.offsetBits) bits" : ""), .dim))
        case let .swap(slot): out.append(("ends in a swap entry (slot \(slot)): not present, the touch goes to do_swap_page", .dim))
        case let .missing(level): out.append(("ends at \(level): no entry, nothing mapped; a touch faults and the kernel fills it in", .dim))
        }
        return out
    }

    /// A frame: its use, counts and flags, its owner, and everything that maps it.
    private static func frameLines(_ f: FrameInfo, _ state: EngineState, _ g: Glyphs) -> [(String, Role)] {
        var out: [(String, Role)] = [("", .normal)]
        out.append(("frame pfn \(hex(f.pfn)) (PA \(hex(f.pfn << pageShift))): \(f.use.name)\(f.isZeroPage ? " — the shared zero page" : "")", .section))
        let flags = f.flagNames
        out.append(("refcount \(f.refcount) \(g.dot) mapcount \(f.mapcount) \(g.dot) pins \(f.pincount)" + (flags.isEmpty ? "" : " \(g.dot) " + flags.joined(separator: ", ")), .normal))
        if f.pincount > 0 && f.thpTailOf == nil && !f.thpHead && f.refcount >= 1024 {
            // A small folio keeps no pin count of its own: each FOLL_PIN adds GUP_PIN_COUNTING_BIAS.
            let plain = Int(f.refcount) - 1024 * Int(f.pincount)
            out.append(("refcount \(f.refcount) = \(plural(Int(f.pincount), "pin")) \(g.times) 1024 + \(plural(plain, "other reference")): each pin_user_pages adds GUP_PIN_COUNTING_BIAS (1024), so folio_maybe_dma_pinned sees refcount \(g.isASCII ? ">=" : "≥") 1024", .dim))
        } else if f.pincount > 0 {
            out.append(("a large folio counts pins apart (folio->_pincount): each pin adds 1 to refcount and 1 to the pin count", .dim))
        }
        let hz = Int(state.meta.hugeZeroPfn)
        if hz >= 0, f.pfn >= hz, f.pfn < hz + 512 {
            out.append(("the huge zero folio: huge_zero_refcount \(state.meta.hugeZeroRefcount) (one for the folio, one for each mm that has mapped it: MMF_HUGE_ZERO_PAGE)", .dim))
        }
        let owner: String
        switch f.owner {
        case .kernel: owner = "kernel"
        case .none: owner = "none"
        case let .process(pid, name): owner = name.map { "\($0) (pid \(pid))" } ?? "pid \(pid)"
        }
        out.append(("allocated for: \(owner)", .normal))
        if f.use != .free && f.use != .kernel && f.use != .pagetable && f.use != .iopagetable {
            out.append(("holds: " + state.describeData(f.data), f.data == .zero ? .dim : .normal))
        }
        if !f.gupHolders.isEmpty {
            out.append(("referenced by: " + f.gupHolders.prefix(4).joined(separator: "; ") + (f.gupHolders.count > 4 ? " and \(f.gupHolders.count - 4) more" : ""), .normal))
        }
        var mappers: [String] = []
        for p in Set(f.mappers.map(\.process)).sorted() {
            let vas = f.mappers.filter { $0.process == p }.prefix(4).map { hex($0.vpn << pageShift) }
            mappers.append("\(state.processes[p].meta.name) \(vas.joined(separator: " "))")
        }
        out.append(("mapped by: " + (mappers.isEmpty ? "no page table" : mappers.joined(separator: "; ")), mappers.isEmpty ? .dim : .normal))
        let iovas = f.ioMappers.prefix(4).map { "\(state.devices[$0.device].name) \(hex($0.iova)) in a \(formatSizeCompact($0.iopte.size)) IOPTE" }
        out.append(("device sees it at: " + (iovas.isEmpty ? "no IOVA" : iovas.joined(separator: "; ")), iovas.isEmpty ? .dim : .normal))
        return out
    }

    /// With the log focused: the step shown whole, as the narration pane may have cut it.
    static func stepLines(_ app: AppState) -> (title: String, lines: [(String, Role)]) {
        let s = app.session
        let g = app.glyphs
        guard let rec = app.log.record(s) else {
            return ("STEP 0", [("the machine as it booted; no step has run", .dim)])
        }
        var out: [(String, Role)] = [("outcome: \(rec.outcome.word)" + (rec.line > 0 ? " \(g.dot) line \(rec.line)" : " \(g.dot) typed at the prompt"), rec.outcome.ok ? .ok : .error)]
        out.append((rec.text, .normal))
        for h in rec.hazards { out.append(("HAZARD: " + h.text, .warning)) }
        for n in rec.notes { out.append(("note: " + n, .note)) }
        for f in s.expectFailures[rec.step] ?? [] { out.append(("expect failed: " + f, .error)) }
        // The narration above already tells the counted events in words; the JSON keeps their keys.
        out.append(("\(rec.changes.count) changes recorded for undo", .dim))
        return ("STEP \(rec.step): \(rec.command)", out)
    }

    /// The inspector's lines as drawn at the screen's width: a line that fits keeps its spacing
    /// (the walk's columns); longer ones wrap.
    static func wrappedLines(_ app: AppState, width w: Int) -> (title: String, lines: [(String, Role)]) {
        let (title, raw) = lines(app)
        var lines: [(String, Role)] = []
        for (text, role) in raw {
            if text.isEmpty { lines.append(("", role)); continue }
            if text.count <= w - 4 {
                lines.append((text, role))
            } else if text.hasPrefix("  "), let cut = text.prefix(w - 4).lastIndex(of: " "), cut > text.index(text.startIndex, offsetBy: 2) {
                // A walk row keeps its columns: it breaks at its last space that fits and goes on indented.
                lines.append((String(text[..<cut]), role))
                lines += wrapText(String(text[cut...]), width: w - 8).map { ("      " + $0, role) }
            } else {
                lines += wrapText(text, width: w - 4).map { ($0, role) }
            }
        }
        return (title, lines)
    }

    /// How far the inspector can scroll at this size: its last line at the bottom of the box.
    static func maxScroll(_ app: AppState) -> Int {
        let w = min(app.width - 4, 100)
        let n = wrappedLines(app, width: w).lines.count
        let rows = min(app.height - 2, n + 3) - 3
        return max(0, n - rows)
    }

    static func draw(_ app: AppState, _ c: inout Canvas) {
        let g = app.glyphs
        let w = min(c.width - 4, 100)
        let (title, lines) = wrappedLines(app, width: w)
        let h = min(c.height - 2, lines.count + 3)
        let r = Rect(x: (c.width - w) / 2, y: max(1, (c.height - h) / 2), width: w, height: h)
        let rows = h - 3
        let scrolls = lines.count > rows
        let arrows = g.isASCII ? "Up/Down" : "↑↓"
        // The keys that close it stay in the title: a long title gives way before them.
        let hint = scrolls ? "  (\(arrows) scroll, q or Esc closes)" : "  (q or Esc closes)"
        let room = w - 6 - hint.count
        let shown = title.count <= room ? title : String(title.prefix(max(0, room - 1))) + String(g.ellipsis)
        c.box(r, g, .overlayBorder, title: shown + hint, titleRole: .overlayTitle)
        let start = min(app.inspectorScroll, max(0, lines.count - rows))
        for (i, (text, role)) in lines[start..<min(lines.count, start + rows)].enumerated() {
            c.text(r.x + 2, r.y + 2 + i, text, role, limit: w - 4)
        }
        if scrolls { c.text(r.maxX - 12, r.maxY - 1, " \(start + rows)/\(lines.count) ", .dim) }
    }
}
