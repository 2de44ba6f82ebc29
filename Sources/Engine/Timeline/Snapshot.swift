// Snapshots of the whole state for the Timeline's time travel. The big flat arrays (one entry per
// frame, one per swap slot) are cut into fixed chunks; a snapshot holds one immutable chunk object
// per chunk, and consecutive snapshots share every chunk that did not change between them. The live
// arrays stay flat (the fault path writes them directly); each keeps a dirty flag per chunk, set by
// the only functions that write it, so a snapshot copies the dirty chunks only and a restore copies
// only the chunks that differ from the snapshot's.

/// Per-chunk bookkeeping beside a flat array: which chunks changed since the chunk object in `base`
/// was made from them. It is not part of the modelled state: two states are equal whatever it holds.
struct ChunkTracker<Chunk: AnyObject & Sendable>: Equatable, Sendable {
    static var shift: Int { 10 }
    /// The snapshot chunk each live chunk equals when its dirty flag is clear (nil: none made yet).
    private(set) var base: [Chunk?]
    private(set) var dirty: [Bool]
    let elements: Int

    init(elements: Int) {
        self.elements = elements
        let n = (elements + (1 << Self.shift) - 1) >> Self.shift
        base = Array(repeating: nil, count: n)
        dirty = Array(repeating: true, count: n)
    }

    /// The elements chunk `chunk` covers.
    @inline(__always) func range(_ chunk: Int) -> Range<Int> {
        (chunk << Self.shift)..<min(elements, (chunk + 1) << Self.shift)
    }

    @inline(__always) mutating func touch(_ index: Int) { dirty[index >> Self.shift] = true }

    /// The chunk objects for a snapshot, making new ones for the chunks that changed.
    mutating func freeze(_ make: (Range<Int>) -> Chunk) -> [Chunk] {
        var out: [Chunk] = []
        out.reserveCapacity(base.count)
        for c in 0..<base.count {
            let chunk = (dirty[c] ? nil : base[c]) ?? make(range(c))
            base[c] = chunk
            dirty[c] = false
            out.append(chunk)
        }
        return out
    }

    /// Brings the live array back to `chunks`, copying only the chunks that differ.
    mutating func thaw(_ chunks: [Chunk], _ copy: (Range<Int>, Chunk) -> Void) {
        for c in 0..<base.count where dirty[c] || base[c] !== chunks[c] {
            copy(range(c), chunks[c])
            base[c] = chunks[c]
            dirty[c] = false
        }
    }

    /// Bookkeeping never makes two states differ.
    static func == (_: ChunkTracker, _: ChunkTracker) -> Bool { true }
}

/// One chunk of a single flat array.
final class ArrayChunk<Element: Sendable>: Sendable {
    let elements: [Element]
    init(_ elements: ArraySlice<Element>) { self.elements = Array(elements) }
}

/// The whole state at one step. Holds the frame and swap chunks plus everything else by value:
/// process and device records are Swift values whose buffers are shared copy-on-write, so an
/// unchanged page table (one array per 2 MiB region) is shared between snapshots too.
public struct StateSnapshot: Sendable {
    /// The step it was taken after (0: the booted machine).
    public let step: Int
    let phys: PhysicalMemory.Snapshot
    let swap: [ArrayChunk<UInt16>]
    /// The state with the chunked arrays emptied.
    let rest: EngineState
}

extension Engine {
    /// A snapshot of the state after step `step`. Copies the chunks written since the last snapshot.
    public mutating func snapshot(step: Int) -> StateSnapshot {
        let phys = state.phys.snapshot()
        let swap = state.freezeSwap()
        var rest = state
        rest.phys = phys.rest
        rest.clearSwapMap()
        return StateSnapshot(step: step, phys: phys, swap: swap, rest: rest)
    }

    /// Puts the state back to a snapshot, copying only the chunks that differ from it.
    public mutating func restore(_ s: StateSnapshot) {
        var next = s.rest
        // Move the live arrays over (no second reference, so no copy on write), then patch them.
        swap(&next.phys, &state.phys)
        next.phys.restore(s.phys)
        next.takeSwapMap(from: &state)
        next.thawSwap(s.swap)
        state = next
    }
}

/// How much memory a set of snapshots holds, counting each shared chunk or page table once.
public struct SnapshotFootprint: Sendable {
    public var snapshots = 0
    public var frameChunks = 0
    public var swapChunks = 0
    public var pageTables = 0
    public var bytes = 0

    public init(_ snapshots: [StateSnapshot]) {
        self.snapshots = snapshots.count
        var frames = Set<ObjectIdentifier>(), swaps = Set<ObjectIdentifier>()
        var tables = Set<UnsafeRawPointer>()
        for s in snapshots {
            for c in s.phys.chunks where frames.insert(ObjectIdentifier(c)).inserted {
                bytes += c.bytes
            }
            for c in s.swap where swaps.insert(ObjectIdentifier(c)).inserted {
                bytes += c.elements.count * MemoryLayout<UInt16>.stride
            }
            bytes += s.phys.rest.smallArrayBytes
            for p in s.rest.processes {
                for t in p.pt.tables.values {
                    guard let id = t.entries.withUnsafeBufferPointer({ $0.baseAddress.map { UnsafeRawPointer($0) } }) else { continue }
                    if tables.insert(id).inserted { bytes += pagesPerPMD * MemoryLayout<PTE>.stride }
                }
            }
        }
        frameChunks = frames.count
        swapChunks = swaps.count
        pageTables = tables.count
    }
}
