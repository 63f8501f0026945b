import Testing
import NATCore
import NATWire
@testable import NAT64

/// RFC 6146 §3.5.2 (TCP session handling) with RFC 7857 §2.1: the state machine, the 6-second hold of
/// unsolicited IPv4 SYNs, probes, and the TCP timers, over golden packets.
@Suite struct StatefulTCPTests {
    func state(_ t: borrowing NAPT64Translator, _ remote: IPv4Address = server4, port: UInt16 = 40000,
               at now: Timestamp = .zero) -> TCPState? {
        t.mapping.session(.tcp, ipv6: host6, port: port, remote: remote, remotePort: 80, now: now)?.tcpState
    }

    /// Opens host6:40000 → server:80 with a three-way handshake; returns the BIB entry.
    func open(_ t: inout NAPT64Translator, at s: Double = 1) -> NAT64BindingInfo {
        _ = run(&t, tcp6([.syn]), at: at(s))
        let b = bib(t, .tcp, host6, 40000)!
        _ = run(&t, tcp4(server4, 80, b.ipv4, b.ipv4Port, [.syn, .ack], seq: 5000, ack: 1001), at: at(s))
        _ = run(&t, tcp6([.ack], seq: 1001, ack: 5001), at: at(s))
        return b
    }

    @Test func rfc6146_3_5_2_2_transitionTableSharedWithNAPT44() {
        typealias S = TCPState
        func next(_ s: S, _ f: TCPFlags, _ inside: Bool) -> (S, Bool) {
            let r = S.transition(from: s, flags: f, fromInside: inside)
            return (r.state, r.refresh)
        }
        #expect(next(.closed, [.syn], true) == (.outboundInit, true))
        #expect(next(.closed, [.syn], false) == (.inboundInit, true))
        #expect(next(.outboundInit, [.syn, .ack], false) == (.established, true))
        #expect(next(.outboundInit, [.syn], true) == (.outboundInit, true))
        #expect(next(.outboundInit, [.rst], true) == (.transitory, true))
        #expect(next(.inboundInit, [.syn, .ack], true) == (.established, true))
        #expect(next(.inboundInit, [.ack], false) == (.inboundInit, true))
        #expect(next(.established, [.fin, .ack], true) == (.outboundFIN, true))
        #expect(next(.established, [.fin, .ack], false) == (.inboundFIN, true))
        #expect(next(.established, [.rst], false) == (.transitory, true))
        #expect(next(.established, [.ack], true) == (.established, true))
        #expect(next(.outboundFIN, [.fin, .ack], false) == (.bothFIN, true))
        #expect(next(.outboundFIN, [.fin, .ack], true) == (.outboundFIN, true))
        #expect(next(.inboundFIN, [.fin], true) == (.bothFIN, true))
        #expect(next(.inboundFIN, [.rst], true) == (.transitory, true))
        #expect(next(.bothFIN, [.ack], true) == (.bothFIN, false))
        #expect(next(.transitory, [.ack], false) == (.established, true))
        #expect(next(.transitory, [.rst], false) == (.transitory, false))
        #expect(S.established.timerClass == .tcpEstablished && S.outboundFIN.timerClass == .tcpEstablished)
        #expect(S.inboundFIN.timerClass == .tcpEstablished && S.bothFIN.timerClass == .tcpTransitory)
        #expect(S.outboundInit.timerClass == .tcpTransitory && S.transitory.timerClass == .tcpTransitory)
        #expect(S.outboundInit.rfc6146Name == "V6 INIT" && S.inboundInit.rfc6146Name == "V4 INIT")
    }

    @Test func rfc6146_3_5_2_2_v6SYNCreatesSessionInV6InitGolden() throws {
        var t = makeStateful()
        let syn = tcp6([.syn], seq: 1000)
        let r = run(&t, syn, at: at(1))
        #expect(r.verdict == toIPv4)
        let h1 = bib(t, .tcp, host6, 40000)
        let b = try #require(h1)
        let expected = tcp4(b.ipv4, b.ipv4Port, server4, 80, [.syn], seq: 1000, ttl: 63, id: 1)
        #expect(r.bytes == expected, "\(diff(r.bytes, expected))")
        let h2 = session(t, .tcp, host6, 40000, server4, 80)
        let s = try #require(h2)
        #expect(s.tcpState == .outboundInit && s.timerClass == .tcpTransitory)
    }

