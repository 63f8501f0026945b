// The prefetch functions are static inline in include/nat_intrinsics.h; the table allocator is here.
#include "nat_intrinsics.h"
#include "nat_memory.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#define NAT_HUGE ((size_t)2 << 20)

/// Whole pages of the kernel's page size. The end is not rounded up to 2 MiB: the kernel backs the
/// whole 2 MiB stretches with huge pages and the rest with small ones, so nothing is wasted past the table.
static size_t nat_rounded(size_t bytes) {
    long page = sysconf(_SC_PAGESIZE);
    size_t p = page > 0 ? (size_t)page : 4096;
    if (bytes == 0) bytes = 1;
    return (bytes + p - 1) / p * p;
}

void *nat_table_alloc(size_t bytes) {
    size_t size = nat_rounded(bytes);
    if (size < NAT_HUGE) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    // Map one huge page more than needed, then unmap the ends so that the table starts 2 MiB aligned.
    size_t span = size + NAT_HUGE;
    char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    uintptr_t start = ((uintptr_t)raw + NAT_HUGE - 1) & ~(uintptr_t)(NAT_HUGE - 1);
    size_t head = start - (uintptr_t)raw;
    if (head) munmap(raw, head);
    size_t tail = span - head - size;
    if (tail) munmap((char *)start + size, tail);
#ifdef MADV_HUGEPAGE
    (void)madvise((void *)start, size, MADV_HUGEPAGE);
#endif
    return (void *)start;
}

void nat_table_free(void *p, size_t bytes) {
    if (p) munmap(p, nat_rounded(bytes));
}
