// PROCESS: each process's address space, VMA by VMA, with a glyph per page (or per group of pages
// when a VMA is larger than the rows it may use): untouched, zero page, private, shared/COW,
// pinned, swapped, huge.

import Engine

enum PageKind: Int, CaseIterable {
    case untouched, zero, privatePage, shared, huge, swapped, pinned, ump, dmabuf

    func glyph(_ g: Glyphs) -> Character {
        switch self {
        case .untouched: g.untouched
        case .zero: g.zero
        case .privatePage: g.privatePage
        case .shared: g.shared
        case .huge: g.huge
        case .swapped: g.swapped
        case .pinned: g.pinned
        case .ump: g.ump
        case .dmabuf: g.dmabuf
        }
    }

    var role: Role {
        switch self {
        case .untouched: .pageUntouched
        case .zero: .pageZero
        case .privatePage: .pagePrivate
        case .shared: .pageShared
        case .huge: .pageHuge
        case .swapped: .pageSwapped
        case .pinned: .pagePinned
        case .ump: .frameUMP
        case .dmabuf: .frameDmabuf
        }
    }

    var name: String {
        switch self {
        case .untouched: "untouched"
        case .zero: "zero page"
        case .privatePage: "private"
        case .shared: "shared/COW"
        case .huge: "huge (THP)"
        case .swapped: "swapped"
        case .pinned: "pinned"
        case .ump: "UMP (kernel memory)"
        case .dmabuf: "dma-buf (kernel memory)"
        }
    }

    /// What one page is, from its PTE and its frame.
    static func of(_ pt: PageTable, _ phys: PhysicalMemory, vpn: UInt64) -> PageKind {
        let e = pt.entry(vpn: vpn)
        if e.isNone { return .untouched }
        if e.isSwap { return .swapped }
        guard e.present else { return .untouched }
        if e.isZero { return .zero }
        let pfn = e.number
        guard pfn < phys.frameCount else { return .privatePage }
        if phys.pincount[pfn] > 0 { return .pinned }
        if pt.hugePMDs[vpn >> 9] != nil { return .huge }
        let use = phys.frameUse(pfn)
        // VM_PFNMAP mappings of kernel buffers: the same letters the PHYSICAL pane uses.
        if use == .ump { return .ump }
        if use == .dmabuf { return .dmabuf }
        if use == .shmem || phys.mapcount[pfn] > 1 || phys.refcount[pfn] > 1
            || (use == .anon && phys.flags[pfn] & FrameFlag.anonExclusive == 0) {
            return .shared
        }
        return .privatePage
    }

    /// A cell covering many pages: the most common kind among up to 16 evenly spaced pages
    /// (sampling keeps a 4 GiB VMA as cheap to draw as a small one); untouched only if all are.
    static func dominant(_ pt: PageTable, _ phys: PhysicalMemory, _ range: Range<UInt64>) -> PageKind {
        let n = range.upperBound - range.lowerBound
        if n <= 1 { return of(pt, phys, vpn: range.lowerBound) }
        let samples = min(n, 16)
        var counts = [Int](repeating: 0, count: PageKind.allCases.count)
        for i in 0..<samples {
            let vpn = range.lowerBound + i * n / samples
            if pt.hugePMDs[vpn >> 9] == nil && pt.tables[vpn >> 9] == nil { continue }
            counts[of(pt, phys, vpn: vpn).rawValue] += 1
        }
        var best = PageKind.untouched
        var bestCount = 0
        for k in PageKind.allCases.dropFirst() where counts[k.rawValue] >= bestCount && counts[k.rawValue] > 0 {
            best = k
            bestCount = counts[k.rawValue]
        }
        return best
    }
}

enum ProcessPane {
    static func titleDetail(_ ctx: DrawContext) -> String {
        let procs = ctx.state.processes
        if procs.isEmpty { return "" }
        return procs.map { $0.meta.alive ? $0.meta.name : "\($0.meta.name)†" }.joined(separator: " ")
    }

