#ifndef NAT_INTRINSICS_H
#define NAT_INTRINSICS_H

/// CPU hints Swift has no spelling for. Header-only (static inline), so calls inline into Swift code.

/// Asks the CPU to start loading the cache line at `p` (for reading, keep in all cache levels).
/// Never faults, whatever `p` is.
static inline __attribute__((always_inline)) void nat_prefetch(const void *p) {
    __builtin_prefetch(p, 0, 3);
}

/// As `nat_prefetch`, for a line that is about to be written.
static inline __attribute__((always_inline)) void nat_prefetch_write(const void *p) {
    __builtin_prefetch(p, 1, 3);
}

#endif
