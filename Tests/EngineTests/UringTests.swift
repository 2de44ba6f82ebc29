// io_uring fixed buffers charge the *user's* locked_vm (io_uring/rsrc.c:44, __io_account_mem;
// ctx->user only without CAP_IPC_LOCK, io_uring/io_uring.c:3683) and the process's pinned_vm
// without a check; RDMA's pin checks pinned_vm. Two processes of one user registering 6 MiB each
// under an 8 MiB limit: the second gets ENOMEM, as on Linux.

import XCTest

@testable import Engine

final class UringTests: XCTestCase {
    let setup = """
        machine ram=64M memlock=8M
        process a user=alice
        process b user=alice
        process c user=bob
        a mmap x 6M
        b mmap y 6M
        c mmap z 6M
        """

    func testOneUsersProcessesShareTheLockedVMBudget() {
        var r = scenario(setup)
        XCTAssertEqual(r.step("a uring-register x").outcome, .ok)
        XCTAssertEqual(r.state.meta.userLockedVM["alice"], 1536)
        XCTAssertEqual(r.meta("a").pinnedVMPages, 1536, "pinned_vm raised, not checked")
        let second = r.step("b uring-register y")
        XCTAssertEqual(second.outcome, .errno("ENOMEM"), "alice's budget is spent: \(second.text)")
        XCTAssertEqual(r.meta("b").pinnedVMPages, 0)
        XCTAssertEqual(r.step("c uring-register z").outcome, .ok, "bob has a budget of his own")
        // RDMA's rule checks pinned_vm, which the registration raised.
        XCTAssertEqual(r.step("c pin z longterm").outcome, .errno("ENOMEM"))
        // Unregistering, or exiting, gives the charge back.
        _ = r.step("a uring-unregister x")
        XCTAssertEqual(r.state.meta.userLockedVM["alice"], 0)
        XCTAssertEqual(r.meta("a").pinnedVMPages, 0)
        XCTAssertEqual(r.step("b uring-register y").outcome, .ok)
        _ = r.step("b exit")
        XCTAssertEqual(r.state.meta.userLockedVM["alice"], 0)
        XCTAssertEqual(r.step("a uring-unregister x").outcome, .errno("ENXIO"))
        XCTAssertEqual(r.step("c unpin z").outcome, .errno("EINVAL"), "a registration is not undone by unpin")
    }

    func testCAPIPCLockSkipsTheUserChargeAndAChildRunsAsItsParentsUser() {
        var r = scenario("machine ram=64M memlock=8M\nprocess a user=alice cap=ipc_lock\na mmap x 6M\na mmap y 6M\na fork kid")
        XCTAssertEqual(r.step("a uring-register x").outcome, .ok)
        XCTAssertEqual(r.step("a uring-register y").outcome, .ok, "CAP_IPC_LOCK: ctx->user is not set")
        XCTAssertNil(r.state.meta.userLockedVM["alice"])
        XCTAssertEqual(r.meta("kid").user, "alice")
        XCTAssertEqual(r.step("a uring-register x").outcome, .errno("EBUSY"))
    }

    func testEveryUringStepUndoesExactly() {
        assertEveryStepUndoes(setup + "\na uring-register x\nb uring-register y\nc uring-register z\na write x 0 8K\na fork kid\na uring-unregister x\nb uring-register y\nb exit\nc exit")
    }
}
