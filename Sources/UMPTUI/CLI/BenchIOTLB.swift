// `umptui bench`: IOTLB lookups per second replaying a page trace with dma-trace, against the best
// plain C for the same LRU work (Benchmarks/iotlb_lru.c: the file mmapped, a page→slot hash and an
// intrusive LRU list, so O(1) a lookup; it gives the same hits and misses for every policy and
// shape, which IOTLBBaselineTests checks). Both are timed as whole processes,
// start-up and file reading included.

import Engine
import Foundation

enum IOTLBBench {
    struct Result {
        var lines: Int
        var swiftSeconds: Double
        var cSeconds: Double?
        var swiftHitsMisses: (Int, Int)?
        var cHitsMisses: (Int, Int)?
        var note: String?
        var ratio: Double? { cSeconds.map { swiftSeconds / max($0, 1e-9) } }
    }

    /// The package root, found from this file's path (the bench runs from a checkout).
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
    }

    static func run(lines: Int) throws -> Result {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("umptui-bench-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // A trace with locality: half the accesses in a hot set of 48 pages, half anywhere in 16384.
        let trace = dir.appendingPathComponent("trace.txt")
        var rng = SplitMix64(seed: 42)
        var text = ""
        text.reserveCapacity(lines * 6)
        for _ in 0..<lines {
            let r = rng.next()
            let page = r & 1 == 0 ? (r >> 8) % 48 : (r >> 8) % 16384
            text += String(page)
            text += "\n"
        }
        try text.write(to: trace, atomically: false, encoding: .utf8)
        let scenario = dir.appendingPathComponent("bench.ump")
        try """
            machine ram=256M memlock=128M
            process app
            device d iommu=vtd pagesizes=4K iotlb=64 policy=lru
            app mmap buf 64M
            d map app.buf iova=0
            d dma-trace trace.txt unit=page
            """.write(to: scenario, atomically: false, encoding: .utf8)

        let me = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let t0 = BenchRunner.now()
        let swiftOut = try runProcess(me, ["run", "--json", scenario.path])
        let swiftSeconds = BenchRunner.now() - t0
        var result = Result(lines: lines, swiftSeconds: swiftSeconds)
        if let last = swiftOut.split(separator: "\n").last,
           let obj = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any],
           let final = obj["final"] as? [String: Any], let devs = final["devices"] as? [[String: Any]],
           let tlb = devs.first?["iotlb"] as? [String: Any], let h = tlb["hits"] as? Int, let m = tlb["misses"] as? Int {
            result.swiftHitsMisses = (h, m)
        }
        let source = packageRoot.appendingPathComponent("Benchmarks/iotlb_lru.c")
        let binary = dir.appendingPathComponent("iotlb_lru")
        guard FileManager.default.fileExists(atPath: source.path) else {
            result.note = "Benchmarks/iotlb_lru.c not found: run the bench from a checkout"
            return result
        }
        do {
            _ = try runProcess("/usr/bin/env", ["cc", "-O2", "-o", binary.path, source.path])
        } catch {
            result.note = "no C compiler (cc): \(error)"
            return result
        }
        let c0 = BenchRunner.now()
        let cOut = try runProcess(binary.path, [trace.path])
        result.cSeconds = BenchRunner.now() - c0
        let parts = cOut.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        if parts.count == 3 { result.cHitsMisses = (parts[1], parts[2]) }
        return result
    }

    struct ProcessFailure: Error, CustomStringConvertible { var description: String }

    static func runProcess(_ path: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw ProcessFailure(description: "\(path) exited \(p.terminationStatus)") }
        return String(decoding: data, as: UTF8.self)
    }
}
