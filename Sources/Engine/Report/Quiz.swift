// Predict, then reveal: the question a step asks in quiz mode, and its answer. A `quiz` line asks
// what its author wrote; some steps ask on their own, from the typed events of the step run on a
// copy of the Engine (the real state does not move until the step runs). Choices come in a fixed
// order per kind (docs/teaching.md lists them), so an answer list stays stable across edits.

/// A question asked before a step.
public struct QuizQuestion: Equatable, Sendable {
    public enum Kind: String, Sendable {
        /// Written in the script with `quiz`.
        case written
        /// A read or write whose pages all take one fault path.
        case fault
        /// A device map: how many IOPTEs of which size.
        case map
        /// A fork while pages are pinned: shared or copied.
        case fork
    }

    public var kind: Kind
    public var question: String
    public var choices: [QuizChoice]
    /// The letter of the right choice.
    public var answer: String
    /// Why the answer is right (the author's `explain`, or the Engine's words).
    public var explain: String
    /// The kernel function that decides it, for the automatic kinds; the step's record names it
    /// for written ones.
    public var decidedBy: String?
    /// The source line of the `quiz` (written) or of the step (automatic).
    public var line: Int

    public func choice(_ letter: String) -> QuizChoice? { choices.first { $0.letter == letter } }
    public var answerText: String { choice(answer)?.text ?? answer }
}

/// How one question went.
public struct QuizAnswer: Equatable, Sendable {
    public var question: QuizQuestion
    /// 1-based step number the question was asked before.
    public var step: Int
    /// The letter given; nil when none was.
    public var given: String?
    /// The kernel function that decided the step (from its record).
    public var decidedBy: String
    public var right: Bool { given == question.answer }
    public init(question: QuizQuestion, step: Int, given: String?, decidedBy: String) {
        self.question = question
        self.step = step
        self.given = given
        self.decidedBy = decidedBy
    }
}

/// The answers so far.
public struct QuizScore: Equatable, Sendable {
    public private(set) var answers: [QuizAnswer] = []
    public init() {}
    public var asked: Int { answers.count }
    public var right: Int { answers.filter(\.right).count }
    public var text: String { "score: \(right)/\(asked)" }
    public mutating func add(_ a: QuizAnswer) { answers.append(a) }
}

public enum Quiz {
    /// The letters choices take, in order.
    static let letters = "abcdefgh".map(String.init)

    /// The question asked before `step` in the state `engine` is in now, or nil when the step asks
    /// nothing: the written `quiz`, else an automatic question when the step is of a kind that
    /// asks one and its outcome fits (the step runs on a copy of the Engine to find out).
    /// `control` watches the run on the copy (a long step); cancelled, there is no question.
    public static func question(for step: ScriptStep, number: Int, engine: Engine,
                                traces: (any TraceProvider)? = nil, control: StepControl? = nil) -> QuizQuestion? {
        if let spec = step.quizSpec, let line = step.quiz?.location.line {
            return QuizQuestion(kind: .written, question: spec.question, choices: spec.choices, answer: spec.answer,
                                explain: spec.explain ?? "", decidedBy: nil, line: line)
        }
        guard let kind = automaticKind(step.statement, engine) else { return nil }
        var copy = engine
        guard let record = copy.apply(step.statement, step: number, traces: traces, control: control) else { return nil }
        let line = step.statement.location.line
        switch kind {
        case .fault: return faultQuestion(step.statement, record, line: line)
        case .map: return mapQuestion(step.statement, record, engine: engine, line: line)
        case .fork: return forkQuestion(step.statement, record, engine: engine, line: line)
        case .written: return nil
        }
    }

    /// Which automatic question a statement could ask, before running it.
    static func automaticKind(_ st: Statement, _ engine: Engine) -> QuizQuestion.Kind? {
        switch st.kind {
        case .processEvent(_, .read), .processEvent(_, .write):
            return .fault
        case .deviceEvent(let dev, .map):
            guard let d = engine.state.deviceIndex(named: dev), engine.state.devices[d].info.format != .sva,
                  engine.state.devices[d].info.format != .none else { return nil }
            return .map
        case .processEvent(let name, .fork):
            guard let p = engine.state.processIndex(named: name), engine.state.processes[p].meta.alive,
                  !pinnedBuffers(name, engine).isEmpty else { return nil }
            return .fork
        default:
            return nil
        }
    }

