import ArgumentParser
import Engine
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the Engine: faults per second and bytes per frame for a 4 GiB write-touch on a 16 GiB machine.",
        discussion: "Run it from a release build: swift run -c release umptui bench")

    @Flag(help: "Print the results as one JSON object.")
    var json = false

    @Option(help: "Size of the buffer the benchmark writes (default 4G).")
    var touch: String = "4G"

    @Option(parsing: .unconditional, help: "Lines of the page trace the IOTLB benchmark replays (default 10 million).")
    var traceLines: Int = 10_000_000

    @Option(parsing: .unconditional, help: "Steps of the generated timeline the time-travel benchmark jumps around (default 100000).")
    var timelineSteps: Int = 100_000

    @Flag(help: "Run only the time-travel benchmark.")
    var timeTravelOnly = false

    @Flag(help: "Run only the sweep benchmark (runs per second on one core and on all).")
    var sweepOnly = false

    @Flag(help: "Run only the lackey trace benchmark (PROC trace lines per second, memory while it streams).")
    var lackeyOnly = false

    @Flag(help: "Run only the key latency benchmark (key press to frame at 200x60 on --keys-demo).")
    var keysOnly = false

    @Flag(help: "Run only the boot benchmark (ram=16G against ram=64M, whole runs).")
    var bootOnly = false

    @Option(help: "The scenario the key latency benchmark presses keys in (default demos/iotlb-reach.ump).")
    var keysDemo: String = "demos/iotlb-reach.ump"

    func run() throws {
        guard let bytes = parseSizeLiteral(touch), bytes >= 1 << 20, bytes <= 8 << 30 else {
            printError("umptui bench: --touch takes a size from 1M to 8G, like 4G")
            throw ExitCode(2)
        }
        guard timelineSteps >= 1000, timelineSteps <= 1_000_000 else {
            printError("umptui bench: --timeline-steps takes 1000 to 1000000")
            throw ExitCode(2)
        }
        guard traceLines >= 1000, traceLines <= 100_000_000 else {
            printError("umptui bench: --trace-lines takes 1000 to 100000000")
            throw ExitCode(2)
        }
        if timeTravelOnly {
            Bench.printTimeTravel(BenchTimeline.run(steps: timelineSteps))
            return
        }
        if sweepOnly {
            BenchSweep.print(try BenchSweep.run())
            return
        }
        if bootOnly {
            let boot = try BenchBoot.run()
            if json {
                var w = JSONWriter()
                w.beginObject()
                BenchBoot.write(boot, &w)
                w.endObject()
                print(w.string)
            } else {
                BenchBoot.print(boot)
            }
            return
        }
        if lackeyOnly {
            BenchLackey.print(try BenchLackey.run(lines: traceLines))
            return
        }
        if keysOnly {
            guard FileManager.default.isReadableFile(atPath: keysDemo) else {
                printError("umptui bench: --keys-demo: cannot read \(keysDemo) (run from the repository, or name a scenario)")
                throw ExitCode(2)
            }
            BenchKeys.print(try BenchKeys.run(demo: keysDemo))
            return
        }
        let results = BenchRunner.faults(touchBytes: bytes)
        let iotlb: IOTLBBench.Result
        do {
            iotlb = try IOTLBBench.run(lines: traceLines)
        } catch {
            printError("umptui bench: the IOTLB benchmark failed: \(error)")
            throw ExitCode(1)
        }
        let render = [RenderBench.run(ram: "16G", touch: bytes == 4 << 30 ? "4G" : touch), RenderBench.run(ram: "64M", touch: "32M")]
        let scripts = [BenchScript.run(lines: 2_000), BenchScript.run(lines: 20_000)]
        let growth = scripts[1].median / max(scripts[0].median, 1e-9)
        let travel = BenchTimeline.run(steps: timelineSteps)
        let boot = try BenchBoot.run()
        let sweep = try BenchSweep.run()
        let lackey = try BenchLackey.run(lines: traceLines)
        // The key latency needs a demo to press keys in: from the repository, or --keys-demo.
        let keys = FileManager.default.isReadableFile(atPath: keysDemo) ? try BenchKeys.run(demo: keysDemo) : nil
        #if DEBUG
        let build = "debug"
        #else
        let build = "release"
        #endif
        if json {
            var w = JSONWriter()
            w.beginObject()
            w.field("build", build)
            w.field("faults", results.faults)
            w.field("fault_seconds", String(format: "%.4f", results.seconds))
            w.field("faults_per_second", Int(results.faultsPerSecond))
            w.field("engine_bytes_per_frame", String(format: "%.2f", results.bytesPerFrame))
            w.field("change_log_bytes_per_fault", String(format: "%.1f", results.changeBytesPerFault))
            w.field("undo_seconds", String(format: "%.4f", results.undoSeconds))
            w.field("target_faults_per_second", 5_000_000)
            w.field("target_bytes_per_frame", 64)
            w.field("trace_lines", iotlb.lines)
            w.field("iotlb_swift_seconds", String(format: "%.3f", iotlb.swiftSeconds))
            w.field("iotlb_lookups_per_second", Int(Double(iotlb.lines) / iotlb.swiftSeconds))
            if let c = iotlb.cSeconds {
                w.field("iotlb_c_seconds", String(format: "%.3f", c))
                w.field("iotlb_ratio_to_c", String(format: "%.2f", iotlb.ratio ?? 0))
            }
            w.field("iotlb_results_agree", iotlb.swiftHitsMisses.map { s in iotlb.cHitsMisses.map { $0 == s } ?? false } ?? false)
            w.field("target_ratio_to_c", "1.5")
            w.beginArray("render")
            for r in render {
                w.beginObject()
                w.field("scenario", r.label)
                w.field("cells", r.cells)
                w.field("first_frame_ms", String(format: "%.2f", r.firstFrameMs))
                w.field("frame_ms_median", String(format: "%.3f", r.medianMs))
                w.field("frame_ms_worst", String(format: "%.3f", r.worstMs))
                w.field("frame_after_move_ms", String(format: "%.2f", r.moveFrameMs))
                w.endObject()
            }
            w.endArray()
            w.field("target_frame_ms", 5)
            w.beginArray("long_scripts")
            for r in scripts {
                w.beginObject()
                w.field("malloc_lines", r.lines)
                w.field("seconds_median", String(format: "%.3f", r.median))
                w.field("seconds_min", String(format: "%.3f", r.seconds.first ?? 0))
                w.field("seconds_max", String(format: "%.3f", r.seconds.last ?? 0))
                w.endObject()
            }
            w.endArray()
            w.field("long_script_growth", String(format: "%.1f", growth))
            w.field("target_long_script_growth", 12)
            w.beginObject("time_travel")
            w.field("steps", travel.steps)
            w.field("run_to_end_seconds", String(format: "%.2f", travel.buildSeconds))
            w.field("jumps", travel.jumpsMs.count)
            w.field("jump_ms_median", String(format: "%.2f", travel.medianMs))
            w.field("jump_ms_p90", String(format: "%.2f", travel.p90Ms))
            w.field("jump_ms_worst", String(format: "%.2f", travel.worstMs))
            w.field("jump_ms_min", String(format: "%.2f", travel.jumpsMs.first ?? 0))
            w.field("snapshots", travel.snapshots.snapshots)
            w.field("snapshot_bytes", travel.snapshots.bytes)
            w.field("snapshot_frame_chunks", travel.snapshots.frameChunks)
            w.field("state_bytes", travel.stateBytes)
            w.field("record_bytes", travel.recordBytes)
            w.field("target_jump_ms_median", 50)
            w.field("target_jump_ms_worst", 100)
            w.endObject()
            w.beginObject("sweep")
            w.field("runs", sweep.runs)
            w.field("cores", sweep.cores)
            w.field("runs_per_second_1_core", Int(sweep.runsPerSecondOne))
            w.field("runs_per_second_all_cores", Int(sweep.runsPerSecondAll))
            w.field("speedup", String(format: "%.2f", sweep.speedup))
            w.field("seconds_1_core_min", String(format: "%.3f", sweep.oneJob.first ?? 0))
            w.field("seconds_1_core_max", String(format: "%.3f", sweep.oneJob.last ?? 0))
            w.field("seconds_all_cores_min", String(format: "%.3f", sweep.allJobs.first ?? 0))
            w.field("seconds_all_cores_max", String(format: "%.3f", sweep.allJobs.last ?? 0))
            w.field("tables_agree", sweep.agree)
            w.endObject()
            w.beginObject("lackey")
            w.field("lines", lackey.lines)
            w.field("seconds_median", String(format: "%.3f", lackey.median))
            w.field("seconds_min", String(format: "%.3f", lackey.seconds.first ?? 0))
            w.field("seconds_max", String(format: "%.3f", lackey.seconds.last ?? 0))
            w.field("lines_per_second", Int(lackey.linesPerSecond))
            w.field("peak_rss_growth_kib", lackey.rssGrowthKiB)
            w.endObject()
            BenchBoot.write(boot, &w)
            if let keys { BenchKeys.write(keys, &w) }
            w.endObject()
            print(w.string)
            return
        }
        print("umptui bench (\(build) build)\(build == "debug" ? " — numbers from a debug build mean little; use swift run -c release umptui bench" : "")")
        print(String(format: "  write-touch %@ on machine ram=16G: %d faults in %.3f s = %.2f million faults/s (target ≥ 5)",
                     formatSize(bytes), results.faults, results.seconds, results.faultsPerSecond / 1e6))
        print(String(format: "  Engine state: %.1f bytes per frame (target ≤ 64; Linux's struct page is 64)", results.bytesPerFrame))
        print(String(format: "  change log for undo: %.1f bytes per fault; undoing the step took %.3f s", results.changeBytesPerFault, results.undoSeconds))
        print(String(format: "  dma-trace of %d page numbers through a 64-entry LRU IOTLB: %.3f s = %.1f million lookups/s (whole `umptui run`)",
                     iotlb.lines, iotlb.swiftSeconds, Double(iotlb.lines) / iotlb.swiftSeconds / 1e6))
        if let c = iotlb.cSeconds, let ratio = iotlb.ratio {
            let agree = iotlb.swiftHitsMisses.map { s in iotlb.cHitsMisses.map { $0 == s } ?? false } ?? false
            print(String(format: "  the same LRU work in the best plain C (Benchmarks/iotlb_lru.c: hash + intrusive list, mmap): %.3f s; Swift/C = %.2f× (target ≤ 1.5)%@",
                         c, ratio, agree ? "; hits and misses agree" : "; HITS AND MISSES DIFFER"))
        } else if let note = iotlb.note {
            print("  C baseline skipped: \(note)")
        }
        for r in render {
            print(String(format: "  render a 200×60 frame (%@): median %.2f ms, worst %.2f ms (target ≤ 5); first frame after the step %.1f ms; after a cursor move %.1f ms",
                         r.label, r.medianMs, r.worstMs, r.firstFrameMs, r.moveFrameMs))
        }
        for r in scripts {
            print(String(format: "  a script of %d malloc lines, parsed and run: median %.3f s (%.3f–%.3f over %d runs)",
                         r.lines, r.median, r.seconds.first ?? 0, r.seconds.last ?? 0, r.seconds.count))
        }
        print(String(format: "  ten times the lines took %.1f× as long (target ≤ 12: a step costs the same however many came before)", growth))
        Bench.printTimeTravel(travel)
        BenchBoot.print(boot)
        BenchSweep.print(sweep)
        BenchLackey.print(lackey)
        if let keys { BenchKeys.print(keys) } else { print("  key latency skipped: cannot read \(keysDemo) (run from the repository, or give --keys-demo)") }
    }

    static func printTimeTravel(_ travel: BenchTimeline.Result) {
        print(String(format: "  time travel on a %d-step timeline (ram=1G, run to the end in %.1f s): go(to:) a random step, %d jumps: median %.1f ms, p90 %.1f ms, worst %.1f ms, best %.2f ms (targets: median ≤ 50, worst ≤ 100)",
                     travel.steps, travel.buildSeconds, travel.jumpsMs.count, travel.medianMs, travel.p90Ms, travel.worstMs, travel.jumpsMs.first ?? 0))
        print(String(format: "    snapshots: %d holding %.1f MiB (%d frame chunks of 36 KiB, %d page tables) beside a %.1f MiB state; step records %.1f MiB",
                     travel.snapshots.snapshots, Double(travel.snapshots.bytes) / 1048576, travel.snapshots.frameChunks, travel.snapshots.pageTables,
                     Double(travel.stateBytes) / 1048576, Double(travel.recordBytes) / 1048576))
    }
}

