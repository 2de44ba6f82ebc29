// engine.apply(statement) → StepRecord: dispatch, outcome, narration, Changes.

extension Engine {
    /// Runs one statement as one step. Declarations of the machine, notes, waits and expects are
    /// not steps (the runner handles them); given here they come back as an EINVAL outcome.
    public mutating func apply(_ st: Statement, step: Int, notes: [String] = [], traces: (any TraceProvider)? = nil) -> StepRecord {
        // Without a control nothing can cancel the step, so there is always a record.
        apply(st, step: step, notes: notes, traces: traces, control: nil)
            ?? .impossible(st, step: step, "apply: a step without a control was cancelled")
    }

    /// `apply` watched by `control`: nil when the control cancelled the step, and then the state
    /// is exactly as it was before it (what the step did is undone here, newest Change first).
    public mutating func apply(_ st: Statement, step: Int, notes: [String] = [], traces: (any TraceProvider)?,
                               control: StepControl?) -> StepRecord? {
        var j = StepJournal(control: control, step: step)
        var result = run(st.kind, traces: traces, &j)
        j.flushData()
        if j.cancelled {
            for change in j.changes.reversed() { undo(change) }
            return nil
        }
        if result.outcome == .ok, !j.events.oomVictims.isEmpty { result.outcome = .oom }
        // "already mapped" matters when the CPU touches memory, not when GUP walks it for a pin or a map.
        var cpuTouch = false
        if case let .processEvent(_, ev) = st.kind, ev.verb == "read" || ev.verb == "write" { cpuTouch = true }
        if !cpuTouch { j.events.remove(.alreadyMapped) }
        var deltas: [Int: DeviceStats] = [:]
        for change in j.changes {
            if case let .deviceCounters(d, old) = change, Int(d) < state.devices.count {
                deltas[Int(d)] = state.devices[Int(d)].stats.minus(old.stats)
            }
        }
        var record = StepRecord(step: step, line: st.location.line, command: st.text, outcome: result.outcome,
                                text: Narration.stepText(result.text, j.events), notes: notes, changes: j.changes,
                                events: j.events, hazards: j.hazards, deviceDeltas: deltas)
        record.trace = j.trace
        record.bugs = j.bugs
        // Numbers in notes come from the step itself ({wp_page_copy}, {misses}, {app.rss}).
        if notes.contains(where: { $0.contains("{") || $0.contains("}") }) {
            record.notes = notes.map { NoteText.fill($0, record: record, engine: self) }
        }
        return record
    }

    private mutating func run(_ kind: StatementKind, traces: (any TraceProvider)?, _ j: inout StepJournal) -> OpResult {
        switch kind {
        case .machine:
            return .fail(.errno("EINVAL"), "'machine' sets up the machine before it boots; it cannot run as a step")
        case .note, .wait, .expect, .select, .inspect, .quiz:
            return OpResult(text: "nothing to do")
        case .back, .set, .unset:
            return .fail(.errno("EINVAL"), "'back', 'set' and 'unset' move the Timeline; they are not steps of the Engine")
        case let .process(decl):
            if state.processIndex(named: decl.name) != nil {
                return .fail(.errno("EEXIST"), "a process named \(decl.name) exists already")
            }
            return createProcess(decl, &j)
        case let .device(decl):
            return createDevice(decl, &j)
        case let .file(name, size):
            return createFile(name: name, size: size, &j)
        case let .processEvent(name, event):
            guard let p = state.processIndex(named: name) else {
                return .fail(.errno("ESRCH"), "there is no process named \(name)")
            }
            guard state.processes[p].meta.alive else {
                return .fail(.errno("ESRCH"), "\(name) has exited (\(state.processes[p].meta.exitReason ?? "exit")): nothing runs")
            }
            return runProcessEvent(p, event, traces: traces, &j)
        case let .deviceEvent(device, event):
            guard let d = state.deviceIndex(named: device) else {
                return .fail(.errno("ENODEV"), "there is no device named \(device)")
            }
            switch event {
            case let .map(ref, range, iova, access):
                return doMap(d, ref: ref, range: range, iova: iova, access: access, &j)
            case let .unmap(ref):
                return doUnmap(d, ref: ref, &j)
            case let .dma(ref, access, pattern, size, count, passes, transient):
                return doDMA(d, ref: ref, access: access, pattern: pattern, size: size, count: count, passes: passes, transient: transient, &j)
            case let .dmaTrace(path, unit):
                return doDMATrace(d, path: path, unit: unit, traces: traces, &j)
            }
        case let .pressure(bytes):
            return doPressure(bytes, &j)
        case .compact:
            return doCompact(&j)
        }
    }

