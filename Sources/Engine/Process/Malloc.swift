// glibc 2.36 malloc, reduced to what decides where memory comes from and when the kernel sees it:
// requests ≥ M_MMAP_THRESHOLD get their own mmap (chunk header: the pointer is mmap start + 16);
// smaller ones are carved from the main arena's brk heap. Bins and tcache lists are reduced to
// first fit over free chunks; the tcache's own 0x290-byte chunk still comes first.

let mallocMinSize: UInt64 = 32
let topPad: UInt64 = 128 * 1024
let mmapThresholdMax: UInt64 = 32 << 20

/// request2size: the chunk size for a request (8 bytes of header, 16-byte alignment, 32 minimum).
func request2size(_ n: UInt64) -> UInt64 { max(mallocMinSize, (n + 8 + 15) & ~15) }

extension Engine {
    mutating func doMalloc(_ p: Int, name: String, size: UInt64, _ j: inout StepJournal) -> OpResult {
        let nb = request2size(size)
        let threshold = state.processes[p].meta.mmapThreshold
        if nb >= threshold {
            // sysmalloc_mmap: length ALIGN_UP(nb + SIZE_SZ, pagesize), chunk at the start of the mapping.
            let len = alignUp(nb + 8, pageSize)
            let thpAlign = state.config.kernel == .v6_12 && len % pmdSize == 0
            guard let addr = getUnmappedArea(p, length: len, thpAlign: thpAlign) else {
                return .fail(.errno("ENOMEM"), "malloc(\(formatSize(size))) returns NULL: no gap for a \(formatSize(len)) mapping")
            }
            insertVMA(p, VMA(start: addr, end: addr + len, flags: [.read, .write], kind: .anon, anonVMA: 0, shmem: 0, shmemOffset: 0, label: name), &j)
            bufferAppend(p, Buffer(name: name, start: addr + 16, size: size, kind: .mmap, chunkStart: addr, chunkSize: len), &j)
            return OpResult(text: "malloc(\(formatSize(size))) ≥ mmap threshold \(formatSize(threshold)): glibc mmaps a chunk of its own, \(hex(addr))–\(hex(addr + len)) (\(formatSize(len)): the request, an 8-byte size field, rounded to pages); the pointer is \(hex(addr + 16)), just past the 16-byte chunk header. Only a VMA: no frame until the first touch")
        }
        var text = "malloc(\(formatSize(size))) < mmap threshold \(formatSize(threshold)): from the brk heap"
        touchProcess(p, &j)
        if state.processes[p].meta.heapChunks.isEmpty {
            // The first malloc sets up the tcache: its 0x290-byte chunk is the heap's first.
            guard growHeap(p, need: 0x290, &j) else { return .fail(.errno("ENOMEM"), text + "; brk failed") }
            carve(p, index: state.processes[p].meta.heapChunks.count - 1, size: 0x290, owner: "<tcache>", &j)
            text += "; the first malloc grows the heap with brk by \(formatSize(state.processes[p].meta.brk - state.processes[p].meta.startBrk)) (request + 128 KiB M_TOP_PAD) and puts the tcache at its start"
        }
        // First fit among free chunks below top.
        let chunk: HeapChunk
        if let i = firstFit(p, nb) {
            let start = state.processes[p].meta.heapChunks[i].start
            chunk = carve(p, index: i, size: nb, owner: name, &j)
            text += "; reuses a free chunk at \(hex(start)), pages that may already be present"
        } else {
            // The first malloc made the heap: it has a top chunk.
            let top = state.processes[p].meta.heapChunks[state.processes[p].meta.heapChunks.count - 1]
            if top.owner != nil || top.size < nb + mallocMinSize {
                let before = state.processes[p].meta.brk
                guard growHeap(p, need: nb, &j) else { return .fail(.errno("ENOMEM"), text + "; brk failed: malloc returns NULL") }
                text += "; sysmalloc grows the heap with brk by \(formatSize(state.processes[p].meta.brk - before))"
            }
            chunk = carve(p, index: state.processes[p].meta.heapChunks.count - 1, size: nb, owner: name, &j)
        }
        bufferAppend(p, Buffer(name: name, start: chunk.start + 16, size: size, kind: .heap, chunkStart: chunk.start, chunkSize: chunk.size), &j)
        return OpResult(text: text + "; pointer \(hex(chunk.start + 16)) (chunk of \(chunk.size) bytes)")
    }

    /// The first free chunk below top that holds `nb` bytes.
    private func firstFit(_ p: Int, _ nb: UInt64) -> Int? {
        let chunks = state.processes[p].meta.heapChunks
        return chunks.indices.dropLast().first { chunks[$0].owner == nil && chunks[$0].size >= nb }
    }

