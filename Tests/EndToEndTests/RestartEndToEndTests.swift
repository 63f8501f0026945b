import Foundation
import NATLab
import NATRuntime
import Testing

// Restart without loss (issue 12): a TCP connection, a UDP flow and a long iperf3 run cross a planned
// restart of the daemon (SIGTERM, then `swiftnat run` again with the same configuration) and go on with
// the same outside ports, as the server sees them.
@Suite(.serialized, .enabled(if: canRunLab, "end-to-end tests need root, /dev/net/tun and iproute2 (ip): run `sudo swift test` or .ci/run"))
struct RestartEndToEndTests {
    /// A client that sends a numbered line every 100 ms over one TCP connection and reads each echo,
    /// for `duration` seconds; any error ends it with the error (exit 1). Every read and write is bounded.
    static let tcpClient = """
    import socket, sys, time
    host, port, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    s = socket.create_connection((host, port), timeout=5)
    s.settimeout(15)
    print("connected from %s:%d" % s.getsockname()[:2], flush=True)
    buf = b""
    start = time.time()
    i = 0
    try:
        while time.time() - start < duration:
            i += 1
            s.sendall(b"line %d\\n" % i)
            while b"\\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    print("error: connection closed by the peer after line %d" % i, flush=True)
                    sys.exit(1)
                buf += chunk
            line, buf = buf.split(b"\\n", 1)
            if line != b"line %d" % i:
                print("error: echo %r for line %d" % (line, i), flush=True)
                sys.exit(1)
            print("echo %d at %.2f" % (i, time.time() - start), flush=True)
            time.sleep(0.1)
    except Exception as e:
        print("error: %r after line %d" % (e, i), flush=True)
        sys.exit(1)
    print("done %d lines" % i, flush=True)
    """

    /// A UDP client on an unconnected socket (ICMP errors during the restart gap are not reported to
    /// it): a datagram every 100 ms from port `sport`, counting answers.
    static let udpClient = """
    import socket, sys, time
    host, port, sport, duration = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", sport))
    s.settimeout(0.1)
    start = time.time()
    i = 0
    while time.time() - start < duration:
        i += 1
        s.sendto(b"u%d" % i, (host, port))
        try:
            data, _ = s.recvfrom(2048)
            print("answer %s at %.2f" % (data.decode(), time.time() - start), flush=True)
        except socket.timeout:
            pass
        time.sleep(0.1)
    print("done %d datagrams" % i, flush=True)
    """

    /// The peer (`address:port`) of every established connection to `port` in the server namespace.
    static func peers(_ net: LabNetwork, port: Int) -> [String] {
        let o = net.exec(net.server, ["ss", "-Htn", "state", "established", "( sport = :\(port) )"], timeout: 5)
        return o.stdout.split(separator: "\n").compactMap { $0.split(separator: " ", omittingEmptySubsequences: true).last.map(String.init) }
    }

    /// The senders the UDP echo server saw, in order.
    static func udpSenders(_ net: LabNetwork, log: String) -> [String] {
        net.log(log).split(separator: "\n").compactMap { line in
            guard let r = line.range(of: " to "), let c = line.range(of: ": ", range: r.upperBound..<line.endIndex) else { return nil }
            return String(line[r.upperBound..<c.lowerBound])
        }
    }

    /// The client's received ICMP Destination Unreachable messages (its /proc/net/snmp), to report.
    static func unreachablesIn(_ net: LabNetwork, _ ns: String) -> Int {
        let snmp = net.exec(ns, ["cat", "/proc/net/snmp"]).stdout.split(separator: "\n")
        guard let header = snmp.first(where: { $0.hasPrefix("Icmp: InMsgs") }),
              let values = snmp.first(where: { $0.hasPrefix("Icmp: ") && !$0.hasPrefix("Icmp: InMsgs") }) else { return -1 }
        let keys = header.split(separator: " "), vals = values.split(separator: " ")
        guard let i = keys.firstIndex(of: "InDestUnreachs"), i < vals.count else { return -1 }
        return Int(vals[i]) ?? -1
    }

