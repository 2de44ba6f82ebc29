/* The IOTLB benchmark's baseline: the best plain C this repository has for the Engine's IOTLB
 * replay (`dma-trace unit=page` over 4 KiB IOPTEs), used by `umptui bench`.
 *
 *   iotlb_lru TRACE [ENTRIES [WAYS [lru|fifo|random [SEED]]]]     prints "lookups hits misses"
 *
 * Same semantics as the Engine's IOTLBState (Sources/Engine/IOMMU/IOTLB.swift), so the hit and
 * miss counts must be equal:
 *   - ENTRIES (default 64) slots; WAYS 0 or > ENTRIES means fully associative, else
 *     ENTRIES / WAYS sets, set = page % sets;
 *   - a miss fills the set's next empty slot, else evicts: lru the least recently used, fifo the
 *     oldest filled, random slot (SplitMix64(SEED).next() % WAYS) of the set, one generator for
 *     all sets. SEED defaults to the Engine's first device on `machine seed=1`: 1 + 0x9E3779B9.
 *
 * How it is fast: the file is mmapped and parsed in place; a fully associative IOTLB finds a page
 * through an open-addressing hash (page -> slot, linear probing, backward-shift deletion) and keeps
 * LRU/FIFO order in an intrusive doubly linked list, so a lookup and an eviction are O(1); a set of
 * a set-associative one is scanned (WAYS is small).
 * Build: cc -O2 -o iotlb_lru iotlb_lru.c */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum policy { LRU, FIFO, RANDOM };

