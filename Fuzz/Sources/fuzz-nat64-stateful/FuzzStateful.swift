import FuzzNAT64
import FuzzSupport
import NAT64
import NATCore
import NATWire

// NAT64Translator with the stateful NAPT64 mapping (RFC 6146): IPv6 hosts share 198.51.100.64/30, IPv4
// is seen under 64:ff9b::/96; small tables so that the limits are reached; a static binding for
// 2001:db8:6::5 TCP 80. See FuzzNAT64 for the checks.

func makeStateful() -> NAT64Translator<NAPT64Mapping> {
    do {
        var s = NAPT64Configuration(prefix: try NAT64Prefix("64:ff9b::/96", restrictsToGlobalIPv4: false),
                                    pool: [IPv4Prefix("198.51.100.64/30")!])
        s.hashSeed = 0x6146
        s.maxSessions = 64
        s.maxHeldSYNs = 4
        s.maxFragmentFlows = 16
        s.maxSessionsPerHost = 16
        s.tcpPorts = PortSet(ranges: [1000...1003, 40000...40007])
        s.staticBindings = [NAT64StaticBinding(proto: .tcp, ipv6: IPv6Address("2001:db8:6::5")!, ipv6Port: 80,
                                               ipv4: IPv4Address("198.51.100.64")!, ipv4Port: 8080)]
        return try NAT64Translator(configuration: translatorConfiguration(), mapping: NAPT64Mapping(configuration: s))
    } catch {
        fatalError("fuzz configuration refused: \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzTranslator(input(data, size), make: makeStateful, expire: { t, now in t.mapping.expire(now: now) })
    return 0
}
