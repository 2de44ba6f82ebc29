// The bench's C baseline (Benchmarks/iotlb_lru.c) must do the Engine's IOTLB work exactly: the
// same hits and misses for every policy and shape on the same trace, or its time says nothing.

import Foundation
import XCTest

@testable import Engine

final class IOTLBBaselineTests: XCTestCase {
    func testTheCBaselineGivesTheEngineHitsAndMisses() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let source = root.appendingPathComponent("Benchmarks/iotlb_lru.c")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("iotlb-baseline-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let binary = dir.appendingPathComponent("iotlb_lru").path
        guard run("/usr/bin/env", ["cc", "-O2", "-o", binary, source.path]) != nil else { throw XCTSkip("no C compiler (cc)") }
        // Locality: half the accesses in 48 hot pages, half anywhere in 16384 (as the bench).
        var rng = SplitMix64(seed: 9)
        let pages: [UInt64] = (0..<20_000).map { _ in let r = rng.next(); return r & 1 == 0 ? (r >> 8) % 48 : (r >> 8) % 16384 }
        let trace = dir.appendingPathComponent("t.txt")
        try (pages.map(String.init).joined(separator: "\n") + "\n").write(to: trace, atomically: true, encoding: .utf8)
        for (entries, ways, policy) in [(64, 0, "lru"), (64, 0, "fifo"), (64, 0, "random"), (16, 4, "lru"), (64, 4, "fifo"),
                                        (32, 8, "random"), (7, 0, "lru"), (1, 0, "fifo"), (256, 0, "lru"), (64, 64, "random")] {
            let shape = "iotlb=\(entries)\(ways > 0 ? " ways=\(ways)" : "") policy=\(policy)"
            var r = scenario("machine ram=256M memlock=128M\nprocess app\ndevice d iommu=vtd pagesizes=4K \(shape)\napp mmap buf 64M\nd map app.buf iova=0",
                             traces: IOArrayTraces(files: ["t": pages]))
            _ = r.ok("d dma-trace t unit=page")
            let stats = r.dev("d").counters.stats
            let c = run(binary, [trace.path, String(entries), String(ways), policy])?.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            XCTAssertEqual(c, [pages.count, stats.hits, stats.misses], shape)
            XCTAssertGreaterThan(stats.hits, 0, shape)
        }
    }

    private func run(_ path: String, _ args: [String]) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return p.terminationStatus == 0 ? String(decoding: data, as: UTF8.self) : nil
    }
}
