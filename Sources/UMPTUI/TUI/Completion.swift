// Tab completion for the `:` prompt: statement words, then names and verbs, then buffers and options.

import Engine

enum Completion {
    static let statements = ["process", "device", "pressure", "compact", "note", "expect"]
    static let processVerbs = ["malloc", "free", "mmap", "memfd", "munmap", "mremap", "read", "write", "madvise", "mprotect", "mlock", "munlock",
                               "fork", "exit", "pin", "unpin", "uring-register", "uring-unregister", "vmsplice", "pipe-read", "pipe-close", "ump-alloc", "ump-import", "dmabuf-alloc", "send"]
    static let deviceVerbs = ["map", "unmap", "dma", "dma-trace"]
    static let processOptions: [String: [String]] = [
        "mmap": ["shared", "populate", "locked", "hugepage", "prot=r", "prot=rw", "prot=none"],
        "madvise": ["dontneed", "dontfork", "dofork", "hugepage", "nohugepage", "pageout"],
        "mprotect": ["r", "rw", "none"],
        "pin": ["write", "longterm", "get"],
        "ump-alloc": ["linear"],
        "dmabuf-alloc": ["heap=system", "heap=cma"],
    ]
    static let deviceOptions: [String: [String]] = [
        "map": ["iova=", "read", "write"],
        "dma": ["read", "write", "pattern=seq", "pattern=random", "pattern=stride:", "pattern=tile:", "size=", "count=", "passes=", "transient"],
        "dma-trace": ["unit=addr", "unit=page"],
    ]
    static let declarationOptions: [String: [String]] = [
        "process": ["memlock=", "cap=ipc_lock"],
        "device": ["iommu=vtd", "iommu=arm-lpae", "iommu=arm-v7s", "iommu=amd-v1", "iommu=sva", "iommu=none",
                   "pagesizes=", "iotlb=", "ways=", "policy=lru", "policy=fifo", "policy=random", "walk=", "hit=",
                   "flush=strict", "flush=lazy"],
    ]

    static func candidates(words: [String], partial: String, state: EngineState) -> [String] {
        let processes = state.processes.filter(\.meta.alive).map(\.meta.name)
        let devices = state.devices.map(\.name)
        let buffers = state.processes.filter(\.meta.alive).flatMap { p in p.meta.buffers.map { "\(p.meta.name).\($0.name)" } }
        guard let first = words.first else { return statements + processes + devices }
        if words.count == 1 {
            if processes.contains(first) { return processVerbs }
            if devices.contains(first) { return deviceVerbs }
            if first == "expect" { return ["machine", "last"] + processes + devices + buffers }
            return []
        }
        if let opts = declarationOptions[first] { return opts }
        let verb = words[1]
        if let p = state.processes.first(where: { $0.meta.name == first && $0.meta.alive }) {
            let own = p.meta.buffers.map(\.name)
            switch verb {
            case "send": return words.count == 2 ? own : processes
            case "fork", "malloc", "mmap", "ump-alloc", "ump-import", "dmabuf-alloc": return words.count == 2 ? [] : processOptions[verb] ?? []
            default: return words.count == 2 ? own : processOptions[verb] ?? []
            }
        }
        if devices.contains(first) {
            return words.count == 2 && verb != "dma-trace" ? buffers : deviceOptions[verb] ?? []
        }
        return []
    }
}
