import Foundation
import NATLab
import NATRuntime
import Testing

// NAT64 through the real daemon: an IPv6-only client namespace (2001:db8:1::2), the nat namespace running
// `swiftnat run`, an IPv4-only server (203.0.113.2, reached as 2001:db8:64::cb00:7102 under the lab's
// network-specific prefix 2001:db8:64::/96). Real ping, curl, socat and python3 on both sides.

/// Builds the namespaces (IPv6 client; dual-stack with `nat44`), starts the daemon with `config`, runs
/// `body`, stops the daemon and checks it cleaned up; removes everything whatever happens.
func withNAT64Lab(_ tag: String, config: (LabNetwork) -> String, dualStack: Bool = false,
                  before: (LabNetwork) throws -> Void = { _ in },
                  _ body: (LabNetwork, Process) throws -> Void) throws {
    guard FileManager.default.isExecutableFile(atPath: swiftnatBinary) else {
        Issue.record("swiftnat binary not found at \(swiftnatBinary): run `swift build` first")
        return
    }
    let net = try LabNetwork(tag: tag, ipv6: true, ipv4Client: dualStack)
    defer { net.destroy() }
    try before(net)
    let daemon = try net.startDaemon(binary: swiftnatBinary, config: config(net))
    do {
        try body(net, daemon)
    } catch {
        print("daemon log for \(tag):\n\(net.log("daemon.log"))")
        throw error
    }
    net.stop(daemon)
    let log = net.log("daemon.log")
    #expect(log.contains("stopped: routes and snat0 removed"), "daemon did not stop cleanly:\n\(log)")
    #expect(net.exec(net.nat, ["ip", "-6", "route", "show", LabNetwork.nat64Prefix]).stdout.isEmpty, "NAT64 prefix route left behind")
}

/// Asks the daemon for its NAT64 dump (SIGUSR1); returns the stats line and the reservation lines.
func nat64Dump(_ net: LabNetwork, _ p: Process) -> (stats: String, reservations: [String]) {
    let before = net.log("daemon.log").components(separatedBy: "nat64 counters queue=").count
    kill(p.processIdentifier, SIGUSR1)
    let end = Date().addingTimeInterval(3)
    while Date() < end {
        let t = net.log("daemon.log")
        if t.components(separatedBy: "nat64 counters queue=").count > before,
           t.range(of: "nat64 counters queue=", options: .backwards).map({ t[$0.lowerBound...].contains("\n") }) == true {
            break
        }
        usleep(50_000)
    }
    usleep(200_000)
    let text = net.log("daemon.log")
    guard let last = text.range(of: "nat64 counters queue=", options: .backwards) else { return ("", []) }
    let tail = text[last.lowerBound...]
    let stats = String(tail.prefix { $0 != "\n" })
    let rs = tail.split(separator: "\n").compactMap { l -> String? in
        guard let r = l.range(of: "nat64 reservation ") else { return nil }
        return String(l[r.upperBound...])
    }
    return (stats, rs)
}

private let server6 = LabNetwork.serverAddress6

