// Device memory accesses: patterns over a mapped buffer, traces of raw IOVAs, and SVA's I/O page
// faults. Each access is one IOTLB lookup; a miss walks the I/O page table.

/// A stream of device addresses (a `dma-trace` file). The Engine never opens files: the caller does.
public protocol AddressSource {
    /// The next address, or nil at the end.
    mutating func next() throws -> UInt64?
    /// Replaces `batch` with the next addresses (as many as is convenient); false at the end.
    mutating func nextBatch(_ batch: inout [UInt64]) throws -> Bool
}

extension AddressSource {
    public mutating func nextBatch(_ batch: inout [UInt64]) throws -> Bool {
        batch.removeAll(keepingCapacity: true)
        while batch.count < 4096, let a = try next() { batch.append(a) }
        return !batch.isEmpty
    }
}

/// Opens the files `dma-trace` names.
public protocol TraceProvider: Sendable {
    func open(_ path: String) throws -> any AddressSource
    /// Opens a trace whose entries are in `unit`: a source that knows the unit refuses, with its
    /// line, a page number too large for a 64-bit address once multiplied by 4096.
    func open(_ path: String, unit: TraceUnit) throws -> any AddressSource
    /// Opens a `PROC trace` file (a valgrind lackey trace).
    func openMemoryTrace(_ path: String) throws -> any MemoryAccessSource
}

/// A page number whose IOVA (× 4096) does not fit in 64 bits.
public struct TracePageNumberTooLarge: Error, CustomStringConvertible {
    public var value: UInt64
    public var entry: Int
    public var description: String {
        "entry \(entry): page number \(hex(value)) × 4096 is past 2^64 (unit=page numbers are at most \(hex(UInt64.max >> pageShift)))"
    }
}

/// What a provider without memory traces says.
public struct NoMemoryTraces: Error, CustomStringConvertible {
    public var description: String { "memory traces cannot be read here" }
}

extension TraceProvider {
    public func open(_ path: String, unit: TraceUnit) throws -> any AddressSource { try open(path) }
    public func openMemoryTrace(_ path: String) throws -> any MemoryAccessSource { throw NoMemoryTraces() }
}

/// An address source over an array (tests, the TUI prompt with inline data).
public struct ArrayAddressSource: AddressSource {
    var items: [UInt64]
    var i = 0
    public init(_ items: [UInt64]) { self.items = items }
    public mutating func next() -> UInt64? {
        guard i < items.count else { return nil }
        defer { i += 1 }
        return items[i]
    }
}

/// The I/O page table as the DMA loop reads it: a flat slot per 4 KiB of the mapped IOVA span when
/// that span is compact (one array load per walk instead of hashing), else the IOPTE dictionary.
struct IOPTEIndex {
    private let base: UInt64
    private let slots: [Int32]
    private let list: [IOPTE]
    private let table: [UInt64: IOPTE]
    private let sizes: [UInt64]
    static let maxSlots = 1 << 22

    init(_ ioptes: [UInt64: IOPTE], sizes: [UInt64]) {
        table = ioptes
        self.sizes = sizes
        let lo = ioptes.values.map(\.iova).min() ?? 0
        let hi = ioptes.values.map { $0.iova + $0.size }.max() ?? 0
        let span = Int((hi - lo) >> pageShift)
        guard !ioptes.isEmpty, span <= IOPTEIndex.maxSlots else {
            base = 0
            slots = []
            list = []
            return
        }
        base = lo
        list = ioptes.values.sorted { $0.iova < $1.iova }
        var s = [Int32](repeating: -1, count: span)
        for (i, e) in list.enumerated() {
            let first = Int((e.iova - lo) >> pageShift)
            for k in first..<(first + Int(e.size >> pageShift)) { s[k] = Int32(i) }
        }
        slots = s
    }

