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
// Layout: one mapping (anonymous private, or a memfd mapped shared) of initial_pages pages inside a
// PROT_NONE reservation of npages + 2 (+ alignment) pages, at least one guard page below it and the
// rest of the reservation above it, so that it never merges with a neighbouring anonymous VMA (a
// merged VMA could inherit an anon_vma, and whether fork() copies page tables depends on the VMA
// having one) and never grows in place (MREMAP either moves it or fails). Each process tracks
// where its mapping is and how long (struct region); a snapshot reads that many pagemap entries
// and reports the rest of the npages as not present.
//
// Folio sizes come from /proc/kpageflags (KPF_COMPOUND_HEAD/TAIL around the PFN, one 512-entry
// window per 2 MiB of PFNs), AnonHugePages from /proc/self/smaps, both read with open/pread/read so
// the child can read its own.
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

// /proc/kpageflags bits (include/uapi/linux/kernel-page-flags.h).
#define KPF_COMPOUND_HEAD 15
#define KPF_COMPOUND_TAIL 16

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif

// Bytes on the socket.
#define TOK_TURN 'T'   // "your turn" (ops, and for the child also "take your snapshot")
#define TOK_DATA 'D'   // child -> parent: npages raw pagemap entries, npages uint32 folio sizes, int64 VmPin (kB), int64 AnonHugePages (kB)
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

// Where one process's view of the buffer is now (MREMAP moves and resizes it).
struct region {
    char *buf;
    size_t pages;
};

// Pages in the folio that holds `pfn`, from /proc/kpageflags (fd kpf; -1: unknown, 0 returned).
// `window` caches 512 entries starting at *window_base (UINT64_MAX: empty).
static uint32_t folio_pages(int kpf, uint64_t pfn, uint64_t *window, uint64_t *window_base, size_t *window_len) {
    if (kpf < 0) return 0;
    uint64_t base = pfn & ~(uint64_t)511;
    if (*window_base != base) {
        *window_base = UINT64_MAX;
        *window_len = 0;
        char *p = (char *)window;
        size_t want = 512 * sizeof(uint64_t), got = 0;
        while (got < want) {
            ssize_t n = pread(kpf, p + got, want - got, (off_t)(base * sizeof(uint64_t) + got));
            if (n < 0) {
                if (errno == EINTR) continue;
                return 0;
            }
            if (n == 0) break;
            got += (size_t)n;
        }
        *window_base = base;
        *window_len = got / sizeof(uint64_t);
    }
    size_t i = (size_t)(pfn - base), len = *window_len;
    if (i >= len) return 0;
    const uint64_t head = UINT64_C(1) << KPF_COMPOUND_HEAD, tail = UINT64_C(1) << KPF_COMPOUND_TAIL;
    if (!(window[i] & (head | tail))) return 1;
    size_t h = i;
    while (h > 0 && (window[h] & tail)) h--;
    if (!(window[h] & head)) return 0;  // a folio larger than the window: not one the Engine models
    size_t n = 1;
    while (h + n < len && (window[h + n] & tail)) n++;
    return (uint32_t)n;
}

// Folio sizes for decoded pagemap entries (0 for absent pages and the zero page).
static void folio_sizes(int kpf, const uint64_t *raw, size_t npages, uint64_t zero_pfn, uint32_t *folio) {
    uint64_t window[512];
    uint64_t base = UINT64_MAX;
    size_t len = 0;
    for (size_t i = 0; i < npages; i++) {
        uint64_t e = raw[i];
        uint64_t pfn = e & PM_PFN_MASK;
        folio[i] = (e & PM_PRESENT) && pfn != zero_pfn ? folio_pages(kpf, pfn, window, &base, &len) : 0;
    }
}

