import Testing
import NATWire

@Suite struct IPv4AddressTests {
    @Test(arguments: ["0.0.0.0", "192.0.2.1", "198.51.100.255", "203.0.113.0", "100.64.0.1", "255.255.255.255", "10.0.0.0"])
    func textRoundTrips(_ text: String) throws {
        let a = try #require(IPv4Address(text))
        #expect(a.description == text)
    }

    @Test func parsesToHostOrderValue() {
        #expect(IPv4Address("192.0.2.1")?.rawValue == 0xC000_0201)
        #expect(IPv4Address("192.0.2.1") == IPv4Address(192, 0, 2, 1))
        let o = IPv4Address(192, 0, 2, 1).octets
        #expect(o.0 == 192 && o.1 == 0 && o.2 == 2 && o.3 == 1)
    }

    /// Leading zeros are refused (some parsers read them as octal), as are out-of-range octets and wrong shapes.
    @Test(arguments: ["01.2.3.4", "1.2.3.04", "00.0.0.0", "256.0.0.1", "1.2.3.256", "1.2.3", "1.2.3.4.5", "1..2.3",
                      ".1.2.3", "1.2.3.4.", "", "1.2.3.a", " 1.2.3.4", "1.2.3.4 ", "1.2.3.-4", "1234.1.1.1", "0x1.2.3.4"])
    func rejectsMalformedText(_ text: String) {
        #expect(IPv4Address(text) == nil)
    }

    @Test func orderingFollowsNumericValue() {
        #expect(IPv4Address(192, 0, 2, 1) < IPv4Address(192, 0, 2, 2))
        #expect(IPv4Address(9, 255, 255, 255) < IPv4Address(10, 0, 0, 0))
    }

    /// RFC 6890 / RFC 6052 §3.1: documentation and shared-address space are not globally reachable.
    @Test func rfc6890_globalReachability() {
        #expect(!IPv4Address(192, 0, 2, 1).isGloballyReachable)
        #expect(!IPv4Address(100, 64, 0, 1).isGloballyReachable)
        #expect(!IPv4Address(10, 1, 2, 3).isGloballyReachable)
        #expect(IPv4Address(8, 8, 8, 8).isGloballyReachable)
    }
}

@Suite struct IPv6AddressTests {
    /// RFC 5952 §4: canonical text form.
    @Test(arguments: [
        ("2001:db8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:DB8::A", "2001:db8::a"),                           // §4.3 lower case
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),         // §4.2.2 a single zero group is not compressed
        ("2001:db8::1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),                  // §4.2.3 the longest run is compressed
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),            // §4.2.3 of equal runs, the first
        ("0:0:0:0:0:0:0:0", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("1:0:0:0:0:0:0:0", "1::"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff"),
        ("2001:db8:0:0:0:0:0:0", "2001:db8::"),
        ("fe80::0001", "fe80::1"),                                // §4.1 leading zeros dropped
    ])
    func rfc5952_canonicalText(_ input: String, _ canonical: String) throws {
        let a = try #require(IPv6Address(input))
        #expect(a.description == canonical)
        #expect(IPv6Address(canonical) == a)
    }

    /// RFC 4291 §2.2 (3): a trailing dotted IPv4 address.
    @Test func rfc4291_embeddedIPv4() throws {
        let mapped = try #require(IPv6Address("::ffff:192.0.2.1"))
        #expect(mapped == IPv6Address(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201))
        let wkp = try #require(IPv6Address("64:ff9b::192.0.2.33"))
        #expect(wkp == IPv6Address(0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x0221))
        // RFC 6052 §2.4 examples.
        #expect(IPv6Address("2001:db8:c000:221::") == IPv6Address(0x2001, 0xdb8, 0xc000, 0x221, 0, 0, 0, 0))
        #expect(IPv6Address("1:2:3:4:5:6:192.0.2.1") == IPv6Address(1, 2, 3, 4, 5, 6, 0xc000, 0x0201))
        // Printing is hexadecimal throughout (RFC 5952 §5's mixed notation is not produced).
        #expect(mapped.description == "::ffff:c000:201")
        #expect(IPv6Address(mapped.description) == mapped)
    }

    @Test(arguments: [
        "1:2:3:4:5:6:7:8:9",        // too many groups
        "1:2:3:4:5:6:7",            // too few
        "1::2::3",                  // two "::"
        "::1::",
        "12345::",                  // group too long
        "2001:db8::g",
        ":1:2:3:4:5:6:7",
        "1:2:3:4:5:6:7:",
        ":::",
        "",
        "::1.2.3",
        "::1.2.3.4:5",              // IPv4 not last
        "1.2.3.4::",
        "::01.2.3.4",               // leading zero in the embedded IPv4
        "1:2:3:4:5:6:7:1.2.3.4",    // nine groups' worth
        "::1:2:3:4:5:6:7:8",
        "2001:db8::1/64",
    ])
    func rfc4291_rejectsMalformedText(_ text: String) {
        #expect(IPv6Address(text) == nil)
    }

    @Test func groupsAndBytesAreInNetworkOrder() {
        let a = IPv6Address(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)
        #expect(a.high == 0x2001_0db8_0000_0000)
        #expect(a.low == 1)
        #expect(a.group(0) == 0x2001)
        #expect(a.group(7) == 1)
        #expect(a.byte(0) == 0x20 && a.byte(1) == 0x01 && a.byte(3) == 0xb8 && a.byte(15) == 1)
        #expect(a.wordSum == 0x2001 + 0xdb8 + 1)
    }

    /// Random addresses print canonically and parse back to themselves.
    @Test func rfc5952_randomRoundTrips() {
        var rng = SplitMix64(seed: 5952)
        for _ in 0..<2000 {
            // Bias towards zero groups so that runs occur.
            var g = [UInt16](repeating: 0, count: 8)
            for i in 0..<8 where rng.below(2) == 0 { g[i] = UInt16(truncatingIfNeeded: rng.next()) }
            let a = IPv6Address(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7])
            let text = a.description
            #expect(IPv6Address(text) == a, "\(text)")
            #expect(!text.contains(":::"))
            #expect(text == text.lowercased())
        }
    }
}

