import Testing
import NATWire
import NATCore
import NAPT44

/// The counters account for every packet (found by Fuzz/fuzz-napt44): whatever verdict a packet gets
/// moves a counter of its own (a drop its reason's, a held packet fragments_held or syns_held, a forwarded
/// one outbound, inbound or hairpinned), so that forwarded + held + dropped = processed and the metrics'
/// `swiftnat_packets_total{direction}` add up.
@Suite("Counters account for every packet")
struct CounterAccountingTests {
    /// Forwarded packets (outbound, inbound and hairpinned ones), held ones and dropped ones.
    func accounted(_ c: Counters) -> UInt64 {
        c.outboundPackets + c.inboundPackets + c.hairpinnedPackets + c.fragmentsHeld + c.synsHeld + c.totalDropped
    }

    /// The fuzzer's input: a UDP datagram out, then the server's port unreachable about it. The error went
    /// to the inside host but no counter moved (inbound_packets stayed at 0).
    @Test func countersAccountForEveryPacket_inboundICMPErrorCountsInbound() {
        var e = engine(config())
        let (_, sent) = send(&e, udp(clientA, 40000, serverX, 53))
        let err = PacketBuilder.icmp4Error(source: serverX, destination: poolP, type: 3, code: 3, original: sent)
        let (v, _) = send(&e, err)
        #expect(v == .toInside(tenant: 0))
        #expect(e.counters.inboundPackets == 1 && e.counters.inboundBytes == UInt64(err.count))
        #expect(e.counters.icmpErrorsTranslated == 1)
        #expect(accounted(e.counters) == 2)
    }

    /// An error from inside about a packet delivered there is outbound, bytes included.
    @Test func countersAccountForEveryPacket_outboundICMPErrorCountsOutboundBytes() {
        var e = engine(config())
        let (aA, aP) = openUDP(&e, clientA, 40000, serverX, 53)
        let (_, delivered) = send(&e, udp(serverX, 53, aA, aP))
        let err = PacketBuilder.icmp4Error(source: clientA, destination: serverX, type: 3, code: 3, original: delivered)
        let before = e.counters.outboundBytes
        let (v, _) = send(&e, err)
        #expect(v == .toOutside)
        #expect(e.counters.outboundPackets == 2 && e.counters.outboundBytes == before + UInt64(err.count))
        #expect(accounted(e.counters) == 3)
    }

    /// RFC 5508 REQ-7: a hairpinned ICMP error counts outbound and hairpinned, as a hairpinned datagram does.
    @Test func countersAccountForEveryPacket_hairpinnedICMPErrorCountsHairpinned() {
        let oneToOne = IPv4Address("198.51.100.9")!
        var e = engine(config(.fullCone) { $0.staticNAT = [StaticNAT(inside: clientB, outside: oneToOne)] })
        let (aA, _) = openUDP(&e, clientA, 5000, serverX, 1)
        let (_, delivered) = send(&e, udp(clientA, 5000, oneToOne, 9))
        let hairpinnedBefore = e.counters.hairpinnedPackets
        let err = PacketBuilder.icmp4Error(source: clientB, destination: aA, type: 3, code: 3, original: delivered)
        let (v, _) = send(&e, err)
        #expect(v == .toInside(tenant: 0))
        #expect(e.counters.hairpinnedPackets == hairpinnedBefore + 1)
        #expect(e.counters.inboundPackets == 0)
    }

    /// A ping to a pool address is answered by the NAT itself: the reply leaves on the outside and counts
    /// outbound.
    @Test func countersAccountForEveryPacket_answeredPingCountsOutbound() {
        var e = engine(config())
        let ping = PacketBuilder.echo4(source: serverX, destination: poolP, identifier: 5)
        let (v, _) = send(&e, ping)
        #expect(v == .toOutside)
        #expect(e.counters.outboundPackets == 1 && e.counters.outboundBytes == UInt64(ping.count))
        #expect(accounted(e.counters) == 1)
    }
}
