// engine.apply(statement) → StepRecord: dispatch, outcome, narration, Changes.

extension Engine {
    /// Runs one statement as one step. Declarations of the machine, notes, waits and expects are
    /// not steps (the runner handles them); given here they come back as an EINVAL outcome.
    public mutating func apply(_ st: Statement, step: Int, notes: [String] = [], traces: (any TraceProvider)? = nil) -> StepRecord {
        log.reset()
        tally = Tally()
        oomKilled = []
        oomNothingToKill = false
        hazards = []
        flushNotes = []
        var result = run(st.kind, traces: traces)
        for note in flushNotes { result.text += "; " + note }
        if !oomKilled.isEmpty {
            result.text += "; out_of_memory() kills " + oomKilled.joined(separator: ", then ")
            if result.outcome == .ok { result.outcome = .oom }
        } else if oomNothingToKill {
            result.text += "; out_of_memory() finds no process whose death would free memory"
        }
        // "already mapped" matters when the CPU touches memory, not when GUP walks it for a pin or a map.
        var cpuTouch = false
        if case let .processEvent(_, ev) = st.kind, ev.verb == "read" || ev.verb == "write" { cpuTouch = true }
        if !cpuTouch { tally.counts[Ev.mapped] = nil }
        let story = narrateTally()
        let text = story.isEmpty ? result.text : result.text + ". " + story
        let counts = tally.order.compactMap { k in tally[k] > 0 ? (k, tally[k]) : nil }
        let record = StepRecord(step: step, line: st.location.line, command: st.text, outcome: result.outcome,
                                text: text, notes: notes, changes: log.changes, counts: counts, hazards: hazards)
        log.reset()
        return record
    }

    private mutating func run(_ kind: StatementKind, traces: (any TraceProvider)?) -> OpResult {
        switch kind {
        case .machine:
            return .fail(.errno("EINVAL"), "'machine' sets up the machine before it boots; it cannot run as a step")
        case .note, .wait, .expect:
            return OpResult(text: "nothing to do")
        case let .process(decl):
            if state.processIndex(named: decl.name) != nil {
                return .fail(.errno("EEXIST"), "a process named \(decl.name) exists already")
            }
            return createProcess(decl)
        case let .device(decl):
            return createDevice(decl)
        case let .processEvent(name, event):
            guard let p = state.processIndex(named: name) else {
                return .fail(.errno("ESRCH"), "there is no process named \(name)")
            }
            guard state.processes[p].meta.alive else {
                return .fail(.errno("ESRCH"), "\(name) has exited (\(state.processes[p].meta.exitReason ?? "exit")): nothing runs")
            }
            return runProcessEvent(p, event)
        case let .deviceEvent(device, event):
            guard let d = state.deviceIndex(named: device) else {
                return .fail(.errno("ENODEV"), "there is no device named \(device)")
            }
            switch event {
            case let .map(ref, range, iova, access):
                return doMap(d, ref: ref, range: range, iova: iova, access: access)
            case let .unmap(ref):
                return doUnmap(d, ref: ref)
            case let .dma(ref, access, pattern, size, count, passes, transient):
                return doDMA(d, ref: ref, access: access, pattern: pattern, size: size, count: count, passes: passes, transient: transient)
            case let .dmaTrace(path, unit):
                return doDMATrace(d, path: path, unit: unit, traces: traces)
            }
        case let .pressure(bytes):
            return doPressure(bytes)
        case .compact:
            return doCompact()
        }
    }

    func notImplemented(_ what: String, issue: String) -> OpResult {
        .fail(.errno("ENOSYS"), "\(what): not implemented yet (\(issue) arrive with a later release); the state is unchanged")
    }

