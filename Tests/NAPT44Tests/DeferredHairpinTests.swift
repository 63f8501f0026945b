import NAPT44
import NATCore
import NATWire
import Testing

/// Hairpinning split over two engines, as the sharded runtime does it: the engine of the sending host
/// translates outbound only (`deferHairpinning`), the engine owning the destination finishes with
/// `translateHairpinned`. The bytes must be exactly those of one engine hairpinning inline.
@Suite("Deferred hairpinning (sharded runtime)")
struct DeferredHairpinTests {
    func shard(_ c: NAPT44Configuration) -> NAPT44Engine {
        var e = engine(c)
        e.deferHairpinning = true
        return e
    }

    @Test func rfc4787_req9_deferredUDPHairpinMatchesInline() {
        var inline = engine(config(.fullCone))
        var a = shard(config(.fullCone)), b = shard(config(.fullCone))
        let (bA, bP) = openUDP(&inline, clientB, 6000, serverX, 3478)
        _ = openUDP(&inline, clientA, 5000, serverX, 3478)
        #expect(openUDP(&b, clientB, 6000, serverX, 3478) == (bA, bP))
        _ = openUDP(&a, clientA, 5000, serverX, 3478)
        let (vi, want) = send(&inline, udp(clientA, 5000, bA, bP))
        #expect(vi == .toInside(tenant: 0))

        var p = udp(clientA, 5000, bA, bP)
        let v1 = p.withUnsafeMutableBytes { a.process($0, now: .zero) }
        #expect(v1 == .toOutside)
        #expect(parse(p).destination == bA && parse(p).destinationPort == bP)
        let v2 = p.withUnsafeMutableBytes { b.translateHairpinned($0, now: .zero) }
        #expect(v2 == .toInside(tenant: 0))
        #expect(p == want)
        #expect(a.counters.hairpinnedPackets == 0 && b.counters.hairpinnedPackets == 1)
    }

    @Test func rfc5382_req8_deferredTCPHairpinThroughAForward() {
        let fwd = PortForward(proto: IPProtocol.tcp, outsideAddress: poolP, outsidePorts: 8080...8080, insideAddress: clientB, insidePort: 80)
        var inline = engine(config { $0.forwards = [fwd] })
        var a = shard(config()), b = shard(config { $0.forwards = [fwd] })
        let (_, want) = send(&inline, tcp(clientA, 5000, poolP, 8080, [.syn]))
        var p = tcp(clientA, 5000, poolP, 8080, [.syn])
        #expect(p.withUnsafeMutableBytes { a.process($0, now: .zero) } == .toOutside)
        #expect(p.withUnsafeMutableBytes { b.translateHairpinned($0, now: .zero) } == .toInside(tenant: 0))
        #expect(p == want)
        #expect(checksumsValid(p))
        // The engine without the forward refuses the second half.
        var q = tcp(clientA, 5001, poolP, 8080, [.syn])
        _ = q.withUnsafeMutableBytes { a.process($0, now: .zero) }
        #expect(q.withUnsafeMutableBytes { a.translateHairpinned($0, now: .zero) } != .toInside(tenant: 0))
    }

    @Test func rfc5508_req7_deferredHairpinnedICMPError() {
        let oneToOne = IPv4Address("198.51.100.9")!
        let c = config(.fullCone) { $0.staticNAT = [StaticNAT(inside: clientB, outside: oneToOne)] }
        var inline = engine(c)
        var a = shard(c), b = shard(c)
        _ = openUDP(&inline, clientA, 5000, serverX, 1)
        let (_, deliveredInline) = send(&inline, udp(clientA, 5000, oneToOne, 9))
        let errInline = PacketBuilder.icmp4Error(source: clientB, destination: parse(deliveredInline).source, type: 3, code: 3, original: deliveredInline)
        let (vi, want) = send(&inline, errInline)
        #expect(vi == .toInside(tenant: 0))

        // A's shard translates A's datagram outbound; B's shard (1:1 owner) delivers it.
        _ = openUDP(&a, clientA, 5000, serverX, 1)
        var d = udp(clientA, 5000, oneToOne, 9)
        #expect(d.withUnsafeMutableBytes { a.process($0, now: .zero) } == .toOutside)
        #expect(d.withUnsafeMutableBytes { b.translateHairpinned($0, now: .zero) } == .toInside(tenant: 0))
        #expect(d == deliveredInline)
        // B's port unreachable: B's shard translates it outbound, A's shard delivers it.
        var err = PacketBuilder.icmp4Error(source: clientB, destination: parse(d).source, type: 3, code: 3, original: d)
        #expect(err.withUnsafeMutableBytes { b.process($0, now: .zero) } == .toOutside)
        #expect(err.withUnsafeMutableBytes { a.translateHairpinned($0, now: .zero) } == .toInside(tenant: 0))
        #expect(err == want)
    }
}
