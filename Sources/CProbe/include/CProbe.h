// Real-kernel probe: performs a tiny script of page actions on one mapping (anonymous private, or a
// memfd mapped shared; mmap / touch / fork / madvise / mprotect / mremap / vmsplice / io_uring
// buffer registration) and reads /proc/self/pagemap, /proc/kpageflags (folio sizes), AnonHugePages
// (/proc/self/smaps) and VmPin (/proc/self/status) in the parent and, when the script forks, in the
// child while both are still alive. The Swift side (RealProbe.swift) wraps it.
//
// Linux only. PFNs in pagemap need CAP_SYS_ADMIN; without it the probe fails with
// UMPTUI_PROBE_ENOPFN instead of returning zeros.
#ifndef UMPTUI_CPROBE_H
#define UMPTUI_CPROBE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// What an op does.
enum umptui_probe_op_kind {
    UMPTUI_PROBE_READ = 1,      ///< volatile read of one byte in each page of [first, first+count)
    UMPTUI_PROBE_WRITE = 2,     ///< write one byte to each page of the range
    UMPTUI_PROBE_FORK = 3,      ///< fork(); only once, by the parent; range ignored
    UMPTUI_PROBE_DONTNEED = 4,  ///< madvise(MADV_DONTNEED) on the range
    /// Pin the range as io_uring buffer registration does: io_uring_setup (raw syscall 425), then
    /// io_uring_register(IORING_REGISTER_BUFFERS) with one iovec over the range (syscall 427), i.e.
    /// pin_user_pages(FOLL_WRITE|FOLL_LONGTERM), charged to the actor's mm->pinned_vm. Each PIN op
    /// gets its own ring, kept open (buffers registered) until after the final snapshot.
    UMPTUI_PROBE_PIN = 5,
    UMPTUI_PROBE_MPROTECT_R = 6,   ///< mprotect(PROT_READ) on the range
    UMPTUI_PROBE_MPROTECT_RW = 7,  ///< mprotect(PROT_READ|PROT_WRITE) on the range
    /// vmsplice(2) of the range into a new pipe (FOLL_GET references the pipe holds), kept open
    /// until after the final snapshot; at most 16 pages (PIPE_DEF_BUFFERS), SPLICE_F_NONBLOCK.
    UMPTUI_PROBE_VMSPLICE = 8,
    UMPTUI_PROBE_PAGEOUT = 9,      ///< madvise(MADV_PAGEOUT) on the range (needs swap to do anything)
    /// mremap(2) of the actor's whole mapping to `count` pages (at most npages); `first` 1 means
    /// MREMAP_MAYMOVE, 0 none. A PROT_NONE reservation lies above the mapping, so growing always moves.
    UMPTUI_PROBE_MREMAP = 10,
    UMPTUI_PROBE_COLLAPSE = 11,    ///< madvise(MADV_COLLAPSE) on the range
    UMPTUI_PROBE_DONTFORK = 12,    ///< madvise(MADV_DONTFORK) on the range (splits the VMA)
};

/// What backs the probe buffer.
enum umptui_probe_backing {
    UMPTUI_PROBE_BACKING_ANON = 0,   ///< MAP_PRIVATE|MAP_ANONYMOUS
    UMPTUI_PROBE_BACKING_MEMFD = 1,  ///< memfd_create + ftruncate, mapped MAP_SHARED
};

/// The buffer's THP advice right after mmap.
enum umptui_probe_thp {
    UMPTUI_PROBE_THP_NOHUGEPAGE = 0, ///< madvise(MADV_NOHUGEPAGE): small pages only (the default)
    UMPTUI_PROBE_THP_DEFAULT = 1,    ///< no advice: the sysfs settings decide
    UMPTUI_PROBE_THP_HUGEPAGE = 2,   ///< madvise(MADV_HUGEPAGE)
};

/// How the buffer is set up. A zeroed struct is the classic probe: anonymous, MADV_NOHUGEPAGE,
/// page aligned, npages long.
struct umptui_probe_setup {
    int32_t backing;        ///< enum umptui_probe_backing
    int32_t thp;            ///< enum umptui_probe_thp
    int64_t align_pages;    ///< the buffer starts at a multiple of this many pages (0 or 1: any page)
    int64_t initial_pages;  ///< the mapping's first size in pages (0: npages); MREMAP may change it up to npages
};

/// At most this many PIN ops per process (parent, child) in one script.
#define UMPTUI_PROBE_MAX_PINS 8

/// Who performs an op. Before the FORK op only the parent exists.
enum umptui_probe_actor {
    UMPTUI_PROBE_PARENT = 0,
    UMPTUI_PROBE_CHILD = 1,
};

