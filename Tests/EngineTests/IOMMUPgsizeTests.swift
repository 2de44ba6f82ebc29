// iommu_pgsize / __iommu_map's split of a range into IOPTEs (reference §4.1), against the worked
// examples of the reference and an independent greedy model of the rule, then through `map`.

import Foundation
import XCTest

@testable import Engine

final class IOMMUPgsizeTests: XCTestCase {
    let k4: UInt64 = 1 << 12, k64: UInt64 = 1 << 16, m1: UInt64 = 1 << 20, m2: UInt64 = 1 << 21
    let m16: UInt64 = 1 << 24, g1: UInt64 = 1 << 30
    var vtd: UInt64 { k4 | m2 | g1 }
    var v7s: UInt64 { k4 | k64 | m1 | m16 }

    // MARK: - Worked examples of §4.1, exactly

    func testWorkedExampleUnalignedStartGives4KThen2MThen4K() {
        XCTAssertEqual(iommuMapRuns(bitmap: vtd, iova: 0x1ff000, paddr: 0x3ff000, size: 4 * ioM),
                       ioRuns([(k4, 1), (m2, 1), (k4, 511)]))
    }

    func testWorkedExampleOffsetsDifferMod1GGivesOnly2M() {
        XCTAssertEqual(iommuMapRuns(bitmap: vtd, iova: 0x200000, paddr: 0x4000_0000, size: 6 * ioM),
                       ioRuns([(m2, 3)]))
    }

    func testWorkedExampleOffsetsDifferMod2MGivesOnly4K() {
        XCTAssertEqual(iommuMapRuns(bitmap: vtd, iova: 0x1000, paddr: 0x2000, size: 3 * ioM),
                       ioRuns([(k4, 768)]))
    }

    func testWorkedExampleAlignedGives1GThen2MThen4K() {
        XCTAssertEqual(iommuMapRuns(bitmap: vtd, iova: 0, paddr: 0, size: ioG + 2 * ioM + 8 * ioK),
                       ioRuns([(g1, 1), (m2, 1), (k4, 2)]))
    }

    func testWorkedExampleV7sGives64KThen1MThen64K() {
        XCTAssertEqual(iommuMapRuns(bitmap: v7s, iova: 0x10000, paddr: 0x110000, size: 2 * ioM + 64 * ioK),
                       ioRuns([(k64, 15), (m1, 1), (k64, 2)]))
    }

    /// The first iommu_pgsize call of each example: the size and the count trimmed to the next boundary.
    func testSingleCallsTrimCountToTheNextLargerBoundary() {
        XCTAssertEqual(iommuPgsize(bitmap: vtd, iova: 0x1ff000, paddr: 0x3ff000, size: 4 * ioM), PgsizeRun(pgsize: k4, count: 1))
        XCTAssertEqual(iommuPgsize(bitmap: vtd, iova: 0x200000, paddr: 0x3ff000 + 0x1000, size: 4 * ioM - k4), PgsizeRun(pgsize: m2, count: 1))
        XCTAssertEqual(iommuPgsize(bitmap: vtd, iova: 0x1000, paddr: 0x2000, size: 3 * ioM), PgsizeRun(pgsize: k4, count: 768))
        XCTAssertEqual(iommuPgsize(bitmap: v7s, iova: 0x10000, paddr: 0x110000, size: 2 * ioM + 64 * ioK), PgsizeRun(pgsize: k64, count: 15))
        // A whole larger page does not fit after the boundary: no trimming, all small pages.
        XCTAssertEqual(iommuPgsize(bitmap: vtd, iova: 0x1ff000, paddr: 0x3ff000, size: 2 * ioM), PgsizeRun(pgsize: k4, count: 512))
    }

    // MARK: - The rule, against an independent model

    /// Greedy reference: at every position take the largest supported size that both iova and pa
    /// are aligned to and that the remaining size covers. Consecutive equal sizes are merged.
    func ioGreedy(bitmap: UInt64, iova: UInt64, pa: UInt64, size: UInt64) -> [PgsizeRun] {
        var out: [PgsizeRun] = []
        var iova = iova, pa = pa, left = size
        let sizes = (0..<64).map { UInt64(1) << UInt64($0) }.filter { bitmap & $0 != 0 }.sorted(by: >)
        while left > 0 {
            var s: UInt64 = 0
            for c in sizes where iova % c == 0 && pa % c == 0 && c <= left { s = c; break }
            if let lastRun = out.last, lastRun.pgsize == s { out[out.count - 1].count += 1 } else { out.append(PgsizeRun(pgsize: s, count: 1)) }
            iova += s
            pa += s
            left -= s
        }
        return out
    }

    func ioMerged(_ runs: [PgsizeRun]) -> [PgsizeRun] {
        var out: [PgsizeRun] = []
        for r in runs {
            if let lastRun = out.last, lastRun.pgsize == r.pgsize { out[out.count - 1].count += r.count } else { out.append(r) }
        }
        return out
    }

