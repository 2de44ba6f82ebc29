// The scenario language's syntax tree: what the parser produces and the Engine consumes.
// One line of a scenario file, the TUI's `:` prompt or a recording becomes one `Statement`.

/// Where something is in a scenario source: 1-based line and column.
public struct SourceLocation: Hashable, Sendable, Codable {
    public var line: Int
    public var column: Int
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
}

/// A value with the place it was written, so later checks can point at it.
public struct Located<Value: Hashable & Sendable>: Hashable, Sendable {
    public var value: Value
    public var location: SourceLocation
    public init(_ value: Value, at location: SourceLocation) {
        self.value = value
        self.location = location
    }
}

public enum THPMode: String, Hashable, Sendable, CaseIterable, Codable { case never, madvise, always }
/// /sys/kernel/mm/transparent_hugepage/defrag: whether a THP fault that finds no free order-9 block
/// compacts and reclaims before it falls back (vma_thp_gfp_mask, mm/huge_memory.c:1283).
public enum THPDefrag: String, Hashable, Sendable, CaseIterable, Codable {
    case always, `defer`, deferMadvise = "defer+madvise", madvise, never
}
public enum KernelPreset: String, Hashable, Sendable, CaseIterable, Codable {
    case v6_12 = "6.12"
    case legacy
}
public enum UMPLimit: String, Hashable, Sendable, CaseIterable, Codable { case none, memlock }
public enum IOMMUFormat: String, Hashable, Sendable, CaseIterable, Codable {
    case vtd, armLPAE = "arm-lpae", armV7s = "arm-v7s", amdV1 = "amd-v1", sva, none
}
public enum IOTLBPolicy: String, Hashable, Sendable, CaseIterable, Codable { case lru, fifo, random }
public enum FlushMode: String, Hashable, Sendable, CaseIterable, Codable { case strict, lazy }
public enum DMAHeap: String, Hashable, Sendable, CaseIterable, Codable { case system, cma }
public enum Access: String, Hashable, Sendable, CaseIterable, Codable { case read, write }
public enum TraceUnit: String, Hashable, Sendable, CaseIterable, Codable { case addr, page }
/// The formats `PROC trace` reads: valgrind's lackey (`--tool=lackey --trace-mem=yes`).
public enum MemoryTraceFormat: String, Hashable, Sendable, CaseIterable, Codable { case lackey }
/// `mprotect`'s protections: PROT_READ, PROT_READ|PROT_WRITE, PROT_NONE.
public enum Protection: String, Hashable, Sendable, CaseIterable, Codable {
    case r, rw, none

    /// As mmap(2) and mprotect(2) spell it.
    public var flagsName: String {
        switch self {
        case .r: "PROT_READ"
        case .rw: "PROT_READ|PROT_WRITE"
        case .none: "PROT_NONE"
        }
    }
}

public enum MadviseAdvice: String, Hashable, Sendable, CaseIterable, Codable {
    case dontneed, dontfork, dofork, hugepage, nohugepage, pageout, collapse
}

/// `machine ...`: every option is nil when the script did not give it.
public struct MachineDecl: Hashable, Sendable {
    public var ram: UInt64?
    public var thp: THPMode?
    public var thpDefrag: THPDefrag?
    public var kernel: KernelPreset?
    public var memlock: UInt64?
    public var swap: UInt64?
    public var cma: UInt64?
    public var umpLimit: UMPLimit?
    public var seed: UInt64?
    public var fragment: Int?
    /// `mthp=16K,64K,...`: the multi-size THP orders set to `always` (2...8), as a bit set.
    public var mthpOrders: UInt16?
    public init() {}
}

/// `process NAME ...`
public struct ProcessDecl: Hashable, Sendable {
    public var name: String
    public var memlock: UInt64?
    public var capIPCLock: Bool
    /// The user the process runs as (io_uring charges the user's locked_vm); nil: the one default user.
    public var user: String?
    public init(name: String, memlock: UInt64? = nil, capIPCLock: Bool = false, user: String? = nil) {
        self.name = name
        self.memlock = memlock
        self.capIPCLock = capIPCLock
        self.user = user
    }
}

/// `device NAME ...`
public struct DeviceDecl: Hashable, Sendable {
    public var name: String
    public var iommu: IOMMUFormat?
    public var pagesizes: [UInt64]?
    public var iotlb: Int?
    /// nil = not given; 0 = `ways=full`.
    public var ways: Int?
    public var policy: IOTLBPolicy?
    public var walkNs: Int?
    public var hitNs: Int?
    public var flush: FlushMode?
    public init(name: String) { self.name = name }
}

/// An optional `OFFSET SIZE` (or just `OFFSET`) range inside a buffer.
public struct BufferRange: Hashable, Sendable {
    public var offset: UInt64
    /// nil: to the end of the buffer.
    public var size: UInt64?
    public init(offset: UInt64, size: UInt64?) {
        self.offset = offset
        self.size = size
    }
}

