// Compares the Engine's final state, read through its query layer (PageInfo), with what the real
// kernel showed for the same probe script (RealProbe). Compared per page and process: swapped,
// present, zero page, exclusive (Engine: frame mapcount == 1 and not the zero page; kernel: pagemap
// bit 56), the size of the folio that maps it (Engine: the frame's folio order; kernel:
// /proc/kpageflags), and per page whether parent and child map the same (non-zero) frame. PFN
// values themselves differ between the Engine and the kernel and are never compared. Per process,
// the Engine's pinned_vm × 4 KiB is compared with VmPin from /proc/self/status (for the parent,
// less its VmPin before the script), and its PMD-mapped bytes in the buffer with AnonHugePages.
// Differences a later kernel change explains (ProbeScript.laterChanges) are reported apart.

import Engine

public struct ProbeComparisonError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "probe comparison: \(message)" }
}

public enum ProbeComparison {
    /// The facts compared for one page of one process.
    public struct PageFacts: Sendable, Hashable {
        public var present: Bool
        public var swapped: Bool
        public var zero: Bool
        public var exclusive: Bool
        /// The frame when present and not the zero page (used only to decide sharing).
        public var frame: UInt64?
        /// Pages in the folio that maps it, when present and not the zero page; nil when unknown.
        public var folioPages: Int?
        /// A page-cache page (a file's or shmem's, pagemap bit 61 PM_FILE), not anonymous memory.
        public var file: Bool

        public init(present: Bool, swapped: Bool = false, zero: Bool = false, exclusive: Bool = false, frame: UInt64? = nil,
                    folioPages: Int? = nil, file: Bool = false) {
            self.present = present
            self.swapped = swapped
            self.zero = zero
            self.exclusive = exclusive
            self.frame = frame
            self.folioPages = folioPages
            self.file = file
        }

        public static let absent = PageFacts(present: false)

        /// `-`, `swap`, `zero`, `excl` (mapcount 1) or `anon` (mapped more than once), `file1` and
        /// `file` for page-cache pages, with the folio size after a colon when it is a large folio
        /// (`excl:64K`, `anon:2M`).
        public var cell: String {
            if swapped { return "swap" }
            if !present { return "-" }
            if zero { return "zero" }
            let base = file ? (exclusive ? "file1" : "file") : (exclusive ? "excl" : "anon")
            guard let n = folioPages, n > 1 else { return base }
            return base + ":" + (n >= 256 ? "\(n * 4 / 1024)M" : "\(n * 4)K")
        }

        /// Both map the same non-zero frame.
        public func shares(with other: PageFacts) -> Bool {
            guard let a = frame, let b = other.frame else { return false }
            return a == b
        }
    }

    /// One side's view (Engine or kernel) of the probe buffer.
    public struct Side: Sendable, Hashable {
        public var bufferSize: UInt64
        public var parent: [PageFacts]
        /// nil when there is no child process.
        public var child: [PageFacts]?
        /// pinned_vm in kB (Engine: pinned_vm_pages × 4; kernel: VmPin); nil when unknown, then not compared.
        public var parentPinnedKB: Int?
        public var childPinnedKB: Int?
        /// PMD-mapped kB in the buffer (Engine: huge PMDs × 2048; kernel: smaps AnonHugePages); nil: unknown.
        public var parentAnonHugeKB: Int?
        public var childAnonHugeKB: Int?

        public init(bufferSize: UInt64, parent: [PageFacts], child: [PageFacts]?,
                    parentPinnedKB: Int? = nil, childPinnedKB: Int? = nil,
                    parentAnonHugeKB: Int? = nil, childAnonHugeKB: Int? = nil) {
            self.bufferSize = bufferSize
            self.parent = parent
            self.child = child
            self.parentPinnedKB = parentPinnedKB
            self.childPinnedKB = childPinnedKB
            self.parentAnonHugeKB = parentAnonHugeKB
            self.childAnonHugeKB = childAnonHugeKB
        }

        public func pinnedKB(of actor: ProbeActor) -> Int? {
            actor == .parent ? parentPinnedKB : childPinnedKB
        }

        public func anonHugeKB(of actor: ProbeActor) -> Int? {
            actor == .parent ? parentAnonHugeKB : childAnonHugeKB
        }
    }

