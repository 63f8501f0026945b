import Foundation
import NATLab
import NATRuntime
import Testing

// Stateful NAT64 (RFC 6146) through the real daemon: the IPv6-only client (2001:db8:1::2) reaches the
// IPv4-only server (203.0.113.2, as 2001:db8:64::cb00:7102) with ping, curl and UDP; the server reaches
// the client through a static BIB entry; an unsolicited connection from the server is refused after 6 s.
// Helpers (withNAT64Lab, nat64Dump) are those of NAT64EndToEndTests.swift.

private let server6 = LabNetwork.serverAddress6
/// The lab's NAT64 pool, 198.51.100.64/29: every address of it may carry BIB entries.
private let poolAddresses = (64...71).map { "198.51.100.\($0)" }

/// The nat64 dump's session lines ("nat64 session …").
private func sessionLines(_ net: LabNetwork, _ daemon: Process) -> (stats: String, sessions: [String]) {
    _ = nat64Dump(net, daemon)
    let text = net.log("daemon.log")
    guard let last = text.range(of: "nat64 counters queue=", options: .backwards) else { return ("", []) }
    let tail = text[last.lowerBound...]
    let stats = String(tail.prefix { $0 != "\n" })
    let lines = tail.split(separator: "\n").compactMap { l -> String? in
        guard let r = l.range(of: "nat64 session ") else { return nil }
        return String(l[r.upperBound...])
    }
    return (stats, lines)
}

@Suite(.serialized, .enabled(if: canRunLab, "end-to-end tests need root, /dev/net/tun and iproute2 (ip): run `sudo swift test` or .ci/run"))
struct NAT64StatefulEndToEndTests {
    static let staticBIB = """
    [[nat64.static_bib]]
    protocol = "tcp"
    ipv6 = "\(LabNetwork.clientAddress6)"
    ipv6_port = 8081
    ipv4 = "198.51.100.70"
    ipv4_port = 8080
    """

    @Test func rfc6146_statefulNAT64PingHTTPUDPAndStaticBIB() throws {
        guard requireTools(["ping", "curl", "socat", "python3"]) else { return }
        try withNAT64Lab("n64-stateful", config: { $0.nat64Config(mode: "stateful", extra: "filtering = \"endpoint-independent\"") + Self.staticBIB }) { net, daemon in
            #expect(net.log("daemon.log").contains("nat64=stateful"), "\(net.log("daemon.log"))")
            #expect(net.exec(net.client, ["ip", "-4", "addr", "show", "dev", "eth0"]).stdout.isEmpty, "the client must be IPv6-only")

            // ICMP echo (RFC 6146 §3.5.3).
            let ping = net.exec(net.client, ["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", server6])
            #expect(ping.ok && ping.stdout.contains("3 received"), "ping -6 through stateful NAT64: \(ping.stdout) \(ping.stderr)")
            #expect(ping.stdout.contains("from \(server6)"), "echo replies come from the server's IPv6 form: \(ping.stdout)")

            // TCP (RFC 6146 §3.5.2): an HTTP download.
            try "stateful nat64\n".write(toFile: net.directory + "/index.html", atomically: true, encoding: .utf8)
            try net.startHTTPServer(net.server, address: LabNetwork.serverAddress, port: 8000, logName: "http.log")
            for _ in 0..<3 {
                let curl = net.exec(net.client, ["curl", "-sS", "-g", "-m", "5", "http://[\(server6)]:8000/index.html"])
                #expect(curl.ok && curl.stdout == "stateful nat64\n", "curl: \(curl.stdout) \(curl.stderr)")
            }
            let httpLog = net.log("http.log")
            let seen = poolAddresses.filter { httpLog.contains("\($0) - -") }
            #expect(seen.count == 1, "the server sees the client as one pool address (paired pooling): \(httpLog)")

            // UDP (RFC 6146 §3.5.1): an echo with a fixed source port.
            try net.spawn(net.server, ["socat", "UDP4-RECVFROM:7777,bind=\(LabNetwork.serverAddress),fork", "SYSTEM:cat"], logName: "udp.log")
            #expect(net.waitForListener(net.server, port: 7777, udp: true))
            let udp = net.exec(net.client, ["sh", "-c", "echo datagram6 | socat -T 2 - UDP6:[\(server6)]:7777,sourceport=40000"])
            #expect(udp.stdout == "datagram6\n", "udp echo: \(udp.stdout) \(udp.stderr)")

            // The IPv4 server starts a connection to the client through the static BIB entry (RFC 6146 §3.1).
            try net.spawn(net.client, ["socat", "TCP6-LISTEN:8081,bind=[\(LabNetwork.clientAddress6)],reuseaddr,fork",
                                       "SYSTEM:echo static-bib"], logName: "static.log")
            #expect(net.waitForListener(net.client, port: 8081))
            let inbound = net.exec(net.server, ["socat", "-T", "3", "-", "TCP4:198.51.100.70:8080"])
            #expect(inbound.stdout == "static-bib\n", "IPv4 → static BIB → IPv6: \(inbound.stdout) \(inbound.stderr)")

            // An unsolicited SYN to a pool port nobody holds is kept 6 s, then refused with ICMP port
            // unreachable (RFC 6146 §3.5.2.2): the server's connect fails with "refused", not a timeout.
            let start = Date()
            let refused = net.exec(net.server, ["curl", "-sS", "-m", "12", "http://198.51.100.71:9999/"], timeout: 15)
            let took = Date().timeIntervalSince(start)
            // curl exit 7 ("Couldn't connect", the kernel's ECONNREFUSED) rather than 28 (timeout).
            #expect(refused.status == 7, "curl: \(refused.status) \(refused.stderr)")
            #expect(took >= 5.5 && took < 11, "answered after TCP_INCOMING_SYN (6 s), took \(took) s")

            let dump = sessionLines(net, daemon)
            #expect(dump.stats.contains("mode=stateful"), "\(dump.stats)")
            #expect(dump.stats.contains("held_syns=0"), "\(dump.stats)")
            #expect(dump.sessions.contains { $0.hasPrefix("icmp [\(LabNetwork.clientAddress6)]:") && $0.contains("-> 203.0.113.2:0") }, "\(dump.sessions)")
            #expect(dump.sessions.contains { $0.hasPrefix("udp [\(LabNetwork.clientAddress6)]:40000 -> [\(server6)]:7777") }, "\(dump.sessions)")
            #expect(dump.sessions.filter { $0.hasPrefix("tcp [\(LabNetwork.clientAddress6)]:") && $0.contains(":8000 as ") }.count == 3,
                    "three HTTP connections: \(dump.sessions)")
            #expect(dump.sessions.contains { $0.hasPrefix("tcp [\(LabNetwork.clientAddress6)]:8081 -> ") && $0.contains(" as 198.51.100.70:8080 ") },
                    "the static BIB entry's session: \(dump.sessions)")
            // The expired SYN and the retransmissions that came while it was kept are counted.
            #expect(dump.stats.contains("unsolicited_syn="), "the expired SYN is counted: \(dump.stats)")
            #expect(dump.stats.contains("icmp_errors_generated=1 "), "one ICMP port unreachable: \(dump.stats)")
        }
    }
}
