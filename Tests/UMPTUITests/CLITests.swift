// The command line as a script or an outside check sees it: exit codes, error text, JSON Lines.

import Foundation
import XCTest
@testable import UMPTUI

final class CLITests: XCTestCase {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("umptui-cli-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func umptui(_ args: [String]) throws -> Output {
        guard let bin = EndToEndTests.binary else { throw XCTSkip("the umptui binary is not built beside the tests") }
        let p = Process()
        p.executableURL = bin
        p.arguments = args
        p.currentDirectoryURL = dir
        var env = ProcessInfo.processInfo.environment
        env["COLUMNS"] = "100"
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Output(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    func testAScriptThatRunsExitsZeroEvenWithKernelLevelFailures() throws {
        let f = try write("ok.ump", """
            machine ram=16M
            process app
            app mmap buf 64K
            app write buf 2M 4K
            expect last signal=SIGSEGV
            """)
        let r = try umptui(["run", f])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("[SIGSEGV]"), r.stdout)
        XCTAssertTrue(r.stdout.contains("summary: 3 steps (2 ok, 1 SIGSEGV)"), r.stdout)
        XCTAssertEqual(r.stderr, "")
    }

    func testAFailedExpectExitsOneAndNamesItsLine() throws {
        let f = try write("fail.ump", """
            process app
            app mmap buf 64K
            app read buf
            expect app.buf present=3 zero=16
            """)
        let r = try umptui(["run", f])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stdout.contains("\(f):4:16: expect failed: app.buf present is 16, expected 3\n    expect app.buf present=3 zero=16"), r.stdout)
        XCTAssertFalse(r.stdout.contains("zero is"), "the clause that held is not reported")
    }

    func testScriptErrorsExitTwoWithCaretAndHintAndNothingRuns() throws {
        let f = try write("bad.ump", """
            process app
            app malloc buf 12Q
            ap write buf
            """)
        for verb in ["run", "check"] {
            let r = try umptui([verb, f])
            XCTAssertEqual(r.status, 2)
            XCTAssertEqual(r.stdout, "", "nothing runs")
            XCTAssertEqual(r.stderr, """
                \(f):2:16: error: expected a size like 4K, 2M or 0x1000, got '12Q'
                app malloc buf 12Q
                               ^

                """)
        }
    }

