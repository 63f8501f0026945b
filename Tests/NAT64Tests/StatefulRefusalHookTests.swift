import Testing
import NATCore
import NATWire
@testable import NAT64

/// A mapping that refuses everything, and asks for ICMP Destination Unreachable (IPv4: 3/13, IPv6: 1/1)
/// or a hold, by its setting: exercises the translator's side of ``NAT64Mapping/refusal(of:reason:now:)``
/// and ``NAT64Mapping/nextGeneratedPacket()`` independently of NAPT64.
struct RefusingMapping: NAT64Mapping {
    var hold = false
    var refusals = 0
    func map6to4(source: IPv6Address, destination: IPv6Address, transport: NAT64Transport, now: Timestamp) throws(DropReason) -> NAT64Mapped4 {
        throw .filtered
    }
    func map4to6(source: IPv4Address, destination: IPv4Address, transport: NAT64Transport, hairpin: Bool,
                 now: Timestamp) throws(DropReason) -> NAT64Mapped6 {
        throw .filtered
    }
    func mapInner6to4(source: IPv6Address, destination: IPv6Address, transport: NAT64Transport, now: Timestamp) throws(DropReason) -> NAT64Mapped4 {
        throw .noSessionForICMPError
    }
    func mapInner4to6(source: IPv4Address, destination: IPv4Address, transport: NAT64Transport, hairpin: Bool,
                      now: Timestamp) throws(DropReason) -> NAT64Mapped6 {
        throw .noSessionForICMPError
    }
    func isHairpin(_ destination: IPv4Address, ipv6Destination: IPv6Address) -> Bool { false }
    mutating func refusal(of packet: UnsafeRawBufferPointer, reason: DropReason, now: Timestamp) -> NAT64RefusalAction {
        refusals += 1
        guard reason == .filtered || reason == .noSessionForICMPError else { return .drop }
        if hold { return .held }
        return .unreachable(code: packet.first! >> 4 == 4 ? ICMPv4UnreachableCode.communicationAdministrativelyProhibited
                                                           : ICMPv6UnreachableCode.administrativelyProhibited)
    }
}

@Suite struct StatefulRefusalHookTests {
    func translator(hold: Bool = false) -> NAT64Translator<RefusingMapping> {
        try! NAT64Translator(configuration: translatorConfiguration(), mapping: RefusingMapping(hold: hold))
    }

    @Test func rfc7915_4_4_refusedIPv4PacketGetsTheUnreachableTheMappingAsksFor() {
        var t = translator()
        let packet = udp4(server4, 53, host4, 5000)
        let r = run(&t, packet, at: at(1))
        #expect(r.verdict == .drop(.filtered))
        let expected = PacketBuilder.ipv4(IPv4Header(protocolNumber: IPProtocol.icmp, source: translator4, destination: server4,
                                                     ttl: 64, identification: 1),
                                          payload: Array(PacketBuilder.icmp4Error(source: translator4, destination: server4,
                                                                                  type: ICMPv4Type.destinationUnreachable,
                                                                                  code: ICMPv4UnreachableCode.communicationAdministrativelyProhibited,
                                                                                  original: packet)[20...]))
        #expect(r.generated.map(\.bytes) == [expected])
        #expect(r.generated.first?.verdict == toIPv4)
        let c = t.counters4to6
        #expect(c.dropped(.filtered) == 1 && c.icmpErrorsGenerated == 1)
    }

    @Test func rfc7915_5_4_refusedIPv6PacketGetsTheUnreachableTheMappingAsksFor() {
        var t = translator()
        let packet = udp6()
        let r = run(&t, packet, at: at(1))
        #expect(r.verdict == .drop(.filtered))
        let expected = PacketBuilder.icmp6Error(source: translator6, destination: host6, type: ICMPv6Type.destinationUnreachable,
                                                code: ICMPv6UnreachableCode.administrativelyProhibited, original: packet)
        #expect(r.generated.map(\.bytes) == [expected])
    }

    @Test func rfc4443_2_4_e_noUnreachableAboutAnICMPError() {
        var t = translator()
        // The mapping asks for an unreachable about ICMP errors too; the translator never sends one (RFC 4443 §2.4 (e), RFC 1812 §4.3.2.7).
        let err = PacketBuilder.icmp6Error(source: host6, destination: server6, type: 1, code: 4, original: udp6(server6, 53, host6, 5000))
        #expect(run(&t, err, at: at(1)).generated.isEmpty)
        let err4 = PacketBuilder.icmp4Error(source: router4, destination: host4, type: 3, code: 3, original: udp4(host4, 5000, server4, 53))
        #expect(run(&t, err4, at: at(1)).generated.isEmpty)
    }

    @Test func heldPacketsAreNeitherDroppedNorForwarded() {
        var t = translator(hold: true)
        let r = run(&t, udp4(server4, 53, host4, 5000), at: at(1))
        #expect(r.verdict == .held && r.bytes.isEmpty && r.generated.isEmpty)
        let c = t.counters
        #expect(c.totalDropped == 0 && c.synsHeld == 1)
        #expect(t.mapping.refusals == 1)
    }
}
