// Views for the pinning / IOMMU / IOTLB / DMA / sharing tests (the harness is EngineRun, in
// TestSupport.swift). Every name here starts with `io` or `IO` so it cannot clash with others.

import XCTest

@testable import Engine

let ioK: UInt64 = 1024
let ioM: UInt64 = 1024 * 1024
let ioG: UInt64 = 1024 * 1024 * 1024

/// An IOPTE reduced to what the reference talks about: (iova, pa, size).
struct IOPTEView: Equatable, CustomStringConvertible {
    var iova: UInt64
    var pa: UInt64
    var size: UInt64

    init(_ iova: UInt64, _ pa: UInt64, _ size: UInt64) {
        self.iova = iova
        self.pa = pa
        self.size = size
    }

    init(_ e: IOPTE) { self.init(e.iova, e.pa, e.size) }

    var description: String { "(0x\(String(iova, radix: 16)), 0x\(String(pa, radix: 16)), \(formatSizeShort(size)))" }
}

/// `count` IOPTEs of `size` starting at (iova, pa), consecutive.
func ioRun(_ iova: UInt64, _ pa: UInt64, _ size: UInt64, count: Int) -> [IOPTEView] {
    (0..<UInt64(count)).map { IOPTEView(iova + $0 * size, pa + $0 * size, size) }
}

/// A `map_pages` run written as the reference's table writes it: pgsize × count.
func ioRuns(_ pairs: [(UInt64, UInt64)]) -> [PgsizeRun] { pairs.map { PgsizeRun(pgsize: $0.0, count: $0.1) } }

/// Trace files held in memory: `dma-trace NAME` reads `files[NAME]`.
struct IOArrayTraces: TraceProvider {
    var files: [String: [UInt64]]
    struct Missing: Error, CustomStringConvertible {
        var path: String
        var description: String { "no such trace \(path)" }
    }
    func open(_ path: String) throws -> any AddressSource {
        guard let items = files[path] else { throw Missing(path: path) }
        return ArrayAddressSource(items)
    }
}

/// A small deterministic generator of the tests' own (not the Engine's SplitMix64).
struct IOLCG {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 6364136223846793005 &+ 1442695040888963407 }
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        var z = state
        z ^= z >> 33
        z = z &* 0xff51afd7ed558ccd
        z ^= z >> 33
        return z
    }
    mutating func below(_ n: UInt64) -> UInt64 { next() % n }
}

struct IOFrameCounts: Equatable, CustomStringConvertible {
    var ref: Int32
    var map: Int32
    var pin: Int32
    var description: String { "(ref \(ref), map \(map), pin \(pin))" }
}
