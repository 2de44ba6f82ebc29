import XCTest

@testable import Engine

final class ParserTests: XCTestCase {
    // MARK: Helpers

    /// `line` parses to exactly this statement (at line 1, column 1, with `line` as its text).
    private func assertParses(_ line: String, _ kind: StatementKind, file: StaticString = #filePath, line l: UInt = #line) {
        do {
            let statement = try parseStatement(line)
            XCTAssertEqual(statement, Statement(kind: kind, location: SourceLocation(line: 1, column: 1), text: line),
                           file: file, line: l)
        } catch {
            XCTFail("unexpected error:\n\(error.rendered)", file: file, line: l)
        }
    }

    /// `line` fails with exactly this rendered text.
    private func assertError(_ line: String, _ expected: String, file: StaticString = #filePath, line l: UInt = #line) {
        do {
            let statement = try parseStatement(line, lineNumber: 3, fileName: "demo.ump")
            XCTFail("expected an error, got \(String(describing: statement))", file: file, line: l)
        } catch {
            XCTAssertEqual(error.rendered, expected, file: file, line: l)
        }
    }

    private let K: UInt64 = 1024, M: UInt64 = 1024 * 1024, G: UInt64 = 1024 * 1024 * 1024

    // MARK: Declarations

    func testMachineWithEveryOption() {
        var m = MachineDecl()
        m.ram = 128 * M
        m.thp = .always
        m.kernel = .legacy
        m.memlock = 16 * M
        m.swap = 1 * G
        m.cma = 32 * M
        m.umpLimit = .memlock
        m.seed = 42
        m.fragment = 30
        assertParses("machine ram=128M thp=always kernel=legacy memlock=16M swap=1G cma=32M ump-limit=memlock seed=42 fragment=30",
                     .machine(m))
    }

    func testMachineLeavesDefaultsUnset() {
        assertParses("machine", .machine(MachineDecl()))
        var m = MachineDecl()
        m.kernel = .v6_12
        m.fragment = 100
        assertParses("machine fragment=100% kernel=6.12", .machine(m))
    }

    func testProcessDeclarations() {
        assertParses("process app", .process(ProcessDecl(name: "app")))
        assertParses("process app_2-x cap=ipc_lock memlock=0x10000",
                     .process(ProcessDecl(name: "app_2-x", memlock: 0x10000, capIPCLock: true)))
        assertParses("process _p cap=none", .process(ProcessDecl(name: "_p")))
    }

    func testDeviceWithEveryOption() {
        var d = DeviceDecl(name: "isp")
        d.iommu = .armV7s
        d.pagesizes = [4 * K, 64 * K, 1 * M]
        d.iotlb = 32
        d.ways = 4
        d.policy = .fifo
        d.walkNs = 300
        d.hitNs = 1_000
        d.flush = .lazy
        assertParses("device isp iommu=arm-v7s pagesizes=1M,4K,64K iotlb=32 ways=4 policy=fifo walk=300 hit=1_000 flush=lazy",
                     .device(d))
    }

    func testDeviceWaysFullIsZero() {
        var d = DeviceDecl(name: "gpu")
        d.ways = 0
        d.iommu = IOMMUFormat.none
        assertParses("device gpu ways=full iommu=none", .device(d))
    }

    // MARK: Process events

