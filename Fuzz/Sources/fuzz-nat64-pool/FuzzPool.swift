import FuzzNAT64
import FuzzSupport
import NAT64
import NATCore
import NATWire

// NAT64Translator with the address-pool mapping (protomask's 1:1 mode): IPv6 hosts get an address of
// 192.0.2.0/29 (192.0.2.6 is 2001:db8:1::6 for good), IPv4 is seen under 2001:db8:64::/96; reservations
// expire after 60 s idle. See FuzzNAT64 for the checks.

func makePool() -> NAT64Translator<AddressPoolMapping> {
    do {
        var c = translatorConfiguration()
        c.ipv4ErrorSource = IPv4Address("192.0.2.0")!
        c.ipv6ErrorSource = IPv6Address("2001:db8:64::c000:200")!
        let pool = try AddressPool(configuration: AddressPoolConfiguration(
            prefixes: [IPv4Prefix("192.0.2.0/29")!], maxIdleSeconds: 60,
            staticMappings: [StaticAddressMapping(ipv4: IPv4Address("192.0.2.6")!, ipv6: IPv6Address("2001:db8:1::6")!)]))
        let m = try AddressPoolMapping(pool: pool, prefix: NAT64Prefix("2001:db8:64::/96"), rfc6791Pool: [IPv4Prefix("203.0.113.254/32")!])
        return try NAT64Translator(configuration: c, mapping: m)
    } catch {
        fatalError("fuzz configuration refused: \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzTranslator(input(data, size), make: makePool, expire: { t, now in _ = t.mapping.pool.expire(now: now) })
    return 0
}
