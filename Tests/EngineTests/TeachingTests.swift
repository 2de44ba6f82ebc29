// Teaching: the quiz (written and automatic questions, their right answers derived from what the
// step does), notes whose numbers come from the step, the page-table walk of a VA and an IOVA,
// PTEs in the x86-64 layout, and a lackey trace replayed through the page tables.

@testable import Engine
import XCTest

/// Memory traces from arrays: what a test hands `PROC trace`.
struct MemoryArrayTraces: TraceProvider {
    var files: [String: [MemoryAccess]]
    struct Source: MemoryAccessSource {
        var items: [MemoryAccess]
        var done = false
        var linesRead: Int { done ? items.count : 0 }
        mutating func nextBatch(_ batch: inout [MemoryAccess]) throws -> Bool {
            guard !done else { return false }
            done = true
            batch = items
            return !items.isEmpty
        }
    }
    func open(_ path: String) throws -> any AddressSource { throw IOArrayTraces.Missing(path: path) }
    func openMemoryTrace(_ path: String) throws -> any MemoryAccessSource {
        guard let items = files[path] else { throw IOArrayTraces.Missing(path: path) }
        return Source(items: items)
    }
}

final class QuizTests: XCTestCase {
    private func statement(_ line: String) throws -> Statement { try XCTUnwrap(try parseStatement(line)) }

    /// The automatic question the next line would ask in `r`'s state, with the engine left as it was.
    private func ask(_ r: EngineRun, _ line: String, file: StaticString = #filePath, l: UInt = #line) throws -> QuizQuestion? {
        let before = r.state
        let q = Quiz.question(for: ScriptStep(statement: try statement(line)), number: r.records.count + 1, engine: r.engine)
        XCTAssertEqual(r.state, before, "asking ran the step on the Engine itself", file: file, line: l)
        return q
    }