    @inline(__always) func find(_ iova: UInt64) -> IOPTE? {
        if !slots.isEmpty {
            let off = (iova &- base) >> pageShift
            guard iova >= base, off < UInt64(slots.count) else { return nil }
            let i = slots[Int(off)]
            return i >= 0 ? list[Int(i)] : nil
        }
        for s in sizes {
            if let e = table[iova & ~(s - 1)], e.size == s { return e }
        }
        return nil
    }
}

/// Per-step DMA counters.
struct DMACounts {
    var accesses = 0, hits = 0, misses = 0, walks = 0, stallNs = 0, faults = 0, staleHits = 0, readOnlyFaults = 0
    var firstFault: UInt64?
}

extension Engine {
    /// Offsets of one pass of a pattern over `length` bytes; nil when the pass would make more than
    /// DMAPatterns.maxAccessesPerPass accesses (so memory stays bounded whatever the buffer's size).
    func dmaOffsets(_ pattern: DMAPattern, length: UInt64, size: UInt64, count: UInt64?, rng: inout SplitMix64) -> [UInt64]? {
        let limit = DMAPatterns.maxAccessesPerPass
        var out: [UInt64] = []
        let size = max(size, 1), span = max(length, 1)
        switch pattern {
        case .seq, .stride:
            let step: UInt64
            if case let .stride(s) = pattern { step = max(s, 1) } else { step = size }
            let n = count ?? max(1, length / step)
            guard n <= limit else { return nil }
            out.reserveCapacity(Int(n))
            // Wrapping at the end of the buffer, as the offsets always did; kept below `span`.
            var o: UInt64 = 0
            let advance = step % span
            for _ in 0..<n {
                out.append(o)
                o = o >= span - advance ? o - (span - advance) : o + advance
            }
        case .random:
            let slots = max(1, length / size)
            let n = count ?? slots
            guard n <= limit else { return nil }
            out.reserveCapacity(Int(n))
            for _ in 0..<n { out.append((rng.next() % slots) * size) }
        case let .tile(w, h, pitch):
            // Rows and columns past the buffer's end are skipped, not walked: the work is what is kept.
            let perRow = (w + size - 1) / size
            let (all, overflow) = perRow.multipliedReportingOverflow(by: h)
            var n = count ?? (overflow ? UInt64.max : all)
            outer: for row in 0..<h {
                let rowStart = row * pitch  // (h - 1) × pitch is checked at parse time
                if rowStart >= length { break }
                for k in 0..<perRow {
                    if n == 0 { break outer }
                    let o = rowStart + k * size
                    if o >= length { break }
                    out.append(o)
                    if out.count > limit { return nil }
                    n -= 1
                }
            }
        }
        return out
    }

    /// Translates one device address through the IOTLB and the I/O page table.
    @inline(__always)
    func translate(_ iova: UInt64, write: Bool, tlb: inout IOTLBState, ioptes: IOPTEIndex, sizes: [UInt64],
                   info: IOMMUFormatInfo, hitNs: Int, walkNs: Int, c: inout DMACounts) {
        c.accesses += 1
        let slot = tlb.lookup(iova, sizes: sizes)
        if slot >= 0 {
            c.hits += 1
            c.stallNs += hitNs
            if tlb.isStale(slot) { c.staleHits += 1 }
            return
        }
        guard let pte = ioptes.find(iova) else {
            c.faults += 1
            if c.firstFault == nil { c.firstFault = iova }
            return
        }
        c.misses += 1
        c.walks += 1
        c.stallNs += info.walkLevels(forPageSize: pte.size) * walkNs
        if write && !pte.writable {
            c.readOnlyFaults += 1
            c.faults += 1
            if c.firstFault == nil { c.firstFault = iova }
            return
        }
        tlb.insert(pte)
    }

