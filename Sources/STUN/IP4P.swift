import NATWire

/// IP4P, as NATMap writes it: an IPv4 address and a port in an IPv6 address, `2001::{port}:{ipv4-hi16}:{ipv4-lo16}`,
/// so that a DNS AAAA record can carry both.
public enum IP4P {
    /// The address for `address:port`.
    public static func encode(_ address: IPv4Address, port: UInt16) -> IPv6Address {
        IPv6Address(0x2001, 0, 0, 0, 0, port, UInt16(address.rawValue >> 16), UInt16(address.rawValue & 0xFFFF))
    }

    /// The IPv4 address and port in an IP4P address, or nil when it is not one (2001:0:0:0:0::/80).
    public static func decode(_ a: IPv6Address) -> (address: IPv4Address, port: UInt16)? {
        guard a.high == 0x2001_0000_0000_0000, a.group(4) == 0 else { return nil }
        return (IPv4Address(UInt32(a.group(6)) << 16 | UInt32(a.group(7))), a.group(5))
    }

    /// NATMap's text: every group after `2001::` zero-padded to four hex digits (`2001::060d:c633:6401`).
    public static func text(_ address: IPv4Address, port: UInt16) -> String {
        func g(_ v: UInt16) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 4 - s.count) + s
        }
        return "2001::\(g(port)):\(g(UInt16(address.rawValue >> 16))):\(g(UInt16(address.rawValue & 0xFFFF)))"
    }

    /// Reads IP4P text in any IPv6 spelling (padded or not, compressed or not).
    public static func parse(_ text: some StringProtocol) -> (address: IPv4Address, port: UInt16)? {
        IPv6Address(text).flatMap(decode)
    }
}
