// `umptui sweep FILE --vary KEY=V1,V2,... [--metric NAME ...]`: every combination of the values,
// each run on its own (the Engine is deterministic and each run independent), in parallel on all
// cores, then a table of the chosen figures, a bar chart, CSV or JSON.

import ArgumentParser
import Dispatch
import Engine
import Foundation

struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a scenario once for every combination of --vary values and tabulate the figures.",
        discussion: """
            Values: lists (16,64,256), ranges that multiply (16..1024*2) or add (1M..8M+1M), end inclusive,
            and [bracketed] values that hold commas: 'gpu.pagesizes=[4K],[4K,2M]'.
            Metrics are named as expect keys are: nic.misses, nic.hit_rate, nic.stall_ns, nic.ioptes_2M,
            app.locked_vm, machine.free, app.buf.present, outcome, failed_expects. See docs/scenario-language.md.
            """)

    @Argument(help: "The scenario file (*.ump).", completion: .file(extensions: ["ump"]))
    var file: String

    @Option(name: .customLong("vary"), help: ArgumentHelp("A key and its values, e.g. nic.iotlb=16..1024*2 (repeat for a product).", valueName: "KEY=VALUES"))
    var variations: [String] = []

    @Option(name: .customLong("metric"), help: ArgumentHelp("A figure to report (repeatable; default: misses, hit rate, stall, IOPTEs by size, locked_vm, outcome).", valueName: "NAME"))
    var metrics: [String] = []

    @Option(name: .customLong("set"), help: ArgumentHelp("An override every run shares, e.g. machine.ram=1G.", valueName: "KEY=VALUE"))
    var overrides: [String] = []

    @Option(help: ArgumentHelp("Draw a horizontal bar chart of this metric under the table.", valueName: "NAME"))
    var chart: String?

    @Flag(help: "CSV: a header row, then one row per run (a column per varied key and per metric).")
    var csv = false

    @Flag(help: "JSON: {\"vary\":[...],\"metrics\":[...],\"runs\":[...]} (docs/scenario-language.md).")
    var json = false

    @Option(parsing: .unconditional, help: ArgumentHelp("How many runs at once (default: one per core).", valueName: "N"))
    var jobs: Int?

    @Flag(help: "ASCII only in the table and the chart (the default when the locale is not UTF-8).")
    var ascii = false

    func validate() throws {
        if variations.isEmpty { throw ValidationError("give at least one --vary KEY=V1,V2,... (e.g. --vary nic.iotlb=16,64,256)") }
        if csv && json { throw ValidationError("--csv and --json are two formats; give one") }
        if chart != nil && (csv || json) { throw ValidationError("--chart draws in the terminal; it does not go with --csv or --json") }
        if let jobs, jobs < 1 || jobs > 256 { throw ValidationError("--jobs takes 1 to 256") }
    }

    func run() throws {
        let plan: SweepRun
        do {
            plan = try SweepRun(file: file, variations: variations, metrics: metrics, overrides: overrides, chart: chart)
        } catch let e as LoadError {
            printError(e.description)
            throw ExitCode(2)
        } catch let e as SweepError {
            printError(e.description)
            throw ExitCode(2)
        }
        let stop = StopFlag()
        let interrupt = stop.onSignal(SIGINT)
        defer { interrupt.cancel() }
        let progress = Progress(total: plan.runs.count, enabled: isatty(2) == 1)
        let results = plan.runAll(jobs: jobs ?? ProcessInfo.processInfo.activeProcessorCount, stop: stop) { progress.tick() }
        progress.finish()
        let table = plan.table(results)
        var out = BufferedOutput()
        if json {
            out.write(table.json(complete: !stop.stopped))
        } else if csv {
            out.write(table.csv())
        } else {
            let unicode = !ascii && TUIApp.localeIsUTF8()
            out.write(table.text(unicode: unicode))
            if let chart { out.write(table.chart(chart, width: TextReport.terminalWidth(), unicode: unicode)) }
        }
        try out.flush()  // a failed write: Umptui.main says so, exit 2
        if stop.stopped {
            printError("umptui sweep: interrupted: \(table.rows.count) of \(plan.runs.count) runs finished")
            throw ExitCode(130)
        }
        if table.rows.contains(where: { $0.failedExpects > 0 }) { throw ExitCode(1) }
    }
}

