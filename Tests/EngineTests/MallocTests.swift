// glibc malloc (reference §1.6): brk heap below M_MMAP_THRESHOLD, an mmap of its own at or
// above it (compared on the chunk size request2size(n)), the dynamic threshold, free.

import XCTest

@testable import Engine

final class MallocTests: XCTestCase {
    private func request2size(_ n: UInt64) -> UInt64 { max(32, (n + 8 + 15) & ~15) }

    // The first malloc makes the heap with brk: request + 128 KiB M_TOP_PAD + MINSIZE, page-aligned
    // (0x21000 for a small request); the tcache's 0x290-byte chunk comes first, so the first pointer
    // is heap start + 0x2a0; the next chunk follows directly.
    func testSmallMallocComesFromTheBrkHeap() {
        var r = run("""
            process app
            app malloc small 100
            """)
        let m = r.meta("app")
        let b = r.buffer("app", "small")
        XCTAssertEqual(b.kind, .heap)
        XCTAssertEqual(b.start, m.startBrk + 0x2a0)
        XCTAssertEqual(b.size, 100)
        XCTAssertEqual(m.brk, m.startBrk + 0x21000)
        XCTAssertEqual(r.vmas("app"), standardVMAs([VMAView(start: m.startBrk, end: m.startBrk + 0x21000, perms: "rw-p", flags: [.read, .write], kind: .heap)]))
        XCTAssertEqual(r.meta("app").vmas.first { $0.kind == .heap }?.label, "[heap]")
        r.step("app malloc next 200")
        XCTAssertEqual(r.buffer("app", "next").start, b.start + request2size(100))
        XCTAssertEqual(r.buffer("app", "next").kind, .heap)
        XCTAssertEqual(r.meta("app").brk, m.brk, "fits in the existing top chunk: no brk")
        XCTAssertEqual(r.meta("app").rssPages, 0, "malloc only reserves: no frame until the first touch")
    }

    // At or above the threshold (on the chunk size: malloc(128K − 8) already is 128 KiB of chunk):
    // an mmap of ALIGN_UP(request2size(n) + 8, 4096), the pointer 16 bytes past its start.
    func testLargeMallocGetsItsOwnMapping() {
        for n: UInt64 in [128 * KiB, 128 * KiB - 8, 1 * MiB + 1] {
            let r = run("""
                process app
                app malloc big \(n)
                """)
            let b = r.buffer("app", "big")
            let len = (request2size(n) + 8 + 4095) & ~4095
            XCTAssertEqual(b.kind, .mmap, "\(n)")
            XCTAssertEqual(b.chunkSize, len, "\(n)")
            XCTAssertEqual(b.start, b.chunkStart + 16, "\(n)")
            XCTAssertEqual(b.chunkStart, mmapBaseDefault - len, "\(n): top-down, right below mmap_base")
            XCTAssertEqual(r.vmas("app"), standardVMAs([.anon(b.chunkStart, b.chunkStart + len)]), "\(n): no heap")
        }
        // Just below: the chunk is 128 KiB − 16, from the heap.
        let r = run("""
            process app
            app malloc mid \(128 * KiB - 24)
            """)
        XCTAssertEqual(r.buffer("app", "mid").kind, .heap)
    }

    // free of an mmapped chunk larger than the threshold (and ≤ 32 MiB) raises M_MMAP_THRESHOLD to
    // its size and M_TRIM_THRESHOLD to twice that: the next malloc of that size comes from the heap.
    func testFreeOfAnMmappedChunkRaisesTheThreshold() {
        var r = run("""
            process app
            app malloc big 1M
            app write big
            """)
        let chunk = r.buffer("app", "big").chunkSize
        XCTAssertEqual(chunk, 1 * MiB + 4 * KiB)
        let free = r.state.phys.freeFrames
        r.step("app free big")
        XCTAssertEqual(r.last.outcome, .ok)
        XCTAssertEqual(r.meta("app").mmapThreshold, chunk)
        XCTAssertEqual(r.meta("app").trimThreshold, 2 * chunk)
        XCTAssertEqual(r.vmas("app"), standardVMAs(), "munmap_chunk unmaps it")
        XCTAssertEqual(r.state.phys.freeFrames, free + 257 + 1, "its 257 touched pages (the pointer is 16 bytes in) and its PTE table are freed")
        r.step("app malloc again 1M")
        XCTAssertEqual(r.buffer("app", "again").kind, .heap)
        r.step("app malloc bigger 2M")
        XCTAssertEqual(r.buffer("app", "bigger").kind, .mmap)
    }

    // A chunk above DEFAULT_MMAP_THRESHOLD_MAX (32 MiB on 64-bit) leaves the threshold alone.
    func testFreeOfAChunkAbove32MiBKeepsTheThreshold() {
        var r = run("""
            process app
            app malloc huge 40M
            """)
        r.step("app free huge")
        XCTAssertEqual(r.meta("app").mmapThreshold, 128 * KiB)
        r.step("app malloc again 1M")
        XCTAssertEqual(r.buffer("app", "again").kind, .mmap)
    }

    // free of a heap chunk only returns it to glibc's lists: the kernel is not told, pages stay present.
    func testFreeOfAHeapChunkKeepsItsPagesPresent() {
        var r = run("""
            process app
            app malloc a 64K
            app malloc guard 100
            app write a
            app write guard
            """)
        let vpns = r.vpns("app", "a")
        let ptes = r.ptes("app", vpns: vpns)
        XCTAssertTrue(ptes.allSatisfy { $0.present && $0.writable && !$0.zero })
        let phys = r.state.phys
        let pt = r.pt("app")
        let rss = r.meta("app").rssPages
        r.step("app free a")
        XCTAssertEqual(r.last.outcome, .ok)
        XCTAssertNil(r.meta("app").buffer(named: "a"))
        XCTAssertEqual(r.ptes("app", vpns: vpns), ptes)
        XCTAssertTrue(r.state.phys == phys, "no frame changes")
        XCTAssertTrue(r.pt("app") == pt, "no page-table changes")
        XCTAssertEqual(r.meta("app").rssPages, rss)
        // The freed chunk is reused by the next fitting malloc, pages already present.
        r.step("app malloc b 32K")
        XCTAssertEqual(r.buffer("app", "b").start, r.meta("app").startBrk + 0x2a0)
    }

    func testEveryMallocStepUndoesExactly() {
        assertEveryStepUndoes("""
            process app
            app malloc small 100
            app malloc a 64K
            app malloc guard 100
            app write a
            app free a
            app malloc b 32K
            app malloc big 1M
            app write big
            app free big
            app malloc again 1M
            app write again
            app free again
            app malloc huge 40M
            app free huge
            app fork kid
            kid free small
            """)
    }
}
