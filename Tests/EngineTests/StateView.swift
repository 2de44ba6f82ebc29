// Exhaustive step assertions, as swift-composable-architecture's TestStore makes them: a test takes
// the state before a step as plain values, edits it into the state it expects after the step, and
// the assertion fails on any difference, naming each one. A change the test did not name fails it.
//
// The view holds every fact a kernel engineer reads: each allocated frame's struct-page fields,
// each PTE, VMA, buffer, heap chunk, pin and counter of each process, its page-table frames, each
// device's IOPTEs, table pages, mappings, flush queue, IOTLB and counters, the kernel buffers,
// swap, the swap cache and shmem, and the machine-wide numbers. Left out is the allocator's own
// bookkeeping, which no test should have to spell: the order of the free lists, LRU stamps and
// the allocation clock, the swap search hint. (The undo tests compare those exactly.)

import XCTest

@testable import Engine

struct StateView: Equatable {
    struct Machine: Equatable {
        var zeroPfn: Int32
        var hugeZeroPfn: Int32
        var nextPid: Int32
        var nextAnonVMA: Int32
        var nextShmem: Int32
        var swapUsed: Int
        var oomKills: Int
    }

    struct Process: Equatable {
        var counters: ProcessCounters
        var vmas: [VMA]
        var buffers: [Buffer]
        var heapChunks: [HeapChunk]
        var pins: [PinRecord]
        /// Every PTE that is not none (pages under a huge PMD included), by virtual address.
        var pages: [UInt64: PTEView]
        /// The frames holding its page tables: PGD, upper tables, PTE tables.
        var tableFrames: Set<Int>
    }

    struct Device: Equatable {
        var ioptes: [IOPTEView]
        var tablePages: Set<Int>
        var mappings: [IOMapping]
        var flushQueue: [IOMapping]
        /// IOTLB entries set by set, without their replacement stamps.
        var iotlb: [[IOPTEView]]
        var counters: DeviceCounters
    }

    var machine: Machine
    /// Every frame that is not free.
    var frames: [Int: FrameView]
    var processes: [String: Process]
    var devices: [String: Device]
    var kernelBuffers: [KernelBuffer]
    /// Swap slots in use and their counts.
    var swap: [Int: UInt16]
    var swapCache: [Int32: Int32]
    var shmem: [Int32: [UInt64: Int32]]

    init(_ s: EngineState) {
        let m = s.meta
        machine = Machine(zeroPfn: m.zeroPfn, hugeZeroPfn: m.hugeZeroPfn, nextPid: m.nextPid, nextAnonVMA: m.nextAnonVMA,
                          nextShmem: m.nextShmem, swapUsed: m.swapUsed, oomKills: m.oomKills)
        var frames: [Int: FrameView] = [:]
        for pfn in 0..<s.phys.frameCount where s.phys.use[pfn] != FrameUse.free.rawValue { frames[pfn] = frameView(s, pfn) }
        self.frames = frames
        var processes: [String: Process] = [:]
        for (i, proc) in s.processes.enumerated() {
            var pages: [UInt64: PTEView] = [:]
            for (region, table) in proc.pt.tables {
                for (k, e) in table.entries.enumerated() where !e.isNone {
                    pages[(region << 9 | UInt64(k)) << pageShift] = PTEView(s.page(i, vpn: region << 9 | UInt64(k)))
                }
            }
            for region in proc.pt.hugePMDs.keys {
                for k in 0..<UInt64(pagesPerPMD) { pages[(region << 9 | k) << pageShift] = PTEView(s.page(i, vpn: region << 9 | k)) }
            }
            let m = proc.meta
            processes[m.name] = Process(counters: m.counters, vmas: m.vmas, buffers: m.buffers,
                                        heapChunks: m.heapChunks, pins: m.pins, pages: pages, tableFrames: tableFrames(proc.pt))
        }
        self.processes = processes
        var devices: [String: Device] = [:]
        for dev in s.devices {
            devices[dev.name] = Device(ioptes: dev.sortedIOPTEs.map(IOPTEView.init), tablePages: Set(dev.tablePages.values.map(Int.init)),
                                       mappings: dev.mappings, flushQueue: dev.lazyUnmapped,
                                       iotlb: dev.iotlb.sets.map { $0.map { IOPTEView($0.iova, $0.pa, $0.size) } }, counters: dev.counters)
        }
        self.devices = devices
        kernelBuffers = s.kernelBuffers
        var swap: [Int: UInt16] = [:]
        for (slot, n) in s.swapMap.enumerated() where n != 0 { swap[slot] = n }
        self.swap = swap
        swapCache = s.swapCache
        shmem = s.shmem
    }

