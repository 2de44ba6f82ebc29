// A process's record beside its page table: VMAs, the buffers the script named, glibc's heap
// chunks, pins, and counters. Written here only, through logged accessors that record the element
// that changed (a VMA, a buffer, a chunk, a pin) or the counters, never a copy of the whole record.

/// A process's scalars: logged whole (they are small) the first time a step touches them.
public struct ProcessCounters: Equatable, Sendable {
    public var alive = true
    public var exitReason: String?
    /// The end of the brk heap.
    public var brk: UInt64
    /// glibc's M_MMAP_THRESHOLD: starts at 128 KiB and rises on free() of a larger mmapped chunk.
    public var mmapThreshold: UInt64 = 128 * 1024
    /// M_TRIM_THRESHOLD: twice the mmap threshold once that moves.
    public var trimThreshold: UInt64 = 128 * 1024
    /// MM_ANONPAGES + MM_SHMEMPAGES, in pages.
    public var rssPages = 0
    public var swapPages = 0
    public var lockedVMPages = 0
    public var pinnedVMPages = 0
    /// Page-table pages this mm holds (PGD included).
    public var pageTablePages = 0
    /// MMF_HAS_PINNED: sticky once anything was FOLL_PIN-ned.
    public var hasPinned = false
    /// MMF_HUGE_ZERO_PAGE: this mm holds a reference on the huge zero folio (set when it first
    /// maps it, or inherits a huge zero PMD at fork; dropped at exit by mm_put_huge_zero_folio).
    public var hugeZeroPage = false
}

/// The counters read as the record's own fields: `meta.rssPages`, `meta.alive`.
@dynamicMemberLookup
public struct ProcessMeta: Equatable, Sendable {
    public let name: String
    public let pid: Int32
    public let startBrk: UInt64
    public let mmapBase: UInt64
    /// RLIMIT_MEMLOCK in bytes.
    public let memlockLimit: UInt64
    public let capIPCLock: Bool
    /// The user it runs as: io_uring charges the user's locked_vm, shared by all its processes.
    public let user: String
    /// The step that created it (a `process` line or a fork): private memory it sees was written by then or by itself.
    public let createdStep: Int
    public fileprivate(set) var counters: ProcessCounters
    /// In address order.
    public fileprivate(set) var vmas: [VMA]
    public fileprivate(set) var buffers: [Buffer] = []
    /// Buffer name → index in `buffers`: a script names a buffer in every line, and a long one has thousands.
    fileprivate var bufferIndex: [String: Int] = [:]
    /// glibc's main-arena chunks in address order, covering [start_brk, brk); the last free one at brk is top.
    public fileprivate(set) var heapChunks: [HeapChunk] = []
    /// What `pin` took, per buffer, until `unpin`.
    public fileprivate(set) var pins: [PinRecord] = []

    init(name: String, pid: Int32, vmas: [VMA], startBrk: UInt64, mmapBase: UInt64, memlockLimit: UInt64, capIPCLock: Bool,
         user: String = "user", createdStep: Int = 0) {
        self.user = user
        self.createdStep = createdStep
        self.name = name
        self.pid = pid
        self.vmas = vmas
        self.startBrk = startBrk
        self.mmapBase = mmapBase
        self.memlockLimit = memlockLimit
        self.capIPCLock = capIPCLock
        counters = ProcessCounters(brk: startBrk)
    }

    public subscript<T>(dynamicMember keyPath: KeyPath<ProcessCounters, T>) -> T { counters[keyPath: keyPath] }

    public func buffer(named name: String) -> Buffer? { bufferIndex[name].map { buffers[$0] } }

    /// Keeps `bufferIndex` in step with `buffers` after an edit (or its undo) at `i`.
    fileprivate mutating func reindexBuffers(from i: Int, removed: String? = nil) {
        if let removed { bufferIndex[removed] = nil }
        for k in i..<buffers.count { bufferIndex[buffers[k].name] = k }
    }