    public struct Report: Sendable, Hashable {
        /// Differences no later kernel change explains (and expected ones that did not appear).
        public var mismatches: [String]
        /// Differences a kernel change after 6.12 explains: the mismatch line and why.
        public var explained: [Explained]
        public var table: String
        public var agrees: Bool { mismatches.isEmpty }

        public struct Explained: Sendable, Hashable {
            public var mismatch: String
            public var since: KernelVersion
            public var why: String
        }
    }

    // MARK: - Entry points

    /// Human-readable mismatches (e.g. `page 5: child present engine=false kernel=true`), empty when
    /// the Engine and the kernel agree. Throws when the Engine has no `parent` process with the buffer.
    public static func compare(engine: Engine, real: RealProbeResult, buffer: String = "buf") throws -> [String] {
        try report(engine: engine, real: real, buffer: buffer).mismatches
    }

    /// A short table of both sides, one row per run of pages with the same facts.
    public static func table(engine: Engine, real: RealProbeResult, buffer: String = "buf") throws -> String {
        try report(engine: engine, real: real, buffer: buffer).table
    }

    /// With `changes` (the script's later kernel changes) and the running `kernel`'s version, the
    /// mismatches a change at or below that version explains move to `explained`; one it expects
    /// that does not appear is a mismatch of its own.
    public static func report(engine: Engine, real: RealProbeResult, buffer: String = "buf",
                              changes: [LaterKernelChange] = [], kernel version: KernelVersion? = nil) throws -> Report {
        let mine = try engineSide(engine.state, npages: real.npages, buffer: buffer)
        let kernel = kernelSide(real)
        var mismatches = compare(engine: mine, kernel: kernel)
        var explained: [Report.Explained] = []
        for change in changes {
            guard let version, version >= change.since else { continue }
            for line in change.mismatches {
                if let i = mismatches.firstIndex(of: line) {
                    mismatches.remove(at: i)
                    explained.append(Report.Explained(mismatch: line, since: change.since, why: change.why))
                } else {
                    mismatches.append("expected since \(change.since), not seen: \(line)")
                }
            }
        }
        let explainedPages = Set(explained.compactMap { pageIndex(ofMismatch: $0.mismatch) })
        return Report(mismatches: mismatches, explained: explained,
                      table: table(engine: mine, kernel: kernel, explainedPages: explainedPages))
    }

    // MARK: - The two sides

    /// The Engine's pages of the buffer, as its query layer describes them.
    public static func engineSide(_ state: EngineState, npages: Int, buffer: String = "buf") throws -> Side {
        let parentName = ProbeActor.parent.rawValue, childName = ProbeActor.child.rawValue
        guard let parent = state.processIndex(named: parentName) else {
            throw ProbeComparisonError("the Engine's state has no process \"\(parentName)\"")
        }
        guard let parentBuffer = state.processes[parent].meta.buffer(named: buffer) else {
            throw ProbeComparisonError("process \"\(parentName)\" has no buffer \"\(buffer)\" in the Engine's state")
        }
        func facts(_ p: Int) -> [PageFacts] {
            // A forked child inherits the buffer at the same address; the parent's, if it has none.
            let buf = state.processes[p].meta.buffer(named: buffer) ?? parentBuffer
            let first = buf.firstPage >> pageShift
            return (0..<npages).map { i in
                let vpn = first + UInt64(i)
                guard vpn < buf.endPage >> pageShift else { return .absent }
                let page = state.page(p, vpn: vpn)
                let pfn = page.present && !page.zero ? page.pte.pfn : nil
                let use = page.frame?.use
                return PageFacts(present: page.present, swapped: page.swapped, zero: page.zero, exclusive: page.exclusive,
                                 frame: pfn.map(UInt64.init),
                                 folioPages: pfn.map { $0 < state.phys.frameCount ? 1 << state.phys.folioOrder($0) : 1 },
                                 file: pfn != nil && (use == .file || use == .shmem))
            }
        }
        // PMD-mapped bytes of the buffer, as smaps' AnonHugePages counts them.
        func anonHugeKB(_ p: Int) -> Int {
            let buf = state.processes[p].meta.buffer(named: buffer) ?? parentBuffer
            var regions = 0
            var region = buf.firstPage >> (pageShift + 9)
            while (region << 9) < (buf.endPage >> pageShift) {
                if state.processes[p].pt.hugePMDs[region] != nil { regions += 1 }
                region += 1
            }
            return regions * 2048
        }
        let child = state.processIndex(named: childName)
        let pageKB = ProbeScript.pageSize / 1024
        return Side(bufferSize: parentBuffer.size, parent: facts(parent), child: child.map(facts),
                    parentPinnedKB: state.processes[parent].meta.pinnedVMPages * pageKB,
                    childPinnedKB: child.map { state.processes[$0].meta.pinnedVMPages * pageKB },
                    parentAnonHugeKB: anonHugeKB(parent), childAnonHugeKB: child.map(anonHugeKB))
    }

