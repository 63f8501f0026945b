import NATWire
import Testing
@testable import PortControl

/// The stateful NAT64's static BIB, in memory.
final class MemoryNAT64Backend: NAT64BindingBackend {
    var table: [NAT64PortMapping] = []
    var refusal: NAT64BindRefusal? = nil
    let pool = IPv4Address("198.51.100.64")!

    func bindings(now: Double) -> [NAT64PortMapping] { table.filter { ($0.expiresAt ?? .infinity) > now } }
    func bind(_ m: NAT64PortMapping, exact: Bool, lifetime: UInt32, now: Double) -> Result<NAT64PortMapping, NAT64BindRefusal> {
        if let r = refusal { return .failure(r) }
        var out = m
        out.externalAddress = pool
        if let i = table.firstIndex(where: { $0.proto == m.proto && $0.internalAddress == m.internalAddress && $0.internalPort == m.internalPort }) {
            out.externalPort = table[i].externalPort
            table[i] = out
            return .success(out)
        }
        let taken = Set(table.filter { $0.proto == m.proto }.map(\.externalPort))
        if m.externalPort != 0 && taken.contains(m.externalPort) {
            if exact { return .failure(.portInUse) }
            out.externalPort = 0
        }
        if out.externalPort == 0 { out.externalPort = (20000...).first { !taken.contains(UInt16($0)) }.map { UInt16($0) }! }
        table.append(out)
        return .success(out)
    }
    func unbind(_ proto: MappingProtocol, externalAddress: IPv4Address, externalPort: UInt16) -> Bool {
        let n = table.count
        table.removeAll { $0.proto == proto && $0.externalAddress == externalAddress && $0.externalPort == externalPort }
        return table.count != n
    }
}

@Suite struct PCP64Tests {
    static let host = IPv6Address("2001:db8:1::2")!
    static let otherHost = IPv6Address("2001:db8:1::3")!
    static let nonce = "0102030405060708090a0b0c"
    /// MAP UDP, lifetime 600, client 2001:db8:1::2, internal 7000, suggested 7000, no suggested address.
    static let map = hex("02 01 0000 00000258 20010db8000100000000000000000002" + nonce
                         + "11 000000 1b58 1b58 00000000 00000000 00000000 00000000")

    func service64(secure: Bool = true) -> PortControlService {
        var s = service(secure: secure)
        s.insidePrefixes6 = [IPv6Prefix("2001:db8:1::/64")!]
        return s
    }

