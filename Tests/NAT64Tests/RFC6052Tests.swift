import Testing
import NATCore
import NATWire
@testable import NAT64

/// RFC 6052 §2.4's table: 192.0.2.33 embedded under each prefix length.
@Suite struct RFC6052Tests {
    static let v4 = IPv4Address("192.0.2.33")!
    static let table: [(prefix: String, address: String)] = [
        ("2001:db8::/32", "2001:db8:c000:221::"),
        ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
        ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
        ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
        ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
        ("2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"),
        ("64:ff9b::/96", "64:ff9b::192.0.2.33"),
    ]

    @Test(arguments: 0..<7)
    func rfc6052_2_4_exampleEmbeds(row: Int) throws {
        let (p, a) = Self.table[row]
        let prefix = try NAT64Prefix(p, restrictsToGlobalIPv4: false)
        #expect(prefix.embed(Self.v4) == IPv6Address(a)!)
    }

    @Test(arguments: 0..<7)
    func rfc6052_2_4_exampleExtracts(row: Int) throws {
        let (p, a) = Self.table[row]
        let prefix = try NAT64Prefix(p, restrictsToGlobalIPv4: false)
        #expect(prefix.extract(IPv6Address(a)!) == Self.v4)
    }

    @Test func rfc6052_2_2_otherLengthsRefused() {
        for len in [0, 8, 16, 24, 31, 33, 63, 65, 72, 80, 88, 95, 97, 112, 128] {
            let (mh, ml) = IPv6Prefix.mask(UInt8(len))
            let a = IPv6Address("2001:db8:1:2:3:4:5:6")!
            let p = IPv6Prefix(address: IPv6Address(high: a.high & mh, low: a.low & ml), length: len)!
            #expect(throws: ConfigurationError.self) { try NAT64Prefix(p) }
        }
    }

    @Test func rfc6052_2_2_uOctetOfA96PrefixMustBeZero() {
        #expect(throws: ConfigurationError.self) { try NAT64Prefix("2001:db8:0:0:ff00::/96") }
        #expect((try? NAT64Prefix("2001:db8:0:0:ff::/96")) != nil)
    }

    @Test func rfc6052_2_2_uOctetSetIsNotExtracted() throws {
        let prefix = try NAT64Prefix("2001:db8:122:344::/64")
        // 2001:db8:122:344:c0:2:2100:0 with bits 64-71 set.
        #expect(prefix.extract(IPv6Address("2001:db8:122:344:ffc0:2:2100:0")!) == nil)
        // The suffix is ignored (RFC 6052 §2.2: "SHOULD be set to zero").
        #expect(prefix.extract(IPv6Address("2001:db8:122:344:c0:2:2100:1")!) == Self.v4)
    }

    @Test func rfc6052_2_3_outsideThePrefixIsNotExtracted() throws {
        let prefix = try NAT64Prefix("2001:db8:100::/40")
        #expect(prefix.extract(IPv6Address("2001:db9:1c0:2:21::")!) == nil)
    }

    @Test func rfc6052_3_1_wellKnownPrefixRefusesNonGlobalByDefault() throws {
        let wkp = try NAT64Prefix("64:ff9b::/96")
        #expect(wkp.restrictsToGlobalIPv4)
        #expect(wkp.embed(Self.v4) == nil)                        // 192.0.2.0/24 is documentation space
        #expect(wkp.extract(IPv6Address("64:ff9b::192.0.2.33")!) == nil)
        #expect(wkp.embed(IPv4Address("10.1.2.3")!) == nil)
        #expect(wkp.embed(IPv4Address("100.64.0.1")!) == nil)
        #expect(wkp.embed(IPv4Address("224.0.0.1")!) == nil)
        // A global address is fine.
        #expect(wkp.embed(IPv4Address("8.8.8.8")!) == IPv6Address("64:ff9b::808:808")!)
        #expect(wkp.extract(IPv6Address("64:ff9b::808:808")!) == IPv4Address("8.8.8.8")!)
        // The check is a setting (the lab uses documentation addresses).
        let lab = try NAT64Prefix("64:ff9b::/96", restrictsToGlobalIPv4: false)
        #expect(lab.embed(Self.v4) == IPv6Address("64:ff9b::c000:221")!)
    }

    @Test func rfc8215_localUsePrefixHasNoGlobalRestriction() throws {
        let p = try NAT64Prefix("64:ff9b:1::/48")
        #expect(!p.restrictsToGlobalIPv4)
        let a = try #require(p.embed(IPv4Address("192.0.2.33")!))
        #expect(a == IPv6Address("64:ff9b:1:c000:2:2100::")!)
        #expect(p.extract(a) == IPv4Address("192.0.2.33")!)
    }

    @Test func rfc6890_specialPurposeBlocksAreNotGlobal() {
        for (net, len) in SpecialPurposeIPv4.nonGlobalBlocks {
            let last = IPv4Address(net.rawValue | ~IPv4Prefix.mask(len))
            #expect(!SpecialPurposeIPv4.isGlobal(net), "\(net)")
            #expect(!SpecialPurposeIPv4.isGlobal(last), "\(last)")
        }
        for g in ["1.1.1.1", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0", "172.32.0.0",
                  "192.0.1.255", "192.0.3.0", "192.88.99.1", "198.17.255.255", "198.20.0.0", "203.0.114.0",
                  "223.255.255.255"] {
            #expect(SpecialPurposeIPv4.isGlobal(IPv4Address(g)!), "\(g)")
        }
    }
}
