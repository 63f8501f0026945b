import Foundation
import NAT64
import NATCore
import NATRuntime
import NATWire
import Testing

private func parseError(_ text: String) -> ConfigurationError? {
    do {
        _ = try ConfigLoader.parse(text, file: "st.toml")
        return nil
    } catch {
        return error
    }
}

private let stateful = """
[nat64]
mode = "stateful"
prefix = "2001:db8:64::/96"
pool = ["198.51.100.64/30"]

"""

/// `[nat64] mode = "stateful"`: every key read, bad values refused with the file, the key and what is wrong.
@Suite struct NAT64StatefulConfigTests {
    @Test func statefulSectionWithEveryKey() throws {
        let c = try ConfigLoader.parse(stateful + """
        tcp_ports = ["1024-65535"]
        udp_ports = ["2000-2999", "4000"]
        icmp_identifiers = ["1-1000"]
        filtering = "address-dependent"
        paired_pooling = false
        port_preservation = true
        parity_preservation = false
        max_port_attempts = 64
        unsolicited_syn = "drop"
        drop_externally_initiated_tcp = true
        tcp_probes = false
        hairpinning = false
        hash_seed = 7

        [nat64.timeouts]
        udp = 600
        tcp_established = 8000
        tcp_transitory = 300
        icmp = 30
        tcp_incoming_syn = 4.5
        port_hold = 0
        fragment = 3

        [nat64.limits]
        max_sessions = 1000
        max_bib_entries = 500
        max_hosts = 100
        max_sessions_per_host = 50
        max_bib_entries_per_host = 20
        max_held_syns = 8
        max_fragment_flows = 64

        [[nat64.static_bib]]
        protocol = "tcp"
        ipv6 = "2001:db8:1::80"
        ipv6_port = 80
        ipv4 = "198.51.100.64"
        ipv4_port = 8080

        [[nat64.static_bib]]
        protocol = "ICMP"
        ipv6 = "2001:db8:1::80"
        ipv6_port = 7
        ipv4 = "198.51.100.65"
        ipv4_port = 700
        """, file: "st.toml")
        let n = try #require(c.nat64)
        #expect(n.mode.name == "stateful")
        #expect(n.ipv4Prefixes == [IPv4Prefix("198.51.100.64/30")!])
        let s = try #require(n.statefulMode)
        #expect(s.prefix.prefix == IPv6Prefix("2001:db8:64::/96")! && !s.prefix.restrictsToGlobalIPv4)
        #expect(s.tcpPorts == PortSet(ranges: [1024...65535]))
        #expect(s.udpPorts == PortSet(ranges: [2000...2999, 4000...4000]))
        #expect(s.icmpIdentifiers == PortSet(ranges: [1...1000]))
        #expect(s.filtering == .addressDependent && !s.pairedPooling && s.portPreservation && !s.parityPreservation)
        #expect(s.maxPortAttempts == 64 && s.unsolicitedSYN == .drop && s.dropExternallyInitiatedTCP && !s.tcpProbes && !s.hairpinning)
        #expect(s.hashSeed == 7)
        #expect(s.timeouts.udp == 600 && s.timeouts.tcpEstablished == 8000 && s.timeouts.tcpTransitory == 300 && s.timeouts.icmp == 30)
        #expect(s.timeouts.synHoldMilliseconds == 4500 && s.timeouts.portHold == 0 && s.timeouts.fragmentMilliseconds == 3000)
        #expect(s.maxSessions == 1000 && s.maxBindings == 500 && s.maxHosts == 100 && s.maxSessionsPerHost == 50)
        #expect(s.maxBindingsPerHost == 20 && s.maxHeldSYNs == 8 && s.maxFragmentFlows == 64)
        #expect(s.staticBindings == [
            NAT64StaticBinding(proto: .tcp, ipv6: IPv6Address("2001:db8:1::80")!, ipv6Port: 80, ipv4: IPv4Address("198.51.100.64")!, ipv4Port: 8080),
            NAT64StaticBinding(proto: .icmp, ipv6: IPv6Address("2001:db8:1::80")!, ipv6Port: 7, ipv4: IPv4Address("198.51.100.65")!, ipv4Port: 700),
        ])
    }

    @Test func statefulDefaultsAreRFC6146s() throws {
        let s = try #require(try ConfigLoader.parse(stateful, file: "st.toml").nat64?.statefulMode)
        #expect(s.timeouts == Timeouts())
        #expect(s.timeouts.udp == 300 && s.timeouts.tcpEstablished == 7440 && s.timeouts.tcpTransitory == 240 && s.timeouts.icmp == 60)
        #expect(s.timeouts.synHoldMilliseconds == 6000)
        #expect(s.filtering == .endpointIndependent && s.tcpProbes && s.parityPreservation && s.pairedPooling)
        #expect(s.tcpPorts == .all && s.staticBindings.isEmpty)
        // The Well-Known Prefix refuses non-global IPv4 (RFC 6052 §3.1) unless told otherwise.
        let wk = try #require(try ConfigLoader.parse("[nat64]\nmode = \"stateful\"\npool = [\"198.51.100.64/30\"]\n", file: "w.toml").nat64?.statefulMode)
        #expect(wk.prefix.restrictsToGlobalIPv4)
    }

    @Test func statefulErrorsNameFileKeyAndProblem() {
        func key(_ extra: String) -> String? { parseError(stateful + extra)?.key }
        #expect(parseError("[nat64]\nmode = \"stateful\"\n")?.key == "nat64.pool")
        #expect(parseError("[nat64]\nmode = \"stateful\"\npool = []\n")?.key == "nat64.pool")
        #expect(key("tcp_ports = [\"70000\"]\n") == "nat64.tcp_ports[0]")
        #expect(key("udp_ports = [\"5-1\"]\n") == "nat64.udp_ports[0]")
        #expect(key("udp_ports = []\n") == "nat64.udp_ports")
        #expect(key("filtering = \"address-and-port-dependent\"\n") == "nat64.filtering")
        #expect(key("unsolicited_syn = \"rst\"\n") == "nat64.unsolicited_syn")
        #expect(key("eam = []\n") == "nat64.eam")
        #expect(key("state_file = \"/tmp/x\"\n") == "nat64.state_file")
        // Issue 11: stateful mode takes RFC 6791 pools now (rfc6791_pool is read as pool6791v4).
        #expect(key("rfc6791_pool = [\"192.0.2.1\"]\n") == nil)
        #expect(key("rfc6791_pool = [\"192.0.2.1\"]\npool6791v4 = [\"192.0.2.2\"]\n") == "nat64.rfc6791_pool")
        #expect(key("tcp_probes = 1\n") == "nat64.tcp_probes")
        #expect(key("[nat64.timeouts]\nudp = 119\n") == "nat64.timeouts.udp")
        #expect(key("[nat64.timeouts]\ntcp_established = 3600\n") == "nat64.timeouts.tcp_established")
        #expect(key("[nat64.timeouts]\ntcp_transitory = 60\n") == "nat64.timeouts.tcp_transitory")
        #expect(key("[nat64.timeouts]\ntcp_incoming_syn = 0\n") == "nat64.timeouts.tcp_incoming_syn")
        #expect(key("[nat64.timeouts]\nudpp = 300\n") == "nat64.timeouts.udpp")
        #expect(key("[nat64.limits]\nmax_sessions = 0\n") == "nat64.limits.max_sessions")
        #expect(key("[nat64.limits]\nmax_sessions_per_host = 0\n") == "nat64.limits.max_sessions_per_host")
        let udp = parseError(stateful + "[nat64.timeouts]\nudp = 60\n")
        #expect(udp?.file == "st.toml" && udp?.problem.contains("UDP_MIN") == true)
        let bib = "[[nat64.static_bib]]\nprotocol = \"udp\"\nipv6 = \"2001:db8:1::5\"\nipv6_port = 53\nipv4 = \"198.51.100.64\"\nipv4_port = 53\n"
        #expect(key(bib) == nil)
        #expect(key(bib.replacingOccurrences(of: "198.51.100.64", with: "192.0.2.1")) == "nat64.static_bib[0].ipv4")
        #expect(parseError(stateful + bib.replacingOccurrences(of: "198.51.100.64", with: "192.0.2.1"))?.problem.contains("not a pool address") == true)
        #expect(key(bib.replacingOccurrences(of: "\"udp\"", with: "\"sctp\"")) == "nat64.static_bib[0].protocol")
        #expect(key(bib.replacingOccurrences(of: "2001:db8:1::5", with: "2001:db8:64::c000:201")) == "nat64.static_bib[0].ipv6")
        #expect(key(bib.replacingOccurrences(of: "ipv6_port = 53\n", with: "")) == "nat64.static_bib[0].ipv6_port")
        #expect(key(bib.replacingOccurrences(of: "ipv4_port = 53", with: "ipv4_port = 0")) == "nat64.static_bib[0].ipv4_port")
        #expect(key(bib + bib.replacingOccurrences(of: "2001:db8:1::5", with: "2001:db8:1::6")) == "nat64.static_bib[1]")
        #expect(key(bib + "colour = \"red\"\n") == "nat64.static_bib[0].colour")
    }

    @Test func statefulPoolMustNotOverlapNAT44() {
        let e = parseError("[nat44]\npool = [\"198.51.100.65/32\"]\n" + stateful)
        #expect(e?.key == "nat64.pool" && e?.problem.contains("overlaps the NAT44 pool") == true)
    }

    @Test func statefulExampleLoads() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Examples/nat64-stateful.toml").path
        let c = try ConfigLoader.load(file: path)
        let s = try #require(c.nat64?.statefulMode)
        #expect(c.nat64?.mode.name == "stateful" && s.staticBindings.count == 2 && s.pool == [IPv4Prefix("198.51.100.64/30")!])
        // It also builds: the NAT64 library accepts what the loader produced.
        #expect(throws: Never.self) { _ = try NAPT64Mapping(configuration: s) }
    }
}
