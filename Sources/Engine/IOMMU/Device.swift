// Devices: an IOMMU domain per device, the driver's map/unmap ioctls (VFIO-like: pin with
// FOLL_LONGTERM, charge locked_vm, iommu_map each physically contiguous run), lazy and strict flushes.

/// IOVA_DEFAULT_FQ_SIZE: a lazy flush queue drains when it holds this many invalidations.
let flushQueueSize = 256

/// What a `map` took before installing IOPTEs, so that every failure after it gives back the same.
private struct MapTaken {
    var p: Int
    /// The frames behind each 4 KiB of the range.
    var pfns: [Int32]
    /// Pages pinned and charged to locked_vm (user memory), 0 for kernel memory.
    var lockedPages: Int
    /// The kernel buffer (UMP, dma-buf) whose deviceMaps was raised, or -1.
    var kernelBuffer: Int32
    var isKernel: Bool { kernelBuffer >= 0 }
}

/// A physically contiguous run of a mapping's frames: `count` frames from index `first`.
private struct FrameRun {
    var first: Int
    var count: Int
}

extension Engine {
    mutating func createDevice(_ decl: DeviceDecl, _ j: inout StepJournal) -> OpResult {
        if state.deviceIndex(named: decl.name) != nil || state.processIndex(named: decl.name) != nil {
            return .fail(.errno("EEXIST"), "the name \(decl.name) is taken")
        }
        let format = decl.iommu ?? .vtd
        let info = IOMMUFormatInfo.of(format)
        var bitmap = info.pgsizeBitmap
        if let sizes = decl.pagesizes, format != .none, format != .sva {
            let wanted = sizes.reduce(UInt64(0)) { $0 | $1 }
            bitmap &= wanted
            if bitmap == 0 {
                return .fail(.errno("EINVAL"), "pagesizes=\(sizes.map { formatSizeShort($0) }.joined(separator: ",")) leaves no size \(format.rawValue) supports (\(formatPageSizes(info.pgsizeBitmap)))")
            }
        }
        let capacity = decl.iotlb ?? 64
        let ways = decl.ways ?? 0
        let seed = state.config.seed &+ UInt64(state.devices.count + 1) &* 0x9E37_79B9
        let iotlb = IOTLBState(capacity: capacity, ways: ways, policy: decl.policy ?? .lru, seed: seed)
        // The root table: one page (v7s: a 16 KiB level-1 table, four pages). SVA uses the CPU's tables.
        var rootText = ""
        var tablePages: [UInt64: Int32] = [:]
        if format != .none && format != .sva {
            let order = format == .armV7s ? 2 : 0
            guard let root = allocPages(order: order, use: .iopagetable, owner: 0, &j) else {
                return .fail(.oom, "no memory for the IOMMU's root table")
            }
            let top = format == .armV7s ? 2 : info.levels
            tablePages[Engine.ioTableKey(level: top, iova: 0, format: format) | (1 << 63)] = Int32(root)
            rootText = "; its root table takes \(plural(1 << order, "page")) of physical memory"
        }
        let dev = DeviceState(name: decl.name, info: info, pgsizeBitmap: bitmap, walkNs: decl.walkNs ?? 300, hitNs: decl.hitNs ?? 0,
                              flush: decl.flush ?? .strict, iotlb: iotlb, tablePages: tablePages)
        addDevice(dev, &j)
        let wayText = ways == 0 || ways >= capacity ? "fully associative" : "\(ways)-way"
        switch format {
        case .none:
            return OpResult(text: "device \(decl.name) without an IOMMU: it is given physical addresses and can reach all memory; no IOTLB")
        case .sva:
            return OpResult(text: "device \(decl.name) with SVA: it will walk a process's own page table through a PASID (ATS/PRI) and fault pages in instead of pinning; device TLB \(capacity) entries, \(wayText) \(dev.iotlb.policy.rawValue)")
        default:
            return OpResult(text: "device \(decl.name) behind \(format == .armV7s || format == .armLPAE || format == .amdV1 ? "an" : "a") \(format.rawValue) IOMMU: page sizes \(formatPageSizes(bitmap)), a \(format == .armV7s ? 2 : info.levels)-level table\(rootText); IOTLB \(capacity) entries, \(wayText) \(dev.iotlb.policy.rawValue), walk \(dev.walkNs) ns a level, flush=\(dev.flush.rawValue)")
        }
    }

