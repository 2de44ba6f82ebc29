// Compares the Engine's final STATE (SCENARIO.md, "JSON Lines") with what the real kernel showed
// for the same probe script (RealProbe). Compared per page and process: swapped, present, zero page,
// exclusive (Engine: frame mapcount == 1 and not the zero page; kernel: pagemap bit 56), and per
// page whether parent and child map the same (non-zero) frame. PFN values themselves differ between
// the Engine and the kernel and are never compared. Per process, the Engine's pinned_vm_pages × 4 KiB
// is compared with VmPin from /proc/self/status (for the parent, less its VmPin before the script).

import Foundation

public struct ProbeComparisonError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "probe comparison: \(message)" }
}

public enum ProbeComparison {
    /// The part of the Engine's STATE object the comparison reads. Unknown fields are ignored.
    public struct EngineState: Decodable, Sendable, Hashable {
        public struct Buffer: Decodable, Sendable, Hashable {
            public var name: String
            public var start: UInt64
            public var size: UInt64
        }

        public struct Page: Decodable, Sendable, Hashable {
            public var va: UInt64
            public var present: Bool
            public var pfn: UInt64?
            public var zero: Bool
            public var swapped: Bool

            enum CodingKeys: String, CodingKey { case va, present, pfn, zero, swapped }
            public init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                va = try c.decode(UInt64.self, forKey: .va)
                present = try c.decode(Bool.self, forKey: .present)
                pfn = try c.decodeIfPresent(UInt64.self, forKey: .pfn)
                zero = try c.decodeIfPresent(Bool.self, forKey: .zero) ?? false
                swapped = try c.decodeIfPresent(Bool.self, forKey: .swapped) ?? false
            }
        }

        public struct Process: Decodable, Sendable, Hashable {
            public var name: String
            public var buffers: [Buffer]
            public var pages: [Page]
            /// Pages charged to pinned_vm; nil when the state does not say.
            public var pinnedVMPages: Int?