    /// Waits up to `seconds` for `p` (started by this test) to end; kills it by its pid when it does not.
    static func finish(_ p: Process, within seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < end { usleep(50_000) }
        guard p.isRunning else { return true }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        return false
    }

    @Test func restart_tcpUDPAndIperf3CrossARestartOnTheSameOutsidePorts() throws {
        guard requireTools(["socat", "python3", "iperf3", "ss"]) else { return }
        guard FileManager.default.isExecutableFile(atPath: swiftnatBinary) else {
            Issue.record("swiftnat binary not found at \(swiftnatBinary): run `swift build` first")
            return
        }
        let net = try LabNetwork(tag: "restart")
        defer { net.destroy() }
        // Without port preservation a new mapping gets a port from a hash keyed by each run's own random
        // seed: only a restored mapping keeps the outside port the server saw before.
        let config = net.daemonConfig(behavior: "port-restricted-cone", extraKeys: "port_preservation = false")
        var daemon = try net.startDaemon(binary: swiftnatBinary, config: config)

        // The outside: a socat echo server for one connection (PIPE echoes without a child process; it
        // logs the connection it accepts, with its peer), the lab's UDP echo server (a line per datagram,
        // with its sender), an iperf3 server for one test. None runs under `timeout`: the lab stops each by
        // its own pid (``LabNetwork/stop(_:grace:)``); each ends by itself or when the lab is destroyed.
        try net.spawn(net.server, ["socat", "-d", "-d", "TCP4-LISTEN:5000,bind=\(LabNetwork.serverAddress),reuseaddr", "PIPE"], logName: "socat-server.log")
        try net.startToolUDPEcho(binary: swiftnatBinary, net.server, address: LabNetwork.serverAddress, port: 5001, logName: "udp-echo.log", duration: 60)
        try net.spawn(net.server, ["iperf3", "-s", "-1", "-B", LabNetwork.serverAddress, "-p", "5201"], logName: "iperf3-server.log")
        #expect(net.waitForListener(net.server, port: 5000) && net.waitForListener(net.server, port: 5201))

        let tcpPath = try script(net, "tcp_client.py", Self.tcpClient)
        let udpPath = try script(net, "udp_client.py", Self.udpClient)
        let duration = 9.0
        let tcp = try net.spawn(net.client, ["python3", "-u", tcpPath, LabNetwork.serverAddress, "5000", String(duration)], logName: "tcp-client.log")
        let udp = try net.spawn(net.client, ["python3", "-u", udpPath, LabNetwork.serverAddress, "5001", "45000", String(duration)], logName: "udp-client.log")
        let iperf = try net.spawn(net.client, ["iperf3", "-c", LabNetwork.serverAddress, "-p", "5201", "--connect-timeout", "5000", "-t", String(Int(duration)), "-b", "20M", "-i", "1"], logName: "iperf3-client.log")
        #expect(net.waitFor("echo 10 ", in: "tcp-client.log", process: tcp, timeout: 10), "the TCP flow did not start: \(net.log("tcp-client.log"))")
        #expect(net.waitFor("answer u", in: "udp-client.log", process: udp, timeout: 10), "the UDP flow did not start: \(net.log("udp-client.log"))")

        let tcpPeersBefore = Self.peers(net, port: 5000)
        let udpBefore = Self.udpSenders(net, log: "udp-echo.log")
        let unreachablesBefore = Self.unreachablesIn(net, net.client)

        // The planned restart: SIGTERM, then the same command with the same configuration.
        net.stop(daemon)
        let firstLog = net.log("daemon.log")
        #expect(firstLog.contains("stopped: routes and snat0 removed"), "\(firstLog)")
        #expect(firstLog.contains("sessions: saved "), "\(firstLog)")
        #expect(FileManager.default.fileExists(atPath: net.sessionsFile))
        daemon = try net.startDaemon(binary: swiftnatBinary, config: config)
        let secondLog = net.log("daemon.log")
        #expect(secondLog.contains("sessions: restored "), "\(secondLog)")
        #expect(!FileManager.default.fileExists(atPath: net.sessionsFile) && FileManager.default.fileExists(atPath: net.sessionsFile + ".old"),
                "the sessions file is set aside once read")

