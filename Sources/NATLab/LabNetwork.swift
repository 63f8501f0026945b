import Foundation
import NATRuntime

/// Network namespaces for the lab and the end-to-end tests:
///
/// ```
///  client 100.64.0.2/24 ── in0 100.64.0.1/24 [nat: swiftnat on snat0] out0 203.0.113.1/24 ── server 203.0.113.2/24, .3/24
///                                                      pool 198.51.100.1               (server ── far 192.0.2.2/24 when asked)
/// ```
/// With `ipv6: true` the client–nat link also carries IPv6 (client 2001:db8:1::2/64, nat 2001:db8:1::1/64,
/// the client's default IPv6 route via the nat); with `ipv4Client: false` the client has no IPv4 at all
/// (an IPv6-only host for NAT64: it reaches 203.0.113.2 as 2001:db8:64::cb00:7102 under 2001:db8:64::/96).
/// With `outsideIPv6: true` (NPTv6) the nat–server link carries IPv6 too (nat 2001:db8:100::1/64, server
/// 2001:db8:100::2/64), and the server, as the outside router of a real deployment would (DHCPv6 prefix
/// delegation or a static route), routes the NPTv6 outside prefix 2001:db8:2::/48 to the nat.
/// Every name starts with `snlab-<pid>-`, so parallel or stale runs never collide; ``destroy()`` kills
/// the processes it started and deletes the namespaces (and with them the veths and the TUN device).
/// Building it takes `ip` (iproute2) and `sh` only; the traffic helpers that start with `startTool` run
/// the swiftnat binary's own lab tools, the others (for the end-to-end tests) real peers such as python3.
public final class LabNetwork: @unchecked Sendable {
    public let prefix: String
    public let client: String
    public let nat: String
    public let server: String
    public let far: String?
    public let directory: String
    private var namespaces: [String] = []
    private var processes: [Process] = []
    private let lock = NSLock()
    private var destroyed = false
    public var verbose = false

    public static let clientAddress = "100.64.0.2"
    public static let natInsideAddress = "100.64.0.1"
    public static let natOutsideAddress = "203.0.113.1"
    public static let serverAddress = "203.0.113.2"
    public static let serverAddress2 = "203.0.113.3"
    public static let farAddress = "192.0.2.2"
    public static let poolAddress = "198.51.100.1"
    public static let clientAddress6 = "2001:db8:1::2"
    public static let natInsideAddress6 = "2001:db8:1::1"
    /// The NAT64 prefix of the lab (network-specific: documentation IPv4 addresses may not use 64:ff9b::/96).
    public static let nat64Prefix = "2001:db8:64::/96"
    /// 203.0.113.2 as the IPv6-only client reaches it (RFC 6052 §2.2, /96).
    public static let serverAddress6 = "2001:db8:64::cb00:7102"
    /// The NAT64 address pool (usable .65 to .70).
    public static let nat64Pool = "198.51.100.64/29"
    /// NPTv6 (RFC 6296): the inside prefix the client is numbered from and the outside prefix it appears under.
    public static let nptv6InsidePrefix = "2001:db8:1::/48"
    public static let nptv6OutsidePrefix = "2001:db8:2::/48"
    /// The nat–server link's IPv6 addresses (with `outsideIPv6`).
    public static let natOutsideAddress6 = "2001:db8:100::1"
    public static let outsideServerAddress6 = "2001:db8:100::2"
    public let ipv6: Bool
    public let ipv4Client: Bool
    public let outsideIPv6: Bool

    public struct LabError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Why namespaces cannot be built here, or nil when they can.
    public static func unavailableReason() -> String? {
        if geteuid() != 0 { return "needs root (network namespaces, TUN device, routes)" }
        if access("/dev/net/tun", F_OK) != 0 { return "needs /dev/net/tun" }
        if Shell.which("ip") == nil { return "needs `ip` (Debian package iproute2)" }
        return nil
    }

