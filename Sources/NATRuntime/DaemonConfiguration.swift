import NAPT44
import NATCore
import NATWire

/// The TUN device the daemon creates.
public struct TunSettings: Sendable, Equatable {
    public var name = "swiftnat0"
    public var mtu = 1500
    /// Packet queues (threads). Only 1 is supported for now: sharding by outside port slices is to come.
    public var queues = 1
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
    public init() {}
}

/// Everything `swiftnat run` needs.
public struct DaemonConfiguration: Sendable {
    public var file: String
    public var tun = TunSettings()
    public var routing = RoutingSettings()
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