/// A loaded sweep: the script, each run's overrides, the metrics. Every combination has been
/// applied to the script and every metric name checked before anything runs.
struct SweepRun: Sendable {
    let keys: [String]
    /// Each run's overrides (one per varied key, in key order) and its script with them folded in.
    let runs: [(values: [String], script: Script)]
    let traces: FileTraceProvider
    /// The metrics asked for; `DEV.ioptes_*` expands to the sizes the runs used.
    let metrics: [String]

    init(file: String, variations: [String], metrics asked: [String], overrides: [String], chart: String?) throws {
        let loaded = try ScriptLoader.load(path: file, overrides: overrides)
        // Metrics first: naming one wrongly is found before thousands of combinations are made.
        var metrics: [String] = []
        for m in asked.isEmpty ? defaultMetrics(loaded.script) : asked where !metrics.contains(m) { metrics.append(m) }
        for (m, option) in metrics.map({ ($0, "--metric") }) + (chart.map { [($0, "--chart")] } ?? []) where !m.hasSuffix(".ioptes_*") {
            if let (message, hint) = metricProblem(m, in: loaded.script) {
                throw SweepError(message: "umptui sweep: error: \(option) \(m): \(message)\n  hint: \(hint)")
            }
        }
        if let chart, SweepRun.wordMetrics.contains(where: { chart == $0 || chart.hasSuffix("." + $0) }) {
            throw SweepError(message: "umptui sweep: error: --chart \(chart): a chart needs a number, and \(chart) is a word"
                             + "\n  hint: chart a count, a size or a time: nic.misses, nic.stall_ns, app.locked_vm")
        }
        let parsed = try variations.map { arg throws(SweepError) in try Variation(arg) }
        var seen = Set<String>()
        for (v, arg) in zip(parsed, variations) where !seen.insert(v.key).inserted {
            throw SweepError(arg, "\(v.key) is varied twice; give its values in one --vary", column: 1)
        }
        let count = parsed.reduce(1) { $0.multipliedReportingOverflow(by: $1.values.count).overflow ? Int.max : $0 * $1.values.count }
        guard count <= Variation.maxRuns else {
            throw SweepError(message: "umptui sweep: error: \(count == Int.max ? "too many" : String(count)) runs; a sweep makes at most \(Variation.maxRuns)")
        }
        // Each value on its own first, so a bad one is named with its --vary; then every combination.
        for (v, arg) in zip(parsed, variations) {
            for value in v.values {
                var s = loaded.script
                do { try applyOverrides(["\(v.key)=\(value)"], to: &s) } catch {
                    let d = error.items.first
                    throw SweepError(arg, "\(v.key)=\(value): \(d?.message ?? "bad value")", hint: d?.hint)
                }
            }
        }
        var runs: [(values: [String], script: Script)] = []
        for combo in combinations(parsed) {
            var s = loaded.script
            do { try applyOverrides(combo, to: &s) } catch {
                throw SweepError(message: "umptui sweep: error: the combination \(combo.joined(separator: " ")) does not fit: "
                                 + (error.items.first?.message ?? "bad value"))
            }
            runs.append((combo.map { c in c.firstIndex(of: "=").map { i in String(c[c.index(after: i)...]) } ?? c }, s))
        }
        keys = parsed.map(\.key)
        self.runs = runs
        traces = loaded.traces
        self.metrics = metrics + (chart.map { metrics.contains($0) ? [] : [$0] } ?? [])
    }

    /// Metrics whose values are words (an `expect` key measured as a word or a truth value).
    static let wordMetrics = ["outcome", "errno", "signal", "ok", "alive"]

    /// One run: the figures, the values of the metrics asked by name, and how many expects failed.
    struct Result: Sendable {
        var values: [String: FigureValue]
        var figureNames: [String]
        /// How each headline figure is counted, for the table's formatting.
        var units: [String: FigureUnit]
        var failedExpects: Int
    }

    func runOne(_ i: Int, stop: StopFlag) -> Result? {
        let result = ScenarioRunner.run(runs[i].script, traces: traces, shouldStop: { stop.stopped }, onEvent: { _, _ in })
        if stop.stopped { return nil }
        let last = result.records.last
        let figures = result.engine.figures(last: last, failedExpects: result.failures.count)
        var values: [String: FigureValue] = [:]
        for f in figures { values[f.name] = f.value }
        for m in metrics where values[m] == nil && !m.hasSuffix(".ioptes_*") {
            values[m] = result.engine.metric(m, last: last, failedExpects: result.failures.count) ?? .word("-")
        }
        return Result(values: values, figureNames: figures.map(\.name),
                      units: Dictionary(figures.map { ($0.name, $0.unit) }, uniquingKeysWith: { a, _ in a }),
                      failedExpects: result.failures.count)
    }

