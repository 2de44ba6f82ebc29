// VMA placement, splitting and merging (mm/mmap.c, mm/vma.c): top-down placement below
// mmap_base, vma_merge of compatible neighbours, split_vma on madvise/munmap of a part.

import XCTest

@testable import Engine

final class VMATests: XCTestCase {
    // Two consecutive private anonymous mmaps: the second sits right below the first (top-down)
    // and the two merge into one VMA.
    func testConsecutiveMmapsOfTheSameKindMergeIntoOneVMA() {
        let r = run("""
            process app
            app mmap a 64K
            app mmap b 64K
            """)
        let base = mmapBaseDefault
        XCTAssertEqual(r.buffer("app", "a").start, base - 64 * KiB)
        XCTAssertEqual(r.buffer("app", "b").start, base - 128 * KiB)
        XCTAssertEqual(r.vmas("app"), standardVMAs([.anon(base - 128 * KiB, base)]))
    }

    // A written VMA (with an anon_vma) still merges with a new neighbour in the process that created it.
    func testMmapNextToAWrittenVMAMerges() {
        let r = run("""
            process app
            app mmap a 64K
            app write a
            app mmap b 64K
            """)
        let base = mmapBaseDefault
        XCTAssertEqual(r.vmas("app"), standardVMAs([.anon(base - 128 * KiB, base)]))
    }

    // Shared anonymous mappings are separate shmem files: they never merge.
    func testSharedMappingsDoNotMerge() {
        let r = run("""
            process app
            app mmap a 64K shared
            app mmap b 64K shared
            """)
        let base = mmapBaseDefault
        XCTAssertEqual(r.vmas("app"), standardVMAs([.anon(base - 128 * KiB, base - 64 * KiB, .shared), .anon(base - 64 * KiB, base, .shared)]))
    }

    // Different flags (VM_LOCKED) do not merge.
    func testMappingsWithDifferentFlagsDoNotMerge() {
        let r = run("""
            process app
            app mmap a 64K
            app mmap b 64K locked
            """)
        let base = mmapBaseDefault
        XCTAssertEqual(r.vmas("app"), standardVMAs([.anon(base - 128 * KiB, base - 64 * KiB, .locked), .anon(base - 64 * KiB, base)]))
    }

    // madvise on the middle of a VMA splits it into three; the opposite advice merges them back.
    func testMadviseSplitsIntoThreeAndUndoingMergesBack() {
        var r = run("""
            process app
            app mmap buf 64K
            app write buf
            """)
        let s = r.buffer("app", "buf").start
        let whole = standardVMAs([.anon(s, s + 64 * KiB)])
        XCTAssertEqual(r.vmas("app"), whole)
        r.step("app madvise buf dontfork 16K 16K")
        XCTAssertEqual(r.last.outcome, .ok)
        XCTAssertEqual(r.vmas("app"), standardVMAs([.anon(s, s + 16 * KiB), .anon(s + 16 * KiB, s + 32 * KiB, .dontcopy), .anon(s + 32 * KiB, s + 64 * KiB)]))
        r.step("app madvise buf dofork 16K 16K")
        XCTAssertEqual(r.vmas("app"), whole)
        r.step("app madvise buf hugepage 0 16K")
        XCTAssertEqual(r.vmas("app"), standardVMAs([.anon(s, s + 16 * KiB, .hugepage), .anon(s + 16 * KiB, s + 64 * KiB)]))
    }

    // munmap of the middle leaves two VMAs; the pages there are gone, the others untouched.
    func testMunmapOfTheMiddleLeavesTwoVMAs() {
        var r = run("""
            process app
            app mmap buf 64K
            app write buf
            """)
        let s = r.buffer("app", "buf").start
        let pfns = r.pfns("app", "buf")
        r.step("app munmap buf 16K 16K")
        XCTAssertEqual(r.last.outcome, .ok)
        XCTAssertEqual(r.vmas("app"), standardVMAs([.anon(s, s + 16 * KiB), .anon(s + 32 * KiB, s + 64 * KiB)]))
        let expected = pfns.enumerated().map { i, pfn in (4..<8).contains(i) ? PTEView.none : .page(pfn, writable: true) }
        XCTAssertEqual(r.ptes("app", "buf"), expected)
        XCTAssertEqual(pfns[4..<8].map(r.frame), Array(repeating: .free, count: 4))
        XCTAssertEqual(r.meta("app").rssPages, 12)
    }