    private mutating func runProcessEvent(_ p: Int, _ event: ProcessEvent) -> OpResult {
        let meta = state.processes[p].meta
        func buffer(_ name: String) -> Buffer? { meta.buffer(named: name) }
        func noBuffer(_ name: String) -> OpResult {
            .fail(.errno("EFAULT"), "\(meta.name) has no buffer named \(name) (it was freed or unmapped)")
        }
        switch event {
        case let .malloc(name, size):
            if buffer(name) != nil { return .fail(.errno("EEXIST"), "\(meta.name) already has a buffer named \(name)") }
            return doMalloc(p, name: name, size: size)
        case let .free(name):
            guard let b = buffer(name) else { return noBuffer(name) }
            if b.kernelBuffer >= 0 {
                unmapRange(p, start: b.start, end: b.start + b.chunkSize)
                state.processes[p].meta.buffers.removeAll { $0.name == name }
                dropKernelBufferHold(p, b)
                let freed = state.kernelBuffers[Int(b.kernelBuffer)].freed
                return OpResult(text: "\(b.kind == .ump ? "ump_reference_release" : "close(fd)"): \(meta.name) unmaps \(name) and lets go of it; \(freed ? "nobody holds it any more, so its frames are freed" : "others still hold it (a process or a device mapping), so the memory stays")")
            }
            return doFree(p, buffer: b)
        case let .mmap(name, size, shared, populate, locked, hugepage):
            if buffer(name) != nil { return .fail(.errno("EEXIST"), "\(meta.name) already has a buffer named \(name)") }
            return doMmap(p, name: name, size: size, shared: shared, populate: populate, locked: locked, hugepage: hugepage)
        case let .munmap(name, range):
            guard let b = buffer(name) else { return noBuffer(name) }
            return doMunmap(p, buffer: b, range: range)
        case let .read(name, range), let .write(name, range):
            guard let b = buffer(name) else { return noBuffer(name) }
            var write = false
            if case .write = event { write = true }
            return doTouch(p, buffer: b, range: range, write: write)
        case let .madvise(name, advice, range):
            guard let b = buffer(name) else { return noBuffer(name) }
            return doMadvise(p, buffer: b, advice: advice, range: range)
        case let .mlock(name):
            guard let b = buffer(name) else { return noBuffer(name) }
            return doMlock(p, buffer: b, lock: true)
        case let .munlock(name):
            guard let b = buffer(name) else { return noBuffer(name) }
            return doMlock(p, buffer: b, lock: false)
        case let .fork(child):
            if state.processIndex(named: child) != nil { return .fail(.errno("EEXIST"), "a process named \(child) exists already") }
            return doFork(p, child: child)
        case .exit:
            let rss = meta.rssPages
            exitProcess(p, reason: "exit")
            return OpResult(text: "\(meta.name) exits: exit_mmap unmaps every VMA (\(rss) resident pages), frees its page tables; frames nobody else references go back to the buddy allocator")
        case let .pin(name, range, write, longterm, get):
            guard let b = buffer(name) else { return noBuffer(name) }
            return doPin(p, buffer: b, range: range, flags: FollFlags(write: write, longterm: longterm, get: get))
        case let .unpin(name):
            return doUnpin(p, buffer: name)
        case let .umpAlloc(name, size, linear):
            if buffer(name) != nil { return .fail(.errno("EEXIST"), "\(meta.name) already has a buffer named \(name)") }
            return doUMPAlloc(p, name: name, size: size, linear: linear)
        case let .umpImport(name, id):
            if buffer(name) != nil { return .fail(.errno("EEXIST"), "\(meta.name) already has a buffer named \(name)") }
            return doUMPImport(p, name: name, id: id)
        case let .dmabufAlloc(name, size, heap):
            if buffer(name) != nil { return .fail(.errno("EEXIST"), "\(meta.name) already has a buffer named \(name)") }
            return doDmabufAlloc(p, name: name, size: size, heap: heap)
        case let .send(name, other):
            return doSend(p, name: name, to: other)
        }
    }

    /// `read` / `write`: the CPU touches every page of the range.
    private mutating func doTouch(_ p: Int, buffer b: Buffer, range: BufferRange?, write: Bool) -> OpResult {
        let start = b.start + (range?.offset ?? 0)
        let size = range?.size ?? (b.size - min(b.size, range?.offset ?? 0))
        let end = start + max(size, 1)
        let pages = ((end + pageSize - 1) >> pageShift) - (start >> pageShift)
        let what = "\(state.processes[p].meta.name) \(write ? "writes" : "reads") \(formatSize(size)) of \(b.name) at \(format0x(start)) (\(pages) page\(pages == 1 ? "" : "s"))"
        let r = touchRange(p, start: start, end: end, write: write)
        if case let .sigsegv(reason) = r {
            exitProcess(p, reason: "killed by SIGSEGV")
            return .fail(.signal("SIGSEGV"), what + ": SIGSEGV, " + reason + "; the default action kills \(state.processes[p].meta.name)")
        }
        return faultOutcome(r, text: what)
    }

