// Real-kernel probe. See include/CProbe.h for the contract.
//
// Pinning (PIN op): io_uring buffer registration, with raw system calls (no liburing):
// io_uring_setup(1 entry) then io_uring_register(IORING_REGISTER_BUFFERS, one iovec over the pages).
// The kernel pins the pages with pin_user_pages(FOLL_WRITE|FOLL_LONGTERM) (write-faulting absent
// pages and COW-breaking zero-page/shared ones first) and adds them to mm->pinned_vm of the mm that
// created the ring (ctx->mm_account); as root (CAP_IPC_LOCK) user->locked_vm is not charged. The
// rings stay open until both snapshots are taken; then the parent unregisters the buffers (which
// unaccounts pinned_vm synchronously, so the next probe in this process starts from the same VmPin)
// and closes its rings. A forked child inherits the ring fds but not the charge: fork starts the
// child's mm with pinned_vm = 0. VmPin in /proc/self/status is mm->pinned_vm in kB; it is read
// right after each pagemap snapshot.
//
// Layout: one anonymous private mapping of npages pages, placed between two PROT_NONE guard pages
// so that it never merges with a neighbouring anonymous VMA (a merged VMA could inherit an
// anon_vma, and whether fork() copies page tables depends on the VMA having one).
//
// After FORK the parent and the child run the remaining ops in the script's global order. A turn
// token travels over one AF_UNIX socketpair (a bidirectional pipe; the parent sends with
// MSG_NOSIGNAL so a dead child cannot raise SIGPIPE in a host process such as XCTest). At the end
// the parent reads its pagemap first while the child waits, then hands the turn to the child,
// which reads its own pagemap, sends the raw entries and _exit()s. So both processes are alive
// during both reads. The child only calls async-signal-safe functions (read, write, open, pread,
// close, madvise, _exit) and raw io_uring system calls through syscall(2) (a plain trap, no locks);
// every buffer it needs is allocated before fork() or lives on its stack.
#define _GNU_SOURCE
#include "CProbe.h"

#if defined(__linux__)

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/io_uring.h>

#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#ifndef SYS_io_uring_register
#define SYS_io_uring_register 427
#endif

#define PM_PFN_MASK ((UINT64_C(1) << 55) - 1)
#define PM_EXCLUSIVE (UINT64_C(1) << 56)
#define PM_SWAPPED (UINT64_C(1) << 62)
#define PM_PRESENT (UINT64_C(1) << 63)

// Bytes on the socket.
#define TOK_TURN 'T'   // "your turn" (ops, and for the child also "take your snapshot")
#define TOK_DATA 'D'   // child -> parent: npages raw pagemap entries, then an int64 VmPin (kB), follow
#define TOK_ERR 'E'    // child -> parent: int32 errno, int32 op index follow

// How long the parent waits for the child at one step before giving up and killing it.
#define CHILD_TIMEOUT_MS 30000

static int fail(struct umptui_probe_result *out, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof out->message, fmt, ap);
    va_end(ap);
    return code;
}

size_t umptui_probe_page_size(void) {
    long ps = sysconf(_SC_PAGESIZE);
    return ps > 0 ? (size_t)ps : 4096;
}

// ---- async-signal-safe helpers (used by the child) ----

static int write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

// Returns 0 on success, -1 on error or EOF (errno 0 on EOF).
static int wait_readable(int fd);