            enum CodingKeys: String, CodingKey {
                case name, buffers, pages
                case pinnedVMPages = "pinned_vm_pages"
            }
            public init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                name = try c.decode(String.self, forKey: .name)
                buffers = try c.decodeIfPresent([Buffer].self, forKey: .buffers) ?? []
                pages = try c.decodeIfPresent([Page].self, forKey: .pages) ?? []
                pinnedVMPages = try c.decodeIfPresent(Int.self, forKey: .pinnedVMPages)
            }
        }

        public struct Frame: Decodable, Sendable, Hashable {
            public var pfn: UInt64
            public var mapcount: Int
            public var refcount: Int?
        }

        public var processes: [Process]
        public var frames: [Frame]

        enum CodingKeys: String, CodingKey { case processes, frames, final }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            // Accept the final JSON Lines object `{"final":STATE}` as well as STATE itself.
            if c.contains(.final) {
                self = try c.decode(EngineState.self, forKey: .final)
                return
            }
            processes = try c.decode([Process].self, forKey: .processes)
            frames = try c.decodeIfPresent([Frame].self, forKey: .frames) ?? []
        }

        public static func decode(_ data: Data) throws -> EngineState {
            do {
                return try JSONDecoder().decode(EngineState.self, from: data)
            } catch {
                throw ProbeComparisonError("cannot decode the Engine's state: \(error)")
            }
        }
    }

    /// The facts compared for one page of one process.
    public struct PageFacts: Sendable, Hashable {
        public var present: Bool
        public var swapped: Bool
        public var zero: Bool
        public var exclusive: Bool
        /// The frame when present and not the zero page (used only to decide sharing).
        public var frame: UInt64?

        public init(present: Bool, swapped: Bool = false, zero: Bool = false, exclusive: Bool = false, frame: UInt64? = nil) {
            self.present = present
            self.swapped = swapped
            self.zero = zero
            self.exclusive = exclusive
            self.frame = frame
        }

        public static let absent = PageFacts(present: false)

        /// `-`, `swap`, `zero`, `excl` (private, mapcount 1) or `anon` (mapped more than once).
        public var cell: String {
            if swapped { return "swap" }
            if !present { return "-" }
            if zero { return "zero" }
            return exclusive ? "excl" : "anon"
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

        public init(bufferSize: UInt64, parent: [PageFacts], child: [PageFacts]?,
                    parentPinnedKB: Int? = nil, childPinnedKB: Int? = nil) {
            self.bufferSize = bufferSize
            self.parent = parent
            self.child = child
            self.parentPinnedKB = parentPinnedKB
            self.childPinnedKB = childPinnedKB
        }

        public func pinnedKB(of actor: ProbeActor) -> Int? {
            actor == .parent ? parentPinnedKB : childPinnedKB
        }
    }

    public struct Report: Sendable, Hashable {
        public var mismatches: [String]
        public var table: String
        public var agrees: Bool { mismatches.isEmpty }
    }

    // MARK: - Entry points

    /// Human-readable mismatches (e.g. `page 5: child present engine=false kernel=true`), empty when
    /// the Engine and the kernel agree. Throws when the state cannot be decoded or has no `parent`
    /// process with the buffer.
    public static func compare(engineState: Data, real: RealProbeResult, buffer: String = "buf") throws -> [String] {
        try report(engineState: engineState, real: real, buffer: buffer).mismatches
    }

    /// A short table of both sides, one row per run of pages with the same facts.
    public static func table(engineState: Data, real: RealProbeResult, buffer: String = "buf") throws -> String {
        try report(engineState: engineState, real: real, buffer: buffer).table
    }

    public static func report(engineState: Data, real: RealProbeResult, buffer: String = "buf") throws -> Report {
        let state = try EngineState.decode(engineState)
        let engine = try engineSide(state, npages: real.npages, buffer: buffer)
        let kernel = kernelSide(real)
        return Report(mismatches: compare(engine: engine, kernel: kernel), table: table(engine: engine, kernel: kernel))
    }

    // MARK: - The two sides

    public static func engineSide(_ state: EngineState, npages: Int, buffer: String = "buf") throws -> Side {
        let parentName = ProbeActor.parent.rawValue, childName = ProbeActor.child.rawValue
        guard let parent = state.processes.first(where: { $0.name == parentName }) else {
            throw ProbeComparisonError("the Engine's state has no process \"\(parentName)\"")
        }
        guard let parentBuffer = parent.buffers.first(where: { $0.name == buffer }) else {
            throw ProbeComparisonError("process \"\(parentName)\" has no buffer \"\(buffer)\" in the Engine's state")
        }
        var mapcounts: [UInt64: Int] = [:]
        for frame in state.frames { mapcounts[frame.pfn] = frame.mapcount }

        func facts(_ process: EngineState.Process) -> [PageFacts] {
            // A forked child inherits the buffer at the same address; fall back to the parent's if absent.
            let buf = process.buffers.first(where: { $0.name == buffer }) ?? parentBuffer
            var pages = [PageFacts](repeating: .absent, count: npages)
            let pageSize = UInt64(ProbeScript.pageSize)
            for page in process.pages where page.va >= buf.start && page.va < buf.start + buf.size {
                let index = Int((page.va - buf.start) / pageSize)
                guard index < npages else { continue }
                let present = page.present
                let zero = present && page.zero
                let exclusive = present && !zero && page.pfn.map { mapcounts[$0] == 1 } == true
                pages[index] = PageFacts(present: present, swapped: page.swapped, zero: zero, exclusive: exclusive,
                                         frame: present && !zero ? page.pfn : nil)
            }
            return pages
        }

        let child = state.processes.first(where: { $0.name == childName })
        let pageKB = ProbeScript.pageSize / 1024
        return Side(bufferSize: parentBuffer.size, parent: facts(parent), child: child.map(facts),
                    parentPinnedKB: parent.pinnedVMPages.map { $0 * pageKB },
                    childPinnedKB: child?.pinnedVMPages.map { $0 * pageKB })
    }

    public static func kernelSide(_ real: RealProbeResult) -> Side {
        func facts(_ pages: [RealPage]) -> [PageFacts] {
            pages.map { p in
                PageFacts(present: p.present, swapped: p.swapped, zero: p.present && p.zero,
                          exclusive: p.present && !p.zero && p.exclusive,
                          frame: p.present && !p.zero ? p.pfn : nil)
            }
        }
        return Side(bufferSize: UInt64(real.npages * ProbeScript.pageSize), parent: facts(real.parent),
                    child: real.child.map(facts), parentPinnedKB: real.scriptPinnedKB(of: .parent),
                    childPinnedKB: real.child == nil ? nil : real.scriptPinnedKB(of: .child))
    }

    // MARK: - Comparison

    /// First per process (parent, then child), pinned_vm when both sides know it
    /// (`parent VmPin engine=28 kB kernel=0 kB`). Then per page, in order: for the parent then the child, `swapped`, then `present` (when it differs the
    /// page's other facts are not reported: they follow from it), then `zero` (likewise), then
    /// `exclusive`; then `shared` (parent and child map the same non-zero frame), skipped for a page
    /// whose presence or zero-ness already differed.
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
    /// reported VmPin, a `VmPin kB` row (parent, child). Rows with a mismatch end in `<-- differs`.
    public static func table(engine: Side, kernel: Side) -> String {
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

        let widths = [13, 22, 22]
        var lines: [String] = []
        var header = probePad("pages", widths[0]) + probePad("parent engine/kernel", widths[1])
        if hasChild { header += probePad("child engine/kernel", widths[2]) + "shared engine/kernel" }
        lines.append(probeTrimTrailingSpaces(header))

        var runStart = 0
        var runRow: String?
        var runDiffers = false
        func flush(_ end: Int) {
            guard let row = runRow else { return }
            let label = ProbeScript.pageRangeText(runStart..<end)
            lines.append(probeTrimTrailingSpaces(probePad(label, widths[0]) + row + (runDiffers ? "  <-- differs" : "")))
        }
        for i in 0..<npages {
            var row = probePad("\(cell(facts(engine, false, i)))/\(cell(facts(kernel, false, i)))", widths[1])
            if hasChild {
                row += probePad("\(cell(facts(engine, true, i)))/\(cell(facts(kernel, true, i)))", widths[2])
                row += "\(shared(engine, i))/\(shared(kernel, i))"
            }
            let differs = mismatchPages.contains(i)
            if row != runRow || differs != runDiffers {
                flush(i)
                runStart = i
                runRow = row
                runDiffers = differs
            }
        }
        flush(npages)
        // pinned_vm, when the kernel side reports VmPin.
        if kernel.parentPinnedKB != nil || kernel.childPinnedKB != nil {
            func pinCell(_ actor: ProbeActor) -> String {
                "\(engine.pinnedKB(of: actor).map(String.init) ?? "n/a")/\(kernel.pinnedKB(of: actor).map(String.init) ?? "n/a")"
            }
            let differs = ProbeActor.allCases.contains { actor in
                if let e = engine.pinnedKB(of: actor), let k = kernel.pinnedKB(of: actor) { return e != k }
                return false
            }
            var row = probePad("VmPin kB", widths[0]) + probePad(pinCell(.parent), widths[1])
            if hasChild { row += pinCell(.child) }
            lines.append(probeTrimTrailingSpaces(row + (differs ? "  <-- differs" : "")))
        }
        return lines.joined(separator: "\n")
    }

    /// `page 5: ...` → 5.
    static func pageIndex(ofMismatch line: String) -> Int? {
        guard line.hasPrefix("page "), let colon = line.firstIndex(of: ":") else { return nil }
        return Int(line[line.index(line.startIndex, offsetBy: 5)..<colon])
    }
}
