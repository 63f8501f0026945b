import NATCore
import NATWire

/// What kind of packet a mapping is asked about; stateful mappings (RFC 6146) treat each differently.
public enum NAT64PacketKind: UInt8, Sendable, Hashable {
    /// TCP with its ports and flags (first fragment or unfragmented).
    case tcp
    /// UDP with its ports (first fragment or unfragmented).
    case udp
    /// An ICMP echo request (RFC 7915 §4.2/§5.2); the identifier is in ``NAT64Ports/source``.
    case icmpEchoRequest
    /// An ICMP echo reply; the identifier is in ``NAT64Ports/destination`` (the requester's "port").
    case icmpEchoReply
    /// An ICMP error message (the outer packet); see ``NAT64Mapping`` for the order of calls.
    case icmpError
    /// A second or later fragment (no transport header), or a protocol without ports.
    case other
}

/// Ports (or an ICMP echo identifier) of a packet, as a mapping sees and may rewrite them.
public struct NAT64Ports: Sendable, Hashable {
    public var source: UInt16
    public var destination: UInt16
    @inlinable public init(source: UInt16 = 0, destination: UInt16 = 0) {
        self.source = source
        self.destination = destination
    }
}

/// The transport-layer facts of a packet handed to a mapping: enough for stateless SIIT (which looks only
/// at addresses), for protomask's 1:1 pool (addresses and time) and for stateful NAPT64 (RFC 6146 §3.4:
/// the 5-tuple, TCP flags, the fragment identification and `now`).
public struct NAT64Transport: Sendable, Hashable {
    public var kind: NAT64PacketKind
    /// The upper-layer protocol number as it is on the input side (6, 17, 1 or 58, …).
    public var protocolNumber: UInt8
    /// Ports for TCP and UDP; the identifier for echo (see ``NAT64PacketKind``); zero otherwise.
    public var ports: NAT64Ports
    /// TCP control bits (RFC 9293 §3.1) for ``NAT64PacketKind/tcp``; empty otherwise.
    public var tcpFlags: TCPFlags
    /// Whether the packet is a fragment (any, including the first).
    public var isFragment: Bool
    /// The fragment identification (IPv4: 16 bits; IPv6: 32 bits); zero when not a fragment.
    public var fragmentIdentification: UInt32

    @inlinable
    public init(kind: NAT64PacketKind, protocolNumber: UInt8, ports: NAT64Ports = NAT64Ports(),
                tcpFlags: TCPFlags = [], isFragment: Bool = false, fragmentIdentification: UInt32 = 0) {
        self.kind = kind
        self.protocolNumber = protocolNumber
        self.ports = ports
        self.tcpFlags = tcpFlags
        self.isFragment = isFragment
        self.fragmentIdentification = fragmentIdentification
    }
}

/// The outcome of mapping an IPv6 packet to IPv4: the new addresses, and the new ports or echo identifier
/// (unchanged by stateless mappings; rewritten by NAPT64, RFC 6146 §3.7).
public struct NAT64Mapped4: Sendable, Hashable {
    public var source: IPv4Address
    public var destination: IPv4Address
    public var ports: NAT64Ports
    @inlinable public init(source: IPv4Address, destination: IPv4Address, ports: NAT64Ports) {
        self.source = source
        self.destination = destination
        self.ports = ports
    }
}

/// The outcome of mapping an IPv4 packet to IPv6.
public struct NAT64Mapped6: Sendable, Hashable {
    public var source: IPv6Address
    public var destination: IPv6Address
    public var ports: NAT64Ports
    @inlinable public init(source: IPv6Address, destination: IPv6Address, ports: NAT64Ports) {
        self.source = source
        self.destination = destination
        self.ports = ports
    }
}

