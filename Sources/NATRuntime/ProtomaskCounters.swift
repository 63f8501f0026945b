import NATWire

/// What protomask's metrics count, kept by the NAT64 path of one packet thread: packets by protocol
/// (ipv4, ipv6, tcp, udp, icmp, icmpv6) and status (translated, dropped), and ICMP/ICMPv6 packets
/// received by type and code (`protomask_packets`, `protomask_icmp_packets_recv`). Preallocated; a
/// packet costs a few increments. A GSO super-packet counts once.
struct ProtomaskCounters: ~Copyable {
    /// [protocol index][status] (status 0 translated, 1 dropped).
    private var packets = InlineArray<12, UInt64>(repeating: 0)
    /// [family (0 ICMP, 1 ICMPv6)][type][code]; codes from 15 up share the last slot.
    private let icmp: UnsafeMutablePointer<UInt64>
    static let codes = 16

    static let protocolNames = ["ipv4", "ipv6", "tcp", "udp", "icmp", "icmpv6"]

    init() {
        icmp = .allocate(capacity: 2 * 256 * Self.codes)
        icmp.initialize(repeating: 0, count: 2 * 256 * Self.codes)
    }

    deinit { icmp.deallocate() }

    /// Counts one packet (classified before translation) with its outcome.
    @inline(__always)
    mutating func record(_ c: (version: UInt8, transport: UInt8, icmp: (type: UInt8, code: UInt8)?), translated: Bool) {
        let status = translated ? 0 : 1
        if c.version == 4 { packets[0 * 2 + status] &+= 1 } else if c.version == 6 { packets[1 * 2 + status] &+= 1 }
        let t: Int
        switch c.transport {
        case IPProtocol.tcp: t = 2
        case IPProtocol.udp: t = 3
        case IPProtocol.icmp: t = 4
        case IPProtocol.icmpv6: t = 5
        default: return
        }
        packets[t * 2 + status] &+= 1
        if let i = c.icmp {
            let family = c.transport == IPProtocol.icmpv6 ? 1 : 0
            icmp[(family * 256 + Int(i.type)) * Self.codes + min(Int(i.code), Self.codes - 1)] &+= 1
        }
    }

    /// (protocol, status, count) for every non-zero counter.
    var packetCounts: [(String, String, UInt64)] {
        var out: [(String, String, UInt64)] = []
        for (i, name) in Self.protocolNames.enumerated() {
            for (s, status) in ["translated", "dropped"].enumerated() where packets[i * 2 + s] > 0 {
                out.append((name, status, packets[i * 2 + s]))
            }
        }
        return out
    }

    /// ICMP packets received, by (icmpv6?, type, code), non-zero only.
    var icmpCounts: [QueueSnapshot.ICMPKey: UInt64] {
        var out: [QueueSnapshot.ICMPKey: UInt64] = [:]
        for i in 0..<(2 * 256 * Self.codes) where icmp[i] > 0 {
            let family = i / (256 * Self.codes), type = i / Self.codes % 256, code = i % Self.codes
            out[QueueSnapshot.ICMPKey(icmpv6: family == 1, type: UInt8(type), code: UInt8(code))] = icmp[i]
        }
        return out
    }
}
