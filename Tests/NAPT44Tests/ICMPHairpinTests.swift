import Testing
import NATWire
import NATCore
import NAPT44

@Suite("ICMP queries and errors (RFC 5508), hairpinning")
struct ICMPHairpinTests {
    @Test func rfc5508_req2_echoMappedByIdentifier() {
        var e = engine(config())
        let (v, out) = send(&e, PacketBuilder.echo4(source: clientA, destination: serverX, identifier: 0x4242, sequenceNumber: 7))
        #expect(v == .toOutside)
        let o = parse(out)
        #expect(o.source == poolP && o.icmpIdentifier == 0x4242)
        #expect(out == PacketBuilder.echo4(source: poolP, destination: serverX, identifier: 0x4242, sequenceNumber: 7))
        let reply = PacketBuilder.echo4(source: serverX, destination: poolP, identifier: 0x4242, sequenceNumber: 7, reply: true)
        let (v2, back) = send(&e, reply)
        #expect(v2 == .toInside(tenant: 0))
        #expect(back == PacketBuilder.echo4(source: serverX, destination: clientA, identifier: 0x4242, sequenceNumber: 7, reply: true))
    }

    @Test func echoIdentifierCollisionGetsANewIdentifier() {
        var e = engine(config())
        _ = send(&e, PacketBuilder.echo4(source: clientA, destination: serverX, identifier: 9))
        let (_, out) = send(&e, PacketBuilder.echo4(source: clientB, destination: serverX, identifier: 9))
        let o = parse(out)
        #expect(o.icmpIdentifier != 9)
        #expect(checksumsValid(out))
        let (v, back) = send(&e, PacketBuilder.echo4(source: serverX, destination: poolP, identifier: o.icmpIdentifier, reply: true))
        #expect(v == .toInside(tenant: 0))
        #expect(parse(back).destination == clientB && parse(back).icmpIdentifier == 9)
    }

    @Test func timestampAndInformationQueriesAreTranslated() {
        var e = engine(config())
        for (req, rep) in [(ICMPv4Type.timestampRequest, ICMPv4Type.timestampReply), (ICMPv4Type.informationRequest, ICMPv4Type.informationReply)] {
            let body: [UInt8] = req == ICMPv4Type.timestampRequest ? Array(repeating: 1, count: 12) : []
            let q = PacketBuilder.icmp4(source: clientA, destination: serverX, header: ICMPv4Header(type: req, identifier: 500 + UInt16(req), sequenceNumber: 1), body: body)
            let (v, out) = send(&e, q)
            #expect(v == .toOutside)
            #expect(checksumsValid(out))
            let r = PacketBuilder.icmp4(source: serverX, destination: poolP, header: ICMPv4Header(type: rep, identifier: parse(out).icmpIdentifier, sequenceNumber: 1), body: body)
            let (v2, back) = send(&e, r)
            #expect(v2 == .toInside(tenant: 0))
            #expect(parse(back).destination == clientA && parse(back).icmpIdentifier == 500 + UInt16(req))
            #expect(checksumsValid(back))
        }
    }

    @Test func rfc5508_req5_inboundErrorRevertsEmbeddedPacket_golden() {
        var e = engine(config())
        let original = udp(clientA, 40000, serverX, 9)
        let (_, sent) = send(&e, original)
        // The server answers "port unreachable" quoting what it received.
        let err = PacketBuilder.icmp4Error(source: serverX, destination: poolP, type: 3, code: 3, original: sent)
        let (v, out) = send(&e, err)
        #expect(v == .toInside(tenant: 0))
        // Expected: the error the client would get with no NAT at all, quoting its own datagram.
        #expect(out == PacketBuilder.icmp4Error(source: serverX, destination: clientA, type: 3, code: 3, original: original))
    }

    @Test func rfc5508_timeExceededFromARouterIsTranslated() {
        var e = engine(config())
        let original = udp(clientA, 33434, serverX, 33434)
        let (_, sent) = send(&e, original)
        let err = PacketBuilder.icmp4Error(source: routerR, destination: poolP, type: 11, code: 0, original: sent, quote: 28)
        let (v, out) = send(&e, err)
        #expect(v == .toInside(tenant: 0))
        #expect(out == PacketBuilder.icmp4Error(source: routerR, destination: clientA, type: 11, code: 0, original: original, quote: 28))
    }

