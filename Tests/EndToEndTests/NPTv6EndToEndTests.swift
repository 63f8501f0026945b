import Foundation
import NATLab
import NATRuntime
import Testing

// NPTv6 (RFC 6296) through the real daemon: the client (2001:db8:1::2, inside prefix 2001:db8:1::/48) and
// the server (2001:db8:100::2) on the nat–server link, which routes the outside prefix 2001:db8:2::/48 to
// the nat. Real ping, curl, iperf3, socat and python3 on both sides; the client is dual-stack, and its
// IPv4 crosses NAT44 in the same daemon and TUN device.

private let server6 = LabNetwork.outsideServerAddress6

/// RFC 6296 §3.1, computed here on its own terms: the outside address keeps the inside address's
/// interface identifier, takes the outside prefix, and gets in word 3 (the subnet ID, for a /48) whatever
/// value makes its eight words' one's complement sum equal to the inside address's.
func nptv6Expected(_ inside: String, outsidePrefix48: String) -> String {
    func words(_ a: String) -> [UInt32] {
        var b = in6_addr()
        precondition(inet_pton(AF_INET6, a, &b) == 1)
        return withUnsafeBytes(of: &b) { r in (0..<8).map { UInt32(r[2 * $0]) << 8 | UInt32(r[2 * $0 + 1]) } }
    }
    func sum(_ w: [UInt32]) -> UInt32 {
        var s = w.reduce(0, +)
        while s > 0xFFFF { s = (s & 0xFFFF) + (s >> 16) }
        return s == 0xFFFF ? 0 : s
    }
    let a = words(inside), p = words(String(outsidePrefix48.split(separator: "/")[0]))
    var out = [p[0], p[1], p[2], 0] + Array(a[4...])
    // Search the word (65 535 candidates at most, no algebra shared with the translator).
    for x in UInt32(0)..<0xFFFF {
        out[3] = x
        if sum(out) == sum(a) { break }
    }
    var b = in6_addr()
    withUnsafeMutableBytes(of: &b) { r in for k in 0..<8 { r[2 * k] = UInt8(out[k] >> 8); r[2 * k + 1] = UInt8(out[k] & 0xFF) } }
    var text = [CChar](repeating: 0, count: 64)
    _ = inet_ntop(AF_INET6, &b, &text, 64)
    return String(cString: text)
}

/// The addresses in `[...]` in `text` (socat's $SOCAT_PEERADDR is the full form), in RFC 5952's form.
func bracketedIPv6(_ text: String) -> [String] {
    text.split(separator: "[").dropFirst().compactMap { part in
        guard let end = part.firstIndex(of: "]") else { return nil }
        var b = in6_addr()
        guard inet_pton(AF_INET6, String(part[..<end]), &b) == 1 else { return nil }
        var out = [CChar](repeating: 0, count: 64)
        _ = inet_ntop(AF_INET6, &b, &out, 64)
        return String(cString: out)
    }
}

/// Builds the namespaces (dual-stack client, IPv6 on the outside link), starts the daemon with NPTv6 (and
/// NAT44 with `nat44`), runs `body`, stops the daemon and checks that it removed its routes and rules.
func withNPTv6Lab(_ tag: String, nat44: Bool = false, extraTables: String = "", _ body: (LabNetwork, Process) throws -> Void) throws {
    guard FileManager.default.isExecutableFile(atPath: swiftnatBinary) else {
        Issue.record("swiftnat binary not found at \(swiftnatBinary): run `swift build` first")
        return
    }
    let net = try LabNetwork(tag: tag, outsideIPv6: true)
    defer { net.destroy() }
    let daemon = try net.startDaemon(binary: swiftnatBinary, config: net.nptv6Config(nat44: nat44 ? "port-restricted-cone" : nil) + "\n" + extraTables + "\n")
    do {
        try body(net, daemon)
    } catch {
        print("daemon log for \(tag):\n\(net.log("daemon.log"))")
        throw error
    }
    net.stop(daemon)
    let log = net.log("daemon.log")
    #expect(log.contains("stopped: routes and snat0 removed"), "daemon did not stop cleanly:\n\(log)")
    #expect(net.exec(net.nat, ["ip", "-6", "route", "show", LabNetwork.nptv6OutsidePrefix]).stdout.isEmpty, "outside prefix route left behind")
    #expect(!net.exec(net.nat, ["ip", "-6", "rule", "show"]).stdout.contains("7744"), "ip -6 rules left behind")
    #expect(net.exec(net.nat, ["ip", "-6", "route", "show", "table", "7744"]).stdout.isEmpty, "IPv6 table 7744 left behind")
}

/// The daemon's NPTv6 dump line (SIGUSR1).
func nptv6Stats(_ net: LabNetwork, _ p: Process) -> String {
    let key = "nptv6 counters queue=0 "
    let before = net.log("daemon.log").components(separatedBy: key).count
    kill(p.processIdentifier, SIGUSR1)
    let end = Date().addingTimeInterval(3)
    while Date() < end && net.log("daemon.log").components(separatedBy: key).count == before { usleep(50_000) }
    usleep(100_000)
    let text = net.log("daemon.log")
    guard let r = text.range(of: key, options: .backwards) else { return "" }
    return String(text[r.lowerBound...].prefix { $0 != "\n" })
}

