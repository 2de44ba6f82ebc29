// PHYSICAL: every frame as a grid coloured by owner. Zoomed out, a cell stands for many frames and
// shows their dominant use and how full they are; the per-512-frame summaries the Engine keeps
// make a 16 GiB machine cost what its cells cost.

import Engine

struct FrameCellLook {
    var glyph: Character
    var role: Role
}

enum PhysicalPane {
    static func titleDetail(_ ctx: DrawContext, width: Int) -> String {
        let phys = ctx.state.phys
        let l = ctx.app.physicalLayout()
        let size = formatSize(UInt64(phys.frameCount) << pageShift)
        let per = "1 cell = \(l.framesPerCell) frame\(l.framesPerCell == 1 ? "" : "s")"
        if width >= 48 { return "\(size) \(ctx.glyphs.dot) \(phys.frameCount) frames \(ctx.glyphs.dot) \(per)" }
        return width >= 36 ? "\(size) \(ctx.glyphs.dot) \(per)" : "\(shortSize(UInt64(phys.frameCount) << pageShift)) \(ctx.glyphs.dot) \(l.framesPerCell)/cell"
    }

    static func draw(_ ctx: DrawContext, _ c: inout Canvas, _ r: Rect) {
        let app = ctx.app
        let g = ctx.glyphs
        let phys = ctx.state.phys
        let l = app.physicalLayout()
        drawInfo(ctx, &c, Rect(x: r.x, y: r.y, width: r.width, height: 1))
        let legendRows = app.legendRows(r.width)
        let gridTop = r.y + PhysicalLayout.infoRows
        let gridHeight = max(0, r.height - PhysicalLayout.infoRows - legendRows)
        let cursor = l.locate(app.physCursor)
        let showCursor = app.selectionPane == .physical
        let scroll = app.physScroll
        let digits = max(0, l.gutter - 1)
        for i in 0..<gridHeight {
            let row = scroll + i
            guard row < l.gridRows else { break }
            let y = gridTop + i
            if l.gutter > 0 {
                let label = String(row * l.columns * l.framesPerCell, radix: 16)
                c.text(r.x + digits - label.count, y, label, .dim)
            }
            let x0 = r.x + l.gutter
            var cells = 0
            for col in 0..<l.columns {
                guard let range = l.cell(row: row, col: col) else { break }
                let look = classify(ctx, range)
                let sel = showCursor && cursor.row == row && cursor.col == col
                let rel = ctx.highlight.frames.intersects(range)
                let chg = ctx.changes.frames.intersects(range)
                c.put(x0 + col, y, look.glyph, look.role, ctx.mark(selected: sel, related: rel, changed: chg))
                cells += 1
            }
            c.hits.append(Hit(rect: Rect(x: x0, y: y, width: cells, height: 1),
                              target: .frames(pfn: row * l.columns * l.framesPerCell, framesPerCell: l.framesPerCell, endPfn: phys.frameCount)))
        }
        if l.gridRows > gridHeight && gridHeight > 0 {
            let pos = gridTop + min(gridHeight - 1, scroll * gridHeight / max(1, l.gridRows - gridHeight + 1))
            c.put(r.maxX - 1, pos, g.thumb, .dim)
        }
        drawLegend(ctx, &c, Rect(x: r.x, y: r.maxY - legendRows, width: r.width, height: legendRows))
    }

    /// One line of totals: free, anonymous, page tables, kernel.
    private static func drawInfo(_ ctx: DrawContext, _ c: inout Canvas, _ r: Rect) {
        let phys = ctx.state.phys
        var totals = [Int](repeating: 0, count: PhysicalMemory.useCount)
        let n = PhysicalMemory.useCount
        phys.blockUseCounts.withUnsafeBufferPointer { b in
            for i in 0..<b.count { totals[i % n] += Int(b[i]) }
        }
        func size(_ u: FrameUse) -> String { shortSize(UInt64(totals[Int(u.rawValue)]) << pageShift) }
        var parts = ["free \(size(.free))", "anon \(size(.anon))"]
        if totals[Int(FrameUse.shmem.rawValue)] > 0 { parts.append("shmem \(size(.shmem))") }
        parts.append("pt \(size(.pagetable))")
        if totals[Int(FrameUse.ump.rawValue)] > 0 { parts.append("ump \(size(.ump))") }
        if totals[Int(FrameUse.dmabuf.rawValue)] > 0 { parts.append("dma-buf \(size(.dmabuf))") }
        if totals[Int(FrameUse.iopagetable.rawValue)] > 0 { parts.append("iopt \(size(.iopagetable))") }
        parts.append("kernel \(size(.kernel))")
        var x = r.x + 1
        for p in parts {
            if x + p.count > r.maxX { break }
            x = c.text(x, r.y, p, .dim) + 2
        }
    }

