import NATCore
import NATWire
import Testing
@testable import NAT64

private func v4(_ s: String) -> IPv4Address { IPv4Address(s)! }
private func v6(_ s: String) -> IPv6Address { IPv6Address(s)! }
private func t(_ s: Double) -> Timestamp { .seconds(s) }

private func pool(_ prefixes: [String], idle: UInt32 = 7200, statics: [(String, String)] = []) throws -> AddressPool {
    try AddressPool(configuration: AddressPoolConfiguration(
        prefixes: prefixes.map { IPv4Prefix($0)! }, maxIdleSeconds: idle,
        staticMappings: statics.map { StaticAddressMapping(ipv4: v4($0.0), ipv6: v6($0.1)) }))
}

private func configError(_ prefixes: [String], idle: UInt32 = 7200, statics: [(String, String)] = []) -> ConfigurationError? {
    do {
        _ = try pool(prefixes, idle: idle, statics: statics)
        return nil
    } catch let e as ConfigurationError {
        return e
    } catch {
        return nil
    }
}

private func source(_ p: inout AddressPool, _ a: String, at now: Double) -> Result<IPv4Address, DropReason> {
    do throws(DropReason) { return .success(try p.ipv4(forSource: v6(a), now: t(now))) } catch { return .failure(error) }
}

private func destination(_ p: inout AddressPool, _ a: String, at now: Double) -> Result<IPv6Address, DropReason> {
    do throws(DropReason) { return .success(try p.ipv6(forDestination: v4(a), now: t(now))) } catch { return .failure(error) }
}

@Suite struct AddressPoolTests {
    @Test func firstComeFirstServedWholeAddresses() throws {
        var p = try pool(["192.0.2.0/29"])
        #expect(p.capacity == 6, "a /29 hands out .1 to .6 (no network or broadcast address, as protomask's hosts())")
        #expect(source(&p, "2001:db8:1::a", at: 10) == .success(v4("192.0.2.1")))
        #expect(source(&p, "2001:db8:1::b", at: 11) == .success(v4("192.0.2.2")))
        #expect(source(&p, "2001:db8:1::a", at: 12) == .success(v4("192.0.2.1")), "a host keeps its address")
        #expect(destination(&p, "192.0.2.2", at: 12) == .success(v6("2001:db8:1::b")))
        #expect(destination(&p, "192.0.2.3", at: 12) == .failure(.noMapping), "an unreserved pool address has no owner")
        #expect(destination(&p, "198.51.100.1", at: 12) == .failure(.noMapping), "not a pool address at all")
        #expect(p.reservationCount == 2 && p.dynamicCount == 2 && p.freeCount == 4)
        #expect(p.contains(v4("192.0.2.0")) && p.contains(v4("192.0.2.7")) && !p.contains(v4("192.0.2.8")))
        #expect(p.reservedIPv4(for: v6("2001:db8:1::b")) == v4("192.0.2.2"))
        #expect(p.reservedIPv6(for: v4("192.0.2.1")) == v6("2001:db8:1::a"))
    }

    @Test func slash31AndSlash32UseEveryAddress() throws {
        var p = try pool(["198.51.100.7/32", "203.0.113.0/31"])
        #expect(p.capacity == 3)
        #expect(source(&p, "2001:db8::1", at: 1) == .success(v4("198.51.100.7")))
        #expect(source(&p, "2001:db8::2", at: 1) == .success(v4("203.0.113.0")))
        #expect(source(&p, "2001:db8::3", at: 1) == .success(v4("203.0.113.1")))
        #expect(destination(&p, "203.0.113.1", at: 2) == .success(v6("2001:db8::3")))
    }

    @Test func staticMappingsArePinnedAndNeverReclaimed() throws {
        var p = try pool(["192.0.2.0/30"], idle: 60, statics: [("192.0.2.1", "2001:db8:1::2")])
        #expect(p.staticCount == 1 && p.freeCount == 1)
        #expect(destination(&p, "192.0.2.1", at: 0) == .success(v6("2001:db8:1::2")), "reachable from IPv4 before it ever sent")
        #expect(source(&p, "2001:db8:1::9", at: 0) == .success(v4("192.0.2.2")), "dynamic hosts skip the static address")
        #expect(p.expire(now: t(100_000)) == 1)
        #expect(source(&p, "2001:db8:1::2", at: 100_000) == .success(v4("192.0.2.1")))
        #expect(destination(&p, "192.0.2.1", at: 200_000) == .success(v6("2001:db8:1::2")))
        #expect(p.reservations(now: t(200_000)).contains { $0.isStatic && $0.ipv4 == v4("192.0.2.1") })
    }