    func testUnknownNamesAreCheckedWithAHint() throws {
        let f = try write("names.ump", """
            process app
            app mmap buf 64K
            ap write buf
            """)
        let r = try umptui(["check", f])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.hasPrefix("\(f):3:1: error: unknown process 'ap'\nap write buf\n^\nhint: did you mean 'app'?"), r.stderr)
    }

    func testCheckReportsAMissingFileAndABadTraceLine() throws {
        let missing = try umptui(["check", dir.appendingPathComponent("nope.ump").path])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.contains("nope.ump: error: cannot read the file: No such file or directory"), missing.stderr)

        _ = try write("trace.txt", "1\n2\n0x3\nseven\n")
        let f = try write("trace.ump", """
            process app
            device d iommu=vtd
            app mmap buf 64K
            d map app.buf
            d dma-trace trace.txt unit=page
            """)
        let r = try umptui(["check", f])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.hasPrefix("\(dir.appendingPathComponent("trace.txt").path):4: error: expected one decimal or 0x-hex address, got 'seven'"), r.stderr)
        XCTAssertTrue(r.stderr.contains("(read by \(f):5: d dma-trace trace.txt unit=page)"), r.stderr)
        XCTAssertEqual(try umptui(["run", f]).status, 2, "run checks the trace before anything runs")
    }

    func testJSONLinesFollowTheContract() throws {
        let f = try write("json.ump", """
            machine ram=16M
            process app
            device d iommu=vtd iotlb=8
            app malloc buf 64K
            app write buf
            d map app.buf write
            d dma app.buf read count=10
            app write buf 1M 4K
            """)
        let r = try umptui(["run", "--json", f])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        XCTAssertEqual(lines.count, 8, "seven steps and the final state")
        for (i, step) in lines.dropLast().enumerated() {
            XCTAssertEqual(step["step"] as? Int, i + 1)
            for key in ["line", "command", "ok", "errno", "text"] { XCTAssertNotNil(step[key], "step \(i + 1) lacks \(key)") }
        }
        XCTAssertEqual(lines[0]["line"] as? Int, 2)
        XCTAssertEqual(lines[0]["command"] as? String, "process app")
        XCTAssertEqual(lines[6]["ok"] as? Bool, false)
        XCTAssertEqual(lines[6]["signal"] as? String, "SIGSEGV")
        XCTAssertTrue(lines[6]["errno"] is NSNull)
        let final = try XCTUnwrap(lines.last?["final"] as? [String: Any])
        let machine = try XCTUnwrap(final["machine"] as? [String: Any])
        XCTAssertEqual(machine["ram"] as? Int, 16 << 20)
        XCTAssertEqual(machine["frames"] as? Int, 4096)
        for key in ["free_frames", "zero_pfn", "swap_used_pages"] { XCTAssertNotNil(machine[key], key) }
        let procs = try XCTUnwrap(final["processes"] as? [[String: Any]])
        let app = try XCTUnwrap(procs.first)
        for key in ["name", "pid", "alive", "rss_pages", "locked_vm_pages", "pinned_vm_pages", "memlock_limit", "buffers", "pages"] {
            XCTAssertNotNil(app[key], key)
        }
        XCTAssertEqual(app["alive"] as? Bool, false, "killed by the SIGSEGV")
        let frames = try XCTUnwrap(final["frames"] as? [[String: Any]])
        for key in ["pfn", "use", "refcount", "mapcount", "pins"] { XCTAssertNotNil(frames.first?[key], key) }
        let dev = try XCTUnwrap((final["devices"] as? [[String: Any]])?.first)
        XCTAssertEqual(dev["name"] as? String, "d")
        XCTAssertEqual(dev["iommu"] as? String, "vtd")
        XCTAssertEqual((dev["mappings"] as? [[String: Any]])?.isEmpty, true, "exit unmapped the buffer")
        let iotlb = try XCTUnwrap(dev["iotlb"] as? [String: Any])
        XCTAssertEqual(iotlb["entries"] as? Int, 8)
        XCTAssertEqual(iotlb["hits"] as? Int, 9)
        XCTAssertEqual(iotlb["misses"] as? Int, 1)
        XCTAssertEqual(dev["accesses"] as? Int, 10)
    }

    func testSetOverridesADeclaration() throws {
        let f = try write("set.ump", """
            machine ram=64M thp=madvise
            process app
            app mmap buf 4M
            app write buf
            expect app.buf huge=0
            """)
        XCTAssertEqual(try umptui(["run", f]).status, 0)
        let r = try umptui(["run", f, "--set", "machine.thp=always"])
        XCTAssertEqual(r.status, 1, "with thp=always the buffer is THP-backed and the expect fails")
        XCTAssertTrue(r.stdout.contains("app.buf huge is 1024, expected 0"), r.stdout)
        let bad = try umptui(["run", f, "--set", "machine.thp=sometimes"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("sometimes"), bad.stderr)
    }
}


/// Recordings and exports from the command line.
extension CLITests {
    static let recording = """
        # umptui recording
        # version 0.8.0
        machine ram=64M
        process app
        app malloc buf 1M
        app write buf
        back
        app read buf
        wait 1.5s
        select app.buf 3
        inspect

        """

