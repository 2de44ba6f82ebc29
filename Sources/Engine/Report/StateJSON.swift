// The STATE object of SCENARIO.md, written by hand: fixed key order, integers for every address,
// and fast enough for a 4M-frame machine (no Foundation encoder in between).

/// A minimal JSON writer into a byte buffer.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []
    private var needComma: [Bool] = [false]

    public init() { bytes.reserveCapacity(4096) }

    public var string: String { String(decoding: bytes, as: UTF8.self) }

    private mutating func comma() {
        if needComma[needComma.count - 1] { bytes.append(UInt8(ascii: ",")) }
        needComma[needComma.count - 1] = true
    }

    private mutating func key(_ k: String?) {
        comma()
        if let k {
            appendString(k)
            bytes.append(UInt8(ascii: ":"))
        }
    }

    public mutating func beginObject(_ k: String? = nil) {
        key(k)
        bytes.append(UInt8(ascii: "{"))
        needComma.append(false)
    }

    public mutating func endObject() {
        needComma.removeLast()
        bytes.append(UInt8(ascii: "}"))
    }

    public mutating func beginArray(_ k: String? = nil) {
        key(k)
        bytes.append(UInt8(ascii: "["))
        needComma.append(false)
    }

    public mutating func endArray() {
        needComma.removeLast()
        bytes.append(UInt8(ascii: "]"))
    }

    public mutating func field(_ k: String?, _ v: Int) {
        key(k)
        bytes.append(contentsOf: String(v).utf8)
    }

    public mutating func field(_ k: String?, _ v: UInt64) {
        key(k)
        bytes.append(contentsOf: String(v).utf8)
    }

    public mutating func field(_ k: String?, _ v: Bool) {
        key(k)
        bytes.append(contentsOf: (v ? "true" : "false").utf8)
    }

    public mutating func field(_ k: String?, _ v: String?) {
        key(k)
        if let v { appendString(v) } else { bytes.append(contentsOf: "null".utf8) }
    }

    public mutating func nullField(_ k: String?) {
        key(k)
        bytes.append(contentsOf: "null".utf8)
    }

    /// Inserts already-encoded JSON as a value.
    public mutating func raw(_ k: String?, _ json: String) {
        key(k)
        bytes.append(contentsOf: json.utf8)
    }

    /// `s` as a JSON string literal.
    public static func quote(_ s: String) -> String {
        var w = JSONWriter()
        w.appendString(s)
        return w.string
    }

    private mutating func appendString(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for u in s.utf8 {
            switch u {
            case UInt8(ascii: "\""): bytes.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): bytes.append(contentsOf: "\\\\".utf8)
            case 0x0A: bytes.append(contentsOf: "\\n".utf8)
            case 0x0D: bytes.append(contentsOf: "\\r".utf8)
            case 0x09: bytes.append(contentsOf: "\\t".utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: "\\u00".utf8)
                bytes.append(hex[Int(u >> 4)])
                bytes.append(hex[Int(u & 15)])
            default: bytes.append(u)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

extension Engine {
    /// The STATE object of SCENARIO.md.
    public func stateJSON() -> String {
        var w = JSONWriter()
        writeState(into: &w)
        return w.string
    }

    public func writeState(into w: inout JSONWriter) {
        let phys = state.phys
        w.beginObject()
        w.beginObject("machine")
        w.field("ram", state.config.ram)
        w.field("frames", phys.frameCount)
        w.field("free_frames", phys.freeFrames)
        w.field("zero_pfn", Int(state.meta.zeroPfn))
        w.field("swap_used_pages", state.meta.swapUsed)
        w.field("swap_pages", state.swapMap.count)
        w.field("kernel_reserved_frames", state.meta.kernelReservedFrames)
        if state.meta.hugeZeroPfn >= 0 { w.field("huge_zero_pfn", Int(state.meta.hugeZeroPfn)) } else { w.nullField("huge_zero_pfn") }
        w.field("huge_zero_refcount", Int(state.meta.hugeZeroRefcount))
        // user->locked_vm as io_uring charges it, by user (users with nothing charged are left out).
        w.beginObject("user_locked_vm_pages")
        for (user, pages) in state.meta.userLockedVM.sorted(by: { $0.key < $1.key }) where pages > 0 { w.field(user, pages) }
        w.endObject()
        w.field("thp", state.config.thp.rawValue)
        w.field("thp_defrag", state.config.thpDefrag.rawValue)
        w.field("kernel", state.config.kernel.rawValue)
        w.field("seed", state.config.seed)
        w.beginArray("buddy_free_blocks")
        for n in phys.freeBlocks { w.field(nil, n) }
        w.endArray()
        w.endObject()

        w.beginArray("processes")
        for (p, proc) in state.processes.enumerated() {
            let m = proc.meta
            w.beginObject()
            w.field("name", m.name)
            w.field("pid", Int(m.pid))
            w.field("user", m.user)
            w.field("alive", m.alive)
            w.field("rss_pages", m.rssPages)
            w.field("locked_vm_pages", m.lockedVMPages)
            w.field("pinned_vm_pages", m.pinnedVMPages)
            w.field("memlock_limit", m.memlockLimit)
            w.field("swap_pages", m.swapPages)
            w.field("page_table_pages", m.pageTablePages)
            w.field("mmap_threshold", m.mmapThreshold)
            w.field("brk", m.brk)
            w.beginArray("vmas")
            for v in m.vmas {
                w.beginObject()
                w.field("start", v.start)
                w.field("end", v.end)
                w.field("perms", v.permissions)
                w.field("kind", "\(v.kind)")
                w.field("label", v.label)
                w.field("anon_vma", v.anonVMA != 0)
                var flags: [String] = []
                if v.flags.contains(.locked) { flags.append("locked") }
                if v.flags.contains(.dontcopy) { flags.append("dontcopy") }
                if v.flags.contains(.hugepage) { flags.append("hugepage") }
                if v.flags.contains(.nohugepage) { flags.append("nohugepage") }
                w.beginArray("flags")
                for f in flags { w.field(nil, f) }
                w.endArray()
                w.endObject()
            }
            w.endArray()
            w.beginArray("buffers")
            for b in m.buffers {
                w.beginObject()
                w.field("name", b.name)
                w.field("start", b.start)
                w.field("size", b.size)
                w.field("kind", b.kind.rawValue)
                w.endObject()
            }
            w.endArray()
            w.beginArray("pages")
            for (vpn, e) in state.listedPages(p) {
                w.beginObject()
                w.field("va", vpn << pageShift)
                w.field("present", e.present)
                if e.present { w.field("pfn", e.number) } else { w.nullField("pfn") }
                w.field("zero", e.present && e.isZero)
                w.field("writable", e.present && e.writable)
                w.field("swapped", e.isSwap)
                w.field("huge", e.present && proc.pt.hugePMDs[vpn >> 9] != nil)
                w.endObject()
            }
            w.endArray()
            w.endObject()
        }
        w.endArray()

        // Frames allocated since boot (and the zero page); the boot reservation is the count above.
        w.beginArray("frames")
        let reserved = state.meta.kernelReservedFrames
        for pfn in 0..<phys.frameCount where phys.use[pfn] != FrameUse.free.rawValue {
            if pfn < reserved && pfn != Int(state.meta.zeroPfn) { continue }
            w.beginObject()
            w.field("pfn", pfn)
            w.field("use", phys.frameUse(pfn).name)
            w.field("refcount", Int(phys.refcount[pfn]))
            w.field("mapcount", Int(phys.mapcount[pfn]))
            w.field("pins", Int(phys.pincount[pfn]))
            w.field("owner", Int(phys.owner[pfn]))
            w.field("exclusive", phys.flags[pfn] & FrameFlag.anonExclusive != 0)
            if let d = state.dataName(phys.dataTag(pfn)) { w.field("data", d) } else { w.nullField("data") }
            if phys.isLarge(pfn) { w.field("folio_order", phys.folioOrder(pfn)) }
            w.endObject()
        }
        w.endArray()
        w.beginArray("devices")
        for dev in state.devices {
            w.beginObject()
            w.field("name", dev.name)
            w.field("iommu", dev.info.format.rawValue)
            w.beginArray("pagesizes")
            var bits = dev.pgsizeBitmap
            while bits != 0 {
                w.field(nil, UInt64(1) << UInt64(bits.trailingZeroBitCount))
                bits &= bits - 1
            }
            w.endArray()
            w.beginArray("mappings")
            for e in dev.sortedIOPTEs {
                w.beginObject()
                w.field("iova", e.iova)
                w.field("pa", e.pa)
                w.field("size", e.size)
                w.field("writable", e.writable)
                w.endObject()
            }
            w.endArray()
            w.beginArray("maps")
            for m in dev.mappings {
                w.beginObject()
                w.field("process", m.process)
                w.field("buffer", m.buffer)
                w.field("iova", m.iova)
                w.field("size", m.size)
                w.field("pinned_pages", m.pinnedPages)
                w.field("locked_pages", m.lockedPages)
                w.endObject()
            }
            w.endArray()
            w.beginObject("iotlb")
            w.field("entries", dev.iotlb.capacity)
            w.field("ways", dev.iotlb.ways)
            w.field("policy", dev.iotlb.policy.rawValue)
            w.field("used", dev.iotlb.entryCount)
            w.field("hits", dev.stats.hits)
            w.field("misses", dev.stats.misses)
            w.endObject()
            w.field("accesses", dev.stats.accesses)
            w.field("walks", dev.stats.walks)
            w.field("faults", dev.stats.faults)
            w.field("stall_ns", dev.stats.stallNs)
            w.field("hazards", dev.stats.hazards)
            w.field("io_page_faults", dev.stats.ioPageFaults)
            w.field("table_pages", dev.tablePages.count)
            w.field("flush_queue", dev.lazyUnmapped.count)
            w.endObject()
        }
        w.endArray()
        w.beginArray("kernel_buffers")
        for kb in state.kernelBuffers where !kb.freed {
            w.beginObject()
            w.field("id", Int(kb.id))
            w.field("kind", kb.kind.rawValue)
            w.field("size", kb.size)
            w.field("contiguous", kb.contiguous)
            w.field("creator", kb.creator)
            w.beginArray("holders")
            for h in kb.holders { w.field(nil, h) }
            w.endArray()
            w.field("device_maps", kb.deviceMaps)
            w.endObject()
        }
        w.endArray()
        // Files and memfds, with how much of each the page cache holds.
        w.beginArray("files")
        for f in state.files {
            w.beginObject()
            w.field("name", f.name)
            w.field("size", f.size)
            w.field("shmem", f.shmem)
            w.field("cached_pages", state.shmem[f.object]?.count ?? 0)
            w.endObject()
        }
        w.endArray()
        w.endObject()
    }
}