@Suite(.serialized, .enabled(if: canRunLab, "end-to-end tests need root, /dev/net/tun and iproute2 (ip): run `sudo swift test` or .ci/run"))
struct NAT64EndToEndTests {
    /// ping, HTTP and UDP from the IPv6-only client to the IPv4-only server, in both modes.
    @Test(arguments: [("pool", "198.51.100.65"), ("siit", "198.51.100.72")])
    func pingHTTPAndUDPCrossTheNAT64(mode: String, seenAs: String) throws {
        guard requireTools(["ping", "curl", "socat", "python3"]) else { return }
        try withNAT64Lab("n64-\(mode)", config: { $0.nat64Config(mode: mode) }) { net, daemon in
            #expect(net.exec(net.client, ["ip", "-4", "addr", "show", "dev", "eth0"]).stdout.isEmpty, "the client must be IPv6-only")
            let ping = net.exec(net.client, ["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", server6])
            #expect(ping.ok && ping.stdout.contains("3 received"), "ping -6 through NAT64: \(ping.stdout) \(ping.stderr)")
            #expect(ping.stdout.contains("from \(server6)"), "echo replies come from the server's IPv6 form: \(ping.stdout)")

            try "nat64 body\n".write(toFile: net.directory + "/index.html", atomically: true, encoding: .utf8)
            try net.startHTTPServer(net.server, address: LabNetwork.serverAddress, port: 8000, logName: "http.log")
            let curl = net.exec(net.client, ["curl", "-sS", "-g", "-m", "5", "http://[\(server6)]:8000/index.html"])
            #expect(curl.ok && curl.stdout == "nat64 body\n", "curl: \(curl.stdout) \(curl.stderr)")
            #expect(net.log("http.log").contains("\(seenAs) - -"), "the IPv4 server should see \(seenAs): \(net.log("http.log"))")

            try net.spawn(net.server, ["socat", "UDP4-RECVFROM:7777,bind=\(LabNetwork.serverAddress),fork", "SYSTEM:cat"], logName: "udp.log")
            #expect(net.waitForListener(net.server, port: 7777, udp: true))
            let udp = net.exec(net.client, ["sh", "-c", "echo datagram6 | socat -T 2 - UDP6:[\(server6)]:7777,sourceport=40000"])
            #expect(udp.stdout == "datagram6\n", "udp echo: \(udp.stdout) \(udp.stderr)")

            let dump = nat64Dump(net, daemon)
            #expect(dump.stats.contains("mode=\(mode)"), "\(dump.stats)")
            if mode == "pool" {
                #expect(dump.reservations.contains { $0.hasPrefix("\(LabNetwork.clientAddress6) -> 198.51.100.65 ") }, "\(dump.reservations)")
                #expect(dump.stats.contains("reservations=1 "), "\(dump.stats)")
            }
        }
    }

    /// RFC 7915 §4.2: ICMPv4 port unreachable from the IPv4 server comes back as ICMPv6 port unreachable.
    @Test(arguments: ["pool", "siit"])
    func rfc7915_4_2_udpToClosedPortIsRefusedOverIPv6(mode: String) throws {
        guard requireTools(["python3"]) else { return }
        try withNAT64Lab("n64-unreach-\(mode)", config: { $0.nat64Config(mode: mode) }) { net, daemon in
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
            let stats = nat64Dump(net, daemon).stats
            #expect(stats.contains("icmp_errors_translated=") && !stats.contains("icmp_errors_translated=0 "), "\(stats)")
        }
    }

    /// RFC 7915 §5.2 / §4.1: a 1280-byte IPv6 hop that neither end knows about. The nat's kernel sends
    /// ICMPv6 Packet Too Big (1280) for the server's translated segments; the NAT64 turns it into ICMPv4
    /// Fragmentation Needed (1260); the server lowers its path MTU and a 300 kB download still completes.
    /// Without an RFC 6791 pool the router's error leaves from the NAT64's own address (RFC 6791 §4).
    @Test(arguments: [("pool", true), ("siit", true), ("pool", false)])
    func rfc7915_5_2_packetTooBigBecomesFragmentationNeeded(mode: String, rfc6791: Bool) throws {
        guard requireTools(["curl", "python3"]) else { return }
        let extra = rfc6791 ? "rfc6791_pool = [\"198.51.100.254\"]" : ""
        try withNAT64Lab("n64-ptb-\(mode)\(rfc6791 ? "" : "-own")", config: { $0.nat64Config(mode: mode, extra: extra) }) { net, daemon in
            // The hidden bottleneck: the nat's route to the client's link allows 1280 bytes only.
            let r = net.exec(net.nat, ["ip", "-6", "route", "change", "2001:db8:1::/64", "dev", "in0", "proto", "kernel", "metric", "256", "mtu", "1280"])
            #expect(r.ok, "route mtu: \(r.stderr)")
            var big = [UInt8](repeating: 0, count: 300_000)
            for i in big.indices { big[i] = UInt8(truncatingIfNeeded: (i &* 2_654_435_761) >> 13) }
            try Data(big).write(to: URL(fileURLWithPath: net.directory + "/big.bin"))
            try net.startHTTPServer(net.server, address: LabNetwork.serverAddress, port: 8000, logName: "http.log")
            let got = net.directory + "/got.bin"
            let curl = net.exec(net.client, ["curl", "-sS", "-g", "-m", "20", "-o", got, "http://[\(server6)]:8000/big.bin"], timeout: 25)
            #expect(curl.ok, "curl over the 1280-byte hop: \(curl.stderr)")
            let received = FileManager.default.contents(atPath: got)
            #expect(received == Data(big), "download has \(received?.count ?? 0) of \(big.count) bytes or differs")
            // The server learnt the path MTU from the translated Fragmentation Needed.
            let client4 = mode == "pool" ? "198.51.100.65" : "198.51.100.72"
            let route = net.exec(net.server, ["ip", "route", "get", client4]).stdout
            #expect(route.contains("mtu 1260"), "server's route cache should hold mtu 1260: \(route)")
            let dump = nat64Dump(net, daemon)
            if mode == "pool" {
                #expect(dump.stats.contains("reservations=1 "), "the router's error must not take a pool address: \(dump.stats)")
            }
        }
    }