    /// RFC 6146 §3.5.1.1: when no IPv4 address can be allocated the packet is discarded (the translator
    /// sends ICMPv6 Address Unreachable); live reservations are never taken away to make room.
    @Test func rfc6146_3_5_1_1_exhaustedPoolDropsWithNamedReason() throws {
        var p = try pool(["192.0.2.0/30"], idle: 100)
        #expect(source(&p, "2001:db8::1", at: 0) == .success(v4("192.0.2.1")))
        #expect(source(&p, "2001:db8::2", at: 50) == .success(v4("192.0.2.2")))
        #expect(source(&p, "2001:db8::3", at: 99) == .failure(.poolExhausted))
        #expect(DropReason.poolExhausted.name == "pool_exhausted")
        // At 100 s the first host has been idle for the maximum: reclaimed on demand, without expire().
        #expect(source(&p, "2001:db8::3", at: 100) == .success(v4("192.0.2.1")))
        #expect(destination(&p, "192.0.2.1", at: 100) == .success(v6("2001:db8::3")))
        #expect(p.reservedIPv4(for: v6("2001:db8::1")) == nil)
        #expect(p.reservationsExpired == 1 && p.reservationsMade == 3)
    }

    @Test func idleTimeCountsTrafficBothWays() throws {
        var p = try pool(["192.0.2.0/29"], idle: 100)
        _ = source(&p, "2001:db8::1", at: 0)
        _ = source(&p, "2001:db8::2", at: 0)
        // Only return traffic for ::1 (as protomask's get_reverse, it refreshes the reservation).
        #expect(destination(&p, "192.0.2.1", at: 90) == .success(v6("2001:db8::1")))
        #expect(p.expire(now: t(99)) == 0)
        #expect(p.expire(now: t(100)) == 1, "::2 idle for 100 s")
        #expect(p.reservedIPv4(for: v6("2001:db8::2")) == nil)
        #expect(p.reservedIPv4(for: v6("2001:db8::1")) == v4("192.0.2.1"))
        #expect(destination(&p, "192.0.2.2", at: 101) == .failure(.noMapping))
        // Expired but not yet swept: the outside cannot reach it any more.
        #expect(destination(&p, "192.0.2.1", at: 190) == .failure(.noMapping))
        #expect(p.reservationCount == 0)
    }

    @Test func aClockThatGoesBackNeverExpiresAnything() throws {
        var p = try pool(["192.0.2.0/29"], idle: 100)
        _ = source(&p, "2001:db8::1", at: 500)
        #expect(destination(&p, "192.0.2.1", at: 400) == .success(v6("2001:db8::1")))
        #expect(p.expire(now: t(300)) == 0)
        #expect(p.reservations(now: t(300)).first?.idleSeconds == 0)
        #expect(p.expire(now: t(599)) == 0 && p.expire(now: t(600)) == 1, "the later last use counts")
    }

    @Test func releasedAddressIsHandedOutLast() throws {
        var p = try pool(["192.0.2.0/29"], idle: 10)
        _ = source(&p, "2001:db8::1", at: 0)          // .1
        _ = source(&p, "2001:db8::2", at: 5)          // .2
        #expect(p.expire(now: t(10)) == 1)            // .1 freed, goes to the back
        #expect(source(&p, "2001:db8::3", at: 11) == .success(v4("192.0.2.3")))
        #expect(source(&p, "2001:db8::1", at: 11) == .success(v4("192.0.2.4")), "a returning host gets a new address, not one just freed")
    }

    @Test func expiryPopsOnlyTheIdleOnesInLastUseOrder() throws {
        var p = try pool(["198.51.100.0/24"], idle: 30)
        for i in 1...200 { _ = source(&p, "2001:db8::\(String(i, radix: 16))", at: Double(i)) }
        // Keep the even ones busy.
        for i in stride(from: 2, through: 200, by: 2) { _ = source(&p, "2001:db8::\(String(i, radix: 16))", at: 230) }
        #expect(p.expire(now: t(231)) == 100)
        #expect(p.dynamicCount == 100)
        let left = p.reservations(now: t(231)).map(\.ipv6)
        #expect(left.allSatisfy { $0.low % 2 == 0 })
        #expect(p.expire(now: t(259)) == 0)
        #expect(p.expire(now: t(260)) == 100)
    }

