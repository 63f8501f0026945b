import NATCore
import NATWire

/// How several packet threads split one NAT44 (`[tun] queues = N`, one TUN queue per thread): each thread
/// owns one engine, and each engine owns a disjoint slice of the outside ports (and ICMP identifiers).
///
/// - Every configured port range (or MAP-E port set) is cut into N slices by index, the ports below 1024
///   and those from 1024 up separately, so every shard can keep a privileged source port privileged.
/// - A port forward goes to the shard that owns its outside port (a range is split where ownership
///   changes); ports outside the dynamic set are owned by blocks of 65536/N port numbers.
/// - Session limits (`max_sessions`, the host table) are divided between the shards; per-host limits
///   are not, as each inside host is handled by one shard.
///
/// The kernel spreads packets over the queues by a flow hash, so a thread often reads packets another
/// shard owns: ``ShardRouter`` says which. (Once a flow has been written back by its owner, the TUN
/// device's flow table steers both of its directions to the owner's queue.)
public struct ShardPlan: Sendable {
    public let count: Int
    /// One engine configuration per shard.
    public let configurations: [NAPT44Configuration]
    /// The owner of every outside port number (65536 entries).
    public let portOwner: [UInt8]

    /// Splits `c` over `n` shards; refuses a port set too small to give every shard a port.
    public init(_ c: NAPT44Configuration, shards n: Int) throws(ConfigurationError) {
        precondition(n >= 1 && n <= 64)
        count = n
        guard n > 1 else {
            configurations = [c]
            portOwner = [UInt8](repeating: 0, count: 65536)
            return
        }
        let (low, high) = c.ports.split()
        var slices: [[ClosedRange<UInt16>]] = []
        for i in 0..<n {
            let r = Self.slice(low, i, of: n) + Self.slice(high, i, of: n)
            guard !r.isEmpty else {
                throw ConfigurationError(key: "ports", problem: "\(c.ports.count) ports cannot be shared by \(n) queues: give more ports or fewer queues")
            }
            slices.append(r)
        }
        var owner = [UInt8](repeating: 0, count: 65536)
        for p in 0..<65536 { owner[p] = UInt8(p * n >> 16) }
        for (i, rs) in slices.enumerated() {
            for r in rs { for p in r { owner[Int(p)] = UInt8(i) } }
        }
        let seed = c.hashSeed ?? UInt64.random(in: 1...UInt64.max)
        var configs: [NAPT44Configuration] = []
        for i in 0..<n {
            var s = c
            s.ports = PortSet(ranges: slices[i])
            s.forwards = []
            s.maxSessions = max(1, (c.maxSessions + n - 1) / n)
            s.maxHosts = c.maxHosts.map { max(1, ($0 + n - 1) / n) }
            s.hashSeed = seed
            configs.append(s)
        }
        for f in c.forwards {
            var start = f.outsidePorts.lowerBound
            while true {
                let o = owner[Int(start)]
                var end = start
                while end < f.outsidePorts.upperBound && owner[Int(end) + 1] == o { end += 1 }
                configs[Int(o)].forwards.append(PortForward(
                    proto: f.proto, outsideAddress: f.outsideAddress, outsidePorts: start...end, insideAddress: f.insideAddress,
                    insidePort: f.insidePort &+ (start &- f.outsidePorts.lowerBound), tenant: f.tenant, expires: f.expires))
                if end == f.outsidePorts.upperBound { break }
                start = end + 1
            }
        }
        configurations = configs
        portOwner = owner
    }

    /// The ports with indices [i·count/n, (i+1)·count/n) of `set`, as ranges.
    static func slice(_ set: PortSet, _ i: Int, of n: Int) -> [ClosedRange<UInt16>] {
        let lo = set.count * i / n, hi = set.count * (i + 1) / n
        guard hi > lo else { return [] }
        var out: [ClosedRange<UInt16>] = []
        var index = 0
        for r in set.ranges {
            let len = Int(r.upperBound) - Int(r.lowerBound) + 1
            let a = max(lo, index), b = min(hi, index + len)
            if a < b { out.append(UInt16(Int(r.lowerBound) + a - index)...UInt16(Int(r.lowerBound) + b - 1 - index)) }
            index += len
        }
        return out
    }
}