// AnonHugePages (kB) summed over the VMAs of /proc/self/smaps that overlap [lo, hi), parsed by
// hand with open/read (async-signal-safe). Returns 0 and *kb, or an errno value.
static int read_anon_huge_kb(uintptr_t lo, uintptr_t hi, int64_t *kb) {
    static const char key[] = "AnonHugePages:";
    int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno ? errno : EIO;
    char chunk[4096], line[160];
    size_t ll = 0;
    int overlap = 0;
    int64_t total = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            close(fd);
            return err ? err : EIO;
        }
        if (n == 0) break;
        for (ssize_t k = 0; k < n; k++) {
            char c = chunk[k];
            if (c != '\n') {
                if (ll < sizeof line - 1) line[ll++] = c;  // the rest of a long line is not needed
                continue;
            }
            line[ll] = 0;
            // A VMA header starts "start-end " in hex; a field line "Name:".
            uint64_t a = 0, b = 0;
            size_t j = 0;
            int digits = 0;
            for (; j < ll; j++) {
                char d = line[j];
                int v = d >= '0' && d <= '9' ? d - '0' : d >= 'a' && d <= 'f' ? d - 'a' + 10 : -1;
                if (v < 0) break;
                a = a * 16 + (uint64_t)v;
                digits++;
            }
            if (digits > 0 && j < ll && line[j] == '-') {
                for (j++; j < ll; j++) {
                    char d = line[j];
                    int v = d >= '0' && d <= '9' ? d - '0' : d >= 'a' && d <= 'f' ? d - 'a' + 10 : -1;
                    if (v < 0) break;
                    b = b * 16 + (uint64_t)v;
                }
                overlap = a < hi && b > lo;
            } else if (overlap && ll >= sizeof key - 1) {
                int match = 1;
                for (size_t q = 0; q < sizeof key - 1; q++) if (line[q] != key[q]) { match = 0; break; }
                if (match) {
                    int64_t value = 0;
                    for (j = sizeof key - 1; j < ll; j++) {
                        if (line[j] >= '0' && line[j] <= '9') value = value * 10 + (line[j] - '0');
                        else if (line[j] != ' ' && line[j] != '\t') break;
                    }
                    total += value;
                }
            }
            ll = 0;
        }
    }
    close(fd);
    *kb = total;
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

// Performs one non-FORK op on the actor's region. Returns 0 or an errno value.
static int do_op(const struct umptui_probe_op *op, struct region *region, size_t ps, struct rings *rings) {
    char *start = region->buf + (size_t)op->first * ps;
    if (op->kind != UMPTUI_PROBE_MREMAP && (uint64_t)op->first + (uint64_t)op->count > region->pages)
        return ERANGE;  // past the mapping's current end (after a shrinking MREMAP)
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
    case UMPTUI_PROBE_MREMAP: {
        void *moved = mremap(region->buf, region->pages * ps, (size_t)op->count * ps, op->first ? MREMAP_MAYMOVE : 0);
        if (moved == MAP_FAILED) return errno ? errno : ENOMEM;
        region->buf = moved;
        region->pages = (size_t)op->count;
        return 0;
    }
    case UMPTUI_PROBE_COLLAPSE:
        if (op->count == 0) return 0;
        // EAGAIN is transient (a page briefly off the LRU): try again a few times.
        for (int tries = 0;; tries++) {
            if (madvise(start, (size_t)op->count * ps, MADV_COLLAPSE) == 0) return 0;
            if (errno != EAGAIN || tries == 4) return errno ? errno : EINVAL;
        }
    case UMPTUI_PROBE_DONTFORK:
        if (op->count == 0) return 0;
        if (madvise(start, (size_t)op->count * ps, MADV_DONTFORK) != 0) return errno ? errno : EINVAL;
        return 0;
    default:
        return EINVAL;
    }
}

// ---- parent-side helpers ----