@Suite(.serialized, .enabled(if: canRunLab, "end-to-end tests need root, /dev/net/tun and iproute2 (ip): run `sudo swift test` or .ci/run"))
struct NPTv6EndToEndTests {
    static let mapped = nptv6Expected(LabNetwork.clientAddress6, outsidePrefix48: LabNetwork.nptv6OutsidePrefix)

    @Test func independentMappingIsTheLabsOwn() {
        #expect(Self.mapped == "2001:db8:2:fffe::2")
        #expect(LabRunner.nptv6Mapped(LabNetwork.clientAddress6) == Self.mapped)
    }

    /// ping, HTTP (curl), iperf3 and UDP (socat) from the inside host; the server sees the mapped address.
    @Test("RFC 6296 §3.1: ping, curl, iperf3 and UDP cross NPTv6; the server sees the mapped address")
    func rfc6296_3_1_trafficCrossesAndServerSeesMappedAddress() throws {
        guard requireTools(["ping", "curl", "iperf3", "socat", "python3"]) else { return }
        try withNPTv6Lab("n66") { net, daemon in
            let ping = net.exec(net.client, ["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", server6])
            #expect(ping.ok && ping.stdout.contains("3 received"), "ping -6 through NPTv6: \(ping.stdout) \(ping.stderr)")

            try "nptv6 body\n".write(toFile: net.directory + "/index.html", atomically: true, encoding: .utf8)
            try net.startHTTPServer(net.server, address: server6, port: 8000, logName: "http.log")
            let curl = net.exec(net.client, ["curl", "-6", "-sS", "-g", "-m", "5", "http://[\(server6)]:8000/index.html"])
            #expect(curl.ok && curl.stdout == "nptv6 body\n", "curl: \(curl.stdout) \(curl.stderr)")
            #expect(net.log("http.log").contains("\(Self.mapped) - -"), "the server should see \(Self.mapped): \(net.log("http.log"))")

            try net.spawn(net.server, ["socat", "UDP6-RECVFROM:7777,bind=[\(server6)],fork", "SYSTEM:echo from $SOCAT_PEERADDR; cat"],
                          logName: "udp.log")
            #expect(net.waitForListener(net.server, port: 7777, udp: true))
            let udp = net.exec(net.client, ["sh", "-c", "echo datagram6 | socat -T 2 - UDP6:[\(server6)]:7777,sourceport=40000"])
            #expect(udp.stdout.contains("datagram6") && bracketedIPv6(udp.stdout).contains(Self.mapped),
                    "udp echo should name the mapped peer: \(udp.stdout) \(udp.stderr)")

            let iperfServer = try net.spawn(net.server, ["iperf3", "-s", "-1", "-B", server6, "-p", "5201"], logName: "iperf3-server.log")
            #expect(net.waitForListener(net.server, port: 5201))
            let iperf = net.exec(net.client, ["iperf3", "-6", "-c", server6, "-p", "5201", "-t", "2", "-J"], timeout: 15)
            #expect(iperf.ok, "iperf3: \(iperf.stdout.suffix(500)) \(iperf.stderr)")
            let end = Date().addingTimeInterval(5)
            while iperfServer.isRunning && Date() < end { usleep(50_000) }
            #expect(net.log("iperf3-server.log").contains("Accepted connection from \(Self.mapped)"),
                    "iperf3 server: \(net.log("iperf3-server.log"))")
            if let json = try? JSONSerialization.jsonObject(with: Data(iperf.stdout.utf8)) as? [String: Any],
               let e = json["end"] as? [String: Any], let r = e["sum_received"] as? [String: Any], let bps = r["bits_per_second"] as? Double {
                print("iperf3 through NPTv6: \(Int(bps / 1e6)) Mbit/s")
                #expect(bps > 1e6)
            } else {
                Issue.record("no iperf3 result: \(iperf.stdout.prefix(300))")
            }
            let stats = nptv6Stats(net, daemon)
            #expect(statsCounter(stats, "outbound").map { $0 > 10 } == true && statsCounter(stats, "inbound").map { $0 > 10 } == true, "\(stats)")
        }
    }

    /// The reverse direction: an outside host reaches the inside host at its outside address (no state
    /// needed, RFC 6296 §1's end-to-end addressability): ping and a UDP exchange the inside host serves.
    @Test("RFC 6296 §3.1: the outside host reaches the inside host at its mapped address")
    func rfc6296_3_1_outsideReachesInsideAtMappedAddress() throws {
        guard requireTools(["ping", "socat"]) else { return }
        try withNPTv6Lab("n66-rev") { net, _ in
            let ping = net.exec(net.server, ["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", Self.mapped])
            #expect(ping.ok && ping.stdout.contains("2 received") && ping.stdout.contains("from \(Self.mapped)"),
                    "ping from outside to the mapped address: \(ping.stdout) \(ping.stderr)")
            try net.spawn(net.client, ["socat", "UDP6-RECVFROM:7000,bind=[\(LabNetwork.clientAddress6)],fork",
                                       "SYSTEM:echo inside saw $SOCAT_PEERADDR; cat"], logName: "inside-udp.log")
            #expect(net.waitForListener(net.client, port: 7000, udp: true))
            let udp = net.exec(net.server, ["sh", "-c", "echo hello-inside | socat -T 2 - UDP6:[\(Self.mapped)]:7000"])
            #expect(udp.stdout.contains("hello-inside") && bracketedIPv6(udp.stdout).contains(server6),
                    "UDP from outside to the mapped address: \(udp.stdout) \(udp.stderr)")
        }
    }

    /// ICMPv6 errors about translated packets reach the inside host with the quoted packet mapped back
    /// (the kernel matches them to the socket by the quoted addresses): a port unreachable from the server
    /// (ECONNREFUSED on a connected UDP socket) and the nat's own hop limit exceeded (ping -t 2).
    @Test("RFC 6296 §3.7: ICMPv6 errors are translated back to the inside host")
    func rfc6296_3_7_icmpv6ErrorsTranslatedBack() throws {
        guard requireTools(["ping", "python3", "curl"]) else { return }
        try withNPTv6Lab("n66-icmp", extraTables: "[metrics]\nlisten = \"127.0.0.1:9770\"") { net, daemon in
            let py = try script(net, "unreach6.py", """
            import socket
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.settimeout(3)
            s.connect(("\(server6)", 9))
            s.send(b"anyone?")
            try:
                s.recv(100)
                print("DATA")
            except ConnectionRefusedError:
                print("REFUSED")
            except socket.timeout:
                print("TIMEOUT")
            """)
            let o = net.exec(net.client, ["python3", py])
            #expect(o.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "REFUSED",
                    "expected ICMPv6 port unreachable at the client: \(o.stdout) \(o.stderr)")
            // Hop limit 2: the nat forwards it into the TUN device (1 left), and cannot forward the
            // translation out: its Time Exceeded goes to the mapped address and is translated back.
            let hl = net.exec(net.client, ["ping", "-6", "-c", "1", "-t", "2", "-W", "2", server6])
            #expect(hl.stdout.contains("Time exceeded"), "ping -t 2 should report Time exceeded: \(hl.stdout) \(hl.stderr)")
            let stats = nptv6Stats(net, daemon)
            #expect(statsCounter(stats, "icmp_errors_translated").map { $0 >= 2 } == true, "\(stats)")
            // The same counters over the control socket and the metrics endpoint.
            let cli = Shell.run([swiftnatBinary, "stats", "--socket", net.controlSocket], timeout: 10)
            #expect(cli.ok && cli.stdout.contains("nptv6:"), "swiftnat stats: \(cli.stdout) \(cli.stderr)")
            let metrics = net.exec(net.nat, ["curl", "-sS", "-m", "5", "http://127.0.0.1:9770/metrics"]).stdout
            let ours = metrics.split(separator: "\n").filter { $0.contains("engine=\"nptv6\"") }
            #expect(ours.contains { $0.hasPrefix("swiftnat_icmp_errors_total") && $0.contains("translated") && !$0.hasSuffix(" 0") },
                    "no nptv6 ICMP error metric: \(ours)")
            #expect(ours.contains { $0.hasPrefix("swiftnat_dropped_packets_total") && $0.contains("adjustment_word_all_ones") },
                    "no nptv6 drop-reason series: \(ours.prefix(5))")
        }
    }

    /// One daemon, one TUN device: IPv4 through NAT44 and IPv6 through NPTv6 from the same dual-stack host.
    @Test func nptv6AndNAT44ShareTheDaemon() throws {
        guard requireTools(["ping", "curl", "python3"]) else { return }
        try withNPTv6Lab("n66-44", nat44: true) { net, _ in
            let p4 = net.exec(net.client, ["ping", "-4", "-c", "2", "-i", "0.2", "-W", "2", LabNetwork.serverAddress])
            #expect(p4.ok && p4.stdout.contains("2 received"), "ping -4: \(p4.stdout) \(p4.stderr)")
            try "both\n".write(toFile: net.directory + "/index.html", atomically: true, encoding: .utf8)
            try net.startHTTPServer(net.server, address: "::", port: 8000, logName: "http.log")
            let c6 = net.exec(net.client, ["curl", "-6", "-sS", "-g", "-m", "5", "http://[\(server6)]:8000/index.html"])
            let c4 = net.exec(net.client, ["curl", "-4", "-sS", "-m", "5", "http://\(LabNetwork.serverAddress):8000/index.html"])
            #expect(c6.stdout == "both\n" && c4.stdout == "both\n", "curl: \(c6.stdout) \(c6.stderr) \(c4.stdout) \(c4.stderr)")
            let log = net.log("http.log")
            #expect(log.contains(Self.mapped) && log.contains(LabNetwork.poolAddress), "the server saw: \(log)")
        }
    }
}