    func testEveryProcessVerb() {
        let cases: [(String, ProcessEvent)] = [
            ("app malloc buf 8M", .malloc(buffer: "buf", size: 8 * M)),
            ("app free buf", .free(buffer: "buf")),
            ("app mmap buf 2M", .mmap(buffer: "buf", size: 2 * M, shared: false, populate: false, locked: false, hugepage: false)),
            ("app mmap buf 2M hugepage locked populate shared",
             .mmap(buffer: "buf", size: 2 * M, shared: true, populate: true, locked: true, hugepage: true)),
            ("app munmap buf", .munmap(buffer: "buf", range: nil)),
            ("app munmap buf 4K 8K", .munmap(buffer: "buf", range: BufferRange(offset: 4 * K, size: 8 * K))),
            ("app read buf", .read(buffer: "buf", range: nil)),
            ("app read buf 0x1000", .read(buffer: "buf", range: BufferRange(offset: 0x1000, size: nil))),
            ("app write buf 0 64K", .write(buffer: "buf", range: BufferRange(offset: 0, size: 64 * K))),
            ("app madvise buf dontneed", .madvise(buffer: "buf", advice: .dontneed, range: nil)),
            ("app madvise buf hugepage 2M 2M", .madvise(buffer: "buf", advice: .hugepage, range: BufferRange(offset: 2 * M, size: 2 * M))),
            ("app madvise buf dontfork", .madvise(buffer: "buf", advice: .dontfork, range: nil)),
            ("app madvise buf dofork", .madvise(buffer: "buf", advice: .dofork, range: nil)),
            ("app mlock buf", .mlock(buffer: "buf")),
            ("app munlock buf", .munlock(buffer: "buf")),
            ("app fork child", .fork(child: "child")),
            ("app exit", .exit),
            ("app pin buf", .pin(buffer: "buf", range: nil, write: false, longterm: false, get: false)),
            ("app pin buf 0 4K get longterm write",
             .pin(buffer: "buf", range: BufferRange(offset: 0, size: 4 * K), write: true, longterm: true, get: true)),
            ("app unpin buf", .unpin(buffer: "buf")),
            ("app ump-alloc ubuf 8M", .umpAlloc(buffer: "ubuf", size: 8 * M, linear: false)),
            ("app ump-alloc ubuf 8M linear", .umpAlloc(buffer: "ubuf", size: 8 * M, linear: true)),
            ("spy ump-import stolen 0x2a", .umpImport(buffer: "stolen", secureID: 42)),
            ("app dmabuf-alloc db 1M", .dmabufAlloc(buffer: "db", size: 1 * M, heap: .system)),
            ("app dmabuf-alloc db 1M heap=cma", .dmabufAlloc(buffer: "db", size: 1 * M, heap: .cma)),
            ("app send db other", .send(buffer: "db", to: "other")),
        ]
        for (line, event) in cases {
            let process = String(line.prefix { $0 != " " })
            assertParses(line, .processEvent(process: process, event))
        }
    }

    func testFlagsMayBeANameWhenTheyFillAPositional() {
        // The first word after the verb is always the buffer, even when it reads like a flag.
        assertParses("app pin write write", .processEvent(process: "app", .pin(buffer: "write", range: nil, write: true, longterm: false, get: false)))
    }

    // MARK: Device events

    func testEveryDeviceVerb() {
        let ref = BufferRef(process: "app", buffer: "frame")
        let cases: [(String, DeviceEvent)] = [
            ("isp map app.frame", .map(ref, range: nil, iova: nil, access: nil)),
            ("isp map app.frame 4K 8K write iova=0x100000",
             .map(ref, range: BufferRange(offset: 4 * K, size: 8 * K), iova: 0x100000, access: .write)),
            ("isp map app.frame read", .map(ref, range: nil, iova: nil, access: .read)),
            ("isp unmap app.frame", .unmap(ref)),
            ("isp dma app.frame read", .dma(ref, access: .read, pattern: .seq, size: 64, count: nil, passes: 1, transient: false)),
            ("isp dma app.frame transient pattern=random size=4K count=1_000 passes=3 write",
             .dma(ref, access: .write, pattern: .random, size: 4 * K, count: 1_000, passes: 3, transient: true)),
            ("isp dma app.frame read pattern=stride:4K",
             .dma(ref, access: .read, pattern: .stride(4 * K), size: 64, count: nil, passes: 1, transient: false)),
            ("isp dma app.frame write pattern=tile:640x480@2560 size=64",
             .dma(ref, access: .write, pattern: .tile(width: 640, height: 480, pitch: 2560), size: 64, count: nil, passes: 1,
                  transient: false)),
            ("isp dma app.frame write pattern=tile:0x280x0x1E0@4K",
             .dma(ref, access: .write, pattern: .tile(width: 640, height: 480, pitch: 4 * K), size: 64, count: nil, passes: 1,
                  transient: false)),
            ("isp dma-trace traces/ostep.txt unit=page", .dmaTrace(path: "traces/ostep.txt", unit: .page)),
            ("isp dma-trace \"my traces/a \\\"1\\\".txt\"", .dmaTrace(path: "my traces/a \"1\".txt", unit: .addr)),
        ]
        for (line, event) in cases { assertParses(line, .deviceEvent(device: "isp", event)) }
    }

    // MARK: Global commands and expect

    func testGlobalCommands() {
        assertParses("pressure 16M", .pressure(16 * M))
        assertParses("compact", .compact)
        assertParses("note \"a # is not a comment \\\\ here\"", .note("a # is not a comment \\ here"))
        assertParses("note the pages  stay put", .note("the pages  stay put"))
        assertParses("wait 500ms", .wait(500))
        assertParses("wait 1.5s", .wait(1500))
        assertParses("wait 0.25ms", .wait(0.25))
    }

