import Foundation
#if canImport(NATLab)
import NATLab  // where LabNetwork lives on main (NATRuntime before)
#endif
import NATRuntime
import Testing

// swiftnat probe and swiftnat map against real peers: coturn outside as the RFC 5780 server (two
// addresses), a keep-alive HTTP/1.1 server, services inside, hosts outside reaching them through the
// public address that map reports. Needs root, /dev/net/tun, iproute2 (skipped otherwise, saying why)
// and coturn, python3, nft (missing ones fail the test).

/// Starts coturn in the server namespace as an RFC 5780 server on 203.0.113.2 and .3 (ports 3478/3479),
/// or on `addresses` only (one address each: plain STUN, for failover tests).
@discardableResult
func startCoturn(_ net: LabNetwork, addresses: [String] = [LabNetwork.serverAddress, LabNetwork.serverAddress2],
                 logName: String = "turn.log") throws -> Process {
    let name = logName.replacingOccurrences(of: ".log", with: "")
    var args = ["turnserver", "-n", "--no-cli", "--no-tls", "--no-dtls", "-S"]
    for a in addresses { args += ["-L", a] }
    args += ["-p", "3478", "--alt-listening-port", "3479", "--log-file", "stdout", "--simple-log",
             "--pidfile", net.directory + "/\(name).pid", "--userdb", net.directory + "/\(name).db"]
    let p = try net.spawn(net.server, unblockingSignals(args), logName: logName)
    let end = Date().addingTimeInterval(10)
    while Date() < end {
        let o = net.exec(net.server, ["ss", "-Hlnu", "sport = :3478"], timeout: 5)
        if addresses.allSatisfy({ o.stdout.contains($0 + ":3478") }) { return p }
        usleep(100_000)
    }
    throw STUNLabError(description: "coturn did not start: \(net.log(logName))")
}

/// `args` run with SIGTERM and SIGINT unblocked: a process started from a test (a libdispatch worker
/// thread) inherits a mask that blocks them, and would only go at the lab's SIGKILL, seconds later.
func unblockingSignals(_ args: [String]) -> [String] {
    ["python3", "-c", "import os, signal, sys; signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT]); os.execvp(sys.argv[1], sys.argv[1:])"] + args
}

/// The verdicts of `turnutils_natdiscovery -m -f -L 100.64.0.2 203.0.113.2`, as swiftnat's raw values.
func natdiscovery(_ net: LabNetwork) -> (mapping: String?, filtering: String?, text: String) {
    let o = net.exec(net.client, ["turnutils_natdiscovery", "-m", "-f", "-L", LabNetwork.clientAddress, LabNetwork.serverAddress], timeout: 60)
    let text = o.stdout + o.stderr
    func kind(_ line: Substring) -> String? {
        if line.contains("Address and Port Dependent") { return "address-and-port-dependent" }
        if line.contains("Address Dependent") { return "address-dependent" }
        if line.contains("Endpoint Independent") { return "endpoint-independent" }
        return nil
    }
    var mapping: String?, filtering: String?
    for line in text.split(separator: "\n") {
        if line.contains("No NAT!") { mapping = "no-nat" }
        else if line.contains("NAT with"), line.contains("Mapping!") { mapping = kind(line) }
        else if line.contains("NAT with"), line.contains("Filtering!") { filtering = kind(line) }
    }
    return (mapping, filtering, text)
}

/// `swiftnat probe --json` from the client, decoded.
func probeJSON(_ net: LabNetwork, extra: [String] = []) -> [String: Any] {
    let o = net.exec(net.client, [swiftnatBinary, "probe", "--json", "-L", LabNetwork.clientAddress] + extra + [LabNetwork.serverAddress], timeout: 90)
    guard o.ok, let d = o.stdout.data(using: .utf8), let j = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else {
        Issue.record("swiftnat probe failed: \(o.stdout) \(o.stderr)")
        return [:]
    }
    return j
}

/// NATMap's IP4P text, computed here independently of the STUN module.
func ip4pText(_ address: String, _ port: Int) -> String {
    let b = address.split(separator: ".").compactMap { Int($0) }
    return String(format: "2001::%04x:%04x:%04x", port, b[0] << 8 | b[1], b[2] << 8 | b[3])
}

