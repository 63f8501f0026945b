#define _GNU_SOURCE
#include "CMallocCounter.h"
#include <errno.h>
#include <execinfo.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// glibc's real allocator entry points (exported by libc.so.6 on every glibc since 2.2.5).
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static _Atomic uint64_t g_allocs;
static _Atomic uint64_t g_frees;
static _Atomic uint64_t g_bytes;
static _Atomic int g_trace;
static __thread int t_in_trace;

static inline void count(size_t n) {
    atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_bytes, n, memory_order_relaxed);
    if (atomic_load_explicit(&g_trace, memory_order_relaxed) && !t_in_trace) {
        t_in_trace = 1;  // backtrace() itself may allocate on first use
        void *frames[32];
        int k = backtrace(frames, 32);
        fprintf(stderr, "--- allocation of %zu bytes ---\n", n);
        backtrace_symbols_fd(frames, k, 2);
        t_in_trace = 0;
    }
}

void *malloc(size_t n) { count(n); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { count(a * b); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { count(n); return __libc_realloc(p, n); }
void free(void *p) {
    if (p) atomic_fetch_add_explicit(&g_frees, 1, memory_order_relaxed);
    __libc_free(p);
}
void *memalign(size_t a, size_t n) { count(n); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { count(n); return __libc_memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n) {
    if (a < sizeof(void *) || (a & (a - 1)) != 0) return EINVAL;
    count(n);
    void *p = __libc_memalign(a, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
void *valloc(size_t n) { count(n); return __libc_memalign((size_t)sysconf(_SC_PAGESIZE), n); }
void *pvalloc(size_t n) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    count(n);
    return __libc_memalign(pg, (n + pg - 1) & ~(pg - 1));
}

uint64_t mc_allocations(void) { return atomic_load_explicit(&g_allocs, memory_order_relaxed); }
uint64_t mc_frees(void) { return atomic_load_explicit(&g_frees, memory_order_relaxed); }
uint64_t mc_bytes(void) { return atomic_load_explicit(&g_bytes, memory_order_relaxed); }
int mc_active(void) { return mc_allocations() > 0; }
void mc_set_trace(int on) { atomic_store(&g_trace, on); }

uint64_t mc_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long size = 0, resident = 0;
    int ok = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (ok != 2) return 0;
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

int mc_pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

int mc_allowed_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    return CPU_COUNT(&set);
}

int mc_first_allowed_cpu(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    for (int i = 0; i < CPU_SETSIZE; i++) if (CPU_ISSET(i, &set)) return i;
    return -1;
}

uint64_t mc_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t mc_thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