    func testExpectTargetsAndValues() {
        let line = "expect app.buf present=16 zero=0 size=8M huge=0x10 pinned=1_024"
        assertParses(line, .expect(.buffer(BufferRef(process: "app", buffer: "buf")), [
            ExpectClause(key: "present", value: .integer(16), location: SourceLocation(line: 1, column: 16)),
            ExpectClause(key: "zero", value: .integer(0), location: SourceLocation(line: 1, column: 27)),
            ExpectClause(key: "size", value: .integer(8 * M), location: SourceLocation(line: 1, column: 34)),
            ExpectClause(key: "huge", value: .integer(16), location: SourceLocation(line: 1, column: 42)),
            ExpectClause(key: "pinned", value: .integer(1024), location: SourceLocation(line: 1, column: 52)),
        ]))
        assertParses("expect last ok=false errno=ENOMEM", .expect(.last, [
            ExpectClause(key: "ok", value: .bool(false), location: SourceLocation(line: 1, column: 13)),
            ExpectClause(key: "errno", value: .word("ENOMEM"), location: SourceLocation(line: 1, column: 22)),
        ]))
        assertParses("expect machine free_frames=0", .expect(.machine, [
            ExpectClause(key: "free_frames", value: .integer(0), location: SourceLocation(line: 1, column: 16)),
        ]))
        assertParses("expect app alive=true", .expect(.name("app"), [
            ExpectClause(key: "alive", value: .bool(true), location: SourceLocation(line: 1, column: 12)),
        ]))
        assertParses("expect last signal=null", .expect(.last, [
            ExpectClause(key: "signal", value: .word("null"), location: SourceLocation(line: 1, column: 13)),
        ]))
    }

    // MARK: Lines, comments, text and locations

    func testBlankAndCommentLinesAreNil() throws {
        XCTAssertNil(try parseStatement(""))
        XCTAssertNil(try parseStatement("   \t "))
        XCTAssertNil(try parseStatement("# app malloc buf 8M"))
        XCTAssertNil(try parseStatement("   # indented comment \"unterminated"))
    }

    func testTextDropsCommentAndSpacesAndLocationPointsAtTheFirstWord() throws {
        let statement = try parseStatement("\t  app malloc  buf 8M   # the heap\r", lineNumber: 7, fileName: "x.ump")
        XCTAssertEqual(statement, Statement(kind: .processEvent(process: "app", .malloc(buffer: "buf", size: 8 * M)),
                                            location: SourceLocation(line: 7, column: 4), text: "app malloc  buf 8M"))
    }

    func testParseScriptNumbersLinesAndSkipsBlanks() throws {
        let source = "# demo\r\nmachine ram=128M\r\n\r\nprocess app   # the app\napp malloc buf 8M\n"
        let script = try parseScript(source, fileName: "demo.ump")
        var m = MachineDecl()
        m.ram = 128 * M
        XCTAssertEqual(script, Script(fileName: "demo.ump", statements: [
            Statement(kind: .machine(m), location: SourceLocation(line: 2, column: 1), text: "machine ram=128M"),
            Statement(kind: .process(ProcessDecl(name: "app")), location: SourceLocation(line: 4, column: 1), text: "process app"),
            Statement(kind: .processEvent(process: "app", .malloc(buffer: "buf", size: 8 * M)),
                      location: SourceLocation(line: 5, column: 1), text: "app malloc buf 8M"),
        ]))
    }

    func testParseScriptReportsEveryBadLineTogether() {
        let source = """
            machine ram=64M
            device gpu iotbl=16
            process app
            app malloc buf 12Q
            app write buf
            note "never closed
            """
        do {
            let script = try parseScript(source, fileName: "demo.ump")
            XCTFail("expected errors, got \(script)")
        } catch {
            XCTAssertEqual(error.items.map(\.location.line), [2, 4, 6])
            XCTAssertEqual(error.rendered, """
                demo.ump:2:12: error: unknown option 'iotbl' for device
                device gpu iotbl=16
                           ^
                hint: did you mean 'iotlb'? device options: iommu, pagesizes, iotlb, ways, policy, walk, hit, flush
                demo.ump:4:16: error: expected a size like 4K, 2M or 0x1000, got '12Q'
                app malloc buf 12Q
                               ^
                demo.ump:6:6: error: unterminated string
                note "never closed
                     ^
                hint: close the string with a '"'
                """)
        }
    }

