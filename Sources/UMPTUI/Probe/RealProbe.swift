// The real-kernel probe, Swift side: a tiny op script on one anonymous private mapping, run for
// real (CProbe: mmap, touch, fork, MADV_DONTNEED, io_uring buffer registration for pins,
// /proc/self/pagemap and VmPin) and written out as an UMPTUI scenario so the Engine can run the
// same actions. ProbeComparison.swift compares the two.

import CProbe

/// Who performs an op. Before `fork` only the parent exists.
public enum ProbeActor: String, Sendable, Hashable, CaseIterable {
    case parent, child
}

/// One action of a probe script, on page indices of the script's single buffer.
public struct ProbeOp: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case read, write, fork, dontneed, pin
        case mprotectR = "mprotect-r", mprotectRW = "mprotect-rw", vmsplice, pageout
    }

    public var kind: Kind
    public var actor: ProbeActor
    /// Page indices (ignored for `fork`).
    public var pages: Range<Int>

    public init(_ kind: Kind, by actor: ProbeActor = .parent, pages: Range<Int> = 0..<0) {
        self.kind = kind
        self.actor = actor
        self.pages = kind == .fork ? 0..<0 : pages
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
    /// The parent forks the child (at most once per script).
    public static let fork = ProbeOp(.fork)

    public var description: String {
        kind == .fork ? "\(actor.rawValue) fork" : "\(actor.rawValue) \(kind.rawValue) \(ProbeScript.pageRangeText(pages))"
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

    public init(name: String, summary: String = "", npages: Int, ops: [ProbeOp], bufferName: String = "buf") {
        self.name = name
        self.summary = summary
        self.npages = npages
        self.ops = ops
        self.bufferName = bufferName
    }

    public var forks: Bool { ops.contains { $0.kind == .fork } }
    /// The script pins pages (needs io_uring for real).
    public var pins: Bool { ops.contains { $0.kind == .pin } }
    /// The script pages out (needs swap for real, and the twin machine gets some).
    public var needsSwap: Bool { ops.contains { $0.kind == .pageout } }

    /// The same actions in the UMPTUI scenario language (SCENARIO.md), for `umptui run`.
    public var scenarioText: String {
        var lines: [String] = []
        lines.append("# probe script \"\(name)\"" + (summary.isEmpty ? "" : ": \(summary)"))
        lines.append("machine ram=64M thp=never" + (needsSwap ? " swap=64M" : ""))
        lines.append("process \(ProbeActor.parent.rawValue)")
        lines.append("\(ProbeActor.parent.rawValue) mmap \(bufferName) \(Self.bytesText(npages))")
        var pipes = 0
        for op in ops {
            let who = op.actor.rawValue
            let range = "\(Self.bytesText(op.pages.lowerBound)) \(Self.bytesText(op.pages.count))"
            let comment = "  # \(Self.pageRangeText(op.pages))"
            switch op.kind {
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

    public static let all: [ProbeScript] = [standard, readOnlyBeforeFork, pinBeforeFork, mprotectAfterFork, vmspliceAfterFork, pageoutAfterFork]
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

    public init(index: Int, present: Bool, swapped: Bool = false, zero: Bool, exclusive: Bool, pfn: UInt64, raw: UInt64 = 0) {
        self.index = index
        self.present = present
        self.swapped = swapped
        self.zero = zero
        self.exclusive = exclusive
        self.pfn = pfn
        self.raw = raw
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

    public init(npages: Int, zeroPFN: UInt64, parent: [RealPage], child: [RealPage]?,
                parentVmPinKB: Int? = nil, parentVmPinBeforeKB: Int? = nil, childVmPinKB: Int? = nil) {
        self.npages = npages
        self.zeroPFN = zeroPFN
        self.parent = parent
        self.child = child
        self.parentVmPinKB = parentVmPinKB
        self.parentVmPinBeforeKB = parentVmPinBeforeKB
        self.childVmPinKB = childVmPinKB
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
        try run(npages: script.npages, ops: script.ops)
    }

    public static func run(npages: Int, ops: [ProbeOp]) throws -> RealProbeResult {
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
            }
            let actor = op.actor == .parent ? Int32(UMPTUI_PROBE_PARENT.rawValue) : Int32(UMPTUI_PROBE_CHILD.rawValue)
            return umptui_probe_op(kind: kind, actor: actor, first: Int64(op.pages.lowerBound), count: Int64(op.pages.count))
        }
        var parentPages = [umptui_probe_page](repeating: umptui_probe_page(), count: npages)
        var childPages = [umptui_probe_page](repeating: umptui_probe_page(), count: npages)
        var result = umptui_probe_result()
        let rc: Int32 = parentPages.withUnsafeMutableBufferPointer { parentBuf in
            childPages.withUnsafeMutableBufferPointer { childBuf in
                result.parent = parentBuf.baseAddress
                result.child = childBuf.baseAddress
                let rc = cOps.withUnsafeBufferPointer { opsBuf in
                    umptui_probe_run(opsBuf.baseAddress, Int32(opsBuf.count), npages, &result)
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
            default: kind = .system
            }
            throw RealProbeError(kind: kind, code: rc, message: message.isEmpty ? "error \(rc)" : message)
        }
        func convert(_ pages: [umptui_probe_page]) -> [RealPage] {
            pages.enumerated().map { i, p in
                RealPage(index: i, present: p.present != 0, swapped: p.swapped != 0, zero: p.zero != 0,
                         exclusive: p.exclusive != 0, pfn: p.pfn, raw: p.raw)
            }
        }
        func kb(_ value: Int64) -> Int? { value >= 0 ? Int(value) : nil }
        let forked = result.forked != 0
        return RealProbeResult(npages: npages, zeroPFN: result.zero_pfn, parent: convert(parentPages),
                               child: forked ? convert(childPages) : nil,
                               parentVmPinKB: kb(result.parent_vm_pin_kb),
                               parentVmPinBeforeKB: kb(result.parent_vm_pin_before_kb),
                               childVmPinKB: forked ? kb(result.child_vm_pin_kb) : nil)
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