    /// sysmalloc's brk path: grow by ALIGN_UP(nb + top_pad + MINSIZE − top, page); the heap VMA grows (do_brk_flags).
    /// (It reads the record field by field: a copy of it held across the writes would copy its arrays.)
    private mutating func growHeap(_ p: Int, need nb: UInt64, _ j: inout StepJournal) -> Bool {
        let count = state.processes[p].meta.heapChunks.count
        let top = count > 0 ? state.processes[p].meta.heapChunks[count - 1] : nil
        let topFree = top.map { $0.owner == nil ? $0.size : 0 } ?? 0
        let grow = alignUp(nb + topPad + mallocMinSize - min(topFree, nb + topPad + mallocMinSize - 1), pageSize)
        let oldBrk = state.processes[p].meta.brk
        let newBrk = oldBrk + grow
        // brk must not run into the next mapping.
        if let next = state.processes[p].meta.vmas.first(where: { $0.start >= oldBrk && $0.kind != .heap }), next.start < newBrk { return false }
        if let top, top.owner == nil {
            chunkUpdate(p, at: count - 1, &j) { $0.size += grow }
        } else {
            chunkInsert(p, HeapChunk(start: oldBrk, size: grow, owner: nil), at: count, &j)
        }
        updateCounters(p, &j) { $0.brk = newBrk }
        if let h = state.processes[p].meta.vmas.firstIndex(where: { $0.kind == .heap }) {
            vmaUpdate(p, at: h, &j) { $0.end = newBrk }
        } else {
            let start = state.processes[p].meta.startBrk
            insertVMA(p, VMA(start: start, end: newBrk, flags: [.read, .write], kind: .heap, anonVMA: 0, shmem: 0, shmemOffset: 0, label: "[heap]"), &j)
        }
        j.events.add(.brk)
        return true
    }

    /// Splits free chunk i into an allocated chunk of `size` and a free remainder (when ≥ MINSIZE);
    /// returns the allocated chunk.
    @discardableResult
    private mutating func carve(_ p: Int, index i: Int, size: UInt64, owner: String, _ j: inout StepJournal) -> HeapChunk {
        let c = state.processes[p].meta.heapChunks[i]
        if c.size - size >= mallocMinSize {
            chunkUpdate(p, at: i, &j) { $0 = HeapChunk(start: c.start, size: size, owner: owner) }
            chunkInsert(p, HeapChunk(start: c.start + size, size: c.size - size, owner: nil), at: i + 1, &j)
        } else {
            chunkUpdate(p, at: i, &j) { $0.owner = owner }
        }
        return state.processes[p].meta.heapChunks[i]
    }

    mutating func doFree(_ p: Int, buffer b: Buffer, _ j: inout StepJournal) -> OpResult {
        touchProcess(p, &j)
        bufferRemove(p, named: b.name, &j)
        switch b.kind {
        case .mmap where b.chunkStart != b.start:
            // munmap_chunk, and the dynamic threshold: a freed mmapped chunk larger than the threshold
            // (up to 32 MiB) raises it, and the trim threshold to twice that.
            unmapRange(p, start: b.chunkStart, end: b.chunkStart + b.chunkSize, &j)
            let kept = j.events[.zapKept]
            var text = "free: the chunk was mmapped, so munmap_chunk unmaps all \(formatSize(b.chunkSize)); "
                + (kept > 0 ? "frames nothing else holds go back to the buddy allocator, but \(pluralIsAre(kept, "frame")) still referenced (a device's pin, another process) and stay"
                    : "its frames go back to the buddy allocator")
            if b.chunkSize > state.processes[p].meta.mmapThreshold && b.chunkSize <= mmapThresholdMax {
                updateCounters(p, &j) {
                    $0.mmapThreshold = b.chunkSize
                    $0.trimThreshold = 2 * b.chunkSize
                }
                text += "; glibc raises M_MMAP_THRESHOLD to \(formatSize(b.chunkSize)) (and M_TRIM_THRESHOLD to \(formatSize(2 * b.chunkSize))): later requests of this size come from the heap"
            }
            return OpResult(text: text)
        case .heap:
            guard var i = state.processes[p].meta.heapChunks.firstIndex(where: { $0.owner == b.name }) else { return OpResult(text: "free: nothing to do") }
            chunkUpdate(p, at: i, &j) { $0.owner = nil }
            if i + 1 < state.processes[p].meta.heapChunks.count, state.processes[p].meta.heapChunks[i + 1].owner == nil {
                let size = state.processes[p].meta.heapChunks[i + 1].size
                chunkUpdate(p, at: i, &j) { $0.size += size }
                chunkRemove(p, at: i + 1, &j)
            }
            if i > 0, state.processes[p].meta.heapChunks[i - 1].owner == nil {
                let size = state.processes[p].meta.heapChunks[i].size
                chunkUpdate(p, at: i - 1, &j) { $0.size += size }
                chunkRemove(p, at: i, &j)
                i -= 1
            }
            let merged = state.processes[p].meta.heapChunks[i].size
            var text = "free: the chunk goes back to glibc's free lists; the kernel is not told, so its pages stay present"
            // systrim: a large consolidated free at the top gives memory back with a negative sbrk.
            let trim = state.processes[p].meta.trimThreshold
            if i == state.processes[p].meta.heapChunks.count - 1, merged >= 64 * 1024, merged >= trim {
                let extra = alignDown(merged - mallocMinSize - 1 - topPad, pageSize)
                if extra > 0 {
                    let newBrk = state.processes[p].meta.brk - extra
                    chunkUpdate(p, at: i, &j) { $0.size -= extra }
                    updateCounters(p, &j) { $0.brk = newBrk }
                    unmapRange(p, start: alignUp(newBrk, pageSize), end: newBrk + extra, &j)
                    text += "; the free top is over M_TRIM_THRESHOLD \(formatSize(trim)), so systrim shrinks the heap with brk by \(formatSize(extra)) and those pages are freed"
                }
            }
            return OpResult(text: text)
        default:
            return .fail(.errno("EINVAL"), "free() of \(b.name), which malloc did not return: glibc would abort with \"free(): invalid pointer\"; nothing was done")
        }
    }
}
