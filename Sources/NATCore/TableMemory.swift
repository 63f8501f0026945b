import CNATIntrinsics

/// Memory for the large, randomly probed tables (session, mapping and host slabs, hash indexes). Each
/// gets its own anonymous mapping; one of 2 MiB or more is 2 MiB aligned and asks for transparent huge
/// pages (`madvise(MADV_HUGEPAGE)`; without them the kernel simply uses 4 KiB pages). With a million
/// sessions the tables span 150 MiB: with 4 KiB pages nearly every random probe is a TLB miss and a page
/// walk, with 2 MiB pages they fit the TLB.
public enum TableMemory {
    /// Room for `count` values of `T` (zero-filled; initialize before use, as with `allocate`). Traps
    /// when the kernel has no memory, as `UnsafeMutablePointer.allocate` does.
    @inlinable
    public static func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        precondition(MemoryLayout<T>.alignment <= 4096)
        let n = max(count, 1)
        guard let raw = nat_table_alloc(MemoryLayout<T>.stride * n) else {
            fatalError("out of memory: \(MemoryLayout<T>.stride * n) bytes for a table")
        }
        return raw.bindMemory(to: T.self, capacity: n)
    }

    /// Frees what ``allocate(_:count:)`` returned, given the same `count`.
    @inlinable
    public static func deallocate<T>(_ p: UnsafeMutablePointer<T>, count: Int) {
        nat_table_free(UnsafeMutableRawPointer(p), MemoryLayout<T>.stride * max(count, 1))
    }
}