    @Test func largePoolIsOneToOneBothWays() throws {
        var p = try pool(["100.64.0.0/16", "198.51.100.0/24"], idle: 3600)
        #expect(p.capacity == 65534 + 254)
        var seen = Set<UInt32>()
        for i in 0..<p.capacity {
            let host = IPv6Address(high: 0x2001_0db8_0000_0001, low: UInt64(i) &* 0x9E37_79B9_7F4A_7C15)
            guard case .success(let a) = Result(catching: { () throws(DropReason) in try p.ipv4(forSource: host, now: t(1)) }) else {
                Issue.record("host \(i) got no address")
                return
            }
            #expect(seen.insert(a.rawValue).inserted)
            #expect(p.reservedIPv6(for: a) == host)
        }
        #expect(p.freeCount == 0)
        #expect(source(&p, "2001:db8:ffff::1", at: 2) == .failure(.poolExhausted))
    }

    @Test func reservationsExportAndRestore() throws {
        var a = try pool(["192.0.2.0/28"], idle: 1000, statics: [("192.0.2.14", "2001:db8:1::2")])
        _ = source(&a, "2001:db8::1", at: 100)
        _ = source(&a, "2001:db8::2", at: 200)
        _ = source(&a, "2001:db8::3", at: 300)
        let saved = a.dynamicReservations(now: t(400))
        #expect(saved.map(\.idleSeconds) == [300, 200, 100])
        #expect(saved.map(\.ipv4) == [v4("192.0.2.1"), v4("192.0.2.2"), v4("192.0.2.3")])

        // A fresh pool (a restarted daemon whose clock starts near zero), 50 s later.
        var b = try pool(["192.0.2.0/28"], idle: 1000, statics: [("192.0.2.14", "2001:db8:1::2")])
        for r in saved.reversed() {  // any order: restore keeps the last-use order itself
            #expect(b.restore(AddressReservation(ipv4: r.ipv4, ipv6: r.ipv6, idleSeconds: r.idleSeconds + 50), now: t(2)) == .restored)
        }
        #expect(b.dynamicReservations(now: t(2)).map(\.ipv6) == [v6("2001:db8::1"), v6("2001:db8::2"), v6("2001:db8::3")])
        #expect(destination(&b, "192.0.2.2", at: 2) == .success(v6("2001:db8::2")))
        #expect(source(&b, "2001:db8::9", at: 2) == .success(v4("192.0.2.4")), "restored addresses are not handed out again")
        // ::1 was idle 350 s at restore: it goes 650 s later.
        #expect(b.expire(now: t(651)) == 0)
        #expect(b.expire(now: t(652)) == 1)

        var c = try pool(["192.0.2.0/28"], idle: 1000, statics: [("192.0.2.14", "2001:db8:1::2")])
        #expect(c.restore(AddressReservation(ipv4: v4("192.0.2.1"), ipv6: v6("2001:db8::1"), idleSeconds: 1000), now: t(0)) == .expired)
        #expect(c.restore(AddressReservation(ipv4: v4("203.0.113.1"), ipv6: v6("2001:db8::1"), idleSeconds: 1), now: t(0)) == .notInPool)
        #expect(c.restore(AddressReservation(ipv4: v4("192.0.2.0"), ipv6: v6("2001:db8::1"), idleSeconds: 1), now: t(0)) == .notInPool)
        #expect(c.restore(AddressReservation(ipv4: v4("192.0.2.14"), ipv6: v6("2001:db8::1"), idleSeconds: 1), now: t(0)) == .conflict)
        #expect(c.restore(AddressReservation(ipv4: v4("192.0.2.14"), ipv6: v6("2001:db8:1::2"), idleSeconds: 1), now: t(0)) == .alreadyPresent)
        #expect(c.restore(AddressReservation(ipv4: v4("192.0.2.5"), ipv6: v6("2001:db8::1"), idleSeconds: 1), now: t(0)) == .restored)
        #expect(c.restore(AddressReservation(ipv4: v4("192.0.2.6"), ipv6: v6("2001:db8::1"), idleSeconds: 1), now: t(0)) == .conflict)
        #expect(c.restore(AddressReservation(ipv4: v4("192.0.2.5"), ipv6: v6("2001:db8::7"), idleSeconds: 1), now: t(0)) == .conflict)
        #expect(c.dynamicCount == 1 && c.freeCount == 12)
    }

