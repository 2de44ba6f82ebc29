#ifndef UMPTUI_CNCURSES_SHIM_H
#define UMPTUI_CNCURSES_SHIM_H
// Wide-character ncurses: without this cchar_t, add_wch and WACS_* are invisible to Swift.
#define NCURSES_WIDECHAR 1
#include <ncursesw/curses.h>
#include <locale.h>
#include <langinfo.h>

// Macros and globals Swift cannot see, wrapped as functions.
static inline WINDOW *umptui_stdscr(void) { return stdscr; }
static inline int umptui_lines(void) { return LINES; }
static inline int umptui_cols(void) { return COLS; }
static inline int umptui_colors(void) { return COLORS; }
static inline int umptui_a_bold(void) { return (int)A_BOLD; }
static inline int umptui_a_reverse(void) { return (int)A_REVERSE; }
static inline int umptui_a_underline(void) { return (int)A_UNDERLINE; }
static inline int umptui_a_dim(void) { return (int)A_DIM; }
static inline int umptui_color_pair(int n) { return (int)COLOR_PAIR(n); }
static inline int umptui_key_f(int n) { return KEY_F(n); }

#endif
