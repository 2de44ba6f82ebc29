// The `key=value` options of `machine`, `process` and `device`: one table per declaration,
// read by the parser and by `umptui run --set`, so both accept exactly the same values.

/// One option of a declaration and how its value is stored.
struct DeclarationOption<Decl>: Sendable {
    var key: String
    var set: @Sendable (inout Decl, String) throws(ValueError) -> Void
}

enum DeclarationOptions {
    static let ramRange: ClosedRange<UInt64> = Literal.mib...(16 * Literal.gib)
    /// The IOTLB size when `iotlb=` is not given (SCENARIO.md); needed to check `ways=`.
    static let defaultIOTLB = 64
    static let maxIOTLB = 65_536
    /// Walk and hit latencies are capped at one second so that summed stalls stay far from overflow.
    static let maxLatencyNs = 1_000_000_000

    static let machine: [DeclarationOption<MachineDecl>] = [
        .init(key: "ram") { (d: inout MachineDecl, v: String) throws(ValueError) in
            let ram = try Literal.size(v)
            guard ramRange.contains(ram) else { throw ValueError("ram must be between 1M and 16G, got '\(v)'") }
            d.ram = ram
        },
        .init(key: "thp") { (d: inout MachineDecl, v: String) throws(ValueError) in d.thp = try Literal.choice(v, for: "thp") },
        .init(key: "thp-defrag") { (d: inout MachineDecl, v: String) throws(ValueError) in
            d.thpDefrag = try Literal.choice(v, for: "thp-defrag")
        },
        .init(key: "kernel") { (d: inout MachineDecl, v: String) throws(ValueError) in
            d.kernel = try Literal.choice(v, for: "kernel")
        },
        .init(key: "memlock") { (d: inout MachineDecl, v: String) throws(ValueError) in d.memlock = try Literal.size(v) },
        .init(key: "swap") { (d: inout MachineDecl, v: String) throws(ValueError) in
            // swap_map takes two bytes a slot: 64G of swap is 32 MiB of model.
            let swap = try Literal.size(v)
            guard swap <= 64 << 30 else { throw ValueError("swap must be at most 64G, got '\(v)'") }
            d.swap = swap
        },
        .init(key: "cma") { (d: inout MachineDecl, v: String) throws(ValueError) in
            // At most half of the largest machine; the checker holds it to half of this one's ram.
            let cma = try Literal.size(v)
            guard cma <= 8 << 30 else { throw ValueError("cma must be at most 8G (half of the largest ram), got '\(v)'") }
            d.cma = cma
        },
        .init(key: "ump-limit") { (d: inout MachineDecl, v: String) throws(ValueError) in
            d.umpLimit = try Literal.choice(v, for: "ump-limit")
        },
        .init(key: "seed") { (d: inout MachineDecl, v: String) throws(ValueError) in d.seed = try Literal.count(v) },
        .init(key: "fragment") { (d: inout MachineDecl, v: String) throws(ValueError) in
            d.fragment = try Literal.percent(v, "fragment")
        },
        .init(key: "mthp") { (d: inout MachineDecl, v: String) throws(ValueError) in
            // /sys/kernel/mm/transparent_hugepage/hugepages-<size>kB/enabled = always, per size listed.
            var orders: UInt16 = 0
            guard v != "none" else { d.mthpOrders = 0; return }
            var offset = 0
            for part in v.split(separator: ",", omittingEmptySubsequences: false) {
                let size: UInt64
                do throws(ValueError) { size = try Literal.size(String(part)) } catch { throw ValueError(error.message, hint: error.hint, offset: offset + error.offset) }
                let order = size.nonzeroBitCount == 1 ? size.trailingZeroBitCount - Int(pageShift) : -1
                guard (2...8).contains(order) else {
                    throw ValueError("mthp sizes are 16K, 32K, 64K, 128K, 256K, 512K or 1M, got '\(part)'",
                                     hint: "2M is the PMD size, which thp= sets", offset: offset)
                }
                orders |= 1 << UInt16(order)
                offset += part.count + 1
            }
            d.mthpOrders = orders
        },
    ]

