// UMP and dma-buf (reference §6): non-swappable kernel memory that user space maps (VM_PFNMAP)
// and devices use without pinning. UMP names buffers by a small global secure id that any process
// may import; a dma-buf is reached only through its file descriptor.

/// UMP_SECURE_ID_TABLE_ENTRIES_MAXIMUM.
let umpSecureIDs = 4096

/// A UMP allocation or a dma-buf: non-swappable kernel memory handed to user space.
public struct KernelBuffer: Equatable, Sendable {
    /// The UMP secure id (1...4095), or the dma-buf's inode-like number.
    public let id: Int32
    public let kind: BufferKind
    public let size: UInt64
    public let pfns: [Int32]
    /// Physically contiguous (ump `linear`, the CMA heap).
    public let contiguous: Bool
    public let creator: String
    /// Processes that hold it: the fd (dma-buf) or a UMP handle.
    public internal(set) var holders: [String] = []
    /// Device mappings that use it.
    public internal(set) var deviceMaps = 0
    /// Pages charged to the creator's locked_vm (`ump-limit=memlock`).
    public let chargedPages: Int
    public internal(set) var freed = false
}

extension Engine {
    /// Maps a kernel buffer's frames into process p as a VM_IO|VM_PFNMAP VMA; returns the address.
    mutating func mapKernelBuffer(_ p: Int, name: String, kb k: Int, _ j: inout StepJournal) -> UInt64? {
        let kb = state.kernelBuffers[k]
        let len = UInt64(kb.pfns.count) << pageShift
        guard let addr = getUnmappedArea(p, length: len, thpAlign: false) else { return nil }
        insertVMA(p, VMA(start: addr, end: addr + len, flags: [.read, .write, .shared], kind: .device, anonVMA: 0, shmem: 0,
                         shmemOffset: 0, label: name), &j)
        for (i, pfn) in kb.pfns.enumerated() {
            let vpn = (addr >> pageShift) + UInt64(i)
            guard ensurePTETable(p, region: vpn >> 9, &j) else { return nil }
            setPTE(p, vpn: vpn, .page(pfn: Int(pfn), writable: true), &j)
        }
        bufferAppend(p, Buffer(name: name, start: addr, size: kb.size, kind: kb.kind, chunkStart: addr,
                               chunkSize: len, kernelBuffer: Int32(k)), &j)
        addHolder(k, state.processes[p].meta.name, &j)
        return addr
    }

    mutating func doUMPAlloc(_ p: Int, name: String, size: UInt64, linear: Bool, _ j: inout StepJournal) -> OpResult {
        let pages = Int(alignUp(max(size, 1), pageSize) >> pageShift)
        let charge = state.config.umpLimit == .memlock
        let call = "ump_ref_drv_allocate(\(formatSize(size))\(linear ? ", PHYSICALLY_LINEAR" : ""))"
        if charge, let refusal = memlockRefusal(p, pages: pages, current: state.processes[p].meta.lockedVMPages, counter: "locked_vm", canDoMlock: false) {
            return .fail(refusal.outcome, "\(call) " + refusal.text + " (ump-limit=memlock)")
        }
        let used = Set(state.kernelBuffers.filter { $0.kind == .ump && !$0.freed }.map(\.id))
        guard let id = (1..<umpSecureIDs).first(where: { !used.contains(Int32($0)) }) else {
            return .fail(.errno("ENOMEM"), "\(call) fails: all \(umpSecureIDs - 1) secure ids are taken")
        }
        let pid = state.processes[p].meta.pid
        guard let pfns = allocKernelPages(pages: pages, use: .ump, owner: pid, contiguous: linear, cma: false, &j) else {
            return .fail(.oom, "\(call) fails: \(linear ? "no physically contiguous run of \(formatSize(UInt64(pages) << pageShift)) can be found or emptied" : "out of memory")")
        }
        addKernelBuffer(KernelBuffer(id: Int32(id), kind: .ump, size: size, pfns: pfns, contiguous: linear,
                                     creator: state.processes[p].meta.name, chargedPages: charge ? pages : 0), &j)
        if charge { updateCounters(p, &j) { $0.lockedVMPages += pages } }
        guard let addr = mapKernelBuffer(p, name: name, kb: state.kernelBuffers.count - 1, &j) else {
            return .fail(.errno("ENOMEM"), "\(call): no room to map it")
        }
        var text = "\(call): \(plural(pages, "page")) of non-swappable kernel memory"
        text += linear ? " in one physically contiguous run from pfn \(hex(UInt64(pfns[0])))" : ", one page at a time (scattered)"
        text += "; secure id \(id) (the lowest free in a global table of \(umpSecureIDs)); mapped into \(state.processes[p].meta.name) at \(hex(addr)) (VM_PFNMAP: not in rss, never reclaimed)"
        text += charge ? "; charged to locked_vm (ump-limit=memlock)" : "; charged to no limit: any process may take as much as it likes (ump-limit=none, the original UMP)"
        return OpResult(text: text)
    }

