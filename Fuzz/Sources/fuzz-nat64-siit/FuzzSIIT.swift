import FuzzNAT64
import FuzzSupport
import NAT64
import NATCore
import NATWire

// NAT64Translator with the SIIT mapping (RFC 7915 with RFC 6052 and an EAM table, RFC 7757): IPv6 hosts
// 2001:db8:6::/120 are 198.51.100.0/24, IPv4 is seen under 64:ff9b::/96. See FuzzNAT64 for the checks.

func makeSIIT() -> NAT64Translator<SIITMapping> {
    do {
        var s = SIITConfiguration()
        s.prefix = try NAT64Prefix("64:ff9b::/96", restrictsToGlobalIPv4: false)
        s.explicitMappings = [try ExplicitAddressMapping(ipv4: "198.51.100.0/24", ipv6: "2001:db8:6::/120")]
        s.rfc6791Pool = [IPv4Prefix("203.0.113.254/32")!]
        return try NAT64Translator(configuration: translatorConfiguration(), mapping: SIITMapping(s))
    } catch {
        fatalError("fuzz configuration refused: \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzTranslator(input(data, size), make: makeSIIT, expire: { _, _ in })
    return 0
}