/// DMA access patterns.
public enum DMAPattern: Hashable, Sendable {
    case seq
    case random
    case stride(UInt64)
    /// tile:WxH@PITCH — W bytes wide, H rows, PITCH bytes between rows.
    case tile(width: UInt64, height: UInt64, pitch: UInt64)
}

/// `PROC VERB ...`
public enum ProcessEvent: Hashable, Sendable {
    case malloc(buffer: String, size: UInt64)
    case free(buffer: String)
    case mmap(buffer: String, size: UInt64, shared: Bool, populate: Bool, locked: Bool, hugepage: Bool, prot: Protection = .rw, file: String? = nil)
    /// memfd_create + ftruncate(SIZE) + mmap(MAP_SHARED): a shmem file of its own.
    case memfd(buffer: String, size: UInt64)
    case munmap(buffer: String, range: BufferRange?)
    /// mremap(2): shrink, grow in place, or (with MREMAP_MAYMOVE) move.
    case mremap(buffer: String, size: UInt64, move: Bool)
    case read(buffer: String, range: BufferRange?)
    case write(buffer: String, range: BufferRange?)
    case madvise(buffer: String, advice: MadviseAdvice, range: BufferRange?)
    case mprotect(buffer: String, range: BufferRange?, prot: Protection)
    case mlock(buffer: String)
    case munlock(buffer: String)
    case fork(child: String)
    case exit
    case pin(buffer: String, range: BufferRange?, write: Bool, longterm: Bool, get: Bool)
    /// io_uring_register(IORING_REGISTER_BUFFERS) / IORING_UNREGISTER_BUFFERS of a buffer.
    case uringRegister(buffer: String, range: BufferRange? = nil)
    case uringUnregister(buffer: String)
    case unpin(buffer: String)
    /// vmsplice(2) of (part of) a buffer into a pipe: the pipe holds FOLL_GET references.
    case vmsplice(buffer: String, range: BufferRange?, pipe: String)
    /// read(2) of everything a pipe holds, releasing it; close(2) of the pipe, releasing it unread.
    case pipeRead(pipe: String)
    case pipeClose(pipe: String)
    case umpAlloc(buffer: String, size: UInt64, linear: Bool)
    case umpImport(buffer: String, secureID: UInt64)
    case dmabufAlloc(buffer: String, size: UInt64, heap: DMAHeap)
    case send(buffer: String, to: String)
    /// `PROC trace FILE format=lackey`: `path` as written, resolved by the runner.
    case trace(path: String, format: MemoryTraceFormat)

    /// The buffer the event names first (the one it creates or acts on), if any.
    public var bufferName: String? {
        switch self {
        case let .malloc(b, _), let .free(b), let .mmap(b, _, _, _, _, _, _, _), let .memfd(b, _), let .munmap(b, _), let .mremap(b, _, _), let .read(b, _), let .write(b, _),
             let .madvise(b, _, _), let .mprotect(b, _, _), let .mlock(b), let .munlock(b), let .pin(b, _, _, _, _), let .unpin(b), let .uringRegister(b, _), let .uringUnregister(b), let .vmsplice(b, _, _), let .umpAlloc(b, _, _),
             let .umpImport(b, _), let .dmabufAlloc(b, _, _), let .send(b, _):
            b
        case .fork, .exit, .trace, .pipeRead, .pipeClose:
            nil
        }
    }

    /// The verb as written in the language.
    public var verb: String {
        switch self {
        case .malloc: "malloc"
        case .free: "free"
        case .mmap: "mmap"
        case .memfd: "memfd"
        case .munmap: "munmap"
        case .mremap: "mremap"
        case .read: "read"
        case .write: "write"
        case .madvise: "madvise"
        case .mprotect: "mprotect"
        case .mlock: "mlock"
        case .munlock: "munlock"
        case .fork: "fork"
        case .exit: "exit"
        case .pin: "pin"
        case .unpin: "unpin"
        case .uringRegister: "uring-register"
        case .uringUnregister: "uring-unregister"
        case .vmsplice: "vmsplice"
        case .pipeRead: "pipe-read"
        case .pipeClose: "pipe-close"
        case .umpAlloc: "ump-alloc"
        case .umpImport: "ump-import"
        case .dmabufAlloc: "dmabuf-alloc"
        case .send: "send"
        case .trace: "trace"
        }
    }
}

/// `PROC.BUF` as written.
public struct BufferRef: Hashable, Sendable {
    public var process: String
    public var buffer: String
    public init(process: String, buffer: String) {
        self.process = process
        self.buffer = buffer
    }
}

/// `DEV VERB ...`
public enum DeviceEvent: Hashable, Sendable {
    case map(BufferRef, range: BufferRange?, iova: UInt64?, access: Access?)
    case unmap(BufferRef)
    case dma(BufferRef, access: Access, pattern: DMAPattern, size: UInt64, count: UInt64?, passes: UInt64, transient: Bool)
    /// `path` as written; resolved relative to the script's directory by the runner.
    case dmaTrace(path: String, unit: TraceUnit)