    @Test func tcpErrorWithTruncatedQuoteKeepsChecksumsRight() {
        var e = engine(config())
        let original = tcp(clientA, 5000, serverX, 80, [.syn])
        let (_, sent) = send(&e, original)
        // Only the IP header and 8 bytes of TCP are quoted: the TCP checksum is not in the quote.
        let err = PacketBuilder.icmp4Error(source: serverX, destination: poolP, type: 3, code: 1, original: sent, quote: 28)
        let (v, out) = send(&e, err)
        #expect(v == .toInside(tenant: 0))
        #expect(out == PacketBuilder.icmp4Error(source: serverX, destination: clientA, type: 3, code: 1, original: original, quote: 28))
        // A full quote includes the TCP checksum, which is reverted too.
        let err2 = PacketBuilder.icmp4Error(source: serverX, destination: poolP, type: 3, code: 4, restOfHeader: 1400, original: sent)
        let (_, out2) = send(&e, err2)
        #expect(out2 == PacketBuilder.icmp4Error(source: serverX, destination: clientA, type: 3, code: 4, restOfHeader: 1400, original: original))
    }

    @Test func rfc5508_req4_outboundErrorIsTranslated() {
        var e = engine(config(.fullCone))
        let (a, p) = openUDP(&e, clientA, 5000, serverX, 53)
        let inbound = udp(serverY, 7000, a, p)
        let (_, delivered) = send(&e, inbound)
        // The client says "port unreachable" about what it received.
        let err = PacketBuilder.icmp4Error(source: clientA, destination: serverY, type: 3, code: 3, original: delivered)
        let (v, out) = send(&e, err)
        #expect(v == .toOutside)
        #expect(out == PacketBuilder.icmp4Error(source: poolP, destination: serverY, type: 3, code: 3, original: inbound))
    }

    @Test func rfc5508_req3_errorWithBadChecksumIsDropped() {
        var e = engine(config())
        let (_, sent) = send(&e, udp(clientA, 40000, serverX, 9))
        var err = PacketBuilder.icmp4Error(source: serverX, destination: poolP, type: 3, code: 3, original: sent)
        err[22] ^= 0xFF   // ICMP checksum byte
        #expect(send(&e, err).0 == .drop(.badICMPChecksum))
        #expect(e.counters.dropped(.badICMPChecksum) == 1)
    }

    @Test func rfc5508_req3_errorWithoutSessionIsDropped() {
        var e = engine(config())
        let stray = udp(poolP, 40000, serverX, 9)
        let err = PacketBuilder.icmp4Error(source: serverX, destination: poolP, type: 3, code: 3, original: stray)
        #expect(send(&e, err).0 == .drop(.noSessionForICMPError))
    }

    @Test func embeddedPacketWithBadChecksumIsDropped() {
        var e = engine(config())
        var (_, sent) = send(&e, udp(clientA, 40000, serverX, 9))
        sent[10] ^= 0x55
        let err = PacketBuilder.icmp4Error(source: serverX, destination: poolP, type: 3, code: 3, original: sent)
        #expect(send(&e, err).0 == .drop(.badEmbeddedPacket))
    }

    @Test func rfc5508_req6_errorsNeitherRefreshNorDeleteSessions() {
        var e = engine(config())
        let (_, sent) = send(&e, udp(clientA, 40000, serverX, 9), at: 0)
        let err = PacketBuilder.icmp4Error(source: serverX, destination: poolP, type: 3, code: 3, original: sent)
        #expect(send(&e, err, at: 250).0 == .toInside(tenant: 0))
        #expect(e.sessionCount == 1)       // not deleted (RFC 4787 REQ-12 too)
        e.expire(now: .seconds(300))
        #expect(e.sessionCount == 0)       // not refreshed
    }

