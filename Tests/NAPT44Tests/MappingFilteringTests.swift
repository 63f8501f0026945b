import Testing
import NATWire
import NATCore
import NAPT44

@Suite("RFC 4787 mapping, filtering, pooling and port assignment")
struct MappingFilteringTests {
    @Test func golden_udpOutboundRewritesSourceExactly() {
        var e = engine(config())
        let (v, out) = send(&e, udp(clientA, 40000, serverX, 53))
        #expect(v == .toOutside)
        // Expected bytes: the same datagram built from scratch with the outside source (port preserved).
        #expect(out == udp(poolP, 40000, serverX, 53))
        let (v2, back) = send(&e, udp(serverX, 53, poolP, 40000))
        #expect(v2 == .toInside(tenant: 0))
        #expect(back == udp(serverX, 53, clientA, 40000))
    }

    @Test func golden_udpChecksumZeroStaysZero() {
        var e = engine(config())
        let (v, out) = send(&e, udp(clientA, 40000, serverX, 53, checksum: false))
        #expect(v == .toOutside)
        #expect(out == udp(poolP, 40000, serverX, 53, checksum: false))
    }

    @Test func rfc4787_req1_endpointIndependentMapping() {
        var e = engine(config(.portRestrictedCone))
        let m1 = openUDP(&e, clientA, 5000, serverX, 3478)
        let m2 = openUDP(&e, clientA, 5000, serverY, 3478)
        let m3 = openUDP(&e, clientA, 5000, serverX, 9999)
        #expect(m1 == m2 && m2 == m3)
    }

    @Test func addressDependentMappingChangesPortPerRemoteAddress() {
        var c = config()
        c.udp = Behavior(mapping: .addressDependent, filtering: .addressDependent)
        var e = engine(c)
        let m1 = openUDP(&e, clientA, 5000, serverX, 3478)
        let m2 = openUDP(&e, clientA, 5000, serverX, 3479)
        let m3 = openUDP(&e, clientA, 5000, serverY, 3478)
        #expect(m1 == m2)
        #expect(m1 != m3)
    }

    @Test func addressAndPortDependentMappingChangesPortPerRemoteEndpoint() {
        var e = engine(config(.symmetric))
        let m1 = openUDP(&e, clientA, 5000, serverX, 3478)
        let m2 = openUDP(&e, clientA, 5000, serverX, 3479)
        let m3 = openUDP(&e, clientA, 5000, serverX, 3478)
        #expect(m1 != m2)
        #expect(m1 == m3)
        // RFC 4787 REQ-3: no port overloading — distinct mappings never share an outside port.
        #expect(e.mappingCount == 2)
    }

    @Test func rfc4787_endpointIndependentFiltering_fullCone() {
        var e = engine(config(.fullCone))
        let (a, p) = openUDP(&e, clientA, 5000, serverX, 3478)
        // A host the client never contacted reaches the mapping.
        let (v, out) = send(&e, udp(serverY, 7777, a, p))
        #expect(v == .toInside(tenant: 0))
        #expect(parse(out).destination == clientA && parse(out).destinationPort == 5000)
    }

    @Test func rfc4787_addressDependentFiltering_restrictedCone() {
        var e = engine(config(.restrictedCone))
        let (a, p) = openUDP(&e, clientA, 5000, serverX, 3478)
        #expect(send(&e, udp(serverX, 9999, a, p)).0 == .toInside(tenant: 0))  // same address, other port
        #expect(send(&e, udp(serverY, 3478, a, p)).0 == .drop(.filtered))       // other address
        #expect(e.counters.dropped(.filtered) == 1)
    }

    @Test func rfc4787_addressAndPortDependentFiltering_portRestrictedCone() {
        var e = engine(config(.portRestrictedCone))
        let (a, p) = openUDP(&e, clientA, 5000, serverX, 3478)
        #expect(send(&e, udp(serverX, 3478, a, p)).0 == .toInside(tenant: 0))
        #expect(send(&e, udp(serverX, 3479, a, p)).0 == .drop(.filtered))
        #expect(send(&e, udp(serverY, 3478, a, p)).0 == .drop(.filtered))
    }

    @Test func unsolicitedInboundWithoutMappingIsDropped() {
        var e = engine(config(.fullCone))
        #expect(send(&e, udp(serverX, 53, poolP, 40000)).0 == .drop(.noMapping))
        #expect(e.counters.dropped(.noMapping) == 1)
    }

    @Test func rfc4787_req2_pairedPoolingKeepsOneOutsideAddressPerHost() {
        var e = engine(config(pool: ["198.51.100.0/29"]))
        var addresses = Set<IPv4Address>()
        for i in 0..<40 {
            let (a, _) = openUDP(&e, clientA, UInt16(10000 + i), IPv4Address(203, 0, 113, UInt8(2 + i % 5)), 80)
            addresses.insert(a)
        }
        #expect(addresses.count == 1)
        // Different hosts spread over the pool.
        var hosts = Set<IPv4Address>()
        for h in 0..<32 {
            hosts.insert(openUDP(&e, IPv4Address(100, 64, 1, UInt8(h)), 1234, serverX, 80).0)
        }
        #expect(hosts.count > 1)
    }