        // The connection goes on after the restart: a few more echoes, then the peer the server sees.
        let echoed = net.log("tcp-client.log").split(separator: "\n").filter { $0.hasPrefix("echo ") }.count
        #expect(net.waitFor("echo \(echoed + 3) ", in: "tcp-client.log", process: tcp, timeout: 15),
                "no echo after the restart:\n\(net.log("tcp-client.log"))\n\(secondLog)")
        let tcpPeersAfter = Self.peers(net, port: 5000)
        for p in [tcp, udp, iperf] { #expect(Self.finish(p, within: 20), "\(p.arguments ?? []) did not end in time; killed") }
        let tcpLog = net.log("tcp-client.log"), udpLog = net.log("udp-client.log"), iperfLog = net.log("iperf3-client.log")
        let udpAfter = Self.udpSenders(net, log: "udp-echo.log")
        let unreachables = Self.unreachablesIn(net, net.client) - unreachablesBefore
        print("restart: ICMP destination unreachable messages the client got during the restart: \(unreachables)")

        // TCP: one connection from start to end (the server accepted exactly one), echoes after the restart.
        #expect(tcp.terminationStatus == 0 && tcpLog.contains("done "), "the TCP connection did not survive the restart:\n\(tcpLog)\n\(secondLog)")
        #expect(net.log("socat-server.log").components(separatedBy: "accepting connection from").count - 1 == 1,
                "the server should have seen one connection: \(net.log("socat-server.log"))")
        #expect(tcpPeersBefore.count == 1 && tcpPeersBefore.first?.hasPrefix(LabNetwork.poolAddress + ":") == true, "\(tcpPeersBefore)")
        #expect(tcpPeersAfter == tcpPeersBefore, "the server sees another peer after the restart: \(tcpPeersBefore) then \(tcpPeersAfter)")
        // UDP: answers after the restart, from the same outside endpoint before and after.
        let answersAfter = udpLog.split(separator: "\n").filter { $0.hasPrefix("answer") }.count
        #expect(Set(udpAfter).count == 1 && udpBefore.first == udpAfter.last && udpAfter.count > udpBefore.count,
                "the UDP flow changed its outside endpoint or stopped: before \(Set(udpBefore)), after \(Set(udpAfter))\n\(udpLog)")
        #expect(answersAfter > Int(duration * 5), "too few UDP answers: \(answersAfter)")
        // iperf3: its control and data connections crossed the restart; the run ends normally.
        #expect(iperf.terminationStatus == 0 && iperfLog.contains("iperf Done"), "iperf3 did not survive the restart:\n\(iperfLog)")

        // `swiftnat stats`: what the start restored, and no session made since (the restored ones carried
        // every packet after the restart).
        let stats = Shell.run([swiftnatBinary, "stats", "--json", "--socket", net.controlSocket], timeout: 10)
        let json = (try? JSONSerialization.jsonObject(with: Data(stats.stdout.utf8))) as? [String: Any] ?? [:]
        let runtime = json["runtime"] as? [String: Any] ?? [:], nat44 = json["nat44"] as? [String: Any] ?? [:]
        #expect((runtime["sessions_restored"] as? Int ?? 0) >= 3, "stats: \(stats.stdout) \(stats.stderr)")
        #expect(nat44["sessions_created"] as? Int == 0 && (nat44["outbound_packets"] as? Int ?? 0) > 100, "stats: \(stats.stdout)")
        net.stop(daemon)
        #expect(net.log("daemon.log").contains("stopped: routes and snat0 removed"))
    }

    /// Stateful NAT64 (RFC 6146): the IPv6-only client's TCP connection to the IPv4 server crosses a
    /// restart on the same BIB entry (the server sees the same IPv4 transport address before and after).
    @Test func restart_statefulNAT64TCPConnectionCrossesARestart() throws {
        guard requireTools(["socat", "python3", "ss"]) else { return }
        guard FileManager.default.isExecutableFile(atPath: swiftnatBinary) else {
            Issue.record("swiftnat binary not found at \(swiftnatBinary): run `swift build` first")
            return
        }
        let net = try LabNetwork(tag: "restart64", ipv6: true, ipv4Client: false)
        defer { net.destroy() }
        let config = net.nat64Config(mode: "stateful", extra: "port_preservation = false")
        var daemon = try net.startDaemon(binary: swiftnatBinary, config: config)
        try net.spawn(net.server, ["socat", "-d", "-d", "TCP4-LISTEN:5000,bind=\(LabNetwork.serverAddress),reuseaddr", "PIPE"], logName: "socat-server.log")
        #expect(net.waitForListener(net.server, port: 5000))
        let tcpPath = try script(net, "tcp_client.py", Self.tcpClient)
        let tcp = try net.spawn(net.client, ["python3", "-u", tcpPath, LabNetwork.serverAddress6, "5000", "6"], logName: "tcp-client.log")
        #expect(net.waitFor("echo 10 ", in: "tcp-client.log", process: tcp, timeout: 10), "the TCP flow did not start: \(net.log("tcp-client.log"))")
        let before = Self.peers(net, port: 5000)

        net.stop(daemon)
        #expect(net.log("daemon.log").contains("sessions: saved 1 sessions"), "\(net.log("daemon.log"))")
        daemon = try net.startDaemon(binary: swiftnatBinary, config: config)
        let secondLog = net.log("daemon.log")
        #expect(secondLog.contains("sessions: restored 1 sessions"), "\(secondLog)")
        let echoed = net.log("tcp-client.log").split(separator: "\n").filter { $0.hasPrefix("echo ") }.count
        #expect(net.waitFor("echo \(echoed + 3) ", in: "tcp-client.log", process: tcp, timeout: 15),
                "no echo after the restart:\n\(net.log("tcp-client.log"))\n\(secondLog)")
        let after = Self.peers(net, port: 5000)
        #expect(Self.finish(tcp, within: 20))
        #expect(tcp.terminationStatus == 0 && net.log("tcp-client.log").contains("done "), "\(net.log("tcp-client.log"))")
        #expect(before.count == 1 && before == after, "the server saw \(before) before and \(after) after the restart")
        #expect(net.log("socat-server.log").components(separatedBy: "accepting connection from").count - 1 == 1)
        let stats = Shell.run([swiftnatBinary, "stats", "--json", "--socket", net.controlSocket], timeout: 10)
        let json = (try? JSONSerialization.jsonObject(with: Data(stats.stdout.utf8))) as? [String: Any] ?? [:]
        let nat64 = json["nat64"] as? [String: Any] ?? [:]
        #expect(nat64["sessions_created"] as? Int == 0 && (nat64["outbound_packets"] as? Int ?? 0) > 10, "stats: \(stats.stdout)")
        net.stop(daemon)
        #expect(net.log("daemon.log").contains("stopped: routes and snat0 removed"))
    }

    /// The server's TCP resets sent so far (its /proc/net/snmp `Tcp: OutRsts`).
    static func resetsSent(_ net: LabNetwork, _ ns: String) -> Int {
        let snmp = net.exec(ns, ["cat", "/proc/net/snmp"]).stdout.split(separator: "\n")
        guard let header = snmp.first(where: { $0.hasPrefix("Tcp: RtoAlgorithm") }),
              let values = snmp.first(where: { $0.hasPrefix("Tcp: ") && !$0.hasPrefix("Tcp: RtoAlgorithm") }) else { return -1 }
        let keys = header.split(separator: " "), vals = values.split(separator: " ")
        guard let i = keys.firstIndex(of: "OutRsts"), i < vals.count else { return -1 }
        return Int(vals[i]) ?? -1
    }

    /// On a host whose `ip_forward` is on without swiftnat (a router), a clean stop that removed the
    /// fail-closed rules would let the inside host's retransmissions leave untranslated during the
    /// restart, and a server that routes back to the inside prefix would reset the connection. With
    /// `[routing] fail_closed_across_restart` the rules stay across the restart (steered traffic meets
    /// the unreachable route), the next start takes them over, and the connection survives.
    @Test func restart_failClosedAcrossRestartKeepsConnectionsWhereForwardingIsOn() throws {
        guard requireTools(["socat", "python3", "ss"]) else { return }
        guard FileManager.default.isExecutableFile(atPath: swiftnatBinary) else {
            Issue.record("swiftnat binary not found at \(swiftnatBinary): run `swift build` first")
            return
        }
        let net = try LabNetwork(tag: "restartfc")
        defer { net.destroy() }
        net.setSysctl(net.nat, "net/ipv4/ip_forward", "1")
        net.exec(net.server, ["ip", "route", "add", "100.64.0.0/24", "via", LabNetwork.natOutsideAddress])
        let config = net.daemonConfig(behavior: "port-restricted-cone", extraKeys: "port_preservation = false",
                                      extraTables: "[routing]\nfail_closed_across_restart = true\n")
        var daemon = try net.startDaemon(binary: swiftnatBinary, config: config)
        try net.spawn(net.server, ["socat", "-d", "-d", "TCP4-LISTEN:5000,bind=\(LabNetwork.serverAddress),reuseaddr", "PIPE"], logName: "socat-server.log")
        #expect(net.waitForListener(net.server, port: 5000))
        let tcpPath = try script(net, "tcp_client.py", Self.tcpClient)
        let tcp = try net.spawn(net.client, ["python3", "-u", tcpPath, LabNetwork.serverAddress, "5000", "6"], logName: "tcp-client.log")
        #expect(net.waitFor("echo 10 ", in: "tcp-client.log", process: tcp, timeout: 10), "the TCP flow did not start: \(net.log("tcp-client.log"))")
        let before = Self.peers(net, port: 5000)
        let resets = Self.resetsSent(net, net.server)

        net.stop(daemon)
        let firstLog = net.log("daemon.log")
        #expect(firstLog.contains("fail-closed rules and routes for the next start"), "\(firstLog)")
        let rules = net.exec(net.nat, ["ip", "rule"]).stdout
        #expect(rules.contains("7744:") && rules.contains("7742:"), "the rules should stay across the restart: \(rules)")
        // Between the two runs, steered traffic is refused, never routed on with its inside source.
        usleep(500_000)
        daemon = try net.startDaemon(binary: swiftnatBinary, config: config)
        let secondLog = net.log("daemon.log")
        #expect(secondLog.contains("sessions: restored 1 sessions"), "\(secondLog)")
        #expect(!secondLog.contains("removed leftovers"), "the kept rules are taken over, not removed: \(secondLog)")
        let echoed = net.log("tcp-client.log").split(separator: "\n").filter { $0.hasPrefix("echo ") }.count
        #expect(net.waitFor("echo \(echoed + 3) ", in: "tcp-client.log", process: tcp, timeout: 15),
                "no echo after the restart:\n\(net.log("tcp-client.log"))\n\(secondLog)")
        let after = Self.peers(net, port: 5000)
        #expect(Self.finish(tcp, within: 20))
        #expect(tcp.terminationStatus == 0 && net.log("tcp-client.log").contains("done "), "\(net.log("tcp-client.log"))")
        #expect(before.count == 1 && before == after, "the server saw \(before) before and \(after) after the restart")
        #expect(Self.resetsSent(net, net.server) == resets, "the server sent resets: it saw untranslated packets")
        // One set of rules: the start took the kept ones over instead of adding a second.
        let steering = net.exec(net.nat, ["ip", "rule"]).stdout.split(separator: "\n").filter { $0.hasPrefix("7744:") }
        #expect(steering.count == 1, "\(steering)")
        net.stop(daemon)
        #expect(net.log("daemon.log").contains("stopped: routes and snat0 removed"))
    }
}
