// The whole-state invariants (EngineState.invariantViolations): they hold after every step of
// every Engine test (EngineRun asserts it), and each kind of corruption is caught and named.

import XCTest

@testable import Engine

final class InvariantTests: XCTestCase {
    let busy = """
        machine ram=64M swap=16M
        process app
        device gpu
        app malloc buf 1M
        app write buf
        app mmap big 4M hugepage
        app write big 0 2M
        app fork kid
        kid write buf 0 64K
        gpu map app.buf
        app pin buf 0 64K write longterm
        """

    func testABusyStateKeepsEveryInvariant() {
        let r = scenario(busy)
        XCTAssertEqual(r.state.invariantViolations(), [])
    }

    func testEachCorruptionIsNamed() {
        let r = scenario(busy)
        let app = r.state.processIndex(named: "app")!
        // Counters, changed as the Engine changes them (updateCounters), only wrong.
        func broken(_ body: (inout ProcessCounters) -> Void) -> [String] {
            var e = r.engine
            var j = StepJournal()
            e.updateCounters(app, &j, body)
            return e.state.invariantViolations()
        }
        let rss = broken { $0.rssPages += 3 }
        XCTAssertEqual(rss.count, 1)
        XCTAssertTrue(rss[0].hasPrefix("app's rss is"), "\(rss)")
        XCTAssertTrue(broken { $0.pinnedVMPages = -1 }.contains { $0.hasPrefix("app has a negative counter") })
        // An exited process that still has page tables.
        XCTAssertTrue(broken { $0.alive = false }.contains { $0 == "app has exited but still has page tables" })

        var s = r.state
        // A frame's counts: one mapping too many, and a pin the refcount does not cover.
        s = r.state
        let pfn = r.pfns("kid", "buf")[20]
        let maps = s.phys.mapcount[pfn]
        var j = StepJournal()
        s.phys.update(pfn, &j) { $0.mapcount += 1 }
        var broken = s.invariantViolations()
        XCTAssertTrue(broken.contains { $0 == "pfn \(pfn) (anon) has mapcount \(maps + 1), \(maps) page-table entries map it" }, "\(broken)")
        s = r.state
        s.phys.update(pfn, &j) { $0.pincount += 1; $0.flags &= ~FrameFlag.anonExclusive }
        broken = s.invariantViolations()
        XCTAssertTrue(broken.contains { $0.contains("pfn \(pfn) (anon) has refcount") && $0.contains("1 pins") }, "\(broken)")
        XCTAssertTrue(broken.contains { $0 == "pfn \(pfn) is pinned (FOLL_PIN) and mapped but not PageAnonExclusive" }, "\(broken)")

        // A frame marked free that no list holds.
        s = r.state
        s.phys.update(pfn, &j) { $0.use = FrameUse.free.rawValue }
        broken = s.invariantViolations()
        XCTAssertTrue(broken.contains { $0 == "pfn \(pfn) is marked free but on no free list" }, "\(broken)")
        XCTAssertTrue(broken.contains { $0.contains("maps free pfn \(pfn)") }, "\(broken)")
        XCTAssertEqual(s.invariantViolations(limit: 1).count, 1)
    }

    /// References and charges: each kind of holder, then one reference or one charge too many.
    func testExactReferencesAndChargesAreChecked() {
        let r = scenario("""
            machine ram=64M swap=16M ump-limit=memlock
            file f 64K
            process app memlock=64M user=u
            device gpu
            app mmap buf 256K locked
            app mmap m 64K file=f shared
            app write m
            app mmap v 64K
            app write v
            app vmsplice v 0 16K pipe=p
            app uring-register v
            app ump-alloc u 64K
            gpu map app.buf
            app pin buf 0 64K longterm
            app fork kid
            """)
        XCTAssertEqual(r.state.invariantViolations(), [])
        let app = r.state.processIndex(named: "app")!
        var j = StepJournal()
        let pfn = r.pfns("app", "v")[0]
        var s = r.state
        s.phys.update(pfn, &j) { $0.refcount += 1 }
        XCTAssertTrue(s.invariantViolations().contains { $0.hasPrefix("pfn \(pfn) (anon) has refcount") && $0.contains("hold") }, "\(s.invariantViolations())")
        let file = r.pfns("app", "m")[0]
        s = r.state
        s.phys.update(file, &j) { $0.refcount -= 1 }
        XCTAssertTrue(s.invariantViolations().contains { $0.hasPrefix("pfn \(file) (shmem) has refcount") || $0.hasPrefix("pfn \(file) (file) has refcount") }, "\(s.invariantViolations())")
        func charged(_ body: (inout ProcessCounters) -> Void) -> [String] {
            var e = r.engine
            e.updateCounters(app, &j, body)
            return e.state.invariantViolations()
        }
        XCTAssertTrue(charged { $0.lockedVMPages += 1 }.contains { $0.hasPrefix("app's locked_vm is") }, "\(charged { $0.lockedVMPages += 1 })")
        XCTAssertTrue(charged { $0.pinnedVMPages -= 1 }.contains { $0.hasPrefix("app's pinned_vm is") })
        var e = r.engine
        e.updateMachine(&j) { $0.userLockedVM["u", default: 0] += 1 }
        XCTAssertTrue(e.state.invariantViolations().contains { $0.hasPrefix("user u's locked_vm is") }, "\(e.state.invariantViolations())")
        // A frame the device maps, freed under it.
        let mapped = r.pfns("app", "buf")[3]
        s = r.state
        s.phys.update(mapped, &j) { $0.use = FrameUse.free.rawValue }
        XCTAssertTrue(s.invariantViolations(limit: 20).contains { $0.hasPrefix("gpu's IOPTE at IOVA") && $0.hasSuffix("maps free pfn \(mapped)") }, "\(s.invariantViolations(limit: 20))")
    }

    /// What `--check-invariants` turns on: the Timeline checks after every new step and puts what
    /// broke into the record (none here); release builds' default is off, debug builds' small machines.
    func testTheTimelineChecksWhenAsked() throws {
        let script = try parseScript(busy, fileName: "b.ump")
        let result = ScenarioRunner.run(script, traces: nil, invariants: .everyStep, shouldStop: { false }, onEvent: { _, _ in })
        XCTAssertEqual(result.records.flatMap(\.bugs), [])
        XCTAssertTrue(InvariantChecks.everyStep.applies(to: result.engine.state))
        XCTAssertFalse(InvariantChecks.off.applies(to: result.engine.state))
        XCTAssertEqual(InvariantChecks.default, .smallMachines, "tests run debug builds")
        XCTAssertEqual(Timeline(engine: Engine(config: MachineConfig())).invariantChecks, .off, "only run and the tests ask")
    }
}