    @Test func configurationIsChecked() {
        #expect(configError([])?.key == "prefixes")
        #expect(configError(["192.0.2.0/24", "192.0.2.128/25"])?.key == "prefixes[1]")
        #expect(configError(["10.0.0.0/8"])?.problem.contains("at most") == true)
        #expect(configError(["192.0.2.0/24"], idle: 0)?.key == "max_idle")
        #expect(configError(["192.0.2.0/24"], statics: [("198.51.100.1", "2001:db8::1")])?.key == "static[0].v4")
        #expect(configError(["192.0.2.0/24"], statics: [("192.0.2.0", "2001:db8::1")])?.problem.contains("network or broadcast") == true)
        #expect(configError(["192.0.2.0/24"], statics: [("192.0.2.1", "2001:db8::1"), ("192.0.2.1", "2001:db8::2")])?.key == "static[1].v4")
        #expect(configError(["192.0.2.0/24"], statics: [("192.0.2.1", "2001:db8::1"), ("192.0.2.2", "2001:db8::1")])?.key == "static[1].v6")
        #expect(configError(["192.0.2.0/24"], statics: [("192.0.2.1", "2001:db8::1")]) == nil)
    }
}

private func mapping(_ prefix: String = "2001:db8:64::/96", rfc6791: [String] = [], idle: UInt32 = 7200) throws -> AddressPoolMapping {
    try AddressPoolMapping(pool: pool(["192.0.2.0/29"], idle: idle, statics: [("192.0.2.6", "2001:db8:1::6")]),
                           prefix: NAT64Prefix(prefix), rfc6791Pool: rfc6791.map { IPv4Prefix($0)! })
}

private let udp = NAT64Transport(kind: .udp, protocolNumber: 17, ports: NAT64Ports(source: 40000, destination: 53))
private let icmpError6 = NAT64Transport(kind: .icmpError, protocolNumber: 58)
private let icmpError4 = NAT64Transport(kind: .icmpError, protocolNumber: 1)

@Suite struct AddressPoolMappingTests {
    /// RFC 6052 §2.3 for the IPv4 side, the pool for the IPv6 side; ports are left alone (1:1, no NAPT).
    @Test func rfc6052_2_3_outboundEmbedsAndPoolAssigns() throws {
        var m = try mapping()
        let out = try m.map6to4(source: v6("2001:db8:1::a"), destination: v6("2001:db8:64::cb00:7102"), transport: udp, now: t(1))
        #expect(out == NAT64Mapped4(source: v4("192.0.2.1"), destination: v4("203.0.113.2"), ports: udp.ports))
        let back = try m.map4to6(source: v4("203.0.113.2"), destination: v4("192.0.2.1"),
                                 transport: NAT64Transport(kind: .udp, protocolNumber: 17, ports: NAT64Ports(source: 53, destination: 40000)),
                                 hairpin: false, now: t(2))
        #expect(back.source == v6("2001:db8:64::cb00:7102") && back.destination == v6("2001:db8:1::a"))
        #expect(back.ports == NAT64Ports(source: 53, destination: 40000))
        // The static pair works from the IPv4 side before the IPv6 host ever sent anything.
        #expect(try m.map4to6(source: v4("203.0.113.2"), destination: v4("192.0.2.6"), transport: udp, hairpin: false, now: t(2)).destination == v6("2001:db8:1::6"))
        #expect(throws: DropReason.noMapping) { try m.map4to6(source: v4("203.0.113.2"), destination: v4("192.0.2.2"), transport: udp, hairpin: false, now: t(2)) }
        #expect(throws: DropReason.noMapping) { try m.map6to4(source: v6("2001:db8:1::a"), destination: v6("2001:db8:65::1"), transport: udp, now: t(2)) }
        let toPool = m.isHairpin(v4("192.0.2.3"), ipv6Destination: v6("2001:db8:64::c000:203"))
        let toServer = m.isHairpin(v4("203.0.113.2"), ipv6Destination: v6("2001:db8:64::cb00:7102"))
        #expect(toPool && !toServer)
    }

