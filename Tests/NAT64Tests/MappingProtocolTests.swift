import Testing
import NATCore
import NATWire
@testable import NAT64

/// The NAT64Mapping contract as stateful mappings will rely on it: a ~Copyable mapping works, ICMP
/// errors map the inner packet first, transports carry ports/identifiers/flags, and rewritten ports and
/// echo identifiers reach the packet with correct checksums.
@Suite struct MappingProtocolTests {
    /// A ~Copyable mapping that rewrites like a NAPT would (source port/identifier + 1000 outbound,
    /// destination port/identifier − 1000 inbound) and records what it was asked.
    struct RecordingMapping: NAT64Mapping, ~Copyable {
        var calls: [String] = []
        var lastTransport: NAT64Transport?
        let prefix = try! NAT64Prefix("64:ff9b::/96", restrictsToGlobalIPv4: false)

        mutating func map6to4(source: IPv6Address, destination: IPv6Address, transport: NAT64Transport,
                              now: Timestamp) throws(DropReason) -> NAT64Mapped4 {
            calls.append("map6to4 \(transport.kind)")
            lastTransport = transport
            guard let d = prefix.extract(destination) else { throw .noMapping }
            var ports = transport.ports
            if transport.kind == .tcp || transport.kind == .udp || transport.kind == .icmpEchoRequest { ports.source &+= 1000 }
            return NAT64Mapped4(source: IPv4Address("198.51.100.99")!, destination: d, ports: ports)
        }
        mutating func map4to6(source: IPv4Address, destination: IPv4Address, transport: NAT64Transport, hairpin: Bool,
                              now: Timestamp) throws(DropReason) -> NAT64Mapped6 {
            calls.append("map4to6 \(transport.kind)")
            lastTransport = transport
            var ports = transport.ports
            if transport.kind == .tcp || transport.kind == .udp || transport.kind == .icmpEchoReply { ports.destination &-= 1000 }
            return NAT64Mapped6(source: prefix.embedUnchecked(source), destination: host6, ports: ports)
        }
        mutating func mapInner6to4(source: IPv6Address, destination: IPv6Address, transport: NAT64Transport,
                                   now: Timestamp) throws(DropReason) -> NAT64Mapped4 {
            calls.append("mapInner6to4 \(transport.kind)")
            guard let s = prefix.extract(source) else { throw .noMapping }
            var ports = transport.ports
            ports.destination &+= 1000
            return NAT64Mapped4(source: s, destination: IPv4Address("198.51.100.99")!, ports: ports)
        }
        mutating func mapInner4to6(source: IPv4Address, destination: IPv4Address, transport: NAT64Transport, hairpin: Bool,
                                   now: Timestamp) throws(DropReason) -> NAT64Mapped6 {
            calls.append("mapInner4to6 \(transport.kind)")
            var ports = transport.ports
            ports.source &-= 1000
            return NAT64Mapped6(source: host6, destination: prefix.embedUnchecked(destination), ports: ports)
        }
        func isHairpin(_ destination: IPv4Address, ipv6Destination: IPv6Address) -> Bool { false }
    }

    func translator() -> NAT64Translator<RecordingMapping> {
        try! NAT64Translator(configuration: translatorConfiguration(), mapping: RecordingMapping())
    }

    func run(_ t: inout NAT64Translator<RecordingMapping>, _ packet: [UInt8]) -> (Verdict, [UInt8]) {
        var p = packet
        let v = t.process(&p, now: .seconds(3))
        return (v, v.isForwarded ? p : [])
    }

    static let nat4 = IPv4Address("198.51.100.99")!