    fileprivate mutating func rebuildBufferIndex() {
        bufferIndex = [:]
        reindexBuffers(from: 0)
    }

    /// find_vma: the VMA containing va.
    public func vmaIndex(containing va: UInt64) -> Int? {
        var lo = 0, hi = vmas.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if vmas[mid].end <= va { lo = mid + 1 } else if vmas[mid].start > va { hi = mid - 1 } else { return mid }
        }
        return nil
    }
}

public struct ProcessState: Equatable, Sendable {
    public internal(set) var meta: ProcessMeta
    public internal(set) var pt: PageTable
}

// MARK: - Logged writes

extension Engine {
    /// A new process (execve or fork) at the end of the process list.
    mutating func addProcess(_ meta: ProcessMeta, _ j: inout StepJournal) -> Int {
        state.processes.append(ProcessState(meta: meta, pt: PageTable()))
        j.log(.processAdded)
        return state.processes.count - 1
    }

    /// Changes a process's counters, logging them whole the first time this step does.
    @inline(__always) mutating func updateCounters(_ p: Int, _ j: inout StepJournal, _ body: (inout ProcessCounters) -> Void) {
        if j.processCountersLogged.insert(Int32(p)).inserted {
            j.log(.processCounters(proc: Int32(p), old: state.processes[p].meta.counters))
        }
        body(&state.processes[p].meta.counters)
    }

    mutating func vmaInsert(_ p: Int, _ vma: VMA, at i: Int, _ j: inout StepJournal) {
        state.processes[p].meta.vmas.insert(vma, at: i)
        j.log(.vma(proc: Int32(p), .inserted(at: i)))
    }

    @discardableResult
    mutating func vmaRemove(_ p: Int, at i: Int, _ j: inout StepJournal) -> VMA {
        let old = state.processes[p].meta.vmas.remove(at: i)
        j.log(.vma(proc: Int32(p), .removed(at: i, old: old)))
        return old
    }

    /// Changes one VMA; logs nothing when it stays the same.
    mutating func vmaUpdate(_ p: Int, at i: Int, _ j: inout StepJournal, _ body: (inout VMA) -> Void) {
        let old = state.processes[p].meta.vmas[i]
        var vma = old
        body(&vma)
        guard vma != old else { return }
        state.processes[p].meta.vmas[i] = vma
        j.log(.vma(proc: Int32(p), .replaced(at: i, old: old)))
    }

    mutating func vmaReset(_ p: Int, _ vmas: [VMA], _ j: inout StepJournal) {
        j.log(.vma(proc: Int32(p), .reset(old: state.processes[p].meta.vmas)))
        state.processes[p].meta.vmas = vmas
    }

    mutating func bufferAppend(_ p: Int, _ b: Buffer, _ j: inout StepJournal) {
        state.processes[p].meta.buffers.append(b)
        let i = state.processes[p].meta.buffers.count - 1
        state.processes[p].meta.reindexBuffers(from: i)
        j.log(.buffer(proc: Int32(p), .inserted(at: i)))
    }

    /// Replaces the buffer of the same name.
    mutating func bufferReplace(_ p: Int, _ b: Buffer, _ j: inout StepJournal) {
        guard let i = state.processes[p].meta.bufferIndex[b.name] else { return }
        let old = state.processes[p].meta.buffers[i]
        state.processes[p].meta.buffers[i] = b
        j.log(.buffer(proc: Int32(p), .replaced(at: i, old: old)))
    }

    mutating func bufferRemove(_ p: Int, named name: String, _ j: inout StepJournal) {
        guard let i = state.processes[p].meta.bufferIndex[name] else { return }
        let old = state.processes[p].meta.buffers.remove(at: i)
        state.processes[p].meta.reindexBuffers(from: i, removed: name)
        j.log(.buffer(proc: Int32(p), .removed(at: i, old: old)))
    }

