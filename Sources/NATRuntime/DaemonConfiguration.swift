import NAPT44
import NATCore
import NATWire

/// The TUN device the daemon creates.
public struct TunSettings: Sendable, Equatable {
    public var name = "swiftnat0"
    public var mtu = 1500
    /// Packet queues (threads, IFF_MULTI_QUEUE). With more than one, each thread owns an engine with a
    /// slice of the outside ports (``ShardPlan``) and hands packets it does not own to their owner.
    public var queues = 1
    /// TUN offloads (virtio-net header, partial checksums, TCP/UDP segmentation offload): the kernel hands
    /// over and takes back 64 KiB super-packets instead of MTU-sized ones.
    public var offload = true
    /// The TUN device's transmit queue length (packets the kernel queues for the reader); the kernel's
    /// default (500) when nil.
    public var txQueueLength: Int? = nil
    public init() {}
}

/// What the daemon does to the host's routing when it starts (and undoes when it stops).
public struct RoutingSettings: Sendable, Equatable {
    /// Set up routes at all (`--no-routes` turns this off).
    public var enabled = true
    /// The routing table whose default route is the TUN device (policy routing for inside traffic).
    public var table = 7744
    /// Priority of the `ip rule`s steering inside traffic to that table; `priority - 1` is used for
    /// the rules that keep traffic to inside prefixes in the main table.
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
    public init() {}
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
    /// Interfaces the inside hosts are on; traffic arriving on them is steered into the TUN device.
    /// When empty, traffic is steered by source prefix (`from <inside prefix>`).
    public var insideInterfaces: [String] = []
    /// The interface the pool addresses are reachable on (for proxy ARP).
    public var outsideInterface: String?

    public init(file: String, nat44: NAPT44Configuration? = nil, nat64: NAT64Settings? = nil) {
        self.file = file
        self.nat44 = nat44
        self.nat64 = nat64
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
    public init() {}
}

/// The Prometheus endpoint (`[metrics]`, or protomask's `Prometheus` key).
public struct MetricsSettings: Sendable, Equatable {
    /// `HOST:PORT` or `[V6]:PORT` to serve `/metrics` on; nil: off.
    public var listen: String? = nil
    public init() {}
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
}