    /// RFC 6052 §3.1: with the Well-Known Prefix, non-global IPv4 addresses are refused both ways.
    @Test func rfc6052_3_1_wellKnownPrefixRefusesNonGlobal() throws {
        var m = try mapping("64:ff9b::/96")
        #expect(throws: DropReason.nonGlobalIPv4Address) {
            try m.map6to4(source: v6("2001:db8:1::a"), destination: v6("64:ff9b::203.0.113.2"), transport: udp, now: t(1))
        }
        #expect(m.pool.reservationCount == 1, "refused before a reservation was made")
        let ok = try m.map6to4(source: v6("2001:db8:1::a"), destination: v6("64:ff9b::8.8.8.8"), transport: udp, now: t(1))
        #expect(ok.destination == v4("8.8.8.8"))
        #expect(throws: DropReason.nonGlobalIPv4Address) {
            try m.map4to6(source: v4("198.51.100.9"), destination: ok.source, transport: udp, hairpin: false, now: t(1))
        }
        // RFC 7915 §4.1: an ICMPv4 error's source is translated anyway.
        #expect(try m.map4to6(source: v4("198.51.100.9"), destination: ok.source, transport: icmpError4, hairpin: false, now: t(1)).source
                == v6("64:ff9b::198.51.100.9"))
    }

    @Test func exhaustedPoolDropsTheNewHost() throws {
        var m = try mapping()
        for i in 1...5 { _ = try m.map6to4(source: v6("2001:db8:1::\(i + 10)"), destination: v6("2001:db8:64::cb00:7102"), transport: udp, now: t(1)) }
        #expect(throws: DropReason.poolExhausted) {
            try m.map6to4(source: v6("2001:db8:1::99"), destination: v6("2001:db8:64::cb00:7102"), transport: udp, now: t(1))
        }
    }

    /// RFC 7915 §5.3 / §4.3: the packet inside an ICMP error maps the other way with lookups only.
    @Test func rfc7915_4_3_innerPacketsUseLookupsOnly() throws {
        var m = try mapping()
        _ = try m.map6to4(source: v6("2001:db8:1::a"), destination: v6("2001:db8:64::cb00:7102"), transport: udp, now: t(1))
        // ICMPv4 error about a packet 192.0.2.1 → 203.0.113.2.
        let inner = try m.mapInner4to6(source: v4("192.0.2.1"), destination: v4("203.0.113.2"), transport: udp, hairpin: false, now: t(2))
        #expect(inner.source == v6("2001:db8:1::a") && inner.destination == v6("2001:db8:64::cb00:7102"))
        #expect(throws: DropReason.noMapping) { try m.mapInner4to6(source: v4("192.0.2.2"), destination: v4("203.0.113.2"), transport: udp, hairpin: false, now: t(2)) }
        // ICMPv6 error about a packet 203.0.113.2 → 2001:db8:1::a.
        let inner6 = try m.mapInner6to4(source: v6("2001:db8:64::cb00:7102"), destination: v6("2001:db8:1::a"), transport: udp, now: t(2))
        #expect(inner6.source == v4("203.0.113.2") && inner6.destination == v4("192.0.2.1"))
        #expect(throws: DropReason.noMapping) { try m.mapInner6to4(source: v6("2001:db8:64::cb00:7102"), destination: v6("2001:db8:1::b"), transport: udp, now: t(2)) }
        #expect(m.pool.reservationCount == 2, "no reservation came from an error")
    }

    /// RFC 6791 §4: an ICMPv6 error from a router without an IPv4 address takes a pool address of RFC 6791.
    @Test func rfc6791_4_routerErrorsTakeTheRFC6791Address() throws {
        var m = try mapping(rfc6791: ["198.51.100.254/32"])
        let e = try m.map6to4(source: v6("2001:db8:1::1"), destination: v6("2001:db8:64::cb00:7102"), transport: icmpError6, now: t(1))
        #expect(e.source == v4("198.51.100.254"))
        #expect(m.pool.reservedIPv4(for: v6("2001:db8:1::1")) == nil)
        // A host with a reservation keeps its own address for its errors (port unreachable from the host).
        _ = try m.map6to4(source: v6("2001:db8:1::a"), destination: v6("2001:db8:64::cb00:7102"), transport: udp, now: t(1))
        #expect(try m.map6to4(source: v6("2001:db8:1::a"), destination: v6("2001:db8:64::cb00:7102"), transport: icmpError6, now: t(1)).source == v4("192.0.2.1"))
        // Without an RFC 6791 pool the mapping refuses (the translator then uses its own address): a
        // router's errors never take a pool address away from the hosts.
        var n = try mapping()
        #expect(throws: DropReason.noMapping) {
            try n.map6to4(source: v6("2001:db8:1::1"), destination: v6("2001:db8:64::cb00:7102"), transport: icmpError6, now: t(1))
        }
        #expect(n.pool.reservationCount == 1, "only the static pair")
        #expect(throws: ConfigurationError.self) { _ = try mapping(rfc6791: ["192.0.2.0/30"]) }
    }
}

