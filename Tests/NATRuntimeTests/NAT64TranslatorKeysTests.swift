import Foundation
import NAT64
import NATCore
@testable import NATRuntime
import NATWire
import Testing

/// Issue 11: every translator knob the library has is a `[nat64]` key, in every mode, and reaches the
/// translator: Jool's pool6791v4 / pool6791v6 (RFC 6791), ipv4_mtu / ipv6_mtu (RFC 7915 §4.1, §5.1),
/// zero_udp_checksum (RFC 7915 §4.5) and traffic_class (RFC 7915 §4.1, §5.1).
@Suite struct NAT64TranslatorKeysTests {
    static let client6 = IPv6Address("2001:db8:1::2")!
    static let client4 = IPv4Address("198.51.100.7")!
    static let server4 = IPv4Address("203.0.113.2")!
    static let server6 = IPv6Address("2001:db8:64::cb00:7102")!
    static let errorSource4 = IPv4Address("192.0.2.100")!
    static let errorSource6 = IPv6Address("2001:db8:ffff::1")!

    static func siit(_ extra: String) throws -> NAT64Settings {
        let text = """
        [nat64]
        mode = "siit"
        prefix = "2001:db8:64::/96"
        eam = [{ v4 = "198.51.100.7", v6 = "2001:db8:1::2" }]
        pool6791v4 = ["192.0.2.100"]
        pool6791v6 = "2001:db8:ffff::1"
        \(extra)
        """
        return try #require(try ConfigLoader.parse(text, file: "t.toml").nat64)
    }

    static func run(_ s: NAT64Settings, _ packet: [UInt8]) throws -> [[UInt8]] {
        let setup = NAT64Setup(settings: s, mtu: 1500, claimsAllIPv4: true, control: NAT64Control())
        var path = try NAT64Path(setup, now: Timestamp(nanoseconds: 1_000_000_000), logger: .init(label: "test"))
        var p = packet
        var out: [[UInt8]] = []
        p.withUnsafeMutableBytes { b in
            path.process(b, now: Timestamp(nanoseconds: 2_000_000_000)) { out.append(Array(UnsafeRawBufferPointer(start: $0, count: $1))) }
        }
        return out
    }