    func testQuizLineParses() throws {
        let st = try statement(#"quiz "Which?" a="the zero page" b="a new \"page\"" c=copy answer=b explain="because""#)
        guard case let .quiz(q) = st.kind else { return XCTFail("not a quiz: \(st.kind)") }
        XCTAssertEqual(q, QuizSpec(question: "Which?", choices: [QuizChoice(letter: "a", text: "the zero page"),
                                                                 QuizChoice(letter: "b", text: "a new \"page\""),
                                                                 QuizChoice(letter: "c", text: "copy")],
                                   answer: "b", explain: "because"))
    }

    func testQuizLineErrorsAreLocated() {
        let cases: [(String, Int, String)] = [
            (#"quiz "Q?" a="x" b="y" answer=c"#, 30, "answer 'c' is not a choice"),
            (#"quiz "Q?" b="x" a="y" answer=a"#, 11, "choice 'b' comes before choice 'a'"),
            (#"quiz "Q?" a="x" b="y""#, 22, "'quiz' needs answer=LETTER"),
            (#"quiz "Q?" a="x" answer=a"#, 25, "'quiz' needs at least two choices"),
            (#"quiz Q a="x" b="y" answer=a"#, 6, "'quiz' needs a question in quotes"),
            (#"quiz "Q?" a="x" b="y" answer=a hint="no""#, 32, "unknown key 'hint' for 'quiz'"),
            (#"quiz "Q?" a="x" a="y" answer=a"#, 17, "'a' is given twice"),
        ]
        for (line, column, message) in cases {
            do {
                _ = try parseStatement(line)
                XCTFail("'\(line)' parsed")
            } catch {
                XCTAssertEqual(error.location.column, column, line)
                XCTAssertTrue(error.message.hasPrefix(message), "\(line): \(error.message)")
            }
        }
    }

    func testCheckerWantsAStepAfterEachQuizAndOneQuizPerStep() throws {
        let source = """
            process app
            quiz "A?" a="x" b="y" answer=a
            quiz "B?" a="x" b="y" answer=b
            app malloc buf 4K
            quiz "C?" a="x" b="y" answer=a
            """
        let script = try parseScript(source, fileName: "q.ump")
        let problems = checkScript(script, sourceLines: scenarioSourceLines(source)) { _ in true }
        XCTAssertEqual(problems.map { "\($0.location.line):\($0.location.column) \($0.message)" },
                       ["3:1 a second 'quiz' for the same step", "5:1 'quiz' has no step after it to ask about"])
    }

    func testAQuizAttachesToTheNextStepAndIsIgnoredByARun() throws {
        let source = """
            process app
            app malloc buf 64K
            quiz "Q?" a="x" b="y" answer=a
            note "n"
            app read buf
            """
        let plan = StepPlan(try parseScript(source, fileName: "q.ump"))
        XCTAssertEqual(plan.steps.map { $0.quizSpec?.question }, [nil, nil, "Q?"])
        let result = ScenarioRunner.run(try parseScript(source, fileName: "q.ump"))
        XCTAssertEqual(result.records.count, 3)
        XCTAssertTrue(result.records.allSatisfy(\.outcome.ok))
    }

    func testAWrittenQuizReplacesTheAutomaticQuestion() throws {
        let r = scenario("process app\napp mmap buf 64K")
        let quiz = try statement(#"quiz "Mine?" a="x" b="y" answer=b"#)
        let step = ScriptStep(statement: try statement("app read buf"), quiz: quiz)
        let q = try XCTUnwrap(Quiz.question(for: step, number: 3, engine: r.engine))
        XCTAssertEqual(q.kind, .written)
        XCTAssertEqual(q.question, "Mine?")
        XCTAssertEqual(q.answer, "b")
        XCTAssertEqual(q.line, quiz.location.line)
    }

    func testFaultQuestionsTakeTheAnswerFromWhatTheStepDoes() throws {
        var r = scenario("process app\napp mmap buf 64K\napp mmap other 64K")
        let choices = ["map the shared zero page, read-only (do_anonymous_page)",
                       "allocate a new zeroed page (do_anonymous_page)",
                       "copy into a new page (do_wp_page → wp_page_copy)",
                       "reuse the page in place, made writable (do_wp_page → wp_page_reuse)",
                       "SIGSEGV: the access is not allowed"]
        func check(_ line: String, _ answer: String, _ function: String, file: StaticString = #filePath, l: UInt = #line) throws {
            let q = try XCTUnwrap(try ask(r, line, file: file, l: l), line, file: file, line: l)
            XCTAssertEqual(q.kind, .fault, file: file, line: l)
            XCTAssertEqual(q.choices.map(\.letter), ["a", "b", "c", "d", "e"], file: file, line: l)
            XCTAssertEqual(q.choices.map(\.text), choices, file: file, line: l)
            XCTAssertEqual(q.answer, answer, line, file: file, line: l)
            XCTAssertEqual(q.decidedBy, function, file: file, line: l)
            r.step(line)
        }
        try check("app read buf", "a", "do_anonymous_page")
        XCTAssertEqual(r.last.events[.zeroPageMapped], 16)
        try check("app write buf", "c", "do_wp_page → wp_page_copy")
        XCTAssertEqual(r.last.events[.wpPageCopy(.zeroPage)], 16)
        try check("app write other", "b", "do_anonymous_page")
        r.ok("app fork child")
        try check("child write other", "c", "do_wp_page → wp_page_copy")
        XCTAssertEqual(r.last.events[.wpPageCopy(.sharedPage)], 16)
        // The child has its own copies now: app's pages are back to one reference and reused.
        try check("app write other", "d", "do_wp_page → wp_page_reuse")
        XCTAssertEqual(r.last.events[.wpPageReuse(.refcount)], 16)
        r.ok("app munmap other 0 4K")
        try check("app write other 0 4K", "e", "do_user_addr_fault → bad_area: SIGSEGV")
        XCTAssertEqual(r.last.outcome, .signal("SIGSEGV"))
    }

    func testStepsWhosePagesTakeSeveralPathsAskNothing() throws {
        var r = scenario("process app\napp mmap buf 64K")
        r.ok("app read buf 0 16K")
        // Four pages map the zero page, twelve were never touched: two paths, no one answer.
        XCTAssertNil(try ask(r, "app write buf"))
        r.ok("app write buf")
        // Already mapped writable: no fault at all.
        XCTAssertNil(try ask(r, "app write buf"))
        XCTAssertNil(try ask(r, "app malloc more 4K"))
    }

    func testMapQuestionsOrderTheSplitsAndPutFailureLast() throws {
        var r = scenario("""
            machine ram=256M memlock=64M
            process app
            device nic iommu=vtd
            app mmap buf 4M hugepage
            app write buf
            """)
        let q = try XCTUnwrap(try ask(r, "nic map app.buf"))
        XCTAssertEqual(q.kind, .map)
        XCTAssertEqual(q.choices.map(\.text), ["1024 × 4K", "2 × 2M", "1 × 4M", "none: the map fails"])
        r.ok("nic map app.buf")
        let actual = Quiz.ioptesText(r.last.events.ioptesBySize)
        XCTAssertEqual(q.answerText, actual)
        XCTAssertEqual(q.decidedBy, "iommu_map → iommu_pgsize")

        // Over the memlock limit the pin fails: the answer is the last choice.
        var small = scenario("""
            machine ram=256M memlock=64K
            process app
            device nic iommu=arm-v7s
            app mmap buf 1M
            """)
        let f = try XCTUnwrap(try ask(small, "nic map app.buf"))
        XCTAssertEqual(f.choices.map(\.text), ["256 × 4K", "16 × 64K", "1 × 1M", "none: the map fails"])
        XCTAssertEqual(f.answerText, "none: the map fails")
        small.expect("nic map app.buf", .errno("ENOMEM"))
    }

    func testForkWithPinsAsksSharedOrCopied() throws {
        let setup = """
            process app
            device nic iommu=vtd
            app mmap buf 64K
            app write buf
            nic map app.buf
            """
        // 6.12 copies pinned exclusive pages at fork (copy_present_page).
        var r = scenario("machine ram=64M\n" + setup)
        let q = try XCTUnwrap(try ask(r, "app fork child"))
        XCTAssertEqual(q.kind, .fork)
        XCTAssertEqual(q.answer, "b")
        r.ok("app fork child")
        XCTAssertEqual(r.last.events[.copyPresentPage], 16)
        // Before the fix every page was shared, pinned or not.
        let legacy = scenario("machine ram=64M kernel=legacy\n" + setup)
        XCTAssertEqual(try ask(legacy, "app fork child")?.answer, "a")
        // MADV_DONTFORK keeps the pinned VMA out of the child.
        var dontfork = scenario("machine ram=64M\n" + setup)
        dontfork.ok("app madvise buf dontfork")
        XCTAssertEqual(try ask(dontfork, "app fork child")?.answer, "c")
        // Nothing pinned: no question.
        XCTAssertNil(try ask(scenario("machine ram=64M\nprocess app\napp malloc buf 4K"), "app fork child"))
    }

    func testScoreCountsRightAnswers() throws {
        let q = QuizQuestion(kind: .written, question: "Q", choices: [QuizChoice(letter: "a", text: "x"), QuizChoice(letter: "b", text: "y")],
                             answer: "b", explain: "", decidedBy: nil, line: 1)
        var score = QuizScore()
        score.add(QuizAnswer(question: q, step: 1, given: "b", decidedBy: "f"))
        score.add(QuizAnswer(question: q, step: 2, given: "a", decidedBy: "f"))
        score.add(QuizAnswer(question: q, step: 3, given: nil, decidedBy: "f"))
        XCTAssertEqual(score.text, "score: 1/3")
    }
}

final class NoteTextTests: XCTestCase {
    func testPlaceholdersAreFilledFromTheStep() {
        var r = scenario("""
            machine ram=64M memlock=16M
            process app
            device nic iommu=vtd iotlb=8
            app mmap buf 64K
            """)
        r.timeline.apply(try! parseStatement("app read buf 0 16K")!)
        let notes = ["{do_anonymous_page} new, {do_anonymous_page:zero} zero, {wp_page_copy:zero} copied, rss {app.rss}, buf {app.buf.present} present",
                     "{=128 KiB} is fixed; {{braces}} stay; {outcome}"]
        let rec = r.timeline.apply(try! parseStatement("app write buf")!, notes: notes)
        XCTAssertEqual(rec.notes, ["12 new, 0 zero, 4 copied, rss 64 KiB, buf 16 present", "128 KiB is fixed; {braces} stay; ok"])
        let map = r.timeline.apply(try! parseStatement("nic map app.buf")!, notes: ["{ioptes.4K} small, {ioptes.2M} large, {ioptes} in all"])
        XCTAssertEqual(map.notes, ["16 small, 0 large, 16 in all"])
        let dma = r.timeline.apply(try! parseStatement("nic dma app.buf read")!, notes: ["{misses} misses, {hits} hits, {accesses} accesses"])
        XCTAssertEqual(dma.notes, ["\(dma.deviceDeltas.values.first!.misses) misses, \(dma.deviceDeltas.values.first!.hits) hits, 1024 accesses"])
        XCTAssertGreaterThan(dma.deviceDeltas.values.first!.misses, 0)
    }

    func testPlaceholdersNameWhatExistsAfterTheirStep() throws {
        let source = """
            process app
            note "{app.zzz.present} {kid.rss} {gpu.misses} {app.buf.present}"
            app mmap buf 64K
            note "{app.buf.present}"
            app munmap buf
            note "{kid.rss}"
            app fork kid
            app trace t.lackey
            note "{app.mmap2.present}"
            app read mmap2
            device gpu
            """
        let problems = checkScript(try parseScript(source, fileName: "n.ump"), sourceLines: scenarioSourceLines(source)) { _ in true }
        XCTAssertEqual(problems.map { "\($0.location.line):\($0.location.column) \($0.message)" }, [
            "2:7 {app.zzz.present}: app has no buffer 'zzz' after the step this note explains",
            "2:25 {kid.rss}: no process or device named 'kid' exists at the step this note explains",
            "2:35 {gpu.misses}: no process or device named 'gpu' exists at the step this note explains",
            "4:7 {app.buf.present}: app has no buffer 'buf' after the step this note explains (it was unmapped on line 5)",
        ])
    }

    func testANoteAfterTheLastStepTakesOnlyFixedFacts() throws {
        let source = "process app\nnote \"the end: {=4 KiB} pages, {{ok}}, {app.rss}\""
        let problems = checkScript(try parseScript(source, fileName: "n.ump"), sourceLines: scenarioSourceLines(source)) { _ in true }
        XCTAssertEqual(problems.map { "\($0.location.line):\($0.location.column) \($0.message)" },
                       ["2:40 {app.rss}: a note after the last step has no step to take it from"])
        XCTAssertEqual(NoteText.plain("the end: {=4 KiB} pages, {{ok}}"), "the end: 4 KiB pages, {ok}")
        XCTAssertEqual(NoteText.plain("left {app.rss} as written"), "left {app.rss} as written")
    }

    func testTheCheckerRefusesUnknownPlaceholdersWithTheirColumn() throws {
        let source = """
            process app
            note "x {bogus} y {app.nope} z {ghost.rss} {=} {unclosed"
            app malloc buf 4K
            note "a stray } here"
            app read buf
            """
        let script = try parseScript(source, fileName: "n.ump")
        let problems = checkScript(script, sourceLines: scenarioSourceLines(source)) { _ in true }
        XCTAssertEqual(problems.map { "\($0.location.line):\($0.location.column) \($0.message)" }, [
            "2:48 '{' with no '}' in the note",
            "4:15 '}' with no '{' in the note",
        ])
        let source2 = """
            process app
            note "x {bogus} y {app.nope} z {ghost.rss} {=} {child.rss}"
            app fork child
            """
        let p2 = checkScript(try parseScript(source2, fileName: "n.ump"), sourceLines: scenarioSourceLines(source2)) { _ in true }
        XCTAssertEqual(p2.map { "\($0.location.column) \($0.message)" }, [
            "9 unknown placeholder {bogus}",
            "19 unknown placeholder {app.nope}: unknown key 'nope' for a process",
            "32 unknown placeholder {ghost.rss}: no process or device named 'ghost' in the script",
            "44 '{=}' needs the fixed text after '='",
        ])
    }
}

final class PageWalkTests: XCTestCase {
    func testAVirtualAddressSplitsIntoItsFourLevels() {
        let r = scenario("process app\napp mmap buf 64K\napp write buf")
        let b = r.buffer("app", "buf")
        let va = b.start + 0x2010
        let w = r.state.walk(process: r.p("app"), va: va)
        let pt = r.pt("app")
        XCTAssertEqual(w.levels.map(\.name), ["PGD", "P4D", "PUD", "PMD", "PTE"])
        XCTAssertEqual(w.levels.filter { !$0.folded }.map(\.index),
                       [(va >> 39) & 511, (va >> 30) & 511, (va >> 21) & 511, (va >> 12) & 511])
        XCTAssertEqual(w.levels.filter { !$0.folded }.map(\.tableFrame),
                       [Int(pt.pgd), pt.upper[(va >> 39) | (1 << 62)].map(Int.init), pt.upper[va >> 30].map(Int.init),
                        pt.tables[va >> 21].map { Int($0.pfn) }])
        XCTAssertEqual(w.levels.map { "\($0.highBit):\($0.lowBit)" }, ["47:39", "47:39", "38:30", "29:21", "20:12"])
        XCTAssertEqual(w.inputBits, 48)
        XCTAssertEqual(w.offset, 0x10)
        XCTAssertEqual(w.end, .leaf(pfn: r.pfns("app", "buf")[2], size: 4096))
    }

    func testATHPEndsAtThePMDAndAnUntouchedPageIsMissing() {
        let r = scenario("machine ram=64M thp=always\nprocess app\napp mmap big 4M\napp write big 0 4K\napp mmap small 64K")
        let big = r.buffer("app", "big")
        let w = r.state.walk(process: r.p("app"), va: big.start + 0x1234)
        XCTAssertEqual(w.levels.last?.name, "PMD")
        XCTAssertEqual(w.offsetBits, 21)
        XCTAssertEqual(w.offset, 0x1234)
        guard case let .leaf(pfn, size) = w.end else { return XCTFail("\(w.end)") }
        XCTAssertEqual(size, 2 << 20)
        XCTAssertEqual(pfn, r.state.processes[r.p("app")].pt.hugePMDs[big.start >> 21]?.number)
        // The other 2 MiB of the buffer: nothing below the PMD table.
        let small = r.buffer("app", "small")
        XCTAssertEqual(r.state.walk(process: r.p("app"), va: small.start).end, .missing(level: "PMD"))
    }

    func testAnIOVAWalksTheFormatsLevels() {
        let r = scenario("""
            machine ram=256M memlock=64M
            process app
            device vt iommu=vtd
            device v7 iommu=arm-v7s
            device amd iommu=amd-v1
            app mmap buf 4M hugepage
            app write buf
            vt map app.buf
            v7 map app.buf
            amd map app.buf
            """)
        let vt = r.ioptes("vt")[0]
        let w = r.state.ioWalk(device: r.d("vt"), iova: vt.iova)!
        XCTAssertEqual(w.inputBits, 48)
        XCTAssertEqual(w.levels.map(\.name), ["SL-PML4", "SL-PDP", "SL-PD"], "a 2 MiB IOPTE ends one level above the PT")
        XCTAssertEqual(w.levels.map(\.index), [(vt.iova >> 39) & 511, (vt.iova >> 30) & 511, (vt.iova >> 21) & 511])
        XCTAssertEqual(w.end, .leaf(pfn: Int(vt.pa >> 12), size: 2 << 20))
        XCTAssertTrue(w.levels.allSatisfy { $0.tableFrame.map { r.use($0) == .iopagetable } ?? false })
        let v7 = r.ioptes("v7")[0]
        let w7 = r.state.ioWalk(device: r.d("v7"), iova: v7.iova)!
        XCTAssertEqual(w7.inputBits, 32)
        XCTAssertEqual(w7.levels.map(\.name), ["L1"], "a 1 MiB section is an L1 entry")
        XCTAssertEqual(w7.levels[0].index, (v7.iova >> 20) & 4095)
        XCTAssertEqual(w7.end, .leaf(pfn: Int(v7.pa >> 12), size: 1 << 20))
        let wa = r.state.ioWalk(device: r.d("amd"), iova: r.ioptes("amd")[0].iova)!
        XCTAssertEqual(wa.inputBits, 39)
        XCTAssertEqual(wa.levels.first?.name, "level 3")
        // An IOVA nothing maps ends where the tables stop.
        guard case .missing = r.state.ioWalk(device: r.d("vt"), iova: 0x1000)!.end else { return XCTFail("mapped?") }
    }
}

final class PinnedSharedPageTests: XCTestCase {
    /// A pinned page fork leaves shared read-only (before 5.9) has a look of its own; 6.12 copies
    /// it for the child, so the parent's page stays plainly pinned.
    func testAPinnedPageSharedByForkIsItsOwnKind() {
        let setup = "process app\ndevice nic iommu=vtd\napp mmap buf 16K\napp write buf\nnic map app.buf\napp fork child"
        let legacy = scenario("machine ram=64M kernel=legacy\n" + setup)
        let vpns = legacy.vpns("app", "buf")
        XCTAssertEqual(vpns.map { legacy.state.pageKind(legacy.pt("app"), vpn: $0) }, Array(repeating: .pinnedShared, count: 4))
        XCTAssertEqual(vpns.map { legacy.state.pageKind(legacy.pt("child"), vpn: $0) }, Array(repeating: .pinnedShared, count: 4))
        let now = scenario("machine ram=64M\n" + setup)
        XCTAssertEqual(vpns.map { now.state.pageKind(now.pt("app"), vpn: $0) }, Array(repeating: .pinned, count: 4))
        XCTAssertEqual(vpns.map { now.state.pageKind(now.pt("child"), vpn: $0) }, Array(repeating: .privatePage, count: 4))
    }
}

final class RawPTETests: XCTestCase {
    func testPresentEntriesReadAsX86() {
        let r = scenario("machine ram=64M thp=always\nprocess app\napp mmap buf 64K\napp mmap big 2M\napp read buf 0 4K\napp write buf 4K 4K\napp write big 0 4K")
        let vpn = r.buffer("app", "buf").start >> 12
        let zero = r.pt("app").entry(vpn: vpn)
        XCTAssertEqual(zero.raw, 1 << 63 | UInt64(r.zeroPfn) << 12 | 0x225, "P|US|A|SPECIAL|NX")
        XCTAssertEqual(zero.bitNames.map(\.name), ["P", "US", "A", "SPECIAL", "NX"])
        let written = r.pt("app").entry(vpn: vpn + 1)
        XCTAssertEqual(written.raw & 0xfff, 0x067, "P|RW|US|A|D")
        XCTAssertEqual(written.raw >> 63, 1)
        XCTAssertEqual(written.number, r.pageFrames("app", "buf")[1])
        let huge = r.pt("app").hugePMDs[r.buffer("app", "big").start >> 21]!
        XCTAssertEqual(huge.raw & 0xfff, 0x0e7, "P|RW|US|A|D|PSE")
        XCTAssertTrue(huge.isHuge)
        XCTAssertFalse(written.isHuge, "bit 7 of a 4 KiB PTE is PAT, never set here")
        XCTAssertEqual(PTE.page(pfn: 5, writable: false, exec: true).raw, 5 << 12 | 0x25, "text: P|US|A, no NX")
    }

    func testSwapEntriesAreEncodedAsX86Encodes() {
        for slot in [0, 1, 7, 12345, (1 << 40) - 1] {
            for exclusive in [false, true] {
                let e = PTE.swapEntry(slot: slot, exclusive: exclusive)
                XCTAssertFalse(e.present)
                XCTAssertTrue(e.isSwap)
                XCTAssertFalse(e.isNone)
                XCTAssertEqual(e.number, slot)
                XCTAssertEqual(e.swapExclusive, exclusive)
                // __swp_entry(0, offset): the offset inverted in bits 9...58, the type (0) above, bit 3 the exclusive mark.
                XCTAssertEqual(e.raw, ((~UInt64(slot) << 14) >> 5) | (exclusive ? 8 : 0))
                XCTAssertEqual(e.raw >> 59, 0)
            }
        }
        // A real swap-out writes these.
        var r = scenario("machine ram=64M swap=16M\nprocess app\napp mmap buf 64K\napp write buf")
        r.ok("pressure 64K")
        let e = r.pt("app").entry(vpn: r.buffer("app", "buf").start >> 12)
        XCTAssertTrue(e.isSwap)
        XCTAssertTrue(e.swapExclusive)
        XCTAssertEqual(e.raw & 1, 0)
    }
}

final class MemoryTraceTests: XCTestCase {
    private func access(_ kind: MemoryAccess.Kind, _ address: UInt64, _ size: UInt32 = 8) -> MemoryAccess {
        MemoryAccess(address: address, size: size, kind: kind)
    }

    func testATraceMakesItsVMAsAndFaultsPageByPage() throws {
        let trace: [MemoryAccess] = [
            access(.instruction, 0x401000, 4), access(.instruction, 0x401ffe, 4),   // crosses into 0x402000
            access(.load, 0x480_0000), access(.load, 0x480_1000), access(.store, 0x480_1008),
            access(.store, 0x400_0010), access(.modify, 0x400_1000),
            access(.store, 0x1f_fefff_f00), access(.load, 0x1f_feffe_f00),
        ]
        let traces = MemoryArrayTraces(files: ["t.lackey": trace])
        let source = "machine ram=64M\nprocess app\napp trace t.lackey format=lackey"
        let plan = StepPlan(try parseScript(source, fileName: "t.ump"))
        var tl = Timeline(plan: plan, traces: traces, policy: .none)
        tl.stepForward()
        let before = tl.engine.state
        let rec = try XCTUnwrap(tl.stepForward())
        XCTAssertEqual(rec.outcome, .ok, rec.text)
        let t = try XCTUnwrap(rec.trace)
        XCTAssertEqual([t.instructions, t.loads, t.stores, t.modifies], [2, 3, 3, 1])
        XCTAssertEqual(t.textPages, 2)
        XCTAssertEqual(rec.events[.zeroPageMapped], 3, "two mmap-area loads and the stack load")
        XCTAssertEqual(rec.events[.wpPageCopy(.zeroPage)], 1, "the store after the load of 0x4801000")
        XCTAssertEqual(rec.events[.anonymousPage], 3, "two heap pages and one stack page, first touched by a store")
        XCTAssertEqual(t.vmas.map(\.name), ["text", "heap", "mmap", "stack"])
        XCTAssertEqual(t.vmas.map(\.pages), [2, 2, 2, 2])
        let meta = tl.engine.state.processes[0].meta
        let traceBuffers = meta.buffers.filter { $0.kind == .trace }
        XCTAssertEqual(traceBuffers.map(\.name), ["text", "heap", "mmap", "stack"])
        XCTAssertEqual(meta.vmas.filter { $0.label.hasPrefix("[trace") }.map { "\(hex($0.start))-\(hex($0.end)) \($0.permissions)" },
                       ["0x401000-0x403000 r-xp", "0x4000000-0x4002000 rw-p", "0x4800000-0x4802000 rw-p", "0x1ffeffe000-0x1fff000000 rw-p"])
        XCTAssertEqual(t.rssSamples.last, 4, "two heap pages, the copied mmap page, one stack page")
        // The JSON state lists them as buffers of kind trace, with their pages.
        var w = JSONWriter()
        tl.engine.writeState(into: &w)
        XCTAssertTrue(w.string.contains(#""name":"mmap","start":75497472,"size":8192,"kind":"trace""#), w.string)
        // Undo puts everything back.
        tl.stepBack()
        XCTAssertEqual(tl.engine.state, before)
    }

    func testAccessesOutsideUserSpaceAreSIGSEGV() throws {
        for address: UInt64 in [0x8000, 0xffff_ffff_ffff_f000, 0x8000_0000_0000] {
            let plan = StepPlan(try parseScript("process app\napp trace t", fileName: "t.ump"))
            var tl = Timeline(plan: plan, traces: MemoryArrayTraces(files: ["t": [access(.store, address, 4096)]]), policy: .none)
            tl.stepForward()
            let rec = try XCTUnwrap(tl.stepForward())
            XCTAssertEqual(rec.outcome, .signal("SIGSEGV"), "\(hex(address)): \(rec.text)")
            XCTAssertFalse(tl.engine.state.processes[0].meta.alive)
        }
    }

    func testTheProgramsOwnImageKeepsItsPermissions() throws {
        let plan = StepPlan(try parseScript("process app\napp trace t", fileName: "t.ump"))
        let trace = [access(.instruction, imageBase, 4), access(.store, imageBase + 0x1000, 8)]
        var tl = Timeline(plan: plan, traces: MemoryArrayTraces(files: ["t": trace]), policy: .none)
        tl.stepForward()
        let rec = try XCTUnwrap(tl.stepForward())
        XCTAssertEqual(rec.outcome, .signal("SIGSEGV"), rec.text)
        XCTAssertTrue(rec.text.contains("without write permission"), rec.text)
        XCTAssertEqual(rec.trace?.textPages, 1, "the fetch from the image counts as text")
    }

    func testAStoreToWhatLookedLikeTextBecomesData() throws {
        let trace = [access(.instruction, 0x401000), access(.instruction, 0x405000), access(.store, 0x403000)]
        let plan = StepPlan(try parseScript("process app\napp trace t", fileName: "t.ump"))
        var tl = Timeline(plan: plan, traces: MemoryArrayTraces(files: ["t": trace]), policy: .none)
        tl.stepForward()
        let rec = try XCTUnwrap(tl.stepForward())
        XCTAssertEqual(rec.outcome, .ok, rec.text)
        let labels = tl.engine.state.processes[0].meta.vmas.filter { $0.label.hasPrefix("[trace") }.map { "\(hex($0.start)) \($0.label) \($0.permissions)" }
        XCTAssertEqual(labels, ["0x401000 [trace text] r-xp", "0x403000 [trace data] rw-p", "0x404000 [trace text] r-xp"])
        XCTAssertEqual(rec.events[.anonymousPage], 1)
    }
}