/// How a ``NAT64Translator`` maps addresses (and, for stateful translation, ports) between IPv6 and
/// IPv4. RFC 7915 §6 leaves the algorithm to other documents; this protocol is where they plug in:
///
/// - ``SIITMapping``: stateless SIIT with an RFC 6052 prefix, the RFC 7757 Explicit Address Mapping table
///   and an RFC 6791 pool for untranslatable ICMP error sources;
/// - protomask's 1:1 pool (each IPv6 source gets a whole IPv4 address from a pool, with idle expiry);
/// - stateful NAPT64 (RFC 6146), which also rewrites ports and echo identifiers, creates sessions from
///   the 5-tuple and TCP flags, and filters.
///
/// The translator calls the requirements once per packet, on the packet thread that owns it (no
/// locks); a mapping may keep state and must not allocate per packet. Every requirement throws a
/// ``DropReason`` that the translator counts (`.noMapping` when there is no mapping, `.filtered` when a
/// stateful mapping refuses, …).
///
/// Directions and roles, with "IPv6 side" = inside and "IPv4 side" = outside (RFC 6146 terms):
///
/// 1. An IPv6 packet: ``map6to4(source:destination:transport:now:)`` gives the IPv4 addresses (and ports).
/// 2. An IPv4 packet: ``map4to6(source:destination:transport:hairpin:now:)`` gives the IPv6 addresses.
/// 3. An ICMP error (RFC 7915 §4.3, §5.3) carries a packet that went the *other* way. The translator
///    first maps that inner packet with ``mapInner6to4(source:destination:transport:now:)`` or
///    ``mapInner4to6(source:destination:transport:hairpin:now:)`` — its source is the remote end and its
///    destination the host the error is sent to, so a stateful mapping looks its session up in reverse —
///    and then the outer packet with `map6to4`/`map4to6` and `transport.kind == .icmpError`. A stateful
///    mapping can use what it found for the inner packet (it is called first) to map the outer one; a
///    stateless one maps an untranslatable outer *source* (a router) to its RFC 6791 address.
/// 4. Hairpinning (RFC 7757 §4.3, RFC 6146 §3.8): after mapping an IPv6 packet to IPv4, the translator asks
///    ``isHairpin(_:ipv6Destination:)`` about the new IPv4 destination (and the IPv6 one it came from).
///    When true, the IPv4 packet is translated back to IPv6 with `hairpin: true`; SIIT then maps the
///    source (and, for an ICMP error, the inner destination) with the RFC 6052 prefix instead of the EAM
///    table.
public protocol NAT64Mapping: ~Copyable {
    /// Maps an IPv6 packet's addresses (and ports) to IPv4 (RFC 7915 §5.1 "Source Address",
    /// "Destination Address"; RFC 6146 §3.5 for stateful translation).
    mutating func map6to4(source: IPv6Address, destination: IPv6Address, transport: NAT64Transport,
                          now: Timestamp) throws(DropReason) -> NAT64Mapped4

    /// Maps an IPv4 packet's addresses (and ports) to IPv6 (RFC 7915 §4.1). `hairpin` is true on the
    /// second pass of a hairpinned packet (RFC 7757 §4.3).
    mutating func map4to6(source: IPv4Address, destination: IPv4Address, transport: NAT64Transport,
                          hairpin: Bool, now: Timestamp) throws(DropReason) -> NAT64Mapped6

    /// Maps the addresses (and ports) of the packet inside an ICMPv6 error to IPv4 (RFC 7915 §5.3). That
    /// packet went from IPv4 to IPv6 earlier: its destination is the IPv6 host the error comes back to.
    mutating func mapInner6to4(source: IPv6Address, destination: IPv6Address, transport: NAT64Transport,
                               now: Timestamp) throws(DropReason) -> NAT64Mapped4

    /// Maps the addresses (and ports) of the packet inside an ICMPv4 error to IPv6 (RFC 7915 §4.3). That
    /// packet went from IPv6 to IPv4 earlier: its source is the IPv4 address of the IPv6 host the error
    /// goes back to.
    mutating func mapInner4to6(source: IPv4Address, destination: IPv4Address, transport: NAT64Transport,
                               hairpin: Bool, now: Timestamp) throws(DropReason) -> NAT64Mapped6