    // MARK: Sizes

    func testSizeLiterals() throws {
        let cases: [(String, UInt64)] = [
            ("4096", 4096), ("0x1000", 4096), ("0X1f", 31), ("4K", 4 * K), ("64k", 64 * K), ("1M", M), ("2m", 2 * M),
            ("1G", G), ("3g", 3 * G), ("1T", 1 << 40), ("1_000", 1000), ("0x1_0000", 0x10000), ("1_0K", 10 * K), ("0", 0),
            ("18446744073709551615", .max), ("0xFFFF_FFFF_FFFF_FFFF", .max), ("16777215T", 16_777_215 << 40),
        ]
        for (text, value) in cases { XCTAssertEqual(try Literal.size(text), value, text) }
    }

    func testBadSizes() {
        for text in ["12Q", "", "K", "0x", "_1", "1_", "1__0", "1.5M", "-4K", "4KB", "0x10K", "４K", "1K2"] {
            XCTAssertThrowsError(try Literal.size(text), text) { error in
                XCTAssertEqual((error as? ValueError)?.message, "expected a size like 4K, 2M or 0x1000, got '\(text)'")
            }
        }
    }

    func testOverflowingSizesAreErrorsNotCrashes() {
        assertError("app malloc buf 18446744073709551616", """
            demo.ump:3:16: error: size '18446744073709551616' is too large for 64 bits
            app malloc buf 18446744073709551616
                           ^
            """)
        assertError("app malloc buf 16777216T", """
            demo.ump:3:16: error: size '16777216T' is too large for 64 bits
            app malloc buf 16777216T
                           ^
            """)
        assertError("pressure 0x1_0000_0000_0000_0000", """
            demo.ump:3:10: error: size '0x1_0000_0000_0000_0000' is too large for 64 bits
            pressure 0x1_0000_0000_0000_0000
                     ^
            """)
        assertError("machine seed=99999999999999999999999", """
            demo.ump:3:14: error: number '99999999999999999999999' is too large for 64 bits
            machine seed=99999999999999999999999
                         ^
            """)
    }

    // MARK: Errors, rendered

    func testLexicalErrors() {
        assertError("note \"unterminated \\\" still inside", """
            demo.ump:3:6: error: unterminated string
            note "unterminated \\" still inside
                 ^
            hint: close the string with a '"'
            """)
        assertError("note \"a\\n\"", """
            demo.ump:3:8: error: unknown escape '\\n' in a string
            note "a\\n"
                   ^
            hint: the escapes are \\" and \\\\
            """)
        assertError("note say\"hi\"", """
            demo.ump:3:9: error: unexpected '"' inside a word
            note say"hi"
                    ^
            hint: a string starts at the beginning of a word: put a space before the quote
            """)
        assertError("note \"hi\"there", """
            demo.ump:3:10: error: expected a space after the closing quote
            note "hi"there
                     ^
            """)
    }

    func testCommandAndVerbErrors() {
        assertError("compat", """
            demo.ump:3:1: error: unknown command 'compat'
            compat
            ^
            hint: did you mean 'compact'? commands: machine, process, device, file, pressure, compact, note, wait, expect, back, set, unset, select, inspect, quiz
            """)
        assertError("machin ram=1G", """
            demo.ump:3:1: error: unknown command 'machin'
            machin ram=1G
            ^
            hint: did you mean 'machine'? commands: machine, process, device, file, pressure, compact, note, wait, expect, back, set, unset, select, inspect, quiz
            """)
        assertError("1app malloc b 4K", """
            demo.ump:3:1: error: expected a command or a process or device name, got '1app'
            1app malloc b 4K
            ^
            hint: commands: machine, process, device, file, pressure, compact, note, wait, expect, back, set, unset, select, inspect, quiz
            """)
        let verbs = "process verbs: malloc, free, mmap, memfd, munmap, mremap, read, write, madvise, mprotect, mlock, munlock, fork, exit, pin, unpin, "
            + "uring-register, uring-unregister, vmsplice, pipe-read, pipe-close, ump-alloc, ump-import, dmabuf-alloc, trace, send; device verbs: map, unmap, dma, dma-trace"
        assertError("app mallc buf 4K", """
            demo.ump:3:5: error: unknown verb 'mallc'
            app mallc buf 4K
                ^
            hint: did you mean 'malloc'? \(verbs)
            """)
        assertError("gpu zap app.buf", """
            demo.ump:3:5: error: unknown verb 'zap'
            gpu zap app.buf
                ^
            hint: did you mean 'map'? \(verbs)
            """)
        assertError("gpu teleport app.buf", """
            demo.ump:3:5: error: unknown verb 'teleport'
            gpu teleport app.buf
                ^
            hint: \(verbs)
            """)
        assertError("app", """
            demo.ump:3:4: error: 'app' needs a verb
            app
               ^
            hint: \(verbs)
            """)
    }

