import NAPT44
import NATCore
import NATWire

/// The TUN device the daemon creates.
public struct TunSettings: Sendable, Equatable {
    public var name = "swiftnat0"
    public var mtu = 1500
    /// Size the TUN device's MTU from the outside interface's (`nat44.outside_interface`) instead of
    /// ``mtu`` (the default; giving `[tun] mtu` in the file turns it off). Then a datagram too big for the
    /// outside link is refused with Fragmentation Needed where it enters the TUN device, before it is
    /// translated (RFC 1191), and the outside MTU never sits below the TUN device's.
    public var sizeMTUFromOutsideInterface = true
    /// Packet queues (threads, IFF_MULTI_QUEUE). With more than one, each thread owns an engine with a
    /// slice of the outside ports (``ShardPlan``) and hands packets it does not own to their owner.
    public var queues = 1
    /// TUN offloads (virtio-net header, partial checksums, TCP/UDP segmentation offload): the kernel hands
    /// over and takes back 64 KiB super-packets instead of MTU-sized ones.
    public var offload = true
    /// The TUN device's transmit queue length (packets the kernel queues for the reader); the kernel's
    /// default (500) when nil.
    public var txQueueLength: Int? = nil
    /// Kernel queues each packet thread reads, in turn (fair queueing between inside hosts): the kernel
    /// puts each packet on the queue its source address hashes to (a steering program), each queue has its
    /// own ring (``txQueueLength`` packets), and the thread takes one packet from each waiting queue in
    /// turn. A host that floods fills its own ring and loses its own packets there; the other hosts'
    /// rings keep being read. 1: one queue per thread, first come first served.
    public var fairQueues = 32
    /// Seconds between two changes of the fair queues' hash seed (hosts that collided share a queue no
    /// longer).
    public var fairQueuePerturbSeconds = 10
    /// Packets per second one fair queue (one host, or the few that hash with it) may give its thread;
    /// beyond that the queue is not read for the rest of a 5 ms window and the kernel drops the excess
    /// in that queue's ring. 0: no limit (the thread reads as fast as it can, in turn).
    public var fairQueueRate = 50_000
    public init() {}

    /// TUN queues in all: `queues` threads × `fairQueues` each.
    public var kernelQueues: Int { queues * fairQueues }

    /// Checks every value; keys as in `[tun]`.
    public func validate() throws(ConfigurationError) {
        guard !name.isEmpty, name.utf8.count <= 15, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
            throw ConfigurationError(key: "name", problem: "'\(name)' is not a valid interface name", hint: "1 to 15 letters, digits, '-', '_' or '.'")
        }
        if let e = ConfigurationError.outside(576...65535, key: "mtu", value: mtu) { throw e }
        if let e = ConfigurationError.outside(1...64, key: "queues", value: queues) { throw e }
        if let q = txQueueLength, let e = ConfigurationError.outside(1...1_000_000, key: "txqueuelen", value: q) { throw e }
        if let e = ConfigurationError.outside(1...64, key: "fair_queues", value: fairQueues) { throw e }
        if let e = ConfigurationError.outside(0...100_000_000, key: "fair_queue_rate", value: fairQueueRate) { throw e }
        if let e = ConfigurationError.outside(1...86_400, key: "fair_queue_perturb", value: fairQueuePerturbSeconds) { throw e }
        guard kernelQueues <= 256 else {
            throw ConfigurationError(key: "fair_queues", problem: "queues × fair_queues is \(kernelQueues), above the kernel's 256 TUN queues",
                                     hint: "lower fair_queues or queues")
        }
    }
}