    private mutating func runProcessEvent(_ p: Int, _ event: ProcessEvent, traces: (any TraceProvider)?, _ j: inout StepJournal) -> OpResult {
        // The record is read field by field: a copy of it held across the writes below would make
        // each of them copy the record's arrays.
        let name = state.processes[p].meta.name
        func noBuffer(_ buf: String) -> OpResult {
            .fail(.errno("EFAULT"), "\(name) has no buffer named \(buf) (it was freed or unmapped)")
        }
        func exists(_ buf: String) -> OpResult { .fail(.errno("EEXIST"), "\(name) already has a buffer named \(buf)") }
        let buffer: Buffer? = event.bufferName.flatMap { state.processes[p].meta.buffer(named: $0) }
        switch event {
        case let .malloc(buf, size):
            if buffer != nil { return exists(buf) }
            return doMalloc(p, name: buf, size: size, &j)
        case let .free(buf):
            guard let b = buffer else { return noBuffer(buf) }
            if b.kernelBuffer >= 0 {
                unmapRange(p, start: b.start, end: b.start + b.chunkSize, &j)
                bufferRemove(p, named: buf, &j)
                dropKernelBufferHold(p, b, &j)
                let freed = state.kernelBuffers[Int(b.kernelBuffer)].freed
                return OpResult(text: "\(b.kind == .ump ? "ump_reference_release" : "close(fd)"): \(name) unmaps \(buf) and lets go of it; \(freed ? "nobody holds it any more, so its frames are freed" : "others still hold it (a process or a device mapping), so the memory stays")")
            }
            return doFree(p, buffer: b, &j)
        case let .mmap(buf, size, shared, populate, locked, hugepage, prot, file):
            if buffer != nil { return exists(buf) }
            if let file {
                return doMmapFile(p, name: buf, size: size, file: file, shared: shared, populate: populate, locked: locked, prot: prot, &j)
            }
            return doMmap(p, name: buf, size: size, shared: shared, populate: populate, locked: locked, hugepage: hugepage, prot: prot, &j)
        case let .memfd(buf, size):
            if buffer != nil { return exists(buf) }
            return doMemfd(p, name: buf, size: size, &j)
        case let .munmap(buf, range):
            guard let b = buffer else { return noBuffer(buf) }
            return doMunmap(p, buffer: b, range: range, &j)
        case let .mremap(buf, size, move):
            guard let b = buffer else { return noBuffer(buf) }
            return doMremap(p, buffer: b, newSize: size, mayMove: move, &j)
        case let .read(buf, range), let .write(buf, range):
            guard let b = buffer else { return noBuffer(buf) }
            var write = false
            if case .write = event { write = true }
            return doTouch(p, buffer: b, range: range, write: write, &j)
        case let .madvise(buf, advice, range):
            guard let b = buffer else { return noBuffer(buf) }
            return doMadvise(p, buffer: b, advice: advice, range: range, &j)
        case let .mprotect(buf, range, prot):
            guard let b = buffer else { return noBuffer(buf) }
            return doMprotect(p, buffer: b, range: range, prot: prot, &j)
        case let .mlock(buf):
            guard let b = buffer else { return noBuffer(buf) }
            return doMlock(p, buffer: b, lock: true, &j)
        case let .munlock(buf):
            guard let b = buffer else { return noBuffer(buf) }
            return doMlock(p, buffer: b, lock: false, &j)
        case let .fork(child):
            if state.processIndex(named: child) != nil { return .fail(.errno("EEXIST"), "a process named \(child) exists already") }
            return doFork(p, child: child, &j)
        case .exit:
            let rss = state.processes[p].meta.rssPages
            exitProcess(p, reason: "exit", &j)
            return OpResult(text: "\(name) exits: exit_mmap unmaps every VMA (\(rss) resident pages), frees its page tables; frames nobody else references go back to the buddy allocator")
        case let .pin(buf, range, write, longterm, get):
            guard let b = buffer else { return noBuffer(buf) }
            return doPin(p, buffer: b, range: range, flags: FollFlags(write: write, longterm: longterm, get: get), &j)
        case let .unpin(buf):
            return doUnpin(p, buffer: buf, &j)
        case let .uringRegister(buf, range):
            guard let b = buffer else { return noBuffer(buf) }
            return doUringRegister(p, buffer: b, range: range, &j)
        case let .uringUnregister(buf):
            return doUringUnregister(p, buffer: buf, &j)
        case let .vmsplice(buf, range, pipe):
            guard let b = buffer else { return noBuffer(buf) }
            return doVmsplice(p, buffer: b, range: range, pipe: pipe, &j)
        case let .pipeRead(pipe):
            return doPipeDrain(p, pipe: pipe, read: true, &j)
        case let .pipeClose(pipe):
            return doPipeDrain(p, pipe: pipe, read: false, &j)
        case let .umpAlloc(buf, size, linear):
            if buffer != nil { return exists(buf) }
            return doUMPAlloc(p, name: buf, size: size, linear: linear, &j)
        case let .umpImport(buf, id):
            if buffer != nil { return exists(buf) }
            return doUMPImport(p, name: buf, id: id, &j)
        case let .dmabufAlloc(buf, size, heap):
            if buffer != nil { return exists(buf) }
            return doDmabufAlloc(p, name: buf, size: size, heap: heap, &j)
        case let .send(buf, other):
            return doSend(p, name: buf, to: other, &j)
        case let .trace(path, _):
            return doTrace(p, path: path, traces: traces, &j)
        }
    }