    @Test func rfc4787_req3_portPreservationAndPortRanges() {
        var e = engine(config())
        #expect(openUDP(&e, clientA, 40000, serverX, 53).1 == 40000)
        // Another host with the same source port cannot get it (no overloading): it gets another port ≥ 1024.
        let second = openUDP(&e, clientB, 40000, serverX, 53).1
        #expect(second != 40000 && second >= 1024)
        // A privileged source port stays privileged.
        #expect(openUDP(&e, clientA, 123, serverX, 123).1 == 123)
        let priv = openUDP(&e, clientB, 123, serverX, 123).1
        #expect(priv != 123 && priv < 1024 && priv > 0)
    }

    @Test func rfc4787_req4_parityPreservation() {
        var e = engine(config { $0.parityPreservation = true })
        _ = openUDP(&e, clientA, 40001, serverX, 53)
        for i in 0..<50 {
            let p = openUDP(&e, IPv4Address(100, 64, 2, UInt8(i)), 40001, serverX, 53).1
            #expect(p & 1 == 1)
        }
        _ = openUDP(&e, clientA, 50000, serverX, 53)
        #expect(openUDP(&e, clientB, 50000, serverX, 53).1 & 1 == 0)
    }

    @Test func rfc6056_hashBasedSelectionSpreadsPorts() {
        var e = engine(config { $0.portPreservation = false })
        var ports = Set<UInt16>()
        for i in 0..<200 { ports.insert(openUDP(&e, IPv4Address(100, 64, 3, UInt8(i)), 5000, serverX, 53).1) }
        #expect(ports.count == 200)
        #expect(!ports.contains(5000) || ports.count == 200)
        #expect(ports.allSatisfy { $0 >= 1024 })
    }

    @Test func configuredPortRangeIsRespected() {
        var e = engine(config { $0.ports = PortSet(ranges: [20000...20009]) })
        var ports = Set<UInt16>()
        for i in 0..<10 { ports.insert(openUDP(&e, IPv4Address(100, 64, 4, UInt8(i)), 5000, serverX, 53).1) }
        #expect(ports == Set(20000...20009))
        // The 11th flow finds no port: dropped, counted, and answered with ICMP 3/13 (RFC 5508 REQ-8).
        let (v, _) = send(&e, udp(IPv4Address(100, 64, 4, 99), 5000, serverX, 53))
        #expect(v == .drop(.portsExhausted))
        let gen = outputs(&e)
        #expect(gen.count == 1)
        let icmp = parse(gen[0].0)
        #expect(icmp.proto == IPProtocol.icmp && icmp.icmpType == 3 && icmp.icmpCode == 13)
        #expect(icmp.destination == IPv4Address(100, 64, 4, 99))
        #expect(gen[0].1 == .toInside(tenant: 0))
        #expect(checksumsValid(gen[0].0))
    }

    @Test func mapE_v6plusPortSetIsUsedEntirely() {
        let set = PortSet(psid: 0x3C, psidLength: 8, offsetBits: 4)!
        #expect(set.count == 240)
        var e = engine(config { $0.ports = set; $0.maxSessions = 1024 })
        var got = Set<UInt16>()
        for i in 0..<240 {
            let p = openUDP(&e, IPv4Address(100, 64, UInt8(10 + i / 200), UInt8(i % 200)), 5000, serverX, 53).1
            got.insert(p)
            #expect(set.contains(p))
        }
        #expect(got.count == 240)
        #expect(send(&e, udp(IPv4Address(100, 64, 20, 1), 5000, serverX, 53)).0 == .drop(.portsExhausted))
    }

    @Test func namespacesKeepTenantsWithTheSameInsideAddressApart() {
        var e = engine(config())
        let t1 = openUDP(&e, clientA, 5000, serverX, 53, tenant: 1)
        let t2 = openUDP(&e, clientA, 5000, serverX, 53, tenant: 2)
        #expect(t1 != t2)
        #expect(send(&e, udp(serverX, 53, t1.0, t1.1)).0 == .toInside(tenant: 1))
        #expect(send(&e, udp(serverX, 53, t2.0, t2.1)).0 == .toInside(tenant: 2))
    }

    @Test func roundTripRestoresTheOriginalTuple() {
        var rng = SeededRandom(seed: 99)
        for preset in [Behavior.fullCone, .restrictedCone, .portRestrictedCone, .symmetric] {
            var e = engine(config(preset, pool: ["198.51.100.0/28"]))
            for _ in 0..<500 {
                let src = IPv4Address(100, 64, UInt8.random(in: 0...3, using: &rng), UInt8.random(in: 1...254, using: &rng))
                let dst = IPv4Address(203, 0, 113, UInt8.random(in: 1...254, using: &rng))
                let sp = UInt16.random(in: 1...65535, using: &rng), dp = UInt16.random(in: 1...65535, using: &rng)
                let useTCP = Bool.random(using: &rng)
                let pkt = useTCP ? tcp(src, sp, dst, dp, [.syn]) : udp(src, sp, dst, dp)
                let (v, out) = send(&e, pkt)
                #expect(v == .toOutside)
                #expect(checksumsValid(out))
                let o = parse(out)
                let reply = useTCP ? tcp(dst, dp, o.source, o.sourcePort, [.syn, .ack]) : udp(dst, dp, o.source, o.sourcePort)
                let (v2, back) = send(&e, reply)
                #expect(v2 == .toInside(tenant: 0))
                #expect(checksumsValid(back))
                let b = parse(back)
                #expect(b.destination == src && b.destinationPort == sp && b.source == dst && b.sourcePort == dp)
            }
        }
    }
}