    public static func kernelSide(_ real: RealProbeResult) -> Side {
        func facts(_ pages: [RealPage]) -> [PageFacts] {
            pages.map { p in
                PageFacts(present: p.present, swapped: p.swapped, zero: p.present && p.zero,
                          exclusive: p.present && !p.zero && p.exclusive,
                          frame: p.present && !p.zero ? p.pfn : nil,
                          folioPages: p.present && !p.zero ? p.folioPages : nil,
                          file: p.present && !p.zero && p.raw & (1 << 61) != 0)
            }
        }
        return Side(bufferSize: UInt64(real.npages * ProbeScript.pageSize), parent: facts(real.parent),
                    child: real.child.map(facts), parentPinnedKB: real.scriptPinnedKB(of: .parent),
                    childPinnedKB: real.child == nil ? nil : real.scriptPinnedKB(of: .child),
                    parentAnonHugeKB: real.parentAnonHugeKB, childAnonHugeKB: real.child == nil ? nil : real.childAnonHugeKB)
    }

    // MARK: - Comparison

    /// First per process (parent, then child), pinned_vm and AnonHugePages when both sides know them
    /// (`parent VmPin engine=28 kB kernel=0 kB`). Then per page, in order: for the parent then the
    /// child, `swapped`, then `present` (when it differs the page's other facts are not reported: they
    /// follow from it), then `zero` (likewise), then `exclusive`, `file` and `folio` (pages in it, when
    /// both sides know it); then `shared` (parent and child map the same non-zero frame), skipped for
    /// a page whose presence or zero-ness already differed.
    public static func compare(engine: Side, kernel: Side) -> [String] {
        var out: [String] = []
        let parentName = ProbeActor.parent.rawValue, childName = ProbeActor.child.rawValue
        if engine.bufferSize != kernel.bufferSize {
            out.append("buffer size engine=\(engine.bufferSize) kernel=\(kernel.bufferSize)")
        }
        switch (engine.child, kernel.child) {
        case (nil, .some): out.append("\(childName): process missing in engine state")
        case (.some, nil): out.append("\(childName): process missing in kernel result (the script did not fork)")
        default: break
        }
        for actor in ProbeActor.allCases {
            if let e = engine.pinnedKB(of: actor), let k = kernel.pinnedKB(of: actor), e != k {
                out.append("\(actor.rawValue) VmPin engine=\(e) kB kernel=\(k) kB")
            }
            if let e = engine.anonHugeKB(of: actor), let k = kernel.anonHugeKB(of: actor), e != k {
                out.append("\(actor.rawValue) AnonHugePages engine=\(e) kB kernel=\(k) kB")
            }
        }
        let npages = min(engine.parent.count, kernel.parent.count)
        for i in 0..<npages {
            var basicDiffers = false
            var processes: [(String, PageFacts, PageFacts)] = [(parentName, engine.parent[i], kernel.parent[i])]
            if let ec = engine.child, let kc = kernel.child, i < ec.count, i < kc.count {
                processes.append((childName, ec[i], kc[i]))
            }
            for (name, e, k) in processes {
                if e.swapped != k.swapped {
                    out.append("page \(i): \(name) swapped engine=\(e.swapped) kernel=\(k.swapped)")
                }
                if e.present != k.present {
                    out.append("page \(i): \(name) present engine=\(e.present) kernel=\(k.present)")
                    basicDiffers = true
                    continue
                }
                guard e.present else { continue }
                if e.zero != k.zero {
                    out.append("page \(i): \(name) zero engine=\(e.zero) kernel=\(k.zero)")
                    basicDiffers = true
                    continue
                }
                if e.exclusive != k.exclusive {
                    out.append("page \(i): \(name) exclusive engine=\(e.exclusive) kernel=\(k.exclusive)")
                }
                if e.file != k.file {
                    out.append("page \(i): \(name) file engine=\(e.file) kernel=\(k.file)")
                }
                if let ef = e.folioPages, let kf = k.folioPages, ef != kf {
                    out.append("page \(i): \(name) folio engine=\(ef) kernel=\(kf)")
                }
            }
            if processes.count == 2 && !basicDiffers {
                let eShared = processes[1].1.shares(with: processes[0].1)
                let kShared = processes[1].2.shares(with: processes[0].2)
                if eShared != kShared {
                    out.append("page \(i): shared engine=\(eShared) kernel=\(kShared)")
                }
            }
        }
        return out
    }