// Reads exactly len bytes; with `wait`, each read first waits (bounded) for data.
static int read_all_waiting(int fd, void *buf, size_t len, int wait) {
    char *p = buf;
    while (len > 0) {
        if (wait && wait_readable(fd) != 0) return -1;
        ssize_t n = read(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) {
            errno = 0;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len) { return read_all_waiting(fd, buf, len, 0); }

// Reads npages pagemap entries for [addr, addr + npages*ps) from an open pagemap fd.
static int read_pagemap(int fd, uintptr_t addr, size_t npages, size_t ps, uint64_t *entries) {
    char *p = (char *)entries;
    size_t len = npages * sizeof(uint64_t);
    off_t off = (off_t)((addr / ps) * sizeof(uint64_t));
    while (len > 0) {
        ssize_t n = pread(fd, p, len, off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        off += n;
        len -= (size_t)n;
    }
    return 0;
}

// Reads VmPin (kB) from /proc/self/status with open/read/close and hand parsing (async-signal-safe).
// Returns 0 and *kb (-1 when there is no VmPin line), or an errno value.
static int read_vm_pin_kb(int64_t *kb) {
    static const char key[] = "VmPin:";
    const int keylen = (int)sizeof key - 1;
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno ? errno : EIO;
    char chunk[512];
    // state: 0..keylen-1 = matched that many key bytes at a line start; keylen = in the value;
    // -1 = skipping to the end of the line.
    int state = 0, digits = 0;
    int64_t value = 0;
    *kb = -1;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            close(fd);
            return err ? err : EIO;
        }
        if (n == 0) break;
        for (ssize_t i = 0; i < n; i++) {
            char c = chunk[i];
            if (state == keylen) {
                if (c >= '0' && c <= '9') {
                    value = value * 10 + (c - '0');
                    digits++;
                } else if (c == ' ' || c == '\t') {
                    if (digits > 0) goto found;
                } else {
                    goto found;  // "kB" or the newline ends the number
                }
            } else if (state >= 0) {
                if (c == key[state]) {
                    state++;
                } else {
                    state = c == '\n' ? 0 : -1;
                }
            } else if (c == '\n') {
                state = 0;
            }
        }
    }
    close(fd);
    if (state == keylen && digits > 0) *kb = value;  // value at EOF without a newline
    return 0;
found:
    close(fd);
    *kb = digits > 0 ? value : -1;
    return 0;
}

// The io_uring rings one process holds (one per PIN op), open until the end of the script.
struct rings {
    int fd[UMPTUI_PROBE_MAX_PINS];
    int n;
    /// Pipes VMSPLICE ops filled, read and write ends; closed with the rings.
    int pipes[UMPTUI_PROBE_MAX_PINS][2];
    int npipes;
};

// VMSPLICE: a new pipe, the range spliced into it. Returns 0 or an errno value.
static int splice_range(char *start, size_t len, struct rings *rings) {
    if (rings->npipes >= UMPTUI_PROBE_MAX_PINS) return EMFILE;
    int fds[2];
    if (pipe(fds) != 0) return errno ? errno : EMFILE;
    struct iovec iov = {.iov_base = start, .iov_len = len};
    if (vmsplice(fds[1], &iov, 1, SPLICE_F_NONBLOCK) < 0) {
        int err = errno ? errno : EINVAL;
        close(fds[0]);
        close(fds[1]);
        return err;
    }
    rings->pipes[rings->npipes][0] = fds[0];
    rings->pipes[rings->npipes][1] = fds[1];
    rings->npipes++;
    return 0;
}

// PIN: a new ring with the range registered as one fixed buffer. Returns 0 or an errno value.
static int pin_range(char *start, size_t len, struct rings *rings) {
    if (rings->n >= UMPTUI_PROBE_MAX_PINS) return EMFILE;
    struct io_uring_params params;
    char *pp = (char *)&params;
    for (size_t i = 0; i < sizeof params; i++) pp[i] = 0;  // no memset: keep the child's calls obvious
    long fd = syscall(SYS_io_uring_setup, 1u, &params);
    if (fd < 0) return errno ? errno : ENOSYS;
    struct iovec iov = {.iov_base = start, .iov_len = len};
    long r = syscall(SYS_io_uring_register, (int)fd, IORING_REGISTER_BUFFERS, &iov, 1u);
    if (r < 0) {
        int err = errno ? errno : EINVAL;
        close((int)fd);
        // Registration refused after a successful setup: not "io_uring unavailable".
        return err == EPERM || err == ENOSYS || err == EACCES ? EFAULT : err;
    }
    rings->fd[rings->n++] = (int)fd;
    return 0;
}

// Unregisters the buffers (unpins and unaccounts pinned_vm now) and closes the rings.
static void release_rings(struct rings *rings) {
    for (int i = 0; i < rings->n; i++) {
        (void)syscall(SYS_io_uring_register, rings->fd[i], IORING_UNREGISTER_BUFFERS, NULL, 0u);
        close(rings->fd[i]);
    }
    rings->n = 0;
    for (int i = 0; i < rings->npipes; i++) {
        close(rings->pipes[i][0]);
        close(rings->pipes[i][1]);
    }
    rings->npipes = 0;
}

// An errno from a PIN op that means io_uring itself is unavailable (not built in, seccomp,
// kernel.io_uring_disabled); pin_range maps other refusals of setup-then-register away from these.
static int io_uring_unavailable(int kind, int err) {
    return kind == UMPTUI_PROBE_PIN && (err == ENOSYS || err == EPERM || err == EACCES);
}

// Performs one non-FORK op. Returns 0 or an errno value.
static int do_op(const struct umptui_probe_op *op, char *buf, size_t ps, struct rings *rings) {
    char *start = buf + (size_t)op->first * ps;
    switch (op->kind) {
    case UMPTUI_PROBE_READ:
        for (int64_t i = 0; i < op->count; i++) {
            volatile const char *p = start + (size_t)i * ps;
            (void)*p;
        }
        return 0;
    case UMPTUI_PROBE_WRITE:
        for (int64_t i = 0; i < op->count; i++) {
            volatile char *p = start + (size_t)i * ps;
            *p = (char)0x5a;
        }
        return 0;
    case UMPTUI_PROBE_DONTNEED:
        if (op->count == 0) return 0;
        if (madvise(start, (size_t)op->count * ps, MADV_DONTNEED) != 0) return errno ? errno : EINVAL;
        return 0;
    case UMPTUI_PROBE_PIN:
        return pin_range(start, (size_t)op->count * ps, rings);
    case UMPTUI_PROBE_MPROTECT_R:
    case UMPTUI_PROBE_MPROTECT_RW:
        if (op->count == 0) return 0;
        if (mprotect(start, (size_t)op->count * ps, op->kind == UMPTUI_PROBE_MPROTECT_R ? PROT_READ : PROT_READ | PROT_WRITE) != 0)
            return errno ? errno : EINVAL;
        return 0;
    case UMPTUI_PROBE_VMSPLICE:
        return splice_range(start, (size_t)op->count * ps, rings);
    case UMPTUI_PROBE_PAGEOUT:
#ifdef MADV_PAGEOUT
        if (op->count == 0) return 0;
        if (madvise(start, (size_t)op->count * ps, MADV_PAGEOUT) != 0) return errno ? errno : EINVAL;
        return 0;
#else
        return ENOSYS;
#endif
    default:
        return EINVAL;
    }
}

// ---- parent-side helpers ----

static void decode(const uint64_t *raw, size_t npages, uint64_t zero_pfn, struct umptui_probe_page *pages) {
    for (size_t i = 0; i < npages; i++) {
        uint64_t e = raw[i];
        struct umptui_probe_page *pg = &pages[i];
        pg->raw = e;
        pg->present = (e & PM_PRESENT) ? 1 : 0;
        pg->swapped = (e & PM_SWAPPED) ? 1 : 0;
        pg->exclusive = (e & PM_EXCLUSIVE) ? 1 : 0;
        pg->pfn = pg->present ? (e & PM_PFN_MASK) : 0;
        pg->zero = (pg->present && pg->pfn == zero_pfn) ? 1 : 0;
    }
}

static int send_token(int fd, char tok) {
    for (;;) {
        ssize_t n = send(fd, &tok, 1, MSG_NOSIGNAL);
        if (n == 1) return 0;
        if (n < 0 && errno == EINTR) continue;
        return -1;
    }
}

// Parent: waits until fd is readable (or the child hung up). 0 ok, -1 timeout/error.
static int wait_readable(int fd) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    for (;;) {
        int r = poll(&pfd, 1, CHILD_TIMEOUT_MS);
        if (r > 0) return 0;
        if (r == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (errno != EINTR) return -1;
    }
}

// The parent waits (with a timeout) for each piece, so a child that hangs cannot hang the test.
static int parent_read_all(int fd, void *buf, size_t len) {
    return read_all_waiting(fd, buf, len, 1);
}

// Parent: reads one token from the child. Returns 0 if it is `want`, else fills out->message.
static int parent_expect(int fd, char want, const struct umptui_probe_op *ops, struct umptui_probe_result *out) {
    char tok = 0;
    if (parent_read_all(fd, &tok, 1) != 0) {
        if (errno == ETIMEDOUT) return fail(out, UMPTUI_PROBE_ECHILD, "child did not answer within %d ms", CHILD_TIMEOUT_MS);
        return fail(out, UMPTUI_PROBE_ECHILD, "child hung up before its turn ended (%s)", errno ? strerror(errno) : "EOF");
    }
    if (tok == want) return 0;
    if (tok == TOK_ERR) {
        int32_t info[2] = {0, -1};
        if (parent_read_all(fd, info, sizeof info) != 0)
            return fail(out, UMPTUI_PROBE_ECHILD, "child reported an error but hung up");
        if (info[1] >= 0) {
            int kind = (int)ops[info[1]].kind;
            if (io_uring_unavailable(kind, info[0]))
                return fail(out, UMPTUI_PROBE_ENOURING, "child: op %d (pin): io_uring_setup: %s (io_uring unavailable)",
                            (int)info[1], strerror(info[0]));
            return fail(out, UMPTUI_PROBE_ECHILD, "child: op %d (kind %d) failed: %s", (int)info[1], kind,
                        strerror(info[0]));
        }
        if (info[1] == -2)
            return fail(out, UMPTUI_PROBE_ECHILD, "child: reading /proc/self/status failed: %s", strerror(info[0]));
        return fail(out, UMPTUI_PROBE_ECHILD, "child: reading /proc/self/pagemap failed: %s", strerror(info[0]));
    }
    return fail(out, UMPTUI_PROBE_ECHILD, "child sent unexpected byte 0x%02x", (unsigned char)tok);
}

// ---- the child ----

static void child_error(int fd, int err, int op_index) {
    int32_t info[2] = {err, op_index};
    char tok = TOK_ERR;
    (void)write_all(fd, &tok, 1);
    (void)write_all(fd, info, sizeof info);
    _exit(3);
}

__attribute__((noreturn)) static void child_main(int fd, const struct umptui_probe_op *ops, int nops, int fork_index,
                                                  char *buf, size_t npages, size_t ps, uint64_t *raw) {
    int holder = UMPTUI_PROBE_PARENT;
    char tok;
    struct rings rings;  // the child's own rings; the parent's are inherited as fds and left alone
    rings.n = 0;
    rings.npipes = 0;
    for (int i = fork_index + 1; i < nops; i++) {
        int actor = ops[i].actor;
        if (actor != holder) {
            if (holder == UMPTUI_PROBE_CHILD) {
                tok = TOK_TURN;
                if (write_all(fd, &tok, 1) != 0) _exit(2);
            } else {
                if (read_all(fd, &tok, 1) != 0 || tok != TOK_TURN) _exit(2);
            }
            holder = actor;
        }
        if (actor == UMPTUI_PROBE_CHILD) {
            int err = do_op(&ops[i], buf, ps, &rings);
            if (err != 0) child_error(fd, err, i);
        }
    }
    // Snapshot: the parent reads first, then hands the turn to the child.
    if (holder == UMPTUI_PROBE_CHILD) {
        tok = TOK_TURN;
        if (write_all(fd, &tok, 1) != 0) _exit(2);
    }
    if (read_all(fd, &tok, 1) != 0 || tok != TOK_TURN) _exit(2);
    int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pm < 0) child_error(fd, errno, -1);
    if (read_pagemap(pm, (uintptr_t)buf, npages, ps, raw) != 0) child_error(fd, errno, -1);
    close(pm);
    int64_t vm_pin_kb = -1;
    int err = read_vm_pin_kb(&vm_pin_kb);
    if (err != 0) child_error(fd, err, -2);
    tok = TOK_DATA;
    if (write_all(fd, &tok, 1) != 0) _exit(2);
    if (write_all(fd, raw, npages * sizeof(uint64_t)) != 0) _exit(2);
    if (write_all(fd, &vm_pin_kb, sizeof vm_pin_kb) != 0) _exit(2);
    _exit(0);  // closes the child's rings and its copies of the parent's
}

