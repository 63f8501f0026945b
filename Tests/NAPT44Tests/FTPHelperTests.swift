import Testing
import NATWire
import NATCore
@testable import NAPT44

/// An FTP control segment with a payload (and optional TCP options).
func ftpSegment(_ s: IPv4Address, _ sp: UInt16, _ d: IPv4Address, _ dp: UInt16, seq: UInt32, ack: UInt32,
                _ text: String, options: [UInt8] = []) -> [UInt8] {
    PacketBuilder.tcp4(source: s, destination: d,
                       header: TCPHeader(sourcePort: sp, destinationPort: dp, flags: [.ack, .psh], sequenceNumber: seq,
                                         acknowledgmentNumber: ack, options: options),
                       payload: Array(text.utf8))
}

/// A segment's sequence and acknowledgment numbers and payload text.
func segmentFields(_ bytes: [UInt8]) -> (seq: UInt32, ack: UInt32, text: String) {
    bytes.withUnsafeBytes { b in
        let ip = try! IPv4View(validating: b)
        let tcp = b.baseAddress! + ip.headerLength
        let hl = TCPSegmentEdit.headerLength(tcp)
        let payload = Array(b[(ip.headerLength + hl)..<ip.count])
        return (TCPSegmentEdit.sequenceNumber(tcp), TCPSegmentEdit.acknowledgmentNumber(tcp), String(decoding: payload, as: UTF8.self))
    }
}

/// The SACK edges of a segment.
func sackEdges(_ bytes: [UInt8]) -> [UInt32] {
    var edges: [UInt32] = []
    var copy = bytes
    copy.withUnsafeMutableBytes { b in
        let ip = try! IPv4View(validating: UnsafeRawBufferPointer(b))
        TCPSegmentEdit.rewriteSACKEdges(b.baseAddress! + ip.headerLength, length: ip.count - ip.headerLength) { edges.append($0); return $0 }
    }
    return edges
}

