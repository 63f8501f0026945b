import Foundation
import NATLab
import NATRuntime
import Testing

// These tests build real network namespaces (client, nat, server), run the real swiftnat daemon in the
// middle and real programs on both sides. They need root, /dev/net/tun and iproute2: without them they
// are skipped, and the skip says why. Missing client programs (curl, socat, coturn …) fail the test.
@Suite(.serialized, .enabled(if: canRunLab, "end-to-end tests need root, /dev/net/tun and iproute2 (ip): run `sudo swift test` or .ci/run"))
struct EndToEndTests {
    @Test func pingTCPAndUDPCrossTheNAT() throws {
        guard requireTools(["ping", "curl", "socat", "python3"]) else { return }
        try withLab("basic") { net, daemon in
            let ping = net.exec(net.client, ["ping", "-c", "3", "-i", "0.2", "-W", "2", LabNetwork.serverAddress])
            #expect(ping.ok, "ping through the NAT failed: \(ping.stdout) \(ping.stderr)")
            #expect(ping.stdout.contains("3 received"))

            try "e2e body\n".write(toFile: net.directory + "/index.html", atomically: true, encoding: .utf8)
            try net.startHTTPServer(net.server, address: LabNetwork.serverAddress, port: 8000, logName: "http.log")
            try net.spawn(net.server, ["socat", "UDP4-RECVFROM:7777,bind=\(LabNetwork.serverAddress),fork", "SYSTEM:cat"], logName: "udp.log")
                        #expect(net.waitForListener(net.server, port: 7777, udp: true))

            let curl = net.exec(net.client, ["curl", "-sS", "-m", "5", "http://\(LabNetwork.serverAddress):8000/index.html"])
            #expect(curl.ok && curl.stdout == "e2e body\n", "curl: \(curl.stdout) \(curl.stderr)")
            // The server saw the pool address, not the inside one.
            #expect(net.log("http.log").contains("\(LabNetwork.poolAddress) - -"), "http log: \(net.log("http.log"))")

            let udp = net.exec(net.client, ["sh", "-c", "echo datagram | socat -T 2 - UDP4:\(LabNetwork.serverAddress):7777,sourceport=40000"])
            #expect(udp.stdout == "datagram\n", "udp echo: \(udp.stdout) \(udp.stderr)")

            let sessions = net.sessions(daemon: daemon)
            #expect(sessions.contains { $0.hasPrefix("udp 100.64.0.2:40000 -> 198.51.100.1:") && $0.contains("203.0.113.2:7777") }, "\(sessions)")
            #expect(sessions.contains { $0.hasPrefix("tcp 100.64.0.2:") && $0.contains("203.0.113.2:8000") }, "\(sessions)")
            #expect(sessions.contains { $0.hasPrefix("icmp 100.64.0.2:") }, "\(sessions)")
        }
    }