    @Test func rfc6146_3_5_2_2_synAckFromIPv4EstablishesGolden() throws {
        var t = makeStateful()
        _ = run(&t, tcp6([.syn]), at: at(1))
        let h3 = bib(t, .tcp, host6, 40000)
        let b = try #require(h3)
        let r = run(&t, tcp4(server4, 80, b.ipv4, b.ipv4Port, [.syn, .ack], seq: 5000, ack: 1001, n: 4), at: at(1))
        #expect(r.verdict == toIPv6)
        let expected = PacketBuilder.tcp6(source: server6, sourcePort: 80, destination: host6, destinationPort: 40000,
                                          flags: [.syn, .ack], sequenceNumber: 5000, acknowledgmentNumber: 1001,
                                          payload: payload(4), hopLimit: 63)
        #expect(r.bytes == expected, "\(diff(r.bytes, expected))")
        let h4 = state(t)
        #expect(h4 == .established)
        let h5 = session(t, .tcp, host6, 40000, server4, 80)
        #expect(h5?.timerClass == .tcpEstablished)
    }

    @Test func rfc6146_3_5_2_2_simultaneousOpenV6INITThenV4SYN() throws {
        var t = makeStateful()
        _ = run(&t, tcp6([.syn]), at: at(1))
        let h6 = bib(t, .tcp, host6, 40000)
        let b = try #require(h6)
        // The IPv4 host's own SYN (no ACK) crosses the IPv6 host's.
        #expect(run(&t, tcp4(server4, 80, b.ipv4, b.ipv4Port, [.syn], seq: 7000), at: at(1.2)).verdict == toIPv6)
        let h7 = state(t)
        #expect(h7 == .established)
    }

    @Test func rfc6146_3_5_2_2_v4SYNToExistingBIBWithEIFCreatesV4INIT() throws {
        var t = makeStateful()
        _ = open(&t)
        let h8 = bib(t, .tcp, host6, 40000)
        let b = try #require(h8)
        // Another IPv4 host connects to the same BIB entry (endpoint-independent filtering).
        let syn = tcp4(server4b, 80, b.ipv4, b.ipv4Port, [.syn], seq: 9000)
        let r = run(&t, syn, at: at(2))
        #expect(r.verdict == toIPv6)
        let h9 = state(t, server4b)
        #expect(h9 == .inboundInit)
        #expect(run(&t, tcp6(host6, 40000, server6b, 80, [.syn, .ack], seq: 1, ack: 9001), at: at(2)).verdict == toIPv4)
        let h10 = state(t, server4b)
        #expect(h10 == .established)
    }

    @Test func rfc6146_3_5_2_2_finFromBothSidesThenTransitoryAndPortFreedAtOnce() throws {
        var t = makeStateful()
        let b = open(&t)
        #expect(run(&t, tcp6([.fin, .ack], seq: 1001, ack: 5001), at: at(10)).verdict == toIPv4)
        let h11 = state(t)
        #expect(h11 == .outboundFIN)
        let h12 = session(t, .tcp, host6, 40000, server4, 80)
        #expect(h12?.timerClass == .tcpEstablished)
        #expect(run(&t, tcp4(server4, 80, b.ipv4, b.ipv4Port, [.fin, .ack], seq: 5001, ack: 1002), at: at(11)).verdict == toIPv6)
        let h13 = state(t)
        #expect(h13 == .bothFIN)
        let h14 = session(t, .tcp, host6, 40000, server4, 80)
        #expect(h14?.timerClass == .tcpTransitory)
        // The last ACK is forwarded but does not refresh: TCP_TRANS counts from the second FIN.
        #expect(run(&t, tcp6([.ack], seq: 1002, ack: 5002), at: at(100)).verdict == toIPv4)
        _ = expire(&t, at: at(11 + 239))
        let h15 = state(t)
        #expect(h15 == .bothFIN)
        _ = expire(&t, at: at(11 + 240))
        let h16 = state(t)
        #expect(h16 == nil)
        #expect(t.mapping.bindingCount == 0 && t.mapping.heldPortCount == 0, "a clean close frees the port at once")
        #expect(t.mapping.hostCount == 0)
    }

