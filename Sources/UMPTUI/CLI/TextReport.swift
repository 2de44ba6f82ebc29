// `umptui run` without --json: a short narration per step, then a summary. Never a line per page.

import Engine
import Foundation

struct TextReport {
    var fileName: String
    var width: Int

    static func terminalWidth() -> Int {
        if let c = ProcessInfo.processInfo.environment["COLUMNS"], let n = Int(c), n >= 40 { return min(n, 200) }
        return 100
    }

    func step(_ r: StepRecord) -> String {
        var s = "\(r.step). \(r.command)" + (r.line > 0 ? "   [line \(r.line)]" : "") + "\n"
        for n in r.notes { s += wrap("note: " + n, indent: "   ") }
        let tag = r.outcome.ok ? "" : "[\(r.outcome.word)] "
        s += wrap(tag + r.text, indent: "   ")
        if let t = r.trace, t.rssSamples.count > 1 {
            s += "   rss over the trace: " + t.sparkline(["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]) + " (up to \(formatSize(UInt64(t.rssSamples.max() ?? 0) << pageShift)))\n"
            for v in t.vmas { s += "   \(v.name) \(hex(v.start))-\(hex(v.end)): \(plural(v.pages, "page")) \(v.name.hasPrefix("text") ? "fetched" : "present")\n" }
        }
        for h in r.hazards { s += wrap("HAZARD: " + h.text, indent: "   ") }
        for b in r.bugs { s += wrap("INTERNAL ERROR (a bug in UMPTUI, not in the script): " + b, indent: "   ") }
        return s
    }

    func event(_ e: RunEvent) -> String {
        switch e {
        case let .step(r): step(r)
        case let .back(r, line): "   back   [line \(line)]: undid step \(r.step), \(r.command)"
        case let .backAtStart(line): "   back   [line \(line)]: nothing to undo"
        case let .set(text, line, steps): "   set \(text)   [line \(line)]: re-ran \(plural(steps, "step")) from boot with the override"
        case let .unset(key, line, steps, wasSet):
            wasSet ? "   unset \(key)   [line \(line)]: re-ran \(plural(steps, "step")) from boot without the override"
                : "   unset \(key)   [line \(line)]: no override of \(key) was in force; nothing ran again"
        case let .badSet(d, line): "   set   [line \(line)]: the override does not fit the declarations: \(d.items.first?.message ?? "")"
        }
    }

    func summary(_ result: RunResult) -> String {
        var outcomes: [String: Int] = [:]
        for r in result.records { outcomes[r.outcome.word, default: 0] += 1 }
        let hazards = result.records.reduce(0) { $0 + $1.hazards.count }
        let steps = result.records.count
        let detail = outcomes.sorted { ($0.key == "ok" ? 0 : 1, $0.key) < ($1.key == "ok" ? 0 : 1, $1.key) }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        let st = result.engine.state
        var s = "\nsummary: \(plural(steps, "step")) (\(detail.isEmpty ? "none" : detail))"
        s += hazards > 0 ? ", \(plural(hazards, "hazard")) flagged\n" : "\n"
        s += "  machine: \(formatSize(UInt64(st.phys.freeFrames) << 12)) free of \(formatSize(st.config.ram))"
        if !st.swapMap.isEmpty { s += ", swap \(st.meta.swapUsed) of \(st.swapMap.count) pages used" }
        s += "\n"
        for p in st.processes {
            let m = p.meta
            if m.alive {
                s += "  \(m.name) (pid \(m.pid)): rss \(plural(m.rssPages, "page")), \(m.vmas.count) VMAs, \(m.pageTablePages) page-table pages"
                if m.swapPages > 0 { s += ", \(m.swapPages) swapped" }
                if m.lockedVMPages > 0 { s += ", locked_vm \(formatSize(UInt64(m.lockedVMPages) << 12))" }
                s += "\n"
            } else {
                s += "  \(m.name) (pid \(m.pid)): \(m.exitReason.map { $0 == "exit" ? "exited" : $0 } ?? "exited")\n"
            }
        }
        for d in st.devices {
            let rate = d.stats.accesses > 0 ? percentText(Double(d.stats.hits) * 100 / Double(d.stats.accesses)) + "%" : "-"
            s += "  \(d.name) (\(d.info.format.rawValue)): \(d.ioptes.count) IOPTEs, \(d.stats.accesses) accesses, IOTLB hit rate \(rate), \(d.stats.misses) misses, stall \(d.stats.stallNs) ns"
            if d.stats.faults > 0 { s += ", \(d.stats.faults) IOMMU faults" }
            s += "\n"
        }
        let checks = result.failures.isEmpty ? "every expect held" : "\(plural(result.failures.count, "expect")) failed"
        s += "  \(checks)"
        return s
    }

    func failure(_ f: ExpectFailure) -> String {
        "\(fileName):\(f.location.line):\(f.location.column): expect failed: \(f.message)\n    \(f.statement)"
    }

    /// Word-wraps to the width with a hanging indent.
    func wrap(_ text: String, indent: String) -> String {
        let text = printable(text)
        var out = "", line = indent
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            if line.count + word.count + 1 > width && line.count > indent.count {
                out += line + "\n"
                line = indent + "  "
            }
            line += (line.count > indent.count && !line.hasSuffix("  ") ? " " : "") + word
        }
        return out + line + "\n"
    }
}