    /// `read` / `write`: the CPU touches every page of the range.
    private mutating func doTouch(_ p: Int, buffer b: Buffer, range: BufferRange?, write: Bool, _ j: inout StepJournal) -> OpResult {
        let start = b.start + (range?.offset ?? 0)
        let size = range?.size ?? (b.size - min(b.size, range?.offset ?? 0))
        guard size > 0 else {
            return OpResult(text: "\(state.processes[p].meta.name) \(write ? "writes" : "reads") 0 bytes of \(b.name): no page is touched, so nothing faults")
        }
        let end = start + size
        let pages = ((end + pageSize - 1) >> pageShift) - (start >> pageShift)
        let what = "\(state.processes[p].meta.name) \(write ? "writes" : "reads") \(formatSize(size)) of \(b.name) at \(hex(start)) (\(plural(Int(pages), "page")))"
        let r = touchRange(p, start: start, end: end, write: write, stores: write, &j)
        if case let .sigsegv(reason) = r {
            exitProcess(p, reason: "killed by SIGSEGV", &j)
            return .fail(.signal("SIGSEGV"), what + ": SIGSEGV, " + reason + "; the default action kills \(state.processes[p].meta.name)")
        }
        if case let .sigbus(reason) = r {
            exitProcess(p, reason: "killed by SIGBUS", &j)
            return .fail(.signal("SIGBUS"), what + ": SIGBUS, " + reason + "; the default action kills \(state.processes[p].meta.name)")
        }
        return faultOutcome(r, text: what)
    }

    /// `pressure SIZE`: reclaim SIZE of anonymous memory to swap. When neither reclaim nor free memory
    /// can provide SIZE, the kernel is out of memory and the OOM killer runs.
    private mutating func doPressure(_ bytes: UInt64, _ j: inout StepJournal) -> OpResult {
        let wanted = Int((bytes + pageSize - 1) >> pageShift)
        let r = reclaim(pages: wanted, &j)
        var text = "memory pressure asks for \(formatSize(bytes)): shrink_folio_list swaps out \(plural(r.reclaimed - r.droppedCache - (r.freedHugeZero ? pagesPerPMD : 0), "anonymous page")), oldest first (add_to_swap, try_to_unmap)"
        if r.droppedCache > 0 { text += "; first it drops \(plural(r.droppedCache, "clean page-cache page")) nothing maps (__remove_mapping)" }
        if r.freedHugeZero { text += "; the huge zero folio's shrinker frees it, as no mm maps it any more (shrink_huge_zero_page_scan)" }
        if r.skippedPinned > 0 { text += "; \(plural(r.skippedPinned, "page")) that may be pinned (folio_maybe_dma_pinned) or sit in the swap cache cannot be reclaimed" }
        if r.unmappedHeld > 0 {
            text += "; \(pluralIsAre(r.unmappedHeld, "page")) held by get_user_pages references (no pin): unmapped to swap entries, but the extra reference keeps __remove_mapping from freeing them, so they stay in the swap cache"
        }
        if r.skippedLocked > 0 { text += "; \(pluralIsAre(r.skippedLocked, "mlocked page")) unevictable" }
        if r.reclaimed == 0 && r.skippedPinned == 0 && r.skippedLocked == 0 && r.unmappedHeld == 0 && !state.swapMap.isEmpty && !r.swapFull {
            text += "; no unpinned anonymous page is resident, so there is nothing to reclaim"
        }
        if state.swapMap.isEmpty {
            text += "; there is no swap (machine swap=0), so anonymous memory cannot be reclaimed at all"
        } else if r.swapFull {
            text += "; swap is full (\(state.meta.swapUsed) of \(state.swapMap.count) slots)"
        }
        if r.reclaimed < wanted && state.phys.freeFrames < wanted {
            var killed = false
            while state.phys.freeFrames < wanted, let victim = oomVictim() {
                oomKill(victim, &j)
                killed = true
            }
            if state.phys.freeFrames < wanted {
                if !killed { j.events.add(.oomNothingToKill) }
                text += "; only \(formatSize(UInt64(state.phys.freeFrames) << pageShift)) is free"
            }
            return .fail(.oom, text)
        }
        return OpResult(text: text)
    }
}
