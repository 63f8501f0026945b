/// Why a packet was not forwarded. Every drop has one; its `name` is the metrics label
/// (`swiftnat_dropped_packets_total{reason="no_mapping"}`). Thrown with typed throws: no boxing.
/// At most 64 reasons (the inline counter array's size).
public enum DropReason: UInt8, Error, Sendable, CaseIterable, CustomStringConvertible {
    // Malformed input.
    case truncated
    case badIPVersion
    case badIPHeaderLength
    case badIPLength
    case badIPChecksum
    case badTransportHeader
    case badICMPChecksum
    case malformedICMPError
    case badEmbeddedPacket
    // Not ours.
    case notNATTraffic
    case unsupportedProtocol
    case unsupportedICMPType
    case icmpErrorAboutICMPError
    // State.
    case noMapping
    case filtered
    case noSessionForICMPError
    case unsolicitedSYN
    case tcpNotSYN
    case portInHold
    // Resources.
    case sessionTableFull
    case mappingTableFull
    case hostTableFull
    case hostSessionLimit
    case hostPortLimit
    case portsExhausted
    // Fragments.
    case fragmentTableFull
    case fragmentBufferFull
    case fragmentTimeout
    case fragmentTooLarge
    case fragmentOverlap
    case ttlExceeded
    // Output.
    case icmpRateLimited
    case outboxFull
    // NAT64 / SIIT (RFC 7915, RFC 6052). Appended: raw values above stay stable.
    /// An IPv6 extension-header chain that runs past the packet, repeats hop-by-hop, or is too long.
    case badExtensionHeaders
    /// RFC 7915 §5.1: an extension header (other than ESP) after the Fragment header.
    case extensionHeaderAfterFragment
    /// RFC 7915 §5.1: a Routing header with Segments Left ≠ 0 (ICMPv6 Parameter Problem sent).
    case segmentsLeftNonZero
    /// RFC 7915 §4.1: an unexpired IPv4 Loose/Strict Source Route option (ICMPv4 3/5 sent).
    case sourceRouteRefused
    /// RFC 7915 §4.1/§5.1: too big for the next hop and may not be fragmented (ICMP error sent).
    case packetTooBig
    /// RFC 7915 §4.5: IPv4 UDP without a checksum that the translator may not or cannot fill in.
    case udpChecksumZero
    /// RFC 7915 §1.2: fragmented ICMP and ICMPv6 packets are not translated.
    case fragmentedICMP
    /// RFC 7915 §4.2/§5.2: an ICMP type, code or Parameter Problem pointer with no counterpart.
    case untranslatableICMP
    /// RFC 6052 §3.1: the Well-Known Prefix may not carry a non-global IPv4 address.
    case nonGlobalIPv4Address
    /// The caller's output buffer is too small for the translated packet.
    case outputTooSmall
    // NAT64 address pool (protomask's 1:1 mode).
    /// Every pool address is reserved by another IPv6 host and none has been idle long enough to reclaim.
    case poolExhausted
    // Runtime (TUN device, packet threads).
    /// A virtio-net header (TUN offloads) that does not fit its packet or asks for an unknown offload.
    case badOffloadHeader
    /// A packet for another packet thread found that thread's hand-off queue full.
    case handoffQueueFull
    // Stateful NAT64 (RFC 6146).
    /// A later fragment whose first fragment was not translated (not seen, or its state expired): it
    /// carries no ports to find its session by, and the NAT64 does not reassemble.
    case fragmentBeforeFirst
    // NPTv6 (RFC 6296).
    /// RFC 6296 §3.4-§3.7: no 16-bit word can carry the checksum-neutral adjustment (a subnet ID of 0xFFFF
    /// with a prefix up to /48, an all-ones IID with a longer one): the address is not translated.
    case adjustmentWordAllOnes
    // Load (RFC 6888 REQ-4's spirit).
    /// An inside host opened new sessions faster than `limits.new_sessions_per_second` (beyond its burst):
    /// the packet that would have opened one more is dropped, silently.
    case hostNewSessionRate
    // Application-level gateways (issue 15).
    /// An expected connection arrived but its outside port had meanwhile been mapped to another flow.
    case expectedPortTaken
    /// A helper's rewritten payload does not fit the engine's output buffer: the segment is dropped
    /// (the sender retransmits; forwarding it unrewritten would announce an inside address).
    case helperRewriteTooLarge