/// Which shard owns a packet, from its headers alone; immutable and shared by the packet threads.
///
/// - Outbound (source in an inside prefix): the shard of the inside host, by a hash of (tenant, address)
///   (so per-host limits and paired pooling stay in one shard), except that a forward's inside endpoint
///   goes to the forward's shard (its replies use the forward's mapping), and an ICMP error about a
///   packet delivered through a forward goes there too.
/// - Inbound (destination one of our outside addresses): the owner of the destination port (TCP, UDP),
///   identifier (ICMP queries) or, for ICMP errors, the source port or identifier of the quoted packet
///   (the one we sent); a 1:1 address goes to the shard of its inside host; other protocols to shard 0.
/// - Non-first fragments carry no ports: the thread that routed the first fragment remembers its owner
///   (every fragment of a datagram hashes to the same TUN queue); see ``FragmentOwners``.
public final class ShardRouter: @unchecked Sendable {
    public enum Kind: UInt8 {
        case outbound = 1
        case inbound = 2
        /// Translated outbound already; the inbound half of hairpinning is left.
        case hairpin = 3
        /// Neither: the engine drops it (and counts why).
        case other = 4
    }

    public let count: Int
    let portOwner: UnsafeMutablePointer<UInt8>
    let insideNets: IPv4PrefixMatcher
    let outsideNets: IPv4PrefixMatcher
    /// 1:1 NAT: outside address << 32 | inside address (tenant 0), scanned linearly (usually none).
    let staticPairs: UnsafeMutablePointer<UInt64>
    let staticCount: Int
    /// Forward inside endpoints: proto << 48 | address << 16 | port → shard.
    let forwardInside: [UInt64: UInt8]
    public let hairpinning: Bool

    public init(plan: ShardPlan, configuration c: NAPT44Configuration) {
        count = plan.count
        portOwner = .allocate(capacity: 65536)
        portOwner.initialize(from: plan.portOwner, count: 65536)
        insideNets = c.insidePrefixMatcher
        outsideNets = c.outsideMatcher
        let statics = c.staticNAT.filter { $0.tenant == 0 }
        staticCount = statics.count
        staticPairs = .allocate(capacity: max(1, statics.count))
        for (i, s) in statics.enumerated() { staticPairs[i] = UInt64(s.outside.rawValue) << 32 | UInt64(s.inside.rawValue) }
        var fi: [UInt64: UInt8] = [:]
        for (shard, sc) in plan.configurations.enumerated() {
            for f in sc.forwards where f.tenant == 0 {
                for k in 0..<f.outsidePorts.count {
                    let key = UInt64(f.proto) << 48 | UInt64(f.insideAddress.rawValue) << 16 | UInt64(f.insidePort &+ UInt16(k))
                    if fi[key] == nil { fi[key] = UInt8(shard) }
                }
            }
        }
        forwardInside = fi
        hairpinning = c.hairpinning
    }

    deinit {
        portOwner.deallocate()
        insideNets.deallocate()
        outsideNets.deallocate()
        staticPairs.deallocate()
    }

    @inline(__always)
    func isInside(_ a: UInt32) -> Bool { insideNets.contains(a) }

    @inline(__always)
    public func isOutside(_ a: UInt32) -> Bool { outsideNets.contains(a) }

    /// The shard of an inside host.
    @inline(__always)
    public func hostOwner(tenant: UInt32 = 0, _ address: UInt32) -> Int {
        var h = (UInt64(tenant) << 32 | UInt64(address)) &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
        return Int(((h & 0xFFFF_FFFF) &* UInt64(count)) >> 32)
    }

    @inline(__always)
    public func portOwner(_ port: UInt16) -> Int { Int(portOwner[Int(port)]) }

    @inline(__always)
    func forwardOwner(proto: UInt8, address: UInt32, port: UInt16) -> Int? {
        if forwardInside.isEmpty { return nil }
        return forwardInside[UInt64(proto) << 48 | UInt64(address) << 16 | UInt64(port)].map { Int($0) }
    }

    @inline(__always)
    func staticInside(outside: UInt32) -> UInt32? {
        for i in 0..<staticCount where UInt32(truncatingIfNeeded: staticPairs[i] >> 32) == outside {
            return UInt32(truncatingIfNeeded: staticPairs[i])
        }
        return nil
    }

    /// The owner and kind of the IPv4 packet at `p` (`n` bytes); `me` for what it cannot read (the local
    /// engine then drops it with the reason). A later fragment follows the owner `fragments` remembers for
    /// its first fragment (every fragment of a datagram hashes to the same TUN queue, so the thread that
    /// routed the first one routes the rest); one whose first was not seen goes by its addresses.
    @inline(__always)
    public func route(_ p: UnsafeRawPointer, _ n: Int, me: Int, fragments: borrowing FragmentOwners) -> (owner: Int, kind: Kind) {
        guard let ip = IPv4Peek(p, count: n) else { return (me, .other) }
        var (owner, kind) = route(ip, me: me)
        if kind != .other {
            if ip.isLaterFragment {
                if let o = fragments.lookup(ip) { owner = o } else if kind == .inbound { owner = me }
            } else if ip.isFirstOfFragments {
                fragments.record(ip, owner: owner)
            }
        }
        return (owner, kind)
    }