// One probe at a time per process: a fork() by a concurrent probe would give its child a mapping of
// our buffer and change our pages' mapcounts (pagemap bit 56). Forks by unrelated code in the host
// process can still do that; the probe's own tests do not fork elsewhere.
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;

static int probe_run_locked(const struct umptui_probe_op *ops, int nops, size_t npages, struct umptui_probe_result *out);

// The parent's snapshot: its pagemap entries for the buffer, decoded, and its VmPin.
static int snapshot_parent(int pm, const char *buf, size_t npages, size_t ps, uint64_t *raw,
                           struct umptui_probe_result *out) {
    if (read_pagemap(pm, (uintptr_t)buf, npages, ps, raw) != 0)
        return fail(out, UMPTUI_PROBE_ESYS, "reading /proc/self/pagemap: %s", strerror(errno));
    decode(raw, npages, out->zero_pfn, out->parent);
    int err = read_vm_pin_kb(&out->parent_vm_pin_kb);
    if (err != 0) return fail(out, UMPTUI_PROBE_ESYS, "reading /proc/self/status: %s", strerror(err));
    return 0;
}

int umptui_probe_run(const struct umptui_probe_op *ops, int nops, size_t npages, struct umptui_probe_result *out) {
    pthread_mutex_lock(&probe_lock);
    int rc = probe_run_locked(ops, nops, npages, out);
    pthread_mutex_unlock(&probe_lock);
    return rc;
}