typealias PoolTranslator = NAT64Translator<AddressPoolMapping>

private let client6 = v6("2001:db8:1::a")
private let far4 = v4("203.0.113.2")
private let far6 = v6("2001:db8:64::cb00:7102")

private func poolTranslator(_ prefixes: [String] = ["192.0.2.0/29"], idle: UInt32 = 7200) throws -> PoolTranslator {
    var c = NAT64Configuration()
    c.ipv4ErrorSource = v4("192.0.2.0")
    c.ipv6ErrorSource = v6("2001:db8:64::c000:200")
    c.identificationSeed = 1
    let m = try AddressPoolMapping(pool: pool(prefixes, idle: idle), prefix: NAT64Prefix("2001:db8:64::/96"))
    return try NAT64Translator(configuration: c, mapping: m)
}

private struct PoolOutcome {
    var verdict: Verdict
    var bytes: [UInt8]
    var generated: [[UInt8]]
}

private func run(_ t: inout PoolTranslator, _ packet: [UInt8], at now: Double) -> PoolOutcome {
    var copy = packet
    let v = copy.withUnsafeMutableBytes { t.process($0, now: .seconds(now)) }
    let out = v.isForwarded ? Array(UnsafeRawBufferPointer(t.output)) : []
    var gen: [[UInt8]] = []
    while let g = t.nextOutput() { gen.append(Array(UnsafeRawBufferPointer(g.bytes))) }
    return PoolOutcome(verdict: v, bytes: out, generated: gen)
}

private func body(_ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) } }

/// Golden packets through ``NAT64Translator`` with the pool mapping: bytes in, exact bytes out (the
/// expected packets are built independently with the NATWire builders and full checksums).
@Suite struct AddressPoolTranslatorTests {
    @Test func protomask_udpBothWaysThroughThePool() throws {
        var t = try poolTranslator()
        let out6 = PacketBuilder.udp6(source: client6, sourcePort: 40000, destination: far6, destinationPort: 53, payload: body(24))
        let r = run(&t, out6, at: 10)
        let want4 = PacketBuilder.udp4(source: v4("192.0.2.1"), sourcePort: 40000, destination: far4, destinationPort: 53,
                                       payload: body(24), ttl: 63, identification: 1)
        #expect(r.verdict == .toOutside)
        #expect(r.bytes == want4, "\(r.bytes) vs \(want4)")
        let in4 = PacketBuilder.udp4(source: far4, sourcePort: 53, destination: v4("192.0.2.1"), destinationPort: 40000, payload: body(30))
        let back = run(&t, in4, at: 11)
        let want6 = PacketBuilder.udp6(source: far6, sourcePort: 53, destination: client6, destinationPort: 40000, payload: body(30), hopLimit: 63)
        #expect(back.verdict == .toInside(tenant: 0))
        #expect(back.bytes == want6)
        let reserved = t.mapping.pool.reservedIPv4(for: client6)
        #expect(reserved == v4("192.0.2.1"))
    }

    @Test func unreservedPoolAddressIsDroppedWithNoMapping() throws {
        var t = try poolTranslator()
        let in4 = PacketBuilder.udp4(source: far4, sourcePort: 53, destination: v4("192.0.2.3"), destinationPort: 40000)
        let r = run(&t, in4, at: 1)
        #expect(r.verdict == .drop(.noMapping) && r.bytes.isEmpty && r.generated.isEmpty)
        let c = t.counters4to6
        #expect(c.dropped(.noMapping) == 1)
    }