    /// Runs every combination, `jobs` at a time, as tasks of a task group; `done` after each.
    /// Runs not started when `stop` is set are skipped.
    func runAll(jobs: Int, stop: StopFlag, done: @escaping @Sendable () -> Void) -> [Result?] {
        let box = ResultsBox(count: runs.count)
        let finished = DispatchSemaphore(value: 0)
        let plan = self
        Task.detached {
            await withTaskGroup(of: (Int, Result?).self) { group in
                var next = 0
                func add() {
                    let i = next
                    next += 1
                    group.addTask { (i, stop.stopped ? nil : plan.runOne(i, stop: stop)) }
                }
                while next < min(jobs, plan.runs.count) { add() }
                while let (i, r) = await group.next() {
                    box.set(i, r)
                    done()
                    if next < plan.runs.count && !stop.stopped { add() }
                }
            }
            finished.signal()
        }
        finished.wait()
        return box.results
    }

    /// The results as a table: rows of the runs that finished, in combination order.
    func table(_ results: [Result?]) -> SweepTable {
        var columns: [String] = []
        for m in metrics {
            if m.hasSuffix(".ioptes_*") {
                let prefix = String(m.dropLast(1))
                var sizes = Set<UInt64>()
                for r in results.compactMap({ $0 }) {
                    for n in r.figureNames where n.hasPrefix(prefix) { if let s = parseSize(String(n.dropFirst(prefix.count))) { sizes.insert(s) } }
                }
                columns += sizes.sorted(by: >).map { prefix + formatSizeShort($0) }
            } else {
                columns.append(m)
            }
        }
        var units: [String: FigureUnit] = [:]
        for r in results.compactMap({ $0 }) { units.merge(r.units) { a, _ in a } }
        var rows: [SweepTable.Row] = []
        for (i, r) in results.enumerated() {
            guard let r else { continue }
            rows.append(SweepTable.Row(values: runs[i].values, metrics: columns.map { c in
                r.values[c] ?? (c.contains(".ioptes_") ? .integer(0) : .word("-"))
            }, failedExpects: r.failedExpects))
        }
        return SweepTable(keys: keys, metrics: columns, rows: rows, units: columns.map { units[$0] ?? .count })
    }
}

/// Results written by the tasks, read once they are all done.
final class ResultsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [SweepRun.Result?]
    init(count: Int) { items = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: SweepRun.Result?) { lock.lock(); items[i] = r; lock.unlock() }
    var results: [SweepRun.Result?] { lock.lock(); defer { lock.unlock() }; return items }
}

/// Set by Ctrl-C: runs not started yet are skipped, running ones stop at their next step.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var stopped: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func stop() { lock.lock(); value = true; lock.unlock() }

    /// Sets the flag on `sig` instead of dying of it, until the returned source is cancelled.
    func onSignal(_ sig: Int32) -> any DispatchSourceSignal {
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler { [self] in stop() }
        source.setCancelHandler { signal(sig, SIG_DFL) }
        source.resume()
        return source
    }
}

/// Runs done of total, elapsed and an estimate, on stderr when it is a terminal; never in piped output.
final class Progress: @unchecked Sendable {
    private let lock = NSLock()
    private let total: Int
    private let enabled: Bool
    private var done = 0
    private let start = Date()
    private var lastDraw = Date.distantPast

    init(total: Int, enabled: Bool) {
        self.total = total
        self.enabled = enabled
    }

    func tick() {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        done += 1
        let now = Date()
        guard now.timeIntervalSince(lastDraw) >= 0.1 || done == total else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(start)
        let left = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let line = "sweep: \(done)/\(total) runs · \(String(format: "%.1f", elapsed)) s elapsed · about \(String(format: "%.1f", left)) s left"
        StandardStreams.err("\r\u{1b}[K" + line)
    }

    func finish() {
        guard enabled else { return }
        StandardStreams.err("\r\u{1b}[K")
    }
}

/// A finished sweep as rows: a value per varied key, then a value per metric.
struct SweepTable: Equatable {
    struct Row: Equatable {
        var values: [String]
        var metrics: [FigureValue]
        var failedExpects: Int
    }

    var keys: [String]
    var metrics: [String]
    var rows: [Row]
    /// How each metric is counted: the table writes 16M and 24.0 ms where CSV and JSON write bytes
    /// and nanoseconds.
    var units: [FigureUnit]

