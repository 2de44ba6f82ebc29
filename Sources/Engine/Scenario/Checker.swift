// Checks what the parser cannot see on one line: that names are declared before use, that buffers
// exist when used, that `machine` comes first, that trace files exist and that expect keys fit
// their target. What a process does after `exit` is an outcome at run time, not an error here.

/// Every semantic error of `script`, in statement order. `sourceLines` are the lines as
/// `scenarioSourceLines` splits them (for the caret); `fileExists` gets `dma-trace` paths as written.
public func checkScript(_ script: Script, sourceLines: [String], fileExists: (String) -> Bool) -> [Diagnostic] {
    var checker = ScriptChecker(fileName: script.fileName, sourceLines: sourceLines)
    checker.backsRemaining = script.statements.reduce(0) { $0 + ($1.kind == .back ? 1 : 0) }
    // A note is about the step after it, which may create the process its placeholders name.
    for st in script.statements {
        switch st.kind {
        case let .process(d): checker.noteProcesses.append(d.name)
        case let .device(d): checker.noteDevices.append(d.name)
        case let .processEvent(_, .fork(child)): checker.noteProcesses.append(child)
        default: break
        }
    }
    for statement in script.statements { checker.check(statement, fileExists: fileExists) }
    checker.finish()
    return checker.diagnostics
}

struct ScriptChecker {
    private struct Process {
        /// "declared on line 2", "created by fork on line 9".
        var origin: String
        /// Buffer name → how it came to exist, e.g. "created on line 4".
        var buffers: [String: (line: Int, origin: String)] = [:]
        /// Buffer name → how it went away, e.g. "freed on line 7".
        var gone: [String: String] = [:]
        /// A `trace` ran in it: the buffers its VMAs became are known only when it runs.
        var traced = false
    }

    let fileName: String
    let sourceLines: [String]
    private(set) var diagnostics: [Diagnostic] = []
    private var processes: [String: Process] = [:]
    private var processOrder: [String] = []
    private var devices: [String: String] = [:]
    /// Each declared device's IOMMU format, for the IOVAs its maps may name.
    private var deviceFormats: [String: IOMMUFormat] = [:]
    /// Names of buffers created by `dmabuf-alloc` anywhere: a device `map` of such a name by a process
    /// that never received the fd is a runtime EBADF (the lesson), not a script error.
    private var dmabufNames = Set<String>()
    private var deviceOrder: [String] = []
    /// Files declared so far (`file NAME SIZE`), with the line that made each.
    private var files: [String: Int] = [:]
    private var machineLine: Int?
    private var firstEventLine: Int?
    /// The machine, process and device declarations so far (what a `set` line may change).
    private var declarations: [Statement] = []
    /// The overrides the `set` and `unset` lines so far put in force, as the Timeline keeps them.
    private var overrides: [String] = []
    /// The names as they were before each of the last steps, newest last, for `back`. Only as many
    /// as `back` lines remain are kept: a snapshot per step of a long script (each a copy once the
    /// step changes a name) made `check` quadratic in memory.
    private var beforeSteps: [Names] = []
    /// Steps a `back` could still undo (more than `beforeSteps` holds when no `back` needs them).
    private var undoableSteps = 0
    /// The `back` lines still to come (all of them when nobody says: a line at a time, as the TUI checks).
    var backsRemaining = Int.max
    /// Every process and device the script names, for the placeholders of notes.
    var noteProcesses: [String] = []
    var noteDevices: [String] = []
    /// Notes waiting for their step: their metric placeholders name what exists after it.
    private var pendingNotes: [(statement: Statement, start: Int, placeholders: [NoteText.Placeholder])] = []
    /// A `quiz` line waiting for the step it asks about.
    private var pendingQuiz: Statement?

    /// What a step can change and `back` puts back.
    private struct Names {
        var processes: [String: Process]
        var processOrder: [String]
        var devices: [String: String]
        var dmabufNames: Set<String>
        var deviceOrder: [String]
        var declarations: [Statement]
        var files: [String: Int]
    }