    /// Adds a step's counters to the device, the events and the narration.
    mutating func finishDMA(_ d: Int, _ c: DMACounts, what: String, _ j: inout StepJournal) -> OpResult {
        updateDeviceCounters(d, &j) {
            $0.stats.accesses += c.accesses
            $0.stats.hits += c.hits
            $0.stats.misses += c.misses
            $0.stats.walks += c.walks
            $0.stats.stallNs += c.stallNs
            $0.stats.faults += c.faults
            $0.stats.hazards += c.staleHits
        }
        j.events.add(.iotlbLookup, c.accesses)
        j.events.add(.iotlbHit, c.hits)
        j.events.add(.iotlbMiss, c.misses)
        let name = state.devices[d].name
        var text = what
        if state.devices[d].info.format == .none {
            text += ": \(c.accesses) accesses straight to physical addresses (no IOMMU, no translation)"
        } else {
            let rate = c.accesses > 0 ? Double(c.hits) * 100 / Double(c.accesses) : 0
            text += ": \(plural(c.accesses, "IOTLB lookup")), \(plural(c.hits, "hit")) (\(percentText(rate))%), \(plural(c.misses, "miss", "misses")) each walking the I/O page table at \(state.devices[d].walkNs) ns a level; stall \(formatNs(c.stallNs))"
        }
        if c.staleHits > 0 {
            j.hazards.append(Hazard(kind: .staleIOTLB, text: "\(plural(c.staleHits, "DMA access", "DMA accesses")) of \(name) went through stale IOTLB entries of an unmapped buffer (flush=lazy): the device reached memory that is no longer mapped for it"))
        }
        if c.faults > 0 {
            let why = c.readOnlyFaults > 0 ? "a write through a read-only IOPTE" : "no IOPTE translates it"
            return .fail(.iommuFault, text + "; \(plural(c.faults, "IOMMU fault")): the first at IOVA \(hex(c.firstFault ?? 0)), \(why); the transaction is blocked and reported (report_iommu_fault)")
        }
        return OpResult(text: text)
    }