/// RFC 2018 §3 SACK option with the given blocks, padded with NOPs in front.
func sackOption(_ blocks: [(UInt32, UInt32)]) -> [UInt8] {
    var o: [UInt8] = [1, 1, 5, UInt8(2 + 8 * blocks.count)]
    for (l, r) in blocks {
        for v in [l, r] { o += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    }
    return o
}

@Suite("FTP helper (RFC 959, RFC 2428), expectations and TCP sequence adjustment (issue 15)")
struct FTPHelperTests {
    /// Client 100.64.0.2:40000 opens a control connection to 203.0.113.2:21 (SYN, SYN-ACK, ACK); the
    /// client's ISN is 1000 and the server's 5000.
    func control(_ edit: (inout NAPT44Configuration) -> Void = { _ in }) -> NAPT44Engine {
        var e = engine(config(.portRestrictedCone, edit))
        #expect(send(&e, tcp(clientA, 40000, serverX, 21, .syn, seq: 1000)).0 == .toOutside)
        #expect(send(&e, tcp(serverX, 21, poolP, 40000, [.syn, .ack], seq: 5000, ack: 1001)).0 == .toInside(tenant: 0))
        #expect(send(&e, tcp(clientA, 40000, serverX, 21, .ack, seq: 1001, ack: 5001)).0 == .toOutside)
        return e
    }

    func helpedSession(_ e: borrowing NAPT44Engine) -> UInt32 {
        e.table.lookupFromInside(tenant: 0, proto: IPProtocol.tcp, insideAddress: clientA.rawValue, insidePort: 40000,
                                 remoteAddress: serverX.rawValue, remotePort: 21)
    }

    /// Sends the PORT command and returns the rewritten segment from the outbox.
    func sendPort(_ e: inout NAPT44Engine, _ text: String = "PORT 100,64,0,2,39,16\r\n", seq: UInt32 = 1001) -> [UInt8]? {
        let (v, _) = send(&e, ftpSegment(clientA, 40000, serverX, 21, seq: seq, ack: 5001, text))
        guard v == .held else { Issue.record("PORT segment verdict \(v)"); return nil }
        let out = outputs(&e)
        #expect(out.count == 1)
        return out.first.map { $0.0 }
    }

    @Test func rfc959_port_rewrittenToOutsideEndpointWithLengthChange() throws {
        var e = control()
        let sid = helpedSession(e)
        #expect(e.table.sessions[Int(sid)].isHelped)
        let outSent = sendPort(&e)
        let out = try #require(outSent)
        #expect(checksumsValid(out))
        let f = segmentFields(out)
        // 100,64,0,2 (10 characters) became 198,51,100,1 (12): the segment grew by two bytes.
        #expect(f.text == "PORT 198,51,100,1,39,16\r\n")
        #expect(f.seq == 1001)
        #expect(parse(out).source == poolP && parse(out).destination == serverX)
        #expect(e.counters.helperRewrites == 1)
        #expect(e.helperState(session: sid)?.outbound.after == 2)
        let x = e.liveExpectations()
        #expect(x.count == 1)
        #expect(x.first?.outsidePort == 10000 && x.first?.insidePort == 10000 && x.first?.master == sid)
        #expect(x.first?.remoteAddress == serverX.rawValue && x.first?.remotePort == 0)
    }

    @Test func rfc2428_eprt_rewritten() throws {
        var e = control()
        let outSent = sendPort(&e, "EPRT |1|100.64.0.2|10001|\r\n")
        let out = try #require(outSent)
        #expect(checksumsValid(out))
        #expect(segmentFields(out).text == "EPRT |1|198.51.100.1|10001|\r\n")
        #expect(e.liveExpectations().first?.insidePort == 10001)
    }

    @Test func portOfTheSameLength_rewrittenInPlace() {
        // An inside address as long as the outside one: no resize, the segment is forwarded where it is.
        var e = engine(config(.portRestrictedCone))
        let client = IPv4Address("100.64.100.2")!
        #expect(send(&e, tcp(client, 40000, serverX, 21, .syn, seq: 1000)).0 == .toOutside)
        let (v, out) = send(&e, ftpSegment(client, 40000, serverX, 21, seq: 1001, ack: 5001, "PORT 100,64,100,2,39,16\r\n"))
        #expect(v == .toOutside)
        #expect(segmentFields(out).text == "PORT 198,51,100,1,39,16\r\n")
        #expect(checksumsValid(out))
    }

    @Test func sequenceAdjustment_laterSegmentsAndAcknowledgments() throws {
        var e = control()
        let sent = sendPort(&e)
        _ = try #require(sent)
        // The next client segment: SEQ moved by +2.
        let (v1, next) = send(&e, ftpSegment(clientA, 40000, serverX, 21, seq: 1024, ack: 5001, "RETR x\r\n"))
        #expect(v1 == .toOutside)
        #expect(segmentFields(next).seq == 1026)
        #expect(checksumsValid(next))
        // The server acknowledges the rewritten stream (1026 + 8 = 1034): the client sees 1032.
        let (v2, reply) = send(&e, ftpSegment(serverX, 21, poolP, 40000, seq: 5001, ack: 1034, "200 PORT command successful.\r\n"))
        #expect(v2 == .toInside(tenant: 0))
        #expect(segmentFields(reply).ack == 1032)
        #expect(checksumsValid(reply))
        // An acknowledgment of the rewritten segment's start only (not past it): unchanged.
        let (_, early) = send(&e, tcp(serverX, 21, poolP, 40000, .ack, seq: 5031, ack: 1001))
        #expect(segmentFields(early).ack == 1001)
    }

    @Test func sequenceAdjustment_retransmittedRewrittenSegmentGetsTheSameRewrite() throws {
        var e = control()
        let firstSent = sendPort(&e)
        let first = try #require(firstSent)
        let againSent = sendPort(&e)
        let again = try #require(againSent)
        #expect(first == again)
        let sid = helpedSession(e)
        // The offset is not counted twice.
        #expect(e.helperState(session: sid)?.outbound.after == 2)
        #expect(e.helperState(session: sid)?.outbound.before == 0)
        #expect(e.liveExpectations().count == 1)
        let (_, next) = send(&e, ftpSegment(clientA, 40000, serverX, 21, seq: 1024, ack: 5001, "RETR x\r\n"))
        #expect(segmentFields(next).seq == 1026)
    }

    @Test func sequenceAdjustment_secondRewriteAccumulates() throws {
        var e = control()
        let sent = sendPort(&e)
        _ = try #require(sent)
        let outSent = sendPort(&e, "PORT 100,64,0,2,39,17\r\n", seq: 1024)
        let out = try #require(outSent)
        #expect(segmentFields(out).seq == 1026)
        #expect(segmentFields(out).text == "PORT 198,51,100,1,39,17\r\n")
        let (_, next) = send(&e, ftpSegment(clientA, 40000, serverX, 21, seq: 1047, ack: 5001, "LIST\r\n"))
        #expect(segmentFields(next).seq == 1051)
        // Acknowledgments between the two rewrites take the first offset, after both the sum.
        let (_, mid) = send(&e, tcp(serverX, 21, poolP, 40000, .ack, seq: 5001, ack: 1026))
        #expect(segmentFields(mid).ack == 1024)
        let (_, late) = send(&e, tcp(serverX, 21, poolP, 40000, .ack, seq: 5001, ack: 1057))
        #expect(segmentFields(late).ack == 1053)
    }

    @Test func rfc2018_sackBlocksTakenBackToTheClientsSequenceSpace() throws {
        var e = control()
        let sent = sendPort(&e)
        _ = try #require(sent)
        let p = PacketBuilder.tcp4(source: serverX, destination: poolP,
                                   header: TCPHeader(sourcePort: 21, destinationPort: 40000, flags: .ack, sequenceNumber: 5001,
                                                     acknowledgmentNumber: 1026, options: sackOption([(1034, 1040), (990, 1001)])))
        let (v, out) = send(&e, p)
        #expect(v == .toInside(tenant: 0))
        #expect(checksumsValid(out))
        #expect(sackEdges(out) == [1032, 1038, 990, 1001])
    }

    @Test func expectation_consumedOnceByTheServersDataConnection() throws {
        var e = control()
        let sent = sendPort(&e)
        _ = try #require(sent)
        // Active mode: the server connects from its port 20 to the announced (outside) endpoint.
        let (v, out) = send(&e, tcp(serverX, 20, poolP, 10000, .syn, seq: 9000))
        #expect(v == .toInside(tenant: 0))
        let p = parse(out)
        #expect(p.destination == clientA && p.destinationPort == 10000 && p.source == serverX && p.sourcePort == 20)
        #expect(checksumsValid(out))
        #expect(e.counters.expectationsUsed == 1)
        #expect(e.liveExpectations().isEmpty)
        // The data connection is an ordinary session: the client's SYN-ACK goes out through it.
        let (v2, back) = send(&e, tcp(clientA, 10000, serverX, 20, [.syn, .ack], seq: 7000, ack: 9001))
        #expect(v2 == .toOutside)
        #expect(parse(back).source == poolP && parse(back).sourcePort == 10000)
        // A second connection to the same port from elsewhere finds no expectation (port-restricted cone).
        let (v3, _) = send(&e, tcp(serverX, 2020, poolP, 10000, .syn, seq: 1))
        #expect(v3 != .toInside(tenant: 0))
        #expect(e.counters.expectationsUsed == 1)
    }

    @Test func expectation_fromAnotherRemote_notConsumed() throws {
        var e = control()
        let sent = sendPort(&e)
        _ = try #require(sent)
        let (v, _) = send(&e, tcp(serverY, 20, poolP, 10000, .syn, seq: 9000))
        #expect(v != .toInside(tenant: 0))
        #expect(e.liveExpectations().count == 1)
    }

    @Test func expectation_expires() throws {
        var e = control { $0.helpers.expectationTimeout = 30 }
        let sent = sendPort(&e)
        _ = try #require(sent)
        let (v, _) = send(&e, tcp(serverX, 20, poolP, 10000, .syn, seq: 9000), at: 31)
        #expect(v != .toInside(tenant: 0))
        #expect(e.counters.expectationsUsed == 0)
        #expect(e.liveExpectations().isEmpty)
    }

    @Test func expectation_refusedOverThePerSessionLimit() throws {
        var e = control { $0.helpers.maxExpectationsPerSession = 2 }
        var seq: UInt32 = 1001
        for port in 0..<2 {
            let outSent = sendPort(&e, "PORT 100,64,0,2,39,\(16 + port)\r\n", seq: seq)
        let out = try #require(outSent)
            seq &+= UInt32(segmentFields(out).text.utf8.count - 2)
        }
        // The third is refused and forwarded as it was (the server's connection then fails, as without a helper).
        let text = "PORT 100,64,0,2,39,30\r\n"
        let (v, out) = send(&e, ftpSegment(clientA, 40000, serverX, 21, seq: seq, ack: 5001, text))
        #expect(v == .toOutside)
        #expect(segmentFields(out).text == text)
        #expect(e.counters.expectationsRefused == 1)
        #expect(e.liveExpectations().count == 2)
    }

    @Test func expectation_refusedWhenTheTableIsFull() {
        var t = ExpectationTable(capacity: 2, perMaster: 4)
        func x(_ master: UInt32, _ port: UInt16, expiry: UInt32 = 100) -> NATCore.Expectation {
            NATCore.Expectation(proto: IPProtocol.tcp, remoteAddress: 1, remotePort: 0, outsideAddress: 2, outsidePort: port,
                        insideAddress: 3, insidePort: port, tenant: 0, master: master, expiry: expiry)
        }
        #expect(t.add(x(1, 10), now: 0) == .added)
        #expect(t.add(x(2, 11), now: 0) == .added)
        #expect(t.add(x(3, 12), now: 0) == .full)
        // Expired ones make room without a sweep.
        #expect(t.add(x(3, 12, expiry: 200), now: 100) == .added)
        #expect(t.take(proto: IPProtocol.tcp, outsideAddress: 2, outsidePort: 12, remoteAddress: 1, remotePort: 20, now: 101) != nil)
        #expect(t.take(proto: IPProtocol.tcp, outsideAddress: 2, outsidePort: 12, remoteAddress: 1, remotePort: 20, now: 101) == nil)
    }

    @Test func expectations_endWithTheirMasterSession() throws {
        var e = control()
        let sid = helpedSession(e)
        let sent = sendPort(&e)
        _ = try #require(sent)
        // Both FINs and the last ACK, then the transitory timer.
        send(&e, ftpSegment(clientA, 40000, serverX, 21, seq: 1024, ack: 5001, ""), at: 1)
        send(&e, tcp(clientA, 40000, serverX, 21, [.fin, .ack], seq: 1024, ack: 5001), at: 1)
        send(&e, tcp(serverX, 21, poolP, 40000, [.fin, .ack], seq: 5001, ack: 1027), at: 1)
        e.expire(now: .seconds(100_000))
        #expect(e.liveExpectations().isEmpty)
        #expect(e.helperState(session: sid) == nil)
    }

    /// A client that pipelines its commands: the PORT is the third line of the segment.
    @Test func portAfterOtherCommandsInTheSameSegment() throws {
        var e = control()
        let sentPipelined = sendPort(&e, "USER anonymous\r\nPASS x\r\nPORT 100,64,0,2,39,16\r\nLIST\r\n")
        let out = try #require(sentPipelined)
        #expect(segmentFields(out).text == "USER anonymous\r\nPASS x\r\nPORT 198,51,100,1,39,16\r\nLIST\r\n")
        #expect(checksumsValid(out))
    }

    @Test func commandSplitOverTwoSegments_countedAndForwardedUnchanged() {
        var e = control()
        let (v, out) = send(&e, ftpSegment(clientA, 40000, serverX, 21, seq: 1001, ack: 5001, "PORT 100,64,0,"))
        #expect(v == .toOutside)
        #expect(segmentFields(out).text == "PORT 100,64,0,")
        #expect(e.counters.helperSplitCommands == 1)
        #expect(e.liveExpectations().isEmpty)
    }

    @Test func thirdPartyAddress_notRewritten() {
        var e = control()
        let text = "PORT 192,0,2,9,39,16\r\n"
        let (v, out) = send(&e, ftpSegment(clientA, 40000, serverX, 21, seq: 1001, ack: 5001, text))
        #expect(v == .toOutside)
        #expect(segmentFields(out).text == text)
        #expect(e.liveExpectations().isEmpty)
    }

    @Test func rfc959_passiveReply227_forwardedUnchanged() {
        // The client is inside, the server's address is public: the client connects out to it as usual.
        var e = control()
        let text = "227 Entering Passive Mode (203,0,113,2,195,80).\r\n"
        let (v, out) = send(&e, ftpSegment(serverX, 21, poolP, 40000, seq: 5001, ack: 1001, text))
        #expect(v == .toInside(tenant: 0))
        #expect(segmentFields(out).text == text)
        #expect(checksumsValid(out))
        let (v2, _) = send(&e, tcp(clientA, 40001, serverX, 50000, .syn, seq: 1))
        #expect(v2 == .toOutside)
    }

    @Test func rfc4787_req10_helpersConfigurable_offWithEmptyList() {
        var e = engine(config(.portRestrictedCone) { $0.helpers.ftpPorts = [] })
        send(&e, tcp(clientA, 40000, serverX, 21, .syn, seq: 1000))
        let text = "PORT 100,64,0,2,39,16\r\n"
        let (v, out) = send(&e, ftpSegment(clientA, 40000, serverX, 21, seq: 1001, ack: 5001, text))
        #expect(v == .toOutside)
        #expect(segmentFields(out).text == text)
        var f = engine(config(.portRestrictedCone) { $0.helpers.ftpPorts = [2121] })
        send(&f, tcp(clientA, 40000, serverX, 2121, .syn, seq: 1000))
        #expect(send(&f, ftpSegment(clientA, 40000, serverX, 2121, seq: 1001, ack: 5001, text)).0 == .held)
    }

    /// A reload may change the helper ports (new sessions follow them) but not the expectation table's size.
    @Test func reloadChangesHelperPortsNotTableSize() throws {
        var e = engine(config(.portRestrictedCone))
        var c = e.configuration
        c.helpers.ftpPorts = [2121]
        try e.reconfigure(c, now: .seconds(1))
        send(&e, tcp(clientA, 40000, serverX, 2121, .syn, seq: 1000), at: 1)
        #expect(send(&e, ftpSegment(clientA, 40000, serverX, 2121, seq: 1001, ack: 5001, "PORT 100,64,0,2,39,16\r\n"), at: 1).0 == .held)
        c.helpers.maxExpectations = 8
        #expect(NAPT44Engine.restartReason(from: e.configuration, to: c) == "helpers.max_expectations")
    }

    @Test func rfc5382_req6_ftpHelperOnByDefault() {
        #expect(NAPT44Configuration().helpers.ftpPorts == [21])
    }

    /// Helped sessions never take the fast path, in bursts as in single packets: the sequence offset
    /// must be applied to every segment.
    @Test func helpedSessionsSkipTheFastPath_singleAndBurst() throws {
        var e = control()
        let sent = sendPort(&e)
        _ = try #require(sent)
        var p0 = ftpSegment(clientA, 40000, serverX, 21, seq: 1024, ack: 5001, "NOOP\r\n")
        var p1 = ftpSegment(clientA, 40000, serverX, 21, seq: 1030, ack: 5001, "NOOP\r\n")
        var verdicts = [Verdict](repeating: .held, count: 2)
        p0.withUnsafeMutableBytes { a in
            p1.withUnsafeMutableBytes { b in
                let bufs = [a, b]
                bufs.withUnsafeBufferPointer { p in
                    verdicts.withUnsafeMutableBufferPointer { v in
                        e.translateOutbound(burst: p.baseAddress!, count: 2, verdicts: v.baseAddress!, now: .seconds(1))
                    }
                }
            }
        }
        let packets = [p0, p1]
        #expect(verdicts == [.toOutside, .toOutside])
        #expect(segmentFields(packets[0]).seq == 1026 && segmentFields(packets[1]).seq == 1032)
        #expect(checksumsValid(packets[0]) && checksumsValid(packets[1]))
        // Inbound too (fast inbound would leave the acknowledgment alone).
        var reply = ftpSegment(serverX, 21, poolP, 40000, seq: 5001, ack: 1038, "200 NOOP ok\r\n")
        let v = reply.withUnsafeMutableBytes { e.translateInbound($0, now: .seconds(1)) }
        #expect(v == .toInside(tenant: 0))
        #expect(segmentFields(reply).ack == 1036)
    }

    @Test func offloadedSegmentsOfHelperPortsMustBePlain() {
        var e = engine(config(.portRestrictedCone))
        var p = ftpSegment(clientA, 40000, serverX, 21, seq: 1, ack: 1, "x")
        var q = ftpSegment(clientA, 40000, serverX, 80, seq: 1, ack: 1, "x")
        #expect(p.withUnsafeMutableBytes { e.needsPlainPacket($0) })
        #expect(!q.withUnsafeMutableBytes { e.needsPlainPacket($0) })
        _ = send(&e, p)
    }

    @Test func ftpParser_acceptsAndRefuses() {
        func parsed(_ s: String) -> FTPCommand.Parsed { Array(s.utf8).withUnsafeBytes { FTPCommand.parse($0) } }
        #expect(parsed("PORT 100,64,0,2,39,16\r\n") == .port(address: 0x6440_0002, port: 10000, lineLength: 23))
        #expect(parsed("port 100,64,0,2,39,16\n") == .port(address: 0x6440_0002, port: 10000, lineLength: 22))
        #expect(parsed("PORT 100,64,0,256,39,16\r\n") == .none)
        #expect(parsed("PORT 100,64,0,2,39\r\n") == .none)
        #expect(parsed("PORT 1,2,3,4,5,6,7\r\n") == .none)
        #expect(parsed("PO") == .split)
        #expect(parsed("USER anonymous\r\n") == .none)
        #expect(parsed("EPRT |2|2001:db8::1|5282|\r\n") == .none)
        #expect(parsed("EPRT !1!100.64.0.2!5282!\r\n") == .eprt(address: 0x6440_0002, port: 5282, lineLength: 26, delimiter: 33))
        let found = Array("USER a\r\nPASS x\r\nPORT 100,64,0,2,39,16\r\n".utf8).withUnsafeBytes { FTPCommand.find($0) }
        #expect(found.offset == 16 && found.command == .port(address: 0x6440_0002, port: 10000, lineLength: 23))
    }
}
