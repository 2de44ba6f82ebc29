/* The IOTLB benchmark's baseline: the same LRU work as the Engine's fully associative IOTLB,
 * as a plain C loop. Reads a trace of page numbers (one decimal per line), looks each up in a
 * 64-entry LRU cache of 4 KiB translations, and prints "lookups hits misses".
 * Used by `umptui bench`; build: cc -O2 -o iotlb_lru iotlb_lru.c */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define ENTRIES 64

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: iotlb_lru TRACE\n"); return 2; }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 2; }
    uint64_t tag[ENTRIES], stamp[ENTRIES], clock = 0, lookups = 0, hits = 0, misses = 0;
    int used = 0;
    static char buf[1 << 20];
    size_t n;
    uint64_t value = 0;
    int in_number = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        for (size_t i = 0; i < n; i++) {
            char c = buf[i];
            if (c >= '0' && c <= '9') { value = value * 10 + (uint64_t)(c - '0'); in_number = 1; continue; }
            if (c != '\n' || !in_number) continue;
            uint64_t iova = value << 12;
            value = 0; in_number = 0;
            lookups++;
            int hit = -1;
            for (int e = 0; e < used; e++) if (iova - tag[e] < 4096) { hit = e; break; }
            clock++;
            if (hit >= 0) { hits++; stamp[hit] = clock; continue; }
            misses++;
            int victim = used;
            if (used < ENTRIES) used++;
            else { victim = 0; for (int e = 1; e < ENTRIES; e++) if (stamp[e] < stamp[victim]) victim = e; }
            tag[victim] = iova & ~(uint64_t)4095; stamp[victim] = clock;
        }
    }
    fclose(f);
    printf("%llu %llu %llu\n", (unsigned long long)lookups, (unsigned long long)hits, (unsigned long long)misses);
    return 0;
}
