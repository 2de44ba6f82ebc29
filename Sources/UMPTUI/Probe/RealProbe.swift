// The real-kernel probe, Swift side: a tiny op script on one mapping (anonymous private, or a
// memfd mapped shared), run for real (CProbe: mmap, touch, fork, madvise, mprotect, mremap,
// vmsplice, io_uring buffer registration for pins; /proc/self/pagemap, /proc/kpageflags, smaps'
// AnonHugePages and VmPin) and written out as an UMPTUI scenario so the Engine can run the same
// actions. ProbeComparison.swift compares the two.

import CProbe
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Who performs an op. Before `fork` only the parent exists.
public enum ProbeActor: String, Sendable, Hashable, CaseIterable {
    case parent, child
}

/// One action of a probe script, on page indices of the script's single buffer.
public struct ProbeOp: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case read, write, fork, dontneed, pin
        case mprotectR = "mprotect-r", mprotectRW = "mprotect-rw", vmsplice, pageout
        case mremap, collapse, dontfork
    }

    public var kind: Kind
    public var actor: ProbeActor
    /// Page indices (ignored for `fork`; for `mremap`, 0..<new size in pages).
    public var pages: Range<Int>
    /// `mremap` only: MREMAP_MAYMOVE.
    public var mayMove: Bool

    public init(_ kind: Kind, by actor: ProbeActor = .parent, pages: Range<Int> = 0..<0, mayMove: Bool = false) {
        self.kind = kind
        self.actor = actor
        self.pages = kind == .fork ? 0..<0 : pages
        self.mayMove = kind == .mremap && mayMove
    }

    /// Touch each page for reading (a volatile load).
    public static func read(_ pages: Range<Int>, by actor: ProbeActor = .parent) -> ProbeOp {
        ProbeOp(.read, by: actor, pages: pages)
    }
    /// Write one byte to each page.
    public static func write(_ pages: Range<Int>, by actor: ProbeActor = .parent) -> ProbeOp {
        ProbeOp(.write, by: actor, pages: pages)
    }
    /// madvise(MADV_DONTNEED) on the pages.
    public static func dontneed(_ pages: Range<Int>, by actor: ProbeActor = .parent) -> ProbeOp {
        ProbeOp(.dontneed, by: actor, pages: pages)
    }
    /// Pin the pages long-term for writing, as io_uring buffer registration does
    /// (pin_user_pages(FOLL_PIN|FOLL_LONGTERM|FOLL_WRITE), charged to the process's pinned_vm); the
    /// pin lasts until the final snapshot. Scenario text: `PROC pin BUF OFFSET SIZE write longterm`.
    public static func pin(_ pages: Range<Int>, by actor: ProbeActor = .parent) -> ProbeOp {
        ProbeOp(.pin, by: actor, pages: pages)
    }
    /// mprotect(PROT_READ) / mprotect(PROT_READ|PROT_WRITE) on the pages.
    public static func mprotect(_ pages: Range<Int>, writable: Bool, by actor: ProbeActor = .parent) -> ProbeOp {
        ProbeOp(writable ? .mprotectRW : .mprotectR, by: actor, pages: pages)
    }
    /// vmsplice(2) of the pages (at most 16) into a new pipe held open to the end: FOLL_GET references.
    public static func vmsplice(_ pages: Range<Int>, by actor: ProbeActor = .parent) -> ProbeOp {
        ProbeOp(.vmsplice, by: actor, pages: pages)
    }
    /// madvise(MADV_PAGEOUT) on the pages: reclaim them to swap now.
    public static func pageout(_ pages: Range<Int>, by actor: ProbeActor = .parent) -> ProbeOp {
        ProbeOp(.pageout, by: actor, pages: pages)
    }
    /// mremap(2) of the actor's whole buffer to `pages` pages, MREMAP_MAYMOVE with `move`.
    public static func mremap(to pages: Int, move: Bool, by actor: ProbeActor = .parent) -> ProbeOp {
        ProbeOp(.mremap, by: actor, pages: 0..<pages, mayMove: move)
    }
    /// madvise(MADV_COLLAPSE) on the pages: khugepaged's collapse, now.
    public static func collapse(_ pages: Range<Int>, by actor: ProbeActor = .parent) -> ProbeOp {
        ProbeOp(.collapse, by: actor, pages: pages)
    }
    /// madvise(MADV_DONTFORK) on the pages: the VMA splits, and fork() leaves them out.
    public static func dontfork(_ pages: Range<Int>, by actor: ProbeActor = .parent) -> ProbeOp {
        ProbeOp(.dontfork, by: actor, pages: pages)
    }
    /// The parent forks the child (at most once per script).
    public static let fork = ProbeOp(.fork)

    public var description: String {
        switch kind {
        case .fork: return "\(actor.rawValue) fork"
        case .mremap: return "\(actor.rawValue) mremap to \(pages.count) pages\(mayMove ? " (MREMAP_MAYMOVE)" : "")"
        default: return "\(actor.rawValue) \(kind.rawValue) \(ProbeScript.pageRangeText(pages))"
        }
    }
}

