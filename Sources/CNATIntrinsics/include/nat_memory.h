#ifndef NAT_MEMORY_H
#define NAT_MEMORY_H

#include <stddef.h>

/// Zeroed memory for a large table, from its own anonymous mapping. A table of 2 MiB or more is aligned
/// to 2 MiB and marked for transparent huge pages (madvise MADV_HUGEPAGE), so random probes over it cost
/// a few TLB entries instead of one per 4 KiB page. NULL when the kernel refuses the mapping.
void *nat_table_alloc(size_t bytes);

/// Returns memory from `nat_table_alloc` (pass the same `bytes`).
void nat_table_free(void *p, size_t bytes);

#endif