static uint64_t rng_state;
static uint64_t splitmix64(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Fully associative state. */
static int entries, used;
static uint64_t *slot_page;            /* page number held by each slot */
static int *prev_slot, *next_slot;     /* replacement order: head = next victim, tail = newest */
static int head = -1, tail = -1;
static uint64_t *hkey;                 /* page + 1, 0 = empty */
static int *hval;
static uint64_t hmask;

static inline uint64_t hash(uint64_t page) { return (page * 0x9E3779B97F4A7C15ull) >> 32; }

static inline int hash_find(uint64_t page) {
    for (uint64_t i = hash(page) & hmask;; i = (i + 1) & hmask) {
        if (hkey[i] == page + 1) return hval[i];
        if (hkey[i] == 0) return -1;
    }
}

static inline void hash_put(uint64_t page, int slot) {
    uint64_t i = hash(page) & hmask;
    while (hkey[i] != 0) i = (i + 1) & hmask;
    hkey[i] = page + 1;
    hval[i] = slot;
}

static inline void hash_remove(uint64_t page) {
    uint64_t i = hash(page) & hmask;
    while (hkey[i] != page + 1) i = (i + 1) & hmask;
    /* Backward-shift deletion: pull later entries of the run into the hole. */
    for (uint64_t j = (i + 1) & hmask; hkey[j] != 0; j = (j + 1) & hmask) {
        uint64_t home = hash(hkey[j] - 1) & hmask;
        if (((j - home) & hmask) >= ((j - i) & hmask)) {
            hkey[i] = hkey[j];
            hval[i] = hval[j];
            i = j;
        }
    }
    hkey[i] = 0;
}

static inline void unlink_slot(int s) {
    if (prev_slot[s] >= 0) next_slot[prev_slot[s]] = next_slot[s]; else head = next_slot[s];
    if (next_slot[s] >= 0) prev_slot[next_slot[s]] = prev_slot[s]; else tail = prev_slot[s];
}

static inline void append_slot(int s) {
    prev_slot[s] = tail;
    next_slot[s] = -1;
    if (tail >= 0) next_slot[tail] = s; else head = s;
    tail = s;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 6) {
        fprintf(stderr, "usage: iotlb_lru TRACE [ENTRIES [WAYS [lru|fifo|random [SEED]]]]\n");
        return 2;
    }
    entries = argc > 2 ? atoi(argv[2]) : 64;
    int ways = argc > 3 ? atoi(argv[3]) : 0;
    enum policy policy = LRU;
    if (argc > 4) {
        if (!strcmp(argv[4], "fifo")) policy = FIFO;
        else if (!strcmp(argv[4], "random")) policy = RANDOM;
        else if (strcmp(argv[4], "lru")) { fprintf(stderr, "iotlb_lru: policy is lru, fifo or random\n"); return 2; }
    }
    rng_state = argc > 5 ? strtoull(argv[5], NULL, 0) : 1 + 0x9E3779B9ull;
    if (entries < 1) entries = 1;
    if (ways <= 0 || ways > entries) ways = entries;
    int sets = entries / ways > 0 ? entries / ways : 1;

    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 2; }
    struct stat st;
    if (fstat(fd, &st) != 0) { perror(argv[1]); return 2; }
    size_t size = (size_t)st.st_size;
    const char *text = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : "";
    if (text == MAP_FAILED) { perror("mmap"); return 2; }
    if (size) madvise((void *)text, size, MADV_SEQUENTIAL);

    uint64_t lookups = 0, hits = 0, misses = 0;
    if (sets == 1) {
        slot_page = calloc((size_t)entries, sizeof *slot_page);
        prev_slot = malloc((size_t)entries * sizeof *prev_slot);
        next_slot = malloc((size_t)entries * sizeof *next_slot);
        uint64_t cap = 16;
        while (cap < (uint64_t)entries * 4) cap <<= 1;
        hmask = cap - 1;
        hkey = calloc(cap, sizeof *hkey);
        hval = calloc(cap, sizeof *hval);
    }
    /* Set-associative state: per slot its page and stamp, per set its fill. */
    uint64_t *spage = NULL, *sstamp = NULL, clock = 0;
    int *fill = NULL;
    if (sets > 1) {
        spage = calloc((size_t)sets * ways, sizeof *spage);
        sstamp = calloc((size_t)sets * ways, sizeof *sstamp);
        fill = calloc((size_t)sets, sizeof *fill);
    }

    uint64_t value = 0;
    int digits = 0;
    for (size_t i = 0; i <= size; i++) {
        char c = i < size ? text[i] : '\n';
        if (c >= '0' && c <= '9') { value = value * 10 + (uint64_t)(c - '0'); digits++; continue; }
        if (c != '\n' || !digits) continue;
        uint64_t page = value;
        value = 0;
        digits = 0;
        lookups++;
        if (sets == 1) {
            int s = hash_find(page);
            if (s >= 0) {
                hits++;
                if (policy == LRU && s != tail) { unlink_slot(s); append_slot(s); }
                continue;
            }
            misses++;
            if (used < entries) {
                s = used++;
                append_slot(s);
            } else {
                s = policy == RANDOM ? (int)(splitmix64() % (uint64_t)entries) : head;
                hash_remove(slot_page[s]);
                if (policy != RANDOM) { unlink_slot(s); append_slot(s); }
            }
            slot_page[s] = page;
            hash_put(page, s);
        } else {
            int set = (int)(page % (uint64_t)sets), base = set * ways, hit = -1;
            for (int w = 0; w < fill[set]; w++) if (spage[base + w] == page) { hit = base + w; break; }
            clock++;
            if (hit >= 0) { hits++; if (policy == LRU) sstamp[hit] = clock; continue; }
            misses++;
            int s;
            if (fill[set] < ways) s = base + fill[set]++;
            else if (policy == RANDOM) s = base + (int)(splitmix64() % (uint64_t)ways);
            else { s = base; for (int w = 1; w < ways; w++) if (sstamp[base + w] < sstamp[s]) s = base + w; }
            spage[s] = page;
            sstamp[s] = clock;
        }
    }
    printf("%llu %llu %llu\n", (unsigned long long)lookups, (unsigned long long)hits, (unsigned long long)misses);
    return 0;
}
