// VMA placement, splitting and merging (mm/mmap.c, mm/vma.c).

/// x86-64 with ASLR off: mmap_base = TASK_SIZE (0x7ffffffff000) − 128 MiB (the minimum stack gap).
public let mmapBaseDefault: UInt64 = 0x7fff_f7ff_f000
/// ELF_ET_DYN_BASE rounded: where a PIE program image loads with ASLR off.
public let imageBase: UInt64 = 0x5555_5555_4000
let stackTop: UInt64 = 0x7fff_ffff_f000
let mmapMinAddr: UInt64 = 0x10000
let pmdSize: UInt64 = 2 << 20

@inline(__always) func alignUp(_ v: UInt64, _ a: UInt64) -> UInt64 { (v + a - 1) & ~(a - 1) }
@inline(__always) func alignDown(_ v: UInt64, _ a: UInt64) -> UInt64 { v & ~(a - 1) }

extension Engine {
    /// unmapped_area_topdown: the highest gap below mmap_base that fits, the mapping at its top.
    /// With `thpAlign` (6.12: an anonymous private length that is a multiple of 2 MiB,
    /// __thp_get_unmapped_area) it searches for len + 2 MiB and returns the 2 MiB-aligned address
    /// inside that window, leaving the padding unmapped.
    func getUnmappedArea(_ p: Int, length len: UInt64, thpAlign: Bool) -> UInt64? {
        let vmas = state.processes[p].meta.vmas
        let base = state.processes[p].meta.mmapBase
        let need = thpAlign ? len + pmdSize : len
        var gapEnd = base
        for vma in vmas.reversed() {
            if vma.start >= gapEnd { continue }
            if vma.end < gapEnd, gapEnd - vma.end >= need { return place(gapEnd: gapEnd, len: len, thpAlign: thpAlign) }
            gapEnd = min(gapEnd, vma.start)
        }
        if gapEnd > mmapMinAddr, gapEnd - mmapMinAddr >= need { return place(gapEnd: gapEnd, len: len, thpAlign: thpAlign) }
        if thpAlign { return getUnmappedArea(p, length: len, thpAlign: false) }
        return nil
    }

    private func place(gapEnd: UInt64, len: UInt64, thpAlign: Bool) -> UInt64 {
        thpAlign ? alignDown(gapEnd - len, pmdSize) : gapEnd - len
    }

    /// Inserts a VMA (the range must be free) and merges it with compatible neighbours (vma_merge_new_range).
    mutating func insertVMA(_ p: Int, _ vma: VMA, _ j: inout StepJournal) {
        let i = state.processes[p].meta.vmas.firstIndex { $0.start >= vma.end } ?? state.processes[p].meta.vmas.count
        vmaInsert(p, vma, at: i, &j)
        mergeAround(p, i, &j)
    }

    /// Merges VMA i with the VMAs before and after it where is_mergeable allows
    /// (vma_merge_new_range: the previous VMA first; the next one too only if all three agree).
    private mutating func mergeAround(_ p: Int, _ index: Int, _ j: inout StepJournal) {
        var i = index
        if i > 0, state.processes[p].meta.vmas[i - 1].canMerge(withFollowing: state.processes[p].meta.vmas[i]) {
            let cur = vmaRemove(p, at: i, &j)
            i -= 1
            vmaUpdate(p, at: i, &j) {
                $0.end = cur.end
                if $0.anonVMA == 0 { $0.anonVMA = cur.anonVMA }
            }
        }
        if i + 1 < state.processes[p].meta.vmas.count,
           state.processes[p].meta.vmas[i].canMerge(withFollowing: state.processes[p].meta.vmas[i + 1]) {
            mergeWithNext(p, i, &j)
        }
    }

    /// VMA i absorbs VMA i + 1.
    private mutating func mergeWithNext(_ p: Int, _ i: Int, _ j: inout StepJournal) {
        let next = vmaRemove(p, at: i + 1, &j)
        vmaUpdate(p, at: i, &j) {
            $0.end = next.end
            if $0.anonVMA == 0 {
                $0.anonVMA = next.anonVMA
                $0.chainedAnonVMA = next.chainedAnonVMA
            }
        }
    }

    /// split_vma: makes `addr` a VMA boundary if it falls inside one. A huge PMD the new boundary
    /// falls inside is split into PTEs first (__split_vma → vma_adjust_trans_huge →
    /// split_huge_pmd_if_needed, mm/vma.c:427, mm/huge_memory.c:2991): no PMD straddles two VMAs.
    mutating func splitVMA(_ p: Int, at addr: UInt64, _ j: inout StepJournal) {
        guard let v = state.processes[p].meta.vmaIndex(containing: addr), state.processes[p].meta.vmas[v].start != addr else { return }
        if addr & (pmdSize - 1) != 0, state.processes[p].pt.hugePMDs[addr >> 21] != nil {
            splitHugePMD(p, region: addr >> 21, &j)
        }
        var upper = state.processes[p].meta.vmas[v]
        upper.start = addr
        if upper.shmem != 0 { upper.shmemOffset += (addr - state.processes[p].meta.vmas[v].start) >> pageShift }
        vmaUpdate(p, at: v, &j) { $0.end = addr }
        vmaInsert(p, upper, at: v + 1, &j)
    }

    /// Indices of the VMAs inside [start, end) after splitting at both ends.
    mutating func isolateVMAs(_ p: Int, start: UInt64, end: UInt64, _ j: inout StepJournal) -> Range<Int> {
        splitVMA(p, at: start, &j)
        splitVMA(p, at: end, &j)
        let vmas = state.processes[p].meta.vmas
        let lo = vmas.firstIndex { $0.end > start } ?? vmas.count
        var hi = lo
        while hi < vmas.count && vmas[hi].start < end { hi += 1 }
        return lo..<hi
    }

    /// Sets or clears flags on [start, end), splitting and re-merging as vma_modify_flags does.
    mutating func modifyVMAFlags(_ p: Int, start: UInt64, end: UInt64, set: VMFlags = [], clear: VMFlags = [], _ j: inout StepJournal) {
        let range = isolateVMAs(p, start: start, end: end, &j)
        guard !range.isEmpty else { return }
        for i in range {
            vmaUpdate(p, at: i, &j) {
                $0.flags.formUnion(set)
                $0.flags.subtract(clear)
            }
        }
        remergeAll(p, &j)
    }

    /// Merges every adjacent compatible pair.
    mutating func remergeAll(_ p: Int, _ j: inout StepJournal) {
        var i = 0
        while i + 1 < state.processes[p].meta.vmas.count {
            if state.processes[p].meta.vmas[i].canMerge(withFollowing: state.processes[p].meta.vmas[i + 1]) {
                mergeWithNext(p, i, &j)
            } else {
                i += 1
            }
        }
    }

    /// Bytes of [start, end) that no VMA covers.
    func unmappedBytes(_ p: Int, start: UInt64, end: UInt64) -> UInt64 {
        var covered: UInt64 = 0
        for vma in state.processes[p].meta.vmas where vma.start < end && vma.end > start {
            covered += min(vma.end, end) - max(vma.start, start)
        }
        return (end - start) - covered
    }
}