static void decode(const uint64_t *raw, const uint32_t *folio, size_t npages, uint64_t zero_pfn,
                   struct umptui_probe_page *pages) {
    for (size_t i = 0; i < npages; i++) {
        uint64_t e = raw[i];
        struct umptui_probe_page *pg = &pages[i];
        pg->raw = e;
        pg->present = (e & PM_PRESENT) ? 1 : 0;
        pg->swapped = (e & PM_SWAPPED) ? 1 : 0;
        pg->exclusive = (e & PM_EXCLUSIVE) ? 1 : 0;
        pg->pfn = pg->present ? (e & PM_PFN_MASK) : 0;
        pg->zero = (pg->present && pg->pfn == zero_pfn) ? 1 : 0;
        pg->folio_pages = folio[i];
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
        if (info[1] == -3)
            return fail(out, UMPTUI_PROBE_ECHILD, "child: reading /proc/self/smaps failed: %s", strerror(info[0]));
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

// Reads a snapshot of `region` into raw[0..<npages] (entries past the region's end are 0: not
// present) and the folio sizes into folio[]. Returns 0 or -1 with errno.
static int read_region(int pm, int kpf, const struct region *region, size_t npages, size_t ps, uint64_t zero_pfn,
                       uint64_t *raw, uint32_t *folio) {
    size_t have = region->pages < npages ? region->pages : npages;
    for (size_t i = have; i < npages; i++) raw[i] = 0;
    if (have > 0 && read_pagemap(pm, (uintptr_t)region->buf, have, ps, raw) != 0) return -1;
    folio_sizes(kpf, raw, npages, zero_pfn, folio);
    return 0;
}

__attribute__((noreturn)) static void child_main(int fd, const struct umptui_probe_op *ops, int nops, int fork_index,
                                                  struct region region, size_t npages, size_t ps, uint64_t zero_pfn,
                                                  int kpf, uint64_t *raw, uint32_t *folio) {
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
            int err = do_op(&ops[i], &region, ps, &rings);
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
    if (read_region(pm, kpf, &region, npages, ps, zero_pfn, raw, folio) != 0) child_error(fd, errno, -1);
    close(pm);
    int64_t vm_pin_kb = -1, anon_huge_kb = -1;
    int err = read_vm_pin_kb(&vm_pin_kb);
    if (err != 0) child_error(fd, err, -2);
    err = read_anon_huge_kb((uintptr_t)region.buf, (uintptr_t)region.buf + region.pages * ps, &anon_huge_kb);
    if (err != 0) child_error(fd, err, -3);
    tok = TOK_DATA;
    if (write_all(fd, &tok, 1) != 0) _exit(2);
    if (write_all(fd, raw, npages * sizeof(uint64_t)) != 0) _exit(2);
    if (write_all(fd, folio, npages * sizeof(uint32_t)) != 0) _exit(2);
    if (write_all(fd, &vm_pin_kb, sizeof vm_pin_kb) != 0) _exit(2);
    if (write_all(fd, &anon_huge_kb, sizeof anon_huge_kb) != 0) _exit(2);
    _exit(0);  // closes the child's rings and its copies of the parent's
}

// One probe at a time per process: a fork() by a concurrent probe would give its child a mapping of
// our buffer and change our pages' mapcounts (pagemap bit 56). Forks by unrelated code in the host
// process can still do that; the probe's own tests do not fork elsewhere.
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;

static int probe_run_locked(const struct umptui_probe_setup *setup, const struct umptui_probe_op *ops, int nops,
                            size_t npages, struct umptui_probe_result *out);

// The parent's snapshot: its pagemap entries for the buffer, decoded, its VmPin and AnonHugePages.
static int snapshot_parent(int pm, int kpf, const struct region *region, size_t npages, size_t ps, uint64_t *raw,
                           uint32_t *folio, struct umptui_probe_result *out) {
    if (read_region(pm, kpf, region, npages, ps, out->zero_pfn, raw, folio) != 0)
        return fail(out, UMPTUI_PROBE_ESYS, "reading /proc/self/pagemap: %s", strerror(errno));
    decode(raw, folio, npages, out->zero_pfn, out->parent);
    int err = read_vm_pin_kb(&out->parent_vm_pin_kb);
    if (err != 0) return fail(out, UMPTUI_PROBE_ESYS, "reading /proc/self/status: %s", strerror(err));
    err = read_anon_huge_kb((uintptr_t)region->buf, (uintptr_t)region->buf + region->pages * ps, &out->parent_anon_huge_kb);
    if (err != 0) return fail(out, UMPTUI_PROBE_ESYS, "reading /proc/self/smaps: %s", strerror(err));
    return 0;
}

int umptui_probe_run(const struct umptui_probe_op *ops, int nops, size_t npages, struct umptui_probe_result *out) {
    return umptui_probe_run_setup(NULL, ops, nops, npages, out);
}

int umptui_probe_run_setup(const struct umptui_probe_setup *setup, const struct umptui_probe_op *ops, int nops,
                           size_t npages, struct umptui_probe_result *out) {
    static const struct umptui_probe_setup classic = {0};
    pthread_mutex_lock(&probe_lock);
    int rc = probe_run_locked(setup ? setup : &classic, ops, nops, npages, out);
    pthread_mutex_unlock(&probe_lock);
    return rc;
}

int umptui_probe_mthp_mode(int kb, const char *set, char *mode, size_t mode_len) {
    char path[128];
    snprintf(path, sizeof path, "/sys/kernel/mm/transparent_hugepage/hugepages-%dkB/enabled", kb);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno ? errno : ENOENT;
    char text[128];
    ssize_t n = read(fd, text, sizeof text - 1);
    int err = errno;
    close(fd);
    if (n < 0) return err ? err : EIO;
    text[n] = 0;
    char *open_b = strchr(text, '['), *close_b = open_b ? strchr(open_b, ']') : NULL;
    if (open_b == NULL || close_b == NULL) return EPROTO;
    size_t len = (size_t)(close_b - open_b - 1);
    if (mode != NULL && mode_len > 0) {
        if (len >= mode_len) len = mode_len - 1;
        memcpy(mode, open_b + 1, len);
        mode[len] = 0;
    }
    if (set == NULL) return 0;
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno ? errno : EACCES;
    size_t setlen = strlen(set);
    ssize_t w = write(fd, set, setlen);
    err = errno;
    close(fd);
    if (w != (ssize_t)setlen) return err ? err : EIO;
    return 0;
}

// ---- validation and the zero page ----

static int validate(const struct umptui_probe_op *ops, int nops, size_t npages, int *fork_index,
                    struct umptui_probe_result *out) {
    *fork_index = -1;
    int pins[2] = {0, 0}, pipes[2] = {0, 0};
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
        case UMPTUI_PROBE_MREMAP:
            if (op->count < 1 || (size_t)op->count > npages)
                return fail(out, UMPTUI_PROBE_EINVAL, "op %d: MREMAP to %lld pages, outside 1-%zu", i, (long long)op->count, npages);
            if (op->first != 0 && op->first != 1) return fail(out, UMPTUI_PROBE_EINVAL, "op %d: MREMAP flags %lld", i, (long long)op->first);
            break;
        case UMPTUI_PROBE_PIN:
        case UMPTUI_PROBE_VMSPLICE:
        case UMPTUI_PROBE_READ:
        case UMPTUI_PROBE_WRITE:
        case UMPTUI_PROBE_DONTNEED:
        case UMPTUI_PROBE_MPROTECT_R:
        case UMPTUI_PROBE_MPROTECT_RW:
        case UMPTUI_PROBE_PAGEOUT:
        case UMPTUI_PROBE_COLLAPSE:
        case UMPTUI_PROBE_DONTFORK:
            if (op->kind == UMPTUI_PROBE_PIN) {
                if (op->count < 1) return fail(out, UMPTUI_PROBE_EINVAL, "op %d: PIN needs at least one page", i);
                if (++pins[op->actor] > UMPTUI_PROBE_MAX_PINS)
                    return fail(out, UMPTUI_PROBE_EINVAL, "op %d: more than %d PIN ops by one process", i, UMPTUI_PROBE_MAX_PINS);
            }
            if (op->kind == UMPTUI_PROBE_VMSPLICE) {
                if (op->count < 1 || op->count > 16) return fail(out, UMPTUI_PROBE_EINVAL, "op %d: VMSPLICE takes 1 to 16 pages", i);
                if (++pipes[op->actor] > UMPTUI_PROBE_MAX_PINS)
                    return fail(out, UMPTUI_PROBE_EINVAL, "op %d: more than %d VMSPLICE ops by one process", i, UMPTUI_PROBE_MAX_PINS);
            }
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

static int probe_run_locked(const struct umptui_probe_setup *setup, const struct umptui_probe_op *ops, int nops,
                            size_t npages, struct umptui_probe_result *out) {
    if (out == NULL) return UMPTUI_PROBE_EINVAL;
    out->message[0] = 0;
    out->forked = 0;
    out->child_pid = 0;
    out->zero_pfn = 0;
    out->parent_vm_pin_before_kb = -1;
    out->parent_vm_pin_kb = -1;
    out->child_vm_pin_kb = -1;
    out->parent_anon_huge_kb = -1;
    out->child_anon_huge_kb = -1;
    int fork_index;
    int rc = validate(ops, nops, npages, &fork_index, out);
    if (rc != 0) return rc;
    if (out->parent == NULL) return fail(out, UMPTUI_PROBE_EINVAL, "result.parent is NULL");
    if (fork_index >= 0 && out->child == NULL) return fail(out, UMPTUI_PROBE_EINVAL, "the script forks but result.child is NULL");
    if (setup->backing != UMPTUI_PROBE_BACKING_ANON && setup->backing != UMPTUI_PROBE_BACKING_MEMFD)
        return fail(out, UMPTUI_PROBE_EINVAL, "unknown backing %d", (int)setup->backing);
    if (setup->thp < UMPTUI_PROBE_THP_NOHUGEPAGE || setup->thp > UMPTUI_PROBE_THP_HUGEPAGE)
        return fail(out, UMPTUI_PROBE_EINVAL, "unknown THP advice %d", (int)setup->thp);
    if (setup->align_pages < 0 || setup->align_pages > 512 || (setup->align_pages & (setup->align_pages - 1)) != 0)
        return fail(out, UMPTUI_PROBE_EINVAL, "alignment of %lld pages is not a power of two up to 512", (long long)setup->align_pages);
    if (setup->initial_pages < 0 || (size_t)setup->initial_pages > npages)
        return fail(out, UMPTUI_PROBE_EINVAL, "initial size of %lld pages outside 0-%zu", (long long)setup->initial_pages, npages);

    size_t ps = umptui_probe_page_size();
    size_t align = setup->align_pages > 1 ? (size_t)setup->align_pages : 1;
    size_t initial = setup->initial_pages > 0 ? (size_t)setup->initial_pages : npages;
    int pm = -1, kpf = -1, mfd = -1, sv[2] = {-1, -1};
    char *reserve = MAP_FAILED;
    struct region region = {.buf = NULL, .pages = 0};
    uint64_t *raw = NULL;
    uint32_t *folio = NULL;
    pid_t pid = -1;
    struct rings rings = {.n = 0};
    int err;
    size_t reserve_len = (npages + 2 + align) * ps;

    pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pm < 0) {
        rc = fail(out, UMPTUI_PROBE_ESYS, "open /proc/self/pagemap: %s", strerror(errno));
        goto done;
    }
    rc = find_zero_pfn(pm, ps, &out->zero_pfn, out);
    if (rc != 0) goto done;
    kpf = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);  // -1: folio sizes unknown (0)

    raw = calloc(npages, sizeof(uint64_t));
    folio = calloc(npages, sizeof(uint32_t));
    if (raw == NULL || folio == NULL) {
        rc = fail(out, UMPTUI_PROBE_ESYS, "out of memory");
        goto done;
    }
    reserve = mmap(NULL, reserve_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (reserve == MAP_FAILED) {
        rc = fail(out, UMPTUI_PROBE_ESYS, "mmap (reservation): %s", strerror(errno));
        goto done;
    }
    uintptr_t at = ((uintptr_t)reserve + ps + align * ps - 1) & ~(uintptr_t)(align * ps - 1);
    int flags = MAP_FIXED | (setup->backing == UMPTUI_PROBE_BACKING_MEMFD ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS);
    if (setup->backing == UMPTUI_PROBE_BACKING_MEMFD) {
        mfd = (int)syscall(SYS_memfd_create, "umptui-probe", MFD_CLOEXEC);
        if (mfd < 0) {
            rc = errno == ENOSYS ? fail(out, UMPTUI_PROBE_ENOTSUP, "memfd_create: %s", strerror(errno))
                                 : fail(out, UMPTUI_PROBE_ESYS, "memfd_create: %s", strerror(errno));
            goto done;
        }
        if (ftruncate(mfd, (off_t)(npages * ps)) != 0) {
            rc = fail(out, UMPTUI_PROBE_ESYS, "ftruncate (memfd): %s", strerror(errno));
            goto done;
        }
    }
    char *buf = mmap((void *)at, initial * ps, PROT_READ | PROT_WRITE, flags, mfd, 0);
    if (buf == MAP_FAILED) {
        rc = fail(out, UMPTUI_PROBE_ESYS, "mmap (buffer): %s", strerror(errno));
        goto done;
    }
    region.buf = buf;
    region.pages = initial;
    if (mfd >= 0) {
        close(mfd);  // the mapping keeps the file
        mfd = -1;
    }
    if (setup->thp != UMPTUI_PROBE_THP_DEFAULT &&
        madvise(buf, initial * ps, setup->thp == UMPTUI_PROBE_THP_HUGEPAGE ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) != 0) {
        rc = fail(out, UMPTUI_PROBE_ESYS, "madvise(%s): %s", setup->thp == UMPTUI_PROBE_THP_HUGEPAGE ? "MADV_HUGEPAGE" : "MADV_NOHUGEPAGE",
                  strerror(errno));
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
        err = do_op(&ops[i], &region, ps, &rings);
        if (err != 0) {
            if (io_uring_unavailable(ops[i].kind, err))
                rc = fail(out, UMPTUI_PROBE_ENOURING, "op %d (pin): io_uring_setup: %s (io_uring unavailable)", i, strerror(err));
            else if (ops[i].kind == UMPTUI_PROBE_COLLAPSE && (err == EINVAL || err == ENOMEM || err == EAGAIN))
                rc = fail(out, UMPTUI_PROBE_ENOTSUP, "op %d: MADV_COLLAPSE: %s (%s)", i, strerror(err),
                          err == EINVAL ? "not supported here" : "no huge page could be allocated now");
            else
                rc = fail(out, UMPTUI_PROBE_ESYS, "op %d (kind %d): %s", i, (int)ops[i].kind, strerror(err));
            goto done;
        }
    }

    if (fork_index < 0) {
        rc = snapshot_parent(pm, kpf, &region, npages, ps, raw, folio, out);
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
        child_main(sv[1], ops, nops, fork_index, region, npages, ps, out->zero_pfn, kpf, raw, folio);
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
            err = do_op(&ops[i], &region, ps, &rings);
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
    rc = snapshot_parent(pm, kpf, &region, npages, ps, raw, folio, out);
    if (rc != 0) goto done;
    // Child's snapshot while the parent waits, alive.
    if (send_token(fd, TOK_TURN) != 0) {
        rc = fail(out, UMPTUI_PROBE_ECHILD, "child hung up before its snapshot (%s)", strerror(errno));
        goto done;
    }
    rc = parent_expect(fd, TOK_DATA, ops, out);
    if (rc != 0) goto done;
    if (parent_read_all(fd, raw, npages * sizeof(uint64_t)) != 0 ||
        parent_read_all(fd, folio, npages * sizeof(uint32_t)) != 0) {
        rc = fail(out, UMPTUI_PROBE_ECHILD, "child's pagemap entries cut short (%s)", errno ? strerror(errno) : "EOF");
        goto done;
    }
    decode(raw, folio, npages, out->zero_pfn, out->child);
    if (parent_read_all(fd, &out->child_vm_pin_kb, sizeof out->child_vm_pin_kb) != 0 ||
        parent_read_all(fd, &out->child_anon_huge_kb, sizeof out->child_anon_huge_kb) != 0) {
        rc = fail(out, UMPTUI_PROBE_ECHILD, "child's VmPin and AnonHugePages cut short (%s)", errno ? strerror(errno) : "EOF");
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
    // A mapping MREMAP moved out of the reservation.
    if (region.buf != NULL && region.pages > 0 &&
        ((uintptr_t)region.buf < (uintptr_t)reserve || (uintptr_t)region.buf >= (uintptr_t)reserve + reserve_len))
        munmap(region.buf, region.pages * ps);
    if (mfd >= 0) close(mfd);
    free(raw);
    free(folio);
    if (kpf >= 0) close(kpf);
    if (pm >= 0) close(pm);
    return rc;
}

#else  // !__linux__

#include <errno.h>
#include <stdio.h>

size_t umptui_probe_page_size(void) { return 4096; }

int umptui_probe_run(const struct umptui_probe_op *ops, int nops, size_t npages, struct umptui_probe_result *out) {
    return umptui_probe_run_setup(NULL, ops, nops, npages, out);
}

int umptui_probe_run_setup(const struct umptui_probe_setup *setup, const struct umptui_probe_op *ops, int nops,
                           size_t npages, struct umptui_probe_result *out) {
    (void)setup;
    (void)ops;
    (void)nops;
    (void)npages;
    if (out != NULL) snprintf(out->message, sizeof out->message, "the real-kernel probe needs Linux (/proc/self/pagemap)");
    return UMPTUI_PROBE_ESYS;
}

int umptui_probe_mthp_mode(int kb, const char *set, char *mode, size_t mode_len) {
    (void)kb;
    (void)set;
    if (mode != NULL && mode_len > 0) mode[0] = 0;
    return ENOSYS;
}

#endif
