// `PROC trace FILE format=lackey`: a real program's memory accesses (valgrind --tool=lackey
// --trace-mem=yes) replayed through the process's page tables. Every data access is a CPU touch
// (handle_mm_fault as for `read` and `write`); the VMAs the trace reaches are made as it reaches
// them, grouped as valgrind lays out a client on x86-64 (docs/model.md, "Traces").

/// One access of a trace.
public struct MemoryAccess: Equatable, Sendable {
    public enum Kind: UInt8, Sendable {
        /// `I`: an instruction fetch.
        case instruction
        /// ` L`: a data load.
        case load
        /// ` S`: a data store.
        case store
        /// ` M`: a modify (load and store of one location: one write access).
        case modify
    }

    public var address: UInt64
    public var size: UInt32
    public var kind: Kind

    public init(address: UInt64, size: UInt32, kind: Kind) {
        self.address = address
        self.size = size
        self.kind = kind
    }
}

/// A stream of accesses (a trace file); the Engine never opens files: the caller does.
public protocol MemoryAccessSource {
    /// Replaces `batch` with the next accesses; false at the end.
    mutating func nextBatch(_ batch: inout [MemoryAccess]) throws -> Bool
    /// Lines read so far (blank and `==PID==` lines included), for messages and the summary.
    var linesRead: Int { get }
}

/// What a trace step did, beside its events: for the narration, the JSON and the TUI.
public struct TraceSummary: Equatable, Sendable {
    public var lines = 0
    public var instructions = 0
    public var loads = 0
    public var stores = 0
    public var modifies = 0
    /// Text pages fetched from (file-backed: not modelled as frames).
    public var textPages = 0
    /// RSS in pages, sampled evenly through the trace (fewer than twice `TraceSummary.maxSamples`).
    public var rssSamples: [Int] = []
    /// The trace's VMAs after the step: buffer name, range and pages touched.
    public var vmas: [TraceVMA] = []

    public static let maxSamples = 64

    public var accesses: Int { instructions + loads + stores + modifies }

    /// RSS over the trace as a sparkline of `glyphs` (lowest to highest), at most `width` wide.
    public func sparkline(_ glyphs: [Character], width: Int = maxSamples) -> String {
        guard let top = rssSamples.max(), !rssSamples.isEmpty, !glyphs.isEmpty else { return "" }
        let n = min(width, rssSamples.count)
        var out = ""
        for i in 0..<n {
            let v = rssSamples[i * rssSamples.count / n]
            out.append(top == 0 ? glyphs[0] : glyphs[min(glyphs.count - 1, v * (glyphs.count - 1) / top)])
        }
        return out
    }
}

public struct TraceVMA: Equatable, Sendable {
    public var name: String
    public var start: UInt64
    public var end: UInt64
    /// Pages present (or, for text, fetched) in the VMA.
    public var pages: Int
}

/// The address classes a trace's VMAs are grouped in: valgrind's amd64 client layout.
enum TraceClass: String, CaseIterable {
    case text, data, heap, mmap, stack

    /// A static client loads at 0x400000 with its brk at 0x4000000 and mmaps from 0x4800000
    /// (a dynamic one: the PIE at 0x108000, ld.so at 0x4000000, its brk after it); the client stack
    /// ends at 0x1fff001000. Instruction fetches make text wherever they are.
    static func of(_ va: UInt64, instruction: Bool) -> TraceClass {
        if va >= 0x10_0000_0000 { return .stack }
        if instruction { return .text }
        if va < 0x400_0000 { return .data }
        if va < 0x480_0000 { return .heap }
        return .mmap
    }

    var label: String { "[trace \(rawValue)]" }
    var flags: VMFlags { self == .text ? [.read, .exec] : self == .stack ? [.read, .write, .growsdown] : [.read, .write] }
    var kind: VMAKind { self == .text ? .image : self == .stack ? .stack : .anon }
}

extension Engine {
    /// How far apart two touched pages of one class may be and still share a VMA.
    static let traceGap: UInt64 = 1 << 20

