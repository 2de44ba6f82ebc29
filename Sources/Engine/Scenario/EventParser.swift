// `PROC VERB ...` and `DEV VERB ...`. The parser cannot know whether a name is a process or a
// device, so the verb decides: process verbs and device verbs are disjoint sets.

/// One verb: its argument shape and how its split arguments become an event.
struct Verb<Event>: Sendable {
    var shape: CommandShape
    var build: @Sendable (EventParser, Arguments) throws(LineError) -> Event
}

struct EventParser {
    let line: LineParser

    func event() throws(LineError) -> StatementKind {
        let tokens = line.tokens
        let subject = tokens[0].raw
        guard tokens.count > 1 else {
            try unknownCommand(tokens[0])
            throw LineError("'\(subject)' needs a verb", at: line.lexed.endColumn, hint: Self.verbList)
        }
        let verb = tokens[1].raw
        if let v = Self.processVerbs.first(where: { $0.shape.name == verb }) {
            return .processEvent(process: subject, try v.build(self, try line.arguments(v.shape, from: 2)))
        }
        if let v = Self.deviceVerbs.first(where: { $0.shape.name == verb }) {
            return .deviceEvent(device: subject, try v.build(self, try line.arguments(v.shape, from: 2)))
        }
        if Suggest.closest(to: verb, among: Self.verbNames) == nil { try unknownCommand(tokens[0]) }
        throw LineError("unknown verb '\(verb)'", at: tokens[1].column,
                        hint: Suggest.prefix(verb, among: Self.verbNames) + Self.verbList)
    }

    /// `compat` or `machin ram=1G`: a misspelt command rather than a name followed by a bad verb.
    private func unknownCommand(_ first: Token) throws(LineError) {
        if let keyword = Suggest.closest(to: first.raw, among: Keyword.statements) {
            throw LineError("unknown command '\(first.raw)'", at: first.column,
                            hint: "did you mean '\(keyword)'? commands: " + Keyword.statements.joined(separator: ", "))
        }
    }

    static var processVerbNames: [String] { processVerbs.map(\.shape.name) }
    static var deviceVerbNames: [String] { deviceVerbs.map(\.shape.name) }
    static var verbNames: [String] { processVerbNames + deviceVerbNames }
    static var verbList: String {
        "process verbs: " + processVerbNames.joined(separator: ", ")
            + "; device verbs: " + deviceVerbNames.joined(separator: ", ")
    }

    // MARK: Argument readers

    private func buffer(_ args: Arguments, _ i: Int = 0) throws(LineError) -> String {
        try line.name(args.positionals[i], "a buffer name")
    }

    private func size(_ args: Arguments, _ i: Int) throws(LineError) -> UInt64 {
        try line.value(args.positionals[i], Literal.addressSpaceSize)
    }

    /// `[OFFSET SIZE]` starting at positional `i`: both or neither.
    private func pairRange(_ args: Arguments, from i: Int, _ verb: String) throws(LineError) -> BufferRange? {
        switch args.positionals.count - i {
        case 0: return nil
        case 1: throw LineError("'\(verb)' needs a size after the offset", at: args.missingColumn,
                                hint: "give both OFFSET and SIZE, or neither for the whole buffer")
        default: return BufferRange(offset: try size(args, i), size: try size(args, i + 1))
        }
    }

    /// `[OFFSET [SIZE]]` starting at positional `i`.
    private func offsetRange(_ args: Arguments, from i: Int) throws(LineError) -> BufferRange? {
        guard args.positionals.count > i else { return nil }
        let length = args.positionals.count > i + 1 ? try size(args, i + 1) : nil
        return BufferRange(offset: try size(args, i), size: length)
    }

    /// `read` or `write` among the flags; at most one.
    private func access(_ args: Arguments) throws(LineError) -> Access? {
        switch (args.flags["read"], args.flags["write"]) {
        case (let r?, let w?): throw LineError("give read or write, not both", at: max(r.column, w.column))
        case (_?, nil): return .read
        case (nil, _?): return .write
        case (nil, nil): return nil
        }
    }

