// A buffer's pages counted, for `expect PROC.BUF ...`, the run summary and the views: built from
// PageInfo, so it counts what the page query says each page is.

public struct BufferStats: Equatable, Sendable {
    public var present = 0, zero = 0, writable = 0, swapped = 0, huge = 0, exclusive = 0, shared = 0, pinned = 0
    /// Distinct frames the buffer maps (the zero page not counted).
    public var frames = 0
}

extension EngineState {
    public func bufferStats(_ p: Int, _ b: Buffer) -> BufferStats {
        var s = BufferStats()
        var frames = Set<Int>()
        for vpn in (b.firstPage >> pageShift)..<(b.endPage >> pageShift) {
            let page = page(p, vpn: vpn)
            if page.swapped { s.swapped += 1; continue }
            guard page.present else { continue }
            s.present += 1
            if page.pte.writable { s.writable += 1 }
            if page.huge { s.huge += 1 }
            if page.zero { s.zero += 1; continue }
            if let pfn = page.pte.pfn { frames.insert(pfn) }
            if page.exclusive { s.exclusive += 1 } else { s.shared += 1 }
            if (page.frame?.pincount ?? 0) > 0 { s.pinned += 1 }
        }
        s.frames = frames.count
        return s
    }
}