    @Test func portsRewrittenWithCorrectChecksumsBothWays() {
        var t = translator()
        let h = TCPHeader(sourcePort: 2000, destinationPort: 80, flags: [.syn, .ece, .cwr], sequenceNumber: 5)
        let (v, out) = run(&t, PacketBuilder.tcp6(source: host6, destination: server6, header: h, payload: payload(9)))
        var h4 = h
        h4.sourcePort = 3000
        #expect(v == toIPv4)
        #expect(out == PacketBuilder.tcp4(source: Self.nat4, destination: server4, header: h4, payload: payload(9), ttl: 63,
                                          identification: 1, dontFragment: false))
        #expect(t.mapping.lastTransport?.tcpFlags == [.syn, .ece, .cwr])
        #expect(t.mapping.lastTransport?.ports == NAT64Ports(source: 2000, destination: 80))

        let (v2, out2) = run(&t, PacketBuilder.udp4(source: server4, sourcePort: 53, destination: Self.nat4, destinationPort: 3000,
                                                    payload: payload(4)))
        #expect(v2 == toIPv6)
        #expect(out2 == PacketBuilder.udp6(source: server6, sourcePort: 53, destination: host6, destinationPort: 2000,
                                           payload: payload(4), hopLimit: 63))
    }

    @Test func echoIdentifierRewritten() {
        var t = translator()
        let (_, out) = run(&t, PacketBuilder.echo6(source: host6, destination: server6, identifier: 7, sequenceNumber: 2))
        #expect(out == PacketBuilder.icmp4(source: Self.nat4, destination: server4,
                                           header: ICMPv4Header(type: 8, identifier: 1007, sequenceNumber: 2),
                                           body: Array(repeating: 0xA5, count: 8), ttl: 63, identification: 1))
        let reply = PacketBuilder.icmp4(source: server4, destination: Self.nat4,
                                        header: ICMPv4Header(type: 0, identifier: 1007, sequenceNumber: 2),
                                        body: Array(repeating: 0xA5, count: 8))
        let (_, out2) = run(&t, reply)
        #expect(out2 == PacketBuilder.echo6(source: server6, destination: host6, identifier: 7, sequenceNumber: 2, reply: true,
                                            hopLimit: 63))
    }

    @Test func icmpErrorMapsTheInnerPacketFirstAndRewritesItsPorts() {
        var t = translator()
        // The IPv6 host got a datagram (from server, port 53, to host port 2000) and reports Port Unreachable.
        let inner6 = PacketBuilder.udp6(source: server6, sourcePort: 53, destination: host6, destinationPort: 2000,
                                        payload: payload(12), hopLimit: 40)
        let err6 = PacketBuilder.icmp6Error(source: host6, destination: server6, type: 1, code: 4, original: inner6)
        let (v, out) = run(&t, err6)
        #expect(v == toIPv4)
        #expect(t.mapping.calls == ["mapInner6to4 udp", "map6to4 icmpError"])
        let inner4 = PacketBuilder.udp4(source: server4, sourcePort: 53, destination: Self.nat4, destinationPort: 3000,
                                        payload: payload(12), ttl: 40, identification: 0)
        #expect(out == PacketBuilder.icmp4(source: Self.nat4, destination: server4, header: ICMPv4Header(type: 3, code: 3),
                                           body: inner4, ttl: 63, identification: 1))

        // And the other way: an IPv4 router reports about a datagram the IPv6 host sent.
        let sent4 = PacketBuilder.udp4(source: Self.nat4, sourcePort: 3000, destination: server4, destinationPort: 53,
                                       payload: payload(12), ttl: 20)
        let err4 = PacketBuilder.icmp4Error(source: router4, destination: Self.nat4, type: 11, code: 0, original: sent4)
        let (v2, out2) = run(&t, err4)
        #expect(v2 == toIPv6)
        #expect(Array(t.mapping.calls.suffix(2)) == ["mapInner4to6 udp", "map4to6 icmpError"])
        let sent6 = PacketBuilder.udp6(source: host6, sourcePort: 2000, destination: server6, destinationPort: 53,
                                       payload: payload(12), hopLimit: 20)
        #expect(out2 == PacketBuilder.icmp6Error(source: router6, destination: host6, type: 3, code: 0, original: sent6,
                                                 hopLimit: 63))
    }

    @Test func fragmentsReachTheMappingWithTheirIdentification() {
        var t = translator()
        let h6 = IPv6Header(nextHeader: IPProtocol.udp, source: host6, destination: server6)
        let later = PacketBuilder.ipv6(h6, extensionHeaders: [.fragment(offset: 16, moreFragments: false, identification: 0x77)],
                                       payload: payload(8))
        _ = run(&t, later)
        #expect(t.mapping.lastTransport == NAT64Transport(kind: .other, protocolNumber: IPProtocol.udp, isFragment: true,
                                                          fragmentIdentification: 0x77))
    }
}
