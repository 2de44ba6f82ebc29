// libFuzzer targets for the Engine, built with swiftc -sanitize=fuzzer (Fuzz/run says how).
// UMPTUI_FUZZ_TARGET picks one:
//   parse  — the lexer, parser and checker on arbitrary bytes (as `check` reads a file);
//   run    — a script that checks runs, every step checked against the invariants, each step
//            undone and compared (as `run --check-invariants` and the TUI's `b` do);
//   prompt — one line through parseStatement onto a small running machine (the TUI's `:` prompt).
// A trap is a crash libFuzzer reports; a broken invariant, an internal error or an inexact undo
// is turned into one with abort(), so the corpus keeps the input.

#if canImport(Glibc)
import Glibc
#endif

enum FuzzLimits {
    /// Inputs larger than this are skipped: a fuzz run is for many small ones.
    static let maxBytes = 4096
    /// Machines larger than this are skipped (a step on a 16 GiB machine is slow, not wrong).
    static let maxRAM: UInt64 = 256 << 20
    static let maxSteps = 40
}

private let target: String = {
    guard let p = getenv("UMPTUI_FUZZ_TARGET") else { return "run" }
    return String(cString: p)
}()

private func fail(_ what: String) -> Never {
    fputs("umptui fuzz: \(what)\n", stderr)
    abort()
}

/// A small machine booted once: the prompt target's base.
private let promptBase: Timeline = {
    let text = "machine ram=32M swap=4M\nprocess app\ndevice gpu\napp malloc buf 256K\napp write buf\napp fork kid\ngpu map app.buf\n"
    guard let script = try? parseScript(text, fileName: "base") else { fail("the prompt base does not parse") }
    let plan = StepPlan(script)
    var t = Timeline(machine: plan.machineStatement, steps: [], traces: nil, policy: .none)
    for s in plan.items { if case let .step(step) = s { t.insert(step) } }
    return t
}()

private func runScript(_ text: String) {
    guard let script = try? parseScript(text, fileName: "fuzz.ump") else { return }
    guard checkScript(script, sourceLines: scenarioSourceLines(text), fileExists: { _ in false }).isEmpty else { return }
    let plan = StepPlan(script)
    if case let .machine(m)? = plan.machineStatement?.kind, (m.ram ?? 0) > FuzzLimits.maxRAM { return }
    var t = Timeline(machine: plan.machineStatement, steps: [], traces: nil, policy: .none)
    t.invariantChecks = .everyStep
    var steps = 0
    for item in plan.items {
        guard case let .step(step) = item else { continue }
        steps += 1
        if steps > FuzzLimits.maxSteps { break }
        let before = t.engine.state
        let (r, _, _) = t.insert(step)
        if !r.bugs.isEmpty { fail("step \(r.step) '\(r.command)': \(r.bugs.joined(separator: "; "))\n\(text)") }
        if steps % 3 == 0 {
            t.stepBack()
            if t.engine.state != before { fail("step \(r.step) '\(r.command)' did not undo exactly\n\(text)") }
            t.stepForward()
        }
    }
}

private func runPrompt(_ line: String) {
    guard let st = (try? parseStatement(line)) ?? nil else { return }
    var t = promptBase
    t.invariantChecks = .everyStep
    let (r, _, _) = t.insert(ScriptStep(statement: st, notes: [], expects: []))
    if !r.bugs.isEmpty { fail("'\(line)': \(r.bugs.joined(separator: "; "))") }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size <= FuzzLimits.maxBytes else { return 0 }
    let bytes = UnsafeBufferPointer(start: data, count: size)
    // As the loader does: only UTF-8 text is a script.
    guard let text = String(validating: bytes, as: UTF8.self) else { return 0 }
    switch target {
    case "parse":
        if let script = try? parseScript(text, fileName: "fuzz.ump") {
            _ = checkScript(script, sourceLines: scenarioSourceLines(text), fileExists: { _ in false })
        }
    case "prompt":
        if let line = text.split(separator: "\n", omittingEmptySubsequences: false).first { runPrompt(String(line)) }
    default:
        runScript(text)
    }
    return 0
}
