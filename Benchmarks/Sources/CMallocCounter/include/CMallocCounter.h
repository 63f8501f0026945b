#ifndef CMALLOCCOUNTER_H
#define CMALLOCCOUNTER_H
#include <stdint.h>

/// Allocation calls (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign, valloc,
/// pvalloc) made by the whole process since start.
uint64_t mc_allocations(void);
/// free() calls with a non-NULL pointer since start.
uint64_t mc_frees(void);
/// Bytes requested by the allocation calls since start.
uint64_t mc_bytes(void);
/// 1 once the interposer has seen at least one allocation (proves it is linked in and active).
int mc_active(void);

/// When non-zero, every allocation call prints a backtrace to stderr (for finding a culprit).
void mc_set_trace(int on);

/// Resident set size of the process in bytes, from /proc/self/statm.
uint64_t mc_rss_bytes(void);

/// Pins the calling thread to one CPU; returns 0 on success.
int mc_pin_to_cpu(int cpu);
/// Number of CPUs the process may run on, and the first of them (-1 if none).
int mc_allowed_cpu_count(void);
int mc_first_allowed_cpu(void);

/// Monotonic clock in nanoseconds.
uint64_t mc_now_ns(void);
/// CPU time of the calling thread in nanoseconds (excludes time the thread was preempted).
uint64_t mc_thread_cpu_ns(void);

/// Compiler barrier: tells the optimizer that memory at `p` may be read here, so stores to it
/// (the per-packet memcpy in the baseline loop) cannot be removed or merged. Costs no instruction.
static inline __attribute__((always_inline)) void mc_clobber(void *p) {
    __asm__ volatile("" : : "r"(p) : "memory");
}
/// Software prefetch of the cache line at `p` (the harness prefetches the pristine packet it will copy
/// a few iterations ahead, so that its own reads do not add cache misses to the engine's).
static inline __attribute__((always_inline)) void mc_prefetch(const void *p) {
    __builtin_prefetch(p, 0, 3);
}
#endif