    mutating func doUMPImport(_ p: Int, name: String, id: UInt64, _ j: inout StepJournal) -> OpResult {
        guard let k = state.kernelBuffers.firstIndex(where: { $0.kind == .ump && !$0.freed && UInt64($0.id) == id }) else {
            return .fail(.errno("EINVAL"), "ump_handle_create_from_secure_id(\(id)): no UMP buffer has that id")
        }
        guard let addr = mapKernelBuffer(p, name: name, kb: k, &j) else {
            return .fail(.errno("ENOMEM"), "no room to map the UMP buffer")
        }
        let kb = state.kernelBuffers[k]
        return OpResult(text: "ump_handle_create_from_secure_id(\(id)): \(state.processes[p].meta.name) maps \(kb.creator)'s \(formatSize(kb.size)) buffer at \(hex(addr)). The kernel checks nothing but the size: a secure id is a small number from a global table, so any process that can open the UMP device can guess it and read or write another process's buffer")
    }

    mutating func doDmabufAlloc(_ p: Int, name: String, size: UInt64, heap: DMAHeap, _ j: inout StepJournal) -> OpResult {
        let pages = Int(alignUp(max(size, 1), pageSize) >> pageShift)
        let call = "DMA_HEAP_IOCTL_ALLOC(\(heap == .cma ? "cma" : "system") heap, \(formatSize(size)))"
        // dma_heap_buffer_alloc: "len = PAGE_ALIGN(len); if (!len) return -EINVAL;" (drivers/dma-buf/dma-heap.c:86).
        guard size > 0 else { return .fail(.errno("EINVAL"), "\(call) fails with EINVAL: a length of 0") }
        if heap == .cma && state.phys.cmaEnd == state.phys.cmaStart {
            return .fail(.errno("ENODEV"), "\(call): this machine has no CMA region (machine cma=SIZE)")
        }
        guard let pfns = allocKernelPages(pages: pages, use: .dmabuf, owner: state.processes[p].meta.pid, contiguous: heap == .cma, cma: heap == .cma, &j) else {
            return .fail(.oom, "\(call) fails: \(heap == .cma ? "no run of the CMA region can be emptied" : "out of memory")")
        }
        let id = Int32(state.kernelBuffers.count + 1)
        addKernelBuffer(KernelBuffer(id: id, kind: .dmabuf, size: size, pfns: pfns, contiguous: heap == .cma,
                                     creator: state.processes[p].meta.name, chargedPages: 0), &j)
        guard let addr = mapKernelBuffer(p, name: name, kb: state.kernelBuffers.count - 1, &j) else {
            return .fail(.errno("ENOMEM"), "no room to map the dma-buf")
        }
        var runs = 1
        for i in 1..<max(1, pfns.count) where pfns[i] != pfns[i - 1] + 1 { runs += 1 }
        let how = heap == .cma ? "cma_alloc: one contiguous run from the CMA region (movable pages there are migrated out)" : "the system heap takes the largest blocks it can (orders 8, 4, 0): \(plural(runs, "contiguous run"))"
        return OpResult(text: "\(call): \(pages) pages, \(how); \(state.processes[p].meta.name) holds its file descriptor and maps it at \(hex(addr)); only holders of the fd can map it")
    }

