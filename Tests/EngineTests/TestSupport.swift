// Helpers for the Engine tests: run a script statement by statement, and look at whole things
// (a buffer's PTEs, a frame record, the VMA list, the buddy free lists) as plain Equatable values.

import XCTest

@testable import Engine

let KiB: UInt64 = 1024
let MiB: UInt64 = 1024 * 1024
let GiB: UInt64 = 1024 * 1024 * 1024

/// One page as a process sees it through its page table.
struct PTEView: Equatable, CustomStringConvertible {
    var present = false
    var zero = false
    var writable = false
    var swapped = false
    var huge = false
    /// The frame when present (the zero page included), nil otherwise.
    var pfn: Int?

    static let none = PTEView()

    init(present: Bool = false, zero: Bool = false, writable: Bool = false, swapped: Bool = false, huge: Bool = false, pfn: Int? = nil) {
        self.present = present
        self.zero = zero
        self.writable = writable
        self.swapped = swapped
        self.huge = huge
        self.pfn = pfn
    }

    /// What the query layer says of the page.
    init(_ page: PageInfo) {
        present = page.present
        zero = page.pte.zero
        writable = page.pte.writable
        swapped = page.swapped
        huge = page.pte.huge
        pfn = page.pte.pfn
    }

    var isNone: Bool { self == .none }

    /// A small zero-page PTE: present, read-only.
    static func zeroPage(_ zeroPfn: Int) -> PTEView { PTEView(present: true, zero: true, writable: false, pfn: zeroPfn) }
    static func page(_ pfn: Int, writable: Bool, huge: Bool = false) -> PTEView {
        PTEView(present: true, zero: false, writable: writable, huge: huge, pfn: pfn)
    }
    static let swapEntry = PTEView(swapped: true)

    var description: String {
        if swapped { return "swap" }
        if !present { return "none" }
        return "\(zero ? "zero" : "page")(\(pfn!)\(writable ? ",w" : ",ro")\(huge ? ",huge" : ""))"
    }
}

/// A page's sharing status against another process at the same virtual address:
/// (present, zero, writable, the same frame is mapped there by the other process).
struct ShareView: Equatable, CustomStringConvertible {
    var present: Bool
    var zero: Bool
    var writable: Bool
    var sharedWithOther: Bool

    var description: String { "(\(present ? "P" : "-")\(zero ? "Z" : "-")\(writable ? "W" : "-")\(sharedWithOther ? "S" : "-"))" }

    static let sharedRO = ShareView(present: true, zero: false, writable: false, sharedWithOther: true)
    static let privateRW = ShareView(present: true, zero: false, writable: true, sharedWithOther: false)
    static let privateRO = ShareView(present: true, zero: false, writable: false, sharedWithOther: false)
    static let zeroRO = ShareView(present: true, zero: true, writable: false, sharedWithOther: false)
    static let none = ShareView(present: false, zero: false, writable: false, sharedWithOther: false)
}

/// struct page without the LRU stamp.
struct FrameView: Hashable, CustomStringConvertible {
    var use: FrameUse
    var flags: UInt8
    var refcount: Int32
    var mapcount: Int32
    var pincount: Int32
    var owner: Int32

    var description: String { "\(use.name) flags=\(flags) ref=\(refcount) map=\(mapcount) pin=\(pincount) owner=\(owner)" }

    static func anon(ref: Int32, map: Int32, exclusive: Bool, owner: Int32, flags extra: UInt8 = 0) -> FrameView {
        FrameView(use: .anon, flags: (exclusive ? FrameFlag.anonExclusive : 0) | extra, refcount: ref, mapcount: map, pincount: 0, owner: owner)
    }

    static let free = FrameView(use: .free, flags: 0, refcount: 0, mapcount: 0, pincount: 0, owner: -1)
}

/// A VMA as /proc/PID/maps would show it, plus the flags the model keeps.
struct VMAView: Equatable, CustomStringConvertible {
    var start: UInt64
    var end: UInt64
    var perms: String
    var flags: VMFlags
    var kind: VMAKind

    init(start: UInt64, end: UInt64, perms: String, flags: VMFlags, kind: VMAKind) {
        self.start = start
        self.end = end
        self.perms = perms
        self.flags = flags
        self.kind = kind
    }

    init(_ v: VMA) {
        start = v.start
        end = v.end
        perms = v.permissions
        flags = v.flags
        kind = v.kind
    }

    static func anon(_ start: UInt64, _ end: UInt64, _ extra: VMFlags = []) -> VMAView {
        let flags: VMFlags = VMFlags([.read, .write]).union(extra)
        return VMAView(start: start, end: end, perms: flags.contains(.shared) ? "rw-s" : "rw-p", flags: flags, kind: .anon)
    }