    /// The snake_case metrics label.
    public var name: String {
        switch self {
        case .truncated: "truncated"
        case .badIPVersion: "bad_ip_version"
        case .badIPHeaderLength: "bad_ip_header_length"
        case .badIPLength: "bad_ip_length"
        case .badIPChecksum: "bad_ip_checksum"
        case .badTransportHeader: "bad_transport_header"
        case .badICMPChecksum: "bad_icmp_checksum"
        case .malformedICMPError: "malformed_icmp_error"
        case .badEmbeddedPacket: "bad_embedded_packet"
        case .notNATTraffic: "not_nat_traffic"
        case .unsupportedProtocol: "unsupported_protocol"
        case .unsupportedICMPType: "unsupported_icmp_type"
        case .icmpErrorAboutICMPError: "icmp_error_about_icmp_error"
        case .noMapping: "no_mapping"
        case .filtered: "filtered"
        case .noSessionForICMPError: "no_session_for_icmp_error"
        case .unsolicitedSYN: "unsolicited_syn"
        case .tcpNotSYN: "tcp_not_syn"
        case .portInHold: "port_in_hold"
        case .sessionTableFull: "session_table_full"
        case .mappingTableFull: "mapping_table_full"
        case .hostTableFull: "host_table_full"
        case .hostSessionLimit: "host_session_limit"
        case .hostPortLimit: "host_port_limit"
        case .portsExhausted: "ports_exhausted"
        case .fragmentTableFull: "fragment_table_full"
        case .fragmentBufferFull: "fragment_buffer_full"
        case .fragmentTimeout: "fragment_timeout"
        case .fragmentTooLarge: "fragment_too_large"
        case .fragmentOverlap: "fragment_overlap"
        case .ttlExceeded: "ttl_exceeded"
        case .icmpRateLimited: "icmp_rate_limited"
        case .outboxFull: "outbox_full"
        case .badExtensionHeaders: "bad_extension_headers"
        case .extensionHeaderAfterFragment: "extension_header_after_fragment"
        case .segmentsLeftNonZero: "segments_left_non_zero"
        case .sourceRouteRefused: "source_route_refused"
        case .packetTooBig: "packet_too_big"
        case .udpChecksumZero: "udp_checksum_zero"
        case .fragmentedICMP: "fragmented_icmp"
        case .untranslatableICMP: "untranslatable_icmp"
        case .nonGlobalIPv4Address: "non_global_ipv4_address"
        case .outputTooSmall: "output_too_small"
        case .poolExhausted: "pool_exhausted"
        case .badOffloadHeader: "bad_offload_header"
        case .handoffQueueFull: "handoff_queue_full"
        case .fragmentBeforeFirst: "fragment_before_first"
        case .adjustmentWordAllOnes: "adjustment_word_all_ones"
        case .hostNewSessionRate: "host_new_session_rate"
        case .expectedPortTaken: "expected_port_taken"
        case .helperRewriteTooLarge: "helper_rewrite_too_large"
        }
    }

    public var description: String { name }
}

/// What the engine decided for one packet.
public enum Verdict: Equatable, Sendable {
    /// Rewritten in place; send it toward the outside.
    case toOutside
    /// Rewritten in place; deliver it to the inside network of `tenant` (inbound, or hairpinned).
    case toInside(tenant: UInt32)
    /// Kept by the engine for now (an out-of-order fragment, an unsolicited SYN held for 6 s), or replaced
    /// by a rewritten copy in the outbox (a helper resized its payload, issue 15): nothing to send.
    case held
    /// Not forwarded, for this reason; counted.
    case drop(DropReason)

    @inlinable public var isForwarded: Bool {
        switch self {
        case .toOutside, .toInside: true
        default: false
        }
    }
}

