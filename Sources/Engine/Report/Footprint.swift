// How much memory the Engine's state takes, for `umptui bench`.

extension Engine {
    /// Bytes held by the state: the frame arrays, page tables and per-process records.
    /// Dictionary and array headers are estimated, not measured.
    public func approximateStateBytes() -> Int {
        let phys = state.phys
        var bytes = PhysicalMemory.bytesPerFrame * phys.frameCount
        bytes += state.swapMap.count * MemoryLayout<UInt16>.stride
        for proc in state.processes {
            // A PTE table: 512 entries plus the dictionary slot (key, value header, array header).
            bytes += proc.pt.tables.count * (pagesPerPMD * MemoryLayout<PTE>.stride + 64)
            bytes += proc.pt.hugePMDs.count * 32 + proc.pt.upper.count * 24
            bytes += proc.meta.vmas.count * MemoryLayout<VMA>.stride + proc.meta.buffers.count * MemoryLayout<Buffer>.stride
            bytes += proc.meta.heapChunks.count * MemoryLayout<HeapChunk>.stride
        }
        return bytes
    }
}