/// What the daemon does to the host's routing when it starts (and undoes when it stops).
public struct RoutingSettings: Sendable, Equatable {
    /// Set up routes at all (`--no-routes` turns this off).
    public var enabled = true
    /// The routing table whose default route is the TUN device (policy routing for inside traffic).
    public var table = 7744
    /// Priority of the `ip rule`s steering inside traffic to that table; `priority - 1` is used for
    /// the rules that keep traffic to inside prefixes in the main table, `priority - 2` for those that
    /// refuse outside-to-inside forwarding (``blockOutsideToInside``).
    public var priority = 7744
    /// Turn on net.ipv4.ip_forward (and net.ipv6.conf.all.forwarding with NAT64), restoring them on exit.
    public var forwarding = true
    /// Answer ARP for pool addresses that are on-link on the outside interface.
    public var proxyARP = true
    /// Interfaces on which GRO and UDP GRO forwarding are turned on (and restored at stop), so that the
    /// kernel hands a burst of one flow's packets to the TUN device as one super-packet, which is
    /// translated once. nil: the NAT44 inside interfaces. Needs `ethtool`; skipped with a warning without it.
    public var groInterfaces: [String]? = nil
    /// Microseconds the kernel may hold received packets on those interfaces to merge them
    /// (`/sys/class/net/IF/gro_flush_timeout`); nil leaves it alone. For links that deliver packets one
    /// at a time (veth, for example), where nothing else batches them.
    public var groFlushTimeoutMicroseconds: Int? = nil
    /// Refuse packets from the outside interface to the inside prefixes that do not go through swiftnat
    /// (`ip rule add iif OUTSIDE to PREFIX prohibit priority <priority-2>`), so that its filtering holds
    /// for hosts that address the inside directly. `false` leaves such forwarding to the host's routing.
    public var blockOutsideToInside = true
    /// At a clean stop, leave the fail-closed rules and unreachable routes in place (the steering rules,
    /// the `prohibit` rules, the unreachable routes behind the TUN device's), so that during a planned
    /// restart no inside packet is routed untranslated (on a host whose `ip_forward` is on without
    /// swiftnat); the next start takes them over. Their list is kept beside `[control] sessions_file`.
    public var failClosedAcrossRestart = false
    public init() {}

    /// Checks every value; keys as in `[routing]`.
    public func validate() throws(ConfigurationError) {
        if let e = ConfigurationError.outside(1...0x7FFF_FFFF, key: "table", value: table) { throw e }
        guard ![253, 254, 255].contains(table) else {
            throw ConfigurationError(key: "table", problem: "\(table) is one of the kernel's own tables (default, main, local)", hint: "pick an unused number such as 7744")
        }
        if let e = ConfigurationError.outside(3...32765, key: "priority", value: priority) { throw e }
        for (i, name) in (groInterfaces ?? []).enumerated() where name.isEmpty || name.utf8.count > 15 || name.contains("/") {
            throw ConfigurationError(key: "gro_interfaces[\(i)]", problem: "'\(name)' is not a valid interface name", hint: "1 to 15 characters, no '/'")
        }
        if let t = groFlushTimeoutMicroseconds, let e = ConfigurationError.outside(0...1_000_000, key: "gro_flush_timeout_us", value: t) { throw e }
    }
}

/// Everything `swiftnat run` needs.
public struct DaemonConfiguration: Sendable {
    public var file: String
    public var tun = TunSettings()
    public var routing = RoutingSettings()
    public var control = ControlSettings()
    public var metrics = MetricsSettings()
    public var logging = LoggingSettings()
    /// NAPT44 (`[nat44]`); nil in a NAT64-only configuration.
    public var nat44: NAPT44Configuration?
    /// NAT64 (`[nat64]`, or a protomask file); nil without one.
    public var nat64: NAT64Settings?
    /// NPTv6 (`[nptv6]` or `[[nptv6]]`, RFC 6296); nil without one.
    public var nptv6: NPTv6Settings?
    /// Interfaces the inside hosts are on; traffic arriving on them is steered into the TUN device.
    /// When empty, traffic is steered by source prefix (`from <inside prefix>`).
    public var insideInterfaces: [String] = []
    /// The interface the pool addresses are reachable on (for proxy ARP).
    public var outsideInterface: String?
    /// UPnP IGD, NAT-PMP and PCP (`[port_control]`); nil: off.
    public var portControl: PortControlSettings?

    public init(file: String, nat44: NAPT44Configuration? = nil, nat64: NAT64Settings? = nil) {
        self.file = file
        self.nat44 = nat44
        self.nat64 = nat64
    }

    /// Checks every table as its own type does (``TunSettings/validate()``,
    /// ``NAPT44Configuration/validate()``, ``NAT64Settings/validate()`` …) and the tables against each
    /// other; the error names ``file`` and the key path (`nat44.timeouts.udp`). ``ConfigLoader`` runs it
    /// on every file it reads; a program that builds its configuration in code gets the same checks.
    public func validate() throws(ConfigurationError) {
        do {
            try validateTables()
        } catch {
            throw error.in(file: file)
        }
    }