@Suite struct PrefixTests {
    @Test func ipv4PrefixContains() throws {
        let p = try #require(IPv4Prefix("100.64.0.0/10"))
        #expect(p.contains(IPv4Address(100, 64, 0, 1)))
        #expect(p.contains(IPv4Address(100, 127, 255, 255)))
        #expect(!p.contains(IPv4Address(100, 128, 0, 0)))
        #expect(!p.contains(IPv4Address(100, 63, 255, 255)))
        #expect(p.description == "100.64.0.0/10")
        #expect(p.count == 1 << 22)
        #expect(p.address(at: 5) == IPv4Address(100, 64, 0, 5))
        let all = try #require(IPv4Prefix("0.0.0.0/0"))
        #expect(all.contains(IPv4Address(203, 0, 113, 1)))
        let host = try #require(IPv4Prefix("192.0.2.1"))
        #expect(host.length == 32 && host.contains(ip4A) && !host.contains(IPv4Address(192, 0, 2, 2)))
    }

    @Test(arguments: ["192.0.2.1/24", "192.0.2.0/33", "192.0.2.0/", "192.0.2.0/24/1", "/24", "192.0.2.0/x", "100.64.0.0/9"])
    func ipv4PrefixRejectsHostBitsAndBadLengths(_ text: String) {
        #expect(IPv4Prefix(text) == nil)
    }

    @Test func ipv4PrefixContainingClearsHostBits() {
        let p = IPv4Prefix(containing: IPv4Address(192, 0, 2, 77), length: 24)
        #expect(p.address == IPv4Address(192, 0, 2, 0))
        #expect(IPv4Prefix(address: IPv4Address(192, 0, 2, 77), length: 24) == nil)
        #expect(IPv4Prefix(address: IPv4Address(192, 0, 2, 0), length: 24) == p)
    }

    @Test func ipv6PrefixContains() throws {
        let wkp = try #require(IPv6Prefix("64:ff9b::/96"))
        #expect(wkp.contains(IPv6Address("64:ff9b::192.0.2.33")!))
        #expect(!wkp.contains(IPv6Address("64:ff9b:1::192.0.2.33")!))
        #expect(wkp.description == "64:ff9b::/96")
        let doc = try #require(IPv6Prefix("2001:db8::/32"))
        #expect(doc.contains(ip6A))
        #expect(!doc.contains(IPv6Address("2001:db9::1")!))
        let p65 = try #require(IPv6Prefix("2001:db8:0:0:8000::/65"))
        #expect(p65.contains(IPv6Address("2001:db8::8000:0:0:1")!))
        #expect(!p65.contains(IPv6Address("2001:db8::7fff:0:0:1")!))
        #expect(try #require(IPv6Prefix("::/0")).contains(ip6B))
        #expect(try #require(IPv6Prefix("2001:db8::1")).length == 128)
    }

    @Test(arguments: ["2001:db8::1/64", "64:ff9b::1/96", "2001:db8::/129", "2001:db8::/", "2001:db8::/ab", "2001:db8::8000:0:0:0/64"])
    func ipv6PrefixRejectsHostBitsAndBadLengths(_ text: String) {
        #expect(IPv6Prefix(text) == nil)
    }
}

@Suite("Prefix length text")
struct PrefixLengthTextTests {
    @Test func signedOrEmptyPrefixLengthsAreRefused() {
        for bad in ["10.0.0.0/+8", "0.0.0.0/-0", "192.0.2.0/", "192.0.2.0/ 8"] { #expect(IPv4Prefix(bad) == nil) }
        for bad in ["2001:db8::/+32", "::/-0", "2001:db8::/"] { #expect(IPv6Prefix(bad) == nil) }
        #expect(IPv4Prefix("192.0.2.0/24")?.length == 24)
        #expect(IPv6Prefix("64:ff9b::/96")?.length == 96)
    }
}