    mutating func doDMA(_ d: Int, ref: BufferRef, access: Access, pattern: DMAPattern, size: UInt64, count: UInt64?,
                        passes: UInt64, transient: Bool, _ j: inout StepJournal) -> OpResult {
        let devName = state.devices[d].name
        var preamble = ""
        var m = mappingIndex(d, process: ref.process, buffer: ref.buffer)
        if transient {
            // The seed's "pin only inside the ioctl": pin + map, DMA, unmap + unpin, all in this step.
            if m == nil {
                let r = doMap(d, ref: ref, range: nil, iova: nil, access: access, &j)
                guard r.outcome == .ok else { return r }
                preamble = "transient: " + r.text + "; then "
                m = mappingIndex(d, process: ref.process, buffer: ref.buffer)
            } else {
                preamble = "transient, but \(ref.process).\(ref.buffer) is mapped already: "
            }
        }
        var mapping: IOMapping
        var staleMapping = false
        if let m {
            mapping = state.devices[d].mappings[m]
        } else if let old = state.devices[d].lazyUnmapped.last(where: { $0.process == ref.process && $0.buffer == ref.buffer }) {
            mapping = old
            staleMapping = true
        } else {
            return .fail(.errno("EINVAL"), "\(devName) has no mapping of \(ref.process).\(ref.buffer): map it first (or use transient)")
        }
        guard let p = state.processIndex(named: ref.process) else { return .fail(.errno("ESRCH"), "no process \(ref.process)") }
        let b = state.processes[p].meta.buffer(named: ref.buffer)
        // The device reaches the part of the buffer its mapping covers (all of it, or a range).
        let bufStart = max(b?.start ?? mapping.va, mapping.va)
        let bufEnd = min(b.map { $0.start + $0.size } ?? (mapping.va + mapping.size), mapping.va + mapping.size)
        let length = bufEnd > bufStart ? bufEnd - bufStart : 0
        let base = mapping.iova + (bufStart - mapping.va)
        var rng = state.devices[d].dmaRng
        let accessLimit = "a dma step makes at most \(DMAPatterns.maxAccesses) accesses, \(DMAPatterns.maxAccessesPerPass) a pass (UMPTUI's limit, not the kernel's): give count=, a larger size= or fewer passes="
        guard let offsets = dmaOffsets(pattern, length: length, size: size, count: count, rng: &rng) else {
            return .fail(.errno("E2BIG"), "\(devName) DMA over \(formatSize(length)) of \(ref.process).\(ref.buffer) \(describe(pattern)) in \(size) B bursts is more than \(DMAPatterns.maxAccessesPerPass) accesses a pass: \(accessLimit)")
        }
        guard UInt64(offsets.count).multipliedReportingOverflow(by: passes).partialValue <= DMAPatterns.maxAccesses,
              UInt64(offsets.count) <= DMAPatterns.maxAccesses / passes else {
            return .fail(.errno("E2BIG"), "\(devName) DMA of \(offsets.count) accesses × \(passes) passes: \(accessLimit)")
        }
        updateDeviceCounters(d, &j) { $0.dmaRng = rng }
        var c = DMACounts()
        let write = access == .write
        if state.devices[d].info.format == .sva {
            return finishSVA(d, p: p, base: bufStart, offsets: offsets, passes: passes, write: write, size: size,
                             what: preamble + "\(devName) \(access.rawValue)s \(ref.process).\(ref.buffer) through \(ref.process)'s page table", &j)
        }
        if state.devices[d].info.format == .none {
            c.accesses = offsets.count * Int(passes)
        } else {
            var tlb = state.devices[d].iotlb
            let sizes = sizesInUse(d)
            let hitNs = state.devices[d].hitNs, walkNs = state.devices[d].walkNs
            let ioptes = IOPTEIndex(state.devices[d].ioptes, sizes: sizes), info = state.devices[d].info
            let total = offsets.count * Int(passes)
            var done = 0
            dma: for _ in 0..<passes {
                for o in offsets {
                    done += 1
                    if done & 0xffff == 0, !j.poll(done, of: total, .accesses) { break dma }
                    translate(base + o, write: write, tlb: &tlb, ioptes: ioptes, sizes: sizes, info: info, hitNs: hitNs, walkNs: walkNs, c: &c)
                    // An access that crosses into the next page needs that page's translation too.
                    let last = base + o + size - 1
                    if size > 1, last >> pageShift != (base + o) >> pageShift {
                        translate(last & ~(pageSize - 1), write: write, tlb: &tlb, ioptes: ioptes, sizes: sizes, info: info, hitNs: hitNs, walkNs: walkNs, c: &c)
                    }
                }
            }
            updateIOTLB(d, &j) { $0 = tlb }
        }
        var what = preamble + "\(devName) DMA \(access.rawValue)s \(ref.process).\(ref.buffer): \(offsets.count) × \(size) B \(describe(pattern))\(passes > 1 ? " × \(passes) passes" : "")"
        if staleMapping { what += " at its old IOVA \(hex(mapping.iova)) (unmapped, invalidation still queued)" }
        // Pinned user memory the process no longer maps: the device and the CPU see different frames.
        if mapping.pinnedPages > 0 && !staleMapping {
            let skip = Int((bufStart & ~(pageSize - 1) - mapping.va) >> pageShift)
            let divergent = divergentPages(p, va: mapping.va, pfns: mapping.pfns)
            if let first = divergent.first {
                let page = first - skip
                j.hazards.append(Hazard(kind: .deviceSeesOldFrame, text: "the device's \(write ? "writes no longer reach" : "reads no longer see") \(ref.process).\(ref.buffer) page \(page)\(divergent.count > 1 ? " (and \(divergent.count - 1) more)" : ""): it still uses frame \(hex(UInt64(mapping.pfns[first]))), which the process no longer maps"))
            }
        }
        var reached = ""
        if !staleMapping && c.faults == 0 {
            // What the DMA reached: one pass of the pattern over the frames behind the mapping.
            var pfns: [Int] = []
            var seen = Set<Int>()
            let zero = Int(state.meta.zeroPfn)
            func reach(_ va: UInt64) {
                guard va >= mapping.va else { return }
                let k = Int((va - mapping.va) >> pageShift)
                guard k < mapping.pfns.count, Int(mapping.pfns[k]) != zero, seen.insert(Int(mapping.pfns[k])).inserted else { return }
                pfns.append(Int(mapping.pfns[k]))
            }
            for o in offsets {
                reach(bufStart + o)
                if size > 1 { reach(bufStart + o + size - 1) }
            }
            if write {
                let tag = DataTag.device(d, step: j.step)
                for pfn in pfns { state.phys.setData(pfn, tag, &j) }
                if !pfns.isEmpty { reached = "; it writes data \(state.dataName(tag) ?? "") into \(plural(pfns.count, "frame"))" }
            } else if !pfns.isEmpty {
                reached = "; it reads " + dataSummary(pfns)
            }
        }
        var result = finishDMA(d, c, what: what, &j)
        result.text += reached
        if transient, let m = mappingIndex(d, process: ref.process, buffer: ref.buffer), preamble.hasPrefix("transient: ") {
            result.text += "; then " + unmapMapping(d, index: m, &j)
        }
        return result
    }