    func validateTables() throws(ConfigurationError) {
        do { try tun.validate() } catch { throw error.under("tun") }
        do { try routing.validate() } catch { throw error.under("routing") }
        do { try control.validate() } catch { throw error.under("control") }
        if routing.failClosedAcrossRestart && control.sessionsFile == nil {
            throw ConfigurationError(key: "routing.fail_closed_across_restart", problem: "needs [control] sessions_file (the rules it keeps are listed beside it)",
                                     hint: "set sessions_file, or leave fail_closed_across_restart out")
        }
        do { try metrics.validate() } catch { throw error.under("metrics") }
        do { try logging.validate() } catch { throw error.under("logging") }
        guard nat44 != nil || nat64 != nil || nptv6 != nil else {
            throw ConfigurationError(key: "nat44", problem: "is missing",
                                     hint: "add a [nat44] table with at least pool = [\"198.51.100.1/32\"], a [nat64] table (Examples/nat64.toml) or an [nptv6] table (Examples/nptv6.toml)")
        }
        if let n = nat44 {
            do { try n.validate() } catch { throw error.under("nat44") }
        }
        if let n = nat64 {
            do { try n.validate() } catch { throw n.fromProtomask ? error : error.under("nat64") }
        }
        if let n = nptv6 {
            try n.validate()
        }
        try validateOverlap()
        try validateNPTv6Overlap()
        try validateQueues()
        try validatePortControl()
    }

    /// NAT44 and NAT64 must not claim the same IPv4 addresses.
    func validateOverlap() throws(ConfigurationError) {
        guard let n64 = nat64, let n44 = nat44 else { return }
        let where64: String
        switch n64.mode {
        case .siit: where64 = "nat64.eam"
        case .pool, .stateful: where64 = n64.fromProtomask ? "Pool.Prefixes" : "nat64.pool"
        }
        for p in n64.ipv4Prefixes {
            for q in n44.pool where q.contains(p.address) || p.contains(q.address) {
                throw ConfigurationError(key: where64, problem: "\(p) overlaps the NAT44 pool \(q)", hint: "NAT44 and NAT64 need IPv4 addresses of their own")
            }
            for q in n44.insidePrefixes where q.contains(p.address) || p.contains(q.address) {
                throw ConfigurationError(key: where64, problem: "\(p) overlaps the NAT44 inside prefix \(q)")
            }
            for s in n44.staticNAT where p.contains(s.outside) {
                throw ConfigurationError(key: where64, problem: "\(p) holds \(s.outside), a NAT44 static_nat address")
            }
        }
    }

    /// Several queues: NAPT44 is sharded by outside port (every shard needs ports); a NAT64 pool or stateful
    /// NAT64 keeps one table that only one packet thread may own, so it needs one queue.
    func validateQueues() throws(ConfigurationError) {
        guard tun.queues > 1 else { return }
        if let n64 = nat64 {
            switch n64.mode {
            case .pool, .stateful:
                let what = n64.mode.name == "pool" ? "the NAT64 address pool" : "the NAT64 BIB and session table"
                throw ConfigurationError(key: "tun.queues", problem: "is \(tun.queues); \(what) is owned by one packet thread, and each queue would keep a table of its own (two IPv6 hosts could get the same IPv4 address)",
                                         hint: "set queues = 1 with a NAT64 pool or stateful NAT64 (SIIT keeps no state and has no such limit)")
            case .siit:
                break
            }
        }
        if let n44 = nat44 {
            do {
                for c in try ShardPlan(n44, shards: tun.queues).configurations { try c.validate() }
            } catch {
                throw ConfigurationError(key: "tun.queues", problem: "is \(tun.queues): nat44.\(error.key) \(error.problem)",
                                         hint: error.hint ?? "use fewer queues or more ports")
            }
        }
    }
}

extension DaemonConfiguration {
    /// NPTv6 prefixes must not hold (or lie in) the NAT64 prefix or an IPv6 prefix SIIT routes: a packet
    /// would belong to two translators.
    func validateNPTv6Overlap() throws(ConfigurationError) {
        guard let n6 = nptv6, let n64 = nat64 else { return }
        let theirs = (n64.usesPrefix ? [("nat64.prefix", n64.prefix)] : []) + n64.ipv6Routes.map { ("nat64.eam", $0) }
        for (key, p) in n6.prefixesWithKeys {
            for (k64, q) in theirs where p.overlaps(q) {
                throw ConfigurationError(key: key, problem: "\(p) overlaps \(k64) \(q)", hint: "NPTv6 and NAT64 need IPv6 prefixes of their own")
            }
        }
    }

    /// Port control grants run-time forwards of NAT44, which need one queue.
    func validatePortControl() throws(ConfigurationError) {
        guard let pc = portControl else { return }
        do { try pc.validate() } catch { throw error.under("port_control") }
        guard let n = nat44 else {
            throw ConfigurationError(key: "port_control", problem: "needs a [nat44] table (its mappings are NAT44 forwards)")
        }
        guard tun.queues == 1 else {
            throw ConfigurationError(key: "port_control", problem: "needs tun.queues = 1 (run-time forwards need one queue for now)")
        }
        if let a = pc.externalAddress, !n.pool.contains(where: { $0.contains(a) }) {
            throw ConfigurationError(key: "port_control.external_address", problem: "\(a) is not in nat44.pool")
        }
    }
}