/// Per-reason drop counters and forwarding counters, kept by each engine for itself (no atomics on
/// the packet path); a metrics scrape sums them across shards.
public struct Counters: Sendable, Equatable {
    public var outboundPackets: UInt64 = 0
    public var inboundPackets: UInt64 = 0
    public var hairpinnedPackets: UInt64 = 0
    public var outboundBytes: UInt64 = 0
    public var inboundBytes: UInt64 = 0
    public var sessionsCreated: UInt64 = 0
    public var sessionsExpired: UInt64 = 0
    public var mappingsCreated: UInt64 = 0
    public var mappingsFreed: UInt64 = 0
    public var icmpErrorsTranslated: UInt64 = 0
    public var icmpErrorsGenerated: UInt64 = 0
    public var fragmentsTranslated: UInt64 = 0
    public var fragmentsHeld: UInt64 = 0
    public var synsHeld: UInt64 = 0
    /// Application-level gateways (issue 15): expectations announced, consumed by a connection, refused
    /// (over the per-session or total limit), payloads rewritten, and commands split over segments
    /// (forwarded unchanged: see ``DropReason`` for what is dropped).
    public var expectationsCreated: UInt64 = 0
    public var expectationsUsed: UInt64 = 0
    public var expectationsRefused: UInt64 = 0
    public var helperRewrites: UInt64 = 0
    public var helperSplitCommands: UInt64 = 0
    /// Per-reason drop counts, stored inline (a plain value: copying `Counters` for a scrape never makes
    /// the next drop allocate).
    @usableFromInline var drops = InlineArray<64, UInt64>(repeating: 0)

    public init() {}

    @inlinable @inline(__always)
    public mutating func recordDrop(_ r: DropReason) { drops[Int(r.rawValue)] &+= 1 }

    public func dropped(_ r: DropReason) -> UInt64 { drops[Int(r.rawValue)] }
    public var totalDropped: UInt64 {
        var t: UInt64 = 0
        for r in DropReason.allCases { t &+= drops[Int(r.rawValue)] }
        return t
    }

    public static func == (a: Counters, b: Counters) -> Bool {
        a.outboundPackets == b.outboundPackets && a.inboundPackets == b.inboundPackets
            && a.hairpinnedPackets == b.hairpinnedPackets && a.sessionsCreated == b.sessionsCreated
            && a.sessionsExpired == b.sessionsExpired && a.outboundBytes == b.outboundBytes && a.inboundBytes == b.inboundBytes
            && a.mappingsCreated == b.mappingsCreated && a.mappingsFreed == b.mappingsFreed
            && a.icmpErrorsTranslated == b.icmpErrorsTranslated && a.icmpErrorsGenerated == b.icmpErrorsGenerated
            && a.fragmentsTranslated == b.fragmentsTranslated && a.fragmentsHeld == b.fragmentsHeld && a.synsHeld == b.synsHeld
            && a.expectationsCreated == b.expectationsCreated && a.expectationsUsed == b.expectationsUsed
            && a.expectationsRefused == b.expectationsRefused && a.helperRewrites == b.helperRewrites
            && a.helperSplitCommands == b.helperSplitCommands
            && DropReason.allCases.allSatisfy { a.dropped($0) == b.dropped($0) }
    }

    public static func += (a: inout Counters, b: Counters) {
        a.outboundPackets += b.outboundPackets
        a.inboundPackets += b.inboundPackets
        a.hairpinnedPackets += b.hairpinnedPackets
        a.outboundBytes += b.outboundBytes
        a.inboundBytes += b.inboundBytes
        a.sessionsCreated += b.sessionsCreated
        a.sessionsExpired += b.sessionsExpired
        a.mappingsCreated += b.mappingsCreated
        a.mappingsFreed += b.mappingsFreed
        a.icmpErrorsTranslated += b.icmpErrorsTranslated
        a.icmpErrorsGenerated += b.icmpErrorsGenerated
        a.fragmentsTranslated += b.fragmentsTranslated
        a.fragmentsHeld += b.fragmentsHeld
        a.synsHeld += b.synsHeld
        a.expectationsCreated += b.expectationsCreated
        a.expectationsUsed += b.expectationsUsed
        a.expectationsRefused += b.expectationsRefused
        a.helperRewrites += b.helperRewrites
        a.helperSplitCommands += b.helperSplitCommands
        for r in DropReason.allCases { a.drops[Int(r.rawValue)] &+= b.drops[Int(r.rawValue)] }
    }
}
