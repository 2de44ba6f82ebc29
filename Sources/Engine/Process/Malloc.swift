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
    mutating func doMalloc(_ p: Int, name: String, size: UInt64) -> OpResult {
        let nb = request2size(size)
        let threshold = state.processes[p].meta.malloc.mmapThreshold
        if nb >= threshold {
            // sysmalloc_mmap: length ALIGN_UP(nb + SIZE_SZ, pagesize), chunk at the start of the mapping.
            let len = alignUp(nb + 8, pageSize)
            let thpAlign = state.config.kernel == .v6_12 && len % pmdSize == 0
            guard let addr = getUnmappedArea(p, length: len, thpAlign: thpAlign) else {
                return .fail(.errno("ENOMEM"), "malloc(\(formatSize(size))) returns NULL: no gap for a \(formatSize(len)) mapping")
            }
            insertVMA(p, VMA(start: addr, end: addr + len, flags: [.read, .write], kind: .anon, anonVMA: 0, shmem: 0, shmemOffset: 0, label: name))
            state.processes[p].meta.buffers.append(Buffer(name: name, start: addr + 16, size: size, kind: .mmap, chunkStart: addr, chunkSize: len))
            return OpResult(text: "malloc(\(formatSize(size))) ≥ mmap threshold \(formatSize(threshold)): glibc mmaps a chunk of its own, \(format0x(addr))–\(format0x(addr + len)) (\(formatSize(len)): the request, an 8-byte size field, rounded to pages); the pointer is \(format0x(addr + 16)), just past the 16-byte chunk header. Only a VMA: no frame until the first touch")
        }
        var text = "malloc(\(formatSize(size))) < mmap threshold \(formatSize(threshold)): from the brk heap"
        touchProcess(p)
        if state.processes[p].meta.malloc.chunks.isEmpty {
            // The first malloc sets up the tcache: its 0x290-byte chunk is the heap's first.
            guard growHeap(p, need: 0x290) else { return .fail(.errno("ENOMEM"), text + "; brk failed") }
            carve(p, index: state.processes[p].meta.malloc.chunks.count - 1, size: 0x290, owner: "<tcache>")
            text += "; the first malloc grows the heap with brk by \(formatSize(state.processes[p].meta.brk - state.processes[p].meta.startBrk)) (request + 128 KiB M_TOP_PAD) and puts the tcache at its start"
        }
        // First fit among free chunks below top.
        let chunks = state.processes[p].meta.malloc.chunks
        if let i = chunks.indices.dropLast().first(where: { chunks[$0].owner == nil && chunks[$0].size >= nb }) {
            carve(p, index: i, size: nb, owner: name)
            text += "; reuses a free chunk at \(format0x(chunks[i].start)), pages that may already be present"
        } else {
            let top = state.processes[p].meta.malloc.chunks.last!
            if top.owner != nil || top.size < nb + mallocMinSize {
                let before = state.processes[p].meta.brk
                guard growHeap(p, need: nb) else { return .fail(.errno("ENOMEM"), text + "; brk failed: malloc returns NULL") }
                text += "; sysmalloc grows the heap with brk by \(formatSize(state.processes[p].meta.brk - before))"
            }
            carve(p, index: state.processes[p].meta.malloc.chunks.count - 1, size: nb, owner: name)
        }
        let chunk = state.processes[p].meta.malloc.chunks.first { $0.owner == name }!
        state.processes[p].meta.buffers.append(Buffer(name: name, start: chunk.start + 16, size: size, kind: .heap, chunkStart: chunk.start, chunkSize: chunk.size))
        return OpResult(text: text + "; pointer \(format0x(chunk.start + 16)) (chunk of \(chunk.size) bytes)")
    }

    /// sysmalloc's brk path: grow by ALIGN_UP(nb + top_pad + MINSIZE − top, page); the heap VMA grows (do_brk_flags).
    private mutating func growHeap(_ p: Int, need nb: UInt64) -> Bool {
        var m = state.processes[p].meta
        let topFree = m.malloc.chunks.last.map { $0.owner == nil ? $0.size : 0 } ?? 0
        let grow = alignUp(nb + topPad + mallocMinSize - min(topFree, nb + topPad + mallocMinSize - 1), pageSize)
        let oldBrk = m.brk
        let newBrk = oldBrk + grow
        // brk must not run into the next mapping.
        if let next = m.vmas.first(where: { $0.start >= oldBrk && $0.kind != .heap }), next.start < newBrk { return false }
        if let last = m.malloc.chunks.last, last.owner == nil {
            m.malloc.chunks[m.malloc.chunks.count - 1].size += grow
        } else {
            m.malloc.chunks.append(HeapChunk(start: oldBrk, size: grow, owner: nil))
        }
        m.brk = newBrk
        touchProcess(p)
        state.processes[p].meta = m
        if let h = state.processes[p].meta.vmas.firstIndex(where: { $0.kind == .heap }) {
            state.processes[p].meta.vmas[h].end = newBrk
        } else {
            insertVMA(p, VMA(start: m.startBrk, end: newBrk, flags: [.read, .write], kind: .heap, anonVMA: 0, shmem: 0, shmemOffset: 0, label: "[heap]"))
        }
        tally.add("brk")
        return true
    }

    /// Splits free chunk i into an allocated chunk of `size` and a free remainder (when ≥ MINSIZE).
    private mutating func carve(_ p: Int, index i: Int, size: UInt64, owner: String) {
        var chunks = state.processes[p].meta.malloc.chunks
        let c = chunks[i]
        if c.size - size >= mallocMinSize {
            chunks[i] = HeapChunk(start: c.start, size: size, owner: owner)
            chunks.insert(HeapChunk(start: c.start + size, size: c.size - size, owner: nil), at: i + 1)
        } else {
            chunks[i].owner = owner
        }
        state.processes[p].meta.malloc.chunks = chunks
    }

    mutating func doFree(_ p: Int, buffer b: Buffer) -> OpResult {
        touchProcess(p)
        state.processes[p].meta.buffers.removeAll { $0.name == b.name }
        switch b.kind {
        case .mmap where b.chunkStart != b.start:
            // munmap_chunk, and the dynamic threshold: a freed mmapped chunk larger than the threshold
            // (up to 32 MiB) raises it, and the trim threshold to twice that.
            unmapRange(p, start: b.chunkStart, end: b.chunkStart + b.chunkSize)
            var text = "free: the chunk was mmapped, so munmap_chunk unmaps all \(formatSize(b.chunkSize)); its frames go back to the buddy allocator"
            let m = state.processes[p].meta.malloc
            if b.chunkSize > m.mmapThreshold && b.chunkSize <= mmapThresholdMax {
                state.processes[p].meta.malloc.mmapThreshold = b.chunkSize
                state.processes[p].meta.malloc.trimThreshold = 2 * b.chunkSize
                text += "; glibc raises M_MMAP_THRESHOLD to \(formatSize(b.chunkSize)) (and M_TRIM_THRESHOLD to \(formatSize(2 * b.chunkSize))): later requests of this size come from the heap"
            }
            return OpResult(text: text)
        case .heap:
            var chunks = state.processes[p].meta.malloc.chunks
            guard var i = chunks.firstIndex(where: { $0.owner == b.name }) else { return OpResult(text: "free: nothing to do") }
            chunks[i].owner = nil
            if i + 1 < chunks.count, chunks[i + 1].owner == nil {
                chunks[i].size += chunks[i + 1].size
                chunks.remove(at: i + 1)
            }
            if i > 0, chunks[i - 1].owner == nil {
                chunks[i - 1].size += chunks[i].size
                chunks.remove(at: i)
                i -= 1
            }
            let merged = chunks[i].size
            state.processes[p].meta.malloc.chunks = chunks
            var text = "free: the chunk goes back to glibc's free lists; the kernel is not told, so its pages stay present"
            // systrim: a large consolidated free at the top gives memory back with a negative sbrk.
            let trim = state.processes[p].meta.malloc.trimThreshold
            if i == chunks.count - 1, merged >= 64 * 1024, merged >= trim {
                let extra = alignDown(merged - mallocMinSize - 1 - topPad, pageSize)
                if extra > 0 {
                    let newBrk = state.processes[p].meta.brk - extra
                    state.processes[p].meta.malloc.chunks[i].size -= extra
                    state.processes[p].meta.brk = newBrk
                    unmapRange(p, start: alignUp(newBrk, pageSize), end: newBrk + extra)
                    text += "; the free top is over M_TRIM_THRESHOLD \(formatSize(trim)), so systrim shrinks the heap with brk by \(formatSize(extra)) and those pages are freed"
                }
            }
            return OpResult(text: text)
        default:
            return .fail(.errno("EINVAL"), "free() of \(b.name), which malloc did not return: glibc would abort with \"free(): invalid pointer\"; nothing was done")
        }
    }
}