/// The control socket (`[control]`): the CLI and scripts talk to the running daemon over it.
public struct ControlSettings: Sendable, Equatable {
    /// Serve the control socket at all.
    public var enabled = true
    /// The Unix socket's path (mode 0600, owned by the daemon's user).
    public var socket = "/run/swiftnat/control.sock"
    /// Where forwards added at run time (`swiftnat forwards add`) are kept across restarts; nil: not kept.
    public var stateFile: String? = "/var/lib/swiftnat/forwards.json"
    /// Where the session tables are saved at a clean stop and read back at the next start (restart
    /// without loss: ``SessionsFile``); nil: not kept.
    public var sessionsFile: String? = "/var/lib/swiftnat/sessions.bin"
    public init() {}

    /// Checks every value; keys as in `[control]`.
    public func validate() throws(ConfigurationError) {
        guard socket.hasPrefix("/"), !socket.hasSuffix("/") else {
            throw ConfigurationError(key: "socket", problem: "'\(socket)' is not an absolute file path", hint: "e.g. \"/run/swiftnat/control.sock\"")
        }
        // sun_path holds 108 bytes with the terminating zero.
        guard socket.utf8.count <= 107 else {
            throw ConfigurationError(key: "socket", problem: "is \(socket.utf8.count) bytes long; a Unix socket path holds at most 107", hint: "use a shorter path")
        }
        if let f = stateFile, !f.hasPrefix("/") || f.hasSuffix("/") {
            throw ConfigurationError(key: "state_file", problem: "'\(f)' is not an absolute file path",
                                     hint: "e.g. \"/var/lib/swiftnat/forwards.json\", or \"\" to keep no state")
        }
        if let f = sessionsFile, !f.hasPrefix("/") || f.hasSuffix("/") {
            throw ConfigurationError(key: "sessions_file", problem: "'\(f)' is not an absolute file path",
                                     hint: "e.g. \"/var/lib/swiftnat/sessions.bin\", or \"\" to keep no sessions across restarts")
        }
        if let f = sessionsFile, f == stateFile {
            throw ConfigurationError(key: "sessions_file", problem: "is the same file as state_file", hint: "give each its own file")
        }
    }
}

/// The Prometheus endpoint (`[metrics]`, or protomask's `Prometheus` key).
public struct MetricsSettings: Sendable, Equatable {
    /// `HOST:PORT` or `[V6]:PORT` to serve `/metrics` on; nil: off.
    public var listen: String? = nil
    public init() {}

    /// Checks every value; keys as in `[metrics]`.
    public func validate() throws(ConfigurationError) {
        if let l = listen, Self.socketAddress(l) == nil {
            throw ConfigurationError(key: "listen", problem: "'\(l)' is not an address and port", hint: "e.g. \"[::]:9100\" or \"127.0.0.1:9100\"")
        }
    }

    /// `HOST:PORT` (an IPv4 address) or `[V6]:PORT`, port 1-65535: the host text and the port, or nil.
    public static func socketAddress(_ s: String) -> (host: String, port: UInt16)? {
        guard let colon = s.lastIndex(of: ":"), let port = UInt16(s[s.index(after: colon)...]), port > 0 else { return nil }
        let host = s[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") {
            let inner = host.dropFirst().dropLast()
            return IPv6Address(inner) != nil ? (String(inner), port) : nil
        }
        return IPv4Address(host) != nil ? (String(host), port) : nil
    }
}

/// What the daemon logs beyond start, stop and errors (`[logging]`).
public struct LoggingSettings: Sendable, Equatable {
    /// RFC 6888 §4: log each mapping's creation and removal (time, protocol, inside and outside endpoint).
    public var mappings = false
    /// Add the remote endpoint to those lines (RFC 6888 §4: destinations only when asked).
    public var destinations = false
    /// Most lines per second for each kind of event (mappings, limit hits, invalid packets); the rest
    /// are counted and reported as suppressed.
    public var ratePerSecond = 100
    public init() {}

    /// Checks every value; keys as in `[logging]`.
    public func validate() throws(ConfigurationError) {
        if let e = ConfigurationError.outside(1...100_000, key: "rate_per_second", value: ratePerSecond) { throw e }
    }
}
