// Helpers for the pinning / IOMMU / IOTLB / DMA / sharing tests. Every name here starts with `io`
// or `IO` so it cannot clash with the other test files' helpers.

import XCTest

@testable import Engine

let ioK: UInt64 = 1024
let ioM: UInt64 = 1024 * 1024
let ioG: UInt64 = 1024 * 1024 * 1024

/// An IOPTE reduced to what the reference talks about: (iova, pa, size).
struct IOPTEView: Equatable, CustomStringConvertible {
    var iova: UInt64
    var pa: UInt64
    var size: UInt64

    init(_ iova: UInt64, _ pa: UInt64, _ size: UInt64) {
        self.iova = iova
        self.pa = pa
        self.size = size
    }

    init(_ e: IOPTE) { self.init(e.iova, e.pa, e.size) }

    var description: String { "(0x\(String(iova, radix: 16)), 0x\(String(pa, radix: 16)), \(formatSizeShort(size)))" }
}

/// `count` IOPTEs of `size` starting at (iova, pa), consecutive.
func ioRun(_ iova: UInt64, _ pa: UInt64, _ size: UInt64, count: Int) -> [IOPTEView] {
    (0..<UInt64(count)).map { IOPTEView(iova + $0 * size, pa + $0 * size, size) }
}

/// A `map_pages` run written as the reference's table writes it: pgsize × count.
func ioRuns(_ pairs: [(UInt64, UInt64)]) -> [PgsizeRun] { pairs.map { PgsizeRun(pgsize: $0.0, count: $0.1) } }

/// Trace files held in memory: `dma-trace NAME` reads `files[NAME]`.
struct IOArrayTraces: TraceProvider {
    var files: [String: [UInt64]]
    struct Missing: Error, CustomStringConvertible {
        var path: String
        var description: String { "no such trace \(path)" }
    }
    func open(_ path: String) throws -> any AddressSource {
        guard let items = files[path] else { throw Missing(path: path) }
        return ArrayAddressSource(items)
    }
}

/// A small deterministic generator of the tests' own (not the Engine's SplitMix64).
struct IOLCG {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 6364136223846793005 &+ 1442695040888963407 }
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        var z = state
        z ^= z >> 33
        z = z &* 0xff51afd7ed558ccd
        z ^= z >> 33
        return z
    }
    mutating func below(_ n: UInt64) -> UInt64 { next() % n }
}

/// A booted Engine driven statement by statement through a Timeline.
struct IOScenario {
    var timeline: Timeline
    var traces: IOArrayTraces?

    var engine: Engine { timeline.engine }
    var state: EngineState { timeline.engine.state }
    var last: StepRecord { timeline.records.last! }
    var zeroPfn: Int { Int(state.meta.zeroPfn) }

    /// Applies one line as the next step.
    @discardableResult
    mutating func step(_ line: String, file: StaticString = #filePath, line l: UInt = #line) -> StepRecord {
        do {
            guard let st = try parseStatement(line) else {
                XCTFail("'\(line)' is not a statement", file: file, line: l)
                return timeline.records.last!
            }
            return timeline.apply(st, traces: traces)
        } catch {
            XCTFail("'\(line)' does not parse: \(error.rendered)", file: file, line: l)
            return timeline.records.last!
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

    func p(_ name: String) -> Int { state.processIndex(named: name)! }
    func d(_ name: String) -> Int { state.deviceIndex(named: name)! }
    func meta(_ name: String) -> ProcessMeta { state.processes[p(name)].meta }
    func dev(_ name: String) -> DeviceState { state.devices[d(name)] }

    func buffer(_ proc: String, _ buf: String) -> Buffer { meta(proc).buffer(named: buf)! }

    func vpns(_ proc: String, _ buf: String) -> [UInt64] {
        let b = buffer(proc, buf)
        return Array((b.firstPage >> pageShift)..<(b.endPage >> pageShift))
    }

    func ptes(_ proc: String, vpns: [UInt64]) -> [PTE] {
        let pt = state.processes[p(proc)].pt
        return vpns.map { pt.entry(vpn: $0) }
    }

    func ptes(_ proc: String, _ buf: String) -> [PTE] { ptes(proc, vpns: vpns(proc, buf)) }

    /// The frame behind every page of a buffer (-1 when not present).
    func pfns(_ proc: String, _ buf: String) -> [Int] { ptes(proc, buf).map { $0.present ? $0.number : -1 } }

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

    /// Frames whose use is `u`.
    func frames(use u: FrameUse) -> [Int] { state.phys.use.indices.filter { state.phys.use[$0] == u.rawValue } }
}

struct IOFrameCounts: Equatable, CustomStringConvertible {
    var ref: Int32
    var map: Int32
    var pin: Int32
    var description: String { "(ref \(ref), map \(map), pin \(pin))" }
}

extension XCTestCase {
    /// Boots the machine of `source` (its `machine` line and the statements before the first event
    /// are run as steps too) and returns a scenario to drive further.
    func ioBoot(_ source: String, traces: IOArrayTraces? = nil, file: StaticString = #filePath, line: UInt = #line) -> IOScenario {
        let script: Script
        do {
            script = try parseScript(source, fileName: "io.ump")
        } catch {
            XCTFail("script does not parse:\n\(error.rendered)", file: file, line: line)
            return IOScenario(timeline: Timeline(engine: Engine(config: MachineConfig())), traces: traces)
        }
        let plan = StepPlan(script)
        var s = IOScenario(timeline: Timeline(engine: Engine(config: MachineConfig(plan.machine))), traces: traces)
        for st in plan.steps {
            let r = s.timeline.apply(st.statement, notes: st.notes, traces: traces)
            XCTAssertEqual(r.outcome, .ok, "setup step '\(st.statement.text)': \(r.text)", file: file, line: line)
        }
        return s
    }

    /// The shared undo check (TestSupport), with this file's traces.
    @discardableResult
    func ioAssertEveryStepUndoes(_ source: String, traces: IOArrayTraces? = nil,
                                 file: StaticString = #filePath, line: UInt = #line) -> [StepRecord] {
        assertEveryStepUndoes(source, traces: traces, file: file, line: line)
    }
}
