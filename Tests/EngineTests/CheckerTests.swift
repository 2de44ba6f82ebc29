import XCTest

@testable import Engine

final class CheckerTests: XCTestCase {
    /// The rendered diagnostics for `source`, joined by newlines ("" when it is clean).
    private func check(_ source: String, files: Set<String> = [], file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            let script = try parseScript(source, fileName: "demo.ump")
            return checkScript(script, sourceLines: scenarioSourceLines(source)) { files.contains($0) }
                .map(\.rendered).joined(separator: "\n")
        } catch {
            XCTFail("syntax error:\n\(error.rendered)", file: file, line: line)
            return ""
        }
    }

    func testACleanScriptHasNoDiagnostics() {
        XCTAssertEqual(check("""
            # the seed's example
            machine ram=128M memlock=16M
            process app
            device isp iommu=arm-v7s iotlb=32
            note "malloc only reserves addresses"
            app malloc frame 8M
            app write frame
            isp map app.frame write
            isp dma app.frame write pattern=tile:640x480@2560 size=64
            expect app locked_vm=8M
            expect app.frame present=2048
            expect isp misses=10 iotlb_entries=32
            expect machine free_frames=0
            expect last ok=true
            app ump-alloc ubuf 8M linear
            isp map app.ubuf write
            isp dma-trace trace.txt unit=page
            isp unmap app.frame
            app free frame
            app exit
            app write ubuf
            """, files: ["trace.txt"]), "")
    }

    func testMachineMustComeFirstAndOnce() {
        XCTAssertEqual(check("""
            machine ram=64M
            process app
            app malloc b 4K
            machine ram=128M
            """), """
            demo.ump:4:1: error: 'machine' is declared twice
            machine ram=128M
            ^
            hint: the first 'machine' is on line 1
            """)
        XCTAssertEqual(check("""
            process app
            note "notes and declarations may come first"
            pressure 1M
            machine ram=128M
            """), """
            demo.ump:4:1: error: 'machine' must come before the first event
            machine ram=128M
            ^
            hint: the first event is on line 3
            """)
    }

    func testDuplicateAndReservedNames() {
        XCTAssertEqual(check("""
            process app
            device gpu
            process app
            device gpu
            process gpu
            device app
            process last
            device note
            """), """
            demo.ump:3:9: error: process 'app' already exists
            process app
                    ^
            hint: it was declared on line 1
            demo.ump:4:8: error: 'gpu' is already a device
            device gpu
                   ^
            hint: it was declared on line 2; processes and devices share one set of names
            demo.ump:5:9: error: 'gpu' is already a device
            process gpu
                    ^
            hint: it was declared on line 2; processes and devices share one set of names
            demo.ump:6:8: error: process 'app' already exists
            device app
                   ^
            hint: it was declared on line 1
            demo.ump:7:9: error: 'last' is a reserved word
            process last
                    ^
            hint: pick another name; reserved words: machine, process, device, file, pressure, compact, note, wait, expect, back, set, unset, select, inspect, quiz, last, pfn, w
            demo.ump:8:8: error: 'note' is a reserved word
            device note
                   ^
            hint: pick another name; reserved words: machine, process, device, file, pressure, compact, note, wait, expect, back, set, unset, select, inspect, quiz, last, pfn, w
            """)
    }

    func testUndeclaredProcessesAndDevices() {
        XCTAssertEqual(check("app malloc b 4K\ngpu map app.b"), """
            demo.ump:1:1: error: unknown process 'app'
            app malloc b 4K
            ^
            hint: no process is declared yet
            demo.ump:2:1: error: unknown device 'gpu'
            gpu map app.b
            ^
            hint: no device is declared yet
            demo.ump:2:9: error: unknown process 'app'
            gpu map app.b
                    ^
            hint: no process is declared yet
            """)
        XCTAssertEqual(check("""
            process app
            process child
            device gpu
            ap malloc b 4K
            gppu dma app.b read
            expect ap alive=true
            """), """
            demo.ump:4:1: error: unknown process 'ap'
            ap malloc b 4K
            ^
            hint: did you mean 'app'? processes here: app, child
            demo.ump:5:1: error: unknown device 'gppu'
            gppu dma app.b read
            ^
            hint: did you mean 'gpu'? devices here: gpu
            demo.ump:5:14: error: process 'app' has no buffer 'b'
            gppu dma app.b read
                         ^
            hint: app has no buffers yet
            demo.ump:6:8: error: unknown process or device 'ap'
            expect ap alive=true
                   ^
            hint: did you mean 'app'? processes here: app, child; devices here: gpu
            """)
    }

    func testVerbOfTheWrongKind() {
        XCTAssertEqual(check("process app\ndevice gpu\ngpu malloc b 4K\napp malloc b 4K\napp map app.b\napp send b gpu"), """
            demo.ump:3:1: error: 'gpu' is a device, and 'malloc' is a process verb
            gpu malloc b 4K
            ^
            hint: device verbs: map, unmap, dma, dma-trace
            demo.ump:5:1: error: 'app' is a process, and 'map' is a device verb
            app map app.b
            ^
            hint: process verbs: malloc, free, mmap, memfd, munmap, mremap, read, write, madvise, mprotect, mlock, munlock, fork, exit, pin, unpin, uring-register, uring-unregister, vmsplice, pipe-read, pipe-close, ump-alloc, ump-import, dmabuf-alloc, trace, send
            demo.ump:6:12: error: 'gpu' is a device, not a process
            app send b gpu
                       ^
            hint: processes here: app
            """)
    }

    func testBuffersMustExistWhenUsed() {
        XCTAssertEqual(check("""
            process app
            app write buf
            app malloc buf 8M
            app malloc other 4K
            app write bof
            app free buf
            app read buf
            app mmap m 2M
            app munmap m 0 4K
            app read m
            app munmap m
            app pin m
            app malloc other 4K
            """), """
            demo.ump:2:11: error: process 'app' has no buffer 'buf'
            app write buf
                      ^
            hint: app has no buffers yet
            demo.ump:5:11: error: process 'app' has no buffer 'bof'
            app write bof
                      ^
            hint: did you mean 'buf'? buffers of app here: buf, other
            demo.ump:7:10: error: process 'app' has no buffer 'buf'
            app read buf
                     ^
            hint: 'buf' was freed on line 6
            demo.ump:12:9: error: process 'app' has no buffer 'm'
            app pin m
                    ^
            hint: 'm' was unmapped on line 11
            demo.ump:13:12: error: process 'app' already has a buffer 'other'
            app malloc other 4K
                       ^
            hint: 'other' was created on line 4; free or munmap it first, or pick another name
            """)
    }

    func testEveryCreatingVerbCreatesAndAFreedNameCanBeReused() {
        XCTAssertEqual(check("""
            process app
            app malloc a 4K
            app mmap b 4K
            app ump-alloc c 4K
            app ump-import d 7
            app dmabuf-alloc e 4K
            app read a
            app read b
            app read c
            app read d
            app read e
            app free a
            app malloc a 8K
            app write a
            """), "")
    }

    func testForkInheritsBuffersAndDeclaresTheChild() {
        XCTAssertEqual(check("""
            process app
            app malloc buf 8M
            app fork child
            child write buf
            child malloc own 4K
            app read own
            child exit
            child write buf
            app fork child
            app fork last
            """), """
            demo.ump:6:10: error: process 'app' has no buffer 'own'
            app read own
                     ^
            hint: buffers of app here: buf
            demo.ump:9:10: error: process 'child' already exists
            app fork child
                     ^
            hint: it was created by fork on line 3
            demo.ump:10:10: error: 'last' is a reserved word
            app fork last
                     ^
            hint: pick another name; reserved words: machine, process, device, file, pressure, compact, note, wait, expect, back, set, unset, select, inspect, quiz, last, pfn, w
            """)
    }

    func testSendGivesTheOtherProcessTheBuffer() {
        XCTAssertEqual(check("""
            process app
            process viewer
            app dmabuf-alloc frame 1M
            app send frame viewer
            viewer read frame
            app send frame viewer
            app send frame nobody
            app send nothing viewer
            """), """
            demo.ump:6:16: error: process 'viewer' already has a buffer 'frame'
            app send frame viewer
                           ^
            hint: 'frame' was received by send on line 4; free or munmap it first, or pick another name
            demo.ump:7:16: error: unknown process 'nobody'
            app send frame nobody
                           ^
            hint: processes here: app, viewer
            demo.ump:8:10: error: process 'app' has no buffer 'nothing'
            app send nothing viewer
                     ^
            hint: buffers of app here: frame
            """)
    }

    func testExpectKeysFitTheirTarget() {
        XCTAssertEqual(check("""
            process app
            device gpu
            app malloc buf 4K
            expect app.buf presnt=1 size=4K
            expect app rss=4K hits=2
            expect gpu hits=1 mises=2
            expect machine ram=64M rss=1
            expect last ok=false errno=ENOMEM exit=1
            expect app.nope present=0
            """), """
            demo.ump:4:16: error: unknown key 'presnt' for a buffer
            expect app.buf presnt=1 size=4K
                           ^
            hint: did you mean 'present'? buffer keys: present, zero, writable, swapped, huge, exclusive, shared, pinned, size, frames
            demo.ump:5:19: error: unknown key 'hits' for a process
            expect app rss=4K hits=2
                              ^
            hint: process keys: alive, pid, rss, rss_pages, locked_vm, pinned_vm, swap_pages, vmas, memlock_limit, mmap_threshold
            demo.ump:6:19: error: unknown key 'mises' for a device
            expect gpu hits=1 mises=2
                              ^
            hint: did you mean 'misses'? device keys: accesses, hits, misses, walks, stall_ns, faults, mappings, iotlb_entries, large_ioptes, maps, hazards, io_page_faults, table_pages
            demo.ump:7:24: error: unknown key 'rss' for machine
            expect machine ram=64M rss=1
                                   ^
            hint: machine keys: ram, frames, free_frames, free, swap_used
            demo.ump:8:35: error: unknown key 'exit' for last
            expect last ok=false errno=ENOMEM exit=1
                                              ^
            hint: last keys: ok, errno, signal, outcome, hazards
            demo.ump:9:12: error: process 'app' has no buffer 'nope'
            expect app.nope present=0
                       ^
            hint: buffers of app here: buf
            """)
    }

    func testTraceFilesMustExist() {
        var asked: [String] = []
        let source = "device gpu\ngpu dma-trace ../traces/a.txt\ngpu dma-trace \"b c.txt\" unit=page"
        do {
            let script = try parseScript(source, fileName: "demo.ump")
            let diagnostics = checkScript(script, sourceLines: scenarioSourceLines(source)) { path in
                asked.append(path)
                return path == "b c.txt"
            }
            XCTAssertEqual(asked, ["../traces/a.txt", "b c.txt"])
            XCTAssertEqual(diagnostics.map(\.rendered), ["""
                demo.ump:2:15: error: cannot read trace file '../traces/a.txt'
                gpu dma-trace ../traces/a.txt
                              ^
                hint: relative paths resolve against the script's directory
                """])
        } catch {
            XCTFail(error.rendered)
        }
    }

    func testColumnsFollowIndentation() {
        XCTAssertEqual(check("process app\n\t  app  write   buf  # late"), """
            demo.ump:2:17: error: process 'app' has no buffer 'buf'
            \t  app  write   buf  # late
            \t               ^
            hint: app has no buffers yet
            """)
    }
}