    public var verb: String {
        switch self {
        case .map: "map"
        case .unmap: "unmap"
        case .dma: "dma"
        case .dmaTrace: "dma-trace"
        }
    }
}

/// A value on the right of `expect TARGET KEY=VALUE`.
public enum ExpectValue: Hashable, Sendable {
    /// A plain number or a size (`16`, `8M`, `0x1000`): compared as an integer.
    case integer(UInt64)
    case bool(Bool)
    /// A word such as `ENOMEM`, `SIGSEGV`, `null`.
    case word(String)
}

public struct ExpectClause: Hashable, Sendable {
    public var key: String
    public var value: ExpectValue
    /// Where the key starts, for error messages.
    public var location: SourceLocation
    public init(key: String, value: ExpectValue, location: SourceLocation) {
        self.key = key
        self.value = value
        self.location = location
    }
}

/// What `expect` checks: `machine`, `last` (the last step's outcome), `PROC`, `PROC.BUF` or `DEV`.
public enum ExpectTarget: Hashable, Sendable {
    case machine
    case last
    /// A bare name: a process or a device (resolved against declarations).
    case name(String)
    case buffer(BufferRef)
}

public enum StatementKind: Hashable, Sendable {
    case machine(MachineDecl)
    case process(ProcessDecl)
    case device(DeviceDecl)
    /// `file NAME SIZE`: a regular file of SIZE bytes on disk, none of it in the page cache yet.
    case file(name: String, size: UInt64)
    case processEvent(process: String, ProcessEvent)
    case deviceEvent(device: String, DeviceEvent)
    case pressure(UInt64)
    case compact
    case note(String)
    /// Milliseconds.
    case wait(Double)
    case expect(ExpectTarget, [ExpectClause])
    /// Undo the last step (recordings write it when the user steps back).
    case back
    /// `set TARGET.KEY=VALUE`: re-run from boot with the override, up to here. The text as written.
    case set(String)
    /// `unset TARGET.KEY`: re-run from boot without that override, as written, up to here.
    case unset(String)
    /// What the user pointed at; presentation only, ignored headless.
    case select(SelectTarget)
    /// The inspector opened on the selection; presentation only.
    case inspect
    /// `quiz "QUESTION" a="..." b="..." answer=b [explain="..."]`: asked before the next step in quiz
    /// mode; ignored otherwise.
    case quiz(QuizSpec)
}

/// One choice of a `quiz`: its letter and its text.
public struct QuizChoice: Hashable, Sendable {
    public var letter: String
    public var text: String
    public init(letter: String, text: String) {
        self.letter = letter
        self.text = text
    }
}

/// A question written in the script for the step after it.
public struct QuizSpec: Hashable, Sendable {
    public var question: String
    /// In letter order: a, b, c, ...
    public var choices: [QuizChoice]
    /// The letter of the right choice.
    public var answer: String
    public var explain: String?
    public init(question: String, choices: [QuizChoice], answer: String, explain: String? = nil) {
        self.question = question
        self.choices = choices
        self.answer = answer
        self.explain = explain
    }
}

/// `select PROC.BUF PAGE`, `select pfn N`, `select DEV iova ADDR`.
public enum SelectTarget: Hashable, Sendable {
    case page(BufferRef, index: UInt64)
    case pfn(UInt64)
    case iova(device: String, UInt64)

    /// The selection as a `select` line writes it.
    public var text: String {
        switch self {
        case let .page(ref, index): "select \(ref.process).\(ref.buffer) \(index)"
        case let .pfn(pfn): "select pfn 0x" + String(pfn, radix: 16)
        case let .iova(dev, iova): "select \(dev) iova 0x" + String(iova, radix: 16)
        }
    }
}

extension StatementKind {
    /// Lines that say how to present a replay (pacing, pointing) and never change the state.
    public var isCue: Bool {
        switch self {
        case .wait, .select, .inspect, .quiz: true
        default: false
        }
    }
}

/// One parsed line.
public struct Statement: Hashable, Sendable {
    public var kind: StatementKind
    public var location: SourceLocation
    /// The source line as written, without a trailing comment or surrounding spaces.
    public var text: String
    public init(kind: StatementKind, location: SourceLocation, text: String) {
        self.kind = kind
        self.location = location
        self.text = text
    }
}

/// A parsed scenario file.
public struct Script: Hashable, Sendable {
    public var fileName: String
    public var statements: [Statement]
    /// The file starts with the recorder's header (`# umptui recording`).
    public var isRecording: Bool
    public init(fileName: String, statements: [Statement], isRecording: Bool = false) {
        self.fileName = fileName
        self.statements = statements
        self.isRecording = isRecording
    }
}