    /// The kernel function a step's record says decided it: its first counted event's function, or
    /// the function its own sentence starts with.
    public static func decidedBy(_ r: StepRecord) -> String {
        var functions: [(String, Int)] = []
        for (e, n) in r.events.happened where e != .alreadyMapped && e != .pageTableAlloc {
            guard let phrase = e.phrase, let colon = phrase.firstIndex(of: ":") else { continue }
            let f = String(phrase[..<colon])
            if let i = functions.firstIndex(where: { $0.0 == f }) { functions[i].1 += n } else { functions.append((f, n)) }
        }
        // The functions that handled most pages first: what decided most of the step.
        let top = functions.sorted { $0.1 > $1.1 }.prefix(3)
        if top.count == 1 { return top[0].0 }
        if !top.isEmpty { return top.map { "\($0.0) (\($0.1))" }.joined(separator: ", ") }
        if r.outcome.signalName == "SIGSEGV" { return "do_user_addr_fault → bad_area: SIGSEGV" }
        // The operation's own sentence names the function, after the command it may repeat.
        var text = Substring(r.text)
        if text.hasPrefix(r.command + ": ") { text = text.dropFirst(r.command.count + 2) }
        if let colon = text.firstIndex(of: ":"), text.distance(from: text.startIndex, to: colon) <= 48 {
            return String(text[..<colon])
        }
        return r.outcome.ok ? "the step's own code path" : r.outcome.word
    }

    // MARK: - Faults

    /// The fault paths, in the order the choices list them.
    enum FaultPath: Int, CaseIterable {
        case zero, new, copy, reuse, sigsegv

        var choice: String {
            switch self {
            case .zero: "map the shared zero page, read-only (do_anonymous_page)"
            case .new: "allocate a new zeroed page (do_anonymous_page)"
            case .copy: "copy into a new page (do_wp_page → wp_page_copy)"
            case .reuse: "reuse the page in place, made writable (do_wp_page → wp_page_reuse)"
            case .sigsegv: "SIGSEGV: the access is not allowed"
            }
        }

        var function: String {
            switch self {
            case .zero, .new: "do_anonymous_page"
            case .copy: "do_wp_page → wp_page_copy"
            case .reuse: "do_wp_page → wp_page_reuse"
            case .sigsegv: "do_user_addr_fault → bad_area: SIGSEGV"
            }
        }
    }

    static func faultPath(_ e: KernelEvent) -> FaultPath? {
        switch e {
        case .zeroPageMapped: .zero
        case .anonymousPage: .new
        case .wpPageCopy: .copy
        case .wpPageReuse: .reuse
        default: nil
        }
    }

    /// Events that happen beside a fault without making it another path.
    static func besideFault(_ e: KernelEvent) -> Bool {
        switch e {
        case .thpFallback, .thpDirectCompaction, .pageTableAlloc, .directReclaim, .brk, .pinned: true
        default: false
        }
    }

    static func faultQuestion(_ st: Statement, _ r: StepRecord, line: Int) -> QuizQuestion? {
        var paths = Set<FaultPath>()
        var pages = 0
        // A SIGSEGV kills the process: what its exit frees is not part of the question.
        let killed = r.outcome.signalName == "SIGSEGV"
        for (e, n) in r.events.happened {
            if let path = faultPath(e) {
                paths.insert(path)
                pages += n
            } else if !besideFault(e) && !killed {
                return nil   // another path too (already mapped, swap-in, a THP, a split, ...): not one answer
            }
        }
        let path: FaultPath
        if r.outcome.signalName == "SIGSEGV" {
            guard paths.isEmpty else { return nil }
            path = .sigsegv
        } else {
            guard r.outcome.ok, paths.count == 1, let only = paths.first else { return nil }
            path = only
        }
        var explain: String
        switch path {
        case .zero:
            explain = "A read of anonymous memory nothing has written needs no memory yet: do_anonymous_page maps the one shared zero page, read-only, and allocates nothing"
        case .new:
            explain = "The first write to an untouched anonymous page: do_anonymous_page allocates a zeroed page for this process alone (PageAnonExclusive) and maps it writable"
        case .copy:
            explain = r.events[.wpPageCopy(.zeroPage)] > 0
                ? "The pages map the shared zero page read-only, so the write faults into do_wp_page; the zero page is never written, so wp_page_copy gives the process a new zeroed page of its own"
                : "The pages are shared read-only with another process since fork, so the write faults into do_wp_page; wp_can_reuse_anon_folio says no (not exclusive, refcount above 1), so wp_page_copy copies the page"
        case .reuse:
            explain = "The write faults on a read-only PTE, but do_wp_page finds the page is this process's alone (PageAnonExclusive, or its refcount back to 1), so wp_page_reuse makes the PTE writable without a copy"
        case .sigsegv:
            explain = "The address is in no VMA, or in one whose permissions refuse the access: the fault handler sends SIGSEGV, whose default action kills the process"
        }
        if path != .sigsegv { explain += " (\(plural(pages, "page")))" }
        return QuizQuestion(kind: .fault, question: "`\(st.text)`: what does the kernel do when the CPU touches these pages?",
                            choices: FaultPath.allCases.enumerated().map { QuizChoice(letter: letters[$0.offset], text: $0.element.choice) },
                            answer: letters[path.rawValue], explain: explain, decidedBy: path.function, line: line)
    }