    static func draw(_ ctx: DrawContext, _ c: inout Canvas, _ body: Rect) {
        let app = ctx.app
        let legend = app.processLegendRows()
        let r = Rect(x: body.x, y: body.y, width: body.width, height: app.processListHeight)
        if legend > 0 { drawLegend(ctx, &c, Rect(x: body.x, y: r.maxY, width: body.width, height: legend)) }
        let l = app.processLayout()
        let g = ctx.glyphs
        let state = ctx.state
        let cursor = app.resolvedProcCursor(l)
        let showCursor = app.selectionPane == .process || app.selectionPane == .log
        let scroll = app.procScroll
        if state.processes.isEmpty {
            c.text(r.x + 1, r.y, "no process yet", .dim, limit: r.width - 1)
            if let next = ctx.session.nextStep {
                c.text(r.x + 1, r.y + 1, "next: \(next.statement.text)", .dim, limit: r.width - 1, ellipsis: g.ellipsis)
            }
            return
        }
        for i in 0..<r.height {
            let ri = scroll + i
            guard l.rows.indices.contains(ri) else { break }
            let y = r.y + i
            switch l.rows[ri] {
            case let .process(p):
                drawProcessTitle(ctx, &c, r, y, p)
            case let .image(p, first, count):
                let vmas = state.processes[p].meta.vmas
                let lo = vmas[first].start, hi = vmas[first + count - 1].end
                let text = "image \(address(lo, r.width)) \(shortSize(hi - lo)) \(count) VMAs, no frames"
                c.text(r.x + 1, y, text, .dim, limit: r.width - 1, ellipsis: g.ellipsis)
            case let .vma(p, v):
                drawVMA(ctx, &c, r, y, p, v)
            case let .pages(p, _, vpn, k, cells, end):
                let pt = state.processes[p].pt
                let phys = state.phys
                let changed = ctx.changes.pages[p]
                let related = ctx.highlight.pages[p]
                let x0 = r.x + ProcessLayout.indent
                for col in 0..<cells {
                    let lo = vpn + UInt64(col) * k
                    let range = lo..<min(end, lo + k)
                    let kind = PageKind.dominant(pt, phys, range)
                    let sel = showCursor && cursor.map { $0.row == ri && $0.col == col } == true
                    let rel = related?.intersects(range) == true
                    let chg = changed?.intersects(range) == true
                    c.put(x0 + col, y, kind.glyph(g), kind.role, ctx.mark(selected: sel, related: rel, changed: chg))
                }
                c.hits.append(Hit(rect: Rect(x: x0, y: y, width: cells, height: 1),
                                  target: .pages(proc: p, vpn: vpn, pagesPerCell: k, endVpn: end)))
            case let .text(s):
                c.text(r.x + 1, y, s, .dim, limit: r.width - 1)
            }
        }
        if l.rows.count > r.height {
            // A scroll mark on the right edge: where this screenful sits in the list.
            let pos = r.y + min(r.height - 1, scroll * r.height / max(1, l.rows.count - r.height + 1))
            c.put(r.maxX - 1, pos, g.thumb, .dim)
        }
    }

    private static func drawLegend(_ ctx: DrawContext, _ c: inout Canvas, _ r: Rect) {
        var x = r.x + 1, y = r.y
        for k in PageKind.allCases {
            let name = k == .shared ? "shared" : k == .huge ? "huge" : k == .ump ? "UMP" : k == .dmabuf ? "dma-buf" : k.name
            if x + name.count + 2 > r.maxX { y += 1; x = r.x + 1 }
            if y >= r.maxY { break }
            c.put(x, y, k.glyph(ctx.glyphs), k.role)
            x = c.text(x + 2, y, name, .dim) + 1
        }
    }

    private static func drawProcessTitle(_ ctx: DrawContext, _ c: inout Canvas, _ r: Rect, _ y: Int, _ p: Int) {
        let m = ctx.state.processes[p].meta
        let changed = ctx.changes.processes.contains(p)
        var x = c.text(r.x, y, m.name, Role.owner(p), mark: changed ? .changed : .none)
        var info = " pid \(m.pid)"
        if m.alive {
            info += " \(ctx.glyphs.dot) rss \(shortSize(UInt64(m.rssPages) << pageShift))"
            if m.swapPages > 0 { info += " swap \(shortSize(UInt64(m.swapPages) << pageShift))" }
            if m.lockedVMPages > 0 { info += " locked \(shortSize(UInt64(m.lockedVMPages) << pageShift))" }
            if m.pinnedVMPages > 0 { info += " pinned \(shortSize(UInt64(m.pinnedVMPages) << pageShift))" }
            info += " \(ctx.glyphs.dot) \(m.pageTablePages) pt"
            x = c.text(x, y, info, .section, limit: r.maxX - x, ellipsis: ctx.glyphs.ellipsis)
        } else {
            let why = m.exitReason == nil || m.exitReason == "exit" ? "exited" : m.exitReason!
            c.text(x, y, info + " \(ctx.glyphs.dot) " + why, m.exitReason == "exit" ? .dim : .error, limit: r.maxX - x, ellipsis: ctx.glyphs.ellipsis)
        }
    }

    private static func drawVMA(_ ctx: DrawContext, _ c: inout Canvas, _ r: Rect, _ y: Int, _ p: Int, _ v: Int) {
        let meta = ctx.state.processes[p].meta
        let vma = meta.vmas[v]
        let names = meta.buffers.filter { $0.start < vma.end && $0.start + max($0.size, 1) > vma.start }.map(\.name)
        var label = names.isEmpty ? vma.label : names.joined(separator: ",")
        if label.isEmpty { label = "anon" }
        var flags = ""
        if vma.flags.contains(.locked) { flags += "L" }
        if vma.flags.contains(.dontcopy) { flags += "D" }
        if vma.flags.contains(.hugepage) { flags += "H" }
        let changed = ctx.changes.vmas[p]?.contains(vma.start) == true
        let tail = " \(address(vma.start, r.width)) \(shortSize(vma.length)) \(vma.permissions)" + (flags.isEmpty ? "" : " " + flags)
        let labelWidth = max(3, min(label.count, r.width - 1 - tail.count))
        var x = c.text(r.x + 1, y, label, .label, limit: labelWidth, mark: changed ? .changed : .none, ellipsis: ctx.glyphs.ellipsis)
        let parts = tail.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let roles: [Role] = [.normal, .address, .normal, .dim, .warning]
        for (i, part) in parts.enumerated() {
            if i > 0 { x = c.text(x, y, " ", .normal, limit: r.maxX - x) }
            x = c.text(x, y, part, roles[min(i, roles.count - 1)], limit: r.maxX - x)
        }
    }

    /// An address that fits: 0x7ffff7efe000, or without 0x in a narrow pane.
    static func address(_ a: UInt64, _ width: Int) -> String {
        width >= 34 ? hex(a) : String(a, radix: 16)
    }
}