    /// Killed while writing a line: the file ends mid-line. It replays up to its last whole line,
    /// says where it stopped, and exits 0; check says the same.
    func testACutOffRecordingReplaysUpToItsLastWholeLine() throws {
        let f = try write("cut.ump", Self.recording + "app malloc other 8")
        for command in [["run"], ["check"], ["run", "--json"]] {
            let r = try umptui(command + [f])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stderr.contains("cut.ump:12: warning: the recording stops in the middle of line 12"), r.stderr)
            XCTAssertTrue(r.stderr.contains("replaying up to line 11"), r.stderr)
        }
        let json = try umptui(["run", "--json", f]).stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(json.filter { $0.hasPrefix("{\"step\"") }.count, 4)
        XCTAssertTrue(json.contains("{\"back\":3,\"line\":7,\"command\":\"app write buf\"}"), json.joined(separator: "\n"))
        XCTAssertFalse(json.joined().contains("other"), "the cut line did not run")
        // Cut inside a UTF-8 character: still a cut, not "not UTF-8".
        var bytes = Array((Self.recording + "note \"café").utf8)
        bytes.removeLast()
        let mid = dir.appendingPathComponent("mid.ump")
        try Data(bytes).write(to: mid)
        let m = try umptui(["run", mid.path])
        XCTAssertEqual(m.status, 0, m.stderr)
        XCTAssertTrue(m.stderr.contains("mid.ump:12: warning: the recording stops in the middle of line 12"), m.stderr)
        // A bad byte elsewhere names its line and column.
        let bad = dir.appendingPathComponent("bad.ump")
        try Data(Array("process app\nnote \"caf".utf8) + [0xFF, 0x22, 0x0A]).write(to: bad)
        let b = try umptui(["check", bad.path])
        XCTAssertEqual(b.status, 2)
        XCTAssertTrue(b.stderr.contains("bad.ump:2:10: error: the file is not UTF-8 text"), b.stderr)
        // The same cut in a file that is not a recording is the error it always was.
        let plain = try write("plain.ump", "process app\napp malloc other 8x")
        XCTAssertEqual(try umptui(["run", plain]).status, 2)
        XCTAssertEqual(try umptui(["check", try write("ok.ump", Self.recording)]).stdout, "\(dir.path)/ok.ump: ok, 4 steps and 1 step-back\n")
    }

    func testOutputsAreNeverOverwrittenWithoutForce() throws {
        let f = try write("demo.ump", Self.recording)
        let existing = try write("taken.ump", "keep me\n")
        let r = try umptui([f, "--record", existing])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("taken.ump exists; --force overwrites it"), r.stderr)
        XCTAssertEqual(try String(contentsOfFile: existing, encoding: .utf8), "keep me\n")
        let nowhere = try umptui([f, "--record", "/no/such/dir/x.ump"])
        XCTAssertEqual(nowhere.status, 2)
        XCTAssertTrue(nowhere.stderr.contains("cannot write /no/such/dir/x.ump"), nowhere.stderr)
        let castFile = try write("taken.cast", "keep\n")
        let e = try umptui(["export", f, "--cast", castFile])
        XCTAssertEqual(e.status, 2)
        XCTAssertTrue(e.stderr.contains("taken.cast exists; --force overwrites it"), e.stderr)
        XCTAssertEqual(try String(contentsOfFile: castFile, encoding: .utf8), "keep\n")
        let forced = try umptui(["export", f, "--cast", castFile, "--force", "--size", "80x24"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertTrue(try String(contentsOfFile: castFile, encoding: .utf8).hasPrefix("{\"version\":2,\"width\":80,\"height\":24,"))
        for (args, message) in [(["--exit"], "--exit quits at the end of --play"), (["--force"], "give --record OUT.ump too")] {
            let bad = try umptui([f] + args)
            XCTAssertEqual(bad.status, 2)
            XCTAssertTrue(bad.stderr.contains(message), bad.stderr)
        }
        for (args, message) in [(["--size", "10x10", "--text", "a.txt"], "--size takes COLSxROWS"), (["--theme", "16", "--text", "a.txt"], "--theme is 256, 8 or mono"),
                                ([] as [String], "say what to write")] {
            let bad = try umptui(["export", f] + args)
            XCTAssertEqual(bad.status, 2)
            XCTAssertTrue(bad.stderr.contains(message), bad.stderr)
        }
        XCTAssertEqual(try umptui(["--version"]).stdout, "\(Umptui.version)\n")
        // No output may be the scenario or another output, however spelled; --force does not change that.
        for args in [["--cast", "./demo.ump"], ["--cast", f], ["--cast", "x.out", "--text", "./x.out"]] {
            let r = try umptui(["export", f, "--force"] + args)
            XCTAssertEqual(r.status, 2, args.joined(separator: " "))
            XCTAssertEqual(try String(contentsOfFile: f, encoding: .utf8), Self.recording)
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.out").path))
        }
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("link.cast").path, withDestinationPath: f)
        XCTAssertEqual(try umptui(["export", f, "--force", "--cast", "link.cast"]).status, 2)
        let same = try umptui([f, "--record", "./demo.ump", "--force"])
        XCTAssertEqual(same.status, 2)
        XCTAssertTrue(same.stderr.contains("is the scenario itself"), same.stderr)
        XCTAssertEqual(try String(contentsOfFile: f, encoding: .utf8), Self.recording)
    }
}

final class ReadmeTests: XCTestCase {
    /// The language sample in the README is a script that runs and checks itself.
    func testReadmeScenarioSampleRunsAndItsExpectsHold() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let lines = text.components(separatedBy: "\n")
        let start = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("machine ram=64M thp=madvise kernel=6.12 swap=16M") })
        let end = try XCTUnwrap(lines[start...].firstIndex { $0.hasPrefix("```") })
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("umptui-readme-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("readme.ump")
        try lines[start..<end].joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        guard let bin = EndToEndTests.binary else { throw XCTSkip("the umptui binary is not built beside the tests") }
        let p = Process()
        p.executableURL = bin
        p.arguments = ["run", file.path]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "every expect in the README's sample holds")
    }
}