    func testMissingArgumentsPointPastTheEndOrAtTheNextWord() {
        assertError("app malloc buf   # no size", """
            demo.ump:3:15: error: 'malloc' needs a buffer name and a size
            app malloc buf   # no size
                          ^
            hint: usage: PROC malloc BUF SIZE
            """)
        assertError("app mmap buf shared=1", """
            demo.ump:3:14: error: 'mmap' needs a buffer name and a size
            app mmap buf shared=1
                         ^
            hint: usage: PROC mmap BUF SIZE [shared] [populate] [locked] [hugepage] [prot=r|rw|none] [file=NAME]
            """)
        assertError("app munmap buf 4K", """
            demo.ump:3:18: error: 'munmap' needs a size after the offset
            app munmap buf 4K
                             ^
            hint: give both OFFSET and SIZE, or neither for the whole buffer
            """)
        assertError("isp dma app.buf pattern=random", """
            demo.ump:3:31: error: 'dma' needs read or write
            isp dma app.buf pattern=random
                                          ^
            hint: usage: DEV dma PROC.BUF read|write [pattern=seq|random|stride:SIZE|tile:WxH@PITCH] [size=BYTES] [count=N] [passes=N] [transient]
            """)
        assertError("expect app", """
            demo.ump:3:11: error: 'expect' needs at least one KEY=VALUE
            expect app
                      ^
            hint: usage: expect TARGET KEY=VALUE ..., e.g. expect app.buf present=16
            """)
        assertError("process", """
            demo.ump:3:8: error: 'process' needs a name
            process
                   ^
            hint: usage: process NAME [memlock=SIZE] [cap=ipc_lock|none]
            """)
    }

    func testOptionAndFlagErrors() {
        assertError("device gpu iotbl=16", """
            demo.ump:3:12: error: unknown option 'iotbl' for device
            device gpu iotbl=16
                       ^
            hint: did you mean 'iotlb'? device options: iommu, pagesizes, iotlb, ways, policy, walk, hit, flush
            """)
        assertError("isp dma app.b read sise=4K", """
            demo.ump:3:20: error: unknown option 'sise' for 'dma'
            isp dma app.b read sise=4K
                               ^
            hint: did you mean 'size'? dma options: pattern, size, count, passes
            """)
        assertError("machine ram=64M swap=1G ram=128M", """
            demo.ump:3:25: error: option 'ram' is given twice
            machine ram=64M swap=1G ram=128M
                                    ^
            """)
        assertError("app mmap b 4K shared shared", """
            demo.ump:3:22: error: 'shared' is given twice
            app mmap b 4K shared shared
                                 ^
            """)
        assertError("app mmap b 4K shard", """
            demo.ump:3:15: error: unknown flag 'shard' for 'mmap'
            app mmap b 4K shard
                          ^
            hint: did you mean 'shared'? usage: PROC mmap BUF SIZE [shared] [populate] [locked] [hugepage] [prot=r|rw|none] [file=NAME]
            """)
        assertError("app malloc b 4K extra", """
            demo.ump:3:17: error: too many arguments for 'malloc'
            app malloc b 4K extra
                            ^
            hint: usage: PROC malloc BUF SIZE
            """)
        assertError("app free b now=1", """
            demo.ump:3:12: error: 'free' takes no options
            app free b now=1
                       ^
            hint: usage: PROC free BUF
            """)
        assertError("machine ram=", """
            demo.ump:3:13: error: option 'ram' needs a value
            machine ram=
                        ^
            """)
        assertError("isp map app.b read write", """
            demo.ump:3:20: error: give read or write, not both
            isp map app.b read write
                               ^
            """)
    }