    /// `verbose` prints every command it runs, from the first `ip netns add` on.
    public init(tag: String = "", withFar: Bool = false, ipv6: Bool = false, ipv4Client: Bool = true,
                outsideIPv6: Bool = false, verbose: Bool = false) throws(LabError) {
        self.verbose = verbose
        self.ipv6 = ipv6 || outsideIPv6
        self.outsideIPv6 = outsideIPv6
        self.ipv4Client = ipv4Client || !self.ipv6
        let t = tag.isEmpty ? "" : "\(tag)-"
        prefix = "snlab-\(getpid())-\(t)"
        client = prefix + "client"
        nat = prefix + "nat"
        server = prefix + "server"
        far = withFar ? prefix + "far" : nil
        directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(prefix).path + UUID().uuidString.prefix(8)
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            try build()
        } catch {
            destroy()
            throw error
        }
    }

    private func ip(_ args: [String]) throws(LabError) {
        if verbose { print("  + ip \(args.joined(separator: " "))") }
        let o = Shell.run(["ip"] + args, timeout: 10)
        guard o.ok else { throw LabError(description: Shell.Failure(command: ["ip"] + args, output: o).description) }
    }

    private func build() throws(LabError) {
        for ns in [client, nat, server] + (far.map { [$0] } ?? []) {
            try ip(["netns", "add", ns])
            lock.withLock { namespaces.append(ns) }
            try ip(["-n", ns, "link", "set", "lo", "up"])
            if self.ipv6 {
                // No duplicate address detection on the lab's links: a link-local address still in DAD
                // holds back neighbour discovery (and the first packets to a new client address) for a second.
                setSysctl(ns, "net/ipv6/conf/default/accept_dad", "0")
            }
        }
        try ip(["link", "add", "eth0", "netns", client, "type", "veth", "peer", "name", "in0", "netns", nat])
        try ip(["link", "add", "out0", "netns", nat, "type", "veth", "peer", "name", "eth0", "netns", server])
        if ipv4Client {
            try ip(["-n", client, "addr", "add", "100.64.0.2/24", "dev", "eth0"])
        }
        if ipv6 {
            try ip(["-n", client, "addr", "add", "2001:db8:1::2/64", "dev", "eth0", "nodad"])
            try ip(["-n", nat, "addr", "add", "2001:db8:1::1/64", "dev", "in0", "nodad"])
        }
        try ip(["-n", client, "link", "set", "eth0", "up"])
        if ipv4Client {
            try ip(["-n", client, "route", "add", "default", "via", "100.64.0.1"])
        }
        try ip(["-n", nat, "addr", "add", "100.64.0.1/24", "dev", "in0"])
        try ip(["-n", nat, "addr", "add", "203.0.113.1/24", "dev", "out0"])
        try ip(["-n", nat, "link", "set", "in0", "up"])
        try ip(["-n", nat, "link", "set", "out0", "up"])
        try ip(["-n", nat, "route", "add", "default", "via", "203.0.113.2"])
        if ipv6 {
            try ip(["-n", client, "-6", "route", "add", "default", "via", "2001:db8:1::1", "dev", "eth0"])
            // Forwarding on from the start: switching it on later (the daemon would) re-configures the
            // nat's links and can swallow the client's first neighbour solicitation (a 1 s stall).
            setSysctl(nat, "net/ipv6/conf/all/forwarding", "1")
            // The client–nat neighbours, fixed, so that no test or demo waits for neighbour discovery (a
            // first solicitation right after the links come up is sometimes not answered: a 1 s retry).
            let clientMAC = try mac(client, "eth0"), natMAC = try mac(nat, "in0")
            try ip(["-n", client, "-6", "neigh", "replace", "2001:db8:1::1", "lladdr", natMAC, "dev", "eth0", "nud", "permanent"])
            try ip(["-n", nat, "-6", "neigh", "replace", "2001:db8:1::2", "lladdr", clientMAC, "dev", "in0", "nud", "permanent"])
        }
        try ip(["-n", server, "addr", "add", "203.0.113.2/24", "dev", "eth0"])
        try ip(["-n", server, "addr", "add", "203.0.113.3/24", "dev", "eth0"])
        try ip(["-n", server, "link", "set", "eth0", "up"])
        try ip(["-n", server, "route", "add", "198.51.100.0/24", "via", "203.0.113.1"])
        if outsideIPv6 { try buildOutsideIPv6() }
        if let far {
            try ip(["link", "add", "far0", "netns", server, "type", "veth", "peer", "name", "eth0", "netns", far])
            try ip(["-n", server, "addr", "add", "192.0.2.1/24", "dev", "far0"])
            try ip(["-n", server, "link", "set", "far0", "up"])
            try ip(["-n", far, "addr", "add", "192.0.2.2/24", "dev", "eth0"])
            try ip(["-n", far, "link", "set", "eth0", "up"])
            try ip(["-n", far, "route", "add", "default", "via", "192.0.2.1"])
            setSysctl(server, "net/ipv4/ip_forward", "1")
        }
    }

    /// IPv6 on the nat–server link, fixed neighbours both ways (no neighbour discovery stalls), and the
    /// server's route for the NPTv6 outside prefix via the nat.
    private func buildOutsideIPv6() throws(LabError) {
        try ip(["-n", nat, "addr", "add", Self.natOutsideAddress6 + "/64", "dev", "out0", "nodad"])
        try ip(["-n", server, "addr", "add", Self.outsideServerAddress6 + "/64", "dev", "eth0", "nodad"])
        let natMAC = try mac(nat, "out0"), serverMAC = try mac(server, "eth0")
        try ip(["-n", nat, "-6", "neigh", "replace", Self.outsideServerAddress6, "lladdr", serverMAC, "dev", "out0", "nud", "permanent"])
        try ip(["-n", server, "-6", "neigh", "replace", Self.natOutsideAddress6, "lladdr", natMAC, "dev", "eth0", "nud", "permanent"])
        try ip(["-n", nat, "-6", "route", "add", "default", "via", Self.outsideServerAddress6, "dev", "out0"])
        try ip(["-n", server, "-6", "route", "add", Self.nptv6OutsidePrefix, "via", Self.natOutsideAddress6, "dev", "eth0"])
    }

    /// Writes a kernel setting of namespace `ns` (`path` under /proc/sys), with `sh` rather than `sysctl`,
    /// which a fresh machine may lack (procps).
    public func setSysctl(_ ns: String, _ path: String, _ value: String) {
        _ = exec(ns, ["sh", "-c", "echo \(value) > /proc/sys/\(path)"])
    }

    /// The MAC address of `device` in `ns`.
    private func mac(_ ns: String, _ device: String) throws(LabError) -> String {
        let o = Shell.run(["ip", "-n", ns, "-o", "link", "show", device], timeout: 10)
        let words = o.stdout.split(separator: " ")
        guard o.ok, let i = words.firstIndex(of: "link/ether"), i + 1 < words.count else {
            throw LabError(description: "no MAC address for \(device) in \(ns): \(o.stdout) \(o.stderr)")
        }
        return String(words[i + 1])
    }

    /// Runs a command in namespace `ns`, bounded by `timeout` seconds.
    @discardableResult
    public func exec(_ ns: String, _ args: [String], timeout: Double = 10) -> Shell.Output {
        if verbose { print("  + [\(ns.dropFirst(prefix.count))] \(args.joined(separator: " "))") }
        return Shell.run(["ip", "netns", "exec", ns] + args, timeout: timeout)
    }

    /// Starts a long-running command in namespace `ns`, its output in `<directory>/<logName>`.
    /// `ip netns exec` execs the command, so the process id is the command's own.
    @discardableResult
    public func spawn(_ ns: String, _ args: [String], logName: String) throws(LabError) -> Process {
        let logPath = directory + "/" + logName
        FileManager.default.createFile(atPath: logPath, contents: nil)
        guard let log = FileHandle(forWritingAtPath: logPath), let ipPath = Shell.which("ip") else {
            throw LabError(description: "cannot create \(logPath) or find `ip`")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ipPath)
        p.arguments = ["netns", "exec", ns] + args
        p.standardOutput = log
        p.standardError = log
        p.standardInput = FileHandle.nullDevice
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        if verbose { print("  + [\(ns.dropFirst(prefix.count))] \(args.joined(separator: " ")) &") }
        do { try p.run() } catch { throw LabError(description: "cannot start \(args[0]): \(error)") }
        lock.withLock { processes.append(p) }
        return p
    }

    /// Starts `binary lab-tool http-serve` on `address:port` in `ns`, serving `directory`, for `duration`
    /// seconds, and waits until it listens. Its log has a line per request with the peer it saw.
    @discardableResult
    public func startToolHTTPServer(binary: String, _ ns: String, address: String, port: Int, logName: String,
                                    duration: Double = 120) throws(LabError) -> Process {
        let p = try spawn(ns, [binary, "lab-tool", "http-serve", "--address", address, "--port", String(port),
                               "--directory", directory, "--duration", String(duration)], logName: logName)
        guard waitFor("listening on", in: logName, process: p, timeout: 10) else {
            throw LabError(description: "the lab's HTTP server on \(address):\(port) did not start: \(log(logName))")
        }
        return p
    }

    /// Starts `binary lab-tool udp-echo` on `address:port` in `ns` for `duration` seconds and waits until it
    /// listens. Its log has a line per datagram with the sender it saw.
    @discardableResult
    public func startToolUDPEcho(binary: String, _ ns: String, address: String, port: Int, logName: String,
                                 duration: Double = 120) throws(LabError) -> Process {
        let p = try spawn(ns, [binary, "lab-tool", "udp-echo", "--address", address, "--port", String(port),
                               "--duration", String(duration)], logName: logName)
        guard waitFor("listening on", in: logName, process: p, timeout: 10) else {
            throw LabError(description: "the lab's UDP echo server on \(address):\(port) did not start: \(log(logName))")
        }
        return p
    }

    /// Starts a small HTTP server (python3, for the end-to-end tests) serving `directory` on `address:port`
    /// in `ns` and waits until it listens.
    /// (Not `python3 -m http.server`: its bind does a reverse DNS look-up that hangs without a resolver.)
    @discardableResult
    public func startHTTPServer(_ ns: String, address: String, port: Int, logName: String) throws(LabError) -> Process {
        let path = directory + "/http_server.py"
        let code = """
        import functools, http.server, socket, socketserver, sys
        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True
            address_family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[3])
        Server((sys.argv[1], int(sys.argv[2])), handler).serve_forever()
        """
        do { try code.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw LabError(description: "cannot write \(path): \(error)")
        }
        let p = try spawn(ns, ["python3", "-u", path, address, String(port), directory], logName: logName)
        guard waitForListener(ns, port: port, timeout: 10) else {
            throw LabError(description: "the HTTP server on \(address):\(port) did not start: \(log(logName))")
        }
        return p
    }

    public func logPath(_ name: String) -> String { directory + "/" + name }
    public func log(_ name: String) -> String { (try? String(contentsOfFile: logPath(name), encoding: .utf8)) ?? "" }

    /// Waits until `log(name)` contains `text`, the process ends, or `timeout` passes.
    public func waitFor(_ text: String, in name: String, process: Process? = nil, timeout: Double = 10) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if log(name).contains(text) { return true }
            if let process, !process.isRunning { return log(name).contains(text) }
            usleep(50_000)
        }
        return false
    }

    /// Waits until something listens on `port` (tcp or udp) in `ns` (asks `ss`, iproute2).
    public func waitForListener(_ ns: String, port: Int, udp: Bool = false, timeout: Double = 10) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            let o = exec(ns, ["ss", "-Hln", udp ? "-u" : "-t", "sport = :\(port)"], timeout: 5)
            if o.ok && !o.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return true }
            usleep(50_000)
        }
        return false
    }

    /// Stops a process it started: SIGTERM, then SIGKILL after `grace` seconds.
    public func stop(_ p: Process, grace: Double = 5) {
        guard p.isRunning else { return }
        kill(p.processIdentifier, SIGTERM)
        let end = Date().addingTimeInterval(grace)
        while p.isRunning && Date() < end { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    /// Kills what it started and deletes its namespaces. Safe to call more than once.
    public func destroy() {
        let (procs, nss): ([Process], [String]) = lock.withLock {
            if destroyed { return ([], []) }
            destroyed = true
            return (processes, namespaces)
        }
        for p in procs.reversed() { stop(p, grace: 3) }
        for ns in nss.reversed() { Shell.run(["ip", "netns", "del", ns], timeout: 10) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Leaves everything as it is (for `lab --keep`).
    public func abandon() {
        lock.withLock { destroyed = true }
    }

    /// The daemon's configuration for this topology; `extra` is appended inside [nat44] (keys) or after it
    /// (tables); `tunKeys` inside [tun].
    public func daemonConfig(behavior: String, extraKeys: String = "", extraTables: String = "", tunKeys: String = "") -> String {
        """
        # Generated by swiftnat lab / the end-to-end tests.
        [tun]
        name = "snat0"
        mtu = 1500
        \(tunKeys)

        [nat44]
        inside = ["100.64.0.0/24"]
        inside_interfaces = ["in0"]
        outside_interface = "out0"
        pool = ["198.51.100.1/32"]
        behavior = "\(behavior)"
        \(extraKeys)

        \(extraTables)
        """
    }

    /// A NAT64 configuration for this topology: `mode` "pool" (pool 198.51.100.64/29) or "siit" (EAM
    /// 198.51.100.72 <-> 2001:db8:1::2); `extra` is appended inside [nat64]. With `nat44`, the NAT44 table
    /// of ``daemonConfig(behavior:extraKeys:extraTables:)`` is added (a dual-stack client).
    public func nat64Config(mode: String, extra: String = "", nat44 behavior: String? = nil) -> String {
        let addresses = mode == "siit"
            ? "eam = [{ v4 = \"198.51.100.72\", v6 = \"\(Self.clientAddress6)\" }]"
            : "pool = [\"\(Self.nat64Pool)\"]"
        var s = """
        # Generated by swiftnat lab / the end-to-end tests.
        [tun]
        name = "snat0"
        mtu = 1500

        [nat64]
        mode = "\(mode)"
        prefix = "\(Self.nat64Prefix)"
        \(addresses)
        \(extra)

        """
        if let behavior {
            s += """

            [nat44]
            inside = ["100.64.0.0/24"]
            inside_interfaces = ["in0"]
            outside_interface = "out0"
            pool = ["198.51.100.1/32"]
            behavior = "\(behavior)"

            """
        }
        return s
    }

    /// An NPTv6 configuration for this topology (2001:db8:1::/48 <-> 2001:db8:2::/48, in0/out0); with
    /// `nat44`, the NAT44 table of ``daemonConfig(behavior:extraKeys:extraTables:)`` is added (the same
    /// daemon and TUN device translate the dual-stack client's IPv4 too).
    public func nptv6Config(nat44 behavior: String? = nil, tunKeys: String = "") -> String {
        var s = """
        # Generated by swiftnat lab / the end-to-end tests.
        [tun]
        name = "snat0"
        mtu = 1500
        \(tunKeys)

        [nptv6]
        inside_interface = "in0"
        outside_interface = "out0"
        inside_prefix = "\(Self.nptv6InsidePrefix)"
        outside_prefix = "\(Self.nptv6OutsidePrefix)"

        """
        if let behavior {
            s += """

            [nat44]
            inside = ["100.64.0.0/24"]
            inside_interfaces = ["in0"]
            outside_interface = "out0"
            pool = ["198.51.100.1/32"]
            behavior = "\(behavior)"

            """
        }
        return s
    }

    /// The daemon's control socket (in this lab's folder, so that labs and tests never share one).
    public var controlSocket: String { directory + "/control.sock" }
    /// The daemon's sessions file (restart without loss), in this lab's folder for the same reason.
    public var sessionsFile: String { directory + "/sessions.bin" }

    /// Writes the configuration and starts `binary run` in the nat namespace; waits for "ready". Unless
    /// the configuration has its own, a [control] table puts the socket, the forwards' state file and the
    /// sessions file in this lab's folder.
    public func startDaemon(binary: String, config: String, verbose v: Bool = false) throws(LabError) -> Process {
        let path = directory + "/nat44.toml"
        var config = config
        if !config.contains("[control]") {
            config += "\n\n[control]\nsocket = \"\(controlSocket)\"\nstate_file = \"\(directory)/forwards.json\"\nsessions_file = \"\(sessionsFile)\"\n"
        }
        do { try config.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw LabError(description: "cannot write \(path): \(error)")
        }
        let p = try spawn(nat, [binary, "run", "--config", path] + (v ? ["-v"] : []), logName: "daemon.log")
        guard waitFor("ready:", in: "daemon.log", process: p, timeout: 15) else {
            let l = log("daemon.log")
            stop(p)
            throw LabError(description: "the daemon did not start:\n\(l)")
        }
        return p
    }

    /// Asks the daemon to log its sessions (SIGUSR1) and returns the session lines.
    public func sessions(daemon p: Process) -> [String] {
        let before = log("daemon.log").components(separatedBy: "sessions listed:").count
        kill(p.processIdentifier, SIGUSR1)
        let end = Date().addingTimeInterval(3)
        while Date() < end && log("daemon.log").components(separatedBy: "sessions listed:").count == before { usleep(50_000) }
        let text = log("daemon.log")
        guard let lastStats = text.range(of: "stats queue=0 ", options: .backwards) else { return [] }
        return text[lastStats.lowerBound...].split(separator: "\n").compactMap { line in
            guard let r = line.range(of: "session ") , !line.contains("sessions listed") else { return nil }
            return String(line[r.upperBound...])
        }
    }
}