    /// Whether an IPv4 destination that ``map6to4(source:destination:transport:now:)`` produced from
    /// `ipv6Destination` belongs to the translator's own IPv6 side, so that the packet must be translated
    /// back (hairpinned). SIIT: the IPv4 address is in the EAM table and the IPv6 destination is not an EAM
    /// address (it was the RFC 6052 form). NAPT64: the IPv4 address is one of the pool's.
    func isHairpin(_ destination: IPv4Address, ipv6Destination: IPv6Address) -> Bool

    /// What to do with a packet whose translation was refused with `reason` (called by the translator for
    /// every dropped input packet, IPv6 or IPv4, before it counts the drop; the bytes are the input as it
    /// came). RFC 6146 needs two things besides a plain drop: an unsolicited IPv4 SYN is kept for 6 s
    /// (§3.5.2.2; the mapping copies it and answers ``NAT64RefusalAction/held``), and an IPv6 packet for
    /// which no BIB entry or session can be created gets ICMPv6 Destination Unreachable, code 3 (§3.5.1.1,
    /// §3.5.2.2: ``NAT64RefusalAction/unreachable(code:)``). The default drops.
    mutating func refusal(of packet: UnsafeRawBufferPointer, reason: DropReason, now: Timestamp) -> NAT64RefusalAction

    /// Packets the mapping made itself — ICMPv4 Port Unreachable for an unsolicited SYN whose 6 s ran out,
    /// TCP probes of RFC 6146 §3.5.2.2 — taken by ``NAT64Translator/nextOutput()`` after the translator's
    /// own. The bytes are valid until the next call into the mapping. The default has none.
    mutating func nextGeneratedPacket() -> (bytes: UnsafeMutableRawBufferPointer, verdict: Verdict)?

    // MARK: Optional: the established-flow fast path and burst prefetching

    /// Whether the translator should offer packets to ``mapEstablished6to4(source:destination:transport:now:hint:)``
    /// and ``mapEstablished4to6(source:destination:transport:now:hint:)`` first. The default is false.
    static var hasEstablishedFastPath: Bool { get }

    /// The fast path's mapping of an unfragmented TCP or UDP packet from the IPv6 side whose header the
    /// translator has checked (no extension headers, Hop Limit above 1, legal source, fits the IPv4 MTU):
    /// exactly what ``map6to4(source:destination:transport:now:)`` would return and do (a session refreshed,
    /// its TCP state advanced) — or nil, having changed nothing, for anything else: no session yet, an
    /// error, or an IPv4 destination that ``isHairpin(_:ipv6Destination:)`` would send back. The translator
    /// then takes the full path. `hint` is what ``burstPeek(_:count:)`` and ``burstPrefetch(_:stage:)``
    /// computed for this packet (all zero outside a burst); it may be stale and only saves work.
    mutating func mapEstablished6to4(source: IPv6Address, destination: IPv6Address, transport: NAT64Transport,
                                     now: Timestamp, hint: NAT64BurstHint) -> NAT64Mapped4?

    /// As ``mapEstablished6to4(source:destination:transport:now:hint:)`` for an unfragmented TCP or UDP
    /// packet from the IPv4 side (IHL 5, valid header checksum, TTL above 1, neither address martian,
    /// nonzero UDP checksum, fits without fragmentation): what ``map4to6(source:destination:transport:hairpin:now:)``
    /// with `hairpin` false would return and do, or nil having changed nothing.
    mutating func mapEstablished4to6(source: IPv4Address, destination: IPv4Address, transport: NAT64Transport,
                                     now: Timestamp, hint: NAT64BurstHint) -> NAT64Mapped6?