    @Test func rfc6146_3_5_2_2_synAfterACleanCloseOpensTheSameFourTupleAgain() {
        var t = makeStateful()
        let b = open(&t)
        _ = run(&t, tcp6([.fin, .ack], seq: 1001, ack: 5001), at: at(10))
        _ = run(&t, tcp4(server4, 80, b.ipv4, b.ipv4Port, [.fin, .ack], seq: 5001, ack: 1002), at: at(11))
        #expect(state(t) == .bothFIN)
        // The client reuses its port for a new connection to the same server 100 s later.
        #expect(run(&t, tcp6([.syn], seq: 90000), at: at(111)).verdict == toIPv4)
        #expect(state(t) == .outboundInit)
        _ = run(&t, tcp4(server4, 80, b.ipv4, b.ipv4Port, [.syn, .ack], seq: 1, ack: 90001), at: at(112))
        #expect(state(t) == .established)
        _ = expire(&t, at: at(11 + 240))
        #expect(state(t) == .established, "the new connection outlives the old one's TCP_TRANS")
    }

    @Test func rfc6146_3_5_2_2_v4FINFirstGoesToV4FINRCV() {
        var t = makeStateful()
        let b = open(&t)
        _ = run(&t, tcp4(server4, 80, b.ipv4, b.ipv4Port, [.fin, .ack], seq: 5001, ack: 1001), at: at(5))
        let h17 = state(t)
        #expect(h17 == .inboundFIN)
        _ = run(&t, tcp6([.fin, .ack], seq: 1001, ack: 5002), at: at(6))
        let h18 = state(t)
        #expect(h18 == .bothFIN)
    }

    @Test func rfc7857_2_1_rstMovesToTransThenDataBringsItBack() {
        var t = makeStateful()
        let b = open(&t)
        #expect(run(&t, tcp4(server4, 80, b.ipv4, b.ipv4Port, [.rst], seq: 5001), at: at(5)).verdict == toIPv6)
        let h19 = state(t)
        #expect(h19 == .transitory)
        _ = expire(&t, at: at(5 + 239))
        let h20 = state(t)
        #expect(h20 == .transitory)
        #expect(run(&t, tcp6([.ack], seq: 1001, ack: 5001), at: at(5 + 239)).verdict == toIPv4)
        let h21 = state(t)
        #expect(h21 == .established, "RFC 6146: a packet other than RST in TRANS goes back to ESTABLISHED")
    }

    @Test func rfc7857_2_1_rstSessionEndsAfterTCPTrans() {
        var t = makeStateful()
        _ = open(&t)
        _ = run(&t, tcp6([.rst], seq: 1001), at: at(5))
        let h22 = state(t)
        #expect(h22 == .transitory)
        _ = expire(&t, at: at(5 + 240))
        let h23 = state(t)
        #expect(h23 == nil)
        #expect(t.mapping.heldPortCount == 1, "not a clean close: the port is held (RFC 6888 REQ-8)")
    }

    @Test func rfc6146_3_5_2_2_v6INITEndsAfterTCPTrans() {
        var t = makeStateful()
        _ = run(&t, tcp6([.syn]), at: at(0))
        _ = expire(&t, at: at(239))
        let h24 = state(t)
        #expect(h24 == .outboundInit)
        _ = expire(&t, at: at(240))
        let h25 = state(t)
        #expect(h25 == nil)
    }

