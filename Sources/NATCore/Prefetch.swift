import CNATIntrinsics

/// Software prefetch for engines above NATCore that keep tables of their own (NAT64's IPv6 host table):
/// a burst starts every packet's memory access before it waits on one. A hint only: it never faults,
/// whatever the address, and changes no state.
public enum Prefetch {
    /// Starts loading the cache line at `p` for reading.
    @inlinable @inline(__always)
    public static func read(_ p: UnsafeRawPointer) { nat_prefetch(p) }

    /// Starts loading the cache line at `p` for writing.
    @inlinable @inline(__always)
    public static func write(_ p: UnsafeRawPointer) { nat_prefetch_write(p) }
}