    func testValueErrors() {
        assertError("machine ram=32G", """
            demo.ump:3:13: error: ram must be between 1M and 16G, got '32G'
            machine ram=32G
                        ^
            """)
        assertError("machine ram=512K", """
            demo.ump:3:13: error: ram must be between 1M and 16G, got '512K'
            machine ram=512K
                        ^
            """)
        assertError("machine fragment=101", """
            demo.ump:3:18: error: fragment must be a percentage from 0 to 100, got '101'
            machine fragment=101
                             ^
            """)
        assertError("machine thp=sometimes", """
            demo.ump:3:13: error: unknown value 'sometimes' for thp
            machine thp=sometimes
                        ^
            hint: thp is one of never, madvise, always
            """)
        assertError("device gpu iommu=vtdd", """
            demo.ump:3:18: error: unknown value 'vtdd' for iommu
            device gpu iommu=vtdd
                             ^
            hint: did you mean 'vtd'? iommu is one of vtd, arm-lpae, arm-v7s, amd-v1, sva, none
            """)
        assertError("device gpu iotlb=0", """
            demo.ump:3:18: error: iotlb must be between 1 and 65536, got '0'
            device gpu iotlb=0
                             ^
            """)
        assertError("device gpu pagesizes=4K,12K", """
            demo.ump:3:25: error: page size '12K' is not a power of two
            device gpu pagesizes=4K,12K
                                    ^
            hint: pagesizes is a comma list such as 4K,2M,1G
            """)
        assertError("device gpu pagesizes=2M,1K", """
            demo.ump:3:25: error: page size '1K' is smaller than 4K
            device gpu pagesizes=2M,1K
                                    ^
            hint: pagesizes is a comma list such as 4K,2M,1G
            """)
        assertError("device gpu pagesizes=4K,,2M", """
            demo.ump:3:25: error: expected a size like 4K, 2M or 0x1000, got ''
            device gpu pagesizes=4K,,2M
                                    ^
            hint: pagesizes is a comma list such as 4K,2M,1G
            """)
        assertError("device gpu iotlb=32 ways=5", """
            demo.ump:3:21: error: ways=5 does not divide the IOTLB's 32 entries
            device gpu iotlb=32 ways=5
                                ^
            hint: ways must divide iotlb (64 when not given), or write ways=full
            """)
        assertError("wait 5", """
            demo.ump:3:6: error: expected a duration like 500ms or 1.5s, got '5'
            wait 5
                 ^
            """)
        assertError("app madvise b dontned", """
            demo.ump:3:15: error: unknown value 'dontned' for madvise
            app madvise b dontned
                          ^
            hint: did you mean 'dontneed'? madvise is one of dontneed, dontfork, dofork, hugepage, nohugepage, pageout, collapse
            """)
    }

    func testNameAndPatternErrors() {
        assertError("process 1app", """
            demo.ump:3:9: error: expected a process name, got '1app'
            process 1app
                    ^
            hint: a name starts with a letter or '_' and goes on with letters, digits, '_' or '-'
            """)
        assertError("app malloc \"buf\" 4K", """
            demo.ump:3:12: error: expected a buffer name, got '"buf"'
            app malloc "buf" 4K
                       ^
            hint: a name starts with a letter or '_' and goes on with letters, digits, '_' or '-'
            """)
        assertError("isp map frame", """
            demo.ump:3:9: error: expected a buffer as PROC.BUF, got 'frame'
            isp map frame
                    ^
            hint: name the buffer with its process, e.g. app.buf
            """)
        assertError("isp dma app.b write pattern=tile:0x480@640", """
            demo.ump:3:29: error: expected tile:WxH@PITCH such as tile:640x480@2560, got 'tile:0x480@640'
            isp dma app.b write pattern=tile:0x480@640
                                        ^
            hint: pattern is one of seq, random, stride:SIZE, tile:WxH@PITCH
            """)
        assertError("isp dma app.b write pattern=tile:640x0@640", """
            demo.ump:3:38: error: tile height must be positive, got '0'
            isp dma app.b write pattern=tile:640x0@640
                                                 ^
            hint: pattern is one of seq, random, stride:SIZE, tile:WxH@PITCH
            """)
        assertError("isp dma app.b write pattern=tile:640x480@512", """
            demo.ump:3:42: error: tile pitch 512 is smaller than its width 640
            isp dma app.b write pattern=tile:640x480@512
                                                     ^
            """)
        assertError("isp dma app.b write pattern=stride:0", """
            demo.ump:3:36: error: stride must be positive, got '0'
            isp dma app.b write pattern=stride:0
                                               ^
            hint: pattern is one of seq, random, stride:SIZE, tile:WxH@PITCH
            """)
        assertError("isp dma app.b write size=0", """
            demo.ump:3:26: error: size must be at least 1 byte, got '0'
            isp dma app.b write size=0
                                     ^
            """)
    }