    @Test func rfc6146_3_5_2_2_establishedProbedAfterTCPESTThenTrans() throws {
        var t = makeStateful()
        let b = open(&t, at: 0)
        _ = expire(&t, at: at(7439))
        let h26 = state(t)
        #expect(h26 == .established)
        let gen = expire(&t, at: at(7440))
        let h27 = state(t)
        #expect(h27 == .transitory)
        #expect(t.mapping.probesSent == 1)
        let probe = PacketBuilder.tcp6(source: server6, destination: host6,
                                       header: TCPHeader(sourcePort: 80, destinationPort: 40000, flags: [.ack],
                                                         sequenceNumber: 0, acknowledgmentNumber: 0, window: 0))
        #expect(gen.count == 1)
        #expect(gen.first?.bytes == probe, "\(diff(gen.first?.bytes ?? [], probe))")
        #expect(gen.first?.verdict == toIPv6)
        // The live host answers (a duplicate ACK): ESTABLISHED again.
        #expect(run(&t, tcp6([.ack], seq: 1001, ack: 5001), at: at(7441)).verdict == toIPv4)
        let h28 = state(t)
        #expect(h28 == .established)
        _ = b
    }

    @Test func rfc6146_3_5_2_2_unansweredProbeEndsTheSession() {
        var t = makeStateful()
        _ = open(&t, at: 0)
        _ = expire(&t, at: at(7440))
        let h29 = state(t)
        #expect(h29 == .transitory)
        _ = expire(&t, at: at(7440 + 240))
        let h30 = state(t)
        #expect(h30 == nil)
    }

    @Test func rfc6146_3_5_2_2_probesBeyondTheOutboxWaitForTheNextTimerRun() {
        var t = makeStateful()
        for i in 0..<100 {
            let sp = UInt16(20000 + i)
            _ = run(&t, tcp6(host6, sp, server6, 80, [.syn]), at: at(0))
            let b = t.mapping.binding(.tcp, ipv6: host6, port: sp)!
            _ = run(&t, tcp4(server4, 80, b.ipv4, b.ipv4Port, [.syn, .ack]), at: at(0))
        }
        #expect(expire(&t, at: at(7440)).count == 64, "one outbox of probes")
        #expect(expire(&t, at: at(7440.1)).count == 36, "the rest on the next run")
        #expect(t.mapping.probesSent == 100)
        let trans = t.mapping.sessions(now: at(7441)).filter { $0.tcpState == .transitory }.count
        #expect(trans == 100)
        let drops = t.mapping.counters.dropped(.outboxFull)
        #expect(drops == 0)
    }