    private var names: Names {
        get { Names(processes: processes, processOrder: processOrder, devices: devices, dmabufNames: dmabufNames,
                    deviceOrder: deviceOrder, declarations: declarations, files: files) }
        set {
            processes = newValue.processes
            processOrder = newValue.processOrder
            devices = newValue.devices
            dmabufNames = newValue.dmabufNames
            deviceOrder = newValue.deviceOrder
            declarations = newValue.declarations
            files = newValue.files
        }
    }

    init(fileName: String, sourceLines: [String]) {
        self.fileName = fileName
        self.sourceLines = sourceLines
    }

    mutating func check(_ s: Statement, fileExists: (String) -> Bool) {
        if StepPlan.isStep(s.kind) {
            undoableSteps += 1
            if backsRemaining > 0 {
                beforeSteps.append(names)
                if beforeSteps.count > backsRemaining { beforeSteps.removeFirst(beforeSteps.count - backsRemaining) }
            }
            pendingQuiz = nil
        }
        defer { if StepPlan.isStep(s.kind) { checkPendingNotes() } }
        let at = Columns(s)
        let line = s.location.line
        switch s.kind {
        case .machine:
            if let machineLine {
                report(s, at[0], "'machine' is declared twice", hint: "the first 'machine' is on line \(machineLine)")
            } else if let firstEventLine {
                report(s, at[0], "'machine' must come before the first event", hint: "the first event is on line \(firstEventLine)")
            }
            machineLine = machineLine ?? line
            declarations.append(s)
            if case let .machine(m) = s.kind, let cma = m.cma, cma > 0 {
                let ram = m.ram ?? MachineConfig().ram
                if cma > ram / 2 {
                    let column = Self.column(of: "cma=", in: s) ?? at[0]
                    report(s, column, "cma=\(formatSizeShort(cma)) is more than half of ram=\(formatSizeShort(ram))",
                           hint: "the kernel, its page tables and unmovable allocations need the rest (cma= is at most ram/2 here)")
                }
            }
        case .process(let d):
            if declareProcess(d.name, s, at[1], origin: "declared on line \(line)") { declarations.append(s) }
        case .device(let d):
            // A page size the format does not have is a mistake, not a restriction to make.
            if let sizes = d.pagesizes, case let format = d.iommu ?? .vtd, format != .none, format != .sva {
                let info = IOMMUFormatInfo.of(format)
                let missing = sizes.filter { $0 & info.pgsizeBitmap == 0 }
                if !missing.isEmpty {
                    let column = Self.column(of: "pagesizes=", in: s) ?? at[1]
                    report(s, column, "\(format.rawValue) has no \(missing.map(formatSizeShort).joined(separator: ", ")) page\(missing.count > 1 ? "s" : "")",
                           hint: "\(format.rawValue)'s page sizes: \(formatPageSizes(info.pgsizeBitmap))")
                }
            }
            if declarable(d.name, s, at[1]) {
                deviceFormats[d.name] = d.iommu ?? .vtd
                devices[d.name] = "declared on line \(line)"
                deviceOrder.append(d.name)
                declarations.append(s)
            }
        case .processEvent(let name, let event):
            markEvent(line)
            if requireProcess(name, s, at[0], verb: event.verb) { checkProcessEvent(name, event, s, at, fileExists: fileExists) }
        case .deviceEvent(let name, let event):
            markEvent(line)
            requireDevice(name, s, at[0], verb: event.verb)
            checkDeviceEvent(event, s, at, fileExists: fileExists)
        case .pressure, .compact:
            markEvent(line)
        case .file(let name, _):
            markEvent(line)
            if let first = files[name] {
                report(s, at[1], "a file named '\(name)' is declared twice", hint: "the first is on line \(first)")
            } else {
                files[name] = line
            }
        case .note(let text):
            checkNote(text, s)
        case .wait, .inspect:
            break
        case .quiz:
            if let before = pendingQuiz {
                report(s, at[0], "a second 'quiz' for the same step",
                       hint: "the quiz on line \(before.location.line) asks about the next step already; one quiz per step")
            }
            pendingQuiz = s
        case .expect(let target, let clauses):
            markEvent(line)
            checkExpect(target, clauses, s, at)
        case .back:
            markEvent(line)
            if backsRemaining != Int.max { backsRemaining -= 1 }
            if undoableSteps > 0 {
                undoableSteps -= 1
                if let before = beforeSteps.popLast() { names = before }
            } else {
                report(s, at[0], "'back' has no step before it to undo", hint: "a recording writes 'back' after the step it undoes")
            }
        case .set(let text):
            markEvent(line)
            // Checked on top of the overrides already in force: `set nic.ways=64` after
            // `set nic.iotlb=64` holds even where the declaration says iotlb=16.
            let others = Timeline.merge(overrides, [text]).dropLast()
            var inForce = Script(fileName: "set", statements: declarations)
            do {
                try applyOverrides(Array(others), to: &inForce)
                if let problem = overrideProblem(text, declarations: inForce.statements) {
                    report(s, at[1] + problem.location.column - 1, problem.message, hint: problem.hint)
                } else {
                    overrides = Timeline.merge(overrides, [text])
                }
            } catch {
                report(s, at[1], "the overrides in force no longer fit the declarations: " + (error.items.first?.message ?? ""),
                       hint: "a 'back' undid a declaration that an earlier 'set' names; 'unset' it first")
            }
        case .unset(let key):
            markEvent(line)
            if let problem = unsetProblem(key, declarations: declarations) {
                report(s, at[1] + problem.location.column - 1, problem.message, hint: problem.hint)
            } else {
                let rest = overrides.filter { Timeline.key(of: $0) != key }
                var inForce = Script(fileName: "unset", statements: declarations)
                if (try? applyOverrides(rest, to: &inForce)) == nil {
                    report(s, at[1], "without \(key) the other overrides in force do not fit the declarations",
                           hint: "unset or change the others first")
                } else {
                    overrides = rest
                }
            }
        case .select(let selection):
            switch selection {
            case .page(let ref, _): useBuffer(ref, s, at[1])
            case .pfn: break
            case .iova(let dev, _) where devices[dev] == nil && processes[dev] != nil:
                report(s, at[1], "'\(dev)' is a process; 'select DEV iova ADDR' names a device",
                       hint: deviceOrder.isEmpty ? "no device is declared yet" : "devices here: \(list(deviceOrder))")
            case .iova(let dev, _): requireDevice(dev, s, at[1], verb: "select … iova")
            }
        }
    }

