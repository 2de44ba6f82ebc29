// Every key `expect` accepts, with how it is measured, in one table: the checker lists the names
// (in this order, in its hints), `measure` reads the values.

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

    static func bytes(_ pages: Int) -> Measured { .integer(UInt64(pages) << pageShift) }
    static func count(_ n: Int) -> Measured { .integer(UInt64(n)) }
}

struct ExpectKey<Subject>: Sendable {
    let name: String
    let measure: @Sendable (Subject) -> Measured
    init(_ name: String, _ measure: @escaping @Sendable (Subject) -> Measured) {
        self.name = name
        self.measure = measure
    }
}

/// A buffer and its pages counted: what `expect PROC.BUF` measures.
struct BufferSubject {
    var buffer: Buffer
    var stats: BufferStats
}

enum ExpectKeys {
    /// Keys measured as true or false, and as a word (a name or null); every other key is a number.
    static let booleans: Set<String> = ["ok", "alive"]
    static let words: Set<String> = ["errno", "signal", "outcome"]

    /// What a value for `key` must look like, when `value` is not that: the checker's message.
    static func typeProblem(_ key: String, _ value: ExpectValue) -> String? {
        switch value {
        case .bool where booleans.contains(key), .word where words.contains(key), .integer where !booleans.contains(key) && !words.contains(key):
            return nil
        case .word(let w) where booleans.contains(key) && (w.lowercased() == "true" || w.lowercased() == "false"):
            return nil
        default:
            let got = Engine.describe(value)
            if booleans.contains(key) { return "\(key) is true or false, got '\(got)'" }
            if words.contains(key) { return "\(key) is a name such as \(key == "signal" ? "SIGSEGV" : key == "errno" ? "ENOMEM" : "ok") (or null), got '\(got)'" }
            return "\(key) is a number or a size, got '\(got)'"
        }
    }
    static let machine: [ExpectKey<EngineState>] = [
        ExpectKey("ram") { .integer($0.config.ram) },
        ExpectKey("frames") { .count($0.phys.frameCount) },
        ExpectKey("free_frames") { .count($0.phys.freeFrames) },
        ExpectKey("free") { .bytes($0.phys.freeFrames) },
        ExpectKey("swap_used") { .count($0.meta.swapUsed) },
    ]

    static let last: [ExpectKey<StepRecord>] = [
        ExpectKey("ok") { .bool($0.outcome.ok) },
        ExpectKey("errno") { .word($0.outcome.errnoName) },
        ExpectKey("signal") { .word($0.outcome.signalName) },
        ExpectKey("outcome") { .word($0.outcome.word) },
        ExpectKey("hazards") { .count($0.hazards.count) },
    ]

    static let process: [ExpectKey<ProcessMeta>] = [
        ExpectKey("alive") { .bool($0.alive) },
        ExpectKey("pid") { .integer(UInt64($0.pid)) },
        ExpectKey("rss") { .bytes($0.rssPages) },
        ExpectKey("rss_pages") { .count($0.rssPages) },
        ExpectKey("locked_vm") { .bytes($0.lockedVMPages) },
        ExpectKey("pinned_vm") { .bytes($0.pinnedVMPages) },
        ExpectKey("swap_pages") { .count($0.swapPages) },
        ExpectKey("vmas") { .count($0.vmas.count) },
        ExpectKey("memlock_limit") { .integer($0.memlockLimit) },
        ExpectKey("mmap_threshold") { .integer($0.mmapThreshold) },
    ]

    static let buffer: [ExpectKey<BufferSubject>] = [
        ExpectKey("present") { .count($0.stats.present) },
        ExpectKey("zero") { .count($0.stats.zero) },
        ExpectKey("writable") { .count($0.stats.writable) },
        ExpectKey("swapped") { .count($0.stats.swapped) },
        ExpectKey("huge") { .count($0.stats.huge) },
        ExpectKey("exclusive") { .count($0.stats.exclusive) },
        ExpectKey("shared") { .count($0.stats.shared) },
        ExpectKey("pinned") { .count($0.stats.pinned) },
        ExpectKey("size") { .integer($0.buffer.size) },
        ExpectKey("frames") { .count($0.stats.frames) },
    ]

    static let device: [ExpectKey<DeviceState>] = [
        ExpectKey("accesses") { .count($0.stats.accesses) },
        ExpectKey("hits") { .count($0.stats.hits) },
        ExpectKey("misses") { .count($0.stats.misses) },
        ExpectKey("walks") { .count($0.stats.walks) },
        ExpectKey("stall_ns") { .count($0.stats.stallNs) },
        ExpectKey("faults") { .count($0.stats.faults) },
        ExpectKey("mappings") { .count($0.ioptes.count) },
        ExpectKey("iotlb_entries") { .count($0.iotlb.entryCount) },
        ExpectKey("large_ioptes") { .count($0.ioptes.values.filter { $0.size > pageSize }.count) },
        ExpectKey("maps") { .count($0.mappings.count) },
        ExpectKey("hazards") { .count($0.stats.hazards) },
        ExpectKey("io_page_faults") { .count($0.stats.ioPageFaults) },
        ExpectKey("table_pages") { .count($0.tablePages.count) },
    ]

    static func names<S>(_ keys: [ExpectKey<S>]) -> [String] { keys.map(\.name) }

    static func find<S>(_ keys: [ExpectKey<S>], _ name: String) -> ExpectKey<S>? { keys.first { $0.name == name } }
}