/// A difference between the Engine (Linux 6.12) and a newer running kernel that a later kernel
/// change explains: from `since` on, the comparison expects exactly these mismatch lines and reports
/// them as explained instead of as disagreements (and reports it if they do not appear).
public struct LaterKernelChange: Sendable, Hashable {
    public var since: KernelVersion
    /// The mismatch lines the change causes, as ProbeComparison writes them.
    public var mismatches: [String]
    /// What changed, with the upstream function or commit.
    public var why: String

    public init(since: KernelVersion, mismatches: [String], why: String) {
        self.since = since
        self.mismatches = mismatches
        self.why = why
    }
}

/// major.minor of a Linux release.
public struct KernelVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public init(_ major: Int, _ minor: Int) {
        self.major = major
        self.minor = minor
    }
    public static func < (a: KernelVersion, b: KernelVersion) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
    public var description: String { "\(major).\(minor)" }

    /// "6.18.44-fc-v1045" → 6.18; nil when the text does not start with two numbers.
    public init?(release: String) {
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard parts.count == 2 else { return nil }
        self.init(parts[0], parts[1])
    }

    /// The running kernel (uname -r); nil when it cannot be read.
    public static var running: KernelVersion? {
        #if canImport(Glibc)
        var u = utsname()
        guard uname(&u) == 0 else { return nil }
        let release = withUnsafeBytes(of: u.release) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
        return KernelVersion(release: release)
        #else
        return nil
        #endif
    }
}

/// A probe script: `npages` pages mmap'd by the parent, then `ops` in order; the final snapshot is implicit.
public struct ProbeScript: Sendable, Hashable {
    /// The Engine models 4 KiB pages; the probe refuses to run with another base page size.
    public static let pageSize = 4096

    public var name: String
    /// One line saying what the script shows.
    public var summary: String
    public var npages: Int
    public var ops: [ProbeOp]
    /// Names used in the scenario text (and looked up in the Engine's state).
    public var bufferName: String

    /// What backs the buffer: anonymous private memory, or a memfd (shmem) mapped shared.
    public enum Backing: Sendable, Hashable { case anonymous, memfd }
    /// The THP advice right after mmap: MADV_NOHUGEPAGE (small pages only, the classic probe), none
    /// (the sysfs settings decide), or MADV_HUGEPAGE.
    public enum THPAdvice: Sendable, Hashable { case nohugepage, none, hugepage }

    public var backing: Backing
    public var thp: THPAdvice
    /// The buffer starts at a multiple of this many pages (512: a 2 MiB boundary, so a THP fits).
    public var alignPages: Int
    /// The mapping's first size in pages (nil: npages); `mremap` may change it up to npages.
    public var initialPages: Int?
    /// A multi-size THP size (KiB) the probe turns on (`always`) for the run and restores after.
    public var mthpKB: Int?
    /// The values of /sys/kernel/mm/transparent_hugepage/enabled the script is valid under (nil: any;
    /// classic scripts use MADV_NOHUGEPAGE, which no setting overrides).
    public var thpModes: Set<String>?
    /// Differences a kernel newer than 6.12 shows for this script, explained.
    public var laterChanges: [LaterKernelChange]

    public init(name: String, summary: String = "", npages: Int, ops: [ProbeOp], bufferName: String = "buf",
                backing: Backing = .anonymous, thp: THPAdvice = .nohugepage, alignPages: Int = 1,
                initialPages: Int? = nil, mthpKB: Int? = nil, thpModes: Set<String>? = nil,
                laterChanges: [LaterKernelChange] = []) {
        self.name = name
        self.summary = summary
        self.npages = npages
        self.ops = ops
        self.bufferName = bufferName
        self.backing = backing
        self.thp = thp
        self.alignPages = alignPages
        self.initialPages = initialPages
        self.mthpKB = mthpKB
        self.thpModes = thpModes
        self.laterChanges = laterChanges
    }

    public var forks: Bool { ops.contains { $0.kind == .fork } }
    /// The script pins pages (needs io_uring for real).
    public var pins: Bool { ops.contains { $0.kind == .pin } }
    /// The script pages out (needs swap for real, and the twin machine gets some).
    public var needsSwap: Bool { ops.contains { $0.kind == .pageout } }
    /// The script remaps (the twin maps a guard VMA above the buffer, as the C side's reservation is).
    public var remaps: Bool { ops.contains { $0.kind == .mremap } }
    /// The script expects THPs (PMD-sized folios) from the kernel.
    public var expectsTHP: Bool { thp == .hugepage || ops.contains { $0.kind == .collapse } }

    /// Why this machine cannot run the script for real, or nil when it can. `swap`: the machine has
    /// swap space; `thpMode`: the bracketed word of transparent_hugepage/enabled (nil: no THP);
    /// `mthpModes`: the sizes (KiB) whose hugepages-<size>kB/enabled knob exists.
    public func unavailableReason(swap: Bool, thpMode: String?, mthpKnobs: Set<Int>) -> String? {
        if needsSwap && !swap {
            return "this machine has no swap (/proc/swaps lists none), so MADV_PAGEOUT cannot page anything out (a swap file turned on with mkswap and swapon is enough)"
        }
        if let modes = thpModes {
            guard let mode = thpMode else { return "this kernel has no transparent huge pages (/sys/kernel/mm/transparent_hugepage)" }
            if !modes.contains(mode) {
                return "transparent_hugepage/enabled is [\(mode)] here; the script is written for \(modes.sorted().joined(separator: " or "))"
            }
        }
        if let kb = mthpKB, !mthpKnobs.contains(kb) {
            return "this kernel has no multi-size THP knob for \(kb) KiB (/sys/kernel/mm/transparent_hugepage/hugepages-\(kb)kB)"
        }
        return nil
    }