    func testExpectErrors() {
        assertError("expect app.buf present=1 present=2", """
            demo.ump:3:26: error: 'present' is given twice
            expect app.buf present=1 present=2
                                     ^
            """)
        assertError("expect app.buf 16", """
            demo.ump:3:16: error: expected KEY=VALUE, got '16'
            expect app.buf 16
                           ^
            hint: usage: expect TARGET KEY=VALUE ..., e.g. expect app.buf present=16
            """)
        assertError("expect app.buf present=12Q", """
            demo.ump:3:24: error: expected a size like 4K, 2M or 0x1000, got '12Q'
            expect app.buf present=12Q
                                   ^
            """)
        assertError("expect app.buf.x present=1", """
            demo.ump:3:8: error: expected a buffer as PROC.BUF, got 'app.buf.x'
            expect app.buf.x present=1
                   ^
            hint: name the buffer with its process, e.g. app.buf
            """)
    }

    func testSuggestionsCountASwapAsOneEditAndStayCloseForShortWords() {
        XCTAssertEqual(Suggest.distance("iotbl", "iotlb"), 1)
        XCTAssertEqual(Suggest.distance("kitten", "sitting"), 3)
        XCTAssertEqual(Suggest.closest(to: "iotbl", among: ["iommu", "iotlb", "ways"]), "iotlb")
        XCTAssertEqual(Suggest.closest(to: "ap", among: ["app", "child"]), "app")
        XCTAssertNil(Suggest.closest(to: "rss", among: ["ram", "frames"]))
        XCTAssertNil(Suggest.closest(to: "teleport", among: ["map", "unmap"]))
    }

    func testCaretKeepsTabs() {
        assertError("\tapp malloc b 4Q", "demo.ump:3:15: error: expected a size like 4K, 2M or 0x1000, got '4Q'\n"
                        + "\tapp malloc b 4Q\n\t             ^")
    }

    // MARK: Robustness

    /// Random bytes and random mixes of the language's own words never crash the parser,
    /// the checker or the overrides; every error carries a location on its line.
    func testNoCrashOnRandomInput() {
        var rng = SplitMix64(seed: 0x5eed)
        let words = ["machine", "process", "device", "app", "gpu", "malloc", "mmap", "map", "dma", "dma-trace", "expect",
                     "note", "wait", "fork", "send", "app.buf", "buf", "4K", "0x", "0x1_0", "18446744073709551616", "1.5s",
                     "ram=", "=", "iotlb=0", "ways=full", "pattern=tile:0x0x0@", "pattern=stride:", "pagesizes=4K,,",
                     "\"", "\"a\\\"", "\\", "#", "read", "write", "last", "present=", "a=b=c", "é", "👩‍👩‍👧", "\t", "_", "-", "."]
        for i in 0..<3000 {
            var line = ""
            if i % 2 == 0 {
                let bytes = (0..<rng.next(below: 40)).map { _ in UInt8(truncatingIfNeeded: rng.next(below: 256)) }
                line = String(decoding: bytes, as: UTF8.self)
            } else {
                line = (0..<rng.next(below: 9)).map { _ in words[rng.next(below: words.count)] }.joined(separator: " ")
            }
            do {
                if let statement = try parseStatement(line) {
                    _ = checkScript(Script(fileName: "f", statements: [statement]), sourceLines: [line]) { _ in false }
                }
            } catch {
                XCTAssert((1...(line.count + 1)).contains(error.location.column), "column \(error.location.column) for \(line)")
            }
            var script = Script(fileName: "f", statements: [])
            _ = try? applyOverrides([line], to: &script)
        }
        let source = (0..<500).map { _ in words[rng.next(below: words.count)] }.joined(separator: rng.next(below: 2) == 0 ? " " : "\n")
        do {
            let script = try parseScript(source, fileName: "f")
            _ = checkScript(script, sourceLines: scenarioSourceLines(source)) { _ in true }
        } catch {
            XCTAssertFalse(error.items.isEmpty)
        }
    }
}

/// A small deterministic generator for the random-input test.
private struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func next(below n: Int) -> Int { Int(next() % UInt64(n)) }
}

// MARK: - `--set` overrides: the same option tables as the parser

extension ParserTests {
    private func script(_ source: String) throws -> Script { try parseScript(source, fileName: "demo.ump") }