    var description: String { "\(String(start, radix: 16))-\(String(end, radix: 16)) \(perms) \(kind) flags=\(flags.rawValue)" }
}

/// The VMAs every process starts with (a small PIE image and a stack), with `middle` between them.
func standardVMAs(_ middle: [VMAView] = []) -> [VMAView] {
    let image = [
        VMAView(start: imageBase, end: imageBase + 0x2000, perms: "r-xp", flags: [.read, .exec], kind: .image),
        VMAView(start: imageBase + 0x2000, end: imageBase + 0x3000, perms: "r--p", flags: [.read], kind: .image),
        VMAView(start: imageBase + 0x3000, end: imageBase + 0x5000, perms: "rw-p", flags: [.read, .write], kind: .image),
    ]
    let stack = VMAView(start: stackTop - 0x21000, end: stackTop, perms: "rw-p", flags: [.read, .write, .growsdown], kind: .stack)
    return image + middle.sorted { $0.start < $1.start } + [stack]
}

/// A booted Engine driven one statement at a time (through a Timeline, so steps can be undone):
/// the one harness every Engine test uses. Trace files come from `traces`.
struct EngineRun {
    var timeline: Timeline
    var traces: IOArrayTraces?

    init(timeline: Timeline, traces: IOArrayTraces? = nil) {
        self.timeline = timeline
        // Debug builds check the whole state after every step on machines up to 1 GiB.
        self.timeline.invariantChecks = .default
        self.traces = traces
    }

    var engine: Engine { timeline.engine }
    var state: EngineState { timeline.engine.state }
    var records: [StepRecord] { Array(timeline.records) }
    var last: StepRecord { timeline.records.last! }
    var zeroPfn: Int { Int(state.meta.zeroPfn) }

    /// Parses one line and applies it as the next step.
    @discardableResult
    mutating func step(_ line: String, file: StaticString = #filePath, line l: UInt = #line) -> StepRecord {
        do {
            guard let st = try parseStatement(line) else {
                XCTFail("'\(line)' is not a statement", file: file, line: l)
                return last
            }
            let r = timeline.apply(st)
            // Debug builds check the whole state after each step (machines up to 1 GiB): no test may break it.
            XCTAssertEqual(r.bugs, [], "'\(line)' left the Engine in a state it should never reach", file: file, line: l)
            return r
        } catch {
            XCTFail("'\(line)' does not parse: \(error.rendered)", file: file, line: l)
            return last
        }
    }

    /// Applies a line and asserts its outcome.
    @discardableResult
    mutating func expect(_ line: String, _ outcome: Outcome, file: StaticString = #filePath, line l: UInt = #line) -> StepRecord {
        let r = step(line, file: file, line: l)
        XCTAssertEqual(r.outcome, outcome, "'\(line)': \(r.text)", file: file, line: l)
        return r
    }

    @discardableResult
    mutating func ok(_ line: String, file: StaticString = #filePath, line l: UInt = #line) -> StepRecord {
        expect(line, .ok, file: file, line: l)
    }

    func p(_ name: String) -> Int {
        guard let i = state.processIndex(named: name) else { fatalError("no process \(name)") }
        return i
    }

    func d(_ name: String) -> Int {
        guard let i = state.deviceIndex(named: name) else { fatalError("no device \(name)") }
        return i
    }

    func meta(_ name: String) -> ProcessMeta { state.processes[p(name)].meta }
    func pt(_ name: String) -> PageTable { state.processes[p(name)].pt }
    func pid(_ name: String) -> Int32 { meta(name).pid }
    func dev(_ name: String) -> DeviceState { state.devices[d(name)] }

    /// The named buffer; a test failure (and an empty buffer, so the test goes on) when there is none.
    func buffer(_ proc: String, _ buf: String, file: StaticString = #filePath, line: UInt = #line) -> Buffer {
        guard let b = meta(proc).buffer(named: buf) else {
            XCTFail("\(proc) has no buffer \(buf)", file: file, line: line)
            return Buffer(name: buf, start: 0, size: 0, kind: .mmap, chunkStart: 0, chunkSize: 0)
        }
        return b
    }

    /// The virtual page numbers a buffer covers.
    func vpns(_ proc: String, _ buf: String) -> [UInt64] {
        let b = buffer(proc, buf)
        return Array((b.firstPage >> pageShift)..<(b.endPage >> pageShift))
    }

    /// Every page of a buffer, as the query layer describes it, in address order.
    func ptes(_ proc: String, _ buf: String) -> [PTEView] { ptes(proc, vpns: vpns(proc, buf)) }

    /// PTEs of `proc` for an explicit page range (a buffer that no longer exists, say).
    func ptes(_ proc: String, vpns: [UInt64]) -> [PTEView] {
        let i = p(proc)
        return vpns.map { PTEView(state.page(i, vpn: $0)) }
    }