    /// The same actions in the UMPTUI scenario language (SCENARIO.md), for `umptui run`.
    public var scenarioText: String {
        var lines: [String] = []
        lines.append("# probe script \"\(name)\"" + (summary.isEmpty ? "" : ": \(summary)"))
        var machine = "machine ram=64M thp=" + (thp == .nohugepage ? "never" : "madvise")
        if let kb = mthpKB { machine += " mthp=\(kb)K" }
        if needsSwap { machine += " swap=64M" }
        lines.append(machine)
        let parent = ProbeActor.parent.rawValue
        lines.append("process \(parent)")
        if remaps {
            lines.append("\(parent) mmap guard 4K prot=none  # the C side's reservation above the buffer: it cannot grow in place")
        }
        let size = Self.bytesText(initialPages ?? npages)
        switch backing {
        case .anonymous:
            lines.append("\(parent) mmap \(bufferName) \(size)" + (thp == .hugepage ? " hugepage" : ""))
        case .memfd:
            lines.append("\(parent) memfd \(bufferName) \(size)")
        }
        var pipes = 0
        for op in ops {
            let who = op.actor.rawValue
            let range = "\(Self.bytesText(op.pages.lowerBound)) \(Self.bytesText(op.pages.count))"
            let comment = "  # \(Self.pageRangeText(op.pages))"
            switch op.kind {
            case .mremap:
                lines.append("\(who) mremap \(bufferName) \(Self.bytesText(op.pages.count))" + (op.mayMove ? " move" : ""))
            case .collapse:
                lines.append("\(who) madvise \(bufferName) collapse \(range)" + comment)
            case .dontfork:
                lines.append("\(who) madvise \(bufferName) dontfork \(range)" + comment)
            case .fork:
                lines.append("\(who) fork \(ProbeActor.child.rawValue)")
            case .read:
                lines.append("\(who) read \(bufferName) \(range)" + comment)
            case .write:
                lines.append("\(who) write \(bufferName) \(range)" + comment)
            case .dontneed:
                lines.append("\(who) madvise \(bufferName) dontneed \(range)" + comment)
            case .pin:
                // The C side registers the range with io_uring, a ring of its own per op.
                lines.append("\(who) uring-register \(bufferName) \(range)" + comment)
            case .mprotectR:
                lines.append("\(who) mprotect \(bufferName) \(range) r" + comment)
            case .mprotectRW:
                lines.append("\(who) mprotect \(bufferName) \(range) rw" + comment)
            case .pageout:
                lines.append("\(who) madvise \(bufferName) pageout \(range)" + comment)
            case .vmsplice:
                pipes += 1
                lines.append("\(who) vmsplice \(bufferName) \(range) pipe=p\(pipes)" + comment)
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `n` pages as a scenario size: `0`, `4K`, `64K`, `1M`.
    static func bytesText(_ pages: Int) -> String {
        let bytes = pages * pageSize
        if bytes == 0 { return "0" }
        if bytes % (1 << 20) == 0 { return "\(bytes >> 20)M" }
        return "\(bytes >> 10)K"
    }

    /// `page 3` / `pages 0-3` / `no pages`.
    static func pageRangeText(_ pages: Range<Int>) -> String {
        switch pages.count {
        case 0: return "no pages"
        case 1: return "page \(pages.lowerBound)"
        default: return "pages \(pages.lowerBound)-\(pages.upperBound - 1)"
        }
    }

    /// The fork-and-write script: zero-page reads, private writes, fork, COW breaks on both sides,
    /// MADV_DONTNEED in the parent, a child-only zero-page read, and an untouched page.
    public static let standard = ProbeScript(
        name: "standard",
        summary: "fork after reads and writes, COW on both sides, MADV_DONTNEED in the parent",
        npages: 16,
        ops: [
            .read(0..<4),                // 0-3: zero page in the parent; copied to the child at fork
            .write(4..<13),              // 4-12: private pages (the VMA now has an anon_vma)
            .read(13..<14),              // 13: zero page
            .fork,
            .write(8..<10, by: .child),  // 8-9: child copies; the parent's pages are exclusive again
            .write(10..<12),             // 10-11: parent copies; the child's pages are exclusive again
            .dontneed(12..<13),          // 12: gone from the parent; the child's page is exclusive
            .write(13..<14, by: .child), // 13: child gets a fresh zeroed page; parent keeps the zero page
            .read(14..<15, by: .child),  // 14: zero page in the child only
            // 15: never touched
        ]
    )

    /// The parent only reads before fork: the VMA has no anon_vma, so fork() copies no page tables
    /// and the child starts with nothing present (it faults the zero page in by itself).
    public static let readOnlyBeforeFork = ProbeScript(
        name: "read-only-before-fork",
        summary: "the parent only reads before fork: no anon_vma, so the child gets no page tables",
        npages: 16,
        ops: [
            .read(0..<8),                // 0-7: zero page in the parent
            .fork,
            .read(0..<2, by: .child),    // 0-1: the child faults the zero page itself
            .write(2..<4),               // 2-3: parent private pages; the child still has nothing
            .write(4..<5, by: .child),   // 4: child private page; the parent keeps the zero page
            // 5-7: parent zero page, child not present; 8-15: never touched
        ]
    )

    /// Long-term pins (io_uring buffer registration) before fork: fork copies the possibly pinned
    /// exclusive pages for the child at once (6.x, folio_needs_cow_for_dma), so the parent keeps its
    /// pinned frames mapped and exclusive; pinned_vm is charged to the parent's mm only.
    public static let pinBeforeFork = ProbeScript(
        name: "pin-before-fork",
        summary: "io_uring pins before fork: the child gets copies of the pinned pages at fork; pinned_vm stays with the parent",
        npages: 16,
        ops: [
            .write(0..<6),               // 0-5: private pages
            .read(6..<8),                // 6-7: zero page
            .pin(3..<10),                // 3-9: pinned (write longterm): 6-7 COW from the zero page, 8-9 fault in
            .read(10..<12),              // 10-11: zero page
            .fork,                       // 0-2 shared; 3-9 copied for the child now; 10-11 zero in both
            .write(4..<5, by: .child),   // 4: a pinned page: the child's own copy, no fault on the parent's
            .write(1..<2, by: .child),   // 1: an unpinned page: COW, both exclusive again
            .write(5..<6),               // 5: a pinned page: the parent's is still exclusive, written in place
            // 12-15: never touched
        ]
    )

    /// mprotect after fork: taking write away and giving it back leaves the pages fork shared
    /// read-only (can_change_pte_writable only makes PageAnonExclusive pages writable), so the
    /// next writes still copy; a page the parent alone had written since is reused in place.
    public static let mprotectAfterFork = ProbeScript(
        name: "mprotect-after-fork",
        summary: "mprotect r then rw after fork: shared pages stay COW, written pages stay exclusive",
        npages: 16,
        ops: [
            .write(0..<8),                       // 0-7: private pages
            .read(8..<10),                       // 8-9: zero page
            .fork,                               // 0-7 shared read-only; 8-9 zero in both
            .write(6..<8),                       // 6-7: the parent copies; both exclusive
            .mprotect(0..<10, writable: false),  // the parent's range read-only
            .mprotect(0..<10, writable: true),   // and writable again: 6-7 writable at once, 0-5 still COW
            .write(0..<2, by: .child),           // 0-1: the child copies
            .write(2..<4),                       // 2-3: the parent copies
            .write(8..<9),                       // 8: a zero-page PTE: a fresh page for the parent
            // 4-5 shared; 9 zero in both; 10-15 never touched
        ]
    )

    /// The CVE-2020-29374 shape with vmsplice: the child splices two shared pages into a pipe
    /// and drops its mapping; the parent's writes then copy (6.x: the pipe's references keep
    /// the refcount up) and the pipe keeps the old pages.
    public static let vmspliceAfterFork = ProbeScript(
        name: "vmsplice-after-fork",
        summary: "the child vmsplices shared pages and drops them; the parent's write copies",
        npages: 8,
        ops: [
            .write(0..<4),                   // 0-3: private pages
            .fork,                           // shared read-only
            .vmsplice(0..<2, by: .child),    // the pipe takes references (FOLL_GET); nothing unshared
            .dontneed(0..<2, by: .child),    // the child's mapping goes; the pipe still holds the pages
            .write(0..<2),                   // 0-1: the parent copies (refcount 2: the pipe's)
            // 2-3 shared; 4-7 never touched
        ]
    )

    /// MADV_PAGEOUT after fork: a page the parent alone maps goes to swap; one the child maps
    /// too stays (folio_likely_mapped_shared); a zero page has nothing to swap.
    public static let pageoutAfterFork = ProbeScript(
        name: "pageout-after-fork",
        summary: "MADV_PAGEOUT: private pages go to swap, pages shared since fork stay",
        npages: 8,
        ops: [
            .write(0..<4),                // 0-3: private pages
            .read(4..<5),                 // 4: zero page
            .fork,                        // 0-3 shared
            .write(0..<2),                // 0-1: the parent copies: its own again
            .pageout(0..<5),              // 0-1 swapped out; 2-3 shared, left; 4 the zero page
            // 5-7 never touched
        ]
    )

    /// mremap after fork: the parent's buffer grows and moves (MREMAP_MAYMOVE; something lies above
    /// it), taking its page tables along, so the pages fork shared stay shared and the next write
    /// copies; the child shrinks its own mapping, which only unmaps its tail.
    public static let mremapAfterFork = ProbeScript(
        name: "mremap-after-fork",
        summary: "mremap grows and moves the parent's buffer: its page tables move, shared pages stay COW",
        npages: 24,
        ops: [
            .write(0..<8),                        // 0-7: private pages
            .read(8..<10),                        // 8-9: zero page
            .fork,                                // 0-7 shared; 8-9 zero in both
            .mremap(to: 24, move: true),          // the parent's 16 pages move to a new 24-page VMA
            .write(0..<2),                        // 0-1: the parent copies at the new address
            .write(4..<5, by: .child),            // 4: the child copies; the parent's is exclusive again
            .write(16..<18),                      // 16-17: the grown part: fresh pages
            .mremap(to: 12, move: true, by: .child), // the child unmaps its pages 12-15
            // 2-3, 5-7 shared; 8-9 zero in both; 18-23 never touched
        ],
        initialPages: 16
    )

    /// MADV_COLLAPSE then fork: a synchronous collapse copies four written pages and a zero page
    /// into a new THP; fork shares the huge PMD; the child's write splits its own PMD and copies one
    /// 4 KiB page, while the parent keeps the PMD.
    public static let collapseThenFork = ProbeScript(
        name: "collapse-then-fork",
        summary: "MADV_COLLAPSE builds a THP; after fork the child's write splits its PMD and copies 4 KiB",
        npages: 512,
        ops: [
            .write(0..<4),                 // 0-3: private pages (no THP at fault: no MADV_HUGEPAGE)
            .read(4..<5),                  // 4: zero page
            .collapse(0..<512),            // one THP, PMD-mapped; the rest of it zero-filled
            .fork,                         // the huge PMD shared, write-protected
            .write(5..<6, by: .child),     // the child splits its PMD and copies page 5
        ],
        thp: .none,
        alignPages: 512,
        thpModes: ["madvise", "never"],
        laterChanges: [
            LaterKernelChange(
                since: KernelVersion(6, 15),
                mismatches: ["page 5: parent exclusive engine=true kernel=false"],
                why: "since 6.15 pagemap_pmd_range reports the exclusive bit of the page at the start of the walk for every page of a PMD mapping (__folio_page_mapped_exclusively(folio, page), fs/proc/task_mmu.c), where 6.12 asked per page (folio_precise_page_mapcount(folio, page + idx)); the mapping itself is the same")
        ]
    )

    /// Multi-size THP (64 KiB set to `always` for the run): a write fault maps a whole 16-page
    /// folio; fork shares it; writes to shared subpages copy 4 KiB. Once the child drops its part,
    /// 6.12 still copies on the parent's write (a large folio is not reused unless the page is
    /// PageAnonExclusive), where 6.15+ reuses it.
    public static let mthpFork = ProbeScript(
        name: "mthp-fork",
        summary: "64 KiB mTHP: one fault maps 16 pages; after fork, writes copy 4 KiB subpages",
        npages: 512,
        ops: [
            .write(0..<1),                  // 0-15: one 64 KiB folio
            .read(16..<17),                 // 16: zero page
            .write(17..<18),                // 17: 16-31 is not all none: a 4 KiB page
            .fork,                          // the folio shared
            .write(3..<4, by: .child),      // 3: the child copies
            .write(4..<5),                  // 4: the parent copies (the child still maps the folio)
            .dontneed(0..<16, by: .child),  // the child drops its part: the parent alone maps the folio
            .write(5..<6),                  // 5: 6.12 copies; 6.15+ reuses the folio
        ],
        thp: .none,
        alignPages: 512,
        mthpKB: 64,
        thpModes: ["madvise", "never"],
        laterChanges: [
            LaterKernelChange(
                since: KernelVersion(6, 15),
                mismatches: ["page 5: parent folio engine=1 kernel=16"],
                why: "6.15 reuses a large anonymous folio on a write fault when this mm alone maps it (__wp_can_reuse_large_anon_folio, mm/memory.c, with CONFIG_MM_ID), where 6.12's wp_can_reuse_anon_folio refuses every large folio whose page is not PageAnonExclusive and copies")
        ]
    )

    /// A memfd mapped shared: writes and reads fill the page cache; fork copies no page tables (the
    /// mapping is shared, no anon_vma), so the child's first read fault maps every cached page
    /// around it (fault-around) and its write allocates into the same file: one frame for both.
    public static let memfdSharedFork = ProbeScript(
        name: "memfd-shared-fork",
        summary: "memfd MAP_SHARED: fork copies no page tables; the child's read fault maps the cached pages around it",
        npages: 16,
        ops: [
            .write(0..<4),                 // 0-3: page-cache pages, written
            .read(8..<9),                  // 8: shmem allocates a page (no zero page for shmem)
            .fork,                         // nothing copied: a shared mapping without anon_vma
            .read(0..<1, by: .child),      // fault-around maps 0-3 and 8, the cached pages of the window
            .write(12..<13, by: .child),   // 12: a new page-cache page; the parent has not mapped it
        ],
        backing: .memfd
    )

    /// A VMA split through a THP: MADV_DONTFORK on the first half of a PMD-mapped THP splits the VMA,
    /// and with it the huge PMD (vma_adjust_trans_huge); fork then leaves the first half out and
    /// shares the second, PTE-mapped.
    public static let splitTHPThenFork = ProbeScript(
        name: "split-thp-then-fork",
        summary: "MADV_DONTFORK on half a THP splits its PMD; the child gets only the other half",
        npages: 512,
        ops: [
            .write(0..<1),                 // 0-511: a THP fault (MADV_HUGEPAGE)
            .dontfork(0..<256),            // the VMA splits at 1 MiB: the PMD is split to PTEs
            .fork,                         // the child maps 256-511 only
            .write(300..<301, by: .child), // 300: the child copies
        ],
        thp: .hugepage,
        alignPages: 512,
        thpModes: ["madvise", "always"]
    )

    public static let all: [ProbeScript] = [standard, readOnlyBeforeFork, pinBeforeFork, mprotectAfterFork, vmspliceAfterFork,
                                            pageoutAfterFork, mremapAfterFork, collapseThenFork, mthpFork, memfdSharedFork,
                                            splitTHPThenFork]
}

/// One page as the kernel's pagemap shows it.
public struct RealPage: Sendable, Hashable {
    public var index: Int
    /// pagemap bit 63.
    public var present: Bool
    /// pagemap bit 62.
    public var swapped: Bool
    /// Present and mapping the shared zero page.
    public var zero: Bool
    /// pagemap bit 56: exclusively mapped (mapcount 1). Never set for the zero page.
    public var exclusive: Bool
    /// pagemap bits 0-54 (0 when not present).
    public var pfn: UInt64
    /// The raw 64-bit pagemap entry.
    public var raw: UInt64
    /// Pages in the folio that maps it (/proc/kpageflags); nil when not present, the zero page, or unknown.
    public var folioPages: Int?

    public init(index: Int, present: Bool, swapped: Bool = false, zero: Bool, exclusive: Bool, pfn: UInt64, raw: UInt64 = 0,
                folioPages: Int? = nil) {
        self.index = index
        self.present = present
        self.swapped = swapped
        self.zero = zero
        self.exclusive = exclusive
        self.pfn = pfn
        self.raw = raw
        self.folioPages = folioPages
    }
}

/// What the kernel showed at the final snapshot.
public struct RealProbeResult: Sendable, Hashable {
    public var npages: Int
    public var zeroPFN: UInt64
    public var parent: [RealPage]
    /// nil when the script did not fork.
    public var child: [RealPage]?
    /// VmPin (kB, mm->pinned_vm) of the parent at the final snapshot, its pins still held; nil when unknown.
    public var parentVmPinKB: Int?
    /// VmPin (kB) of the parent before the script's first op (0 unless something else in this process pins).
    public var parentVmPinBeforeKB: Int?
    /// VmPin (kB) of the child at the final snapshot; nil when unknown or the script did not fork.
    public var childVmPinKB: Int?
    /// AnonHugePages (kB: PMD-mapped THPs) of the buffer's VMAs in /proc/self/smaps, per process.
    public var parentAnonHugeKB: Int?
    public var childAnonHugeKB: Int?

    public init(npages: Int, zeroPFN: UInt64, parent: [RealPage], child: [RealPage]?,
                parentVmPinKB: Int? = nil, parentVmPinBeforeKB: Int? = nil, childVmPinKB: Int? = nil,
                parentAnonHugeKB: Int? = nil, childAnonHugeKB: Int? = nil) {
        self.npages = npages
        self.zeroPFN = zeroPFN
        self.parent = parent
        self.child = child
        self.parentVmPinKB = parentVmPinKB
        self.parentVmPinBeforeKB = parentVmPinBeforeKB
        self.childVmPinKB = childVmPinKB
        self.parentAnonHugeKB = parentAnonHugeKB
        self.childAnonHugeKB = childAnonHugeKB
    }

    /// VmPin (kB) as /proc/self/status showed it at the final snapshot.
    public func vmPinKB(of actor: ProbeActor) -> Int? {
        actor == .parent ? parentVmPinKB : childVmPinKB
    }

    /// What the script itself pinned, in kB: VmPin at the snapshot less VmPin before the script (the
    /// child's mm starts at 0: fork does not copy pinned_vm).
    public func scriptPinnedKB(of actor: ProbeActor) -> Int? {
        guard actor == .parent else { return childVmPinKB }
        guard let now = parentVmPinKB else { return nil }
        return now - (parentVmPinBeforeKB ?? 0)
    }

    /// Pages per process name: "parent" and, if forked, "child".
    public var processes: [String: [RealPage]] {
        var result = [ProbeActor.parent.rawValue: parent]
        if let child { result[ProbeActor.child.rawValue] = child }
        return result
    }

    public func pages(of actor: ProbeActor) -> [RealPage]? {
        actor == .parent ? parent : child
    }

    /// One line per run of pages with the same facts, e.g. `pages 0-3    parent zero    child zero    shared`.
    public var summary: String {
        var lines: [String] = []
        var runStart = 0
        var runText: String?
        func flush(_ end: Int) {
            guard let text = runText else { return }
            let label = ProbeScript.pageRangeText(runStart..<end)
            lines.append(probePad(label, 13) + text)
        }
        for i in 0..<npages {
            var text = "parent " + probePad(Self.cell(parent[i]), 6)
            if let child {
                text += "  child " + probePad(Self.cell(child[i]), 6)
                let p = parent[i], c = child[i]
                if p.present && c.present && !p.zero && !c.zero && p.pfn == c.pfn { text += "  shared" }
            }
            if text != runText {
                flush(i)
                runStart = i
                runText = text
            }
        }
        flush(npages)
        if let parentPin = scriptPinnedKB(of: .parent) {
            var text = probePad("VmPin", 13) + "parent " + probePad("\(parentPin) kB", 6)
            if child != nil { text += "  child " + (childVmPinKB.map { "\($0) kB" } ?? "n/a") }
            lines.append(text)
        }
        return lines.map(probeTrimTrailingSpaces).joined(separator: "\n")
    }

    /// `-` not present, `swap`, `zero`, `excl` (anon, mapcount 1), `anon` (anon, mapped more than once).
    static func cell(_ page: RealPage) -> String {
        if page.swapped { return "swap" }
        if !page.present { return "-" }
        if page.zero { return "zero" }
        return page.exclusive ? "excl" : "anon"
    }
}

public struct RealProbeError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The op list is not valid (range outside the buffer, child op before fork, second fork...).
        case invalidScript
        /// A system call failed.
        case system
        /// pagemap hides PFNs: not root / no CAP_SYS_ADMIN.
        case noPFNs
        /// The child failed or died.
        case child
        /// A pin needs io_uring, which is unavailable (ENOSYS, EPERM under seccomp, kernel.io_uring_disabled).
        case ioUringUnavailable
        /// The machine's base page size is not the 4 KiB the Engine models.
        case unsupportedPageSize
        /// The kernel lacks something the script needs (memfd_create, MADV_COLLAPSE, an mTHP knob
        /// it may write, a THP it could allocate).
        case unsupported
    }

    public var kind: Kind
    /// The C return code (negative), or 0 for errors found in Swift.
    public var code: Int32
    public var message: String

    public var description: String { "probe: \(message)" }
}

public enum RealProbe {
    /// Runs the script for real and reads the final pagemap and VmPin of the parent and (if forked) the child.
    public static func run(_ script: ProbeScript) throws -> RealProbeResult {
        var setup = umptui_probe_setup()
        setup.backing = Int32(script.backing == .memfd ? UMPTUI_PROBE_BACKING_MEMFD.rawValue : UMPTUI_PROBE_BACKING_ANON.rawValue)
        switch script.thp {
        case .nohugepage: setup.thp = Int32(UMPTUI_PROBE_THP_NOHUGEPAGE.rawValue)
        case .none: setup.thp = Int32(UMPTUI_PROBE_THP_DEFAULT.rawValue)
        case .hugepage: setup.thp = Int32(UMPTUI_PROBE_THP_HUGEPAGE.rawValue)
        }
        setup.align_pages = Int64(script.alignPages)
        setup.initial_pages = Int64(script.initialPages ?? 0)
        let result: RealProbeResult
        if let kb = script.mthpKB {
            // Turn the size on for the run, and put the old mode back whatever happens.
            let old = try mthpMode(kb, set: "always")
            defer { _ = try? mthpMode(kb, set: old) }
            result = try run(npages: script.npages, ops: script.ops, setup: setup)
        } else {
            result = try run(npages: script.npages, ops: script.ops, setup: setup)
        }
        // A THP fault falls back to small pages when no order-9 block can be found or made: not a
        // disagreement, a machine that cannot show the script now.
        if script.expectsTHP, !(result.parent + (result.child ?? [])).contains(where: { $0.folioPages == 512 }) {
            throw RealProbeError(kind: .unsupported, code: 0,
                                 message: "the kernel mapped no THP (no free or compactable 2 MiB block now, or /proc/kpageflags unreadable)")
        }
        return result
    }