    /// RFC 6791 §4: ICMPv6 Packet Too Big from an IPv6 router with no reservation and no RFC 6791 pool
    /// becomes Fragmentation Needed from the translator's own IPv4 address; no pool address is used.
    @Test func rfc6791_4_routerErrorWithoutPoolTakesTheTranslatorsAddress() throws {
        var t = try poolTranslator()
        let reply6 = PacketBuilder.udp6(source: client6, sourcePort: 40000, destination: far6, destinationPort: 53, payload: body(8))
        _ = run(&t, reply6, at: 1)
        // The server's big datagram toward the client, as the router saw it (already translated to IPv6).
        let big6 = PacketBuilder.udp6(source: far6, sourcePort: 53, destination: client6, destinationPort: 40000, payload: body(1400), hopLimit: 63)
        let router = v6("2001:db8:1::1")
        let ptb = PacketBuilder.icmp6Error(source: router, destination: far6, type: 2, code: 0, restOfHeader: 1280, original: big6)
        let r = run(&t, ptb, at: 2)
        #expect(r.verdict == .toOutside)
        #expect(Array(r.bytes[12..<16]) == [192, 0, 2, 0], "source: the translator's own IPv4 address")
        #expect(Array(r.bytes[16..<20]) == [203, 0, 113, 2])
        #expect(r.bytes[20] == 3 && r.bytes[21] == 4, "ICMPv4 Fragmentation Needed")
        #expect(UInt16(r.bytes[26]) << 8 | UInt16(r.bytes[27]) == 1260, "next-hop MTU 1280 - 20")
        let reserved = t.mapping.pool.reservationCount
        #expect(reserved == 1, "the router took no pool address")
    }

    @Test func rfc6146_3_5_1_1_exhaustedPoolIsCountedByNameAndAnsweredAddressUnreachable() throws {
        var t = try poolTranslator(["192.0.2.0/31"], idle: 60)
        for (i, host) in ["2001:db8:1::1", "2001:db8:1::2"].enumerated() {
            let r = run(&t, PacketBuilder.udp6(source: v6(host), sourcePort: 1000, destination: far6, destinationPort: 53), at: Double(i))
            #expect(r.verdict == .toOutside)
        }
        let refusedPacket = PacketBuilder.udp6(source: v6("2001:db8:1::3"), sourcePort: 1000, destination: far6, destinationPort: 53)
        let third = run(&t, refusedPacket, at: 30)
        #expect(third.verdict == .drop(.poolExhausted))
        // The host is told: ICMPv6 Destination Unreachable, Address Unreachable, from the translator's
        // IPv6 error source, quoting its datagram.
        let want = PacketBuilder.icmp6Error(source: v6("2001:db8:64::c000:200"), destination: v6("2001:db8:1::3"),
                                            type: 1, code: 3, original: refusedPacket, hopLimit: 64)
        #expect(third.generated == [want])
        let c = t.counters6to4
        #expect(c.dropped(.poolExhausted) == 1)
        // A minute after the first host's last packet its address is free again.
        let later = run(&t, PacketBuilder.udp6(source: v6("2001:db8:1::3"), sourcePort: 1000, destination: far6, destinationPort: 53), at: 60)
        #expect(later.verdict == .toOutside)
        #expect(Array(later.bytes[12..<16]) == [192, 0, 2, 0])
    }

    /// RFC 7915 §4.2/§4.3: ICMPv4 port unreachable from the server, about the datagram the pool address
    /// sent, reaches the IPv6 host as ICMPv6 port unreachable quoting its own datagram.
    @Test func rfc7915_4_3_portUnreachableReachesTheIPv6Host() throws {
        var t = try poolTranslator()
        let out6 = PacketBuilder.udp6(source: client6, sourcePort: 40000, destination: far6, destinationPort: 9, payload: body(8))
        let sent4 = run(&t, out6, at: 1).bytes
        let err4 = PacketBuilder.icmp4Error(source: far4, destination: v4("192.0.2.1"), type: 3, code: 3, original: sent4)
        let r = run(&t, err4, at: 2)
        #expect(r.verdict == .toInside(tenant: 0))
        let quoted = PacketBuilder.udp6(source: client6, sourcePort: 40000, destination: far6, destinationPort: 9, payload: body(8), hopLimit: 63)
        let want = PacketBuilder.icmp6Error(source: far6, destination: client6, type: 1, code: 4, original: quoted, hopLimit: 63)
        #expect(r.bytes == want, "\(r.bytes.count) vs \(want.count) bytes")
    }
}
