// Notes that state numbers take them from the step they explain, so they cannot drift from what the
// Engine did: `{wp_page_copy}` is how many pages that function handled in the step, `{ioptes.4K}`
// how many 4 KiB IOPTEs it set, `{misses}` the IOTLB misses it caused, `{app.rss}` a figure after
// it. `{=128 KiB}` writes a fixed fact as it is (and says it is one); `{{` and `}}` are braces.

public enum NoteText {
    /// One `{...}` of a note: its name and where it starts (0-based, in characters).
    public struct Placeholder: Equatable, Sendable {
        public var name: String
        public var offset: Int
    }

    /// What a problem with a note's placeholders says, with where in the note.
    public struct Problem: Error, Equatable, Sendable {
        public var message: String
        public var offset: Int
        public var hint: String?
    }

    /// The names the step's own record fills (beside the count keys and the metrics).
    public static let stepKeys = ["step", "misses", "hits", "accesses", "walks", "stall", "faults", "ioptes", "ioptes.SIZE", "outcome"]

    /// The placeholders of a note, in order; a `{` with no `}` is a problem.
    public static func placeholders(_ note: String) throws(Problem) -> [Placeholder] {
        var out: [Placeholder] = []
        let chars = Array(note)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "{" {
                if i + 1 < chars.count, chars[i + 1] == "{" { i += 2; continue }
                guard let close = chars[(i + 1)...].firstIndex(of: "}") else {
                    throw Problem(message: "'{' with no '}' in the note", offset: i, hint: "write {{ for a brace, or {NAME} for a number from the step")
                }
                out.append(Placeholder(name: String(chars[(i + 1)..<close]), offset: i))
                i = close + 1
            } else if c == "}" {
                if i + 1 < chars.count, chars[i + 1] == "}" { i += 2; continue }
                throw Problem(message: "'}' with no '{' in the note", offset: i, hint: "write }} for a brace")
            } else {
                i += 1
            }
        }
        return out
    }

    /// What is wrong with a placeholder name, or nil: a fixed fact, a count key, a step key, or a
    /// metric of the script's processes and devices (checked by `metric`).
    public static func problem(_ name: String, metric: (String) -> (message: String, hint: String)?) -> (message: String, hint: String)? {
        if name.hasPrefix("=") { return name.count > 1 ? nil : ("'{=}' needs the fixed text after '='", "e.g. {=128 KiB}") }
        if countKeys.contains(name) || stepKeys.contains(name) { return nil }
        if name.hasPrefix("ioptes."), let size = try? Literal.size(String(name.dropFirst(7))), size >= pageSize, size.nonzeroBitCount == 1 {
            return nil
        }
        if name.hasPrefix("ioptes.") {
            return ("unknown placeholder {\(name)}: ioptes.SIZE needs a page size, a power of two from 4K", "e.g. {ioptes.4K}, {ioptes.2M}")
        }
        if name.contains(".") {
            if let p = metric(name) { return ("unknown placeholder {\(name)}: " + p.message, p.hint) }
            return nil
        }
        return ("unknown placeholder {\(name)}",
                Suggest.prefix(name, among: countKeys + stepKeys) + "a placeholder is a kernel function's count in the step ({wp_page_copy}, {do_anonymous_page:zero}), one of \(stepKeys.joined(separator: ", ")), a figure after the step ({app.rss}, {nic.misses}), or {=TEXT} for a fixed fact")
    }

    /// Expect keys whose values are bytes: a note writes them as sizes.
    static let byteKeys: Set<String> = ["ram", "free", "rss", "locked_vm", "pinned_vm", "memlock_limit", "mmap_threshold", "size"]

    /// Every count key a step's JSON can hold (ioptes by size aside).
    public static let countKeys: [String] = {
        var keys = Narration.order.compactMap(\.countKey)
        for e in [KernelEvent.unshare, .migratePages, .copyPresentPage, .zapPFNMap, .iommuPgtableAlloc, .iotlbLookup, .iotlbHit,
                  .iotlbMiss, .exitUnmap, .kernelBufferFreed] {
            if let k = e.countKey, !keys.contains(k) { keys.append(k) }
        }
        return keys
    }()

    /// A note with no step to fill it from (after the last step): fixed facts and braces resolved,
    /// anything else left as written (the checker refuses such placeholders there).
    public static func plain(_ note: String) -> String {
        guard note.contains("{") || note.contains("}"), let phs = try? placeholders(note), phs.allSatisfy({ $0.name.hasPrefix("=") }) else {
            return note
        }
        var out = ""
        var chars = Array(note)[...]
        while let c = chars.popFirst() {
            if (c == "{" || c == "}"), chars.first == c { chars.removeFirst(); out.append(c); continue }
            if c == "{", let close = chars.firstIndex(of: "}") {
                out += String(chars[chars.startIndex..<close].dropFirst())
                chars = chars[(close + 1)...]
                continue
            }
            out.append(c)
        }
        return out
    }

    /// The note with its placeholders filled from the step's record and the state after it. A note
    /// whose placeholders do not parse is left as written (the checker refuses such a script).
    public static func fill(_ note: String, record r: StepRecord, engine: Engine) -> String {
        guard note.contains("{") || note.contains("}") else { return note }
        guard (try? placeholders(note)) != nil else { return note }
        var out = ""
        let chars = Array(note)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if (c == "{" || c == "}"), i + 1 < chars.count, chars[i + 1] == c {
                out.append(c)
                i += 2
            } else if c == "{", let close = chars[(i + 1)...].firstIndex(of: "}") {
                out += value(String(chars[(i + 1)..<close]), r, engine)
                i = close + 1
            } else {
                out.append(c)
                i += 1
            }
        }
        return out
    }

    static func value(_ name: String, _ r: StepRecord, _ engine: Engine) -> String {
        if name.hasPrefix("=") { return String(name.dropFirst()) }
        if countKeys.contains(name) {
            return String(r.events.happened.first { $0.event.countKey == name }?.count ?? 0)
        }
        let deltas = r.deviceDeltas.values
        func sum(_ f: (DeviceStats) -> Int) -> Int { deltas.reduce(0) { $0 + f($1) } }
        switch name {
        case "step": return String(r.step)
        case "misses": return String(sum(\.misses))
        case "hits": return String(sum(\.hits))
        case "accesses": return String(sum(\.accesses))
        case "walks": return String(sum(\.walks))
        case "faults": return String(sum(\.faults))
        case "stall": return formatNs(sum(\.stallNs))
        case "ioptes": return String(r.events.ioptesBySize.reduce(0) { $0 + $1.count })
        case "outcome": return r.outcome.word
        default: break
        }
        if name.hasPrefix("ioptes."), let size = try? Literal.size(String(name.dropFirst(7))) {
            return String(r.events.ioptesBySize.first { $0.size == size }?.count ?? 0)
        }
        // Sizes read as the narration writes them ("344 KiB", "8 MiB"), whichever table they come from.
        let key = name.split(separator: ".").last.map(String.init) ?? name
        let figure = engine.figures(last: r, failedExpects: 0).first { $0.name == name }
        if let f = figure, f.unit != .bytes { return f.text }
        guard let v = engine.metric(name, last: r, failedExpects: 0) else { return "?" }
        if case let .integer(n) = v, n >= 0, figure?.unit == .bytes || NoteText.byteKeys.contains(key) { return formatSize(UInt64(n)) }
        return v.plain
    }
}