    /// `pressure SIZE`: reclaim SIZE of anonymous memory to swap. When neither reclaim nor free memory
    /// can provide SIZE, the kernel is out of memory and the OOM killer runs.
    private mutating func doPressure(_ bytes: UInt64) -> OpResult {
        let wanted = Int((bytes + pageSize - 1) >> pageShift)
        let r = reclaim(pages: wanted)
        var text = "memory pressure asks for \(formatSize(bytes)): shrink_folio_list swaps out \(r.reclaimed) anonymous page\(r.reclaimed == 1 ? "" : "s"), oldest first (add_to_swap, try_to_unmap)"
        if r.skippedPinned > 0 { text += "; \(r.skippedPinned) pinned or otherwise referenced page\(r.skippedPinned == 1 ? "" : "s") cannot be reclaimed" }
        if r.skippedLocked > 0 { text += "; \(r.skippedLocked) mlocked page\(r.skippedLocked == 1 ? " is" : "s are") unevictable" }
        if r.reclaimed == 0 && r.skippedPinned == 0 && r.skippedLocked == 0 && !state.swapMap.isEmpty && !r.swapFull {
            text += "; no unpinned anonymous page is resident, so there is nothing to reclaim"
        }
        if state.swapMap.isEmpty {
            text += "; there is no swap (machine swap=0), so anonymous memory cannot be reclaimed at all"
        } else if r.swapFull {
            text += "; swap is full (\(state.meta.swapUsed) of \(state.swapMap.count) slots)"
        }
        if r.reclaimed < wanted && state.phys.freeFrames < wanted {
            while state.phys.freeFrames < wanted, let victim = oomVictim() { oomKill(victim) }
            if state.phys.freeFrames < wanted {
                if oomKilled.isEmpty { oomNothingToKill = true }
                text += "; only \(formatSize(UInt64(state.phys.freeFrames) << pageShift)) is free"
            }
            return .fail(.oom, text)
        }
        return OpResult(text: text)
    }

    /// Turns the step's tally into one or two sentences.
    func narrateTally() -> String {
        let phrases: [(String, String)] = [
            (Ev.anonPage, "do_anonymous_page: new zeroed exclusive page"),
            (Ev.zeroPage, "do_anonymous_page: the shared zero page, read-only, no reference taken"),
            (Ev.wpCopyZero, "do_wp_page → wp_page_copy: zero page replaced by a new zeroed page"),
            (Ev.cowCopy, "do_wp_page → wp_page_copy: shared page copied (COW)"),
            (Ev.reuseExclusive, "do_wp_page → wp_page_reuse: PageAnonExclusive, made writable in place"),
            (Ev.reuseRefcount, "wp_can_reuse_anon_folio: refcount back to 1, reused in place"),
            (Ev.thpFault, "do_huge_pmd_anonymous_page: a 2 MiB THP (one order-9 block, one PMD)"),
            (Ev.thpZero, "do_huge_pmd_anonymous_page: the huge zero page mapped by a PMD"),
            (Ev.thpFallback, "THP fallback (no free order-9 block): 4 KiB pages instead"),
            (Ev.thpReuse, "do_huge_pmd_wp_page: whole THP reused"),
            (Ev.thpSplit, "__split_huge_pmd: a PMD becomes 512 PTEs"),
            (Ev.swapIn, "do_swap_page: swapped back in"),
            (Ev.shmemFault, "shmem_fault: the shared page from the page cache"),
            ("do_fault_around", "do_fault_around: neighbours already in the page cache mapped too"),
            ("shmem_evict", "shmem pages freed with their object: no VMA maps it any more"),
            ("copy_present_ptes", "copy_present_ptes: now shared read-only (refcount+1, mapcount+1, AnonExclusive cleared)"),
            ("copy_pte:zero", "zero-page PTEs copied to the child"),
            ("copy_nonpresent_pte", "swap entries duplicated (swap_duplicate)"),
            ("copy_huge_pmd", "copy_huge_pmd: THP PMDs shared read-only"),
            ("zap:freed", "zap_pte_range: pages freed, their last reference gone"),
            ("zap:kept", "zap_pte_range: pages unmapped but still referenced elsewhere, so not freed"),
            ("zap:zero", "zero-page PTEs cleared"),
            ("zap:swap", "swap entries freed"),
            ("zap_huge_pmd", "zap_huge_pmd: whole THPs unmapped"),
            ("ptalloc", "page-table pages allocated (__pte_alloc, __pmd_alloc, pgd_alloc)"),
            ("ptfree", "page-table pages freed (free_pgtables)"),
            ("direct_reclaim", "rounds of direct reclaim (__alloc_pages_slowpath)"),
            (Ev.mapped, "already mapped: no fault"),
        ]
        var parts: [String] = []
        for (key, phrase) in phrases where tally[key] > 0 { parts.append("\(tally[key]) × \(phrase)") }
        return parts.joined(separator: "; ")
    }
}