    // MARK: - Device maps

    /// "1 × 2M + 3 × 4K": IOPTE counts by size, largest first.
    static func ioptesText(_ runs: [(size: UInt64, count: Int)]) -> String {
        runs.map { "\($0.count) × \(formatSizeShort($0.size))" }.joined(separator: " + ")
    }

    static func mapQuestion(_ st: Statement, _ r: StepRecord, engine: Engine, line: Int) -> QuizQuestion? {
        guard case let .deviceEvent(dev, .map(ref, range, _, _)) = st.kind, let d = engine.state.deviceIndex(named: dev),
              let p = engine.state.processIndex(named: ref.process),
              let b = engine.state.processes[p].meta.buffer(named: ref.buffer) else { return nil }
        let bitmap = engine.state.devices[d].pgsizeBitmap
        guard bitmap != 0 else { return nil }
        let first = (b.start + (range?.offset ?? 0)) & ~(pageSize - 1)
        let size = range?.size ?? (b.size - min(b.size, range?.offset ?? 0))
        let end = alignUp(b.start + (range?.offset ?? 0) + max(size, 1), pageSize)
        let length = end - first
        func grouped(_ runs: [PgsizeRun]) -> [(size: UInt64, count: Int)] {
            var by: [UInt64: Int] = [:]
            for run in runs { by[run.pgsize, default: 0] += Int(run.count) }
            return by.sorted { $0.key > $1.key }.map { ($0.key, $0.value) }
        }
        // Candidates: every page 4 KiB; the best the page sizes allow if the memory were one
        // physically contiguous, aligned run; the next larger page size rounding the buffer up
        // (a common guess); and what happened.
        var candidates: [[(size: UInt64, count: Int)]] = []
        let actual = r.events.ioptesBySize
        let failed = !r.outcome.ok || actual.isEmpty
        if !failed { candidates.append(actual) }
        candidates.append([(pageSize, Int(length >> pageShift))])
        candidates.append(grouped(iommuMapRuns(bitmap: bitmap, iova: 0, paddr: 0, size: length)))
        var rest = bitmap & ~(pageSize - 1)
        var roundUp = roundUpPow2(length)
        while rest != 0 {
            let size = UInt64(1) << UInt64(rest.trailingZeroBitCount)
            rest &= rest - 1
            if size >= length && size > pageSize {
                if size <= 8 * length { roundUp = size }
                break
            }
        }
        if roundUp > pageSize { candidates.append([(roundUp, 1)]) }
        // The page sizes between: as many of each as fit, the rest in 4 KiB pages.
        var mid = bitmap & ~(pageSize - 1) & ~pageSize
        while mid != 0 {
            let size = UInt64(1) << UInt64(mid.trailingZeroBitCount)
            mid &= mid - 1
            guard size < length else { break }
            let rest = Int((length % size) >> pageShift)
            candidates.append([(size, Int(length / size))] + (rest > 0 ? [(pageSize, rest)] : []))
        }
        var texts: [(text: String, count: Int)] = []
        for c in candidates {
            let t = ioptesText(c)
            if !texts.contains(where: { $0.text == t }) { texts.append((t, c.reduce(0) { $0 + $1.count })) }
        }
        texts = Array(texts.prefix(4))
        texts.sort { $0.count != $1.count ? $0.count > $1.count : $0.text < $1.text }
        var choices = texts.map(\.text)
        let failChoice = "none: the map fails"
        choices.append(failChoice)
        let answerText = failed ? failChoice : ioptesText(actual)
        guard let index = choices.firstIndex(of: answerText) else { return nil }
        var explain: String
        if failed {
            explain = "The map does not get as far as the IOMMU: " + r.text
        } else {
            explain = "iommu_map splits each physically contiguous run with iommu_pgsize: the largest page size the device supports (\(pageSizesText(bitmap))) that the IOVA, the physical address and the length left all allow"
            let larger = bitmap & ~(pageSize | (pageSize - 1))
            if actual.count == 1 && actual[0].size == pageSize && length > pageSize && larger != 0 {
                let next = UInt64(1) << UInt64(larger.trailingZeroBitCount)
                explain += length < next
                    ? "; \(formatSize(length)) is smaller than the next page size (\(formatSizeShort(next))), so every IOPTE is 4 KiB"
                    : "; no run of frames is both long and aligned enough for a larger page, so every IOPTE is 4 KiB"
            }
        }
        let what = formatSize(length)
        return QuizQuestion(kind: .map, question: "`\(st.text)` maps \(what): how many IOPTEs of which size does \(dev)'s I/O page table get?",
                            choices: choices.enumerated().map { QuizChoice(letter: letters[$0.offset], text: $0.element) },
                            answer: letters[index], explain: explain, decidedBy: failed ? decidedBy(r) : "iommu_map → iommu_pgsize",
                            line: line)
    }