    /// A note's placeholders: each must parse and name a count, a step figure or a metric.
    private mutating func checkNote(_ text: String, _ s: Statement) {
        // The note's text starts at its quote (or its first word), one column after it for a string.
        let tokens = (try? Lexer.lex(s.text))?.tokens ?? []
        let start = tokens.count > 1 ? tokens[1].column + (tokens[1].isString ? 1 : 0) + s.location.column - 1 : s.location.column
        let placeholders: [NoteText.Placeholder]
        do {
            placeholders = try NoteText.placeholders(text)
        } catch {
            report(s, start + error.offset, error.message, hint: error.hint)
            return
        }
        let processNames = noteProcesses, deviceNames = noteDevices
        var fine: [NoteText.Placeholder] = []
        for ph in placeholders {
            let problem = NoteText.problem(ph.name) { name in
                metricProblem(name, processes: processNames, devices: deviceNames)
            }
            if let problem { report(s, start + ph.offset, problem.message, hint: problem.hint) } else { fine.append(ph) }
        }
        pendingNotes.append((s, start, fine.filter { $0.name.contains(".") && !$0.name.hasPrefix("=") && !$0.name.hasPrefix("ioptes.") }))
    }

    /// After a step: each waiting note's PROC, DEV and PROC.BUF placeholders must name what exists
    /// then (a process or device declared by now, a buffer the process holds after the step).
    private mutating func checkPendingNotes() {
        let notes = pendingNotes
        pendingNotes = []
        for (s, start, placeholders) in notes {
            for ph in placeholders {
                let parts = ph.name.split(separator: ".").map(String.init)
                let target = parts[0]
                if target == "machine" || target == "last" { continue }
                if processes[target] == nil && devices[target] == nil {
                    report(s, start + ph.offset, "{\(ph.name)}: no process or device named '\(target)' exists at the step this note explains",
                           hint: "a note is filled after the step that follows it")
                } else if parts.count == 3, let proc = processes[target], proc.buffers[parts[1]] == nil, !proc.traced || proc.gone[parts[1]] != nil {
                    let how = proc.gone[parts[1]].map { " (it was \($0))" } ?? ""
                    report(s, start + ph.offset, "{\(ph.name)}: \(target) has no buffer '\(parts[1])' after the step this note explains\(how)",
                           hint: "a note is filled after the step that follows it")
                }
            }
        }
    }