    func testRandomRangesMatchTheGreedyModel() {
        var rng = IOLCG(seed: 7)
        let amd = IOMMUFormatInfo.of(.amdV1).pgsizeBitmap
        // 150 ranges per format in swift test's three minutes; 3,000 with UMPTUI_LONG_TESTS=1.
        let count = ProcessInfo.processInfo.environment["UMPTUI_LONG_TESTS"] == "1" ? 3000 : 150
        for (name, bitmap) in [("vtd", vtd), ("v7s", v7s), ("4K|2M", k4 | m2), ("amd-v1", amd)] {
            for _ in 0..<count {
                // Offsets chosen near large boundaries so that large pages are possible but not certain.
                let iovaBase = rng.below(8) * g1 + rng.below(1024) * m2
                let shareOffset = rng.below(2) == 0
                let off = rng.below(512) * k4
                let iova = iovaBase + off
                let pa = rng.below(16) * g1 + rng.below(512) * m2 + (shareOffset ? off : rng.below(512) * k4)
                let size = (1 + rng.below(rng.below(8) == 0 ? 300_000 : 3000)) * k4
                let runs = iommuMapRuns(bitmap: bitmap, iova: iova, paddr: pa, size: size)
                let want = ioGreedy(bitmap: bitmap, iova: iova, pa: pa, size: size)
                if ioMerged(runs) != want {
                    XCTFail("\(name) iova=0x\(String(iova, radix: 16)) pa=0x\(String(pa, radix: 16)) size=0x\(String(size, radix: 16)): runs \(runs.map { "\(formatSizeShort($0.pgsize))×\($0.count)" }) vs greedy \(want.map { "\(formatSizeShort($0.pgsize))×\($0.count)" })")
                    return
                }
            }
        }
    }

    /// A large page is used only when iova and pa share the offset within it and the size covers it.
    func testLargePageOnlyWhenOffsetsAgreeAndSizeCovers() {
        // Same offset within 2M, size covers a whole aligned 2M page after the 4K head.
        XCTAssertTrue(iommuMapRuns(bitmap: vtd, iova: 0x1ff000, paddr: 0x5ff000, size: 2 * ioM + k4).contains { $0.pgsize == m2 })
        // Same offset, but the size stops short of a whole 2M page.
        XCTAssertEqual(iommuMapRuns(bitmap: vtd, iova: 0x1ff000, paddr: 0x5ff000, size: 2 * ioM), ioRuns([(k4, 512)]))
        // Offsets differ mod 2M by one page: never a 2M page, however large the size.
        XCTAssertEqual(iommuMapRuns(bitmap: vtd, iova: 0x200000, paddr: 0x201000, size: 64 * ioM), ioRuns([(k4, 16384)]))
        // Both aligned, exactly 2M.
        XCTAssertEqual(iommuMapRuns(bitmap: vtd, iova: 0x200000, paddr: 0x400000, size: 2 * ioM), ioRuns([(m2, 1)]))
        // A bitmap without 2M (pagesizes=4K) never gives one.
        XCTAssertEqual(iommuMapRuns(bitmap: k4, iova: 0, paddr: 0, size: 4 * ioM), ioRuns([(k4, 1024)]))
    }

    // MARK: - Through `map`: a linear buffer at chosen IOVAs

    /// A linear 4M UMP buffer (2M-aligned frames) mapped at IOVAs of different alignment.
    func testMapHonoursIOVAAndSplitsByItsAlignment() {
        var s = scenario("""
        machine ram=128M
        process app
        device gpu iommu=vtd
        device dsp iommu=vtd
        device isp iommu=vtd
        app ump-alloc u 4M linear
        """)
        let pa = UInt64(s.pageFrames("app", "u")[0]) << pageShift
        XCTAssertEqual(pa % (2 * ioM), 0, "a linear UMP buffer of 4M is at least 2M-aligned")
        s.ok("gpu map app.u iova=0x200000")
        XCTAssertEqual(s.ioptes("gpu"), ioRun(0x200000, pa, m2, count: 2))
        s.ok("dsp map app.u iova=0x1000")
        XCTAssertEqual(s.ioptes("dsp"), ioRun(0x1000, pa, k4, count: 1024))
        s.ok("isp map app.u iova=0x1ff000")
        // 0x1ff000 vs a 2M-aligned pa: offsets differ mod 2M, so 4K only.
        XCTAssertEqual(s.ioptes("isp"), ioRun(0x1ff000, pa, k4, count: 1024))
        XCTAssertEqual(s.mapping("isp", "app", "u")?.iova, 0x1ff000)
    }

    /// arm-v7s: 64K large pages when iova is only 64K-aligned against a 1M-aligned pa.
    func testV7sMapsWith64KWhenIOVAIsOnly64KAligned() {
        var s = scenario("""
        machine ram=64M
        process app
        device isp iommu=arm-v7s
        app ump-alloc u 1M linear
        """)
        let pa = UInt64(s.pageFrames("app", "u")[0]) << pageShift
        XCTAssertEqual(pa % m1, 0)
        s.ok("isp map app.u iova=0x10000")
        XCTAssertEqual(s.ioptes("isp"), ioRun(0x10000, pa, k64, count: 16))
    }

    /// The reference's v7s example through the Engine: a 2M+64K linear buffer at iova 0x10000 whose
    /// pa has the same offset within 1M gives 64K×15, 1M×1, 64K×2.
    func testV7sWorkedExampleThroughMap() {
        var s = scenario("""
        machine ram=64M
        process app
        device isp iommu=arm-v7s
        app ump-alloc u 4M linear
        """)
        let pa = UInt64(s.pageFrames("app", "u")[0]) << pageShift
        // Map the part of the buffer that starts 64K into it: pa ≡ 0x10000 (mod 1M), like iova.
        s.ok("isp map app.u 64K 2112K iova=0x10000")
        let pa0 = pa + 0x10000
        XCTAssertEqual(s.ioptes("isp"), ioRun(0x10000, pa0, k64, count: 15) + ioRun(0x100000, pa0 + 15 * k64, m1, count: 1)
                       + ioRun(0x200000, pa0 + 15 * k64 + m1, k64, count: 2))
    }
}
