// A long step runs under a StepControl: it hears how far the step got and may cancel it. A
// cancelled step leaves the state exactly as it was, no record and no Changes; a step watched and
// not cancelled is the same step as one not watched.

import Synchronization
import XCTest

@testable import Engine

/// Counts the progress it hears and cancels at the `cancelAt`th report (never when nil).
final class ProgressLog: Sendable {
    let reports = Mutex<[StepProgress]>([])
    let cancelAt: Int?
    init(cancelAt: Int?) { self.cancelAt = cancelAt }

    var control: StepControl {
        StepControl { [self] p in
            reports.withLock { r in
                r.append(p)
                return cancelAt.map { r.count < $0 } ?? true
            }
        }
    }
    var all: [StepProgress] { reports.withLock { $0 } }
}

final class StepControlTests: XCTestCase {
    /// Each long kind of step: a DMA (accesses), a fault over a large range (pages), reclaim (pages).
    let longSteps: [(setup: String, step: String, unit: StepProgress.Unit)] = [
        ("""
         machine ram=256M memlock=64M
         process app
         app mmap buf 1M
         app write buf
         device nic iommu=vtd pagesizes=4K iotlb=8
         nic map app.buf
         """, "nic dma app.buf read pattern=random size=64 count=300000", .accesses),
        ("""
         machine ram=256M thp=never
         process app
         app mmap buf 32M
         """, "app write buf", .pages),
        ("""
         machine ram=64M swap=64M thp=never
         process app
         app mmap buf 24M
         app write buf
         """, "pressure 16M", .pages),
    ]

    /// A timeline of `setup` and `step`, at the step before the last.
    func timeline(_ setup: String, _ step: String) throws -> Timeline {
        let p = try XCTUnwrap(plan(setup + "\n" + step))
        var tl = Timeline(plan: p, traces: nil, policy: .none)
        tl.go(to: p.steps.count - 1)
        XCTAssertTrue(tl.known.allSatisfy { $0.outcome == .ok }, "setup of \(step)")
        return tl
    }

    func testACancelledStepLeavesTheStateAsItWasAndNoRecord() throws {
        for (setup, step, unit) in longSteps {
            var tl = try timeline(setup, step)
            let before = tl.engine.state
            let current = tl.current
            var engine = tl.engine
            let log = ProgressLog(cancelAt: 2)
            XCTAssertNil(engine.apply(try XCTUnwrap(tl.next).statement, step: current + 1, traces: nil, control: log.control), step)
            XCTAssertEqual(log.all.count, 2, "\(step): cancelled at the second report, and nothing asked after")
            XCTAssertTrue(log.all.allSatisfy { $0.unit == unit && $0.step == current + 1 }, step)
            XCTAssertTrue(engine.state == before, "\(step): \(stateDiff(engine.state, before))")
            // Through the Timeline: nothing moved, nothing recorded.
            XCTAssertNil(tl.stepForward(control: ProgressLog(cancelAt: 1).control), step)
            XCTAssertEqual(tl.current, current, step)
            XCTAssertEqual(tl.known.count, current, step)
            XCTAssertTrue(tl.engine.state == before, step)
            // And then it runs as if nothing had happened.
            XCTAssertEqual(tl.stepForward()?.outcome, .ok, step)
        }
    }

    func testAWatchedStepIsTheSameStepAndReportsItsProgressInOrder() throws {
        for (setup, step, _) in longSteps {
            var plain = try timeline(setup, step)
            var watched = try timeline(setup, step)
            let log = ProgressLog(cancelAt: nil)
            let rec = try XCTUnwrap(watched.stepForward(control: log.control))
            let want = try XCTUnwrap(plain.stepForward())
            XCTAssertEqual(rec.outcome, .ok, rec.text)
            XCTAssertEqual(rec.text, want.text, step)
            XCTAssertEqual(rec.changes.count, want.changes.count, step)
            XCTAssertTrue(watched.engine.state == plain.engine.state, "\(step): \(stateDiff(watched.engine.state, plain.engine.state))")
            let reports = log.all
            XCTAssertGreaterThan(reports.count, 1, "\(step) is long enough to report as it goes")
            XCTAssertEqual(reports.map(\.done), reports.map(\.done).sorted(), "\(step): progress only grows")
            XCTAssertTrue(reports.allSatisfy { $0.total == 0 || $0.done <= $0.total }, step)
        }
    }

    func testAJumpStopsAtTheStepBeforeTheCancelledOne() throws {
        let source = longSteps[0].setup + "\n" + longSteps[0].step + "\napp write buf 0 4K"
        let p = try XCTUnwrap(plan(source))
        var tl = Timeline(plan: p, traces: nil, policy: .none)
        // Cancels the first DMA report only: the writes before it run.
        let control = StepControl { $0.unit != .accesses }
        tl.go(to: p.steps.count, control: control)
        XCTAssertEqual(tl.current, 5, "the DMA (step 6) was cancelled: the jump ends after step 5")
        XCTAssertEqual(tl.known.count, 5)
        tl.go(to: p.steps.count)
        XCTAssertEqual(tl.current, 7)
    }
}