    @Test func errorAboutAnErrorIsDropped() {
        var e = engine(config())
        _ = send(&e, udp(clientA, 40000, serverX, 9))
        let inner = PacketBuilder.icmp4Error(source: poolP, destination: serverX, type: 3, code: 3, original: udp(serverX, 9, poolP, 40000))
        let err = PacketBuilder.icmp4Error(source: serverX, destination: poolP, type: 3, code: 3, original: inner)
        #expect(send(&e, err).0 == .drop(.icmpErrorAboutICMPError))
    }

    @Test func icmpErrorAboutEchoIsTranslated() {
        var e = engine(config())
        let echo = PacketBuilder.echo4(source: clientA, destination: serverX, identifier: 4321)
        let (_, sent) = send(&e, echo)
        let err = PacketBuilder.icmp4Error(source: routerR, destination: poolP, type: 11, code: 0, original: sent)
        let (v, out) = send(&e, err)
        #expect(v == .toInside(tenant: 0))
        #expect(out == PacketBuilder.icmp4Error(source: routerR, destination: clientA, type: 11, code: 0, original: echo))
    }

    @Test func rfc4787_req9_udpHairpinUsesTheSendersOutsideEndpoint() {
        var e = engine(config(.fullCone))
        let (bA, bP) = openUDP(&e, clientB, 6000, serverX, 3478)
        let (aA, aP) = openUDP(&e, clientA, 5000, serverX, 3478)
        let (v, out) = send(&e, udp(clientA, 5000, bA, bP))
        #expect(v == .toInside(tenant: 0))
        #expect(out == udp(aA, aP, clientB, 6000))
        #expect(e.counters.hairpinnedPackets == 1)
        // And back.
        let (v2, back) = send(&e, udp(clientB, 6000, aA, aP))
        #expect(v2 == .toInside(tenant: 0))
        #expect(back == udp(bA, bP, clientA, 5000))
    }

    @Test func hairpinObeysFiltering() {
        var e = engine(config(.portRestrictedCone))
        let (bA, bP) = openUDP(&e, clientB, 6000, serverX, 3478)
        #expect(send(&e, udp(clientA, 5000, bA, bP)).0 == .drop(.filtered))
    }

    @Test func rfc5382_req8_tcpHairpinThroughAForward() {
        var e = engine(config {
            $0.forwards = [PortForward(proto: IPProtocol.tcp, outsideAddress: poolP, outsidePorts: 8080...8080, insideAddress: clientB, insidePort: 80)]
        })
        let (v, out) = send(&e, tcp(clientA, 5000, poolP, 8080, [.syn]))
        #expect(v == .toInside(tenant: 0))
        let o = parse(out)
        #expect(o.destination == clientB && o.destinationPort == 80 && o.source == poolP && o.sourcePort == 5000)
        #expect(checksumsValid(out))
        let (v2, back) = send(&e, tcp(clientB, 80, poolP, 5000, [.syn, .ack]))
        #expect(v2 == .toInside(tenant: 0))
        let b = parse(back)
        #expect(b.destination == clientA && b.destinationPort == 5000 && b.source == poolP && b.sourcePort == 8080)
    }

    @Test func rfc5508_req7_hairpinnedICMPQueryAndError() {
        let oneToOne = IPv4Address("198.51.100.9")!
        var e = engine(config(.fullCone) { $0.staticNAT = [StaticNAT(inside: clientB, outside: oneToOne)] })
        // Query: A pings B's 1:1 address.
        let (v, out) = send(&e, PacketBuilder.echo4(source: clientA, destination: oneToOne, identifier: 11))
        #expect(v == .toInside(tenant: 0))
        #expect(parse(out).destination == clientB && parse(out).source == poolP)
        // Error: B answers a hairpinned UDP datagram from A with port unreachable.
        let (aA, aP) = openUDP(&e, clientA, 5000, serverX, 1)
        let (v2, delivered) = send(&e, udp(clientA, 5000, oneToOne, 9))
        #expect(v2 == .toInside(tenant: 0))
        #expect(parse(delivered).source == aA && parse(delivered).sourcePort == aP)
        let err = PacketBuilder.icmp4Error(source: clientB, destination: aA, type: 3, code: 3, original: delivered)
        let (v3, back) = send(&e, err)
        #expect(v3 == .toInside(tenant: 0))
        #expect(back == PacketBuilder.icmp4Error(source: oneToOne, destination: clientA, type: 3, code: 3, original: udp(clientA, 5000, oneToOne, 9)))
    }