// ---- validation and the zero page ----

static int validate(const struct umptui_probe_op *ops, int nops, size_t npages, int *fork_index,
                    struct umptui_probe_result *out) {
    *fork_index = -1;
    int pins[2] = {0, 0};
    if (npages == 0 || npages > (size_t)1 << 24) return fail(out, UMPTUI_PROBE_EINVAL, "npages %zu out of range", npages);
    if (nops < 0 || (nops > 0 && ops == NULL)) return fail(out, UMPTUI_PROBE_EINVAL, "bad op list");
    for (int i = 0; i < nops; i++) {
        const struct umptui_probe_op *op = &ops[i];
        if (op->actor != UMPTUI_PROBE_PARENT && op->actor != UMPTUI_PROBE_CHILD)
            return fail(out, UMPTUI_PROBE_EINVAL, "op %d: unknown actor %d", i, (int)op->actor);
        if (op->actor == UMPTUI_PROBE_CHILD && *fork_index < 0)
            return fail(out, UMPTUI_PROBE_EINVAL, "op %d: the child acts before FORK", i);
        switch (op->kind) {
        case UMPTUI_PROBE_FORK:
            if (*fork_index >= 0) return fail(out, UMPTUI_PROBE_EINVAL, "op %d: only one FORK is supported", i);
            if (op->actor != UMPTUI_PROBE_PARENT) return fail(out, UMPTUI_PROBE_EINVAL, "op %d: FORK must be done by the parent", i);
            *fork_index = i;
            break;
        case UMPTUI_PROBE_PIN:
            if (op->count < 1) return fail(out, UMPTUI_PROBE_EINVAL, "op %d: PIN needs at least one page", i);
            if (++pins[op->actor] > UMPTUI_PROBE_MAX_PINS)
                return fail(out, UMPTUI_PROBE_EINVAL, "op %d: more than %d PIN ops by one process", i, UMPTUI_PROBE_MAX_PINS);
            __attribute__((fallthrough));  // and the range check
        case UMPTUI_PROBE_VMSPLICE:
            if (op->count < 1 || op->count > 16) return fail(out, UMPTUI_PROBE_EINVAL, "op %d: VMSPLICE takes 1 to 16 pages", i);
            if (++pins[op->actor] > UMPTUI_PROBE_MAX_PINS)
                return fail(out, UMPTUI_PROBE_EINVAL, "op %d: more than %d PIN and VMSPLICE ops by one process", i, UMPTUI_PROBE_MAX_PINS);
            __attribute__((fallthrough));
        case UMPTUI_PROBE_READ:
        case UMPTUI_PROBE_WRITE:
        case UMPTUI_PROBE_DONTNEED:
        case UMPTUI_PROBE_MPROTECT_R:
        case UMPTUI_PROBE_MPROTECT_RW:
        case UMPTUI_PROBE_PAGEOUT:
            if (op->first < 0 || op->count < 0 || (uint64_t)op->first + (uint64_t)op->count > npages)
                return fail(out, UMPTUI_PROBE_EINVAL, "op %d: pages %lld+%lld outside the %zu-page buffer", i,
                            (long long)op->first, (long long)op->count, npages);
            break;
        default:
            return fail(out, UMPTUI_PROBE_EINVAL, "op %d: unknown kind %d", i, (int)op->kind);
        }
    }
    return 0;
}

