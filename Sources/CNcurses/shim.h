#ifndef UMPTUI_CNCURSES_SHIM_H
#define UMPTUI_CNCURSES_SHIM_H
// Wide-character ncurses: without this cchar_t, add_wch and WACS_* are invisible to Swift.
#define NCURSES_WIDECHAR 1
#include <ncursesw/curses.h>
#include <locale.h>
#include <langinfo.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>

// Macros and globals Swift cannot see, wrapped as functions.

// stdio's stdout (a global Swift 6 will not touch): flush it; nonzero when that or an earlier write failed.
static inline int umptui_stdout_flush_failed(void) {
    int bad = fflush(stdout) != 0 || ferror(stdout);
    clearerr(stdout);
    return bad;
}
static inline WINDOW *umptui_stdscr(void) { return stdscr; }
static inline int umptui_lines(void) { return LINES; }
static inline int umptui_cols(void) { return COLS; }
static inline int umptui_colors(void) { return COLORS; }
static inline int umptui_color_pairs(void) { return COLOR_PAIRS; }
static inline int umptui_a_bold(void) { return (int)A_BOLD; }
static inline int umptui_a_reverse(void) { return (int)A_REVERSE; }
static inline int umptui_a_underline(void) { return (int)A_UNDERLINE; }
static inline int umptui_a_dim(void) { return (int)A_DIM; }
static inline int umptui_color_pair(int n) { return (int)COLOR_PAIR(n); }
static inline int umptui_key_f(int n) { return KEY_F(n); }
static inline int umptui_attrset(int a) { return attrset(a); }
static inline int umptui_key_mouse(void) { return KEY_MOUSE; }
static inline int umptui_key_resize(void) { return KEY_RESIZE; }
static inline int umptui_key_btab(void) { return KEY_BTAB; }

// Mouse: clicks and the wheel (buttons 4 and 5).
static inline mmask_t umptui_mouse_mask(void) {
    return BUTTON1_PRESSED | BUTTON1_CLICKED | BUTTON4_PRESSED | BUTTON5_PRESSED;
}
static inline int umptui_mouse_is_click(mmask_t b) { return (b & (BUTTON1_PRESSED | BUTTON1_CLICKED)) != 0; }
static inline int umptui_mouse_is_wheel_up(mmask_t b) { return (b & BUTTON4_PRESSED) != 0; }
static inline int umptui_mouse_is_wheel_down(mmask_t b) { return (b & BUTTON5_PRESSED) != 0; }

// The crash handler: restore the terminal, replay what went to stderr, then let the signal go on.
// Written in C so that it only makes async-signal-safe calls (endwin is what ncurses itself does).
// State lives in function-local statics: Swift emits the bodies of static inline functions but not
// file-scope static variables of an imported header.
static inline int *umptui_fds(void) { static int fds[2] = { -1, -1 }; return fds; }
static inline struct sigaction *umptui_old_actions(void) { static struct sigaction a[32]; return a; }
#define umptui_saved_stderr (umptui_fds()[0])
#define umptui_stderr_file (umptui_fds()[1])

static inline void umptui_replay_stderr(void) {
    if (umptui_saved_stderr < 0) return;
    dup2(umptui_saved_stderr, 2);
    if (umptui_stderr_file >= 0) {
        char buf[4096];
        ssize_t n;
        lseek(umptui_stderr_file, 0, SEEK_SET);
        while ((n = read(umptui_stderr_file, buf, sizeof buf)) > 0) { ssize_t w = write(2, buf, (size_t)n); (void)w; }
    }
    umptui_saved_stderr = -1;
}

static void umptui_crash_handler(int sig, siginfo_t *info, void *context) {
    (void)info; (void)context;
    endwin();
    umptui_replay_stderr();
    sigaction(sig, &umptui_old_actions()[sig], NULL);
    // A real fault re-runs the faulting instruction under the old handler, so the backtrace is right;
    // abort() and traps are raised again.
    if (sig != SIGSEGV && sig != SIGBUS && sig != SIGFPE && sig != SIGILL) raise(sig);
}

static inline void umptui_install_crash_handler(void) {
    int sigs[] = { SIGILL, SIGTRAP, SIGABRT, SIGSEGV, SIGBUS, SIGFPE };
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = umptui_crash_handler;
        sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, &umptui_old_actions()[sigs[i]]);
    }
}

static inline void umptui_remove_crash_handler(void) {
    int sigs[] = { SIGILL, SIGTRAP, SIGABRT, SIGSEGV, SIGBUS, SIGFPE };
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &umptui_old_actions()[sigs[i]], NULL);
}

/// Sends fd 2 to `file_fd` while curses owns the screen; umptui_replay_stderr undoes it.
static inline void umptui_capture_stderr(int file_fd) {
    umptui_saved_stderr = dup(2);
    umptui_stderr_file = file_fd;
    dup2(file_fd, 2);
}

#endif