    /// A bulk upload from the IPv6 client (6 → 4, with TUN offloads the kernel hands over TCP super-packets
    /// that the daemon translates whole and the kernel segments as IPv4), in every mode: 4 MB arrive
    /// intact at the IPv4 server.
    @Test(arguments: ["pool", "siit", "stateful"])
    func bulkUploadFromTheIPv6SideArrivesIntact(mode: String) throws {
        guard requireTools(["socat"]) else { return }
        try withNAT64Lab("n64-up-\(mode)", config: { $0.nat64Config(mode: mode) }) { net, daemon in
            var big = [UInt8](repeating: 0, count: 4_000_000)
            for i in big.indices { big[i] = UInt8(truncatingIfNeeded: (i &* 2_654_435_761) >> 11) }
            let sent = net.directory + "/upload.bin", got = net.directory + "/received.bin"
            try Data(big).write(to: URL(fileURLWithPath: sent))
            let server = try net.spawn(net.server, ["socat", "-u", "TCP4-LISTEN:9100,bind=\(LabNetwork.serverAddress),reuseaddr",
                                                    "OPEN:\(got),creat,trunc"], logName: "upload-server.log")
            defer { if server.isRunning { server.terminate() } }
            usleep(300_000)
            let up = net.exec(net.client, ["socat", "-u", "OPEN:\(sent)", "TCP6:[\(server6)]:9100"], timeout: 30)
            #expect(up.ok, "upload: \(up.stderr)")
            let end = Date().addingTimeInterval(10)
            while server.isRunning && Date() < end { usleep(50_000) }
            let received = FileManager.default.contents(atPath: got)
            #expect(received == Data(big), "upload has \(received?.count ?? 0) of \(big.count) bytes or differs")
            let dump = nat64Dump(net, daemon)
            print("nat64 upload (\(mode)): \(dump.stats)")
        }
    }