    /// The device mapping of a process buffer, if any.
    func mappingIndex(_ d: Int, process: String, buffer: String) -> Int? {
        state.devices[d].mappings.firstIndex { $0.process == process && $0.buffer == buffer }
    }

    /// `DEV map PROC.BUF`: the frames (pinned user pages, or a kernel buffer's own), an IOVA, then
    /// iommu_map of each physically contiguous run. A failure after the frames were taken gives
    /// them back (unpin, locked_vm, the kernel buffer's device count) and removes any IOPTE it set.
    mutating func doMap(_ d: Int, ref: BufferRef, range: BufferRange?, iova wanted: UInt64?, access: Access?, _ j: inout StepJournal) -> OpResult {
        let devName = state.devices[d].name
        guard let p = state.processIndex(named: ref.process), state.processes[p].meta.alive else {
            return .fail(.errno("ESRCH"), "\(ref.process) is not running")
        }
        guard let b = state.processes[p].meta.buffer(named: ref.buffer) else {
            if state.kernelBuffers.contains(where: { $0.kind == .dmabuf && !$0.freed && $0.holders.contains(where: { holder in
                state.processes.contains { $0.meta.name == holder && $0.meta.buffer(named: ref.buffer)?.kind == .dmabuf } }) }) {
                return .fail(.errno("EBADF"), "\(ref.process) holds no file descriptor for the dma-buf \(ref.buffer): a dma-buf is reached only through its fd (given by send, SCM_RIGHTS), never by a name or a number")
            }
            return .fail(.errno("EFAULT"), "\(ref.process) has no buffer named \(ref.buffer)")
        }
        if mappingIndex(d, process: ref.process, buffer: ref.buffer) != nil {
            return .fail(.errno("EEXIST"), "\(devName) has \(ref.process).\(ref.buffer) mapped already: mapping over a mapping is refused (unmap first)")
        }
        drainFlushQueue(d, reason: "the next map", &j)
        let writable = access != .read
        let format = state.devices[d].info.format
        let first = (b.start + (range?.offset ?? 0)) & ~(pageSize - 1)
        let size = range?.size ?? (b.size - min(b.size, range?.offset ?? 0))
        // vfio_dma_do_map: "if (!size || ...) return -EINVAL" (drivers/vfio/vfio_iommu_type1.c:1578).
        guard size > 0 else { return .fail(.errno("EINVAL"), "a map of 0 bytes of \(ref.process).\(ref.buffer) fails with EINVAL: there is nothing to map (vfio_dma_do_map refuses a size of 0)") }
        let end = alignUp(b.start + (range?.offset ?? 0) + size, pageSize)

        if format == .sva {
            updateDeviceCounters(d, &j) { $0.svaProcess = ref.process }
            mappingAppend(d, IOMapping(process: ref.process, buffer: ref.buffer, iova: first, size: end - first, va: first,
                                       pfns: [], writable: writable, pinnedPages: 0, lockedPages: 0), &j)
            return OpResult(text: "\(devName) binds \(ref.process) (iommu_sva_bind_device): DMA to \(ref.buffer) uses its virtual addresses \(hex(first))–\(hex(end)); nothing is pinned or charged, pages fault in on demand (I/O page faults)")
        }

        let taken: MapTaken, pinText: String
        switch takeFramesForMap(d, p: p, buffer: b, first: first, end: end, writable: writable, &j) {
        case let .failure(refused): return refused.result
        case let .success(t): (taken, pinText) = t
        }
        let runs = Engine.contiguousRuns(taken.pfns)
        let mapSize = UInt64(taken.pfns.count) << pageShift
        let minPage = UInt64(1) << UInt64(ffs64(state.devices[d].pgsizeBitmap))
        var iova: UInt64
        var reserved = mapSize
        if format == .none {
            iova = UInt64(taken.pfns.first ?? 0) << pageShift
        } else if let wanted {
            guard wanted % minPage == 0 else {
                giveBack(taken, device: d, &j)
                return .fail(.errno("EINVAL"), "iova=\(hex(wanted)) is not aligned to the smallest page size \(formatSize(minPage)) (__iommu_map: unaligned)")
            }
            // Past the table's input address space: io-pgtable's -ERANGE (arm_lpae_map_pages,
            // arm_v7s_map_pages), intel_iommu_map's -EFAULT beyond the domain's address width.
            let bits = state.devices[d].info.inputBits
            if bits < 64, wanted >= 1 << UInt64(bits) || mapSize > (1 << UInt64(bits)) - wanted {
                giveBack(taken, device: d, &j)
                return .fail(.errno(format == .vtd ? "EFAULT" : "ERANGE"),
                             "iova=\(hex(wanted)) + \(formatSize(mapSize)) is past \(format.rawValue)'s \(bits)-bit IOVA space (\(format == .vtd ? "intel_iommu_map: beyond the domain's address width" : "io-pgtable: iova >= 1 << ias"))")
            }
            if state.devices[d].mappings.contains(where: { $0.iova < wanted + mapSize && $0.iova + $0.size > wanted }) || iopte(d, covering: wanted) != nil {
                giveBack(taken, device: d, &j)
                return .fail(.errno("EEXIST"), "IOVA \(hex(wanted))–\(hex(wanted + mapSize)) overlaps an existing mapping: mapping over a mapping is refused")
            }
            iova = wanted
        } else {
            reserved = iovaReservation(mapSize)
            guard let a = allocIOVA(d, size: mapSize) else {
                giveBack(taken, device: d, &j)
                return .fail(.errno("ENOSPC"), "no free IOVA range of \(formatSize(mapSize))")
            }
            iova = a
        }

        if format != .none {
            // __iommu_map: iova, paddr and size must all be aligned to the smallest supported page size.
            if minPage > pageSize, let bad = runs.first(where: { run in
                (iova + UInt64(run.first) << pageShift | UInt64(taken.pfns[run.first]) << pageShift | UInt64(run.count) << pageShift) & (minPage - 1) != 0
            }) {
                giveBack(taken, device: d, &j)
                return .fail(.errno("EINVAL"), "\(devName) map \(ref.process).\(ref.buffer): a run of \(plural(bad.count, "page")) at frame \(hex(UInt64(taken.pfns[bad.first]))) is not aligned to the smallest page size \(formatSize(minPage)) (__iommu_map: unaligned)")
            }
            // vfio_pin_pages_remote stops at each physical discontinuity: one iommu_map per contiguous run.
            for run in runs {
                let runIOVA = iova + UInt64(run.first) << pageShift
                guard iommuMap(d, iova: runIOVA, paddr: UInt64(taken.pfns[run.first]) << pageShift,
                               size: UInt64(run.count) << pageShift, writable: writable, &j) else {
                    // vfio_unmap_unpin: the runs mapped before this one go too (iommu_map unrolled its own).
                    iommuUnmap(d, iova: iova, size: runIOVA - iova, &j)
                    giveBack(taken, device: d, &j)
                    return .fail(.oom, "\(devName) map \(ref.process).\(ref.buffer): out of memory for I/O page-table pages; what was mapped is unmapped again and the pages are unpinned")
                }
            }
        }
        mappingAppend(d, IOMapping(process: ref.process, buffer: ref.buffer, iova: iova, size: mapSize, va: first,
                                   pfns: taken.pfns, writable: writable, pinnedPages: taken.isKernel ? 0 : taken.pfns.count,
                                   lockedPages: taken.lockedPages, kernelBuffer: taken.kernelBuffer, iovaLength: reserved), &j)
        if format == .none {
            return OpResult(text: "\(devName) map \(ref.process).\(ref.buffer): \(pinText); no IOMMU, so the device gets physical addresses (\(hex(iova)) first) and could reach any frame")
        }
        let sizes = j.events.ioptesBySize
        let ioptes = sizes.map { "\($0.count) × \(formatSizeShort($0.size))" }.joined(separator: " + ")
        var text = "\(devName) map \(ref.process).\(ref.buffer): \(pinText); iommu_map at IOVA \(hex(iova)) in \(plural(runs.count, "physically contiguous run")): \(ioptes) IOPTE\(sizes.count == 1 && sizes[0].count == 1 ? "" : "s") (iommu_pgsize)"
        text += whyOnlySmall(d, pfns: taken.pfns, sizes: sizes)
        return OpResult(text: text)
    }

    private struct MapRefused: Error {
        var result: OpResult
    }

    /// The frames behind [first, end): a kernel buffer's own (its device count raised), or user
    /// pages pinned with FOLL_LONGTERM and charged to locked_vm as vfio_pin_pages_remote does.
    private mutating func takeFramesForMap(_ d: Int, p: Int, buffer b: Buffer, first: UInt64, end: UInt64, writable: Bool,
                                           _ j: inout StepJournal) -> Result<(MapTaken, String), MapRefused> {
        let devName = state.devices[d].name
        let pages = Int((end - first) >> pageShift)
        let name = "\(state.processes[p].meta.name).\(b.name)"
        if b.kind == .ump || b.kind == .dmabuf {
            let kb = state.kernelBuffers[Int(b.kernelBuffer)]
            // A range must lie inside the kernel buffer: its frames are all there is (no VMA to grow into).
            let skip = first >= b.firstPage ? Int((first - b.firstPage) >> pageShift) : kb.pfns.count
            guard skip < kb.pfns.count, pages <= kb.pfns.count - skip else {
                return .failure(MapRefused(result: .fail(.errno("EINVAL"), "\(devName) cannot map \(hex(first))–\(hex(end)) of \(name): the \(b.kind == .ump ? "UMP buffer" : "dma-buf") has \(formatSize(UInt64(kb.pfns.count) << pageShift)) (\(hex(b.firstPage))–\(hex(b.firstPage + (UInt64(kb.pfns.count) << pageShift)))), and a range past its end has no frames")))
            }
            let pfns = Array(kb.pfns[skip..<(skip + pages)])
            updateKernelBuffer(Int(b.kernelBuffer), &j) { $0.deviceMaps += 1 }
            let text = "\(b.kind == .ump ? "UMP" : "dma-buf") memory is the kernel's own: nothing to pin, nothing charged to locked_vm"
            return .success((MapTaken(p: p, pfns: pfns, lockedPages: 0, kernelBuffer: b.kernelBuffer), text))
        }
        if let refusal = memlockRefusal(p, pages: pages, current: state.processes[p].meta.lockedVMPages, counter: "locked_vm", canDoMlock: false) {
            return .failure(MapRefused(result: .fail(refusal.outcome, "\(devName) map \(name): vfio_pin_pages_remote " + refusal.text)))
        }
        let r = getUserPages(p, start: first, end: end, flags: FollFlags(write: writable, longterm: true, get: false), &j)
        switch r.outcome {
        case .ok: break
        case .sigsegv(let reason), .sigbus(let reason): return .failure(MapRefused(result: .fail(.errno("EFAULT"), "\(devName) map: pin_user_pages fails with EFAULT: \(reason)")))
        case .oom: return .failure(MapRefused(result: .fail(.errno("ENOMEM"), "\(devName) map: pin_user_pages fails with ENOMEM")))
        }
        updateCounters(p, &j) { $0.lockedVMPages += pages }
        let m = state.processes[p].meta
        var text = "pin_user_pages(FOLL_LONGTERM\(writable ? "|FOLL_WRITE" : "")) pins \(pages - r.zeroPages) page\(pages == 1 ? "" : "s")"
        if r.unshared > 0 { text += " (\(r.unshared) unshared first)" }
        if r.migrated > 0 { text += " (\(r.migrated) migrated out of CMA first)" }
        text += "; locked_vm \(formatSize(UInt64(m.lockedVMPages) << pageShift)) of \(m.capIPCLock ? "unlimited (CAP_IPC_LOCK)" : formatSize(m.memlockLimit)) (vfio_lock_acct)"
        return .success((MapTaken(p: p, pfns: r.pfns, lockedPages: pages, kernelBuffer: -1), text))
    }

    /// Gives back what takeFramesForMap took (vfio_unpin_pages_remote, or the kernel buffer's count).
    private mutating func giveBack(_ taken: MapTaken, device d: Int, _ j: inout StepJournal) {
        if taken.isKernel {
            updateKernelBuffer(Int(taken.kernelBuffer), &j) { $0.deviceMaps -= 1 }
            freeKernelBufferIfUnused(Int(taken.kernelBuffer), &j)
            return
        }
        for pfn in taken.pfns { release(Int(pfn), get: false, &j) }
        // An OOM kill while mapping already took the process's locked_vm to 0 at its exit.
        if state.processes[taken.p].meta.alive {
            updateCounters(taken.p, &j) { $0.lockedVMPages -= taken.lockedPages }
        }
    }

    /// The physically contiguous runs of a frame list, in order.
    private static func contiguousRuns(_ pfns: [Int32]) -> [FrameRun] {
        var runs: [FrameRun] = []
        var i = 0
        while i < pfns.count {
            var k = i + 1
            while k < pfns.count && pfns[k] == pfns[k - 1] + 1 { k += 1 }
            runs.append(FrameRun(first: i, count: k - i))
            i = k
        }
        return runs
    }

    /// Why a mapping got only 4 KiB IOPTEs although the format has larger ones.
    private func whyOnlySmall(_ d: Int, pfns: [Int32], sizes: [(size: UInt64, count: Int)]) -> String {
        let bitmap = state.devices[d].pgsizeBitmap
        guard sizes.count == 1, sizes[0].size == pageSize, pfns.count > 16 else { return "" }
        let bigger = bitmap & ~genmask(12)
        guard bigger != 0 else { return " — the only page size is 4K" }
        let next = UInt64(1) << UInt64(ffs64(bigger))
        let nextPages = Int(next >> pageShift)
        var longest = 1, run = 1
        for i in 1..<pfns.count {
            run = pfns[i] == pfns[i - 1] + 1 ? run + 1 : 1
            longest = max(longest, run)
        }
        if pfns.count < nextPages {
            return " — the buffer (\(plural(pfns.count, "page"))) is smaller than a \(formatSizeShort(next)) page, so 4K IOPTEs it is"
        }
        if longest < nextPages {
            return " — the frames are scattered (the longest physically contiguous run is \(plural(longest, "page"))), so no \(formatSizeShort(next)) page fits"
        }
        return " — runs of \(longest) contiguous frames exist, but IOVA and physical address never share their offset within \(formatSizeShort(next)) (iommu_pgsize needs (iova ^ paddr) aligned), so no \(formatSizeShort(next)) page fits"
    }

    mutating func doUnmap(_ d: Int, ref: BufferRef, _ j: inout StepJournal) -> OpResult {
        let devName = state.devices[d].name
        guard let m = mappingIndex(d, process: ref.process, buffer: ref.buffer) else {
            return .fail(.errno("EINVAL"), "\(devName) has no mapping of \(ref.process).\(ref.buffer)")
        }
        return OpResult(text: unmapMapping(d, index: m, &j))
    }

    /// Removes a mapping: IOPTEs, IOTLB (now or lazily), pins and locked_vm. Returns the narration.
    @discardableResult
    mutating func unmapMapping(_ d: Int, index m: Int, _ j: inout StepJournal) -> String {
        let mapping = mappingRemove(d, at: m, &j)
        let devName = state.devices[d].name
        var text = "\(devName) unmap \(mapping.process).\(mapping.buffer)"
        if state.devices[d].info.format == .sva {
            if state.devices[d].svaProcess == mapping.process { updateDeviceCounters(d, &j) { $0.svaProcess = nil } }
            let dropped = updateIOTLB(d, &j) { $0.invalidate(iova: mapping.iova, size: mapping.size) }
            return text + ": iommu_sva_unbind_device; \(plural(dropped, "device TLB entry", "device TLB entries")) invalidated"
        }
        if state.devices[d].info.format != .none {
            let removed = iommuUnmap(d, iova: mapping.iova, size: mapping.size, &j)
            if state.devices[d].flush == .lazy {
                updateIOTLB(d, &j) { $0.markStale(iova: mapping.iova, size: mapping.size) }
                flushQueueAppend(d, mapping, &j)
                text += ": iommu_unmap removes \(formatSize(removed)) of IOPTEs; flush=lazy queues the IOTLB invalidation (\(state.devices[d].lazyUnmapped.count) waiting): until the queue drains, stale IOTLB entries still translate these IOVAs"
                if state.devices[d].lazyUnmapped.count >= flushQueueSize { drainFlushQueue(d, reason: "a full flush queue", &j) }
            } else {
                let dropped = updateIOTLB(d, &j) { $0.invalidate(iova: mapping.iova, size: mapping.size) }
                text += ": iommu_unmap removes \(formatSize(removed)) of IOPTEs and invalidates the IOTLB at once (\(plural(dropped, "entry", "entries")))"
            }
        }
        if mapping.pinnedPages > 0 {
            var freed = 0
            for pfn in mapping.pfns where pfn != state.meta.zeroPfn {
                if state.phys.refcount[Int(pfn)] == gupPinCountingBias { freed += 1 }
                release(Int(pfn), get: false, &j)
            }
            if let p = state.processIndex(named: mapping.process) {
                updateCounters(p, &j) { $0.lockedVMPages -= mapping.lockedPages }
            }
            text += "; unpin_user_pages releases \(plural(mapping.pinnedPages, "page")), locked_vm −\(formatSize(UInt64(mapping.lockedPages) << pageShift))"
            if freed > 0 { text += "; \(plural(freed, "frame")) only the pin kept alive are freed" }
        } else if mapping.kernelBuffer >= 0 {
            updateKernelBuffer(Int(mapping.kernelBuffer), &j) { $0.deviceMaps -= 1 }
            freeKernelBufferIfUnused(Int(mapping.kernelBuffer), &j)
        }
        return text
    }

    /// The flush queue drains: stale IOTLB entries go and the IOVAs become free again.
    mutating func drainFlushQueue(_ d: Int, reason: String, _ j: inout StepJournal) {
        let queue = state.devices[d].lazyUnmapped
        guard !queue.isEmpty else { return }
        var dropped = 0
        for m in queue { dropped += updateIOTLB(d, &j) { $0.invalidate(iova: m.iova, size: m.size) } }
        j.events.add(.flushQueueDrained(FlushDrain(device: state.devices[d].name, reason: reason, invalidations: queue.count, dropped: dropped)))
        flushQueueReset(d, &j)
    }

    /// At exit the process's files close: every device mapping of its memory is unmapped and unpinned.
    mutating func releaseDeviceMappings(ofProcess p: Int, _ j: inout StepJournal) {
        let name = state.processes[p].meta.name
        for d in state.devices.indices {
            while let m = state.devices[d].mappings.firstIndex(where: { $0.process == name }) {
                unmapMapping(d, index: m, &j)
                j.events.add(.exitUnmap)
            }
        }
    }
}