    // MARK: Process verbs

    private static func shape(_ name: String, _ usage: String, needs: String = "a buffer name", required: Int = 1,
                              optional: Int = 0, flags: [String] = [], options: [String] = []) -> CommandShape {
        CommandShape(name: name, subject: "'\(name)'", usage: usage, needs: needs, required: required,
                     optional: optional, flags: flags, options: options)
    }

    static let processVerbs: [Verb<ProcessEvent>] = [
        Verb(shape: shape("malloc", "PROC malloc BUF SIZE", needs: "a buffer name and a size", required: 2)) { p, a throws(LineError) in
            .malloc(buffer: try p.buffer(a), size: try p.size(a, 1))
        },
        Verb(shape: shape("free", "PROC free BUF")) { p, a throws(LineError) in .free(buffer: try p.buffer(a)) },
        Verb(shape: shape("mmap", "PROC mmap BUF SIZE [shared] [populate] [locked] [hugepage] [prot=r|rw|none] [file=NAME]",
                          needs: "a buffer name and a size", required: 2,
                          flags: ["shared", "populate", "locked", "hugepage"], options: ["prot", "file"])) { p, a throws(LineError) in
            .mmap(buffer: try p.buffer(a), size: try p.size(a, 1), shared: a.has("shared"), populate: a.has("populate"),
                  locked: a.has("locked"), hugepage: a.has("hugepage"),
                  prot: try p.line.option(a, "prot") { (v: String) throws(ValueError) in try Literal.choice(v, for: "prot") } ?? .rw,
                  file: try p.line.option(a, "file") { (v: String) throws(ValueError) in
                      guard Literal.isName(v) else { throw ValueError("expected a file name, got '\(v)'", hint: Literal.nameRule) }
                      return v
                  })
        },
        Verb(shape: shape("memfd", "PROC memfd BUF SIZE", needs: "a buffer name and a size", required: 2)) { p, a throws(LineError) in
            .memfd(buffer: try p.buffer(a), size: try p.size(a, 1))
        },
        Verb(shape: shape("munmap", "PROC munmap BUF [OFFSET SIZE]", optional: 2)) { p, a throws(LineError) in
            .munmap(buffer: try p.buffer(a), range: try p.pairRange(a, from: 1, "munmap"))
        },
        Verb(shape: shape("mremap", "PROC mremap BUF NEWSIZE [move]", needs: "a buffer name and a new size", required: 2,
                          flags: ["move"])) { p, a throws(LineError) in
            .mremap(buffer: try p.buffer(a), size: try p.size(a, 1), move: a.has("move"))
        },
        Verb(shape: shape("read", "PROC read BUF [OFFSET [SIZE]]", optional: 2)) { p, a throws(LineError) in
            .read(buffer: try p.buffer(a), range: try p.offsetRange(a, from: 1))
        },
        Verb(shape: shape("write", "PROC write BUF [OFFSET [SIZE]]", optional: 2)) { p, a throws(LineError) in
            .write(buffer: try p.buffer(a), range: try p.offsetRange(a, from: 1))
        },
        Verb(shape: shape("madvise", "PROC madvise BUF dontneed|dontfork|dofork|hugepage|nohugepage|pageout|collapse [OFFSET SIZE]",
                          needs: "a buffer name and an advice", required: 2, optional: 2)) { p, a throws(LineError) in
            .madvise(buffer: try p.buffer(a),
                     advice: try p.line.value(a.positionals[1]) { (v: String) throws(ValueError) in try Literal.choice(v, for: "madvise") },
                     range: try p.pairRange(a, from: 2, "madvise"))
        },
        Verb(shape: shape("mprotect", "PROC mprotect BUF [OFFSET SIZE] r|rw|none", optional: 2,
                          flags: Protection.allCases.map(\.rawValue))) { p, a throws(LineError) in
            let given = Protection.allCases.filter { a.has($0.rawValue) }
            guard given.count == 1, let prot = given.first else {
                let second = given.dropFirst().first.flatMap { a.flags[$0.rawValue]?.column }
                throw LineError(given.isEmpty ? "'mprotect' needs a protection: r, rw or none" : "give one protection, not \(given.count)",
                                at: second ?? a.missingColumn, hint: "usage: PROC mprotect BUF [OFFSET SIZE] r|rw|none")
            }
            return .mprotect(buffer: try p.buffer(a), range: try p.pairRange(a, from: 1, "mprotect"), prot: prot)
        },
        Verb(shape: shape("mlock", "PROC mlock BUF")) { p, a throws(LineError) in .mlock(buffer: try p.buffer(a)) },
        Verb(shape: shape("munlock", "PROC munlock BUF")) { p, a throws(LineError) in .munlock(buffer: try p.buffer(a)) },
        Verb(shape: shape("fork", "PROC fork CHILD", needs: "a name for the child process")) { p, a throws(LineError) in
            .fork(child: try p.line.name(a.positionals[0], "a process name"))
        },
        Verb(shape: shape("exit", "PROC exit", required: 0)) { _, _ throws(LineError) in .exit },
        Verb(shape: shape("pin", "PROC pin BUF [OFFSET SIZE] [write] [longterm] [get]", optional: 2,
                          flags: ["write", "longterm", "get"])) { p, a throws(LineError) in
            .pin(buffer: try p.buffer(a), range: try p.pairRange(a, from: 1, "pin"), write: a.has("write"),
                 longterm: a.has("longterm"), get: a.has("get"))
        },
        Verb(shape: shape("unpin", "PROC unpin BUF")) { p, a throws(LineError) in .unpin(buffer: try p.buffer(a)) },
        Verb(shape: shape("uring-register", "PROC uring-register BUF [OFFSET SIZE]", optional: 2)) { p, a throws(LineError) in
            .uringRegister(buffer: try p.buffer(a), range: try p.pairRange(a, from: 1, "uring-register"))
        },
        Verb(shape: shape("uring-unregister", "PROC uring-unregister BUF")) { p, a throws(LineError) in
            .uringUnregister(buffer: try p.buffer(a))
        },
        Verb(shape: shape("vmsplice", "PROC vmsplice BUF [OFFSET SIZE] [pipe=NAME]", optional: 2, options: ["pipe"])) { p, a throws(LineError) in
            .vmsplice(buffer: try p.buffer(a), range: try p.pairRange(a, from: 1, "vmsplice"),
                      pipe: try p.line.option(a, "pipe") { (v: String) throws(ValueError) in
                          guard Literal.isName(v) else { throw ValueError("expected a pipe name, got '\(v)'", hint: Literal.nameRule) }
                          return v
                      } ?? "pipe")
        },
        Verb(shape: shape("pipe-read", "PROC pipe-read NAME", needs: "a pipe name")) { p, a throws(LineError) in
            .pipeRead(pipe: try p.line.name(a.positionals[0], "a pipe name"))
        },
        Verb(shape: shape("pipe-close", "PROC pipe-close NAME", needs: "a pipe name")) { p, a throws(LineError) in
            .pipeClose(pipe: try p.line.name(a.positionals[0], "a pipe name"))
        },
        Verb(shape: shape("ump-alloc", "PROC ump-alloc BUF SIZE [linear]", needs: "a buffer name and a size", required: 2,
                          flags: ["linear"])) { p, a throws(LineError) in
            .umpAlloc(buffer: try p.buffer(a), size: try p.size(a, 1), linear: a.has("linear"))
        },
        Verb(shape: shape("ump-import", "PROC ump-import BUF ID", needs: "a buffer name and a secure id",
                          required: 2)) { p, a throws(LineError) in
            .umpImport(buffer: try p.buffer(a), secureID: try p.line.value(a.positionals[1], Literal.count))
        },
        Verb(shape: shape("dmabuf-alloc", "PROC dmabuf-alloc BUF SIZE [heap=system|cma]", needs: "a buffer name and a size",
                          required: 2, options: ["heap"])) { p, a throws(LineError) in
            .dmabufAlloc(buffer: try p.buffer(a), size: try p.size(a, 1),
                         heap: try p.line.option(a, "heap") { (v: String) throws(ValueError) in try Literal.choice(v, for: "heap") } ?? .system)
        },
        Verb(shape: shape("trace", "PROC trace FILE [format=lackey]", needs: "a trace file", options: ["format"])) { p, a throws(LineError) in
            let file = a.positionals[0]
            guard !file.text.isEmpty else { throw LineError("'trace' needs a trace file", at: file.column) }
            return .trace(path: file.text,
                          format: try p.line.option(a, "format") { (v: String) throws(ValueError) in try Literal.choice(v, for: "format") } ?? .lackey)
        },
        Verb(shape: shape("send", "PROC send BUF OTHER", needs: "a buffer name and the receiving process",
                          required: 2)) { p, a throws(LineError) in
            .send(buffer: try p.buffer(a), to: try p.line.name(a.positionals[1], "a process name"))
        },
    ]