    mutating func bufferReset(_ p: Int, _ buffers: [Buffer], _ j: inout StepJournal) {
        j.log(.buffer(proc: Int32(p), .reset(old: state.processes[p].meta.buffers)))
        state.processes[p].meta.buffers = buffers
        state.processes[p].meta.rebuildBufferIndex()
    }

    mutating func chunkInsert(_ p: Int, _ c: HeapChunk, at i: Int, _ j: inout StepJournal) {
        state.processes[p].meta.heapChunks.insert(c, at: i)
        j.log(.heapChunk(proc: Int32(p), .inserted(at: i)))
    }

    mutating func chunkRemove(_ p: Int, at i: Int, _ j: inout StepJournal) {
        let old = state.processes[p].meta.heapChunks.remove(at: i)
        j.log(.heapChunk(proc: Int32(p), .removed(at: i, old: old)))
    }

    mutating func chunkUpdate(_ p: Int, at i: Int, _ j: inout StepJournal, _ body: (inout HeapChunk) -> Void) {
        let old = state.processes[p].meta.heapChunks[i]
        body(&state.processes[p].meta.heapChunks[i])
        j.log(.heapChunk(proc: Int32(p), .replaced(at: i, old: old)))
    }

    mutating func chunkReset(_ p: Int, _ chunks: [HeapChunk], _ j: inout StepJournal) {
        j.log(.heapChunk(proc: Int32(p), .reset(old: state.processes[p].meta.heapChunks)))
        state.processes[p].meta.heapChunks = chunks
    }

    mutating func pinAppend(_ p: Int, _ r: PinRecord, _ j: inout StepJournal) {
        state.processes[p].meta.pins.append(r)
        j.log(.pinRecord(proc: Int32(p), .inserted(at: state.processes[p].meta.pins.count - 1)))
    }

    /// Removes every pin record of a buffer (io_uring registrations aside: uring-unregister owns them); returns them.
    mutating func pinRemoveAll(_ p: Int, buffer: String, _ j: inout StepJournal) -> [PinRecord] {
        var removed: [PinRecord] = []
        var i = state.processes[p].meta.pins.count - 1
        while i >= 0 {
            if state.processes[p].meta.pins[i].buffer == buffer && !state.processes[p].meta.pins[i].uring && state.processes[p].meta.pins[i].pipe == nil {
                let old = state.processes[p].meta.pins.remove(at: i)
                j.log(.pinRecord(proc: Int32(p), .removed(at: i, old: old)))
                removed.insert(old, at: 0)
            }
            i -= 1
        }
        return removed
    }

    mutating func pinReset(_ p: Int, _ pins: [PinRecord], _ j: inout StepJournal) {
        j.log(.pinRecord(proc: Int32(p), .reset(old: state.processes[p].meta.pins)))
        state.processes[p].meta.pins = pins
    }

    /// Undoes a process Change (Engine.undo routes them here).
    mutating func undoProcess(_ change: Change) {
        switch change {
        case .processAdded: state.processes.removeLast()
        case let .processCounters(p, old): state.processes[Int(p)].meta.counters = old
        case let .vma(p, edit): state.processes[Int(p)].meta.vmas.undo(edit)
        case let .buffer(p, edit):
            let name: String? = if case let .inserted(i) = edit { state.processes[Int(p)].meta.buffers[i].name } else { nil }
            state.processes[Int(p)].meta.buffers.undo(edit)
            switch edit {
            case let .inserted(i): state.processes[Int(p)].meta.reindexBuffers(from: i, removed: name)
            case let .removed(i, _), let .replaced(i, _): state.processes[Int(p)].meta.reindexBuffers(from: i)
            case .reset: state.processes[Int(p)].meta.rebuildBufferIndex()
            }
        case let .heapChunk(p, edit): state.processes[Int(p)].meta.heapChunks.undo(edit)
        case let .pinRecord(p, edit): state.processes[Int(p)].meta.pins.undo(edit)
        default: break
        }
    }
}
