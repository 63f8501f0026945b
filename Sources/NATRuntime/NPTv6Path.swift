import NATCore
import NATWire
import NPTv6

/// What a packet thread needs to build its NPTv6: the translations, and the NAT64's IPv6 prefix when the
/// daemon has one (a packet from an inside host to that prefix is the NAT64's, not NPTv6's).
public struct NPTv6Setup: Sendable {
    public var configurations: [NPTv6Configuration]
    public var nat64Prefix: IPv6Prefix?
    /// No NAT44 and no NAT64 in this daemon: every packet is NPTv6's (and counted as a drop when it is
    /// not NPTv6 traffic).
    public var claimsAll: Bool

    public init(configurations: [NPTv6Configuration], nat64Prefix: IPv6Prefix? = nil, claimsAll: Bool = false) {
        self.configurations = configurations
        self.nat64Prefix = nat64Prefix
        self.claimsAll = claimsAll
    }

    public init(_ s: NPTv6Settings, nat64: NAT64Settings?, nat44: Bool) {
        self.init(configurations: s.translations.map(\.configuration),
                  nat64Prefix: nat64.flatMap { $0.usesPrefix ? $0.prefix : nil },
                  claimsAll: nat64 == nil && !nat44)
    }
}

/// The NPTv6 of one packet thread (RFC 6296): claims IPv6 packets from an inside prefix (outbound) or to
/// an outside prefix (inbound) and translates them in place with the translator of that prefix pair.
/// Stateless: any thread may take any packet. Nothing allocates per packet.
///
/// Hop Limit: as the NAPT44 path does with the TTL, the translation is not a hop of its own: the kernel
/// decrements the Hop Limit when it forwards the packet into the TUN device and again when it forwards
/// the translation out, and sends ICMPv6 Time Exceeded itself (which, addressed to an outside address of
/// an inside host, comes back through the TUN device and is translated like any ICMPv6 error).
struct NPTv6Path {
    var translators: [NPTv6Translator]
    /// The upper 64 bits and mask of each translator's inside and outside prefix (at most /64).
    let insideHigh: [UInt64]
    let outsideHigh: [UInt64]
    let mask: [UInt64]
    let nat64Prefix: IPv6Prefix?
    let claimsAll: Bool
    /// Packets the runtime drops before a translator sees them (link scope, not NPTv6 traffic with
    /// nothing else to take it, bad offload headers).
    var runtime = Counters()
    /// The kernel's own link-scope packets on the TUN device (router solicitations, MLD): not translated.
    var ignoredLinkScope: UInt64 = 0

    init(_ s: NPTv6Setup) throws(ConfigurationError) {
        var t: [NPTv6Translator] = []
        for c in s.configurations { t.append(try NPTv6Translator(configuration: c)) }
        translators = t
        insideHigh = s.configurations.map(\.insidePrefix.address.high)
        outsideHigh = s.configurations.map(\.outsidePrefix.address.high)
        mask = s.configurations.map { IPv6Prefix.mask($0.insidePrefix.length).0 }
        nat64Prefix = s.nat64Prefix
        claimsAll = s.claimsAll
    }

    /// The translator for this packet: the one whose inside prefix holds the source (unless the
    /// destination is the NAT64 prefix), or whose outside prefix holds the destination; -1 for none.
    @inline(__always)
    func owner(_ p: UnsafeRawPointer, _ n: Int) -> Int {
        guard let (source, destination) = IPPeek.ipv6Addresses(p, count: n) else { return -1 }
        for i in 0..<translators.count where destination.high & mask[i] == outsideHigh[i] { return i }
        if let nat64Prefix, nat64Prefix.contains(destination) { return -1 }
        for i in 0..<translators.count where source.high & mask[i] == insideHigh[i] { return i }
        return -1
    }

    /// Translates the packet in place with translator `i`; whether it is to be sent on.
    @inline(__always)
    mutating func process(_ i: Int, _ packet: UnsafeMutableRawBufferPointer, now: Timestamp) -> Bool {
        translators[i].process(packet, now: now).isForwarded
    }

    /// A packet no engine claimed, in a daemon with NPTv6 alone: counted, never sent.
    mutating func unclaimed(_ p: UnsafeRawPointer, _ n: Int) {
        if IPPeek.isIPv6LinkScope(p, count: n) { ignoredLinkScope &+= 1; return }
        runtime.recordDrop(IPPeek.version(p, count: n) == 6 ? .notNATTraffic : .badIPVersion)
    }

    /// Every translator's counters and the runtime's drops, summed.
    var counters: Counters {
        var c = runtime
        for t in translators { c += t.counters }
        return c
    }

    func dumpLines(queue: Int) -> [String] {
        let c = counters
        var drops: [String] = []
        for r in DropReason.allCases where c.dropped(r) > 0 { drops.append("\(r.name)=\(c.dropped(r))") }
        var lines = ["nptv6 counters queue=\(queue) outbound=\(c.outboundPackets) inbound=\(c.inboundPackets) icmp_errors_translated=\(c.icmpErrorsTranslated) ignored_link_scope=\(ignoredLinkScope) dropped=[\(drops.joined(separator: " "))]"]
        for t in translators {
            lines.append("nptv6 translation \(t.configuration.insidePrefix) <-> \(t.configuration.outsidePrefix) outbound=\(t.counters.outboundPackets) inbound=\(t.counters.inboundPackets)")
        }
        return lines
    }
}

extension QueueIO where Device: ~Copyable {
    /// An NPTv6 packet: translated in place and written back behind its own virtio-net header. The
    /// translation is checksum-neutral (RFC 6296 §3.2: the addresses' one's complement sum does not
    /// change), so a partial checksum (the pseudo-header sum in the checksum field) stays right and a GSO
    /// super-packet is sent on whole: the kernel segments it and completes each segment's checksum.
    @inline(__always)
    mutating func handleNPTv6(_ p: UnsafeMutableRawPointer, _ n: Int, translator i: Int, nptv6: inout NPTv6Path, now: Timestamp) {
        let packet = UnsafeMutableRawBufferPointer(start: p, count: n)
        guard nptv6.process(i, packet, now: now) else { return }
        if vnet > 0 {
            VirtioNetHeader.keepOnlyNeedsChecksum(at: p - vnet)
            if VirtioNetHeader(loading: p - vnet).isSegmentationOffload { io.offloaded &+= 1 }
        }
        writeFramed(p, n)
    }
}