static int find_zero_pfn(int pm, size_t ps, uint64_t *zero_pfn, struct umptui_probe_result *out) {
    char *page = mmap(NULL, ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) return fail(out, UMPTUI_PROBE_ESYS, "mmap (zero page probe): %s", strerror(errno));
    (void)madvise(page, ps, MADV_NOHUGEPAGE);
    volatile const char *p = page;
    (void)*p;
    uint64_t e = 0;
    int r = read_pagemap(pm, (uintptr_t)page, 1, ps, &e);
    int err = errno;
    munmap(page, ps);
    if (r != 0) return fail(out, UMPTUI_PROBE_ESYS, "reading /proc/self/pagemap: %s", strerror(err));
    if (!(e & PM_PRESENT)) return fail(out, UMPTUI_PROBE_ESYS, "a read-touched page is not present (entry 0x%016llx)", (unsigned long long)e);
    *zero_pfn = e & PM_PFN_MASK;
    if (*zero_pfn == 0)
        return fail(out, UMPTUI_PROBE_ENOPFN, "/proc/self/pagemap shows PFN 0: PFNs need CAP_SYS_ADMIN (run as root)");
    return 0;
}

static int probe_run_locked(const struct umptui_probe_op *ops, int nops, size_t npages, struct umptui_probe_result *out) {
    if (out == NULL) return UMPTUI_PROBE_EINVAL;
    out->message[0] = 0;
    out->forked = 0;
    out->child_pid = 0;
    out->zero_pfn = 0;
    out->parent_vm_pin_before_kb = -1;
    out->parent_vm_pin_kb = -1;
    out->child_vm_pin_kb = -1;
    int fork_index;
    int rc = validate(ops, nops, npages, &fork_index, out);
    if (rc != 0) return rc;
    if (out->parent == NULL) return fail(out, UMPTUI_PROBE_EINVAL, "result.parent is NULL");
    if (fork_index >= 0 && out->child == NULL) return fail(out, UMPTUI_PROBE_EINVAL, "the script forks but result.child is NULL");

    size_t ps = umptui_probe_page_size();
    int pm = -1, sv[2] = {-1, -1};
    char *reserve = MAP_FAILED, *buf = NULL;
    uint64_t *raw = NULL;
    pid_t pid = -1;
    struct rings rings = {.n = 0};
    int err;
    size_t reserve_len = (npages + 2) * ps;

    pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pm < 0) {
        rc = fail(out, UMPTUI_PROBE_ESYS, "open /proc/self/pagemap: %s", strerror(errno));
        goto done;
    }
    rc = find_zero_pfn(pm, ps, &out->zero_pfn, out);
    if (rc != 0) goto done;

    raw = calloc(npages, sizeof(uint64_t));
    if (raw == NULL) {
        rc = fail(out, UMPTUI_PROBE_ESYS, "out of memory");
        goto done;
    }
    reserve = mmap(NULL, reserve_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (reserve == MAP_FAILED) {
        rc = fail(out, UMPTUI_PROBE_ESYS, "mmap (reservation): %s", strerror(errno));
        goto done;
    }
    buf = mmap(reserve + ps, npages * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (buf == MAP_FAILED) {
        buf = NULL;
        rc = fail(out, UMPTUI_PROBE_ESYS, "mmap (buffer): %s", strerror(errno));
        goto done;
    }
    if (madvise(buf, npages * ps, MADV_NOHUGEPAGE) != 0) {
        rc = fail(out, UMPTUI_PROBE_ESYS, "madvise(MADV_NOHUGEPAGE): %s", strerror(errno));
        goto done;
    }

    err = read_vm_pin_kb(&out->parent_vm_pin_before_kb);
    if (err != 0) {
        rc = fail(out, UMPTUI_PROBE_ESYS, "reading /proc/self/status: %s", strerror(err));
        goto done;
    }

    // Ops before FORK (or all of them).
    int end = fork_index >= 0 ? fork_index : nops;
    for (int i = 0; i < end; i++) {
        err = do_op(&ops[i], buf, ps, &rings);
        if (err != 0) {
            if (io_uring_unavailable(ops[i].kind, err))
                rc = fail(out, UMPTUI_PROBE_ENOURING, "op %d (pin): io_uring_setup: %s (io_uring unavailable)", i, strerror(err));
            else
                rc = fail(out, UMPTUI_PROBE_ESYS, "op %d (kind %d): %s", i, (int)ops[i].kind, strerror(err));
            goto done;
        }
    }

    if (fork_index < 0) {
        rc = snapshot_parent(pm, buf, npages, ps, raw, out);
        goto done;
    }

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        rc = fail(out, UMPTUI_PROBE_ESYS, "socketpair: %s", strerror(errno));
        goto done;
    }
    pid = fork();
    if (pid < 0) {
        rc = fail(out, UMPTUI_PROBE_ESYS, "fork: %s", strerror(errno));
        goto done;
    }
    if (pid == 0) {
        close(sv[0]);
        close(pm);
        child_main(sv[1], ops, nops, fork_index, buf, npages, ps, raw);
    }
    out->child_pid = (int32_t)pid;
    close(sv[1]);
    sv[1] = -1;
    int fd = sv[0];

    int holder = UMPTUI_PROBE_PARENT;
    for (int i = fork_index + 1; i < nops; i++) {
        int actor = ops[i].actor;
        if (actor != holder) {
            if (holder == UMPTUI_PROBE_PARENT) {
                if (send_token(fd, TOK_TURN) != 0) {
                    rc = fail(out, UMPTUI_PROBE_ECHILD, "child hung up (%s)", strerror(errno));
                    goto done;
                }
            } else {
                rc = parent_expect(fd, TOK_TURN, ops, out);
                if (rc != 0) goto done;
            }
            holder = actor;
        }
        if (actor == UMPTUI_PROBE_PARENT) {
            err = do_op(&ops[i], buf, ps, &rings);
            if (err != 0) {
                if (io_uring_unavailable(ops[i].kind, err))
                    rc = fail(out, UMPTUI_PROBE_ENOURING, "parent: op %d (pin): io_uring_setup: %s (io_uring unavailable)", i, strerror(err));
                else
                    rc = fail(out, UMPTUI_PROBE_ESYS, "parent: op %d (kind %d): %s", i, (int)ops[i].kind, strerror(err));
                goto done;
            }
        }
    }
    if (holder == UMPTUI_PROBE_CHILD) {
        rc = parent_expect(fd, TOK_TURN, ops, out);
        if (rc != 0) goto done;
    }
    // Parent's snapshot while the child waits, alive.
    rc = snapshot_parent(pm, buf, npages, ps, raw, out);
    if (rc != 0) goto done;
    // Child's snapshot while the parent waits, alive.
    if (send_token(fd, TOK_TURN) != 0) {
        rc = fail(out, UMPTUI_PROBE_ECHILD, "child hung up before its snapshot (%s)", strerror(errno));
        goto done;
    }
    rc = parent_expect(fd, TOK_DATA, ops, out);
    if (rc != 0) goto done;
    if (parent_read_all(fd, raw, npages * sizeof(uint64_t)) != 0) {
        rc = fail(out, UMPTUI_PROBE_ECHILD, "child's pagemap entries cut short (%s)", errno ? strerror(errno) : "EOF");
        goto done;
    }
    decode(raw, npages, out->zero_pfn, out->child);
    if (parent_read_all(fd, &out->child_vm_pin_kb, sizeof out->child_vm_pin_kb) != 0) {
        rc = fail(out, UMPTUI_PROBE_ECHILD, "child's VmPin cut short (%s)", errno ? strerror(errno) : "EOF");
        goto done;
    }
    out->forked = 1;
    rc = 0;

done:
    if (sv[0] >= 0) close(sv[0]);  // a child still waiting sees EOF and _exit()s
    if (sv[1] >= 0) close(sv[1]);
    if (pid > 0) {
        int status = 0;
        pid_t w;
        if (rc != 0) {
            // Give the child a moment to notice EOF; kill it (by pid) if it does not exit.
            for (int tries = 0; tries < 200; tries++) {
                w = waitpid(pid, &status, WNOHANG);
                if (w != 0) break;
                usleep(10000);
            }
            if (w == 0) {
                kill(pid, SIGKILL);
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
            }
        } else {
            while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {}
            if (w == pid && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
                rc = fail(out, UMPTUI_PROBE_ECHILD, "child ended abnormally (status 0x%x)", status);
                out->forked = 0;
            }
        }
    }
    release_rings(&rings);  // before munmap: unpin while the pages are still mapped (either order is valid)
    if (reserve != MAP_FAILED) munmap(reserve, reserve_len);
    free(raw);
    if (pm >= 0) close(pm);
    return rc;
}

#else  // !__linux__

#include <stdio.h>

size_t umptui_probe_page_size(void) { return 4096; }

int umptui_probe_run(const struct umptui_probe_op *ops, int nops, size_t npages, struct umptui_probe_result *out) {
    (void)ops;
    (void)nops;
    (void)npages;
    if (out != NULL) snprintf(out->message, sizeof out->message, "the real-kernel probe needs Linux (/proc/self/pagemap)");
    return UMPTUI_PROBE_ESYS;
}

#endif