    /// "data app@4 on 3 pages, zero-filled data on 1": what a reader of these frames gets, in the
    /// order it first meets each kind.
    func dataSummary(_ pfns: [Int]) -> String {
        var order: [DataTag] = []
        var counts: [DataTag: Int] = [:]
        for pfn in pfns {
            let t = state.phys.dataTag(pfn)
            if counts[t] == nil { order.append(t) }
            counts[t, default: 0] += 1
        }
        let shown = order.prefix(3).map { t -> String in
            let what = state.dataName(t).map { "data \($0)" } ?? "zero-filled data"
            return "\(what) on \(plural(counts[t] ?? 0, "page"))"
        }
        return shown.joined(separator: ", ") + (order.count > 3 ? " and \(order.count - 3) more kinds" : "")
    }

    /// Page sizes present in the device's IOPTEs (the IOTLB probes only those).
    func sizesInUse(_ d: Int) -> [UInt64] {
        var bits: UInt64 = 0
        for e in state.devices[d].ioptes.values { bits |= e.size }
        var out: [UInt64] = []
        var b = bits
        for s in state.devices[d].iotlb.sizes { b |= s }
        while b != 0 {
            out.append(UInt64(1) << UInt64(ffs64(b)))
            b &= b - 1
        }
        return out
    }

    func describe(_ p: DMAPattern) -> String {
        switch p {
        case .seq: "sequential"
        case .random: "at random offsets"
        case let .stride(s): "with a stride of \(formatSize(s))"
        case let .tile(w, h, pitch): "over a \(w)×\(h) tile, pitch \(pitch)"
        }
    }

    /// `dma-trace`: every address of the source through the IOTLB.
    mutating func doDMATrace(_ d: Int, path: String, unit: TraceUnit, traces: (any TraceProvider)?, _ j: inout StepJournal) -> OpResult {
        let devName = state.devices[d].name
        guard let traces else {
            return .fail(.errno("ENOENT"), "\(devName) dma-trace \(path): no trace files can be read here")
        }
        var source: any AddressSource
        do {
            source = try traces.open(path, unit: unit)
        } catch {
            return .fail(.errno("ENOENT"), "\(devName) dma-trace: \(error)")
        }
        touchDevice(d, &j)
        var c = DMACounts()
        if state.devices[d].info.format == .none || state.devices[d].info.format == .sva {
            return .fail(.errno("EINVAL"), "dma-trace replays IOVAs; \(devName) has \(state.devices[d].info.format == .none ? "no IOMMU" : "SVA, which translates process addresses")")
        }
        var tlb = state.devices[d].iotlb
        let sizes = sizesInUse(d)
        let hitNs = state.devices[d].hitNs, walkNs = state.devices[d].walkNs
        let ioptes = IOPTEIndex(state.devices[d].ioptes, sizes: sizes), info = state.devices[d].info
        let shift: UInt64 = unit == .page ? pageShift : 0
        var batch: [UInt64] = []
        batch.reserveCapacity(1 << 16)
        do {
            var done = 0
            while try source.nextBatch(&batch) {
                // A page number past 2^52 would wrap to a small IOVA (a file source names its line first).
                if shift > 0, let big = batch.first(where: { $0 > UInt64.max >> shift }) {
                    throw TracePageNumberTooLarge(value: big, entry: done + (batch.firstIndex(of: big) ?? 0) + 1)
                }
                for a in batch {
                    translate(a << shift, write: false, tlb: &tlb, ioptes: ioptes, sizes: sizes, info: info, hitNs: hitNs, walkNs: walkNs, c: &c)
                }
                done += batch.count
                if !j.poll(done, of: 0, .lines) { break }
            }
        } catch {
            updateIOTLB(d, &j) { $0 = tlb }
            return .fail(.errno("EINVAL"), "\(devName) dma-trace \(path): \(error)")
        }
        updateIOTLB(d, &j) { $0 = tlb }
        return finishDMA(d, c, what: "\(devName) replays \(path) (\(unit == .page ? "page numbers × 4096" : "addresses"))", &j)
    }