    @Test func rfc6146_3_5_2_2_portUnreachablesBeyondTheOutboxWaitForTheNextTimerRun() {
        var t = makeStateful { $0.maxHeldSYNs = 128 }
        for i in 0..<100 { #expect(run(&t, tcp4(server4, UInt16(1000 + i), poolFirst, 8080, [.syn]), at: at(0)).verdict == .held) }
        #expect(expire(&t, at: at(6)).count == 64)
        #expect(expire(&t, at: at(6.1)).count == 36)
        #expect(t.mapping.heldSYNCount == 0)
        let m = t.mapping.counters
        #expect(m.dropped(.unsolicitedSYN) == 100 && m.icmpErrorsGenerated == 100 && m.dropped(.outboxFull) == 0)
    }

    @Test func rfc6146_3_5_2_2_withoutProbesEstablishedEndsAtTCPEST() {
        var t = makeStateful { $0.tcpProbes = false }
        _ = open(&t, at: 0)
        let gen = expire(&t, at: at(7440))
        #expect(gen.isEmpty)
        let h31 = state(t)
        #expect(h31 == nil)
    }

    @Test func rfc6146_4_tcpEstablishedRefreshedByEitherSide() {
        var t = makeStateful()
        let b = open(&t, at: 0)
        _ = run(&t, tcp4(server4, 80, b.ipv4, b.ipv4Port, [.ack], seq: 5001, ack: 1001, n: 10), at: at(7000))
        _ = expire(&t, at: at(7440))
        let h32 = state(t)
        #expect(h32 == .established, "the IPv4 side's segment at 7000 s refreshed it")
        _ = expire(&t, at: at(7000 + 7440))
        let h33 = state(t)
        #expect(h33 == .transitory)
    }

    // MARK: Unsolicited SYNs

    @Test func rfc6146_3_5_2_2_v4SYNHeldSixSecondsThenPortUnreachable() throws {
        var t = makeStateful()
        let syn = tcp4(server4, 4321, poolFirst, 8080, [.syn], seq: 77, df: true)
        let r = run(&t, syn, at: at(10))
        #expect(r.verdict == .held)
        #expect(r.bytes.isEmpty && r.generated.isEmpty)
        let c = t.counters4to6
        #expect(c.synsHeld == 1 && c.totalDropped == 0)
        #expect(t.mapping.heldSYNCount == 1)
        #expect(expire(&t, at: at(15.999)).isEmpty)
        let gen = expire(&t, at: at(16))
        var ip = IPv4Header(protocolNumber: IPProtocol.icmp, source: poolFirst, destination: server4, ttl: 64, identification: 1)
        ip.tos = 0
        let expected = PacketBuilder.ipv4(ip, payload: Array(PacketBuilder.icmp4Error(
            source: poolFirst, destination: server4, type: ICMPv4Type.destinationUnreachable, code: ICMPv4UnreachableCode.port,
            original: syn)[20...]))
        #expect(gen.count == 1)
        #expect(gen.first?.bytes == expected, "\(diff(gen.first?.bytes ?? [], expected))")
        #expect(gen.first?.verdict == toIPv4)
        #expect(t.mapping.heldSYNCount == 0)
        let m = t.mapping.counters
        #expect(m.dropped(.unsolicitedSYN) == 1 && m.icmpErrorsGenerated == 1)
        #expect(t.mapping.sessionCount == 0 && t.mapping.bindingCount == 0, "a held SYN makes no state")
    }

    @Test func rfc6146_3_5_2_2_heldSYNSilentlyDroppedByPolicy() {
        var t = makeStateful { $0.unsolicitedSYN = .drop }
        #expect(run(&t, tcp4(server4, 4321, poolFirst, 8080, [.syn]), at: at(0)).verdict == .held)
        #expect(expire(&t, at: at(6)).isEmpty)
        let m = t.mapping.counters
        #expect(m.dropped(.unsolicitedSYN) == 1)
    }

    @Test func rfc6146_3_5_2_2_v6SYNForTheConnectionDiscardsTheHeldSYN() throws {
        // One address and port preservation, so that the IPv6 host's BIB entry is exactly (T, 8080).
        var t = makeStateful { $0.pool = [IPv4Prefix("198.51.100.64/32")!]; $0.portPreservation = true }
        #expect(run(&t, tcp4(server4, 4321, poolFirst, 8080, [.syn], seq: 77), at: at(0)).verdict == .held)
        let r = run(&t, tcp6(host6, 8080, server6, 4321, [.syn], seq: 500), at: at(1))
        #expect(r.verdict == toIPv4)
        let h34 = bib(t, .tcp, host6, 8080)
        #expect(try #require(h34).ipv4Port == 8080)
        #expect(t.mapping.heldSYNCount == 0, "the held SYN is discarded")
        #expect(expire(&t, at: at(7)).isEmpty, "and never answered")
        // The IPv4 host retransmits its SYN: simultaneous open completes.
        #expect(run(&t, tcp4(server4, 4321, poolFirst, 8080, [.syn], seq: 77), at: at(2)).verdict == toIPv6)
        let h35 = t.mapping.session(.tcp, ipv6: host6, port: 8080, remote: server4, remotePort: 4321, now: at(2))
        #expect(h35?.tcpState == .established)
    }

    @Test func rfc6146_3_5_2_2_addressDependentFilteringHoldsSYNFromAnotherHost() throws {
        var t = makeStateful { $0.filtering = .addressDependent }
        let b = open(&t)
        // server4b has no session with this BIB entry: its SYN waits 6 s for the IPv6 host's SYN.
        #expect(run(&t, tcp4(server4b, 80, b.ipv4, b.ipv4Port, [.syn], seq: 9000), at: at(2)).verdict == .held)
        #expect(run(&t, tcp6(host6, 40000, server6b, 80, [.syn], seq: 3), at: at(3)).verdict == toIPv4)
        #expect(t.mapping.heldSYNCount == 0)
        #expect(run(&t, tcp4(server4b, 80, b.ipv4, b.ipv4Port, [.syn, .ack], seq: 9000, ack: 4), at: at(3)).verdict == toIPv6)
        let h36 = state(t, server4b)
        #expect(h36 == .established)
    }

    @Test func rfc6146_3_5_2_2_sameSYNHeldOnce() {
        var t = makeStateful()
        let syn = tcp4(server4, 4321, poolFirst, 8080, [.syn])
        #expect(run(&t, syn, at: at(0)).verdict == .held)
        #expect(run(&t, syn, at: at(1)).verdict == .drop(.unsolicitedSYN), "a retransmission is not kept twice")
        #expect(t.mapping.heldSYNCount == 1)
    }

    @Test func rfc6146_3_5_2_2_heldSYNsBoundedByTheirTable() {
        var t = makeStateful { $0.maxHeldSYNs = 2 }
        #expect(run(&t, tcp4(server4, 1, poolFirst, 8080, [.syn]), at: at(0)).verdict == .held)
        #expect(run(&t, tcp4(server4, 2, poolFirst, 8080, [.syn]), at: at(0)).verdict == .held)
        #expect(run(&t, tcp4(server4, 3, poolFirst, 8080, [.syn]), at: at(0)).verdict == .drop(.unsolicitedSYN))
    }

    @Test func rfc6146_3_5_2_2_externallyInitiatedConnectionsDroppedByPolicy() {
        var t = makeStateful {
            $0.dropExternallyInitiatedTCP = true
            $0.staticBindings = [NAT64StaticBinding(proto: .tcp, ipv6: host6, ipv6Port: 80, ipv4: poolFirst, ipv4Port: 80)]
        }
        #expect(run(&t, tcp4(server4, 4000, poolFirst, 80, [.syn]), at: at(0)).verdict == .drop(.filtered))
        #expect(t.mapping.heldSYNCount == 0)
        // Outbound connections still work.
        #expect(run(&t, tcp6([.syn]), at: at(0)).verdict == toIPv4)
    }

    @Test func rfc6146_3_5_2_2_v6SegmentOtherThanSYNWithoutStateDropped() {
        var t = makeStateful()
        #expect(run(&t, tcp6([.ack], seq: 5, ack: 6), at: at(0)).verdict == .drop(.tcpNotSYN))
        #expect(run(&t, tcp6([.rst]), at: at(0)).verdict == .drop(.tcpNotSYN))
        #expect(t.mapping.sessionCount == 0 && t.mapping.hostCount == 0)
    }

    @Test func rfc6146_3_5_2_2_v6SegmentWithBIBButNoSessionTranslatedWithoutState() throws {
        var t = makeStateful()
        _ = open(&t)
        let h37 = bib(t, .tcp, host6, 40000)
        let b = try #require(h37)
        // Same IPv6 transport address, another server, not a SYN: CLOSED, "state remains unchanged".
        let r = run(&t, tcp6(host6, 40000, server6b, 443, [.ack], seq: 1, ack: 2), at: at(2))
        #expect(r.verdict == toIPv4)
        #expect(Array(r.bytes[12..<16]) == Array(tcp4(b.ipv4, b.ipv4Port, server4b, 443, [.ack])[12..<16]))
        #expect(t.mapping.sessionCount == 1)
        // And from the IPv4 side likewise (endpoint-independent filtering lets it in).
        #expect(run(&t, tcp4(server4b, 443, b.ipv4, b.ipv4Port, [.ack], seq: 2, ack: 2), at: at(2)).verdict == toIPv6)
        #expect(t.mapping.sessionCount == 1)
    }

    @Test func rfc6146_3_5_2_2_v4SegmentOtherThanSYNWithoutBIBDropped() {
        var t = makeStateful()
        #expect(run(&t, tcp4(server4, 80, poolFirst, 40000, [.ack]), at: at(0)).verdict == .drop(.noMapping))
    }
}