/// Python helpers used by the map tests.
enum MapScripts {
    /// An HTTP/1.1 server that keeps connections open (the keep-alive peer of TCP map).
    static let http11 = """
    import http.server, socketserver, sys
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_HEAD(self):
            self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
        def log_message(self, f, *a):
            sys.stdout.write("%s:%d %s\\n" % (self.client_address[0], self.client_address[1], f % a)); sys.stdout.flush()
    class S(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True
    S((sys.argv[1], int(sys.argv[2])), H).serve_forever()
    """

    /// A service inside: TCP answers "inside <proto> service" to each connection, UDP echoes with that
    /// prefix. argv: tcp|udp address port reuseport(0|1).
    static let service = """
    import socket, sys
    proto, addr, port, reuse = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((addr, port))
    print("listening", flush=True)
    if proto == "tcp":
        s.listen(16)
        while True:
            c, a = s.accept()
            print("connection from %s:%d" % a, flush=True)
            c.sendall(b"inside tcp service\\n")
            c.close()
    else:
        while True:
            d, a = s.recvfrom(2000)
            print("datagram from %s:%d" % a, flush=True)
            s.sendto(b"inside udp service: " + d, a)
    """

    /// From outside: connect (tcp) or send a datagram (udp) to address:port and print what comes back.
    static let reach = """
    import socket, sys
    proto, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        if proto == "tcp":
            s.connect((addr, port)); print(s.recv(200).decode().strip())
        else:
            s.sendto(b"hello", (addr, port)); print(s.recvfrom(200)[0].decode().strip())
    except Exception as e:
        print("FAILED", e)
    """

    /// A hostile STUN server: to each Binding request it first sends garbage, an answer for another
    /// transaction, one with a bad FINGERPRINT, one mapping to 0.0.0.0, then the true answer.
    static let hostileServer = """
    import socket, struct, sys, zlib
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], 3478))
    print("listening", flush=True)
    def answer(tid, ip, port, fingerprint=None):
        xport = port ^ 0x2112
        xip = struct.unpack("!I", socket.inet_aton(ip))[0] ^ 0x2112A442
        attrs = struct.pack("!HHBBHI", 0x0020, 8, 0, 1, xport, xip)
        if fingerprint is not None:
            attrs += struct.pack("!HHI", 0x8028, 4, fingerprint)
        return struct.pack("!HHI", 0x0101, len(attrs), 0x2112A442) + tid + attrs
    while True:
        d, (ip, port) = s.recvfrom(2000)
        if len(d) < 20:
            continue
        tid = d[8:20]
        s.sendto(b"\\x80garbage that is not STUN", (ip, port))
        s.sendto(answer(b"\\x00" * 12, ip, port), (ip, port))
        s.sendto(answer(tid, ip, port, fingerprint=0x12345678), (ip, port))
        s.sendto(answer(tid, "0.0.0.0", port), (ip, port))
        s.sendto(answer(tid, ip, port), (ip, port))
        print("answered %s:%d" % (ip, port), flush=True)
    """

    /// The notify script: appends its arguments as one line.
    static func notify(_ out: String) -> String {
        "#!/bin/sh\necho \"$@\" >> \(out)\n"
    }
}

/// The script's calls so far, each the six arguments.
func scriptCalls(_ path: String) -> [[String]] {
    ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
}

func waitUntil(_ timeout: Double, _ condition: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if condition() { return true }
        usleep(100_000)
    }
    return condition()
}

