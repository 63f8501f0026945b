// The functions are static inline in include/nat_intrinsics.h; this file only gives the target a source.
#include "nat_intrinsics.h"