enum BenchRunner {
    struct FaultResults {
        var faults: Int
        var seconds: Double
        var faultsPerSecond: Double
        var bytesPerFrame: Double
        var changeBytesPerFault: Double
        var undoSeconds: Double
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    static func faults(touchBytes: UInt64) -> FaultResults {
        var config = MachineConfig()
        config.ram = 16 << 30
        config.thp = .never
        // No snapshots: this measures the fault path alone (the TUI takes one after such a step).
        var timeline = Timeline(engine: Engine(config: config), policy: .none)
        func st(_ line: String) -> Statement {
            // The bench's own lines are fixed and valid.
            guard let s = try? parseStatement(line) else { preconditionFailure("bench statement does not parse: \(line)") }
            return s
        }
        _ = timeline.apply(st("process bench"))
        _ = timeline.apply(st("bench mmap buf \(touchBytes)"))
        let t0 = now()
        let record = timeline.apply(st("bench write buf"))
        let t1 = now()
        let faults = record.counts.filter { $0.0 != "mapped" && $0.0 != "ptalloc" }.reduce(0) { $0 + $1.1 }
        let engine = timeline.engine
        let frames = engine.state.phys.frameCount
        let stateBytes = engine.approximateStateBytes()
        let changeBytes = record.changes.count * MemoryLayout<Change>.stride
        let u0 = now()
        timeline.stepBack()
        let u1 = now()
        return FaultResults(faults: faults, seconds: t1 - t0, faultsPerSecond: Double(faults) / max(t1 - t0, 1e-9),
                            bytesPerFrame: Double(stateBytes) / Double(frames),
                            changeBytesPerFault: Double(changeBytes) / Double(max(faults, 1)), undoSeconds: u1 - u0)
    }
}