    static let process: [DeclarationOption<ProcessDecl>] = [
        .init(key: "memlock") { (d: inout ProcessDecl, v: String) throws(ValueError) in d.memlock = try Literal.size(v) },
        .init(key: "user") { (d: inout ProcessDecl, v: String) throws(ValueError) in
            guard !v.isEmpty, v.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                throw ValueError("user takes a name of letters, digits, _ and -, got '\(v)'")
            }
            d.user = v
        },
        .init(key: "cap") { (d: inout ProcessDecl, v: String) throws(ValueError) in
            switch v {
            case "ipc_lock": d.capIPCLock = true
            case "none": d.capIPCLock = false
            default: throw Literal.unknownChoice(v, for: "cap", among: ["ipc_lock", "none"])
            }
        },
    ]

    static let device: [DeclarationOption<DeviceDecl>] = [
        .init(key: "iommu") { (d: inout DeviceDecl, v: String) throws(ValueError) in d.iommu = try Literal.choice(v, for: "iommu") },
        .init(key: "pagesizes") { (d: inout DeviceDecl, v: String) throws(ValueError) in d.pagesizes = try pageSizes(v) },
        .init(key: "iotlb") { (d: inout DeviceDecl, v: String) throws(ValueError) in
            d.iotlb = try Literal.count(v, "iotlb", in: 1...maxIOTLB)
        },
        .init(key: "ways") { (d: inout DeviceDecl, v: String) throws(ValueError) in
            d.ways = v == "full" ? 0 : try Literal.count(v, "ways", in: 1...maxIOTLB)
        },
        .init(key: "policy") { (d: inout DeviceDecl, v: String) throws(ValueError) in d.policy = try Literal.choice(v, for: "policy") },
        .init(key: "walk") { (d: inout DeviceDecl, v: String) throws(ValueError) in
            d.walkNs = try Literal.count(v, "walk", in: 0...maxLatencyNs)
        },
        .init(key: "hit") { (d: inout DeviceDecl, v: String) throws(ValueError) in
            d.hitNs = try Literal.count(v, "hit", in: 0...maxLatencyNs)
        },
        .init(key: "flush") { (d: inout DeviceDecl, v: String) throws(ValueError) in d.flush = try Literal.choice(v, for: "flush") },
    ]

    static let machineShape = CommandShape(
        name: "machine", subject: "machine",
        usage: "machine [ram=SIZE] [thp=never|madvise|always] [kernel=6.12|legacy] [memlock=SIZE] [swap=SIZE] "
            + "[cma=SIZE] [ump-limit=none|memlock] [seed=N] [fragment=PERCENT] [mthp=16K,64K,...] "
            + "[thp-defrag=always|defer|defer+madvise|madvise|never]",
        options: keys(machine))
    static let processShape = CommandShape(
        name: "process", subject: "process", usage: "process NAME [memlock=SIZE] [cap=ipc_lock|none]",
        needs: "a name", required: 1, options: keys(process))
    static let deviceShape = CommandShape(
        name: "device", subject: "device",
        usage: "device NAME [iommu=vtd|arm-lpae|arm-v7s|amd-v1|sva|none] [pagesizes=4K,2M,...] [iotlb=N] "
            + "[ways=N|full] [policy=lru|fifo|random] [walk=NS] [hit=NS] [flush=strict|lazy]",
        needs: "a name", required: 1, options: keys(device))

    /// `4K,2M,1G`: powers of two of at least 4K, each once; kept in ascending order.
    static func pageSizes(_ v: String) throws(ValueError) -> [UInt64] {
        var sizes: [UInt64] = []
        var offset = 0
        for item in v.split(separator: ",", omittingEmptySubsequences: false) {
            let text = String(item)
            do throws(ValueError) {
                let size = try Literal.size(text)
                guard size >= 4 * Literal.kib else { throw ValueError("page size '\(text)' is smaller than 4K") }
                guard size & (size - 1) == 0 else { throw ValueError("page size '\(text)' is not a power of two") }
                guard !sizes.contains(size) else { throw ValueError("page size '\(text)' is listed twice") }
                sizes.append(size)
            } catch {
                throw ValueError(error.message, hint: "pagesizes is a comma list such as 4K,2M,1G", offset: offset)
            }
            offset += item.count + 1
        }
        return sizes.sorted()
    }

    /// `ways` must divide the IOTLB into whole sets; checked once all options are known.
    static func consistency(of d: DeviceDecl) -> (key: String, error: ValueError)? {
        guard let ways = d.ways, ways > 0 else { return nil }
        let entries = d.iotlb ?? defaultIOTLB
        guard ways > entries || entries % ways != 0 else { return nil }
        return ("ways", ValueError("ways=\(ways) does not divide the IOTLB's \(entries) entries",
                                   hint: "ways must divide iotlb (64 when not given), or write ways=full"))
    }

    static func keys<Decl>(_ table: [DeclarationOption<Decl>]) -> [String] { table.map(\.key) }

    static func option<Decl>(_ key: String, in table: [DeclarationOption<Decl>]) -> DeclarationOption<Decl>? {
        table.first { $0.key == key }
    }
}