    /// This machine has swap space (/proc/swaps lists a device or file under its header).
    public static var hasSwap: Bool {
        guard let text = try? String(contentsOfFile: "/proc/swaps", encoding: .utf8) else { return false }
        return text.split(separator: "\n").count > 1
    }

    /// The bracketed word of /sys/kernel/mm/transparent_hugepage/enabled; nil without THP.
    public static var thpMode: String? {
        guard let text = try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8),
              let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]") else { return nil }
        return String(text[text.index(after: open)..<close])
    }

    /// The multi-size THP sizes (KiB) this kernel has a hugepages-<size>kB/enabled knob for.
    public static var mthpKnobs: Set<Int> {
        let dir = "/sys/kernel/mm/transparent_hugepage"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
        return Set(names.compactMap { name -> Int? in
            guard name.hasPrefix("hugepages-"), name.hasSuffix("kB"),
                  FileManager.default.fileExists(atPath: "\(dir)/\(name)/enabled") else { return nil }
            return Int(name.dropFirst("hugepages-".count).dropLast(2))
        })
    }

    /// Why `script` cannot run for real on this machine, or nil.
    public static func unavailableReason(_ script: ProbeScript) -> String? {
        script.unavailableReason(swap: hasSwap, thpMode: thpMode, mthpKnobs: script.mthpKB == nil ? [] : mthpKnobs)
    }

    /// The mode of hugepages-<kb>kB/enabled before `set` (when given) is written there.
    @discardableResult
    public static func mthpMode(_ kb: Int, set: String? = nil) throws -> String {
        var buffer = [CChar](repeating: 0, count: 32)
        let err: Int32 = buffer.withUnsafeMutableBufferPointer { out in
            if let set { return set.withCString { umptui_probe_mthp_mode(Int32(kb), $0, out.baseAddress, out.count) } }
            return umptui_probe_mthp_mode(Int32(kb), nil, out.baseAddress, out.count)
        }
        if err != 0 {
            let path = "/sys/kernel/mm/transparent_hugepage/hugepages-\(kb)kB/enabled"
            throw RealProbeError(kind: .unsupported, code: 0,
                                 message: "\(set.map { "writing \"\($0)\" to" } ?? "reading") \(path): \(String(cString: strerror(err)))")
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func run(npages: Int, ops: [ProbeOp], setup: umptui_probe_setup = umptui_probe_setup()) throws -> RealProbeResult {
        let pageSize = Int(umptui_probe_page_size())
        guard pageSize == ProbeScript.pageSize else {
            throw RealProbeError(kind: .unsupportedPageSize, code: 0,
                                 message: "base page size is \(pageSize) bytes; the Engine models 4096")
        }
        guard npages > 0 else {
            throw RealProbeError(kind: .invalidScript, code: UMPTUI_PROBE_EINVAL, message: "npages must be positive")
        }
        let cOps: [umptui_probe_op] = ops.map { op in
            let kind: Int32
            switch op.kind {
            case .read: kind = Int32(UMPTUI_PROBE_READ.rawValue)
            case .write: kind = Int32(UMPTUI_PROBE_WRITE.rawValue)
            case .fork: kind = Int32(UMPTUI_PROBE_FORK.rawValue)
            case .dontneed: kind = Int32(UMPTUI_PROBE_DONTNEED.rawValue)
            case .pin: kind = Int32(UMPTUI_PROBE_PIN.rawValue)
            case .mprotectR: kind = Int32(UMPTUI_PROBE_MPROTECT_R.rawValue)
            case .mprotectRW: kind = Int32(UMPTUI_PROBE_MPROTECT_RW.rawValue)
            case .vmsplice: kind = Int32(UMPTUI_PROBE_VMSPLICE.rawValue)
            case .pageout: kind = Int32(UMPTUI_PROBE_PAGEOUT.rawValue)
            case .mremap: kind = Int32(UMPTUI_PROBE_MREMAP.rawValue)
            case .collapse: kind = Int32(UMPTUI_PROBE_COLLAPSE.rawValue)
            case .dontfork: kind = Int32(UMPTUI_PROBE_DONTFORK.rawValue)
            }
            let actor = op.actor == .parent ? Int32(UMPTUI_PROBE_PARENT.rawValue) : Int32(UMPTUI_PROBE_CHILD.rawValue)
            let first = op.kind == .mremap ? (op.mayMove ? 1 : 0) : Int64(op.pages.lowerBound)
            return umptui_probe_op(kind: kind, actor: actor, first: first, count: Int64(op.pages.count))
        }
        var parentPages = [umptui_probe_page](repeating: umptui_probe_page(), count: npages)
        var childPages = [umptui_probe_page](repeating: umptui_probe_page(), count: npages)
        var result = umptui_probe_result()
        let rc: Int32 = parentPages.withUnsafeMutableBufferPointer { parentBuf in
            childPages.withUnsafeMutableBufferPointer { childBuf in
                result.parent = parentBuf.baseAddress
                result.child = childBuf.baseAddress
                var setup = setup
                let rc = cOps.withUnsafeBufferPointer { opsBuf in
                    umptui_probe_run_setup(&setup, opsBuf.baseAddress, Int32(opsBuf.count), npages, &result)
                }
                result.parent = nil
                result.child = nil
                return rc
            }
        }
        if rc != 0 {
            let message = withUnsafeBytes(of: result.message) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            let kind: RealProbeError.Kind
            switch rc {
            case UMPTUI_PROBE_EINVAL: kind = .invalidScript
            case UMPTUI_PROBE_ENOPFN: kind = .noPFNs
            case UMPTUI_PROBE_ECHILD: kind = .child
            case UMPTUI_PROBE_ENOURING: kind = .ioUringUnavailable
            case UMPTUI_PROBE_ENOTSUP: kind = .unsupported
            default: kind = .system
            }
            throw RealProbeError(kind: kind, code: rc, message: message.isEmpty ? "error \(rc)" : message)
        }
        func convert(_ pages: [umptui_probe_page]) -> [RealPage] {
            pages.enumerated().map { i, p in
                RealPage(index: i, present: p.present != 0, swapped: p.swapped != 0, zero: p.zero != 0,
                         exclusive: p.exclusive != 0, pfn: p.pfn, raw: p.raw,
                         folioPages: p.folio_pages > 0 ? Int(p.folio_pages) : nil)
            }
        }
        func kb(_ value: Int64) -> Int? { value >= 0 ? Int(value) : nil }
        let forked = result.forked != 0
        return RealProbeResult(npages: npages, zeroPFN: result.zero_pfn, parent: convert(parentPages),
                               child: forked ? convert(childPages) : nil,
                               parentVmPinKB: kb(result.parent_vm_pin_kb),
                               parentVmPinBeforeKB: kb(result.parent_vm_pin_before_kb),
                               childVmPinKB: forked ? kb(result.child_vm_pin_kb) : nil,
                               parentAnonHugeKB: kb(result.parent_anon_huge_kb),
                               childAnonHugeKB: forked ? kb(result.child_anon_huge_kb) : nil)
    }
}

/// Pads `s` with spaces on the right to `width` characters.
func probePad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
}

func probeTrimTrailingSpaces(_ s: String) -> String {
    var s = s
    while s.last == " " { s.removeLast() }
    return s
}