    @Test func pingToThePoolAddressIsAnswered() {
        var e = engine(config())
        let (v, out) = send(&e, PacketBuilder.echo4(source: serverX, destination: poolP, identifier: 5))
        #expect(v == .toOutside)
        #expect(out == PacketBuilder.echo4(source: poolP, destination: serverX, identifier: 5, reply: true))
    }
}

/// Issue 11: ICMP errors that the NAT host's own kernel sends about a packet swiftnat already translated
/// (its source is the NAT's inside-interface address, so it reaches the engine looking outbound).
@Suite struct KernelICMPErrorTests {
    static let natInside = IPv4Address("100.64.0.1")!

    /// RFC 5508 REQ-3 and RFC 1191: the outside link's MTU is below the TUN device's; the kernel answers the
    /// translated DF datagram with Fragmentation Needed (next-hop MTU 1280) from 100.64.0.1 to the pool
    /// address. The client gets it as if there were no NAT: from 100.64.0.1, quoting its own datagram.
    @Test func rfc5508_req3_rfc1191_kernelFragmentationNeededReachesTheInsideHost() {
        var e = engine(config())
        let original = udp(clientA, 5000, serverX, 53, payload: Array(repeating: 0x5A, count: 1400))
        let (v0, sent) = send(&e, original)
        #expect(v0 == .toOutside)
        let err = PacketBuilder.icmp4Error(source: Self.natInside, destination: poolP, type: 3, code: 4,
                                           restOfHeader: 1280, original: sent)
        let (v, out) = send(&e, err, at: 0.1)
        #expect(v == .toInside(tenant: 0))
        #expect(out == PacketBuilder.icmp4Error(source: Self.natInside, destination: clientA, type: 3, code: 4,
                                                restOfHeader: 1280, original: original))
        #expect(checksumsValid(out))
    }

    /// The same for TCP and for an echo request (the embedded identifier goes back to the client's).
    @Test func rfc5508_req3_kernelErrorsAboutTCPAndEchoAreTranslated() {
        var e = engine(config())
        let syn = tcp(clientA, 40000, serverX, 80, [.syn])
        let (_, sentSYN) = send(&e, syn)
        let e1 = PacketBuilder.icmp4Error(source: Self.natInside, destination: poolP, type: 3, code: 4, restOfHeader: 1280, original: sentSYN)
        let (v1, out1) = send(&e, e1)
        #expect(v1 == .toInside(tenant: 0))
        #expect(out1 == PacketBuilder.icmp4Error(source: Self.natInside, destination: clientA, type: 3, code: 4, restOfHeader: 1280, original: syn))
        let ping = PacketBuilder.echo4(source: clientA, destination: serverX, identifier: 77)
        let (_, sentPing) = send(&e, ping)
        let e2 = PacketBuilder.icmp4Error(source: Self.natInside, destination: poolP, type: 3, code: 4, restOfHeader: 1280, original: sentPing)
        let (v2, out2) = send(&e, e2)
        #expect(v2 == .toInside(tenant: 0))
        #expect(out2 == PacketBuilder.icmp4Error(source: Self.natInside, destination: clientA, type: 3, code: 4, restOfHeader: 1280, original: ping))
    }

    /// Still no session, still dropped: an error from inside about a packet that never went out.
    @Test func rfc5508_req3_kernelErrorWithoutSessionIsDropped() {
        var e = engine(config())
        let never = udp(poolP, 40000, serverX, 53)
        let err = PacketBuilder.icmp4Error(source: Self.natInside, destination: poolP, type: 3, code: 4, restOfHeader: 1280, original: never)
        #expect(send(&e, err).0 == .drop(.noSessionForICMPError))
    }
}