    private static func drawLegend(_ ctx: DrawContext, _ c: inout Canvas, _ r: Rect) {
        let g = ctx.glyphs
        var items: [(Character, Role, String)] = [
            (g.free, .frameFree, "free"), (g.zero, .frameZero, "zero"), (g.kernel, .frameKernel, "kernel"),
            (g.pageTable, .frameTable, "page table"), (g.pinned, .framePinned, "pinned"),
            (g.ump, .frameUMP, "UMP"), (g.dmabuf, .frameDmabuf, "dma-buf"), (g.ioPageTable, .frameTable, "IO pt"),
        ]
        for (p, proc) in ctx.state.processes.enumerated() where proc.meta.alive {
            items.append((g.fill[3], Role.owner(p), proc.meta.name))
        }
        var x = r.x + 1, y = r.y
        for (glyph, role, name) in items {
            let w = name.count + 3
            if x + w > r.maxX { y += 1; x = r.x + 1 }
            if y >= r.maxY { break }
            c.put(x, y, glyph, role)
            x = c.text(x + 2, y, name, .dim) + 1
        }
    }

    /// The glyph and role of a cell of frames: pinned and the zero page show through; otherwise the
    /// dominant use, and for process memory a shade for how full the cell is.
    static func classify(_ ctx: DrawContext, _ range: Range<Int>) -> FrameCellLook {
        let phys = ctx.state.phys
        let g = ctx.glyphs
        let n = range.count
        var counts = [Int](repeating: 0, count: PhysicalMemory.useCount)
        var pinned = 0
        var owner: Int32 = -1
        let block = PhysicalMemory.summaryBlockFrames
        if n >= block && range.lowerBound % block == 0 && range.upperBound % block == 0 || (n >= block && range.upperBound == phys.frameCount && range.lowerBound % block == 0) {
            for b in (range.lowerBound / block)..<((range.upperBound + block - 1) / block) {
                for u in 0..<PhysicalMemory.useCount { counts[u] += Int(phys.blockUseCounts[b * PhysicalMemory.useCount + u]) }
                pinned += Int(phys.blockPinned[b])
            }
            // Sample a few frames for the owner's colour.
            let step = max(1, n / 8)
            var pfn = range.lowerBound
            while pfn < range.upperBound && owner < 0 {
                let u = phys.use[pfn]
                if u == FrameUse.anon.rawValue || u == FrameUse.shmem.rawValue { owner = phys.owner[pfn] }
                pfn += step
            }
        } else {
            for pfn in range {
                counts[Int(phys.use[pfn])] += 1
                if phys.pincount[pfn] > 0 { pinned += 1 }
                if owner < 0, phys.use[pfn] == FrameUse.anon.rawValue || phys.use[pfn] == FrameUse.shmem.rawValue { owner = phys.owner[pfn] }
            }
        }
        if pinned > 0 { return FrameCellLook(glyph: g.pinned, role: .framePinned) }
        let zero = Int(ctx.state.meta.zeroPfn)
        let hugeZero = Int(ctx.state.meta.hugeZeroPfn)
        if range.contains(zero) || (hugeZero >= 0 && range.overlaps(hugeZero..<hugeZero + pagesPerPMD) && n <= pagesPerPMD) {
            return FrameCellLook(glyph: g.zero, role: .frameZero)
        }
        var best = FrameUse.free
        var bestCount = 0
        for u in FrameUse.allCases where u != .free && counts[Int(u.rawValue)] > bestCount {
            best = u
            bestCount = counts[Int(u.rawValue)]
        }
        let used = n - counts[Int(FrameUse.free.rawValue)]
        switch best {
        case .free: return FrameCellLook(glyph: g.free, role: .frameFree)
        case .anon, .shmem:
            let role = ctx.app.cache.processByPid[owner].map { Role.owner($0) } ?? .normal
            if n == 1 { return FrameCellLook(glyph: best == .shmem ? g.shmem : g.fill[3], role: role) }
            let level = min(3, max(0, (used * 4 - 1) / n))
            return FrameCellLook(glyph: g.fill[level], role: role)
        case .zero: return FrameCellLook(glyph: g.zero, role: .frameZero)
        case .kernel: return FrameCellLook(glyph: g.kernel, role: .frameKernel)
        case .pagetable: return FrameCellLook(glyph: g.pageTable, role: .frameTable)
        case .iopagetable: return FrameCellLook(glyph: g.ioPageTable, role: .frameTable)
        case .ump: return FrameCellLook(glyph: g.ump, role: .frameUMP)
        case .dmabuf: return FrameCellLook(glyph: g.dmabuf, role: .frameDmabuf)
        }
    }
}
