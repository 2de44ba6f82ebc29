// `umptui run --json`: the JSON Lines contract of SCENARIO.md.

import Engine

enum JSONLines {
    /// A step as `step`; a recording's `back` as {"back":N,"line":L,"command":...} (the step it
    /// undid); a `set` as {"set":"TARGET.KEY=VALUE","line":L,"rerun_steps":N}; an `unset` as
    /// {"unset":"TARGET.KEY","line":L,"rerun_steps":N,"was_set":B}.
    static func event(_ e: RunEvent) -> String {
        var w = JSONWriter()
        switch e {
        case let .step(r): return step(r)
        case let .back(r, line):
            w.beginObject()
            w.field("back", r.step)
            w.field("line", line)
            w.field("command", r.command)
            w.endObject()
        case let .backAtStart(line):
            w.beginObject()
            w.field("back", 0)
            w.field("line", line)
            w.endObject()
        case let .set(text, line, steps):
            w.beginObject()
            w.field("set", text)
            w.field("line", line)
            w.field("rerun_steps", steps)
            w.endObject()
        case let .unset(key, line, steps, wasSet):
            w.beginObject()
            w.field("unset", key)
            w.field("line", line)
            w.field("rerun_steps", steps)
            w.field("was_set", wasSet)
            w.endObject()
        case let .badSet(d, line):
            w.beginObject()
            w.field("set_error", d.rendered)
            w.field("line", line)
            w.endObject()
        }
        return w.string
    }

    static func step(_ r: StepRecord) -> String {
        var w = JSONWriter()
        w.beginObject()
        w.field("step", r.step)
        w.field("line", r.line)
        w.field("command", r.command)
        w.field("ok", r.outcome.ok)
        w.field("errno", r.outcome.errnoName)
        w.field("signal", r.outcome.signalName)
        w.field("outcome", r.outcome.word)
        w.field("text", r.text)
        w.beginArray("notes")
        for n in r.notes { w.field(nil, n) }
        w.endArray()
        w.beginArray("hazards")
        for h in r.hazards { w.field(nil, h.text) }
        w.endArray()
        w.beginObject("counts")
        for (k, v) in r.counts { w.field(k, v) }
        w.endObject()
        w.field("changes", r.changes.count)
        if !r.bugs.isEmpty {
            w.beginArray("internal_errors")
            for b in r.bugs { w.field(nil, b) }
            w.endArray()
        }
        if let t = r.trace { trace(t, r, &w) }
        w.endObject()
        return w.string
    }

    /// A `trace` step's summary: the accesses by kind, the faults by kind, RSS over the trace, and
    /// the pages each of the trace's VMAs touched.
    static func trace(_ t: TraceSummary, _ r: StepRecord, _ w: inout JSONWriter) {
        w.beginObject("trace")
        w.field("lines", t.lines)
        w.beginObject("accesses")
        w.field("instructions", t.instructions)
        w.field("loads", t.loads)
        w.field("stores", t.stores)
        w.field("modifies", t.modifies)
        w.endObject()
        let counts = Dictionary(r.counts, uniquingKeysWith: { a, _ in a })
        w.beginObject("faults")
        w.field("zero_page", counts["do_anonymous_page:zero"] ?? 0)
        w.field("anonymous", counts["do_anonymous_page"] ?? 0)
        w.field("zero_page_copied", counts["wp_page_copy:zero"] ?? 0)
        w.field("cow", counts["wp_page_copy"] ?? 0)
        w.field("reuse", (counts["wp_page_reuse:exclusive"] ?? 0) + (counts["wp_page_reuse:refcount"] ?? 0) + (counts["wp_page_reuse:mapcount"] ?? 0))
        w.field("thp", counts["do_huge_pmd_anonymous_page"] ?? 0)
        w.field("swap_in", counts["do_swap_page"] ?? 0)
        w.field("text_pages", t.textPages)
        w.endObject()
        w.beginArray("rss_pages")
        for v in t.rssSamples { w.field(nil, v) }
        w.endArray()
        w.beginArray("vmas")
        for v in t.vmas {
            w.beginObject()
            w.field("name", v.name)
            w.field("start", Int(v.start))
            w.field("end", Int(v.end))
            w.field("pages", v.pages)
            w.endObject()
        }
        w.endArray()
        w.endObject()
    }

    static func final(_ result: RunResult) -> String {
        var w = JSONWriter()
        w.beginObject()
        var state = JSONWriter()
        result.engine.writeState(into: &state)
        w.raw("final", state.string)
        w.beginArray("expect_failures")
        for f in result.failures {
            w.beginObject()
            w.field("line", f.location.line)
            w.field("column", f.location.column)
            w.field("statement", f.statement)
            w.field("message", f.message)
            w.endObject()
        }
        w.endArray()
        w.endObject()
        return w.string
    }
}