    // munmap of the whole buffer removes the VMA and frees the page tables no VMA covers any more
    // (free_pgtables): the PTE table goes; the PMD and PUD tables stay, because the stack VMA lies
    // in the same 1 GiB region (the ceiling passed to free_pgd_range).
    func testMunmapOfEverythingFreesThePageTablesNoVMANeeds() {
        var r = run("""
            process app
            app mmap buf 64K
            app write buf
            """)
        XCTAssertEqual(r.meta("app").pageTablePages, 4)
        let pteTable = Int(r.pt("app").tables.values.first!.pfn)
        r.step("app munmap buf")
        XCTAssertEqual(r.vmas("app"), standardVMAs())
        XCTAssertEqual(stackTop >> 30, mmapBaseDefault >> 30, "precondition: the stack shares the 1 GiB region")
        XCTAssertEqual(r.meta("app").pageTablePages, 3)
        XCTAssertTrue(r.pt("app").tables.isEmpty)
        XCTAssertEqual(r.frame(pteTable), .free)
        XCTAssertEqual(tableFrames(r.pt("app")).count, 3)
        XCTAssertNil(r.meta("app").buffer(named: "buf"))
    }

    // A VMA inherited through fork has an anon_vma chain of two (its own and the parent's);
    // is_mergeable_anon_vma refuses to merge a new VMA into such a cloned VMA
    // (list_is_singular(&vma->anon_vma_chain), "mmap: avoid merging cloned VMAs").
    func testNewMappingDoesNotMergeIntoAVMAClonedByFork() {
        var r = run("""
            process app
            app mmap a 64K
            app write a
            app fork kid
            """)
        let base = mmapBaseDefault
        r.step("kid mmap b 64K")
        XCTAssertEqual(r.buffer("kid", "b").start, base - 128 * KiB)
        XCTAssertEqual(r.vmas("kid"), standardVMAs([.anon(base - 128 * KiB, base - 64 * KiB), .anon(base - 64 * KiB, base)]))
    }

    // A new VMA exactly filling the gap between two neighbours whose anon_vmas differ cannot merge
    // with both (prev and next would have to share an anon_vma); vma_merge then merges it with the
    // previous (lower) VMA only (6.12 vma_merge_new_range: can_vma_merge_right checks
    // are_anon_vmas_compatible(prev, next) when the merge would delete next).
    func testNewVMABetweenIncompatibleNeighboursMergesWithThePreviousOne() {
        var r = run("""
            process app
            app mmap x 64K
            app write x
            app mmap sep 64K locked
            app mmap y 64K
            app write y
            app munmap sep
            """)
        let base = mmapBaseDefault
        XCTAssertEqual(r.vmas("app"), standardVMAs([.anon(base - 192 * KiB, base - 128 * KiB), .anon(base - 64 * KiB, base)]))
        r.step("app mmap n 64K")
        XCTAssertEqual(r.buffer("app", "n").start, base - 128 * KiB, "precondition: n fills the gap")
        XCTAssertEqual(r.vmas("app"), standardVMAs([.anon(base - 192 * KiB, base - 64 * KiB), .anon(base - 64 * KiB, base)]))
    }

    func testEveryVMAStepUndoesExactly() {
        assertEveryStepUndoes("""
            process app
            app mmap a 64K
            app mmap b 64K
            app write a
            app mmap c 64K shared
            app mmap d 64K locked
            app madvise b dontfork 16K 16K
            app madvise b dofork 16K 16K
            app madvise a hugepage 0 16K
            app munmap b 16K 16K
            app munmap a
            app fork kid
            kid mmap e 64K
            """)
    }
}