    func testOverridesChangeTheMatchingDeclarations() throws {
        var s = try script("machine ram=64M thp=never\nprocess app\ndevice gpu iommu=vtd iotlb=64\napp malloc b 4K")
        try applyOverrides(["machine.ram=1G", "gpu.iotlb=16", "gpu.pagesizes=4K", "app.memlock=16M", "app.cap=ipc_lock",
                            "machine.kernel=legacy", "gpu.iotlb=32"], to: &s)
        var m = MachineDecl()
        m.ram = 1 << 30
        m.thp = .never
        m.kernel = .legacy
        var d = DeviceDecl(name: "gpu")
        d.iommu = .vtd
        d.iotlb = 32
        d.pagesizes = [4096]
        let expected = try script("""
            machine ram=1G thp=never kernel=legacy
            process app memlock=16M cap=ipc_lock
            device gpu iommu=vtd iotlb=32 pagesizes=4K
            app malloc b 4K
            """)
        XCTAssertEqual(s, expected)
        XCTAssertEqual(s.statements[0].kind, .machine(m))
        XCTAssertEqual(s.statements[2].kind, .device(d))
    }

    func testAMachineOverrideInsertsAMachineAtTheTop() throws {
        var s = try script("process app\napp malloc b 4K")
        try applyOverrides(["machine.ram=1G"], to: &s)
        var m = MachineDecl()
        m.ram = 1 << 30
        XCTAssertEqual(s.statements.first, Statement(kind: .machine(m), location: SourceLocation(line: 0, column: 1),
                                                     text: "machine ram=1G"))
        XCTAssertEqual(s.statements.count, 3)
    }

    func testBadOverridesAreReportedTogetherAndChangeNothing() throws {
        let original = try script("process app\ndevice gpu iotlb=32")
        var s = original
        do {
            try applyOverrides(["gpu.iotbl=16", "gpux.iotlb=16", "machine.ram=12Q", "gpu.pagesizes=4K,3K", "ram=1G",
                                "machine.ram", "gpu.ways=3", "app.cap=", "machine.ram=1G"], to: &s)
            XCTFail("expected errors")
        } catch {
            XCTAssertEqual(error.rendered, """
                --set:0:5: error: unknown option 'iotbl' for device
                gpu.iotbl=16
                    ^
                hint: did you mean 'iotlb'? device options: iommu, pagesizes, iotlb, ways, policy, walk, hit, flush
                --set:0:1: error: no process or device named 'gpux' is declared
                gpux.iotlb=16
                ^
                hint: did you mean 'gpu'? targets: machine, app, gpu
                --set:0:13: error: expected a size like 4K, 2M or 0x1000, got '12Q'
                machine.ram=12Q
                            ^
                --set:0:18: error: page size '3K' is smaller than 4K
                gpu.pagesizes=4K,3K
                                 ^
                hint: pagesizes is a comma list such as 4K,2M,1G
                --set:0:1: error: expected TARGET.KEY before '=', got 'ram'
                ram=1G
                ^
                hint: write TARGET.KEY=VALUE, e.g. --set machine.ram=1G or --set gpu.iotlb=16
                --set:0:1: error: expected TARGET.KEY=VALUE, got 'machine.ram'
                machine.ram
                ^
                hint: write TARGET.KEY=VALUE, e.g. --set machine.ram=1G or --set gpu.iotlb=16
                --set:0:10: error: ways=3 does not divide the IOTLB's 32 entries
                gpu.ways=3
                         ^
                hint: ways must divide iotlb (64 when not given), or write ways=full
                --set:0:9: error: option 'cap' needs a value
                app.cap=
                        ^
                """)
        }
        XCTAssertEqual(s, original)
    }

    /// A script has at most maxScenarioStatements statements (here a limit of 3): the next one is
    /// named with its line, and nothing past it is read.
    func testTheStatementLimitNamesTheLineThatPassesIt() {
        XCTAssertNoThrow(try parseScript("machine\n# c\nprocess a\na mmap x 4K", fileName: "l.ump", statementLimit: 3))
        XCTAssertThrowsError(try parseScript("machine\n# c\nprocess a\na mmap x 4K\n  a write x\nbogus", fileName: "l.ump", statementLimit: 3)) { e in
            XCTAssertEqual((e as? Diagnostics)?.items.map(\.rendered.firstLine), ["l.ump:5:3: error: more than 3 statements: a scenario may have at most 3; split it, or record a shorter session"])
        }
        XCTAssertEqual(maxScenarioStatements, 1_000_000)
    }
}

private extension String {
    var firstLine: String { components(separatedBy: "\n").first ?? self }
}