    /// protomask's own configuration file runs as it is; its static mapping pins the client's address.
    @Test func protomaskFileWithStaticMapping() throws {
        guard requireTools(["curl", "ping", "python3"]) else { return }
        let config = """
        # protomask's format (with swiftnat's [tun] table added)
        Nat64Prefix = "\(LabNetwork.nat64Prefix)"
        Prometheus = "[::]:8080" # Optional, defaults to disabled

        [Pool]
        Prefixes = ["\(LabNetwork.nat64Pool)"]
        MaxIdleDuration = 600
        Static = [{ v4 = "198.51.100.70", v6 = "\(LabNetwork.clientAddress6)" }]

        [tun]
        name = "snat0"
        """
        try withNAT64Lab("n64-protomask", config: { _ in config }) { net, daemon in
            #expect(net.log("daemon.log").contains("nat64=pool(protomask file)"), "\(net.log("daemon.log"))")
            // Prometheus is [metrics] listen under protomask's name (ConfigTablesTests); no warning any more.
            #expect(!net.log("daemon.log").contains("Prometheus"), "\(net.log("daemon.log"))")
            try "protomask\n".write(toFile: net.directory + "/index.html", atomically: true, encoding: .utf8)
            try net.startHTTPServer(net.server, address: LabNetwork.serverAddress, port: 8000, logName: "http.log")
            let curl = net.exec(net.client, ["curl", "-sS", "-g", "-m", "5", "http://[\(server6)]:8000/index.html"])
            #expect(curl.ok && curl.stdout == "protomask\n", "curl: \(curl.stdout) \(curl.stderr)")
            #expect(net.log("http.log").contains("198.51.100.70 - -"), "static mapping: \(net.log("http.log"))")
            // And the pinned address is reachable from the IPv4 side first.
            let ping4 = net.exec(net.server, ["ping", "-c", "1", "-W", "2", "198.51.100.70"])
            #expect(ping4.ok, "IPv4 → static IPv6 host: \(ping4.stdout)")
            #expect(nat64Dump(net, daemon).reservations.contains { $0.contains("-> 198.51.100.70") && $0.hasSuffix("static") })
        }
    }

