import Testing
import NATCore
import NATWire
@testable import NAT64

/// Static BIB entries added at run time (RFC 6146 §3.1), as PCP MAP from an IPv6 host makes them
/// (RFC 6887 §11 with the NAT64 of RFC 7225's setting).
@Suite struct StatefulRuntimeBindingTests {
    @Test("RFC 6146 §3.1 / RFC 6887 §11: a run-time static BIB entry lets IPv4 hosts in on the IPv4 port asked for; the answer leaves from it")
    func runtimeStaticBindingLetsIPv4HostsIn() throws {
        var t = makeStateful()
        #expect(run(&t, udp4(server4, 3333, poolFirst, 7000), at: at(1)).verdict != toIPv6, "admitted before the entry existed")
        let b = try t.mapping.addStaticBinding(proto: .udp, ipv6: host6, ipv6Port: 5000, suggestedPort: 7000, exact: true,
                                               expires: at(100), now: at(1))
        #expect(b == NAT64StaticBinding(proto: .udp, ipv6: host6, ipv6Port: 5000, ipv4: poolFirst, ipv4Port: 7000))
        #expect(bib(t, .udp, host6, 5000)?.isStatic == true)
        let r = run(&t, udp4(server4, 3333, poolFirst, 7000), at: at(2))
        #expect(r.verdict == toIPv6)
        #expect(r.bytes == PacketBuilder.udp6(source: server6, sourcePort: 3333, destination: host6, destinationPort: 5000,
                                              payload: payload(20), hopLimit: 63))
        let a = run(&t, udp6(host6, 5000, server6, 3333), at: at(2))
        #expect(a.verdict == toIPv4 && a.bytes == udp4(poolFirst, 7000, server4, 3333, ttl: 63, id: 1))
        #expect(t.mapping.runtimeStaticBindings.map(\.binding) == [b] && t.mapping.runtimeStaticBindings.first?.expires == at(100))
    }

    @Test("RFC 6146 §3.1: a run-time static BIB entry ends at its lease end (with its sessions) and can be removed before")
    func runtimeStaticBindingEndsOnTimeOrWhenRemoved() throws {
        var t = makeStateful()
        _ = try t.mapping.addStaticBinding(proto: .udp, ipv6: host6, ipv6Port: 5000, suggestedPort: 7000, exact: true, expires: at(50), now: at(0))
        _ = run(&t, udp4(server4, 3333, poolFirst, 7000), at: at(1))
        #expect(t.mapping.sessionCount == 1)
        _ = expire(&t, at: at(49.9))
        #expect(bib(t, .udp, host6, 5000) != nil, "ended early")
        _ = expire(&t, at: at(50))
        #expect(bib(t, .udp, host6, 5000) == nil && t.mapping.sessionCount == 0 && t.mapping.runtimeStaticBindings.isEmpty)
        #expect(run(&t, udp4(server4, 3333, poolFirst, 7000), at: at(51)).verdict != toIPv6)
        // Removed before its end; a configured entry is not removed this way.
        _ = try t.mapping.addStaticBinding(proto: .tcp, ipv6: host6, ipv6Port: 80, suggestedPort: 8080, exact: true, expires: nil, now: at(60))
        let removed = t.mapping.removeStaticBinding(proto: .tcp, ipv4: poolFirst, ipv4Port: 8080, now: at(61))
        #expect(removed)
        #expect(bib(t, .tcp, host6, 80) == nil)
        let again = t.mapping.removeStaticBinding(proto: .tcp, ipv4: poolFirst, ipv4Port: 8080, now: at(61))
        #expect(!again)
    }

    @Test("RFC 6887 §11.3 and §13.2: the IPv4 port asked for when free, another otherwise unless only it will do; an endpoint's dynamic entry is kept and made static")
    func runtimeStaticBindingPortChoice() throws {
        var t = makeStateful()
        _ = try t.mapping.addStaticBinding(proto: .udp, ipv6: host6, ipv6Port: 5000, suggestedPort: 7000, exact: true, expires: nil, now: at(0))
        // Taken on the host's (paired) pool address: exact refuses, otherwise another port.
        #expect(throws: NAPT64Mapping.BindingRefusal.portInUse) {
            try t.mapping.addStaticBinding(proto: .udp, ipv6: host6, ipv6Port: 5002, suggestedPort: 7000, exact: true, expires: nil, now: at(0))
        }
        let moved = try t.mapping.addStaticBinding(proto: .udp, ipv6: host6, ipv6Port: 5002, suggestedPort: 7000, exact: false, expires: nil, now: at(0))
        #expect(moved.ipv4 == poolFirst && moved.ipv4Port != 7000)
        let other = try t.mapping.addStaticBinding(proto: .udp, ipv6: host6b, ipv6Port: 5001, suggestedPort: 0, exact: false, expires: nil, now: at(0))
        #expect(other.ipv4Port != 0 && statefulPool.contains(other.ipv4))
        // A flow's dynamic entry: kept, made static, its port what the flow already uses.
        let out = run(&t, udp6(host6, 6000, server6, 53), at: at(1))
        let dynamicPort = UInt16(out.bytes[20]) << 8 | UInt16(out.bytes[21])
        let made = try t.mapping.addStaticBinding(proto: .udp, ipv6: host6, ipv6Port: 6000, suggestedPort: 0, exact: false, expires: at(500), now: at(2))
        #expect(made.ipv4Port == dynamicPort && bib(t, .udp, host6, 6000)?.isStatic == true)
        // A suggested pool address is tried first (a restart restores an entry where it was).
        let there = try t.mapping.addStaticBinding(proto: .tcp, ipv6: host6, ipv6Port: 443, suggestedAddress: addr4("198.51.100.66"),
                                                   suggestedPort: 8443, exact: true, expires: nil, now: at(2))
        #expect(there.ipv4 == addr4("198.51.100.66") && there.ipv4Port == 8443)
        #expect(throws: NAPT64Mapping.BindingRefusal.invalid) {
            try t.mapping.addStaticBinding(proto: .icmp, ipv6: host6, ipv6Port: 1, suggestedPort: 0, exact: false, expires: nil, now: at(0))
        }
        #expect(throws: NAPT64Mapping.BindingRefusal.hostLimit) {
            var limited = makeStateful { $0.maxBindingsPerHost = 1 }
            _ = try limited.mapping.addStaticBinding(proto: .udp, ipv6: host6, ipv6Port: 1, suggestedPort: 0, exact: false, expires: nil, now: at(0))
            _ = try limited.mapping.addStaticBinding(proto: .udp, ipv6: host6, ipv6Port: 2, suggestedPort: 0, exact: false, expires: nil, now: at(0))
        }
    }
}
