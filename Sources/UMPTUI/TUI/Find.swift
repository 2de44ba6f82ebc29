// `/`: find an address, a process, a device, PROC.BUF, a buffer name, `pfn N` or `iova ADDR`, and
// move the cursor of the pane that shows it there (the pane scrolls it into view). While the find
// is active, `n` and `N` go to the next and previous match, as in less and vim; Esc ends it.

import Engine

/// One place a find lands: a page, a frame or an IOPTE.
enum FindMatch: Equatable {
    case page(proc: Int, vpn: UInt64)
    case frame(Int)
    case iopte(device: Int, index: Int)
}

/// The find in force: what was typed (matched again against the state at each `n`) and which
/// match the cursor went to.
struct ActiveFind: Equatable {
    var query: String
    var index: Int
    var count: Int
}

extension AppState {
    /// Runs a find typed at `/`: the first match, or a Problem that says why there is none.
    mutating func find(_ t: String) -> LineEditor.Problem? {
        switch matches(t) {
        case let .failure(problem):
            return problem
        case let .success(list):
            activeFind = ActiveFind(query: t, index: 0, count: list.count)
            go(to: list[0])
            if list.count > 1 { message = "match 1 of \(list.count): n next, N previous, Esc ends the find" }
            return nil
        }
    }

    /// `n` (`forward`) or `N`: the next or previous match of the active find, wrapping around.
    mutating func findAgain(forward: Bool) {
        guard var f = activeFind else { return }
        guard case let .success(list) = matches(f.query) else {
            message = "no match for '\(f.query)' now; Esc ends the find"
            return
        }
        f.index = (f.index + (forward ? 1 : list.count - 1)) % list.count
        f.count = list.count
        activeFind = f
        go(to: list[f.index])
        message = list.count == 1 ? "the only match for '\(f.query)'" : "match \(f.index + 1) of \(list.count) for '\(f.query)'"
    }

    private mutating func go(to m: FindMatch) {
        switch m {
        case let .page(p, vpn):
            process.cursor = (p, vpn)
            setFocus(.process)
        case let .frame(pfn):
            physical.cursor = pfn
            setFocus(.physical)
        case let .iopte(d, i):
            device.show(device: d, index: i)
            setFocus(.device)
            if let dev = session.state.devices[safe: d], dev.ioptes.isEmpty { message = "\(dev.name) has no IOPTEs yet" }
        }
        place(selectionPane)
    }

    /// Every place `t` names, in pane order (pages, then IOPTEs); a Problem when none.
    func matches(_ t: String) -> Result<[FindMatch], LineEditor.Problem> {
        let words = t.split(separator: " ").map(String.init)
        let state = session.state
        // Numbers read as the language reads them: 0x1541 is hex, 1541 decimal.
        func number(_ s: String) -> UInt64? { parseSizeLiteral(s) }
        if words.count == 2, words[0] == "pfn" || words[0] == "frame", let n = number(words[1]) {
            guard n < UInt64(state.phys.frameCount) else {
                return .failure(LineEditor.Problem(message: "pfn \(hex(n)) is past the last frame (\(hex(state.phys.frameCount - 1)))", column: nil, hint: nil))
            }
            return .success([.frame(Int(n))])
        }
        if words.count == 2, words[0] == "iova", let a = number(words[1]) {
            let found = iovaMatches(a)
            return found.isEmpty ? .failure(LineEditor.Problem(message: "no device maps IOVA \(hex(a))", column: nil, hint: nil)) : .success(found)
        }
        guard words.count == 1 else {
            return .failure(LineEditor.Problem(message: "find what?", column: nil, hint: "an address, a process or device, PROC.BUF, a buffer name, pfn N or iova ADDR"))
        }
        let w = words[0]
        if let a = number(w), w.first?.isNumber == true {
            // Every process that maps the address (a fork's parent and child both do), then every device.
            var found: [FindMatch] = state.processes.indices.filter {
                state.processes[$0].meta.alive && state.processes[$0].meta.vmaIndex(containing: a) != nil
            }.map { .page(proc: $0, vpn: a >> pageShift) }
            found += iovaMatches(a)
            return found.isEmpty ? .failure(LineEditor.Problem(message: "no process or device maps \(hex(a))", column: nil, hint: "pfn N finds a frame")) : .success(found)
        }
        // A device's name: its first IOPTE; a process's: its first VMA.
        if let d = state.deviceIndex(named: w) {
            return .success([.iopte(device: d, index: 0)])
        }
        if let p = state.processIndex(named: w), let vma = state.processes[p].meta.vmas.first {
            return .success([.page(proc: p, vpn: vma.start >> pageShift)])
        }
        // PROC.BUF, or BUF in every process that has one.
        let parts = w.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        var found: [FindMatch] = []
        for (p, proc) in state.processes.enumerated() where proc.meta.alive && (parts.count == 1 || parts.count == 2) && !parts.contains("") {
            let name = parts.count == 2 ? parts[1] : parts[0]
            if parts.count == 2 && proc.meta.name != parts[0] { continue }
            if let b = proc.meta.buffer(named: name) { found.append(.page(proc: p, vpn: b.start >> pageShift)) }
        }
        if !found.isEmpty { return .success(found) }
        let names = state.processes.map(\.meta.name) + state.devices.map(\.name)
            + state.processes.filter(\.meta.alive).flatMap { p in p.meta.buffers.map { "\(p.meta.name).\($0.name)" } }
        return .failure(LineEditor.Problem(message: "no process, device or buffer '\(w)'", column: 1,
                                           hint: Suggest.prefix(w, among: names) + "names: " + names.joined(separator: ", ")))
    }

    private func iovaMatches(_ a: UInt64) -> [FindMatch] {
        session.state.devices.indices.compactMap { d in
            cache.ioptes(session, device: d).firstIndex { a >= $0.iova && a < $0.iova + $0.size }.map { .iopte(device: d, index: $0) }
        }
    }
}
