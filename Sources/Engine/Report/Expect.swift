// `expect TARGET KEY=VALUE ...`: the script checks itself against the state.

public struct ExpectFailure: Sendable, Equatable {
    public var location: SourceLocation
    public var statement: String
    public var message: String
}

/// A measured value for an expect key.
enum Measured: Equatable {
    case integer(UInt64)
    case bool(Bool)
    case word(String?)

    var text: String {
        switch self {
        case let .integer(v): String(v)
        case let .bool(b): b ? "true" : "false"
        case let .word(w): w ?? "null"
        }
    }
}

/// Buffer page statistics, for `expect PROC.BUF ...` and the TUI.
public struct BufferStats: Equatable, Sendable {
    public var present = 0, zero = 0, writable = 0, swapped = 0, huge = 0, exclusive = 0, shared = 0, pinned = 0
    public var frames = 0
}

extension Engine {
    public func bufferStats(_ p: Int, _ b: Buffer) -> BufferStats {
        var s = BufferStats()
        let pt = state.processes[p].pt
        var frames = Set<Int>()
        for vpn in (b.firstPage >> pageShift)..<(b.endPage >> pageShift) {
            let e = pt.entry(vpn: vpn)
            if e.isSwap { s.swapped += 1; continue }
            guard e.present else { continue }
            s.present += 1
            if e.writable { s.writable += 1 }
            if pt.hugePMDs[vpn >> 9] != nil { s.huge += 1 }
            if e.isZero { s.zero += 1; continue }
            frames.insert(e.number)
            if state.phys.mapcount[e.number] == 1 { s.exclusive += 1 } else { s.shared += 1 }
            if state.phys.pincount[e.number] > 0 { s.pinned += 1 }
        }
        s.frames = frames.count
        return s
    }

    /// Checks one expect statement; returns a failure per clause that does not hold.
    public func check(_ target: ExpectTarget, _ clauses: [ExpectClause], last: StepRecord?, statement: Statement) -> [ExpectFailure] {
        var failures: [ExpectFailure] = []
        for clause in clauses {
            let got = measure(target, clause.key, last: last)
            let targetName = Engine.describe(target)
            switch got {
            case let .failure(err):
                failures.append(ExpectFailure(location: clause.location, statement: statement.text, message: "\(targetName) \(clause.key): \(err.message)"))
            case let .success(value):
                if !Engine.matches(value, clause.value) {
                    failures.append(ExpectFailure(location: clause.location, statement: statement.text,
                                                  message: "\(targetName) \(clause.key) is \(value.text), expected \(Engine.describe(clause.value))"))
                }
            }
        }
        return failures
    }

    static func describe(_ t: ExpectTarget) -> String {
        switch t {
        case .machine: "machine"
        case .last: "last"
        case let .name(n): n
        case let .buffer(b): "\(b.process).\(b.buffer)"
        }
    }

    static func describe(_ v: ExpectValue) -> String {
        switch v {
        case let .integer(i): String(i)
        case let .bool(b): b ? "true" : "false"
        case let .word(w): w
        }
    }

    static func matches(_ got: Measured, _ want: ExpectValue) -> Bool {
        switch (got, want) {
        case let (.integer(a), .integer(b)): a == b
        case let (.bool(a), .bool(b)): a == b
        case let (.word(a), .word(b)): (a ?? "null").lowercased() == b.lowercased()
        case let (.bool(a), .word(b)): (a ? "true" : "false") == b.lowercased()
        default: false
        }
    }

