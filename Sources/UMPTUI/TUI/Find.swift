// `/`: find an address, a process, a device, PROC.BUF, a buffer name, `pfn N` or `iova ADDR`, and
// move the cursor of the pane that shows it there (the pane scrolls it into view).

import Engine

extension AppState {
    mutating func find(_ t: String) -> LineEditor.Problem? {
        let words = t.split(separator: " ").map(String.init)
        let state = session.state
        func number(_ s: String) -> UInt64? { parseSizeLiteral(s) }
        if words.count == 2, words[0] == "pfn" || words[0] == "frame", let n = number(words[1]) {
            guard n < UInt64(state.phys.frameCount) else {
                return LineEditor.Problem(message: "pfn \(n) is past the last frame (\(state.phys.frameCount - 1))", column: nil, hint: nil)
            }
            physical.cursor = Int(n)
            setFocus(.physical)
            return nil
        }
        if words.count == 2, words[0] == "iova", let a = number(words[1]) {
            return findIOVA(a) ? nil : LineEditor.Problem(message: "no device maps IOVA \(hex(a))", column: nil, hint: nil)
        }
        guard words.count == 1 else {
            return LineEditor.Problem(message: "find what?", column: nil, hint: "an address, PROC.BUF, a buffer name, pfn N or iova ADDR")
        }
        let w = words[0]
        if let a = number(w), w.first?.isNumber == true {
            for (p, proc) in state.processes.enumerated() where proc.meta.alive && proc.meta.vmaIndex(containing: a) != nil {
                process.cursor = (p, a >> pageShift)
                setFocus(.process)
                return nil
            }
            if findIOVA(a) { return nil }
            return LineEditor.Problem(message: "no process or device maps \(hex(a))", column: nil, hint: "pfn N finds a frame")
        }
        // A device's name: its first IOPTE; a process's: its first VMA.
        if let d = state.deviceIndex(named: w) {
            setFocus(.device)
            guard !state.devices[d].ioptes.isEmpty else {
                device.cursor = (d, 0)
                message = "\(w) has no IOPTEs yet"
                return nil
            }
            device.cursor = (d, 0)
            return nil
        }
        if let p = state.processIndex(named: w), let vma = state.processes[p].meta.vmas.first {
            process.cursor = (p, vma.start >> pageShift)
            setFocus(.process)
            return nil
        }
        let parts = w.split(separator: ".").map(String.init)
        for (p, proc) in state.processes.enumerated() where proc.meta.alive {
            let name = parts.count == 2 ? parts[1] : parts[0]
            if parts.count == 2 && proc.meta.name != parts[0] { continue }
            if let b = proc.meta.buffer(named: name) {
                process.cursor = (p, b.start >> pageShift)
                setFocus(.process)
                return nil
            }
        }
        let names = state.processes.map(\.meta.name) + state.devices.map(\.name)
            + state.processes.filter(\.meta.alive).flatMap { p in p.meta.buffers.map { "\(p.meta.name).\($0.name)" } }
        return LineEditor.Problem(message: "no process, device or buffer '\(w)'", column: 1,
                                  hint: Suggest.prefix(w, among: names) + "names: " + names.joined(separator: ", "))
    }

    private mutating func findIOVA(_ a: UInt64) -> Bool {
        for d in session.state.devices.indices {
            let list = cache.ioptes(session, device: d)
            if let i = list.firstIndex(where: { a >= $0.iova && a < $0.iova + $0.size }) {
                device.cursor = (d, i)
                setFocus(.device)
                return true
            }
        }
        return false
    }
}
