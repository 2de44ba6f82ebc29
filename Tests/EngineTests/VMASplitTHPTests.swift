// A VMA split through a THP splits the huge PMD first (__split_vma → vma_adjust_trans_huge →
// split_huge_pmd_if_needed, mm/vma.c:427, mm/huge_memory.c:2991): no PMD straddles two VMAs, so
// fork copies only what each VMA covers and exit frees every table it took. The selftest case:
// madvise(MADV_DONTFORK) on part of a THP, fork, the child exits (cow.c's and this machine's
// AnonHugePages goes from 2048 kB to 0 after the madvise).

import XCTest

@testable import Engine

final class VMASplitTHPTests: XCTestCase {
    /// Each way of splitting a VMA inside a THP, then fork and the child's exit.
    let splits = ["madvise buf dontfork 0 64K", "madvise buf dontfork 1M 4K", "mlock buf", "munmap buf 1M 8K",
                  "madvise buf dontneed 4K 4K"]

    func testASplitThroughATHPSplitsItsPMDAndForkAndExitStayConsistent() {
        for split in splits {
            let setup = """
                machine ram=64M thp=always memlock=64M
                process app
                app mmap buf 2M
                app write buf
                """
            var r = scenario(setup)
            let vpn0 = r.vpns("app", "buf")[0]
            XCTAssertNotNil(r.pt("app").hugePMDs[vpn0 >> 9], "\(split): a THP to start with")
            let rec = r.step("app " + (split.hasPrefix("mlock") ? "mlock buf" : split))
            XCTAssertEqual(rec.outcome, .ok, "\(split): \(rec.text)")
            if split == "mlock buf" {
                // mlock of the whole VMA splits nothing: the PMD stays.
                XCTAssertNotNil(r.pt("app").hugePMDs[vpn0 >> 9], split)
                continue
            }
            XCTAssertNil(r.pt("app").hugePMDs[vpn0 >> 9], "\(split): the boundary inside the THP split its PMD")
            XCTAssertGreaterThan(rec.events[.splitHugePMD], 0, "\(split): narrated as split_huge_pmd")
            // Still one large folio, now mapped by 512 PTEs (less what was unmapped).
            let head = r.ptes("app", "buf").first { $0.present }?.pfn ?? -1
            XCTAssertTrue(r.state.phys.flags[head & ~511] & FrameFlag.head != 0, "\(split): the folio stays large, PTE-mapped")
            XCTAssertEqual(r.step("app fork child").outcome, .ok, split)
            // The child maps only the VMAs it inherited, page by page.
            let childVMAs = r.meta("child").vmas.filter { $0.start >= vpn0 << pageShift && $0.start < (vpn0 << pageShift) + 2 * MiB }
            for v in childVMAs {
                XCTAssertFalse(v.flags.contains(.dontcopy), split)
            }
            XCTAssertTrue(r.pt("child").hugePMDs.isEmpty, "\(split): no PMD copied into a VMA smaller than it")
            XCTAssertEqual(r.step("child exit").outcome, .ok, split)
            XCTAssertEqual(r.step("app exit").outcome, .ok, split)
            XCTAssertEqual((0..<r.state.phys.frameCount).filter { r.state.phys.frameUse($0) == .anon }.count, 0,
                           "\(split): every anonymous frame is freed once both have exited")
        }
    }

    func testEverySplitUndoesExactly() {
        for split in splits {
            assertEveryStepUndoes("""
                machine ram=64M thp=always memlock=64M
                process app
                app mmap buf 4M
                app write buf
                app \(split)
                app fork child
                child write buf 0 8K
                child exit
                app write buf
                """)
        }
    }
}

extension VMASplitTHPTests {
    /// A PTE-mapped subpage of a large folio after fork: AnonExclusive is cleared, so the child's
    /// exit does not make it exclusive again, and the parent's write takes the non-exclusive path,
    /// where wp_can_reuse_anon_folio refuses any large folio (mm/memory.c:3596): the subpage is
    /// copied although nobody else maps it. An exclusive subpage is reused whatever the folio size.
    func testASharedSubpageOfALargeFolioIsCopiedEvenWhenAlone() {
        var r = scenario("""
            machine ram=64M thp=always
            process app
            app mmap buf 2M
            app write buf
            app madvise buf dontneed 1M 4K
            """)
        XCTAssertNil(r.pt("app").hugePMDs[r.vpns("app", "buf")[0] >> 9], "the partial dontneed split the PMD")
        let before = r.pageFrames("app", "buf")[0]
        // Exclusive subpage: already writable, the write does not even fault.
        XCTAssertEqual(r.step("app write buf 0 4K").events[.alreadyMapped], 1)
        _ = r.step("app fork child")
        _ = r.step("child exit")
        let rec = r.step("app write buf 0 4K")
        XCTAssertEqual(rec.events[.wpPageCopy(.largeFolio)], 1, "copied, not reused: \(rec.text)")
        XCTAssertEqual(rec.events[.wpPageReuse(.refcount)], 0)
        XCTAssertNotEqual(r.pageFrames("app", "buf")[0], before)
    }
}