    // MARK: Device verbs

    static let dmaUsage = "DEV dma PROC.BUF read|write [pattern=seq|random|stride:SIZE|tile:WxH@PITCH] "
        + "[size=BYTES] [count=N] [passes=N] [transient]"

    static let deviceVerbs: [Verb<DeviceEvent>] = [
        Verb(shape: shape("map", "DEV map PROC.BUF [OFFSET SIZE] [iova=ADDR] [read|write]", needs: "a buffer as PROC.BUF",
                          optional: 2, flags: ["read", "write"], options: ["iova"])) { p, a throws(LineError) in
            .map(try p.line.bufferRef(a.positionals[0]), range: try p.pairRange(a, from: 1, "map"),
                 iova: try p.line.option(a, "iova", Literal.iova), access: try p.access(a))
        },
        Verb(shape: shape("unmap", "DEV unmap PROC.BUF", needs: "a buffer as PROC.BUF")) { p, a throws(LineError) in
            .unmap(try p.line.bufferRef(a.positionals[0]))
        },
        Verb(shape: shape("dma", dmaUsage, needs: "a buffer as PROC.BUF", flags: ["read", "write", "transient"],
                          options: ["pattern", "size", "count", "passes"])) { p, a throws(LineError) in
            let buffer = try p.line.bufferRef(a.positionals[0])
            guard let access = try p.access(a) else {
                throw LineError("'dma' needs read or write", at: p.line.lexed.endColumn, hint: "usage: \(Self.dmaUsage)")
            }
            return .dma(buffer, access: access,
                        pattern: try p.line.option(a, "pattern", DMAPatterns.parse) ?? .seq,
                        size: try p.line.option(a, "size", DMAPatterns.burstSize) ?? 64,
                        count: try p.line.option(a, "count", DMAPatterns.accesses("count", max: DMAPatterns.maxAccessesPerPass)),
                        passes: try p.line.option(a, "passes", DMAPatterns.accesses("passes", max: DMAPatterns.maxAccesses)) ?? 1,
                        transient: a.has("transient"))
        },
        Verb(shape: shape("dma-trace", "DEV dma-trace FILE [unit=addr|page]", needs: "a trace file",
                          options: ["unit"])) { p, a throws(LineError) in
            let file = a.positionals[0]
            guard !file.text.isEmpty else { throw LineError("'dma-trace' needs a trace file", at: file.column) }
            return .dmaTrace(path: file.text,
                             unit: try p.line.option(a, "unit") { (v: String) throws(ValueError) in try Literal.choice(v, for: "unit") } ?? .addr)
        },
    ]
}
