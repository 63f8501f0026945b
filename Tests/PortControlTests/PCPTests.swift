import NATWire
import Testing
@testable import PortControl

@Suite struct PCPTests {
    static let mapHeader = "02 01 0000 00000e10 00000000 00000000 0000ffff 64400002"
    static let nonce = "0102030405060708090a0b0c"
    /// MAP TCP, internal 8080, suggested 9090, no suggested address.
    static let mapBody = nonce + "06 000000 1f90 2382 00000000 00000000 00000000 00000000"
    static let peerHeader = "02 02 0000 00000e10 00000000 00000000 0000ffff 64400002"
    static var map: [UInt8] { hex(mapHeader + mapBody) }

    @Test func rfc6887_11_1_mapRequestTakenApartFieldByField() throws {
        let r = try PCP.parse(Self.map)
        #expect(r.opcode == .map && r.lifetime == 3600 && r.clientAddress == IPv6Address(ipv4Mapped: client))
        #expect(r.mapping == PCP.MappingData(nonce: hex(Self.nonce), protocolNumber: 6, internalPort: 8080, suggestedExternalPort: 9090,
                                             suggestedExternalAddress: .any))
        #expect(r.thirdParty == nil && !r.preferFailure)
        // Built back by the client builder, byte for byte.
        #expect(PCP.request(.map, lifetime: 3600, client: IPv6Address(ipv4Mapped: client), mapping: r.mapping) == Self.map)
    }

    @Test func rfc6887_11_4_mapSuccessResponseFieldByField() {
        let b = MemoryBackend()
        let answer = service().handleDatagram(Self.map, from: client, now: 1010, backend: b)
        let expected = hex("02 81 00 00 00000e10 0000000a 000000000000000000000000" + Self.nonce
                           + "06 000000 1f90 2382 00000000 00000000 0000ffff c6336401")
        #expect(answer == expected)
        #expect(b.table.first?.nonce == hex(Self.nonce) && b.table.first?.origin == .pcp)
    }

    @Test func rfc6887_11_3_anotherNonceMayNotTouchTheMapping() {
        let b = MemoryBackend()
        let s = service()
        _ = s.handleDatagram(Self.map, from: client, now: 1000, backend: b)
        var other = Self.map
        other[24] = 0xEE
        let answer = s.handleDatagram(other, from: client, now: 1001, backend: b)!
        #expect(answer[3] == PCP.ResultCode.notAuthorized.rawValue && answer[1] == 0x81)
        // Same nonce, lifetime 0: deleted.
        var delete = Self.map
        delete[4...7] = [0, 0, 0, 0]
        let gone = s.handleDatagram(delete, from: client, now: 1002, backend: b)!
        #expect(gone[3] == 0 && Array(gone[4..<8]) == [0, 0, 0, 0] && b.table.isEmpty)
    }

    @Test("RFC 6887 §7, §8.3: a request of 55 bytes gets MALFORMED_REQUEST in whole words, over IPv4 and IPv6 (found by fuzz-portcontrol)")
    func rfc6887_7_errorAnswersAreWholeWords() {
        let b = MemoryBackend()
        let odd = Array(Self.map.prefix(55))
        let a = service().handleDatagram(odd, from: client, now: 1000, backend: b)!
        #expect(a[3] == PCP.ResultCode.malformedRequest.rawValue && a.count == 52)
        // The same over IPv6 (the stateful NAT64's PCP), the fuzz target's input.
        let r = PCP.response(opcode: 1, result: .malformedRequest, lifetime: 30, epoch: 0, body: [1, 2, 3])
        #expect(r.count == 28 && Array(r[24...]) == [1, 2, 3, 0])
    }

    @Test func rfc6887_8_3_malformedRequestsAndVersions() {
        let b = MemoryBackend()
        let s = service()
        // Not a multiple of 4, under 24 bytes, over 1100 bytes: MALFORMED_REQUEST.
        for bad in [Self.map + [0], Array(Self.map.prefix(20)), Self.map + [UInt8](repeating: 0, count: 1044)] {
            let a = s.handleDatagram(bad, from: client, now: 1000, backend: b)!
            #expect(a[0] == 2 && a[1] == 0x81 && a[3] == PCP.ResultCode.malformedRequest.rawValue && a.count <= 1100)
            #expect(a.count % 4 == 0, "§7: every PCP message is a multiple of 4 bytes; the answer has \(a.count)")
        }
        // MAP shorter than its 36 bytes of data.
        let short = s.handleDatagram(Array(Self.map.prefix(56)), from: client, now: 1000, backend: b)!
        #expect(short[3] == PCP.ResultCode.malformedRequest.rawValue)
        // A response (R bit set) and a lone byte: silence.
        var response = Self.map
        response[1] |= 0x80
        #expect(s.handleDatagram(response, from: client, now: 1000, backend: b) == nil)
        // Version 3: UNSUPP_VERSION, answered as version 2 (§9).
        var v3 = Self.map
        v3[0] = 3
        let a = s.handleDatagram(v3, from: client, now: 1000, backend: b)!
        #expect(a[0] == 2 && a[3] == PCP.ResultCode.unsupportedVersion.rawValue && a.count == 24)
        // Opcode 5: UNSUPP_OPCODE.
        var op = Self.map
        op[1] = 5
        #expect(s.handleDatagram(op, from: client, now: 1000, backend: b)![3] == PCP.ResultCode.unsupportedOpcode.rawValue)
        #expect(b.table.isEmpty)
    }

    @Test func rfc6887_8_3_clientAddressMustBeTheSource() {
        let a = service().handleDatagram(Self.map, from: other, now: 1000, backend: MemoryBackend())!
        #expect(a[3] == PCP.ResultCode.addressMismatch.rawValue && Array(a[4..<8]) == hex("00000708"))
    }

    @Test func rfc6887_7_3_optionsMandatoryOptionalAndBroken() {
        let s = service(), b = MemoryBackend()
        // Option 0x7f (mandatory, unknown): UNSUPP_OPTION; 0x80 (optional, unknown): ignored.
        let unknown = s.handleDatagram(Self.map + PCP.option(0x7F, []), from: client, now: 1000, backend: b)!
        #expect(unknown[3] == PCP.ResultCode.unsupportedOption.rawValue)
        let optional = s.handleDatagram(Self.map + PCP.option(0x80, [1, 2, 3]), from: client, now: 1000, backend: b)!
        #expect(optional[3] == 0)
        // An option whose length runs past the message: MALFORMED_OPTION.
        let past = s.handleDatagram(Self.map + hex("01 00 0010 00000000"), from: client, now: 1000, backend: b)!
        #expect(past[3] == PCP.ResultCode.malformedOption.rawValue)
        // PREFER_FAILURE twice: MALFORMED_OPTION.
        let twice = s.handleDatagram(Self.map + PCP.option(2, []) + PCP.option(2, []), from: client, now: 1000, backend: b)!
        #expect(twice[3] == PCP.ResultCode.malformedOption.rawValue)
    }

    @Test func rfc6887_13_1_thirdPartyRefusedInSecureModeAllowedOtherwise() {
        var addr: [UInt8] = []
        addr.put(IPv6Address(ipv4Mapped: other))
        let request = Self.map + PCP.option(1, addr)
        let refused = service(secure: true).handleDatagram(request, from: client, now: 1000, backend: MemoryBackend())!
        #expect(refused[3] == PCP.ResultCode.notAuthorized.rawValue)
        let b = MemoryBackend()
        let ok = service(secure: false).handleDatagram(request, from: client, now: 1000, backend: b)!
        #expect(ok[3] == 0 && b.table.first?.internalAddress == other)
        // The option is echoed in the response (§7.3).
        #expect(Array(ok[60...]) == PCP.option(1, addr))
    }

    @Test func rfc6887_13_2_preferFailureGetsCannotProvideExternal() {
        let b = MemoryBackend()
        b.table = [PortMapping(proto: .tcp, externalPort: 9090, internalAddress: other, internalPort: 1, origin: .cli)]
        let s = service()
        let strict = s.handleDatagram(Self.map + PCP.option(2, []), from: client, now: 1000, backend: b)!
        #expect(strict[3] == PCP.ResultCode.cannotProvideExternal.rawValue && strict[4..<8] == [0, 0, 0, 30])
        let lenient = s.handleDatagram(Self.map, from: client, now: 1000, backend: b)!
        #expect(lenient[3] == 0 && Array(lenient[42..<44]) != [0x23, 0x82])
        // PREFER_FAILURE is MAP's alone.
        let peer = hex(Self.peerHeader + Self.mapBody + "0050 0000 00000000 00000000 0000ffff cb007102")
        #expect(s.handleDatagram(peer + PCP.option(2, []), from: client, now: 1000, backend: b)![3] == PCP.ResultCode.malformedOption.rawValue)
    }

    static let peerRemote = "0050 0000 00000000 00000000 0000ffff cb007102"
    static var peer: [UInt8] { hex(peerHeader + mapBody + peerRemote) }

    @Test("RFC 6887 §12.3: PEER creates the flow's mapping when none exists; the answer carries its external endpoint field by field")
    func rfc6887_12_3_peerCreatesTheMapping() {
        let b = MemoryBackend()
        let answer = service().handleDatagram(Self.peer, from: client, now: 1010, backend: b)!
        // Header: version 2, PEER response, SUCCESS, lifetime = the mapping's idle lifetime (300 s < 3600 asked), epoch 10.
        let expected = hex("02 82 00 00 0000012c 0000000a 000000000000000000000000" + Self.nonce
                           + "06 000000 1f90 9c40 00000000 00000000 0000ffff c6336401" + Self.peerRemote)
        #expect(answer == expected)
        #expect(b.sessions["tcp 100.64.0.2:8080 203.0.113.2:80"]?.0 == 40000)
        // Asked again: the same mapping, no second one.
        let again = service().handleDatagram(Self.peer, from: client, now: 1011, backend: b)!
        #expect(again[3] == 0 && Array(again[42..<44]) == hex("9c40") && b.sessions.count == 1)
    }

    @Test("RFC 6887 §12.3: PEER on an existing mapping extends its lifetime and keeps its external port")
    func rfc6887_12_3_peerExtendsAnExistingMapping() {
        let b = MemoryBackend()
        b.sessions["tcp 100.64.0.2:8080 203.0.113.2:80"] = (41000, 12)
        let a = service().handleDatagram(Self.peer, from: client, now: 1000, backend: b)!
        #expect(a[3] == 0 && Array(a[42..<44]) == hex("a028") && Self.u32(a, 4) == 300)
        #expect(b.sessions["tcp 100.64.0.2:8080 203.0.113.2:80"]?.1 == 300)
        // Never more than asked for.
        var short = Self.peer
        short[4...7] = [0, 0, 0, 200]
        #expect(Self.u32(service().handleDatagram(short, from: client, now: 1000, backend: b)!, 4) == 200)
        // The lifetime is capped by max_lease.
        let capped = service { $0.maxLease = 200; $0.minLease = 100; $0.defaultLease = 150 }.handleDatagram(Self.peer, from: client, now: 1000, backend: b)!
        #expect(capped[3] == 0 && Self.u32(capped, 4) == 200)
    }

    @Test("RFC 6887 §12.3 and §15: PEER with lifetime 0 creates nothing and leaves the flow's mapping as it is")
    func rfc6887_12_3_peerLifetimeZeroOnlyReports() {
        var zero = Self.peer
        zero[4...7] = [0, 0, 0, 0]
        let b = MemoryBackend()
        let a = service().handleDatagram(zero, from: client, now: 1000, backend: b)!
        #expect(a[3] == 0 && Self.u32(a, 4) == 0 && b.sessions.isEmpty)
        b.sessions["tcp 100.64.0.2:8080 203.0.113.2:80"] = (41000, 12)
        let kept = service().handleDatagram(zero, from: client, now: 1000, backend: b)!
        #expect(kept[3] == 0 && Self.u32(kept, 4) == 0 && b.sessions["tcp 100.64.0.2:8080 203.0.113.2:80"]?.1 == 12)
    }

    @Test("RFC 6887 §7.4 and §12.3: PEER refusals: NO_RESOURCES, USER_EX_QUOTA, MALFORMED_REQUEST, UNSUPP_PROTOCOL, NETWORK_FAILURE")
    func rfc6887_12_3_peerRefusals() {
        let b = MemoryBackend()
        b.peerRefusal = .noResources
        let none = service().handleDatagram(Self.peer, from: client, now: 1000, backend: b)!
        #expect(none[1] == 0x82 && none[3] == PCP.ResultCode.noResources.rawValue && none.count == 80 && Self.u32(none, 4) == 30)
        // The error answer echoes the request's opcode data (§7.2).
        #expect(Array(none[24...]) == Array(Self.peer[24...]))
        b.peerRefusal = .quota
        #expect(service().handleDatagram(Self.peer, from: client, now: 1000, backend: b)![3] == PCP.ResultCode.userExceededQuota.rawValue)
        b.peerRefusal = .unavailable("several queues")
        #expect(service().handleDatagram(Self.peer, from: client, now: 1000, backend: b)![3] == PCP.ResultCode.networkFailure.rawValue)
        // Remote port 0, an all-zero remote address, internal port 0: MALFORMED_REQUEST.
        for (offset, count) in [(60, 2), (76, 4), (40, 2)] {
            var bad = Self.peer
            for i in offset..<(offset + count) { bad[i] = 0 }
            #expect(service().handleDatagram(bad, from: client, now: 1000, backend: b)![3] == PCP.ResultCode.malformedRequest.rawValue)
        }
        // A protocol other than TCP or UDP: UNSUPP_PROTOCOL.
        var icmp = Self.peer
        icmp[36] = 1
        #expect(service().handleDatagram(icmp, from: client, now: 1000, backend: b)![3] == PCP.ResultCode.unsupportedProtocol.rawValue)
        #expect(b.sessions.isEmpty)
    }

    @Test("RFC 6887 §13.1: PEER with THIRD_PARTY is refused in secure mode and made for the other host otherwise")
    func rfc6887_13_1_peerThirdParty() {
        var addr: [UInt8] = []
        addr.put(IPv6Address(ipv4Mapped: other))
        let request = Self.peer + PCP.option(1, addr)
        let b = MemoryBackend()
        #expect(service(secure: true).handleDatagram(request, from: client, now: 1000, backend: b)![3] == PCP.ResultCode.notAuthorized.rawValue)
        #expect(b.sessions.isEmpty)
        let ok = service(secure: false).handleDatagram(request, from: client, now: 1000, backend: b)!
        #expect(ok[3] == 0 && b.sessions["tcp 100.64.0.3:8080 203.0.113.2:80"] != nil && Array(ok[80...]) == PCP.option(1, addr))
    }

    static func u32(_ b: [UInt8], _ o: Int) -> UInt32 { b[o..<(o + 4)].reduce(0) { $0 << 8 | UInt32($1) } }

    @Test func rfc6887_14_1_announceAndEpoch() {
        let announce = hex("02 00 0000 00000000 00000000 00000000 0000ffff 64400002")
        let a = service().handleDatagram(announce, from: client, now: 1077, backend: MemoryBackend())!
        #expect(a == hex("02 80 00 00 00000000 0000004d 000000000000000000000000"))
        #expect(PCP.announce(epoch: 0) == hex("02 80 00 00 00000000 00000000 000000000000000000000000"))
    }

    @Test func rfc6887_15_deleteAllOfAClientsMappings() {
        let b = MemoryBackend(), s = service()
        _ = s.handleDatagram(Self.map, from: client, now: 1000, backend: b)
        let all = hex("02 01 0000 00000000 00000000 00000000 0000ffff 64400002" + Self.nonce
                      + "00 000000 0000 0000 00000000 00000000 00000000 00000000")
        #expect(s.handleDatagram(all, from: client, now: 1001, backend: b)![3] == 0)
        #expect(b.table.isEmpty)
    }

    @Test func hostileDatagramsNeverCrash() {
        var g = SystemRandomNumberGenerator()
        let s = service(secure: false), b = MemoryBackend()
        for i in 0..<20_000 {
            let n = Int.random(in: 0...1200, using: &g)
            var bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }
            if n > 1 && i % 2 == 0 { bytes[0] = [0, 2][i % 4 / 2] }
            if let a = s.handleDatagram(bytes, from: client, now: 1000, backend: b) { #expect(a.count <= 1100) }
        }
    }
}