    /// Rows of runs of pages with identical cells; each cell is `engine/kernel`; then, when the kernel
    /// reported them, `VmPin kB` and `AnonHuge kB` rows (parent, child). Rows with a mismatch end in
    /// `<-- differs`, or `<-- changed after 6.12` for pages in `explainedPages`.
    public static func table(engine: Side, kernel: Side, explainedPages: Set<Int> = []) -> String {
        let hasChild = engine.child != nil || kernel.child != nil
        let npages = min(engine.parent.count, kernel.parent.count)
        let mismatchPages = Set(compare(engine: engine, kernel: kernel).compactMap(pageIndex(ofMismatch:)))

        func facts(_ side: Side, _ child: Bool, _ i: Int) -> PageFacts? {
            child ? side.child.flatMap { i < $0.count ? $0[i] : nil } : side.parent[i]
        }
        func cell(_ f: PageFacts?) -> String { f?.cell ?? "n/a" }
        func shared(_ side: Side, _ i: Int) -> String {
            guard let c = facts(side, true, i) else { return "n/a" }
            return c.shares(with: side.parent[i]) ? "yes" : "no"
        }

        let widths = [15, 22, 22]
        var lines: [String] = []
        var header = probePad("pages", widths[0]) + probePad("parent engine/kernel", widths[1])
        if hasChild { header += probePad("child engine/kernel", widths[2]) + "shared engine/kernel" }
        lines.append(probeTrimTrailingSpaces(header))

        var runStart = 0
        var runRow: String?
        var runMark = ""
        func flush(_ end: Int) {
            guard let row = runRow else { return }
            let label = ProbeScript.pageRangeText(runStart..<end)
            lines.append(probeTrimTrailingSpaces(probePad(label, widths[0]) + row + runMark))
        }
        for i in 0..<npages {
            var row = probePad("\(cell(facts(engine, false, i)))/\(cell(facts(kernel, false, i)))", widths[1])
            if hasChild {
                row += probePad("\(cell(facts(engine, true, i)))/\(cell(facts(kernel, true, i)))", widths[2])
                row += "\(shared(engine, i))/\(shared(kernel, i))"
            }
            let mark = !mismatchPages.contains(i) ? "" : explainedPages.contains(i) ? "  <-- changed after 6.12" : "  <-- differs"
            if row != runRow || mark != runMark {
                flush(i)
                runStart = i
                runRow = row
                runMark = mark
            }
        }
        flush(npages)
        // Per-process counters, when the kernel side reports them.
        func counterRow(_ label: String, _ value: (Side, ProbeActor) -> Int?) {
            guard value(kernel, .parent) != nil || value(kernel, .child) != nil else { return }
            func cell(_ actor: ProbeActor) -> String {
                "\(value(engine, actor).map(String.init) ?? "n/a")/\(value(kernel, actor).map(String.init) ?? "n/a")"
            }
            let differs = ProbeActor.allCases.contains { actor in
                if let e = value(engine, actor), let k = value(kernel, actor) { return e != k }
                return false
            }
            var row = probePad(label, widths[0]) + probePad(cell(.parent), widths[1])
            if hasChild { row += cell(.child) }
            lines.append(probeTrimTrailingSpaces(row + (differs ? "  <-- differs" : "")))
        }
        counterRow("VmPin kB") { $0.pinnedKB(of: $1) }
        counterRow("AnonHuge kB") { $0.anonHugeKB(of: $1) }
        return lines.joined(separator: "\n")
    }

    /// `page 5: ...` → 5.
    static func pageIndex(ofMismatch line: String) -> Int? {
        guard line.hasPrefix("page "), let colon = line.firstIndex(of: ":") else { return nil }
        return Int(line[line.index(line.startIndex, offsetBy: 5)..<colon])
    }
}