struct umptui_probe_op {
    int32_t kind;    ///< enum umptui_probe_op_kind
    int32_t actor;   ///< enum umptui_probe_actor
    int64_t first;   ///< first page index
    int64_t count;   ///< number of pages
};

/// One decoded pagemap entry.
struct umptui_probe_page {
    uint64_t raw;      ///< the 64-bit pagemap entry as read
    uint64_t pfn;      ///< bits 0-54 (only meaningful when present)
    uint8_t present;   ///< bit 63
    uint8_t swapped;   ///< bit 62
    uint8_t exclusive; ///< bit 56: page exclusively mapped (mapcount 1)
    uint8_t zero;      ///< present and pfn == zero_pfn
    /// Pages in the folio mapping this page (/proc/kpageflags: 1 for a small page, 16 for a 64 KiB
    /// folio, 512 for a THP); 0 when not present, the zero page, or kpageflags is unreadable.
    uint32_t folio_pages;
};

/// Filled by umptui_probe_run. The caller provides the two page arrays (npages entries each).
struct umptui_probe_result {
    struct umptui_probe_page *parent;  ///< in: caller array of npages; out: parent's pages
    struct umptui_probe_page *child;   ///< in: caller array of npages (may be NULL if no FORK); out
    uint64_t zero_pfn;                 ///< out: PFN of the shared zero page
    int32_t forked;                    ///< out: 1 if the script forked and child[] is filled
    int32_t child_pid;                 ///< out: the child's pid (informational)
    /// out: VmPin (mm->pinned_vm, kB) from /proc/self/status read in the parent before the first op;
    /// -1 when the kernel shows no VmPin line.
    int64_t parent_vm_pin_before_kb;
    /// out: VmPin (kB) read in the parent right after its final pagemap read (rings still open); -1 if absent.
    int64_t parent_vm_pin_kb;
    /// out: VmPin (kB) read in the child right after its final pagemap read; -1 if absent or no fork.
    int64_t child_vm_pin_kb;
    /// out: AnonHugePages (kB, PMD-mapped THPs) summed over the VMAs overlapping the buffer in
    /// /proc/self/smaps, per process; -1 when unknown or no fork.
    int64_t parent_anon_huge_kb;
    int64_t child_anon_huge_kb;
    char message[256];                 ///< out: human-readable error when the return value < 0
};

// Error codes (negative return values).
#define UMPTUI_PROBE_EINVAL  (-1)  ///< bad op list (range outside the buffer, second FORK, child op before FORK, ...)
#define UMPTUI_PROBE_ESYS    (-2)  ///< a system call failed (mmap, open, pipe, fork, madvise, ...)
#define UMPTUI_PROBE_ENOPFN  (-3)  ///< pagemap hides PFNs (not root / no CAP_SYS_ADMIN)
#define UMPTUI_PROBE_ECHILD  (-4)  ///< the child failed or died before reporting
#define UMPTUI_PROBE_ENOURING (-5) ///< io_uring is unavailable (ENOSYS, EPERM/EACCES: seccomp, kernel.io_uring_disabled)
#define UMPTUI_PROBE_ENOTSUP (-6)  ///< the kernel lacks something the script needs (memfd_create, MADV_COLLAPSE: EINVAL/ENOSYS)

/// Run the script. Returns 0 on success, a negative UMPTUI_PROBE_E* code with out->message on error.
/// Never aborts the process. Safe to call from a multithreaded process: the child only uses
/// async-signal-safe calls (read, write, open, pread, close, madvise, _exit) and raw system calls
/// through syscall(2) (io_uring_setup, io_uring_register).
int umptui_probe_run(const struct umptui_probe_op *ops, int nops, size_t npages,
                     struct umptui_probe_result *out);

/// The same with a buffer set up as `setup` says (NULL: the classic setup).
int umptui_probe_run_setup(const struct umptui_probe_setup *setup, const struct umptui_probe_op *ops, int nops,
                           size_t npages, struct umptui_probe_result *out);

/// Reads the mode of /sys/kernel/mm/transparent_hugepage/hugepages-<kb>kB/enabled (the bracketed
/// word) into `mode` and, when `set` is not NULL, writes `set` there. 0, or an errno value.
int umptui_probe_mthp_mode(int kb, const char *set, char *mode, size_t mode_len);

/// The page size the probe uses (sysconf(_SC_PAGESIZE)).
size_t umptui_probe_page_size(void);

#ifdef __cplusplus
}
#endif

#endif
