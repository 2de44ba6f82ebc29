/*
 * touch.c - a tiny program whose memory accesses teach demand paging.
 *
 * Run under valgrind's lackey tool, every load and store it makes is
 * logged; replayed page by page, the trace shows the faults Linux takes:
 *
 *   1. a small malloc (< 128 KiB) comes from the brk heap and is written;
 *   2. a large malloc (1 MiB >= M_MMAP_THRESHOLD) gets its own anonymous
 *      mmap; its first half is only *read* (each page maps the shared
 *      zero page), then a quarter of it is *written* (each page gets a
 *      private anonymous page, including pages that were read before);
 *   3. a 16 KiB local array and a short recursion grow the stack down.
 *
 * The program touches one byte per 4 KiB page, so its own part of the
 * trace is small; the dynamic loader and libc start-up add their own.
 */
#include <stdio.h>
#include <stdlib.h>

#define PAGE      4096
#define SMALL     (8 * 1024)        /* brk heap: below mmap threshold */
#define LARGE     (1024 * 1024)     /* 1 MiB: glibc malloc uses mmap  */
#define STACKBUF  (16 * 1024)       /* local array on the stack       */

static volatile unsigned long sink; /* keeps the compiler from dropping reads */

/* Recurse a few levels; each frame holds one page of locals. */
static unsigned long recurse(int depth)
{
    volatile char frame[PAGE];
    frame[0] = (char)depth;         /* store: touches this frame's page */
    if (depth == 0)
        return frame[0];
    return frame[0] + recurse(depth - 1);
}

int main(void)
{
    /* 1. Small buffer from the brk heap: write every page. */
    volatile char *small = malloc(SMALL);
    for (size_t i = 0; i < SMALL; i += PAGE)
        small[i] = 1;

    /* 2. Large buffer from mmap: read the first half (zero page) ... */
    volatile char *large = malloc(LARGE);
    for (size_t i = 0; i < LARGE / 2; i += PAGE)
        sink += large[i];
    /* ... then write the first quarter (copy-on-write of the zero page). */
    for (size_t i = 0; i < LARGE / 4; i += PAGE)
        large[i] = 2;

    /* 3. Stack: a 16 KiB local array, written page by page, then recursion. */
    volatile char local[STACKBUF];
    for (size_t i = 0; i < STACKBUF; i += PAGE)
        local[i] = 3;
    sink += local[0] + recurse(4);

    printf("sum %lu\n", sink);      /* reads the results; libc does the I/O */
    free((void *)large);            /* munmap */
    free((void *)small);
    return 0;
}