    /// Reservations survive a restart through the state file; a corrupt one refuses the start cleanly.
    @Test func reservationsSurviveARestart() throws {
        guard requireTools(["ping", "curl", "python3"]) else { return }
        let net = try LabNetwork(tag: "n64-state", ipv6: true, ipv4Client: false)
        defer { net.destroy() }
        let state = net.directory + "/nat64.state"
        let config = net.nat64Config(mode: "pool", extra: "state_file = \"\(state)\"\nstate_interval = 1")
        _ = net.exec(net.client, ["ip", "addr", "add", "2001:db8:1::3/64", "dev", "eth0", "nodad"])
        var daemon = try net.startDaemon(binary: swiftnatBinary, config: config)
        #expect(net.log("daemon.log").contains("no state file"), "\(net.log("daemon.log"))")
        // ::3 first, so ::2 gets the second address.
        #expect(net.exec(net.client, ["ping", "-6", "-c", "1", "-W", "2", "-I", "2001:db8:1::3", server6]).ok)
        #expect(net.exec(net.client, ["ping", "-6", "-c", "1", "-W", "2", "-I", "2001:db8:1::2", server6]).ok)
        // Written periodically (state_interval = 1) while running...
        let end = Date().addingTimeInterval(5)
        while Date() < end && !((try? String(contentsOfFile: state, encoding: .utf8)) ?? "").contains("2001:db8:1::2") { usleep(100_000) }
        let periodic = (try? String(contentsOfFile: state, encoding: .utf8)) ?? ""
        #expect(periodic.contains("198.51.100.65 2001:db8:1::3 ") && periodic.contains("198.51.100.66 2001:db8:1::2 "), "periodic state: \(periodic)")
        // ... and at stop.
        net.stop(daemon)
        #expect(net.log("daemon.log").contains("2 reservations saved"), "\(net.log("daemon.log"))")

        daemon = try net.startDaemon(binary: swiftnatBinary, config: config)
        #expect(net.log("daemon.log").contains("restored=2"), "\(net.log("daemon.log"))")
        // ::2 now talks first and still gets .66, not the first free address.
        try "after restart\n".write(toFile: net.directory + "/index.html", atomically: true, encoding: .utf8)
        try net.startHTTPServer(net.server, address: LabNetwork.serverAddress, port: 8000, logName: "http.log")
        let curl = net.exec(net.client, ["curl", "-sS", "-g", "-m", "5", "--interface", LabNetwork.clientAddress6, "http://[\(server6)]:8000/index.html"])
        #expect(curl.ok && curl.stdout == "after restart\n", "curl: \(curl.stderr)")
        #expect(net.log("http.log").contains("198.51.100.66 - -"), "kept address after restart: \(net.log("http.log"))")
        #expect(nat64Dump(net, daemon).reservations.contains { $0.hasPrefix("2001:db8:1::2 -> 198.51.100.66 ") })
        net.stop(daemon)

        // A corrupt state file: refused with file, line and what to do; nothing is left behind.
        try "swiftnat-nat64-state 1\nwritten 5\n198.51.100.65 not-an-address 3\n".write(toFile: state, atomically: true, encoding: .utf8)
        try config.write(toFile: net.directory + "/nat64.toml", atomically: true, encoding: .utf8)
        let bad = net.exec(net.nat, [swiftnatBinary, "run", "--config", net.directory + "/nat64.toml"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains(state) && bad.stderr.contains("line 3") && bad.stderr.contains("delete it"), "\(bad.stderr)")
        #expect(!net.exec(net.nat, ["ip", "link", "show", "snat0"]).ok, "TUN device left behind")
    }

    /// One TUN device, both translators: IPv4 from the dual-stack client goes through NAPT44, IPv6 through NAT64.
    @Test func nat44AndNAT64ShareTheDaemon() throws {
        guard requireTools(["curl", "ping", "python3"]) else { return }
        try withNAT64Lab("n64-dual", config: { $0.nat64Config(mode: "pool", nat44: "port-restricted-cone") }, dualStack: true) { net, daemon in
            try "dual\n".write(toFile: net.directory + "/index.html", atomically: true, encoding: .utf8)
            try net.startHTTPServer(net.server, address: LabNetwork.serverAddress, port: 8000, logName: "http.log")
            let v4 = net.exec(net.client, ["curl", "-sS", "-m", "5", "http://\(LabNetwork.serverAddress):8000/index.html"])
            let v6 = net.exec(net.client, ["curl", "-sS", "-g", "-m", "5", "http://[\(server6)]:8000/index.html"])
            #expect(v4.ok && v4.stdout == "dual\n" && v6.ok && v6.stdout == "dual\n", "\(v4.stderr) \(v6.stderr)")
            let log = net.log("http.log")
            #expect(log.contains("198.51.100.1 - -") && log.contains("198.51.100.65 - -"), "NAT44 and NAT64 sources: \(log)")
            #expect(net.exec(net.client, ["ping", "-c", "1", "-W", "2", LabNetwork.serverAddress]).ok)
            #expect(net.exec(net.client, ["ping", "-6", "-c", "1", "-W", "2", server6]).ok)
            #expect(net.sessions(daemon: daemon).contains { $0.hasPrefix("tcp 100.64.0.2:") })
        }
    }

    /// RFC 6146 §3.8 / RFC 7757 §4.3: an IPv6 host reaches another one through its pool address; the
    /// packet turns round inside the NAT64 and arrives from the sender's pool address under the prefix.
    @Test func rfc6146_3_8_hairpinBetweenTwoIPv6HostsOfThePool() throws {
        guard requireTools(["ping", "python3"]) else { return }
        try withNAT64Lab("n64-hairpin", config: { $0.nat64Config(mode: "pool") },
                         before: { net in _ = net.exec(net.client, ["ip", "addr", "add", "2001:db8:1::3/64", "dev", "eth0", "nodad"]) }) { net, daemon in
            // ::3 talks first and holds 198.51.100.65; ::2 will hold .66.
            #expect(net.exec(net.client, ["ping", "-6", "-c", "1", "-W", "2", "-I", "2001:db8:1::3", server6]).ok)
            let listener = try script(net, "hp-listen.py", """
            import socket
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.bind(("2001:db8:1::3", 5000))
            print("ready", flush=True)
            s.settimeout(5)
            d, a = s.recvfrom(100)
            print("from", a[0], a[1], d.decode(), flush=True)
            s.sendto(b"pong", a)
            """)
            let p = try net.spawn(net.client, ["python3", listener], logName: "hp.log")
            #expect(net.waitFor("ready", in: "hp.log", process: p, timeout: 5))
            let sender = try script(net, "hp-send.py", """
            import socket
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.bind(("2001:db8:1::2", 6000))
            s.settimeout(3)
            s.sendto(b"ping", ("2001:db8:64::c633:6441", 5000))
            d, a = s.recvfrom(100)
            print("reply", a[0], d.decode())
            """)
            let o = net.exec(net.client, ["python3", sender])
            _ = net.waitFor("from", in: "hp.log", process: p, timeout: 3)
            #expect(net.log("hp.log").contains("from 2001:db8:64::c633:6442 6000 ping"), "hairpinned source: \(net.log("hp.log"))")
            #expect(o.stdout.contains("reply 2001:db8:64::c633:6441 pong"), "reply through the hairpin: \(o.stdout) \(o.stderr)")
            #expect(nat64Dump(net, daemon).reservations.contains { $0.hasPrefix("2001:db8:1::2 -> 198.51.100.66 ") })
        }
    }

    /// A route step that fails takes back what was added: the pool route, the TUN device.
    @Test func nat64RouteFailureRollsBackEverything() throws {
        let net = try LabNetwork(tag: "n64-rollback", ipv6: true, ipv4Client: false)
        defer { net.destroy() }
        _ = net.exec(net.nat, ["ip", "-6", "route", "add", LabNetwork.nat64Prefix, "dev", "lo"])
        let path = net.directory + "/nat64.toml"
        try net.nat64Config(mode: "pool").write(toFile: path, atomically: true, encoding: .utf8)
        let o = net.exec(net.nat, [swiftnatBinary, "run", "--config", path])
        #expect(o.status != 0)
        #expect(o.stderr.contains("route setup failed") && o.stderr.contains("nothing was left behind"), "\(o.stderr)")
        #expect(!net.exec(net.nat, ["ip", "link", "show", "snat0"]).ok, "TUN device left behind")
        #expect(net.exec(net.nat, ["ip", "route", "show", LabNetwork.nat64Pool]).stdout.isEmpty, "pool route left behind")
    }
}

/// Issue 11: SIIT with the EAM table only and no RFC 6052 prefix (RFC 7757 §3.3), end to end: the IPv6
/// client reaches the IPv4 server by the server's own EAM address, the daemon routes that address (and
/// no prefix) into the TUN device, and removes the route at stop.
@Suite(.serialized, .enabled(if: canRunLab, "end-to-end tests need root, /dev/net/tun and iproute2 (ip): run `sudo swift test` or .ci/run"))
struct SIITEAMOnlyEndToEndTests {
    @Test func rfc7757_3_3_siitWithEAMOnlyCrossesWithoutAPrefix() throws {
        guard requireTools(["ping"]) else { return }
        let config: (LabNetwork) -> String = { _ in
            """
            [tun]
            name = "snat0"
            mtu = 1500

            [nat64]
            mode = "siit"
            prefix = "none"
            eam = [{ v4 = "198.51.100.72", v6 = "\(LabNetwork.clientAddress6)" }, { v4 = "\(LabNetwork.serverAddress)", v6 = "2001:db8:99::2", ipv4_host = true }]
            pool6791v6 = "2001:db8:ffff::1"
            """
        }
        try withNAT64Lab("n64-eamonly", config: config) { net, _ in
            let routes = net.exec(net.nat, ["ip", "-6", "route", "show"]).stdout
            #expect(routes.contains("2001:db8:99::2 dev snat0") && !routes.contains("2001:db8:64::"), "\(routes)")
            let ping = net.exec(net.client, ["ping", "-6", "-c", "2", "-i", "0.3", "-W", "2", "2001:db8:99::2"])
            #expect(ping.ok, "no ping by the server's EAM address: \(ping.stdout) \(ping.stderr)")
            #expect(net.log("daemon.log").contains("prefix=none"))
        }
    }
}