    /// Burst stage 0: reads the packet's key without validating it, computes its first table hash and
    /// prefetches that bucket. Must not change any state. The default does nothing.
    func burstPeek(_ packet: UnsafeRawPointer, count: Int) -> NAT64BurstHint

    /// Burst stages 1...``burstStages``: follows the hint one step further into the tables (reading what the
    /// previous stage prefetched, prefetching the next). Must not change any state.
    func burstPrefetch(_ hint: inout NAT64BurstHint, stage: Int)

    /// How many ``burstPrefetch(_:stage:)`` stages the mapping uses (0: no prefetching).
    static var burstStages: Int { get }
}

/// What a mapping's burst stages found out about one packet ahead of its translation
/// (``NAT64Mapping/burstPeek(_:count:)``): hashes and candidate ids, only hints — a lookup checks every
/// key before it uses a record. All zero: nothing known.
public struct NAT64BurstHint: Sendable {
    /// 0: nothing; 1: a packet from the IPv6 side; 2: a packet from the IPv4 side.
    public var direction: UInt8 = 0
    public var proto: UInt8 = 0
    public var localPort: UInt16 = 0
    public var remotePort: UInt16 = 0
    /// IPv6 side: the host table hash. IPv4 side: the session index hash.
    public var hashA: UInt32 = 0
    /// IPv6 side: the session index hash for ``id`` (when ``id`` is not 0).
    public var hashB: UInt32 = 0
    /// IPv6 side: the host id the stages found. IPv4 side: the first candidate session.
    public var id: UInt32 = 0
    /// IPv6 side: the IPv4 remote address (from the destination under the prefix).
    public var remote: UInt32 = 0
    @inlinable public init() {}
}

/// What the translator does with a packet its mapping refused (``NAT64Mapping/refusal(of:reason:now:)``).
public enum NAT64RefusalAction: Sendable, Hashable {
    /// Drop it (counted under its reason).
    case drop
    /// The mapping kept a copy (an unsolicited SYN): the verdict is ``Verdict/held`` and nothing is counted
    /// as dropped yet.
    case held
    /// Drop it and answer its source with ICMP Destination Unreachable of this code (ICMPv6 type 1 for an
    /// IPv6 packet, from ``NAT64Configuration/ipv6ErrorSource``; ICMPv4 type 3 for an IPv4 one, from
    /// ``NAT64Configuration/ipv4ErrorSource``; not sent without that address, nor about an ICMP error).
    case unreachable(code: UInt8)
}

extension NAT64Mapping where Self: ~Copyable {
    /// Stateless mappings drop.
    @inlinable
    public mutating func refusal(of packet: UnsafeRawBufferPointer, reason: DropReason, now: Timestamp) -> NAT64RefusalAction {
        .drop
    }

    /// Stateless mappings make no packets.
    @inlinable
    public mutating func nextGeneratedPacket() -> (bytes: UnsafeMutableRawBufferPointer, verdict: Verdict)? { nil }

    /// No fast path: every packet takes the full path.
    @inlinable public static var hasEstablishedFastPath: Bool { false }

    @inlinable
    public mutating func mapEstablished6to4(source: IPv6Address, destination: IPv6Address, transport: NAT64Transport,
                                            now: Timestamp, hint: NAT64BurstHint) -> NAT64Mapped4? { nil }

    @inlinable
    public mutating func mapEstablished4to6(source: IPv4Address, destination: IPv4Address, transport: NAT64Transport,
                                            now: Timestamp, hint: NAT64BurstHint) -> NAT64Mapped6? { nil }

    /// No prefetching.
    @inlinable public func burstPeek(_ packet: UnsafeRawPointer, count: Int) -> NAT64BurstHint { NAT64BurstHint() }
    @inlinable public func burstPrefetch(_ hint: inout NAT64BurstHint, stage: Int) {}
    @inlinable public static var burstStages: Int { 0 }
}