    /// What only the end of the script shows: a quiz with no step after it.
    mutating func finish() {
        // Notes after the last step have no step to take a number from.
        for (s, start, _) in pendingNotes {
            guard case let .note(text) = s.kind, let phs = try? NoteText.placeholders(text) else { continue }
            for ph in phs where !ph.name.hasPrefix("=") {
                report(s, start + ph.offset, "{\(ph.name)}: a note after the last step has no step to take it from",
                       hint: "move the note before a step, or write the number as {=TEXT}")
            }
        }
        if let q = pendingQuiz {
            report(q, Columns(q)[0], "'quiz' has no step after it to ask about",
                   hint: "a quiz is asked before the step that follows it")
        }
    }

    private mutating func markEvent(_ line: Int) {
        firstEventLine = firstEventLine ?? line
    }

    // MARK: Events

    private mutating func checkProcessEvent(_ p: String, _ event: ProcessEvent, _ s: Statement, _ at: Columns, fileExists: (String) -> Bool) {
        let line = s.location.line
        switch event {
        case .mmap(let b, _, _, _, _, _, _, let file?):
            if files[file] == nil {
                report(s, at.column(ofOption: "file", in: s), "no file named '\(file)' is declared before this line",
                       hint: files.isEmpty ? "declare it first: file \(file) SIZE" : "files here: " + files.keys.sorted().joined(separator: ", "))
            }
            create(b, in: p, s, at[2], origin: "created on line \(line)")
        case .malloc(let b, _), .mmap(let b, _, _, _, _, _, _, _), .memfd(let b, _), .umpAlloc(let b, _, _), .umpImport(let b, _):
            create(b, in: p, s, at[2], origin: "created on line \(line)")
        case .dmabufAlloc(let b, _, _):
            create(b, in: p, s, at[2], origin: "created on line \(line)")
            dmabufNames.insert(b)
        case .free(let b):
            if use(b, in: p, s, at[2]) { remove(b, from: p, "freed on line \(line)") }
        case .munmap(let b, let range):
            if use(b, in: p, s, at[2]), range == nil { remove(b, from: p, "unmapped on line \(line)") }
        case .read(let b, _), .write(let b, _), .mremap(let b, _, _), .madvise(let b, _, _), .mprotect(let b, _, _), .mlock(let b), .munlock(let b),
             .pin(let b, _, _, _, _), .unpin(let b), .uringRegister(let b, _), .uringUnregister(let b), .vmsplice(let b, _, _):
            use(b, in: p, s, at[2])
        case .fork(let child):
            guard declareProcess(child, s, at[2], origin: "created by fork on line \(line)"),
                  let parent = processes[p] else { return }
            for (name, _) in parent.buffers { processes[child]?.buffers[name] = (line, "inherited by fork on line \(line)") }
            processes[child]?.traced = parent.traced
        case .send(let b, let other):
            guard use(b, in: p, s, at[2]), requireProcess(other, s, at[3], verb: nil) else { return }
            create(b, in: other, s, at[3], origin: "received by send on line \(line)")
        case .exit, .pipeRead, .pipeClose:
            break
        case .trace(let path, _):
            if !fileExists(path) {
                report(s, at[2], "cannot read trace file '\(path)'", hint: "relative paths resolve against the script's directory")
            }
            // The trace's VMAs become buffers (text, data, heap, mmap2, ...) whose names only the run knows.
            processes[p]?.traced = true
        }
    }