    /// Each difference between two views, one line each: what was expected and what there is.
    static func differences(expected e: StateView, actual a: StateView) -> [String] {
        var out: [String] = []
        func compare<T: Equatable>(_ what: String, _ x: T, _ y: T) {
            if x != y { out.append("\(what): expected \(x), got \(y)") }
        }
        func compare<K: Hashable & Comparable, V: Equatable>(_ what: String, _ x: [K: V], _ y: [K: V], key: (K) -> String) {
            for k in Set(x.keys).union(y.keys).sorted() where x[k] != y[k] {
                out.append("\(what) \(key(k)): expected \(x[k].map { "\($0)" } ?? "none"), got \(y[k].map { "\($0)" } ?? "none")")
            }
        }
        compare("machine", e.machine, a.machine)
        compare("frame", e.frames, a.frames) { String($0) }
        for name in Set(e.processes.keys).union(a.processes.keys).sorted() {
            guard let x = e.processes[name], let y = a.processes[name] else {
                out.append("process \(name): expected \(e.processes[name] == nil ? "none" : "it"), got \(a.processes[name] == nil ? "none" : "it")")
                continue
            }
            compare("\(name) counters", x.counters, y.counters)
            compare("\(name) VMAs", x.vmas, y.vmas)
            compare("\(name) buffers", x.buffers, y.buffers)
            compare("\(name) heap chunks", x.heapChunks, y.heapChunks)
            compare("\(name) pins", x.pins, y.pins)
            compare("\(name) PTE", x.pages, y.pages) { "0x" + String($0, radix: 16) }
            compare("\(name) page-table frames", x.tableFrames.sorted(), y.tableFrames.sorted())
        }
        for name in Set(e.devices.keys).union(a.devices.keys).sorted() {
            guard let x = e.devices[name], let y = a.devices[name] else {
                out.append("device \(name): expected \(e.devices[name] == nil ? "none" : "it"), got \(a.devices[name] == nil ? "none" : "it")")
                continue
            }
            compare("\(name) IOPTEs", x.ioptes, y.ioptes)
            compare("\(name) table pages", x.tablePages.sorted(), y.tablePages.sorted())
            compare("\(name) mappings", x.mappings, y.mappings)
            compare("\(name) flush queue", x.flushQueue, y.flushQueue)
            compare("\(name) IOTLB", x.iotlb, y.iotlb)
            compare("\(name) counters", x.counters, y.counters)
        }
        compare("kernel buffers", e.kernelBuffers, a.kernelBuffers)
        compare("swap slot", e.swap, a.swap) { String($0) }
        compare("swap cache", e.swapCache, a.swapCache)
        compare("shmem", e.shmem, a.shmem)
        return out
    }
}

extension EngineRun {
    /// Runs `line` and fails unless the state after it is exactly what `expected` makes of the state
    /// before it. `expected` also gets the state after the step, to look up what the allocator chose
    /// (which frame, which IOVA); what those frames and entries must hold is still the test's to say.
    @discardableResult
    mutating func assertStep(_ line: String, outcome: Outcome = .ok, file: StaticString = #filePath, line l: UInt = #line,
                             _ expected: (inout StateView, EngineState) -> Void) -> StepRecord {
        var want = StateView(state)
        let r = step(line, file: file, line: l)
        XCTAssertEqual(r.outcome, outcome, "'\(line)': \(r.text)", file: file, line: l)
        expected(&want, state)
        let differences = StateView.differences(expected: want, actual: StateView(state))
        if !differences.isEmpty {
            XCTFail("'\(line)' did not change the state as expected:\n  " + differences.joined(separator: "\n  "), file: file, line: l)
        }
        return r
    }
}

extension StateView {
    /// The page-table frames process `name` gained in the step (found in `after`, so the test need
    /// not know which frames the allocator chose): each becomes a page-table frame of the process,
    /// counted in pageTablePages. Fails unless there are `count` of them.
    mutating func addPageTables(_ name: String, count: Int, after: EngineState, file: StaticString = #filePath, line: UInt = #line) {
        guard let i = after.processIndex(named: name), var proc = processes[name] else {
            return XCTFail("no process \(name)", file: file, line: line)
        }
        let new = tableFrames(after.processes[i].pt).subtracting(proc.tableFrames)
        XCTAssertEqual(new.count, count, "new page-table frames of \(name)", file: file, line: line)
        let pid = after.processes[i].meta.pid
        for pfn in new { frames[pfn] = FrameView(use: .pagetable, flags: 0, refcount: 1, mapcount: 0, pincount: 0, owner: pid) }
        proc.tableFrames.formUnion(new)
        proc.counters.pageTablePages += new.count
        processes[name] = proc
    }

    /// The I/O page-table frames device `name` gained in the step, as addPageTables does for a process.
    mutating func addIOTables(_ name: String, count: Int, after: EngineState, file: StaticString = #filePath, line: UInt = #line) {
        guard let d = after.deviceIndex(named: name), var dev = devices[name] else {
            return XCTFail("no device \(name)", file: file, line: line)
        }
        let new = Set(after.devices[d].tablePages.values.map(Int.init)).subtracting(dev.tablePages)
        XCTAssertEqual(new.count, count, "new I/O page-table frames of \(name)", file: file, line: line)
        for pfn in new { frames[pfn] = FrameView(use: .iopagetable, flags: 0, refcount: 1, mapcount: 0, pincount: 0, owner: 0) }
        dev.tablePages.formUnion(new)
        devices[name] = dev
    }
}