    mutating func doTrace(_ p: Int, path: String, traces: (any TraceProvider)?, _ j: inout StepJournal) -> OpResult {
        let name = state.processes[p].meta.name
        guard let traces else { return .fail(.errno("ENOENT"), "\(name) trace \(path): no trace files can be read here") }
        var source: any MemoryAccessSource
        do {
            source = try traces.openMemoryTrace(path)
        } catch {
            return .fail(.errno("ENOENT"), "\(name) trace: \(error)")
        }
        var summary = TraceSummary()
        var textPages = Set<UInt64>()
        var lastVPN = UInt64.max
        var lastWritable = false
        var interval = 1, sinceSample = 0
        var batch: [MemoryAccess] = []
        batch.reserveCapacity(1 << 14)
        var stop: OpResult?
        let rssBefore = state.processes[p].meta.rssPages
        replay: do {
            while try source.nextBatch(&batch) {
                if !j.poll(source.linesRead, of: 0, .lines) { break replay }
                for a in batch {
                    switch a.kind {
                    case .instruction: summary.instructions += 1
                    case .load: summary.loads += 1
                    case .store: summary.stores += 1
                    case .modify: summary.modifies += 1
                    }
                    sinceSample += 1
                    if sinceSample == interval {
                        sinceSample = 0
                        summary.rssSamples.append(state.processes[p].meta.rssPages)
                        if summary.rssSamples.count == 2 * TraceSummary.maxSamples {
                            // Keep every other sample and sample half as often: evenly spaced, bounded.
                            summary.rssSamples = stride(from: 1, to: summary.rssSamples.count, by: 2).map { summary.rssSamples[$0] }
                            interval *= 2
                        }
                    }
                    let write = a.kind == .store || a.kind == .modify
                    let first = a.address >> pageShift
                    let last = (a.address &+ UInt64(max(a.size, 1)) &- 1) >> pageShift
                    var vpn = first
                    while true {
                        if vpn != lastVPN || (write && !lastWritable) {
                            if let failure = traceTouch(p, vpn: vpn, instruction: a.kind == .instruction, write: write,
                                                        textPages: &textPages, lastWritable: &lastWritable, &j) {
                                stop = failure
                                break replay
                            }
                            lastVPN = vpn
                        }
                        if vpn >= last { break }
                        vpn += 1
                    }
                }
            }
        } catch {
            summary.lines = source.linesRead
            j.trace = summary
            return .fail(.errno("EINVAL"), "\(name) trace \(path): \(error)")
        }
        summary.lines = source.linesRead
        summary.rssSamples.append(state.processes[p].meta.rssPages)
        summary.textPages = textPages.count
        syncTraceBuffers(p, textPages: textPages, &summary, &j)
        j.trace = summary
        if let stop { return OpResult(outcome: stop.outcome, text: "\(name) replays \(path): " + stop.text) }
        let rss = state.processes[p].meta.rssPages
        var text = "\(name) replays \(path) (valgrind lackey): \(summary.accesses) accesses"
        text += " (\(summary.instructions) instruction fetches, \(summary.loads) loads, \(summary.stores) stores, \(summary.modifies) modifies)"
        text += " through its page tables; \(plural(summary.vmas.count, "VMA")) of the trace"
        text += ", rss \(formatSize(UInt64(rssBefore) << pageShift)) → \(formatSize(UInt64(rss) << pageShift))"
        if summary.textPages > 0 {
            text += "; \(plural(summary.textPages, "text page")) fetched (file-backed: filemap_fault maps them from the page cache, not modelled as frames)"
        }
        return OpResult(text: text)
    }

    /// One page of one access: its VMA (made or grown as the trace reaches it), then a CPU touch.
    /// Returns the outcome that stops the replay, if any.
    private mutating func traceTouch(_ p: Int, vpn: UInt64, instruction: Bool, write: Bool, textPages: inout Set<UInt64>,
                                     lastWritable: inout Bool, _ j: inout StepJournal) -> OpResult? {
        let va = vpn << pageShift
        guard va < stackTop else {
            // Above TASK_SIZE: kernel addresses, never a user mapping.
            exitProcess(p, reason: "killed by SIGSEGV", &j)
            return .fail(.signal("SIGSEGV"), "an access at \(hex(va)): SIGSEGV, above TASK_SIZE (\(hex(stackTop))): no user mapping can be there")
        }
        var v = state.processes[p].meta.vmaIndex(containing: va)
        if v == nil { v = traceVMA(p, va: va, instruction: instruction, &j) }
        guard let v else {
            // Below mmap_min_addr: no mapping can exist, so the access faults with nothing to map.
            exitProcess(p, reason: "killed by SIGSEGV", &j)
            return .fail(.signal("SIGSEGV"), "an access at \(hex(va)): SIGSEGV, below mmap_min_addr (\(hex(mmapMinAddr))) no VMA can exist")
        }
        let vma = state.processes[p].meta.vmas[v]
        if vma.kind == .image && (vma.label == TraceClass.text.label || (instruction && vma.flags.contains(.exec))) {
            // File-backed text: fetched from the page cache, no frame here.
            guard write, vma.label == TraceClass.text.label else {
                textPages.insert(vpn)
                lastWritable = false
                return nil
            }
            // A store into what the trace took for text: that page is data after all.
            carveTraceData(p, va: va, &j)
        }
        let r = touchRange(p, start: va, end: va + 1, write: write, stores: write, &j)
        switch r {
        case .ok:
            lastWritable = state.processes[p].pt.entry(vpn: vpn).writable
            return nil
        case let .sigsegv(reason):
            exitProcess(p, reason: "killed by SIGSEGV", &j)
            return .fail(.signal("SIGSEGV"), "\(write ? "a store" : "a load") at \(hex(va)): SIGSEGV, \(reason)")
        case let .sigbus(reason):
            exitProcess(p, reason: "killed by SIGBUS", &j)
            return .fail(.signal("SIGBUS"), "\(write ? "a store" : "a load") at \(hex(va)): SIGBUS, \(reason)")
        case .oom:
            return .fail(.oom, "a touch at \(hex(va)): out of memory")
        }
    }