    /// SVA: the device TLB caches the process's own translations; a miss walks the CPU page table and
    /// a non-present page is an I/O page fault that handle_mm_fault resolves (iommu_sva_handle_iopf).
    private mutating func finishSVA(_ d: Int, p: Int, base: UInt64, offsets: [UInt64], passes: UInt64, write: Bool,
                                    size: UInt64, what: String, _ j: inout StepJournal) -> OpResult {
        var c = DMACounts()
        var iopf = 0, invalid = 0
        var tlb = state.devices[d].iotlb
        let total = offsets.count * Int(passes)
        sva: for _ in 0..<passes {
            for o in offsets {
                let va = base + o
                c.accesses += 1
                if c.accesses & 0xffff == 0, !j.poll(c.accesses, of: total, .accesses) { break sva }
                let vpn = va >> pageShift
                let slot = tlb.lookup(va, sizes: [pageSize, pmdSize])
                if slot >= 0 {
                    let e = tlb.entry(slot)
                    // mmu_notifier invalidations keep the device TLB coherent: check the PTE still says the same.
                    let pte = state.processes[p].pt.entry(vpn: vpn)
                    if pte.present && UInt64(pte.number) << pageShift == e.pa + (va - e.iova) & ~(pageSize - 1) && (!write || pte.writable) {
                        c.hits += 1
                        c.stallNs += state.devices[d].hitNs
                        continue
                    }
                    _ = tlb.invalidate(iova: e.iova, size: e.size)
                }
                var pte = state.processes[p].pt.entry(vpn: vpn)
                c.misses += 1
                c.walks += 1
                c.stallNs += 4 * state.devices[d].walkNs
                if !pte.present || (write && !pte.writable) {
                    iopf += 1
                    let r = touchRange(p, start: va, end: va + 1, write: write, &j)
                    if r != .ok {
                        invalid += 1
                        c.faults += 1
                        if c.firstFault == nil { c.firstFault = va }
                        continue
                    }
                    pte = state.processes[p].pt.entry(vpn: vpn)
                }
                let huge = state.processes[p].pt.hugePMDs[vpn >> 9] != nil
                let s = huge ? pmdSize : pageSize
                let pa = huge ? UInt64(pte.number - Int(vpn & 511)) << pageShift : UInt64(pte.number) << pageShift
                tlb.insert(IOPTE(iova: va & ~(s - 1), pa: pa, size: s, writable: pte.writable))
            }
        }
        updateIOTLB(d, &j) { $0 = tlb }
        updateDeviceCounters(d, &j) { $0.stats.ioPageFaults += iopf }
        var text = what
        if iopf > 0 {
            text += "; \(plural(iopf, "I/O page fault")) (PRI page requests): iommu_sva_handle_iopf calls handle_mm_fault, the CPU's own fault path, then the device retries"
        }
        if invalid > 0 { text += "; \(plural(invalid, "fault")) could not be resolved (no VMA or no permission): the page response says invalid" }
        return finishDMA(d, c, what: text, &j)
    }
}
