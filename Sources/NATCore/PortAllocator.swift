import NATWire

/// Picks outside ports (or ICMP identifiers) for new mappings: NAPT44's (RFC 4787 §4.2) and stateful
/// NAT64's BIB entries (RFC 6146 §3.5.1.1), one allocator for both.
///
/// - Port preservation (RFC 4787 §4.2.1): the inside port itself when it is in the set and free.
/// - Otherwise RFC 6056 §3.3.3 (Algorithm 3, simple hash-based selection): start at a keyed hash of the
///   caller's key (its flow or host) and walk the set, for at most ``maxAttempts`` candidates.
/// - Ranges (RFC 4787 REQ-3, RFC 6146 §3.5.1.1): a port below 1024 gets a port below 1024, one from 1024
///   up one from 1024 up; the whole set only when the configured ports have none in that range. ICMP
///   identifiers have no ranges.
/// - Parity (RFC 4787 REQ-4, RFC 6146 §3.5.1.1): candidates of the other parity are skipped.
///
/// A port is free when no mapping (live, or held after release) of the protocol owns it on that address:
/// the ``EndpointProbe`` of the caller's ``SessionTable``. Nothing allocates; the sets are read borrowed.
public struct PortAllocator: Sendable {
    /// The sets, behind one reference: the allocator is passed in registers (a struct holding the three
    /// sets was copied to the stack for every call).
    @usableFromInline final class Sets: Sendable {
        @usableFromInline let all: PortSet
        @usableFromInline let low: PortSet
        @usableFromInline let high: PortSet
        init(all: PortSet, low: PortSet, high: PortSet) {
            self.all = all
            self.low = low
            self.high = high
        }
    }

    @usableFromInline let sets: Sets
    /// Every port (or identifier) this allocator may hand out.
    public var ports: PortSet { sets.all }
    /// Keep 0-1023 and 1024-65535 apart (every protocol but ICMP, whose identifiers have no ranges).
    public let keepsRange: Bool
    public let preservesPort: Bool
    public let preservesParity: Bool
    public let maxAttempts: Int
    @usableFromInline let seed: UInt64

    public init(ports: PortSet, keepsRange: Bool, preservesPort: Bool, preservesParity: Bool, maxAttempts: Int, seed: UInt64) {
        let (low, high) = keepsRange ? ports.split() : (PortSet(ranges: []), PortSet(ranges: []))
        sets = Sets(all: ports, low: low, high: high)
        self.keepsRange = keepsRange
        self.preservesPort = preservesPort
        self.preservesParity = preservesParity
        self.maxAttempts = max(1, maxAttempts)
        self.seed = seed ^ 0x6056
    }

    /// A free port on `address` for a flow whose own port is `preferred`, or nil when the attempts ran out.
    /// `keyA`/`keyB` are what the RFC 6056 hash is taken over (the caller's flow or host identity).
    /// Inline it into one engine function that is not itself inlined into the pool-address loop (there
    /// the compiler hoists its work out of the loop, which costs when the first address has a port, the
    /// common case), and call it from one place: that function is then as fast as the engines' own
    /// allocators were (callgrind).
    @inlinable @inline(__always)
    public func allocate(proto: UInt8, address: UInt32, preferred: UInt16, keyA: UInt64, keyB: UInt64,
                         probe: EndpointProbe) -> UInt16? {
        let s = sets
        if keepsRange && proto != IPProtocol.icmp {
            if preferred < 1024 {
                if s.low.count > 0 { return pick(in: s.low, proto: proto, address: address, preferred: preferred, keyA: keyA, keyB: keyB, probe: probe) }
            } else if s.high.count > 0 {
                return pick(in: s.high, proto: proto, address: address, preferred: preferred, keyA: keyA, keyB: keyB, probe: probe)
            }
        }
        return pick(in: s.all, proto: proto, address: address, preferred: preferred, keyA: keyA, keyB: keyB, probe: probe)
    }

    @inlinable @inline(__always)
    func pick(in set: borrowing PortSet, proto: UInt8, address: UInt32, preferred: UInt16, keyA: UInt64, keyB: UInt64,
              probe: EndpointProbe) -> UInt16? {
        if preservesPort && preferred != 0 && set.contains(preferred)
            && probe.lookup(proto: proto, outsideAddress: address, outsidePort: preferred) == 0 {
            return preferred
        }
        let count = set.count
        guard count > 0 else { return nil }
        let offset = Int(KeyHash.hash(keyA, keyB, seed: seed) % UInt32(count))
        let attempts = min(count, maxAttempts)
        let parity = preservesParity ? Int(preferred & 1) : -1
        var tried = 0, i = 0
        while tried < attempts && i < count {
            var index = offset + i
            if index >= count { index -= count }
            let port = set.port(at: index)
            i += 1
            if parity >= 0 && Int(port & 1) != parity { continue }
            tried += 1
            if probe.lookup(proto: proto, outsideAddress: address, outsidePort: port) == 0 { return port }
        }
        return nil
    }
}