@Suite(.serialized, .enabled(if: canRunLab, "end-to-end tests need root, /dev/net/tun and iproute2 (ip): run `sudo swift test` or .ci/run"))
struct STUNEndToEndTests {
    /// RFC 5780 §4.3/§4.4: swiftnat probe reports the mapping and filtering that coturn's
    /// turnutils_natdiscovery reports, for every swiftnat preset.
    @Test(arguments: ["full-cone", "restricted-cone", "port-restricted-cone", "symmetric"])
    func rfc5780_4_probeAgreesWithNatdiscovery(behavior: String) throws {
        guard requireTools(["turnserver", "turnutils_natdiscovery"]) else { return }
        try withLab("probe-\(behavior)", behavior: behavior) { net, _ in
            try startCoturn(net)
            let reference = natdiscovery(net)
            let mine = probeJSON(net)
            #expect(reference.mapping != nil && reference.filtering != nil, "natdiscovery gave no verdict:\n\(reference.text)")
            #expect(mine["mapping"] as? String == reference.mapping, "probe \(mine) vs natdiscovery:\n\(reference.text)")
            #expect(mine["filtering"] as? String == reference.filtering, "probe \(mine) vs natdiscovery:\n\(reference.text)")
            #expect((mine["mapped"] as? String)?.hasPrefix(LabNetwork.poolAddress + ":") == true, "\(mine)")
            #expect(mine["other_address"] as? String == "203.0.113.3:3479")
        }
    }