    private mutating func checkDeviceEvent(_ event: DeviceEvent, _ s: Statement, _ at: Columns, fileExists: (String) -> Bool) {
        switch event {
        case .map(let ref, _, let iova, _):
            // An iova= the device's table cannot translate (its format is known from its declaration).
            if let iova, case let .deviceEvent(name, _) = s.kind, let format = deviceFormats[name] {
                let bits = IOMMUFormatInfo.of(format).inputBits
                if bits < 64, iova >= 1 << UInt64(bits) {
                    let column = Self.column(of: "iova=", in: s) ?? at[2]
                    report(s, column, "iova=\(hex(iova)) is past \(format.rawValue)'s \(bits)-bit IOVA space", hint: "IOVAs on \(name) lie below \(hex(1 << UInt64(bits)))")
                }
            }
            if dmabufNames.contains(ref.buffer), processes[ref.process] != nil, processes[ref.process]?.buffers[ref.buffer] == nil {
                return
            }
            useBuffer(ref, s, at[2])
        case .unmap(let ref), .dma(let ref, _, _, _, _, _, _):
            useBuffer(ref, s, at[2])
        case .dmaTrace(let path, _):
            if !fileExists(path) {
                report(s, at[2], "cannot read trace file '\(path)'",
                       hint: "relative paths resolve against the script's directory")
            }
        }
    }

    /// The column where `option` (such as `iova=`) starts in the statement's text, for a message about its value.
    static func column(of option: String, in s: Statement) -> Int? {
        s.text.firstRange(of: option).map { s.location.column + s.text.distance(from: s.text.startIndex, to: $0.lowerBound) }
    }

    // MARK: expect

    private mutating func checkExpect(_ target: ExpectTarget, _ clauses: [ExpectClause], _ s: Statement, _ at: Columns) {
        /// How the message names the target, how the hint names its keys, and the keys.
        let keys: (target: String, label: String, valid: [String])
        switch target {
        case .machine: keys = ("machine", "machine", ExpectKeys.names(ExpectKeys.machine))
        case .last: keys = ("last", "last", ExpectKeys.names(ExpectKeys.last))
        case .buffer(let ref):
            useBuffer(ref, s, at[1])
            keys = ("a buffer", "buffer", ExpectKeys.names(ExpectKeys.buffer))
        case .name(let name):
            if processes[name] != nil {
                keys = ("a process", "process", ExpectKeys.names(ExpectKeys.process))
            } else if devices[name] != nil {
                keys = ("a device", "device", ExpectKeys.names(ExpectKeys.device))
            } else {
                let known = processOrder + deviceOrder
                let here = known.isEmpty ? "no process or device is declared yet"
                    : "processes here: \(list(processOrder)); devices here: \(list(deviceOrder))"
                report(s, at[1], "unknown process or device '\(name)'", hint: Suggest.prefix(name, among: known) + here)
                return
            }
        }
        for clause in clauses {
            guard keys.valid.contains(clause.key) else {
                report(s, clause.location.column, "unknown key '\(clause.key)' for \(keys.target)",
                       hint: Suggest.prefix(clause.key, among: keys.valid) + "\(keys.label) keys: " + keys.valid.joined(separator: ", "))
                continue
            }
            if let problem = ExpectKeys.typeProblem(clause.key, clause.value) {
                report(s, clause.location.column, problem, hint: nil)
            }
        }
    }

    // MARK: Names

    /// Declares a process; false when the name cannot be used.
    @discardableResult
    private mutating func declareProcess(_ name: String, _ s: Statement, _ column: Int, origin: String) -> Bool {
        guard declarable(name, s, column) else { return false }
        processes[name] = Process(origin: origin)
        processOrder.append(name)
        return true
    }

    /// Reports a reserved or already used name.
    private mutating func declarable(_ name: String, _ s: Statement, _ column: Int) -> Bool {
        if Keyword.reserved.contains(name) {
            report(s, column, "'\(name)' is a reserved word",
                   hint: "pick another name; reserved words: " + Keyword.reserved.joined(separator: ", "))
            return false
        }
        if let process = processes[name] {
            report(s, column, "process '\(name)' already exists", hint: "it was \(process.origin)")
            return false
        }
        if let device = devices[name] {
            report(s, column, "'\(name)' is already a device",
                   hint: "it was \(device); processes and devices share one set of names")
            return false
        }
        return true
    }