    static func pageSizesText(_ bitmap: UInt64) -> String {
        var sizes: [String] = []
        var rest = bitmap
        while rest != 0, sizes.count < 6 {
            let bit = rest.trailingZeroBitCount
            sizes.append(formatSizeShort(UInt64(1) << UInt64(bit)))
            rest &= rest - 1
        }
        return sizes.joined(separator: ", ") + (rest != 0 ? ", …" : "")
    }

    // MARK: - Fork with pins

    /// The buffers of process `name` that hold pinned pages now: by `pin`, or by a device's map.
    static func pinnedBuffers(_ name: String, _ engine: Engine) -> Set<String> {
        var out = Set<String>()
        if let p = engine.state.processIndex(named: name) {
            for pin in engine.state.processes[p].meta.pins where !pin.get { out.insert(pin.buffer) }
        }
        for d in engine.state.devices {
            for m in d.mappings where m.process == name && m.pinnedPages > 0 { out.insert(m.buffer) }
        }
        return out
    }

    static func forkQuestion(_ st: Statement, _ r: StepRecord, engine: Engine, line: Int) -> QuizQuestion? {
        guard r.outcome.ok, case let .processEvent(name, .fork) = st.kind,
              let p = engine.state.processIndex(named: name) else { return nil }
        let meta = engine.state.processes[p].meta
        let copied = r.events[.copyPresentPage]
        let pinnedBuffers = pinnedBuffers(name, engine)
        let leftOut = meta.vmas.contains { vma in
            vma.flags.contains(.dontcopy) && meta.buffers.contains { pinnedBuffers.contains($0.name) && $0.start < vma.end && vma.start < $0.endPage }
        }
        let choices = [
            "shared read-only with the child, as every other anonymous page (COW)",
            "copied for the child now, at fork (copy_present_page)",
            "left out of the child (MADV_DONTFORK)",
        ]
        let answer: Int
        var explain: String
        if copied > 0 {
            answer = 1
            explain = "copy_present_ptes asks __folio_try_dup_anon_rmap to share each page; for a page that may be pinned (folio_maybe_dma_pinned) and is exclusive it refuses, so copy_present_page gives the child its own copy now (\(plural(copied, "page"))): the parent keeps the pinned frame writable, and a device keeps seeing the parent's data"
        } else if leftOut {
            answer = 2
            explain = "The pinned buffer's VMA has VM_DONTCOPY (MADV_DONTFORK): dup_mmap does not give the child that VMA at all, so nothing about the pinned pages changes"
        } else {
            answer = 0
            explain = engine.state.config.kernel == .legacy
                ? "This kernel (kernel=legacy) shares every anonymous page at fork, pinned or not: copy_present_ptes write-protects them in both, and the parent's next write copies away from the pinned frame the device still uses"
                : "The pins do not reach these pages as copy_present_ptes sees them (none is both exclusive and possibly pinned), so they are shared read-only like the rest"
        }
        return QuizQuestion(kind: .fork, question: "`\(st.text)`: \(name) has pages pinned for DMA. What happens to the pinned pages at fork?",
                            choices: choices.enumerated().map { QuizChoice(letter: letters[$0.offset], text: $0.element) },
                            answer: letters[answer], explain: explain,
                            decidedBy: answer == 1 ? "copy_present_ptes → copy_present_page" : answer == 2 ? "dup_mmap (VM_DONTCOPY)" : "copy_present_ptes",
                            line: line)
    }
}