    /// Kernel allocations for ump and dma-buf: one contiguous run, or the system heap's orders 8, 4, 0.
    mutating func allocKernelPages(pages: Int, use: FrameUse, owner: Int32, contiguous: Bool, cma: Bool, _ j: inout StepJournal) -> [Int32]? {
        if contiguous {
            // Aligned to the size (up to 16 MiB, what a v7s supersection needs) where such a run
            // exists, else to 2 MiB: enough for 1 MiB sections and 2 MiB IOPTEs. The dma-buf CMA heap
            // aligns to the size only up to CONFIG_CMA_ALIGNMENT, order 8 by default: 1 MiB
            // (cma_heap_allocate, drivers/dma-buf/heaps/cma_heap.c:299).
            let natural = Int(min(roundUpPow2(UInt64(pages)), use == .dmabuf && cma ? 256 : 4096))
            let start = allocContig(count: pages, align: natural, cma: cma, use: use, owner: owner, &j)
                ?? (natural > pagesPerPMD ? allocContig(count: pages, align: pagesPerPMD, cma: cma, use: use, owner: owner, &j) : nil)
            guard let start else { return nil }
            return (start..<(start + pages)).map { Int32($0) }
        }
        var pfns: [Int32] = []
        var left = pages
        while left > 0 {
            var got: Int?
            var order = 0
            for o in [8, 4, 0] where (1 << o) <= left || o == 0 {
                if let pfn = o == 0 ? allocPageOrReclaim(use: use, owner: owner, exclusive: false, &j) : allocPages(order: o, use: use, owner: owner, &j) {
                    got = pfn
                    order = o
                    break
                }
            }
            guard let start = got else {
                for pfn in pfns { putPage(Int(pfn), &j) }
                return nil
            }
            for i in 0..<(1 << order) { pfns.append(Int32(start + i)) }
            left -= 1 << order
        }
        return pfns
    }

    mutating func doSend(_ p: Int, name: String, to other: String, _ j: inout StepJournal) -> OpResult {
        guard let b = state.processes[p].meta.buffer(named: name), b.kind == .dmabuf else {
            return .fail(.errno("EBADF"), "\(state.processes[p].meta.name) holds no dma-buf fd named \(name) (UMP buffers are shared by secure id, not by fd)")
        }
        guard let q = state.processIndex(named: other), state.processes[q].meta.alive else {
            return .fail(.errno("ESRCH"), "\(other) is not running")
        }
        if state.processes[q].meta.buffer(named: name) != nil {
            return .fail(.errno("EEXIST"), "\(other) already has a buffer named \(name)")
        }
        guard let addr = mapKernelBuffer(q, name: name, kb: Int(b.kernelBuffer), &j) else {
            return .fail(.errno("ENOMEM"), "no room in \(other) to map it")
        }
        return OpResult(text: "sendmsg(SCM_RIGHTS): \(state.processes[p].meta.name) passes the dma-buf fd of \(name) to \(other), which maps it at \(hex(addr)). Possession of the fd is the permission: nobody without it can name the buffer")
    }

    /// A process lets go of a kernel buffer (close, exit): the buffer is freed once nothing holds it.
    /// Process p lets go of b's kernel buffer (b is already out of its buffers). A process that
    /// still holds the buffer under another name (it imported its own UMP id, or was sent its own
    /// dma-buf) keeps its hold, as each of its fds and mappings holds a reference in Linux.
    /// `exiting`: every one of its buffers goes at once.
    mutating func dropKernelBufferHold(_ p: Int, _ b: Buffer, exiting: Bool = false, _ j: inout StepJournal) {
        guard b.kernelBuffer >= 0 else { return }
        let k = Int(b.kernelBuffer)
        if !exiting, state.processes[p].meta.buffers.contains(where: { $0.kernelBuffer == b.kernelBuffer && $0.name != b.name }) { return }
        let name = state.processes[p].meta.name
        updateKernelBuffer(k, &j) { $0.holders.removeAll { $0 == name } }
        freeKernelBufferIfUnused(k, &j)
    }

    mutating func freeKernelBufferIfUnused(_ k: Int, _ j: inout StepJournal) {
        let kb = state.kernelBuffers[k]
        guard !kb.freed, kb.holders.isEmpty, kb.deviceMaps == 0 else { return }
        updateKernelBuffer(k, &j) { $0.freed = true }
        for pfn in kb.pfns { putPage(Int(pfn), &j) }
        if kb.chargedPages > 0, let c = state.processIndex(named: kb.creator), state.processes[c].meta.alive {
            updateCounters(c, &j) { $0.lockedVMPages -= kb.chargedPages }
        }
        j.events.add(.kernelBufferFreed)
    }
}