    /// Reports `name` unless it is a process; `verb` explains a device used with a process verb.
    @discardableResult
    private mutating func requireProcess(_ name: String, _ s: Statement, _ column: Int, verb: String?) -> Bool {
        if processes[name] != nil { return true }
        let here = processOrder.isEmpty ? "no process is declared yet" : "processes here: \(list(processOrder))"
        if devices[name] != nil, let verb {
            report(s, column, "'\(name)' is a device, and '\(verb)' is a process verb",
                   hint: "device verbs: " + EventParser.deviceVerbNames.joined(separator: ", "))
        } else if devices[name] != nil {
            report(s, column, "'\(name)' is a device, not a process", hint: here)
        } else {
            report(s, column, "unknown process '\(name)'", hint: Suggest.prefix(name, among: processOrder) + here)
        }
        return false
    }

    private mutating func requireDevice(_ name: String, _ s: Statement, _ column: Int, verb: String) {
        if devices[name] != nil { return }
        if processes[name] != nil {
            report(s, column, "'\(name)' is a process, and '\(verb)' is a device verb",
                   hint: "process verbs: " + EventParser.processVerbNames.joined(separator: ", "))
        } else {
            let here = deviceOrder.isEmpty ? "no device is declared yet" : "devices here: \(list(deviceOrder))"
            report(s, column, "unknown device '\(name)'", hint: Suggest.prefix(name, among: deviceOrder) + here)
        }
    }

    // MARK: Buffers

    private mutating func create(_ b: String, in p: String, _ s: Statement, _ column: Int, origin: String) {
        if let existing = processes[p]?.buffers[b] {
            report(s, column, "process '\(p)' already has a buffer '\(b)'",
                   hint: "'\(b)' was \(existing.origin); free or munmap it first, or pick another name")
            return
        }
        processes[p]?.buffers[b] = (s.location.line, origin)
        processes[p]?.gone[b] = nil
    }

    private mutating func remove(_ b: String, from p: String, _ how: String) {
        processes[p]?.buffers[b] = nil
        processes[p]?.gone[b] = how
    }

    /// Reports `b` unless process `p` has it now.
    @discardableResult
    private mutating func use(_ b: String, in p: String, _ s: Statement, _ column: Int) -> Bool {
        guard let process = processes[p] else { return false }
        if process.buffers[b] != nil { return true }
        // After a trace, a name may be one of its buffers: the run answers EFAULT if it is not.
        if process.traced && process.gone[b] == nil { return true }
        let names = process.buffers.sorted { ($0.value.line, $0.key) < ($1.value.line, $1.key) }.map(\.key)
        let hint = if let gone = process.gone[b] {
            "'\(b)' was \(gone)"
        } else {
            Suggest.prefix(b, among: names) + (names.isEmpty ? "\(p) has no buffers yet" : "buffers of \(p) here: \(list(names))")
        }
        report(s, column, "process '\(p)' has no buffer '\(b)'", hint: hint)
        return false
    }

    /// `PROC.BUF` at `column`: the process, then the buffer after the dot.
    private mutating func useBuffer(_ ref: BufferRef, _ s: Statement, _ column: Int) {
        guard requireProcess(ref.process, s, column, verb: nil) else { return }
        use(ref.buffer, in: ref.process, s, column + ref.process.count + 1)
    }

    // MARK: Output

    private func list(_ names: [String]) -> String { names.isEmpty ? "none" : names.joined(separator: ", ") }

    private mutating func report(_ s: Statement, _ column: Int, _ message: String, hint: String?) {
        let index = s.location.line - 1
        diagnostics.append(Diagnostic(
            file: fileName, location: SourceLocation(line: s.location.line, column: column), message: message,
            hint: hint, sourceLine: sourceLines.indices.contains(index) ? sourceLines[index] : nil))
    }
}

/// The column of each word of a statement, found by reading its text again.
private struct Columns {
    private let columns: [Int]
    private let fallback: Int

    init(_ s: Statement) {
        let tokens = (try? Lexer.lex(s.text))?.tokens ?? []
        columns = tokens.map { $0.column + s.location.column - 1 }
        texts = tokens.map(\.raw)
        fallback = s.location.column
    }

    private let texts: [String]

    subscript(_ i: Int) -> Int { columns.indices.contains(i) ? columns[i] : fallback }

    /// The column of the value of option `key=` (where the statement gives it).
    func column(ofOption key: String, in s: Statement) -> Int {
        guard let i = texts.firstIndex(where: { $0.hasPrefix(key + "=") }) else { return fallback }
        return columns[i] + key.count + 1
    }
}