    @Test("RFC 6887 §11 over IPv6 (stateful NAT64): MAP from an IPv6 host makes a static BIB entry; the answer, field by field, carries its IPv4-mapped external address")
    func rfc6887_11_mapFromIPv6MakesAStaticBIBEntry() throws {
        let b = MemoryNAT64Backend()
        let a = try #require(service64().handlePCP(Self.map, fromIPv6: Self.host, now: 1010, backend: b))
        let expected = hex("02 81 00 00 00000258 0000000a 000000000000000000000000" + Self.nonce
                           + "11 000000 1b58 1b58 00000000 00000000 0000ffff c6336440")
        #expect(a == expected)
        let m = try #require(b.table.first)
        #expect(m.internalAddress == Self.host && m.internalPort == 7000 && m.externalPort == 7000 && m.nonce == hex(Self.nonce)
                && m.expiresAt == 1610)
        // §11.3: the same request again refreshes it; another nonce may not touch it; the same nonce, lifetime 0, deletes it.
        #expect(service64().handlePCP(Self.map, fromIPv6: Self.host, now: 1020, backend: b)?[3] == 0 && b.table.count == 1)
        var thief = Self.map
        thief[24] = 0xEE
        #expect(service64().handlePCP(thief, fromIPv6: Self.host, now: 1020, backend: b)?[3] == PCP.ResultCode.notAuthorized.rawValue)
        var delete = Self.map
        delete[4...7] = [0, 0, 0, 0]
        let gone = try #require(service64().handlePCP(delete, fromIPv6: Self.host, now: 1030, backend: b))
        #expect(gone[3] == 0 && Array(gone[4..<8]) == [0, 0, 0, 0] && b.table.isEmpty)
    }

    @Test("RFC 6887 §8.3, §13.1, §13.2 over IPv6: address mismatch, hosts outside the inside /64 get no answer, THIRD_PARTY in secure mode, PREFER_FAILURE")
    func rfc6887_mapFromIPv6Errors() throws {
        let b = MemoryNAT64Backend()
        let s = service64()
        #expect(s.handlePCP(Self.map, fromIPv6: Self.otherHost, now: 1000, backend: b)?[3] == PCP.ResultCode.addressMismatch.rawValue)
        #expect(s.handlePCP(Self.map, fromIPv6: IPv6Address("2001:db8:2::2")!, now: 1000, backend: b) == nil)
        // NAT-PMP (version 0) is IPv4 only: silence.
        #expect(s.handlePCP([0, 0], fromIPv6: Self.host, now: 1000, backend: b) == nil)
        var addr: [UInt8] = []
        addr.put(Self.otherHost)
        #expect(s.handlePCP(Self.map + PCP.option(1, addr), fromIPv6: Self.host, now: 1000, backend: b)?[3] == PCP.ResultCode.notAuthorized.rawValue)
        let third = try #require(service64(secure: false).handlePCP(Self.map + PCP.option(1, addr), fromIPv6: Self.host, now: 1000, backend: b))
        #expect(third[3] == 0 && b.table.first?.internalAddress == Self.otherHost && Array(third[60...]) == PCP.option(1, addr))
        // Port 7000 is now the other host's: with PREFER_FAILURE, CANNOT_PROVIDE_EXTERNAL; without, another port.
        let strict = try #require(s.handlePCP(Self.map + PCP.option(2, []), fromIPv6: Self.host, now: 1000, backend: b))
        #expect(strict[3] == PCP.ResultCode.cannotProvideExternal.rawValue)
        let lenient = try #require(s.handlePCP(Self.map, fromIPv6: Self.host, now: 1000, backend: b))
        #expect(lenient[3] == 0 && Array(lenient[42..<44]) != [0x1b, 0x58])
        // PEER is not offered over IPv6: UNSUPP_OPCODE; a protocol other than TCP/UDP: UNSUPP_PROTOCOL.
        var peer = PCP.request(.peer, lifetime: 60, client: Self.host,
                               mapping: PCP.MappingData(nonce: hex(Self.nonce), protocolNumber: 17, internalPort: 7000, suggestedExternalPort: 0,
                                                        suggestedExternalAddress: .any),
                               remotePort: 53, remoteAddress: IPv6Address(ipv4Mapped: IPv4Address("203.0.113.2")!))
        #expect(s.handlePCP(peer, fromIPv6: Self.host, now: 1000, backend: b)?[3] == PCP.ResultCode.unsupportedOpcode.rawValue)
        peer = Self.map
        peer[36] = 132
        #expect(s.handlePCP(peer, fromIPv6: Self.host, now: 1000, backend: b)?[3] == PCP.ResultCode.unsupportedProtocol.rawValue)
        // The NAT64's refusals.
        b.refusal = .noResources
        var fresh = Self.map
        fresh[41] = 0x59
        #expect(s.handlePCP(fresh, fromIPv6: Self.host, now: 1000, backend: b)?[3] == PCP.ResultCode.noResources.rawValue)
        b.refusal = .quota
        #expect(s.handlePCP(fresh, fromIPv6: Self.host, now: 1000, backend: b)?[3] == PCP.ResultCode.userExceededQuota.rawValue)
        b.refusal = .unavailable("no stateful nat64")
        #expect(s.handlePCP(fresh, fromIPv6: Self.host, now: 1000, backend: b)?[3] == PCP.ResultCode.networkFailure.rawValue)
    }

    @Test("RFC 6887 §8.3 over IPv6: hostile datagrams never crash, answers stay within 1100 bytes, nothing is mapped for garbage")
    func hostileIPv6DatagramsNeverCrash() {
        var g = SystemRandomNumberGenerator()
        let s = service64(secure: false), b = MemoryNAT64Backend()
        for i in 0..<20_000 {
            let n = Int.random(in: 0...1200, using: &g)
            var bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }
            if n > 1 && i % 2 == 0 { bytes[0] = 2 }
            if let a = s.handlePCP(bytes, fromIPv6: Self.host, now: 1000, backend: b) { #expect(a.count <= 1100) }
        }
        #expect(b.table.count <= PortControlPolicy().maxMappings)
    }

    @Test("RFC 6887 §14.1 and §15 over IPv6: ANNOUNCE answered with the epoch; delete-all removes the client's entries; policy limits")
    func rfc6887_announceDeleteAllAndLimitsOverIPv6() throws {
        let b = MemoryNAT64Backend()
        let s = service64()
        let announce = hex("02 00 0000 00000000 20010db8000100000000000000000002")
        #expect(s.handlePCP(announce, fromIPv6: Self.host, now: 1077, backend: b) == hex("02 80 00 00 00000000 0000004d 000000000000000000000000"))
        _ = s.handlePCP(Self.map, fromIPv6: Self.host, now: 1000, backend: b)
        let all = hex("02 01 0000 00000000 20010db8000100000000000000000002" + Self.nonce + "00 000000 0000 0000 00000000 00000000 00000000 00000000")
        #expect(s.handlePCP(all, fromIPv6: Self.host, now: 1001, backend: b)?[3] == 0 && b.table.isEmpty)
        var limited = service64()
        limited.policy.maxPerClient = 1
        _ = limited.handlePCP(Self.map, fromIPv6: Self.host, now: 1000, backend: b)
        var second = Self.map
        second[41] = 0x59
        #expect(limited.handlePCP(second, fromIPv6: Self.host, now: 1000, backend: b)?[3] == PCP.ResultCode.userExceededQuota.rawValue)
    }
}