    /// The VMA for a page no VMA holds: the nearest VMA of its class within `traceGap` grows to it
    /// (when nothing lies between), else a new one. Returns its index.
    private mutating func traceVMA(_ p: Int, va: UInt64, instruction: Bool, _ j: inout StepJournal) -> Int? {
        let cls = TraceClass.of(va, instruction: instruction)
        let vmas = state.processes[p].meta.vmas
        // The VMAs just below and just above va.
        let above = vmas.firstIndex { $0.start > va }
        let below = (above ?? vmas.count) - 1
        if below >= 0, vmas[below].label == cls.label, va - vmas[below].end < Engine.traceGap {
            vmaUpdate(p, at: below, &j) { $0.end = va + pageSize }
            return below
        }
        if let above, vmas[above].label == cls.label, vmas[above].start - va <= Engine.traceGap {
            vmaUpdate(p, at: above, &j) { $0.start = va }
            return above
        }
        guard va >= mmapMinAddr else { return nil }   // below mmap_min_addr no VMA can be
        let vma = VMA(start: va, end: va + pageSize, flags: cls.flags, kind: cls.kind, anonVMA: 0, shmem: 0, shmemOffset: 0, label: cls.label)
        let i = above ?? vmas.count
        vmaInsert(p, vma, at: i, &j)
        return i
    }

    /// Turns the page at `va` of a trace text VMA (which holds it) into trace data (split out, rw-).
    private mutating func carveTraceData(_ p: Int, va: UInt64, _ j: inout StepJournal) {
        guard let i = isolateVMAs(p, start: va, end: va + pageSize, &j).first else { return }
        let cls = TraceClass.of(va, instruction: false)
        vmaUpdate(p, at: i, &j) {
            $0.flags = cls.flags
            $0.kind = cls.kind
            $0.label = cls.label
        }
    }

    /// One buffer of kind `trace` per trace VMA (text, data, heap, mmap, stack; mmap2, ... when a
    /// class has several), and the summary's per-VMA page counts.
    private mutating func syncTraceBuffers(_ p: Int, textPages: Set<UInt64>, _ summary: inout TraceSummary, _ j: inout StepJournal) {
        let vmas = state.processes[p].meta.vmas
        var seen: [TraceClass: Int] = [:]
        var wanted: [Buffer] = []
        for vma in vmas {
            guard let cls = TraceClass.allCases.first(where: { $0.label == vma.label }) else { continue }
            seen[cls, default: 0] += 1
            let n = seen[cls, default: 1]
            var name = n == 1 ? cls.rawValue : "\(cls.rawValue)\(n)"
            // A buffer the script named so keeps its name; the trace's takes a suffix.
            if let other = state.processes[p].meta.buffer(named: name), other.kind != .trace { name += "_trace" }
            wanted.append(Buffer(name: name, start: vma.start, size: vma.length, kind: .trace, chunkStart: vma.start, chunkSize: vma.length))
            var pages = 0
            for vpn in (vma.start >> pageShift)..<(vma.end >> pageShift) {
                if cls == .text ? textPages.contains(vpn) : state.processes[p].pt.entry(vpn: vpn).present { pages += 1 }
            }
            summary.vmas.append(TraceVMA(name: name, start: vma.start, end: vma.end, pages: pages))
        }
        // Trace buffers that no longer match a VMA go; the others are replaced or added.
        for b in state.processes[p].meta.buffers where b.kind == .trace && !wanted.contains(where: { $0.name == b.name }) {
            bufferRemove(p, named: b.name, &j)
        }
        for b in wanted {
            if let old = state.processes[p].meta.buffer(named: b.name) {
                if old != b { bufferReplace(p, b, &j) }
            } else {
                bufferAppend(p, b, &j)
            }
        }
    }
}