    /// Every page of `proc`'s buffer compared with the same address in `other`.
    func shares(_ proc: String, _ buf: String, with other: String) -> [ShareView] {
        let mine = p(proc), theirs = p(other)
        return vpns(proc, buf).map { vpn in
            let a = state.page(mine, vpn: vpn), b = state.page(theirs, vpn: vpn)
            let same = a.present && !a.pte.zero && b.present && !b.pte.zero && a.pte.pfn == b.pte.pfn
            return ShareView(present: a.present, zero: a.pte.zero, writable: a.pte.writable, sharedWithOther: same)
        }
    }

    func frame(_ pfn: Int) -> FrameView { frameView(state, pfn) }

    /// The frames a buffer's present, non-zero PTEs map, in page order.
    func pfns(_ proc: String, _ buf: String) -> [Int] {
        ptes(proc, buf).compactMap { $0.present && !$0.zero ? $0.pfn : nil }
    }

    /// The frame behind every page of a buffer (the zero page included; -1 when not present).
    func pageFrames(_ proc: String, _ buf: String) -> [Int] { ptes(proc, buf).map { $0.pfn ?? -1 } }

    func vmas(_ proc: String) -> [VMAView] { meta(proc).vmas.map(VMAView.init) }

    /// Frames whose `use` is `u`.
    func frames(use u: FrameUse) -> [Int] {
        state.phys.use.indices.filter { state.phys.use[$0] == u.rawValue }
    }

    /// Frames owned by a pid (allocated on its behalf and not freed).
    func frames(owner: Int32) -> [Int] {
        state.phys.owner.indices.filter { state.phys.owner[$0] == owner }
    }

    func ioptes(_ dev: String) -> [IOPTEView] { self.dev(dev).sortedIOPTEs.map(IOPTEView.init) }

    func mapping(_ dev: String, _ proc: String, _ buf: String) -> IOMapping? {
        self.dev(dev).mappings.first { $0.process == proc && $0.buffer == buf }
    }

    func refcount(_ pfn: Int) -> Int32 { state.phys.refcount[pfn] }
    func pincount(_ pfn: Int) -> Int32 { state.phys.pincount[pfn] }
    func use(_ pfn: Int) -> FrameUse { state.phys.frameUse(pfn) }

    /// (refcount, mapcount, pincount) of each frame.
    func counts(_ pfns: [Int]) -> [IOFrameCounts] {
        pfns.map { IOFrameCounts(ref: state.phys.refcount[$0], map: state.phys.mapcount[$0], pin: state.phys.pincount[$0]) }
    }
}

func frameView(_ s: EngineState, _ pfn: Int) -> FrameView {
    FrameView(use: s.phys.frameUse(pfn), flags: s.phys.flags[pfn], refcount: s.phys.refcount[pfn],
              mapcount: s.phys.mapcount[pfn], pincount: s.phys.pincount[pfn], owner: s.phys.owner[pfn])
}

/// free_area[0...10] as lists of head pfns, head to tail.
func freeLists(_ s: EngineState) -> [[Int]] { (0...maxPageOrder).map { s.phys.freeList(order: $0) } }

/// free_area[0...10] as sorted sets of head pfns (which blocks are free, whatever their list order).
func freeBlockSets(_ s: EngineState) -> [[Int]] { freeLists(s).map { $0.sorted() } }

/// Frames sitting in free blocks of order ≥ `order`.
func freeFramesInBlocks(_ s: EngineState, atLeast order: Int) -> Int {
    (order...maxPageOrder).reduce(0) { $0 + s.phys.freeList(order: $1).count << $1 }
}

/// The page-table frames a process holds: PGD, upper tables and PTE tables.
func tableFrames(_ pt: PageTable) -> Set<Int> {
    var s = Set(pt.upper.values.map(Int.init))
    if pt.pgd >= 0 { s.insert(Int(pt.pgd)) }
    for t in pt.tables.values { s.insert(Int(t.pfn)) }
    return s
}

/// Names what differs between two states (for failure messages; an EngineState prints badly):
/// every fact StateView holds, then the allocator's bookkeeping that StateView leaves out.
func stateDiff(_ a: EngineState, _ b: EngineState) -> String {
    var out = StateView.differences(expected: StateView(b), actual: StateView(a))
    if a.config != b.config { out.append("config") }
    if a.meta.allocClock != b.meta.allocClock || a.meta.swapHint != b.meta.swapHint || a.meta.kernelReservedFrames != b.meta.kernelReservedFrames {
        out.append("machine bookkeeping \(a.meta) vs \(b.meta)")
    }
    if a.phys != b.phys {
        let n = min(a.phys.frameCount, b.phys.frameCount)
        if let pfn = (0..<n).first(where: { a.phys.stamp[$0] != b.phys.stamp[$0] }) {
            out.append("frame \(pfn) LRU stamp \(a.phys.stamp[pfn]) vs \(b.phys.stamp[pfn])")
        }
        if freeLists(a) != freeLists(b) { out.append("free lists \(freeLists(a)) vs \(freeLists(b))") }
        if a.phys.freeOrder != b.phys.freeOrder { out.append("freeOrder") }
        if out.isEmpty { out.append("phys (internal list links)") }
    }
    if out.isEmpty && a != b { out.append("other fields (page-table internals, IOTLB stamps)") }
    return out.joined(separator: "; ")
}