    private func measure(_ target: ExpectTarget, _ key: String, last: StepRecord?) -> Result<Measured, MeasureErrorBox> {
        func bytes(_ pages: Int) -> Measured { .integer(UInt64(pages) << pageShift) }
        switch target {
        case .machine:
            switch key {
            case "ram": return .success(.integer(state.config.ram))
            case "frames": return .success(.integer(UInt64(state.phys.frameCount)))
            case "free_frames": return .success(.integer(UInt64(state.phys.freeFrames)))
            case "free": return .success(bytes(state.phys.freeFrames))
            case "swap_used": return .success(.integer(UInt64(state.meta.swapUsed)))
            default: break
            }
        case .last:
            guard let last else { return .failure(MeasureErrorBox("no step has run yet")) }
            switch key {
            case "hazards": return .success(.integer(UInt64(last.hazards.count)))
            case "ok": return .success(.bool(last.outcome.ok))
            case "errno": return .success(.word(last.outcome.errnoName))
            case "signal": return .success(.word(last.outcome.signalName))
            case "outcome": return .success(.word(last.outcome.word))
            default: break
            }
        case let .name(name):
            if let d = state.deviceIndex(named: name) {
                let dev = state.devices[d]
                switch key {
                case "accesses": return .success(.integer(UInt64(dev.stats.accesses)))
                case "hits": return .success(.integer(UInt64(dev.stats.hits)))
                case "misses": return .success(.integer(UInt64(dev.stats.misses)))
                case "walks": return .success(.integer(UInt64(dev.stats.walks)))
                case "stall_ns": return .success(.integer(UInt64(dev.stats.stallNs)))
                case "faults": return .success(.integer(UInt64(dev.stats.faults)))
                case "hazards": return .success(.integer(UInt64(dev.stats.hazards)))
                case "io_page_faults": return .success(.integer(UInt64(dev.stats.ioPageFaults)))
                case "mappings": return .success(.integer(UInt64(dev.ioptes.count)))
                case "large_ioptes": return .success(.integer(UInt64(dev.ioptes.values.filter { $0.size > pageSize }.count)))
                case "maps": return .success(.integer(UInt64(dev.mappings.count)))
                case "iotlb_entries": return .success(.integer(UInt64(dev.iotlb.entryCount)))
                case "table_pages": return .success(.integer(UInt64(dev.tablePages.count)))
                default: return .failure(MeasureErrorBox("not measured for devices"))
                }
            }
            guard let p = state.processIndex(named: name) else {
                return .failure(MeasureErrorBox("no process or device named \(name) exists"))
            }
            let m = state.processes[p].meta
            switch key {
            case "alive": return .success(.bool(m.alive))
            case "pid": return .success(.integer(UInt64(m.pid)))
            case "rss": return .success(bytes(m.rssPages))
            case "rss_pages": return .success(.integer(UInt64(m.rssPages)))
            case "locked_vm": return .success(bytes(m.lockedVMPages))
            case "pinned_vm": return .success(bytes(m.pinnedVMPages))
            case "swap_pages": return .success(.integer(UInt64(m.swapPages)))
            case "vmas": return .success(.integer(UInt64(m.vmas.count)))
            case "memlock_limit": return .success(.integer(m.memlockLimit))
            case "mmap_threshold": return .success(.integer(m.malloc.mmapThreshold))
            default: break
            }
        case let .buffer(ref):
            guard let p = state.processIndex(named: ref.process) else { return .failure(MeasureErrorBox("no process named \(ref.process)")) }
            guard let b = state.processes[p].meta.buffer(named: ref.buffer) else {
                return .failure(MeasureErrorBox("\(ref.process) has no buffer named \(ref.buffer) now"))
            }
            let s = bufferStats(p, b)
            switch key {
            case "present": return .success(.integer(UInt64(s.present)))
            case "zero": return .success(.integer(UInt64(s.zero)))
            case "writable": return .success(.integer(UInt64(s.writable)))
            case "swapped": return .success(.integer(UInt64(s.swapped)))
            case "huge": return .success(.integer(UInt64(s.huge)))
            case "exclusive": return .success(.integer(UInt64(s.exclusive)))
            case "shared": return .success(.integer(UInt64(s.shared)))
            case "pinned": return .success(.integer(UInt64(s.pinned)))
            case "size": return .success(.integer(b.size))
            case "frames": return .success(.integer(UInt64(s.frames)))
            default: break
            }
        }
        return .failure(MeasureErrorBox("not measured yet"))
    }
}

struct MeasureErrorBox: Error {
    var message: String
    init(_ m: String) { message = m }
}