    /// The same comparison behind the Linux kernel's own NAT (nftables snat), and the text report.
    @Test func rfc5780_4_probeAgreesWithNatdiscoveryBehindKernelNAT() throws {
        guard requireTools(["turnserver", "turnutils_natdiscovery", "nft"]) else { return }
        let net = try LabNetwork(tag: "probe-kernel")
        defer { net.destroy() }
        try kernelNAT(net)
        try startCoturn(net)
        let reference = natdiscovery(net)
        let mine = probeJSON(net, extra: ["--tcp"])
        #expect(reference.mapping == "endpoint-independent", "\(reference.text)")
        #expect(mine["mapping"] as? String == reference.mapping && mine["filtering"] as? String == reference.filtering,
                "probe \(mine) vs natdiscovery:\n\(reference.text)")
        #expect(mine["tcp_mapping"] as? String == "endpoint-independent", "\(mine)")
        let text = net.exec(net.client, [swiftnatBinary, "probe", LabNetwork.serverAddress], timeout: 60)
        #expect(text.ok && text.stdout.contains("mapping         endpoint-independent mapping"), "\(text.stdout) \(text.stderr)")
    }

    /// Without NAT (the server's own namespace, -L its address) probe says so, as natdiscovery's "No NAT!".
    @Test func rfc5780_4_3_noNATOnAPlainLink() throws {
        guard requireTools(["turnserver"]) else { return }
        let net = try LabNetwork(tag: "probe-nonat")
        defer { net.destroy() }
        try startCoturn(net)
        let o = net.exec(net.server, [swiftnatBinary, "probe", "--json", "--no-hairpinning", "-L", LabNetwork.serverAddress2, LabNetwork.serverAddress], timeout: 60)
        #expect(o.stdout.contains("\"mapping\":\"no-nat\""), "\(o.stdout) \(o.stderr)")
    }

    func kernelNAT(_ net: LabNetwork) throws {
        net.exec(net.nat, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        let o = Shell.run(["ip", "netns", "exec", net.nat, "nft", "-f", "-"], timeout: 10, input: """
        table ip stunlab {
          chain postrouting {
            type nat hook postrouting priority srcnat; policy accept;
            ip saddr 100.64.0.0/24 oifname "out0" snat to 198.51.100.1
          }
        }
        """)
        guard o.ok else { throw STUNLabError(description: "nft: \(o.stderr)") }
    }

    /// Runs `swiftnat map` in the client namespace with `args` and a notify script; returns the process
    /// and the script's output file.
    func startMap(_ net: LabNetwork, _ args: [String], name: String = "map") throws -> (Process, String) {
        let out = net.directory + "/\(name)-calls.txt"
        let notify = try script(net, "\(name)-notify.sh", MapScripts.notify(out))
        chmod(notify, 0o755)
        let p = try net.spawn(net.client, [swiftnatBinary, "map", "--json", "-e", notify] + args, logName: "\(name).log")
        return (p, out)
    }

    /// Checks the script's first call against the mapping the test expects and returns public address and port.
    func checkFirstCall(_ net: LabNetwork, _ calls: String, proto: String, bindPort: Int, log: String) -> (String, Int)? {
        guard waitUntil(15, { !scriptCalls(calls).isEmpty }) else {
            Issue.record("the script was not called:\n\(net.log(log))")
            return nil
        }
        let c = scriptCalls(calls)[0]
        guard c.count == 6, let port = Int(c[1]) else {
            Issue.record("script arguments: \(c)")
            return nil
        }
        #expect(c[0] == LabNetwork.poolAddress)
        #expect(c[2] == ip4pText(c[0], port), "IP4P \(c[2]) for \(c[0]):\(port)")
        #expect(c[3] == String(bindPort) && c[4] == proto && c[5] == LabNetwork.clientAddress, "\(c)")
        return (c[0], port)
    }

    func reach(_ net: LabNetwork, _ proto: String, _ address: String, _ port: Int) throws -> String {
        let py = try script(net, "reach.py", MapScripts.reach)
        let o = net.exec(net.server, ["python3", py, proto, address, String(port)], timeout: 10)
        return o.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// NATMap's bind mode, TCP and UDP: the service inside listens on the bind port (SO_REUSEPORT); map
    /// keeps the mapping and reports it; a host outside reaches the service at the public address.
    @Test(arguments: ["tcp", "udp"])
    func map_bindModeServiceReachableFromOutside(proto: String) throws {
        guard requireTools(["turnserver", "python3"]) else { return }
        try withLab("map-bind-\(proto)", behavior: "full-cone") { net, _ in
            try startCoturn(net)
            let http = try script(net, "http11.py", MapScripts.http11)
            try net.spawn(net.server, unblockingSignals(["python3", "-u", http, LabNetwork.serverAddress, "8080"]), logName: "http11.log")
            #expect(net.waitForListener(net.server, port: 8080))
            let service = try script(net, "service.py", MapScripts.service)
            try net.spawn(net.client, unblockingSignals(["python3", "-u", service, proto, "0.0.0.0", "42000", "1"]), logName: "service.log")
            #expect(net.waitFor("listening", in: "service.log"))
            let args = (proto == "udp" ? ["-u"] : ["-h", "\(LabNetwork.serverAddress):8080"]) + ["-s", LabNetwork.serverAddress, "-k", "1", "-c", "2", "-b", "42000"]
            let (map, calls) = try startMap(net, args)
            guard let (addr, port) = checkFirstCall(net, calls, proto: proto, bindPort: 42000, log: "map.log") else { return }
            // Several senders (new source ports): every one reaches the service, none is swallowed by
            // another socket on the shared port.
            for _ in 0..<4 {
                let answer = try reach(net, proto, addr, port)
                #expect(answer.hasPrefix("inside \(proto) service"), "outside → \(addr):\(port): \(answer)\nmap: \(net.log("map.log"))\nservice: \(net.log("service.log"))")
            }
            // Keep-alives go on; the script is not called again for the same mapping.
            usleep(2_500_000)
            #expect(scriptCalls(calls).count == 1, "\(scriptCalls(calls))")
            if proto == "tcp" {
                #expect(net.log("http11.log").components(separatedBy: "HEAD / HTTP/1.1").count >= 3, "keep-alives: \(net.log("http11.log"))")
                // One kept-open connection: every HEAD came from the same address and port.
                let sources = Set(net.log("http11.log").split(separator: "\n").filter { $0.contains("HEAD") }.map { $0.split(separator: " ")[0] })
                #expect(sources.count == 1, "\(sources)")
            }
            net.stop(map)
            #expect(net.log("map.log").contains("\"event\":\"stopped\""), "map did not stop cleanly on SIGTERM: \(net.log("map.log"))")
        }
    }

    /// NATMap's forward mode, TCP and UDP: map listens on the bind port and relays to the target inside.
    @Test(arguments: ["tcp", "udp"])
    func map_forwardModeRelaysToTarget(proto: String) throws {
        guard requireTools(["turnserver", "python3"]) else { return }
        try withLab("map-fwd-\(proto)", behavior: "full-cone") { net, _ in
            try startCoturn(net)
            let http = try script(net, "http11.py", MapScripts.http11)
            try net.spawn(net.server, unblockingSignals(["python3", "-u", http, LabNetwork.serverAddress, "8080"]), logName: "http11.log")
            #expect(net.waitForListener(net.server, port: 8080))
            let service = try script(net, "service.py", MapScripts.service)
            try net.spawn(net.client, unblockingSignals(["python3", "-u", service, proto, "127.0.0.1", "9000", "0"]), logName: "service.log")
            #expect(net.waitFor("listening", in: "service.log"))
            let args = (proto == "udp" ? ["-u"] : ["-h", "\(LabNetwork.serverAddress):8080"])
                + ["-s", LabNetwork.serverAddress, "-k", "1", "-b", "43000", "-t", "127.0.0.1", "-p", "9000", "-T", "30"]
            let (_, calls) = try startMap(net, args)
            guard let (addr, port) = checkFirstCall(net, calls, proto: proto, bindPort: 43000, log: "map.log") else { return }
            for _ in 0..<4 {
                let answer = try reach(net, proto, addr, port)
                #expect(answer.hasPrefix("inside \(proto) service"), "outside → \(addr):\(port): \(answer)\nmap: \(net.log("map.log"))")
            }
            #expect(net.log("service.log").contains("from 127.0.0.1:"), "the relay should reach the target: \(net.log("service.log"))")
        }
    }

    /// Several -s: when the STUN server in use goes away, map moves to the next one (UDP: port
    /// unreachable or no answer; TCP: connection refused) and keeps the mapping.
    @Test(arguments: ["udp", "tcp"])
    func map_failsOverToTheSecondSTUNServer(proto: String) throws {
        guard requireTools(["turnserver", "python3"]) else { return }
        try withLab("map-failover-\(proto)", behavior: "full-cone") { net, _ in
            let first = try startCoturn(net, addresses: [LabNetwork.serverAddress], logName: "turn-a.log")
            try startCoturn(net, addresses: [LabNetwork.serverAddress2], logName: "turn-b.log")
            let http = try script(net, "http11.py", MapScripts.http11)
            try net.spawn(net.server, unblockingSignals(["python3", "-u", http, LabNetwork.serverAddress, "8080"]), logName: "http11.log")
            #expect(net.waitForListener(net.server, port: 8080))
            let args = (proto == "udp" ? ["-u"] : ["-h", "\(LabNetwork.serverAddress):8080"])
                + ["-s", LabNetwork.serverAddress, "-s", LabNetwork.serverAddress2, "-k", "1", "-c", "1", "-b", "44000"]
            let (_, calls) = try startMap(net, args)
            guard checkFirstCall(net, calls, proto: proto, bindPort: 44000, log: "map.log") != nil else { return }
            #expect(net.log("map.log").contains("\"stun_server\":\"203.0.113.2:3478\""))
            net.stop(first)
            #expect(waitUntil(20) { net.log("map.log").contains("\"event\":\"failover\"") }, "no failover: \(net.log("map.log"))")
            #expect(net.log("map.log").contains("\"to\":\"203.0.113.3\""), "\(net.log("map.log"))")
            // Same mapping from the second server: no new script call.
            usleep(1_500_000)
            #expect(scriptCalls(calls).count == 1, "\(scriptCalls(calls))")
        }
    }

    /// After the NAT restarts with another public address (a new mapping), the script runs again with it:
    /// over UDP the next check sees it; over TCP the keep-alive goes unanswered, map reconnects and asks again.
    @Test(arguments: ["udp", "tcp"])
    func map_scriptRunsAgainWhenTheNATRestartsWithANewMapping(proto: String) throws {
        guard requireTools(["turnserver", "python3"]) else { return }
        try withLab("map-restart-\(proto)", behavior: "full-cone") { net, daemon in
            try startCoturn(net)
            let http = try script(net, "http11.py", MapScripts.http11)
            try net.spawn(net.server, unblockingSignals(["python3", "-u", http, LabNetwork.serverAddress, "8080"]), logName: "http11.log")
            #expect(net.waitForListener(net.server, port: 8080))
            let args = (proto == "udp" ? ["-u"] : ["-h", "\(LabNetwork.serverAddress):8080"]) + ["-s", LabNetwork.serverAddress, "-k", "1", "-c", "1", "-b", "45000"]
            let (_, calls) = try startMap(net, args)
            guard checkFirstCall(net, calls, proto: proto, bindPort: 45000, log: "map.log") != nil else { return }
            net.stop(daemon)
            let config = net.daemonConfig(behavior: "full-cone").replacingOccurrences(of: "198.51.100.1/32", with: "198.51.100.2/32")
            let second = try net.startDaemon(binary: swiftnatBinary, config: config)
            defer { net.stop(second) }
            #expect(waitUntil(30) { scriptCalls(calls).count >= 2 }, "no second script call: \(net.log("map.log"))")
            if let c = scriptCalls(calls).last, c.count == 6, let port = Int(c[1]) {
                #expect(c[0] == "198.51.100.2" && c[2] == ip4pText("198.51.100.2", port), "\(c)")
            }
            #expect(net.log("map.log").contains("\"event\":\"mapping_changed\""))
        }
    }
    /// NATMap's takeover: the bind port is held by a service that did not set SO_REUSEPORT; map (as root)
    /// sets it on that service's socket with pidfd_getfd, says so, and maps the port.
    @Test func map_setsSOReusePortOnAForeignListener() throws {
        guard requireTools(["turnserver", "python3"]) else { return }
        try withLab("map-takeover", behavior: "full-cone") { net, _ in
            try startCoturn(net)
            let http = try script(net, "http11.py", MapScripts.http11)
            try net.spawn(net.server, unblockingSignals(["python3", "-u", http, LabNetwork.serverAddress, "8080"]), logName: "http11.log")
            #expect(net.waitForListener(net.server, port: 8080))
            let service = try script(net, "service.py", MapScripts.service)
            try net.spawn(net.client, unblockingSignals(["python3", "-u", service, "tcp", "0.0.0.0", "46000", "0"]), logName: "service.log")
            #expect(net.waitFor("listening", in: "service.log"))
            let (_, calls) = try startMap(net, ["-h", "\(LabNetwork.serverAddress):8080", "-s", LabNetwork.serverAddress, "-k", "1", "-b", "46000"])
            guard let (addr, port) = checkFirstCall(net, calls, proto: "tcp", bindPort: 46000, log: "map.log") else { return }
            #expect(net.log("map.log").contains("set SO_REUSEPORT on its socket (pidfd_getfd)"), "\(net.log("map.log"))")
            let answer = try reach(net, "tcp", addr, port)
            #expect(answer.hasPrefix("inside tcp service"), "outside → \(addr):\(port): \(answer)")
        }
    }

    /// Behind the kernel's own NAT (nftables snat): map reports the kernel's mapping, TCP and UDP
    /// (bound to the interface with -i, sockets marked with -f).
    @Test(arguments: ["tcp", "udp"])
    func map_reportsTheKernelNATsMapping(proto: String) throws {
        guard requireTools(["turnserver", "python3", "nft"]) else { return }
        let net = try LabNetwork(tag: "map-kernel-\(proto)")
        defer { net.destroy() }
        try kernelNAT(net)
        try startCoturn(net)
        let http = try script(net, "http11.py", MapScripts.http11)
        try net.spawn(net.server, unblockingSignals(["python3", "-u", http, LabNetwork.serverAddress, "8080"]), logName: "http11.log")
        #expect(net.waitForListener(net.server, port: 8080))
        let args = (proto == "udp" ? ["-u"] : ["-h", "\(LabNetwork.serverAddress):8080"]) + ["-s", LabNetwork.serverAddress, "-k", "1", "-b", "47000", "-i", "eth0", "-f", "0x10"]
        let (map, calls) = try startMap(net, args)
        guard let (_, port) = checkFirstCall(net, calls, proto: proto, bindPort: 47000, log: "map.log") else { return }
        // The kernel keeps the source port when it is free.
        #expect(port == 47000)
        net.stop(map)
        #expect(net.log("map.log").contains("\"event\":\"stopped\""))
    }

    /// IPv6 (-6) where the path has no NAT: the mapped address is the host's own, for map and probe.
    @Test func map_ipv6WithoutNAT() throws {
        guard requireTools(["turnserver", "python3"]) else { return }
        let net = try LabNetwork(tag: "map-v6", ipv6: true)
        defer { net.destroy() }
        let args = ["turnserver", "-n", "--no-cli", "--no-tls", "--no-dtls", "-S", "-L", LabNetwork.natInsideAddress6, "-p", "3478",
                    "--log-file", "stdout", "--simple-log", "--pidfile", net.directory + "/turn6.pid", "--userdb", net.directory + "/turn6.db"]
        try net.spawn(net.nat, unblockingSignals(args), logName: "turn6.log")
        #expect(net.waitForListener(net.nat, port: 3478, udp: true))
        let (_, calls) = try startMap(net, ["-6", "-u", "-s", "[\(LabNetwork.natInsideAddress6)]:3478", "-k", "1", "-b", "48000"])
        #expect(waitUntil(15) { !scriptCalls(calls).isEmpty }, "\(net.log("map.log"))")
        #expect(scriptCalls(calls).first == [LabNetwork.clientAddress6, "48000", "::", "48000", "udp", LabNetwork.clientAddress6], "\(scriptCalls(calls))")
        let probe = net.exec(net.client, [swiftnatBinary, "probe", "-6", "--json", "--no-hairpinning", LabNetwork.natInsideAddress6], timeout: 60)
        #expect(probe.stdout.contains("\"mapping\":\"no-nat\""), "\(probe.stdout) \(probe.stderr)")
    }
    /// NATMap's -d: map goes to the background (a new session), keeps working, and stops on SIGTERM.
    @Test func map_daemonizesWithD() throws {
        guard requireTools(["turnserver", "nft"]) else { return }
        let net = try LabNetwork(tag: "map-daemon")
        defer { net.destroy() }
        try kernelNAT(net)
        try startCoturn(net)
        let out = net.directory + "/d-calls.txt"
        let notify = try script(net, "d-notify.sh", MapScripts.notify(out))
        chmod(notify, 0o755)
        let o = net.exec(net.client, [swiftnatBinary, "map", "-d", "-u", "-s", LabNetwork.serverAddress, "-k", "1", "-b", "49000", "-e", notify], timeout: 10)
        let pid = o.stdout.split(separator: " ").firstIndex(of: "pid").flatMap { i in Int32(o.stdout.split(separator: " ")[i + 1].filter(\.isNumber)) }
        guard o.ok, let pid else {
            Issue.record("map -d: \(o.stdout) \(o.stderr)")
            return
        }
        defer { kill(pid, SIGKILL) }
        #expect(waitUntil(15) { !scriptCalls(out).isEmpty }, "the background map did not report a mapping")
        #expect(scriptCalls(out).first?.first == LabNetwork.poolAddress)
        kill(pid, SIGTERM)
        #expect(waitUntil(3) { kill(pid, 0) != 0 }, "map -d did not stop on SIGTERM")
    }
    /// RFC 8489 §6.3: malformed and hostile answers are refused with their reasons (as JSON events),
    /// and the true answer that follows them gives the mapping.
    @Test func rfc8489_6_3_mapRefusesHostileAnswersWithAReason() throws {
        guard requireTools(["python3", "nft"]) else { return }
        let net = try LabNetwork(tag: "map-hostile")
        defer { net.destroy() }
        try kernelNAT(net)
        let server = try script(net, "hostile.py", MapScripts.hostileServer)
        try net.spawn(net.server, unblockingSignals(["python3", "-u", server, LabNetwork.serverAddress]), logName: "hostile.log")
        #expect(net.waitFor("listening", in: "hostile.log"))
        let (map, calls) = try startMap(net, ["-u", "-s", LabNetwork.serverAddress, "-k", "1", "-b", "50000"])
        guard checkFirstCall(net, calls, proto: "udp", bindPort: 50000, log: "map.log") != nil else { return }
        net.stop(map)
        let log = net.log("map.log")
        for reason in ["not_stun", "transaction_mismatch", "fingerprint_mismatch", "unusable_mapped_address"] {
            #expect(log.contains("\"reason\":\"\(reason)\""), "no refusal \(reason):\n\(log)")
        }
        #expect(scriptCalls(calls).count == 1 && scriptCalls(calls)[0][1] == "50000", "\(scriptCalls(calls))")
    }
}

struct STUNLabError: Error, CustomStringConvertible {
    var description: String
}