    /// The columns aligned, numbers to the right.
    func text(unicode: Bool) -> String {
        let header = keys + metrics
        let body = rows.map { r in r.values + zip(r.metrics, units).map { Figure.format($0, $1) } }
        var widths = header.map(\.count)
        for r in body { for (i, v) in r.enumerated() { widths[i] = max(widths[i], v.count) } }
        func line(_ cells: [String], numeric: (Int) -> Bool) -> String {
            cells.enumerated().map { i, v in
                let pad = String(repeating: " ", count: widths[i] - v.count)
                return numeric(i) ? pad + v : v + pad
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        var out = [line(header) { _ in false }]
        out.append(widths.map { String(repeating: unicode ? "─" : "-", count: $0) }.joined(separator: "  "))
        // A key's column is right-aligned when every value in it is a number or a size.
        let numericKey = keys.indices.map { k in rows.allSatisfy { parseSize($0.values[k]) != nil } }
        for (r, cells) in zip(rows, body) {
            out.append(line(cells) { i in i < keys.count ? numericKey[i] : r.metrics[i - keys.count].number != nil })
        }
        return out.joined(separator: "\n") + "\n\(plural(rows.count, "run"))"
    }

    /// RFC 4180: a header row, one row per run; fields with commas, quotes or newlines quoted.
    func csv() -> String {
        func field(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        var out = [(keys + metrics).map(field).joined(separator: ",")]
        for r in rows { out.append((r.values + r.metrics.map(\.plain)).map(field).joined(separator: ",")) }
        return out.joined(separator: "\r\n") + "\r\n"
    }

    func json(complete: Bool) -> String {
        var w = JSONWriter()
        w.beginObject()
        w.beginArray("vary")
        for k in keys { w.field(nil, k) }
        w.endArray()
        w.beginArray("metrics")
        for m in metrics { w.field(nil, m) }
        w.endArray()
        w.beginArray("runs")
        for r in rows {
            w.beginObject()
            w.beginObject("set")
            for (k, v) in zip(keys, r.values) { w.field(k, v) }
            w.endObject()
            w.beginObject("metrics")
            for (m, v) in zip(metrics, r.metrics) { w.field(m, v) }
            w.endObject()
            w.endObject()
        }
        w.endArray()
        w.field("complete", complete)
        w.endObject()
        return w.string
    }

    /// A bar per run for one metric, scaled to the largest value; eighths of a cell in Unicode.
    func chart(_ metric: String, width: Int, unicode: Bool) -> String {
        guard let m = metrics.firstIndex(of: metric) else { return "" }
        let labels = rows.map { zip(keys, $0.values).map { "\($0)=\($1)" }.joined(separator: " ") }
        let values = rows.map { $0.metrics[m].number ?? 0 }
        let texts = rows.map { $0.metrics[m].plain }
        let labelW = min(40, labels.map(\.count).max() ?? 0)
        let valueW = texts.map(\.count).max() ?? 0
        let barW = max(10, width - labelW - valueW - 4)
        let top = max(values.max() ?? 0, 1e-9)
        var out = ["", "\(metric)  (\(unicode ? "█" : "#") = \(oneDecimal(top / Double(barW))) per cell)"]
        let eighths: [Character] = ["▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        for (i, label) in labels.enumerated() {
            let cells = max(0, values[i]) / top * Double(barW)
            var bar = String(repeating: unicode ? "█" : "#", count: Int(cells))
            let frac = Int((cells - cells.rounded(.down)) * 8)
            if unicode && frac > 0 { bar.append(eighths[frac - 1]) }
            let l = label.count > labelW ? String(label.prefix(labelW - 1)) + (unicode ? "…" : ".") : label
            out.append(l.padding(toLength: labelW, withPad: " ", startingAt: 0) + "  " + bar.padding(toLength: barW, withPad: " ", startingAt: 0)
                       + "  " + texts[i])
        }
        return out.map { $0.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }.joined(separator: "\n")
    }
}

extension JSONWriter {
    /// A figure's value: an integer, a percentage with one decimal (null without one), or a word.
    mutating func field(_ key: String?, _ v: FigureValue) {
        switch v {
        case let .integer(n): field(key, n)
        case let .percent(p?): raw(key, percentText(p))
        case .percent(nil): raw(key, "null")
        case let .word(s): field(key, s)
        }
    }
}