    @Test func udpToClosedPortReturnsPortUnreachable() throws {
        guard requireTools(["python3"]) else { return }
        try withLab("unreach") { net, _ in
            let py = try script(net, "unreach.py", """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(3)
            s.connect(("203.0.113.2", 9))
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
                    "expected ICMP port unreachable translated back to the client: \(o.stdout) \(o.stderr)")
        }
    }

    @Test func ttlExpiryBeyondTheNATReturnsTimeExceeded() throws {
        guard requireTools(["ping"]) else { return }
        try withLab("ttl", far: true) { net, _ in
            // The far host is reachable (so a TTL that runs out does so on the router beyond the NAT).
            let full = net.exec(net.client, ["ping", "-c", "1", "-W", "2", LabNetwork.farAddress])
            #expect(full.ok, "ping to the far host: \(full.stdout)")
            var seen: [String] = []
            for ttl in 1...5 {
                let o = net.exec(net.client, ["ping", "-n", "-c", "1", "-W", "1", "-t", "\(ttl)", LabNetwork.farAddress])
                if let line = o.stdout.split(separator: "\n").first(where: { $0.contains("Time to live exceeded") }) { seen.append(String(line)) }
            }
            // 203.0.113.2 is the server namespace, acting as the router beyond the NAT.
            #expect(seen.contains { $0.contains("From 203.0.113.2") }, "no time exceeded from the router beyond the NAT: \(seen)")
        }
    }

    static let forward = """
    [[nat44.forward]]
    protocol = "tcp"
    outside = "198.51.100.1:8080"
    inside = "100.64.0.2:8080"
    """

    @Test func portForwardAndHairpinning() throws {
        guard requireTools(["curl", "python3"]) else { return }
        try withLab("fwd", extraTables: Self.forward) { net, _ in
            try "inside server\n".write(toFile: net.directory + "/index.html", atomically: true, encoding: .utf8)
            try net.startHTTPServer(net.client, address: LabNetwork.clientAddress, port: 8080, logName: "inside-http.log")
            // From outside, through the forward.
            let outside = net.exec(net.server, ["curl", "-sS", "-m", "5", "http://\(LabNetwork.poolAddress):8080/index.html"])
            #expect(outside.ok && outside.stdout == "inside server\n", "forward from outside: \(outside.stdout) \(outside.stderr)")
            #expect(net.log("inside-http.log").contains("203.0.113.2 - -"), "inside server should see the real outside client")
            // From inside, via the pool address: hairpinned, and the inside server sees the pool address as source.
            let hairpin = net.exec(net.client, ["curl", "-sS", "-m", "5", "http://\(LabNetwork.poolAddress):8080/index.html"])
            #expect(hairpin.ok && hairpin.stdout == "inside server\n", "hairpin: \(hairpin.stdout) \(hairpin.stderr)")
            #expect(net.log("inside-http.log").contains("\(LabNetwork.poolAddress) - -"), "hairpinned source should be the pool address: \(net.log("inside-http.log"))")
        }
    }

    /// Which of three unsolicited senders reach an inside host that sent one datagram to 203.0.113.2:6000.
    @Test(arguments: [
        ("full-cone", ["203.0.113.3:6000", "203.0.113.2:6001", "203.0.113.2:6000"]),
        ("restricted-cone", ["203.0.113.2:6001", "203.0.113.2:6000"]),
        ("port-restricted-cone", ["203.0.113.2:6000"]),
        ("symmetric", ["203.0.113.2:6000"]),
    ])
    func unsolicitedInboundFollowsFiltering(behavior: String, expected: [String]) throws {
        guard requireTools(["python3"]) else { return }
        try withLab("filter-\(behavior)", behavior: behavior) { net, daemon in
            let listener = try script(net, "listen.py", """
            import socket, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("100.64.0.2", 40001))
            s.sendto(b"out", ("203.0.113.2", 6000))
            print("sent", flush=True)
            s.settimeout(0.2)
            end = time.time() + 4
            while time.time() < end:
                try:
                    d, a = s.recvfrom(100)
                    print("from %s:%d" % a, flush=True)
                except socket.timeout:
                    pass
            print("done", flush=True)
            """)
            let p = try net.spawn(net.client, ["python3", listener], logName: "listen.log")
            #expect(net.waitFor("sent", in: "listen.log", process: p, timeout: 5))
            usleep(200_000)
            let line = net.sessions(daemon: daemon).first { $0.hasPrefix("udp 100.64.0.2:40001 -> 198.51.100.1:") }
            let port = line.flatMap { l in l.split(separator: " ").dropFirst(3).first?.split(separator: ":").last }.flatMap { Int($0) }
            guard let port else {
                Issue.record("no mapping for 100.64.0.2:40001: \(net.sessions(daemon: daemon))")
                return
            }
            let sender = try script(net, "send.py", """
            import socket, sys
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((sys.argv[1], int(sys.argv[2])))
            s.sendto(b"in", ("198.51.100.1", int(sys.argv[3])))
            """)
            for (addr, sport) in [("203.0.113.3", "6000"), ("203.0.113.2", "6001"), ("203.0.113.2", "6000")] {
                let o = net.exec(net.server, ["python3", sender, addr, sport, "\(port)"])
                #expect(o.ok, "send from \(addr):\(sport): \(o.stderr)")
                usleep(100_000)
            }
            // And something to a port with no mapping at all never arrives anywhere.
            _ = net.exec(net.server, ["python3", sender, "203.0.113.2", "6002", "\(port == 40999 ? 40998 : 40999)"])
            _ = net.waitFor("done", in: "listen.log", process: p, timeout: 8)
            let got = net.log("listen.log").split(separator: "\n").filter { $0.hasPrefix("from ") }.map { String($0.dropFirst(5)) }
            #expect(got == expected, "\(behavior): inside host received from \(got), expected \(expected)")
        }
    }

    /// With TUN offloads on (the default), bulk TCP crosses the daemon as 64 KiB super-packets with partial
    /// checksums. The nat namespace's veths are set to checksum and segment in software, so a wrong
    /// checksum from the daemon would be dropped by the receiver and the transfer would stall.
    /// Also: an engine-built packet (ICMP port unreachable for a held SYN) goes out behind a zero header.
    @Test func bulkTransfersWithOffloadsArriveIntact() throws {
        guard requireTools(["curl", "python3", "socat", "ethtool"]) else { return }
        try withLab("offload", extraTables: "[nat44.timeouts]\nsyn_hold = 0.5\n") { net, daemon in
            #expect(net.log("daemon.log").contains("offload=csum,tso4"), "offloads not negotiated: \(net.log("daemon.log"))")
            for dev in ["in0", "out0"] {
                let o = net.exec(net.nat, ["ethtool", "-K", dev, "tx", "off"])
                #expect(o.ok, "ethtool -K \(dev) tx off: \(o.stderr)")
            }
            var rng = SystemRandomNumberGenerator()
            let blob = Data((0..<4_000_000).map { _ in UInt8.random(in: 0...255, using: &rng) })
            try blob.write(to: URL(fileURLWithPath: net.directory + "/blob.bin"))
            // Inbound bulk: the client downloads from the server.
            try net.startHTTPServer(net.server, address: LabNetwork.serverAddress, port: 8000, logName: "http.log")
            let down = net.exec(net.client, ["curl", "-sS", "-m", "20", "-o", net.directory + "/down.bin",
                                             "http://\(LabNetwork.serverAddress):8000/blob.bin"], timeout: 25)
            #expect(down.ok, "download: \(down.stderr)")
            #expect(FileManager.default.contents(atPath: net.directory + "/down.bin") == blob, "downloaded bytes differ")
            // Outbound bulk: the client uploads to the server.
            try net.spawn(net.server, ["socat", "-u", "TCP4-LISTEN:9000,bind=\(LabNetwork.serverAddress),reuseaddr",
                                       "CREATE:\(net.directory)/up.bin"], logName: "up.log")
            #expect(net.waitForListener(net.server, port: 9000))
            let up = net.exec(net.client, ["socat", "-u", "FILE:\(net.directory)/blob.bin", "TCP4:\(LabNetwork.serverAddress):9000"], timeout: 25)
            #expect(up.ok, "upload: \(up.stderr)")
            let end = Date().addingTimeInterval(5)
            while FileManager.default.contents(atPath: net.directory + "/up.bin")?.count != blob.count && Date() < end { usleep(100_000) }
            #expect(FileManager.default.contents(atPath: net.directory + "/up.bin") == blob, "uploaded bytes differ")
            // An unsolicited SYN is held, then answered from the engine's outbox with ICMP port unreachable.
            let connect = try script(net, "connect.py", """
            import socket
            s = socket.socket()
            s.settimeout(5)
            try:
                s.connect(("\(LabNetwork.poolAddress)", 9999))
                print("CONNECTED")
            except ConnectionRefusedError:
                print("REFUSED")
            except OSError as e:
                print("OTHER", e)
            """)
            let refused = net.exec(net.server, ["python3", connect])
            #expect(refused.stdout.hasPrefix("REFUSED"), "expected connection refused (ICMP 3/3 from the NAT): \(refused.stdout) \(refused.stderr)")
            _ = net.sessions(daemon: daemon)
            let stats = net.log("daemon.log").split(separator: "\n").last { $0.contains("stats queue=") } ?? ""
            let offloaded = statsCounter(stats, "offloaded") ?? 0
            #expect(offloaded > 0, "no packet went through with offloads: \(stats)")
            #expect(stats.contains("icmp_errors_generated=1"), "\(stats)")
        }
    }

    /// Offloads off: one MTU-sized packet per read and write, no virtio-net header.
    @Test func withoutOffloadsTCPAndUDPStillCross() throws {
        guard requireTools(["curl", "python3", "socat"]) else { return }
        try withLab("nooffload", tunKeys: "offload = false") { net, _ in
            #expect(net.log("daemon.log").contains("offload=off"), "\(net.log("daemon.log"))")
            try Data(repeating: 0x5A, count: 300_000).write(to: URL(fileURLWithPath: net.directory + "/big.bin"))
            try net.startHTTPServer(net.server, address: LabNetwork.serverAddress, port: 8000, logName: "http.log")
            let curl = net.exec(net.client, ["curl", "-sS", "-m", "10", "-o", net.directory + "/got.bin", "http://\(LabNetwork.serverAddress):8000/big.bin"])
            #expect(curl.ok, "curl: \(curl.stderr)")
            #expect(FileManager.default.contents(atPath: net.directory + "/got.bin")?.count == 300_000)
            try net.spawn(net.server, ["socat", "UDP4-RECVFROM:7777,bind=\(LabNetwork.serverAddress),fork", "SYSTEM:cat"], logName: "udp.log")
            #expect(net.waitForListener(net.server, port: 7777, udp: true))
            let udp = net.exec(net.client, ["sh", "-c", "echo datagram | socat -T 2 - UDP4:\(LabNetwork.serverAddress):7777"])
            #expect(udp.stdout == "datagram\n", "udp echo: \(udp.stdout) \(udp.stderr)")
        }
    }

    /// Two queues, two engines, each with half of the outside ports: ping, TCP, UDP, a port forward and
    /// hairpinning from eight inside addresses (spread over both shards by the host hash) all work, every
    /// mapping's outside port is in its shard's slice, and both shards hold sessions.
    @Test func shardedOverTwoQueues() throws {
        guard requireTools(["ping", "curl", "socat", "python3"]) else { return }
        try withLab("mq", extraTables: Self.forward, tunKeys: "queues = 2") { net, daemon in
            #expect(net.log("daemon.log").contains("queues=2"), "\(net.log("daemon.log"))")
            // Fair queueing by host (README "Holding the load"): the kernel took the steering program.
            #expect(net.log("daemon.log").contains("fair_queues=by host, 32 per thread"), "\(net.log("daemon.log"))")
            let hosts = (2...9).map { "100.64.0.\($0)" }
            for h in hosts.dropFirst() { net.exec(net.client, ["ip", "addr", "add", "\(h)/24", "dev", "eth0"]) }
            let ping = net.exec(net.client, ["ping", "-c", "3", "-i", "0.2", "-W", "2", LabNetwork.serverAddress])
            #expect(ping.stdout.contains("3 received"), "ping: \(ping.stdout)")

            try "sharded\n".write(toFile: net.directory + "/index.html", atomically: true, encoding: .utf8)
            try net.startHTTPServer(net.server, address: LabNetwork.serverAddress, port: 8000, logName: "http.log")
            let echo = try script(net, "echo.py", """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("\(LabNetwork.serverAddress)", 7777))
            while True:
                d, a = s.recvfrom(2000)
                s.sendto(d, a)
            """)
            try net.spawn(net.server, ["python3", echo], logName: "udp.log")
            #expect(net.waitForListener(net.server, port: 7777, udp: true))
            try net.startHTTPServer(net.client, address: LabNetwork.clientAddress, port: 8080, logName: "inside-http.log")
            for h in hosts {
                let curl = net.exec(net.client, ["curl", "-sS", "-m", "5", "--interface", h, "http://\(LabNetwork.serverAddress):8000/index.html"])
                #expect(curl.stdout == "sharded\n", "curl from \(h): \(curl.stdout) \(curl.stderr)")
                let udp = net.exec(net.client, ["sh", "-c", "echo from-\(h) | socat -T 2 - UDP4:\(LabNetwork.serverAddress):7777,bind=\(h)"])
                #expect(udp.stdout == "from-\(h)\n", "udp echo from \(h): \(udp.stdout) \(udp.stderr)")
                let icmp = net.exec(net.client, ["ping", "-c", "1", "-W", "2", "-I", h, LabNetwork.serverAddress])
                #expect(icmp.ok, "ping from \(h): \(icmp.stdout)")
                // Hairpin to the forward (owned by one shard) from every host (spread over both).
                let hp = net.exec(net.client, ["curl", "-sS", "-m", "5", "--interface", h, "http://\(LabNetwork.poolAddress):8080/index.html"])
                #expect(hp.stdout == "sharded\n", "hairpin from \(h): \(hp.stdout) \(hp.stderr)")
            }
            let outside = net.exec(net.server, ["curl", "-sS", "-m", "5", "http://\(LabNetwork.poolAddress):8080/index.html"])
            #expect(outside.stdout == "sharded\n", "forward from outside: \(outside.stdout) \(outside.stderr)")

            let sessions = net.sessions(daemon: daemon)
            for h in hosts {
                #expect(sessions.contains { $0.hasPrefix("udp \(h):") && $0.contains("203.0.113.2:7777") }, "no UDP session for \(h): \(sessions)")
            }
            // Each queue's block: its sessions' outside ports are in its slice (ports split at the index middle).
            let log = net.log("daemon.log")
            let start = log.range(of: "stats queue=0 ", options: .backwards)!.lowerBound
            var queue = -1, perQueue = [0, 0]
            for line in log[start...].split(separator: "\n") {
                if line.contains("stats queue=0 ") { queue = 0 } else if line.contains("stats queue=1 ") { queue = 1 }
                guard let r = line.range(of: "session "), queue >= 0, !line.contains("sessions listed") else { continue }
                let f = line[r.upperBound...].split(separator: " ")
                guard f.count > 3, f[3].hasPrefix("198.51.100.1:"), let port = Int(f[3].split(separator: ":")[1]) else { continue }
                let owner = port < 1024 ? (port <= 511 ? 0 : 1) : (port <= 33279 ? 0 : 1)
                #expect(owner == queue, "session in queue \(queue) has outside port \(port): \(line)")
                perQueue[queue] += 1
            }
            #expect(perQueue[0] > 0 && perQueue[1] > 0, "sessions per queue: \(perQueue)")
            // Packets read on the queue that does not own them went through the hand-off rings, and all arrived.
            func total(_ key: String) -> Int {
                log[start...].split(separator: "\n").filter { $0.contains("stats queue=") }.compactMap { statsCounter($0, key) }.reduce(0, +)
            }
            #expect(total("handed_off") > 0 && total("handed_off") == total("received"),
                    "handed_off=\(total("handed_off")) received=\(total("received"))")
            #expect(!log.contains("handoff_queue_full"), "\(log)")
        }
    }

    /// coturn's RFC 5780 discovery, run from the client, must see what each preset configures.
    @Test(.enabled(if: Shell.which("turnserver") != nil && Shell.which("turnutils_natdiscovery") != nil,
                   "needs coturn (turnserver, turnutils_natdiscovery): apt-get install coturn"),
          arguments: [
            ("full-cone", "Endpoint Independent Mapping", "Endpoint Independent Filtering"),
            ("restricted-cone", "Endpoint Independent Mapping", "Address Dependent Filtering"),
            ("port-restricted-cone", "Endpoint Independent Mapping", "Address and Port Dependent Filtering"),
            ("symmetric", "Address and Port Dependent Mapping", "Address and Port Dependent Filtering"),
          ])
    func natDiscoveryReportsPreset(behavior: String, mapping: String, filtering: String) throws {
        try withLab("stun-\(behavior)", behavior: behavior) { net, _ in
            try net.spawn(net.server, ["turnserver", "-n", "--no-cli", "--no-tls", "--no-dtls", "-S",
                                       "-L", LabNetwork.serverAddress, "-L", LabNetwork.serverAddress2, "-p", "3478",
                                       "--alt-listening-port", "3479", "--log-file", "stdout", "--simple-log",
                                       "--pidfile", net.directory + "/turn.pid"], logName: "turn.log")
            #expect(net.waitForListener(net.server, port: 3478, udp: true))
            usleep(300_000)
            let o = net.exec(net.client, ["turnutils_natdiscovery", "-m", "-f", "-L", LabNetwork.clientAddress, LabNetwork.serverAddress], timeout: 60)
            let text = o.stdout + o.stderr
            let verdicts = text.split(separator: "\n").filter { $0.contains("NAT with") || $0.contains("No NAT") }.map(String.init)
            #expect(verdicts.contains { $0.contains("NAT with \(mapping)") }, "\(behavior): expected \(mapping), tool said \(verdicts)\n\(text)")
            #expect(verdicts.contains { $0.contains("NAT with \(filtering)") }, "\(behavior): expected \(filtering), tool said \(verdicts)\n\(text)")
        }
    }
}