    /// ``route(_:_:me:fragments:)`` without the fragment memory: later fragments stay with `me`.
    @inline(__always)
    public func route(_ p: UnsafeRawPointer, _ n: Int, me: Int) -> (owner: Int, kind: Kind) {
        guard let ip = IPv4Peek(p, count: n) else { return (me, .other) }
        return route(ip, me: me)
    }

    @inline(__always)
    func route(_ ip: IPv4Peek, me: Int) -> (owner: Int, kind: Kind) {
        let src = ip.source
        if isInside(src) {
            if !forwardInside.isEmpty {
                let proto = ip.protocolNumber
                if proto == IPProtocol.tcp || proto == IPProtocol.udp {
                    if let sport = ip.sourcePort, let o = forwardOwner(proto: proto, address: src, port: sport) { return (o, .outbound) }
                } else if let e = ip.quoted, e.count >= IPv4Layout.minimumHeaderLength + 4,
                          e.protocolNumber == IPProtocol.tcp || e.protocolNumber == IPProtocol.udp, let edport = e.destinationPort {
                    // The quoted packet went to the inside host: its destination is the forward's inside endpoint.
                    if let o = forwardOwner(proto: e.protocolNumber, address: e.destination, port: edport) { return (o, .outbound) }
                }
            }
            return (hostOwner(src), .outbound)
        }
        guard isOutside(ip.destination) else { return (me, .other) }
        return (inboundOwner(ip, me: me), .inbound)
    }

    /// The owner of a packet addressed to one of our outside addresses.
    @inline(__always)
    func inboundOwner(_ ip: IPv4Peek, me: Int) -> Int {
        if staticCount > 0, let inside = staticInside(outside: ip.destination) { return hostOwner(inside) }
        if ip.isLaterFragment { return me }
        switch ip.protocolNumber {
        case IPProtocol.tcp, IPProtocol.udp:
            return ip.destinationPort.map(portOwner) ?? me
        case IPProtocol.icmp:
            guard let type = ip.icmpType, ip.hasTransportHeader(ICMPv4Layout.headerLength) else { return me }
            if !ICMPv4Type.isError(type) { return ip.icmpIdentifier.map(portOwner) ?? me }
            // An error about a packet we sent: its source port (or query identifier) is our outside port.
            guard let e = ip.quoted, e.hasTransportHeader(8) else { return me }
            switch e.protocolNumber {
            case IPProtocol.tcp, IPProtocol.udp: return e.sourcePort.map(portOwner) ?? me
            case IPProtocol.icmp: return e.icmpIdentifier.map(portOwner) ?? me
            default: return me
            }
        default:
            return 0
        }
    }

    /// For a packet translated outbound whose new destination is ours: the shard that finishes hairpinning
    /// it; nil when it is not a hairpin (hairpinning off, or the destination is not one of our addresses).
    @inline(__always)
    public func hairpinOwner(_ p: UnsafeRawPointer, _ n: Int, me: Int) -> Int? {
        guard hairpinning, let ip = IPv4Peek(p, count: n), isOutside(ip.destination) else { return nil }
        return inboundOwner(ip, me: me)
    }
}

/// Per thread: the owner chosen for the first fragment of recent datagrams, so their later fragments
/// (which carry no ports) follow it. Direct-mapped, 1024 entries; a later fragment whose first fragment
/// was not seen (reordered, or evicted) goes by the address rules (inside host), or stays local.
public struct FragmentOwners: ~Copyable {
    let keys: UnsafeMutablePointer<UInt64>
    let owners: UnsafeMutablePointer<UInt8>
    static let size = 1024

    public init() {
        keys = .allocate(capacity: Self.size)
        keys.initialize(repeating: 0, count: Self.size)
        owners = .allocate(capacity: Self.size)
        owners.initialize(repeating: 0, count: Self.size)
    }

    deinit {
        keys.deallocate()
        owners.deallocate()
    }

    @inline(__always)
    static func key(_ ip: IPv4Peek) -> UInt64 {
        let k = ip.fragmentKey
        var h = k.addresses &* 0x9E37_79B9_7F4A_7C15 ^ (UInt64(k.identification) << 8 | UInt64(k.protocolNumber)) &* 0xC2B2_AE3D_27D4_EB4F
        h ^= h >> 31
        return h | 1
    }

    @inline(__always)
    public func record(_ ip: IPv4Peek, owner: Int) {
        let k = Self.key(ip)
        let i = Int(k & UInt64(Self.size - 1))
        keys[i] = k
        owners[i] = UInt8(owner)
    }

    @inline(__always)
    public func lookup(_ ip: IPv4Peek) -> Int? {
        let k = Self.key(ip)
        let i = Int(k & UInt64(Self.size - 1))
        return keys[i] == k ? Int(owners[i]) : nil
    }
}
