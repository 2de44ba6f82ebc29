// Devices: an IOMMU domain per device, the driver's map/unmap ioctls (VFIO-like: pin with
// FOLL_LONGTERM, charge locked_vm, iommu_map each physically contiguous run), lazy and strict flushes.

/// IOVA_DEFAULT_FQ_SIZE: a lazy flush queue drains when it holds this many invalidations.
let flushQueueSize = 256

extension Engine {
    mutating func createDevice(_ decl: DeviceDecl) -> OpResult {
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
                return .fail(.errno("EINVAL"), "pagesizes=\(sizes.map { formatSizeShort($0) }.joined(separator: ",")) leaves no size \(format.rawValue) supports (\(describeBitmap(info.pgsizeBitmap)))")
            }
        }
        let capacity = decl.iotlb ?? 64
        let ways = decl.ways ?? 0
        let seed = state.config.seed &+ UInt64(state.devices.count + 1) &* 0x9E37_79B9
        var dev = DeviceState(name: decl.name, info: info, pgsizeBitmap: bitmap, walkNs: decl.walkNs ?? 300, hitNs: decl.hitNs ?? 0,
                              flush: decl.flush ?? .strict,
                              iotlb: IOTLBState(capacity: capacity, ways: ways, policy: decl.policy ?? .lru, seed: seed))
        // The root table: one page (v7s: a 16 KiB level-1 table, four pages). SVA uses the CPU's tables.
        var rootText = ""
        if format != .none && format != .sva {
            let order = format == .armV7s ? 2 : 0
            guard let root = allocPages(order: order, use: .iopagetable, owner: 0) else {
                return .fail(.oom, "no memory for the IOMMU's root table")
            }
            let top = format == .armV7s ? 2 : info.levels
            dev.tablePages[Engine.ioTableKey(level: top, iova: 0, format: format) | (1 << 63)] = Int32(root)
            rootText = "; its root table takes \(1 << order) page\(order == 0 ? "" : "s") of physical memory"
        }
        state.devices.append(dev)
        log.changes.append(.deviceAdded)
        let wayText = ways == 0 || ways >= capacity ? "fully associative" : "\(ways)-way"
        switch format {
        case .none:
            return OpResult(text: "device \(decl.name) without an IOMMU: it is given physical addresses and can reach all memory; no IOTLB")
        case .sva:
            return OpResult(text: "device \(decl.name) with SVA: it will walk a process's own page table through a PASID (ATS/PRI) and fault pages in instead of pinning; device TLB \(capacity) entries, \(wayText) \(dev.iotlb.policy.rawValue)")
        default:
            return OpResult(text: "device \(decl.name) behind \(format == .armV7s || format == .armLPAE || format == .amdV1 ? "an" : "a") \(format.rawValue) IOMMU: page sizes \(describeBitmap(bitmap)), a \(format == .armV7s ? 2 : info.levels)-level table\(rootText); IOTLB \(capacity) entries, \(wayText) \(dev.iotlb.policy.rawValue), walk \(dev.walkNs) ns a level, flush=\(dev.flush.rawValue)")
        }
    }

    /// The device mapping of a process buffer, if any.
    func mappingIndex(_ d: Int, process: String, buffer: String) -> Int? {
        state.devices[d].mappings.firstIndex { $0.process == process && $0.buffer == buffer }
    }

    mutating func doMap(_ d: Int, ref: BufferRef, range: BufferRange?, iova wanted: UInt64?, access: Access?) -> OpResult {
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
        drainFlushQueue(d, reason: "the next map")
        let writable = access != .read
        let format = state.devices[d].info.format
        let first = (b.start + (range?.offset ?? 0)) & ~(pageSize - 1)
        let size = range?.size ?? (b.size - min(b.size, range?.offset ?? 0))
        let end = alignUp(b.start + (range?.offset ?? 0) + max(size, 1), pageSize)
        let pages = Int((end - first) >> pageShift)
        let isKernel = b.kind == .ump || b.kind == .dmabuf

        if format == .sva {
            touchDevice(d)
            state.devices[d].svaProcess = ref.process
            state.devices[d].mappings.append(IOMapping(process: ref.process, buffer: ref.buffer, iova: first, size: end - first, va: first,
                                                       pfns: [], writable: writable, pinnedPages: 0, lockedPages: 0))
            return OpResult(text: "\(devName) binds \(ref.process) (iommu_sva_bind_device): DMA to \(ref.buffer) uses its virtual addresses \(format0x(first))–\(format0x(end)); nothing is pinned or charged, pages fault in on demand (I/O page faults)")
        }

        // Frames behind the range: pinned user pages, or the kernel buffer's own frames.
        var pfns: [Int32] = []
        var lockedPages = 0
        var pinText = ""
        if isKernel {
            let kb = state.kernelBuffers[Int(b.kernelBuffer)]
            let skip = Int((first - b.firstPage) >> pageShift)
            pfns = Array(kb.pfns[skip..<min(kb.pfns.count, skip + pages)])
            touchKernelBuffers()
            state.kernelBuffers[Int(b.kernelBuffer)].deviceMaps += 1
            pinText = "\(b.kind == .ump ? "UMP" : "dma-buf") memory is the kernel's own: nothing to pin, nothing charged to locked_vm"
        } else {
            if let refusal = memlockRefusal(p, pages: pages, current: state.processes[p].meta.lockedVMPages, counter: "locked_vm", canDoMlock: false) {
                return .fail(refusal.outcome, "\(devName) map \(ref.process).\(ref.buffer): vfio_pin_pages_remote " + refusal.text)
            }
            let r = getUserPages(p, start: first, end: end, flags: FollFlags(write: writable, longterm: true, get: false))
            switch r.outcome {
            case .ok: break
            case .sigsegv(let reason): return .fail(.errno("EFAULT"), "\(devName) map: pin_user_pages fails with EFAULT: \(reason)")
            case .oom: return .fail(.errno("ENOMEM"), "\(devName) map: pin_user_pages fails with ENOMEM")
            }
            pfns = r.pfns
            lockedPages = pages
            touchProcess(p)
            state.processes[p].meta.lockedVMPages += pages
            pinText = "pin_user_pages(FOLL_LONGTERM\(writable ? "|FOLL_WRITE" : "")) pins \(pages - r.zeroPages) page\(pages == 1 ? "" : "s")"
            if r.unshared > 0 { pinText += " (\(r.unshared) unshared first)" }
            if r.migrated > 0 { pinText += " (\(r.migrated) migrated out of CMA first)" }
            pinText += "; locked_vm \(formatSize(UInt64(state.processes[p].meta.lockedVMPages) << pageShift)) of \(state.processes[p].meta.capIPCLock ? "unlimited (CAP_IPC_LOCK)" : formatSize(state.processes[p].meta.memlockLimit)) (vfio_lock_acct)"
        }

        let mapSize = UInt64(pfns.count) << pageShift
        var iova: UInt64
        var reserved = mapSize
        if format == .none {
            iova = UInt64(pfns.first ?? 0) << pageShift
        } else if let wanted {
            let minPage = UInt64(1) << UInt64(ffs64(state.devices[d].pgsizeBitmap))
            guard wanted % minPage == 0 else {
                undoMapSetup(d, p: p, pfns: pfns, lockedPages: lockedPages, isKernel: isKernel, kernelBuffer: b.kernelBuffer)
                return .fail(.errno("EINVAL"), "iova=\(format0x(wanted)) is not aligned to the smallest page size \(formatSize(minPage)) (__iommu_map: unaligned)")
            }
            if state.devices[d].mappings.contains(where: { $0.iova < wanted + mapSize && $0.iova + $0.size > wanted }) || iopte(d, covering: wanted) != nil {
                undoMapSetup(d, p: p, pfns: pfns, lockedPages: lockedPages, isKernel: isKernel, kernelBuffer: b.kernelBuffer)
                return .fail(.errno("EEXIST"), "IOVA \(format0x(wanted))–\(format0x(wanted + mapSize)) overlaps an existing mapping: mapping over a mapping is refused")
            }
            iova = wanted
        } else {
            reserved = iovaReservation(mapSize)
            guard let a = allocIOVA(d, size: mapSize) else {
                undoMapSetup(d, p: p, pfns: pfns, lockedPages: lockedPages, isKernel: isKernel, kernelBuffer: b.kernelBuffer)
                return .fail(.errno("ENOSPC"), "no free IOVA range of \(formatSize(mapSize))")
            }
            iova = a
        }

        // __iommu_map: iova, paddr and size must all be aligned to the smallest supported page size.
        let minPage = UInt64(1) << UInt64(ffs64(state.devices[d].pgsizeBitmap))
        if format != .none && minPage > pageSize {
            var i = 0
            while i < pfns.count {
                var j = i + 1
                while j < pfns.count && pfns[j] == pfns[j - 1] + 1 { j += 1 }
                let runIOVA = iova + UInt64(i) << pageShift
                if (runIOVA | UInt64(pfns[i]) << pageShift | UInt64(j - i) << pageShift) & (minPage - 1) != 0 {
                    undoMapSetup(d, p: p, pfns: pfns, lockedPages: lockedPages, isKernel: isKernel, kernelBuffer: b.kernelBuffer)
                    return .fail(.errno("EINVAL"), "\(devName) map \(ref.process).\(ref.buffer): a run of \(j - i) page\(j - i == 1 ? "" : "s") at frame \(pfns[i]) is not aligned to the smallest page size \(formatSize(minPage)) (__iommu_map: unaligned)")
                }
                i = j
            }
        }
        var runs = 0
        if format != .none {
            // vfio_pin_pages_remote stops at each physical discontinuity: one iommu_map per contiguous run.
            var i = 0
            while i < pfns.count {
                var j = i + 1
                while j < pfns.count && pfns[j] == pfns[j - 1] + 1 { j += 1 }
                runs += 1
                let ok = iommuMap(d, iova: iova + UInt64(i) << pageShift, paddr: UInt64(pfns[i]) << pageShift,
                                  size: UInt64(j - i) << pageShift, writable: writable)
                if !ok { return .fail(.oom, "out of memory for I/O page-table pages") }
                i = j
            }
        }
        touchDevice(d)
        state.devices[d].mappings.append(IOMapping(process: ref.process, buffer: ref.buffer, iova: iova, size: mapSize, va: first,
                                                   pfns: pfns, writable: writable, pinnedPages: isKernel ? 0 : pfns.count, lockedPages: lockedPages,
                                                   kernelBuffer: isKernel ? b.kernelBuffer : -1, iovaLength: reserved))
        if format == .none {
            return OpResult(text: "\(devName) map \(ref.process).\(ref.buffer): \(pinText); no IOMMU, so the device gets physical addresses (\(format0x(iova)) first) and could reach any frame")
        }
        var sizes: [(UInt64, Int)] = []
        for (k, v) in tally.counts where k.hasPrefix("iopte:") { sizes.append((UInt64(k.dropFirst(6)) ?? 0, v)) }
        sizes.sort { $0.0 > $1.0 }
        let ioptes = sizes.map { "\($0.1) × \(formatSizeShort($0.0))" }.joined(separator: " + ")
        var text = "\(devName) map \(ref.process).\(ref.buffer): \(pinText); iommu_map at IOVA \(format0x(iova)) in \(runs) physically contiguous run\(runs == 1 ? "" : "s"): \(ioptes) IOPTE\(sizes.count == 1 && sizes[0].1 == 1 ? "" : "s") (iommu_pgsize)"
        text += whyOnlySmall(d, iova: iova, pfns: pfns, sizes: sizes)
        return OpResult(text: text)
    }

    /// Why a mapping got only 4 KiB IOPTEs although the format has larger ones.
    private func whyOnlySmall(_ d: Int, iova: UInt64, pfns: [Int32], sizes: [(UInt64, Int)]) -> String {
        let bitmap = state.devices[d].pgsizeBitmap
        guard sizes.count == 1, sizes[0].0 == pageSize, pfns.count > 16 else { return "" }
        let bigger = bitmap & ~genmask(12)
        guard bigger != 0 else { return " — the only page size is 4K" }
        let next = UInt64(1) << UInt64(ffs64(bigger))
        let nextPages = Int(next >> pageShift)
        var longest = 1, run = 1
        for i in 1..<pfns.count {
            run = pfns[i] == pfns[i - 1] + 1 ? run + 1 : 1
            longest = max(longest, run)
        }
        if longest < nextPages {
            return " — the frames are scattered (the longest physically contiguous run is \(longest) page\(longest == 1 ? "" : "s")), so no \(formatSizeShort(next)) page fits"
        }
        return " — runs of \(longest) contiguous frames exist, but IOVA and physical address never share their offset within \(formatSizeShort(next)) (iommu_pgsize needs (iova ^ paddr) aligned), so no \(formatSizeShort(next)) page fits"
    }

    /// Gives back what a map that fails part-way took.
    private mutating func undoMapSetup(_ d: Int, p: Int, pfns: [Int32], lockedPages: Int, isKernel: Bool, kernelBuffer: Int32) {
        if isKernel {
            touchKernelBuffers()
            state.kernelBuffers[Int(kernelBuffer)].deviceMaps -= 1
            return
        }
        for pfn in pfns { release(Int(pfn), get: false) }
        touchProcess(p)
        state.processes[p].meta.lockedVMPages -= lockedPages
    }

    mutating func doUnmap(_ d: Int, ref: BufferRef) -> OpResult {
        let devName = state.devices[d].name
        guard let m = mappingIndex(d, process: ref.process, buffer: ref.buffer) else {
            return .fail(.errno("EINVAL"), "\(devName) has no mapping of \(ref.process).\(ref.buffer)")
        }
        let (text, _) = unmapMapping(d, index: m, forceStrict: false)
        return OpResult(text: text)
    }

    /// Removes a mapping: IOPTEs, IOTLB (now or lazily), pins and locked_vm.
    @discardableResult
    mutating func unmapMapping(_ d: Int, index m: Int, forceStrict: Bool) -> (String, Int) {
        touchDevice(d)
        let mapping = state.devices[d].mappings.remove(at: m)
        let devName = state.devices[d].name
        var text = "\(devName) unmap \(mapping.process).\(mapping.buffer)"
        if state.devices[d].info.format == .sva {
            if state.devices[d].svaProcess == mapping.process { state.devices[d].svaProcess = nil }
            let dropped = state.devices[d].iotlb.invalidate(iova: mapping.iova, size: mapping.size)
            return (text + ": iommu_sva_unbind_device; \(dropped) device TLB entr\(dropped == 1 ? "y" : "ies") invalidated", 0)
        }
        var removed: UInt64 = 0
        if state.devices[d].info.format != .none {
            removed = iommuUnmap(d, iova: mapping.iova, size: mapping.size)
            if state.devices[d].flush == .lazy && !forceStrict {
                state.devices[d].iotlb.markStale(iova: mapping.iova, size: mapping.size)
                state.devices[d].lazyUnmapped.append(mapping)
                text += ": iommu_unmap removes \(formatSize(removed)) of IOPTEs; flush=lazy queues the IOTLB invalidation (\(state.devices[d].lazyUnmapped.count) waiting): until the queue drains, stale IOTLB entries still translate these IOVAs"
                if state.devices[d].lazyUnmapped.count >= flushQueueSize { drainFlushQueue(d, reason: "a full flush queue") }
            } else {
                let dropped = state.devices[d].iotlb.invalidate(iova: mapping.iova, size: mapping.size)
                text += ": iommu_unmap removes \(formatSize(removed)) of IOPTEs and invalidates the IOTLB at once (\(dropped) entr\(dropped == 1 ? "y" : "ies"))"
            }
        }
        var freed = 0
        if mapping.pinnedPages > 0 {
            for pfn in mapping.pfns where pfn != state.meta.zeroPfn {
                if state.phys.refcount[Int(pfn)] == gupPinCountingBias { freed += 1 }
                release(Int(pfn), get: false)
            }
            if let p = state.processIndex(named: mapping.process) {
                touchProcess(p)
                state.processes[p].meta.lockedVMPages -= mapping.lockedPages
            }
            text += "; unpin_user_pages releases \(mapping.pinnedPages) page\(mapping.pinnedPages == 1 ? "" : "s"), locked_vm −\(formatSize(UInt64(mapping.lockedPages) << pageShift))"
            if freed > 0 { text += "; \(freed) frame\(freed == 1 ? "" : "s") only the pin kept alive are freed" }
        } else if mapping.kernelBuffer >= 0 {
            touchKernelBuffers()
            state.kernelBuffers[Int(mapping.kernelBuffer)].deviceMaps -= 1
            freeKernelBufferIfUnused(Int(mapping.kernelBuffer))
        }
        return (text, freed)
    }

    /// The flush queue drains: stale IOTLB entries go and the IOVAs become free again.
    mutating func drainFlushQueue(_ d: Int, reason: String) {
        guard !state.devices[d].lazyUnmapped.isEmpty else { return }
        touchDevice(d)
        var dropped = 0
        for m in state.devices[d].lazyUnmapped { dropped += state.devices[d].iotlb.invalidate(iova: m.iova, size: m.size) }
        flushNotes.append("\(reason) drains \(state.devices[d].name)'s flush queue: \(state.devices[d].lazyUnmapped.count) invalidation\(state.devices[d].lazyUnmapped.count == 1 ? "" : "s"), \(dropped) stale IOTLB entr\(dropped == 1 ? "y" : "ies") dropped, the IOVAs free again")
        state.devices[d].lazyUnmapped = []
    }

    /// At exit the process's files close: every device mapping of its memory is unmapped and unpinned.
    mutating func releaseDeviceMappings(ofProcess p: Int) {
        let name = state.processes[p].meta.name
        for d in state.devices.indices {
            while let m = state.devices[d].mappings.firstIndex(where: { $0.process == name }) {
                unmapMapping(d, index: m, forceStrict: false)
                tally.add("exit_unmap")
            }
        }
    }
}

/// "4K|2M|1G" for a page-size bitmap (AMD's 40 sizes: "4K…2^51 except 512G").
func describeBitmap(_ bitmap: UInt64) -> String {
    if bitmap.nonzeroBitCount > 8 { return "every power of two from \(formatSizeShort(UInt64(1) << UInt64(ffs64(bitmap)))) up" }
    var parts: [String] = []
    var b = bitmap
    while b != 0 {
        parts.append(formatSizeShort(UInt64(1) << UInt64(ffs64(b))))
        b &= b - 1
    }
    return parts.joined(separator: "|")
}

/// 4096 → "4K", 2 MiB → "2M".
public func formatSizeShort(_ bytes: UInt64) -> String {
    for (unit, name) in [(UInt64(1) << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")] where bytes >= unit && bytes % unit == 0 {
        return "\(bytes / unit)\(name)"
    }
    return "\(bytes)"
}
