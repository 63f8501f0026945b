import Foundation
import NATLab
import NATRuntime
import Testing

// The control plane against the real daemon: the CLI over the control socket, the Prometheus endpoint
// scraped with curl and parsed with the prometheus_client parser, reload under a live TCP connection,
// run-time forwards that survive a restart.
@Suite(.serialized, .enabled(if: canRunLab, "end-to-end tests need root, /dev/net/tun and iproute2 (ip): run `sudo swift test` or .ci/run"))
struct ControlPlaneEndToEndTests {
    /// Runs the CLI against the lab's daemon.
    static func cli(_ net: LabNetwork, _ args: [String]) -> Shell.Output {
        Shell.run([swiftnatBinary] + args + ["--socket", net.controlSocket], timeout: 15)
    }

    static func json(_ text: String) -> Any? { try? JSONSerialization.jsonObject(with: Data(text.utf8)) }

    @Test func forwardsAddedAtRunTimeCarryTrafficAndGoAway() throws {
        guard requireTools(["curl", "python3"]) else { return }
        try withLab("ctl-fwd") { net, _ in
            try "inside server\n".write(toFile: net.directory + "/index.html", atomically: true, encoding: .utf8)
            try net.startHTTPServer(net.client, address: LabNetwork.clientAddress, port: 8080, logName: "inside-http.log")
            let url = "http://\(LabNetwork.poolAddress):9090/index.html"
            // No forward yet: the outside host cannot reach the inside server.
            let before = net.exec(net.server, ["curl", "-sS", "-m", "2", url])
            #expect(!before.ok, "reached the inside server before any forward: \(before.stdout)")

            let add = Self.cli(net, ["forwards", "add", "tcp", "\(LabNetwork.poolAddress):9090", "\(LabNetwork.clientAddress):8080",
                                     "--description", "test web"])
            #expect(add.ok, "forwards add: \(add.stdout) \(add.stderr)")
            let list = Self.cli(net, ["forwards", "list", "--json"])
            let rows = Self.json(list.stdout) as? [[String: Any]] ?? []
            #expect(rows.contains { $0["outside"] as? String == "198.51.100.1:9090" && $0["origin"] as? String == "cli" && $0["description"] as? String == "test web" },
                    "forwards list: \(list.stdout)")

            let through = net.exec(net.server, ["curl", "-sS", "-m", "5", url])
            #expect(through.ok && through.stdout == "inside server\n", "through the run-time forward: \(through.stdout) \(through.stderr)")

            // The flow is listed, filtered, with the right addresses.
            let s = Self.cli(net, ["sessions", "--json", "--protocol", "tcp", "--outside", "198.51.100.1:9090"])
            let sessions = Self.json(s.stdout) as? [[String: Any]] ?? []
            #expect(sessions.contains { $0["inside"] as? String == "100.64.0.2:8080" && ($0["remote"] as? String ?? "").hasPrefix("203.0.113.2:")
                && $0["is_static"] as? Bool == true }, "sessions: \(s.stdout) \(s.stderr)")
            let none = Self.cli(net, ["sessions", "--json", "--protocol", "udp", "--outside", "198.51.100.1:9090"])
            #expect((Self.json(none.stdout) as? [Any])?.isEmpty == true, "the filter let other sessions through: \(none.stdout)")

            // A second add of the same port is refused with the reason.
            let again = Self.cli(net, ["forwards", "add", "tcp", "\(LabNetwork.poolAddress):9090", "\(LabNetwork.clientAddress):8081"])
            #expect(!again.ok && again.stderr.contains("taken by another forward"), "duplicate forward: \(again.stdout) \(again.stderr)")

            let remove = Self.cli(net, ["forwards", "remove", "tcp", "\(LabNetwork.poolAddress):9090"])
            #expect(remove.ok, "forwards remove: \(remove.stdout) \(remove.stderr)")
            let after = net.exec(net.server, ["curl", "-sS", "-m", "2", url])
            #expect(!after.ok, "reached the inside server after the forward was removed: \(after.stdout)")
        }
    }

    @Test func statusStatsAndErrorsSayWhatToDo() throws {
        guard requireTools(["ping"]) else { return }
        try withLab("ctl-status") { net, _ in
            let ping = net.exec(net.client, ["ping", "-c", "2", "-i", "0.2", "-W", "2", LabNetwork.serverAddress])
            #expect(ping.ok)
            let status = Self.cli(net, ["status", "--json"])
            let st = Self.json(status.stdout) as? [String: Any] ?? [:]
            #expect(st["version"] as? String == SwiftNATVersion.string && st["queues"] as? Int == 1 && st["tun"] as? String == "snat0"
                    && (st["engines"] as? [String]) == ["nat44"], "status: \(status.stdout) \(status.stderr)")
            let stats = Self.cli(net, ["stats", "--json"])
            let nat44 = (Self.json(stats.stdout) as? [String: Any])?["nat44"] as? [String: Any] ?? [:]
            #expect((nat44["outbound_packets"] as? Int ?? 0) >= 2 && (nat44["inbound_packets"] as? Int ?? 0) >= 2, "stats: \(stats.stdout)")
            // Scripts without the CLI, as the README shows: JSON lines through socat, two requests on one
            // connection answered in order, the client's half-close honoured.
            if requireTools(["socat"]) {
                let raw = Shell.run(["sh", "-c", "printf '%s\\n%s\\n' '{\"command\":\"status\"}' '{\"command\":\"sessions\",\"protocol\":\"icmp\"}' | socat -t 5 - UNIX-CONNECT:\(net.controlSocket)"], timeout: 10)
                let lines = raw.stdout.split(separator: "\n")
                #expect(lines.count == 2 && lines[0].contains("\"version\"") && lines[1].contains("\"protocol\":\"icmp\""),
                        "socat: \(raw.stdout) \(raw.stderr)")
            }
            // The socket is root's alone.
            var st2 = stat()
            #expect(stat(net.controlSocket, &st2) == 0 && st2.st_mode & 0o777 == 0o600, "socket mode \(String(st2.st_mode & 0o777, radix: 8))")
            // A second daemon on the same socket refuses to start, and says why.
            let second = net.exec(net.nat, [swiftnatBinary, "run", net.directory + "/nat44.toml"], timeout: 15)
            #expect(!second.ok && second.stderr.contains("another swiftnat is running"), "second daemon: \(second.stderr)")
            // Bad arguments and a missing daemon are explained.
            let bad = Self.cli(net, ["forwards", "add", "sctp", "198.51.100.1:1", "100.64.0.2:1"])
            #expect(!bad.ok && bad.stderr.contains("not tcp or udp"), "\(bad.stderr)")
            let gone = Shell.run([swiftnatBinary, "status", "--socket", net.directory + "/nobody.sock"], timeout: 10)
            #expect(!gone.ok && gone.stderr.contains("no swiftnat daemon answers on"), "\(gone.stderr)")
        }
    }

    @Test func rfc6888_4_mappingsAreLoggedWithoutDestinationsUnlessAsked() throws {
        guard requireTools(["python3"]) else { return }
        let logging = "[logging]\nmappings = true\nrate_per_second = 5\n"
        try withLab("ctl-log", extraTables: logging) { net, _ in
            // Twelve new mappings at once (one process, twelve sockets, within a millisecond or so): at
            // most five are logged per second, the rest counted as suppressed.
            let burst = try script(net, "burst.py", """
            import socket
            socks = []
            for port in range(41000, 41012):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("100.64.0.2", port))
                s.sendto(b"x", ("203.0.113.2", 9))
                socks.append(s)
            """)
            let sent = net.exec(net.client, ["python3", burst])
            #expect(sent.ok, "\(sent.stderr)")
            #expect(net.waitFor("mapping created udp inside=100.64.0.2:41000 outside=198.51.100.1:41000", in: "daemon.log", timeout: 3),
                    "\(net.log("daemon.log"))")
            #expect(net.waitFor("event lines suppressed", in: "daemon.log", timeout: 4), "\(net.log("daemon.log"))")
            let lines = net.log("daemon.log").split(separator: "\n").filter { $0.contains("mapping created") }
            #expect(lines.count < 12, "rate limit: \(lines.count) lines")
            #expect(!lines.contains { $0.contains("remote=") }, "destinations logged without destinations = true")
        }
    }

    static let metrics = """
    [metrics]
    listen = "127.0.0.1:9770"
    """

    @Test func prometheusEndpointCountsTrafficAndParses() throws {
        guard requireTools(["curl", "ping"]) else { return }
        guard FileManager.default.fileExists(atPath: "/usr/bin/python3"),
              Shell.run(["/usr/bin/python3", "-c", "import prometheus_client"]).ok else {
            Issue.record("the prometheus_client parser is missing: apt-get install python3-prometheus-client (see .ci/run)")
            return
        }
        try withLab("ctl-metrics", extraTables: Self.metrics) { net, _ in
            func scrape() -> String {
                let o = net.exec(net.nat, ["curl", "-sS", "-m", "5", "http://127.0.0.1:9770/metrics"])
                #expect(o.ok, "scrape: \(o.stderr)")
                return o.stdout
            }
            func value(_ text: String, _ series: String) -> Double? {
                text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
            }
            let before = scrape()
            let series = "swiftnat_packets_total{engine=\"nat44\",direction=\"outbound\",verdict=\"translated\"}"
            let out0 = value(before, series) ?? -1
            // Scrape every 100 ms while traffic flows.
            let pinger = try net.spawn(net.client, ["ping", "-c", "20", "-i", "0.05", "-W", "2", LabNetwork.serverAddress], logName: "ping.log")
            for _ in 0..<10 {
                _ = scrape()
                usleep(100_000)
            }
            pinger.waitUntilExit()
            let after = scrape()
            let out1 = value(after, series) ?? -1
            #expect(out1 >= out0 + 20, "outbound packets \(out0) -> \(out1)")
            #expect(value(after, "swiftnat_sessions{engine=\"nat44\",protocol=\"all\"}") == 1, "sessions gauge")
            // By protocol: from the table census, which a scrape starts and timer rounds finish (~2 s).
            #expect(after.contains("swiftnat_sessions{engine=\"nat44\",protocol=\"icmp\"}"))
            #expect(after.contains("swiftnat_dropped_packets_total{engine=\"nat44\",reason=\"no_mapping\"}"), "drop reasons are labelled by name")
            #expect(after.contains("swiftnat_runtime_reads_total"))
            // A real Prometheus parser accepts the exposition.
            let file = net.directory + "/metrics.txt"
            try after.write(toFile: file, atomically: true, encoding: .utf8)
            let parse = Shell.run(["/usr/bin/python3", "-c", """
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            n = 0
            for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
                for s in fam.samples:
                    n += 1
            print(n)
            """, file])
            #expect(parse.ok && (Int(parse.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 50,
                    "prometheus_client parser: \(parse.stdout) \(parse.stderr)")
            let notFound = net.exec(net.nat, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5", "http://127.0.0.1:9770/"])
            #expect(notFound.stdout == "404")
        }
    }

    /// protomask's metric names on a NAT64 in pool mode: echo requests counted by ICMPv6 type and code,
    /// packets by protocol and status.
    @Test func protomaskMetricsCountNAT64Traffic() throws {
        guard requireTools(["curl", "ping"]) else { return }
        let net = try LabNetwork(tag: "ctl-pm", ipv6: true, ipv4Client: false)
        defer { net.destroy() }
        let daemon = try net.startDaemon(binary: swiftnatBinary, config: net.nat64Config(mode: "pool") + "\n" + Self.metrics + "\n")
        let server6 = LabNetwork.serverAddress6
        let ping = net.exec(net.client, ["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", server6])
        #expect(ping.ok, "ping6 through the NAT64: \(ping.stdout) \(ping.stderr)")
        let text = net.exec(net.nat, ["curl", "-sS", "-m", "5", "http://127.0.0.1:9770/metrics"]).stdout
        func value(_ series: String) -> Double {
            text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) } ?? -1
        }
        #expect(value("protomask_icmp_packets_recv{protocol=\"icmpv6\",icmp_type=\"128\",icmp_code=\"0\"}") >= 3, "\(text)")
        #expect(value("protomask_icmp_packets_recv{protocol=\"icmp\",icmp_type=\"0\",icmp_code=\"0\"}") >= 3)
        #expect(value("protomask_packets{protocol=\"ipv6\",status=\"translated\"}") >= 3)
        #expect(value("protomask_packets{protocol=\"icmpv6\",status=\"translated\"}") >= 3)
        #expect(value("protomask_packets{protocol=\"icmp\",status=\"translated\"}") >= 3)
        #expect(value("swiftnat_nat64_reservations{kind=\"dynamic\"}") == 1)
        net.stop(daemon)
    }

    /// A long-lived TCP connection crosses a reload that adds a forward and a reload of a broken file;
    /// the forward added at run time comes back after a restart.
    @Test func reloadKeepsSessionsAndRestartRestoresForwards() throws {
        guard requireTools(["socat", "python3", "curl"]) else { return }
        guard FileManager.default.isExecutableFile(atPath: swiftnatBinary) else {
            Issue.record("swiftnat binary not found at \(swiftnatBinary)")
            return
        }
        let net = try LabNetwork(tag: "ctl-reload")
        defer { net.destroy() }
        var daemon = try net.startDaemon(binary: swiftnatBinary, config: net.daemonConfig(behavior: "port-restricted-cone"))
        let path = net.directory + "/nat44.toml"
        // As written, with the lab's [control] table.
        let config = try String(contentsOfFile: path, encoding: .utf8)
        // A TCP echo server outside; a client inside that sends a line every 100 ms and counts echoes.
        try net.spawn(net.server, ["socat", "TCP-LISTEN:7000,bind=\(LabNetwork.serverAddress),reuseaddr,fork", "SYSTEM:cat"], logName: "echo.log")
        #expect(net.waitForListener(net.server, port: 7000))
        let client = try script(net, "talk.py", """
        import socket, time, sys
        s = socket.create_connection(("203.0.113.2", 7000), timeout=5)
        ok = 0
        end = time.time() + float(sys.argv[1])
        while time.time() < end:
            s.sendall(b"ping\\n")
            if s.recv(100) == b"ping\\n":
                ok += 1
            print("echoes", ok, flush=True)
            time.sleep(0.1)
        print("done", ok, flush=True)
        """)
        let talker = try net.spawn(net.client, ["python3", client, "6"], logName: "talk.log")
        #expect(net.waitFor("echoes 3", in: "talk.log", process: talker, timeout: 5))

        // Reload 1: adds a forward (and a longer UDP timeout); the connection keeps flowing.
        try (config + "\n[[nat44.forward]]\nprotocol = \"tcp\"\noutside = \"198.51.100.1:8080\"\ninside = \"100.64.0.2:8080\"\n")
            .replacingOccurrences(of: "behavior = \"port-restricted-cone\"", with: "behavior = \"port-restricted-cone\"\n[nat44.timeouts]\nudp = 600")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let r1 = Self.cli(net, ["reload"])
        #expect(r1.ok && r1.stdout.contains("forward added: tcp 198.51.100.1:8080"), "reload: \(r1.stdout) \(r1.stderr)")
        let fwd = Self.cli(net, ["forwards", "list", "--json"])
        #expect(fwd.stdout.contains("\"origin\":\"config\""), "\(fwd.stdout)")
        // Reload 2: a broken file is refused with its error; nothing changes.
        try "[nat44]\npool = [\"not an address\"]\n".write(toFile: path, atomically: true, encoding: .utf8)
        let r2 = Self.cli(net, ["reload"])
        #expect(!r2.ok && r2.stderr.contains("key 'nat44.pool[0]'") && r2.stderr.contains("running configuration stays"), "broken reload: \(r2.stderr)")
        // Reload 3, by SIGHUP: a change that needs a restart is refused with that reason.
        try config.replacingOccurrences(of: "name = \"snat0\"", with: "name = \"snat1\"").write(toFile: path, atomically: true, encoding: .utf8)
        kill(daemon.processIdentifier, SIGHUP)
        #expect(net.waitFor("[tun] changed, which needs a restart", in: "daemon.log", timeout: 5), "\(net.log("daemon.log"))")
        #expect(net.waitFor("done", in: "talk.log", process: talker, timeout: 10))
        let done = net.log("talk.log").split(separator: "\n").last { $0.hasPrefix("done") }.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
        #expect(done >= 40, "the connection stalled across the reloads: \(done) echoes in 6 s\n\(net.log("talk.log"))")

        // A run-time forward survives a restart.
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        let add = Self.cli(net, ["forwards", "add", "tcp", "198.51.100.1:9191", "100.64.0.2:8080", "--lifetime", "600"])
        #expect(add.ok, "\(add.stderr)")
        net.stop(daemon)
        #expect(!FileManager.default.fileExists(atPath: net.controlSocket), "the socket file stayed behind")
        daemon = try net.startDaemon(binary: swiftnatBinary, config: config)
        #expect(net.log("daemon.log").contains("restored 1 of 1 run-time forwards"), "\(net.log("daemon.log"))")
        try "restored\n".write(toFile: net.directory + "/index.html", atomically: true, encoding: .utf8)
        try net.startHTTPServer(net.client, address: LabNetwork.clientAddress, port: 8080, logName: "inside-http.log")
        let through = net.exec(net.server, ["curl", "-sS", "-m", "5", "http://198.51.100.1:9191/index.html"])
        #expect(through.ok && through.stdout == "restored\n", "restored forward: \(through.stdout) \(through.stderr)")
        let list = Self.cli(net, ["forwards", "list"])
        #expect(list.stdout.contains("tcp 198.51.100.1:9191 -> 100.64.0.2:8080 origin=cli expires_in="), "\(list.stdout) \(list.stderr)")
        net.stop(daemon)
    }
}
