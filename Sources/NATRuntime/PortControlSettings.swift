import NATCore
import NATWire
import PortControl

/// `[port_control]`: UPnP IGD, NAT-PMP and PCP for the inside hosts. Every mapping they grant is a
/// run-time forward of NAT44 (origin `upnp`, `natpmp`, `pcp`) with a lease.
public struct PortControlSettings: Sendable, Equatable {
    public var natPMP = true
    public var pcp = true
    public var upnp = true
    /// The NAT's inside address the servers listen on (UDP 5351, the UPnP HTTP port); only this
    /// address, never the outside.
    public var listen = IPv4Address.any
    /// The NAT's inside IPv6 address: PCP (RFC 6887) from the IPv6 hosts of its /64 on UDP 5351 there,
    /// whose MAP requests become static BIB entries of the stateful NAT64. nil: no PCP over IPv6.
    public var listen6: IPv6Address? = nil
    /// The inside interface SSDP joins 239.255.255.250 on and announces from.
    public var interface = ""
    /// The UPnP HTTP port (description and SOAP control), as pktkit's UPnPConfig.ControlPort.
    public var upnpPort: UInt16 = 5000
    /// Seconds between SSDP NOTIFY ssdp:alive rounds (UPnP DA §1.2.2: at most half the CACHE-CONTROL max-age).
    public var notifyInterval = 900
    /// The external address announced and mapped on; nil: the first NAT44 pool address.
    public var externalAddress: IPv4Address? = nil
    public var policy = PortControlPolicy()
    public init() {}

    /// Checks every value; keys as in `[port_control]`.
    public func validate() throws(ConfigurationError) {
        guard listen != .any else {
            throw ConfigurationError(key: "listen", problem: "is missing", hint: "the NAT's inside address, e.g. listen = \"100.64.0.1\"")
        }
        if upnp && interface.isEmpty {
            throw ConfigurationError(key: "interface", problem: "is missing (SSDP needs the inside interface)",
                                     hint: "e.g. interface = \"in0\", or upnp = false")
        }
        if interface.utf8.count > 15 || interface.contains("/") {
            throw ConfigurationError(key: "interface", problem: "'\(interface)' is not a valid interface name", hint: "1 to 15 characters, no '/'")
        }
        if upnp, upnpPort == 0 || upnpPort == 1900 || upnpPort == 5351 {
            throw ConfigurationError(key: "upnp_port", problem: "is \(upnpPort)", hint: "a free TCP port other than 0, 1900 and 5351, e.g. 5000")
        }
        if let e = ConfigurationError.outside(60...86_400, key: "notify_interval", value: notifyInterval) { throw e }
        try policy.validate()
    }
}

extension PortControlSettings {
    /// `[port_control]`.
    init(_ t: TableReader) throws(ConfigurationError) {
        self.init()
        if let v = try t.bool("natpmp") { natPMP = v }
        if let v = try t.bool("pcp") { pcp = v }
        if let v = try t.bool("upnp") { upnp = v }
        if let v = try t.string("listen") { listen = try t.address(v, key: "listen") }
        if let v = try t.string("listen_ipv6") {
            guard let a = IPv6Address(v) else {
                throw t.error("listen_ipv6", "'\(v)' is not an IPv6 address", hint: "the NAT's inside IPv6 address, e.g. listen_ipv6 = \"2001:db8:1::1\"")
            }
            listen6 = a
        }
        if let v = try t.string("interface") { interface = v }
        if let v = try t.int("upnp_port", in: 0...65535) { upnpPort = UInt16(v) }
        if let v = try t.int("notify_interval") { notifyInterval = v }
        if let v = try t.string("external_address") { externalAddress = try t.address(v, key: "external_address") }
        if let v = try t.bool("secure_mode") { policy.secureMode = v }
        if let rules = try t.stringArray("rules") {
            policy.rules = try rules.enumerated().map { (i, s) throws(ConfigurationError) in
                guard let r = PermissionRule(s) else {
                    throw t.error("rules[\(i)]", "'\(s)' is not a permission rule",
                                  hint: "allow|deny EXTERNAL-PORTS ADDRESS/LEN INTERNAL-PORTS, e.g. \"allow 1024-65535 100.64.0.0/24 1024-65535\"")
                }
                return r
            }
        }
        if let v = try t.int("max_mappings") { policy.maxMappings = v }
        if let v = try t.int("max_per_client") { policy.maxPerClient = v }
        if let v = try t.integer("min_lease", as: UInt32.self) { policy.minLease = v }
        if let v = try t.integer("max_lease", as: UInt32.self) { policy.maxLease = v }
        if let v = try t.integer("default_lease", as: UInt32.self) { policy.defaultLease = v }
        try t.finish()
    }
}