/// A script split into its machine and steps.
func plan(_ source: String, file: StaticString = #filePath, line: UInt = #line) -> StepPlan? {
    do {
        return StepPlan(try parseScript(source, fileName: "test.ump"))
    } catch {
        XCTFail("script does not parse:\n\(error.rendered)", file: file, line: line)
        return nil
    }
}

extension XCTestCase {
    /// Boots the script's machine and applies its steps one by one (expects are not checked here).
    func run(_ source: String, traces: IOArrayTraces? = nil, file: StaticString = #filePath, line: UInt = #line) -> EngineRun {
        guard let plan = plan(source, file: file, line: line) else {
            return EngineRun(timeline: Timeline(engine: Engine(config: MachineConfig()), traces: traces, policy: .none), traces: traces)
        }
        var r = EngineRun(timeline: Timeline(plan: plan, traces: traces, policy: .none), traces: traces)
        for step in plan.steps { r.timeline.apply(step.statement, notes: step.notes) }
        return r
    }

    /// The same, asserting that every step of the setup succeeds: a scenario to drive further.
    func scenario(_ source: String, traces: IOArrayTraces? = nil, file: StaticString = #filePath, line: UInt = #line) -> EngineRun {
        guard let plan = plan(source, file: file, line: line) else {
            return EngineRun(timeline: Timeline(engine: Engine(config: MachineConfig()), traces: traces, policy: .none), traces: traces)
        }
        var r = EngineRun(timeline: Timeline(plan: plan, traces: traces, policy: .none), traces: traces)
        for st in plan.steps {
            let rec = r.timeline.apply(st.statement, notes: st.notes)
            XCTAssertEqual(rec.outcome, .ok, "setup step '\(st.statement.text)': \(rec.text)", file: file, line: line)
            XCTAssertEqual(rec.bugs, [], "setup step '\(st.statement.text)' broke an invariant", file: file, line: line)
        }
        return r
    }

    /// Runs `source` step by step; after every step, undoing it must give back exactly the state
    /// (and the STATE JSON) from before it. At the end, undoing everything must give the booted machine.
    /// `engine` replaces the script's booted machine (for states a script cannot build).
    /// Returns the records (for checks that the scenario did what it meant to).
    @discardableResult
    func assertEveryStepUndoes(_ source: String, startingFrom engine: Engine? = nil, traces: IOArrayTraces? = nil,
                               file: StaticString = #filePath, line: UInt = #line) -> [StepRecord] {
        guard let plan = plan(source, file: file, line: line) else { return [] }
        var timeline = Timeline(engine: engine ?? Engine(config: MachineConfig(plan.machine)), traces: traces, policy: .none)
        let boot = timeline.engine.state
        let bootJSON = timeline.engine.stateJSON()
        for step in plan.steps {
            let before = timeline.engine.state
            let beforeJSON = timeline.engine.stateJSON()
            let r = timeline.apply(step.statement, notes: step.notes)
            var back = timeline
            back.stepBack()
            let what = "line \(step.statement.location.line) '\(step.statement.text)' (\(r.outcome.word))"
            XCTAssertTrue(back.engine.state == before, "undo of \(what) differs: \(stateDiff(back.engine.state, before))",
                          file: file, line: line)
            let json = back.engine.stateJSON()
            if json != beforeJSON {
                let i = zip(json, beforeJSON).prefix { $0 == $1 }.count
                XCTFail("undo of \(what): STATE JSON differs from character \(i): …\(json.dropFirst(max(0, i - 60)).prefix(160))… vs …\(beforeJSON.dropFirst(max(0, i - 60)).prefix(160))…",
                        file: file, line: line)
            }
        }
        let records = Array(timeline.records)
        while timeline.stepBack() != nil {}
        XCTAssertTrue(timeline.engine.state == boot, "undoing every step does not give the booted machine: \(stateDiff(timeline.engine.state, boot))",
                      file: file, line: line)
        XCTAssertEqual(timeline.engine.stateJSON(), bootJSON, "STATE JSON after undoing everything", file: file, line: line)
        return records
    }
}