    static func v4(_ b: [UInt8], _ at: Int) -> IPv4Address { IPv4Address(UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])) }
    static func v6(_ b: [UInt8], _ at: Int) -> IPv6Address {
        var hi: UInt64 = 0, lo: UInt64 = 0
        for i in 0..<8 { hi = hi << 8 | UInt64(b[at + i]); lo = lo << 8 | UInt64(b[at + 8 + i]) }
        return IPv6Address(high: hi, low: lo)
    }

    @Test func keysAreReadInEveryMode() throws {
        let s = try Self.siit("ipv4_mtu = 1400\nipv6_mtu = 1480\nzero_udp_checksum = \"drop\"\ntraffic_class = \"zero\"\n")
        #expect(s.pool6791v4 == [IPv4Prefix("192.0.2.100/32")!] && s.pool6791v6 == Self.errorSource6)
        #expect(s.ipv4MTU == 1400 && s.ipv6MTU == 1480 && s.zeroUDPChecksum == .drop && s.trafficClassOverride == 0)
        let c = NAT64Setup(settings: s, mtu: 1500, claimsAllIPv4: true, control: NAT64Control()).translatorConfiguration
        #expect(c.ipv4MTU == 1400 && c.ipv6MTU == 1480 && c.zeroUDPChecksum == .drop && c.trafficClassOverride == 0)
        #expect(c.ipv4ErrorSource == Self.errorSource4 && c.ipv6ErrorSource == Self.errorSource6)
        for mode in ["pool = [\"198.51.100.64/29\"]\nmode = \"pool\"", "pool = [\"198.51.100.64/30\"]\nmode = \"stateful\""] {
            let text = "[nat64]\nprefix = \"2001:db8:64::/96\"\n\(mode)\npool6791v4 = [\"192.0.2.100\"]\npool6791v6 = \"2001:db8:ffff::1\"\ntraffic_class = \"copy\"\n"
            let n = try #require(try ConfigLoader.parse(text, file: "t.toml").nat64)
            let t = NAT64Setup(settings: n, mtu: 1500, claimsAllIPv4: true, control: NAT64Control()).translatorConfiguration
            #expect(t.ipv4ErrorSource == Self.errorSource4 && t.ipv6ErrorSource == Self.errorSource6 && t.trafficClassOverride == nil, "\(mode)")
        }
    }

    @Test func keyErrorsNameTheKey() {
        func key(_ extra: String) -> String? {
            do {
                _ = try Self.siit(extra)
                return nil
            } catch let e as ConfigurationError {
                return e.key
            } catch {
                return "?"
            }
        }
        #expect(key("zero_udp_checksum = \"ignore\"\n") == "nat64.zero_udp_checksum")
        #expect(key("traffic_class = 3\n") == "nat64.traffic_class")
        #expect(key("traffic_class = \"keep\"\n") == "nat64.traffic_class")
        #expect(key("ipv6_mtu = 1000\n") == "nat64.ipv6_mtu")
        #expect(key("ipv4_mtu = 60\n") == "nat64.ipv4_mtu")
        #expect(key("lowest_ipv6_mtu = 1500\nipv6_mtu = 1400\n") == "nat64.lowest_ipv6_mtu")
        #expect(key("rfc6791_pool = [\"192.0.2.101\"]\n") == "nat64.pool6791v4")
        #expect(key("pool6791v4 = [\"198.51.100.7\"]\n") != nil)
    }

    /// RFC 7915 §4.5 with `zero_udp_checksum = "drop"`: an unfragmented IPv4 UDP datagram with a zero
    /// checksum is dropped and its sender gets ICMPv4 3/13 from the pool6791v4 address (RFC 7915 §4.4);
    /// with the default `compute` it crosses with a checksum.
    @Test func rfc7915_4_5_zeroUDPChecksumDropOr3_13() throws {
        let zero = PacketBuilder.udp4(source: Self.server4, sourcePort: 53, destination: Self.client4, destinationPort: 40000,
                                      payload: Array("answer".utf8), checksum: false)
        let dropped = try Self.run(try Self.siit("zero_udp_checksum = \"drop\"\n"), zero)
        #expect(dropped.count == 1)
        let e = try #require(dropped.first)
        #expect(e[0] >> 4 == 4 && e[9] == IPProtocol.icmp && Self.v4(e, 12) == Self.errorSource4 && Self.v4(e, 16) == Self.server4)
        #expect(e[20] == 3 && e[21] == 13, "ICMPv4 \(e[20])/\(e[21])")
        let computed = try Self.run(try Self.siit(""), zero)
        let u = try #require(computed.first)
        #expect(u[0] >> 4 == 6 && u[6] == IPProtocol.udp && (u[46] != 0 || u[47] != 0), "the checksum was not computed")
    }

    /// RFC 7915 §4.1: the TOS is copied into the traffic class by default; `traffic_class = "zero"` writes 0.
    @Test func rfc7915_4_1_trafficClassCopyOrZero() throws {
        let seg = PacketBuilder.udp4(source: Self.server4, sourcePort: 53, destination: Self.client4, destinationPort: 40000, payload: [1, 2, 3])
        let h = IPv4Header(protocolNumber: IPProtocol.udp, source: Self.server4, destination: Self.client4, tos: 0xB8)
        let packet = PacketBuilder.ipv4(h, payload: Array(seg[20...]))
        func trafficClass(_ b: [UInt8]) -> UInt8 { (b[0] & 0x0F) << 4 | b[1] >> 4 }
        let copied = try #require(try Self.run(try Self.siit(""), packet).first)
        #expect(trafficClass(copied) == 0xB8)
        let zeroed = try #require(try Self.run(try Self.siit("traffic_class = \"zero\"\n"), packet).first)
        #expect(trafficClass(zeroed) == 0)
    }

    /// RFC 7915 §5.1 with `ipv4_mtu = 1300` (below the TUN device's 1500): a 1400-byte IPv6 packet whose
    /// translation would not fit gets ICMPv6 Packet Too Big (MTU 1320 = 1300 + 20) from the pool6791v6 address.
    @Test func rfc7915_5_1_ipv4MTUKeyAndPacketTooBigFromPool6791v6() throws {
        let big = PacketBuilder.udp6(source: Self.client6, sourcePort: 40000, destination: Self.server6, destinationPort: 53,
                                     payload: [UInt8](repeating: 7, count: 1352))
        #expect(big.count == 1400)
        let out = try Self.run(try Self.siit("ipv4_mtu = 1300\n"), big)
        let e = try #require(out.first)
        #expect(e[0] >> 4 == 6 && e[6] == 58 && Self.v6(e, 8) == Self.errorSource6 && Self.v6(e, 24) == Self.client6)
        #expect(e[40] == 2 && UInt32(e[44]) << 24 | UInt32(e[45]) << 16 | UInt32(e[46]) << 8 | UInt32(e[47]) == 1320)
        // Without the key the TUN device's 1500 applies and the packet crosses.
        let fits = try #require(try Self.run(try Self.siit(""), big).first)
        #expect(fits[0] >> 4 == 4 && fits.count == 1380)
    }

    /// RFC 7757 §3.2 / §3.3: every EAM form: a bare address (/32 ↔ /128), prefixes of any length with
    /// suffixes of equal size, and entries nested in others (the longest match wins); identical
    /// prefixes are refused.
    @Test func rfc7757_3_2_everyEAMFormAndLongestMatch() throws {
        let text = """
        [nat64]
        mode = "siit"
        prefix = "2001:db8:64::/96"
        eam = [{ v4 = "198.51.100.8/29", v6 = "2001:db8:1::8/125" },
               { v4 = "198.51.100.9", v6 = "2001:db8:2::9" },
               { v4 = "198.51.100.32/27", v6 = "2001:db8:3::/123" }]
        """
        let n = try #require(try ConfigLoader.parse(text, file: "t.toml").nat64)
        #expect(n.ipv4Prefixes.map(\.description) == ["198.51.100.8/29", "198.51.100.9/32", "198.51.100.32/27"])
        func destination(_ to: IPv4Address) throws -> IPv6Address {
            let p = PacketBuilder.udp4(source: Self.server4, sourcePort: 53, destination: to, destinationPort: 40000, payload: [1])
            let out = try #require(try Self.run(n, p).first)
            return Self.v6(out, 24)
        }
        #expect(try destination(IPv4Address("198.51.100.9")!) == IPv6Address("2001:db8:2::9")!, "the /32 inside the /29 wins")
        #expect(try destination(IPv4Address("198.51.100.10")!) == IPv6Address("2001:db8:1::a")!)
        #expect(try destination(IPv4Address("198.51.100.45")!) == IPv6Address("2001:db8:3::d")!)
        let same = text.replacingOccurrences(of: "{ v4 = \"198.51.100.9\", v6 = \"2001:db8:2::9\" }", with: "{ v4 = \"198.51.100.8/29\", v6 = \"2001:db8:2::8/125\" }")
        #expect(throws: ConfigurationError.self) { try ConfigLoader.parse(same, file: "t.toml") }
    }

    /// RFC 7757 §3.3 with no RFC 6052 prefix (Jool's SIIT with an empty pool6): every address is
    /// translated by the EAM table alone; an IPv4 host has its own entry (`ipv4_host = true`, whose IPv6
    /// side is what the daemon routes into the TUN device); an address under the (absent) prefix is not
    /// translated; errors from untranslatable IPv4 routers take pool6791v6 (RFC 7915 §4.2 / RFC 6791).
    @Test func rfc7757_3_3_siitWithEAMOnlyAndNoPrefix() throws {
        let text = """
        [nat64]
        mode = "siit"
        prefix = "none"
        eam = [{ v4 = "198.51.100.7", v6 = "2001:db8:1::2" }, { v4 = "203.0.113.2", v6 = "2001:db8:99::2", ipv4_host = true }]
        pool6791v6 = "2001:db8:ffff::1"
        """
        let n = try #require(try ConfigLoader.parse(text, file: "t.toml").nat64)
        #expect(!n.usesPrefix && n.summary.contains("prefix=none"))
        #expect(n.ipv4Prefixes == [IPv4Prefix("198.51.100.7/32")!] && n.ipv6Routes == [IPv6Prefix("2001:db8:99::2/128")!])
        let out = try #require(try Self.run(n, PacketBuilder.udp6(source: Self.client6, sourcePort: 40000, destination: IPv6Address("2001:db8:99::2")!,
                                                                    destinationPort: 53, payload: [1, 2])).first)
        #expect(out[0] >> 4 == 4 && Self.v4(out, 12) == Self.client4 && Self.v4(out, 16) == Self.server4)
        #expect(try Self.run(n, PacketBuilder.udp6(source: Self.client6, sourcePort: 40000, destination: Self.server6,
                                                   destinationPort: 53, payload: [1])).isEmpty, "no prefix: 2001:db8:64::cb00:7102 is not translated")
        let back = try #require(try Self.run(n, PacketBuilder.udp4(source: Self.server4, sourcePort: 53, destination: Self.client4,
                                                                    destinationPort: 40000, payload: [3])).first)
        #expect(back[0] >> 4 == 6 && Self.v6(back, 8) == IPv6Address("2001:db8:99::2")! && Self.v6(back, 24) == Self.client6)
        #expect(NAT64Setup(settings: n, mtu: 1500, claimsAllIPv4: true, control: NAT64Control()).translatorConfiguration.ipv6ErrorSource == Self.errorSource6)
        // `none` is SIIT's only; translatable prefixes need the prefix.
        #expect(throws: ConfigurationError.self) { try ConfigLoader.parse("[nat64]\nmode = \"pool\"\nprefix = \"none\"\npool = [\"198.51.100.64/29\"]\n", file: "t.toml") }
        #expect(throws: ConfigurationError.self) { try ConfigLoader.parse(text + "\ntranslatable = [\"198.51.100.128/25\"]\n", file: "t.toml") }
    }
}
