import Foundation
import NAT64
import NATCore
import NATRuntime
import NATWire
import Testing

private func parseError(_ text: String) -> ConfigurationError? {
    do {
        _ = try ConfigLoader.parse(text, file: "n64.toml")
        return nil
    } catch {
        return error
    }
}

private func example(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Examples/\(name)").path
}

/// protomask's README example, byte for byte.
let protomaskREADME = """
# The NAT64 prefix to route to protomask
Nat64Prefix = "64:ff9b::/96"
# Optionally enable prometheus metrics on a port
Prometheus = "[::]:8080" # Optional, defaults to disabled

[Pool]
# All prefixes in the pool
Prefixes = ["192.0.2.0/24"]
# The maximum duration a prefix will be reserved for after becoming idle
MaxIdleDuration = 7200 # Optional, seconds. Defaults to 7200 (2 hours)
# Permanent address mappings
Static = [{ v4 = "192.0.2.2", v6 = "2001:db8:1::2" }]
"""

private let pool64 = """
[nat64]
mode = "pool"
prefix = "2001:db8:64::/96"
pool = ["192.0.2.0/28"]
"""

@Suite struct NAT64ConfigTests {
    @Test func protomaskFileIsAcceptedAsItIs() throws {
        let c = try ConfigLoader.parse(protomaskREADME, file: "protomask.toml")
        #expect(c.nat44 == nil)
        let n = try #require(c.nat64)
        #expect(n.fromProtomask && n.mode.name == "pool")
        #expect(n.prefix == IPv6Prefix("64:ff9b::/96")!)
        #expect(c.metrics.listen == "[::]:8080", "protomask's Prometheus key is [metrics] listen")
        #expect(n.poolMode?.pool.prefixes == [IPv4Prefix("192.0.2.0/24")!])
        #expect(n.poolMode?.pool.maxIdleSeconds == 7200)
        #expect(n.poolMode?.pool.staticMappings == [StaticAddressMapping(ipv4: IPv4Address("192.0.2.2")!, ipv6: IPv6Address("2001:db8:1::2")!)])
        #expect(n.ipv4Prefixes == [IPv4Prefix("192.0.2.0/24")!])
        #expect(c.tun.name == "swiftnat0")
    }

    @Test func protomaskDefaultsAndSwiftnatTables() throws {
        let c = try ConfigLoader.parse("[tun]\nname = \"nat64\"\n[Pool]\nPrefixes = [\"198.51.100.0/24\"]\n", file: "p.toml")
        #expect(c.tun.name == "nat64")
        #expect(c.nat64?.prefix == NAT64Settings.wellKnownPrefix)
        #expect(c.nat64?.poolMode?.pool.maxIdleSeconds == 7200)
        #expect(c.nat64?.poolMode?.pool.staticMappings.isEmpty == true)
        #expect(c.metrics.listen == nil)
    }

    @Test func protomaskErrorsUseItsKeyNames() {
        #expect(parseError("Nat64Prefix = \"64:ff9b::/96\"\n")?.key == "Pool")
        #expect(parseError("[Pool]\nMaxIdleDuration = 10\n")?.key == "Pool.Prefixes")
        #expect(parseError("[Pool]\nPrefixes = [\"192.0.2.0/24\"]\nMaxIdleDuration = \"2h\"\n")?.key == "Pool.MaxIdleDuration")
        #expect(parseError("[Pool]\nPrefixes = [\"192.0.2.0/24\"]\nMaxIdleDuration = 0\n")?.key == "Pool.MaxIdleDuration")
        #expect(parseError("[Pool]\nPrefixes = [\"192.0.2.0/24\"]\nStatic = [{ v4 = \"198.51.100.2\", v6 = \"2001:db8::2\" }]\n")?.key == "Pool.Static[0].v4")
        #expect(parseError("[Pool]\nPrefixes = [\"192.0.2.0/24\"]\nStatic = [{ v4 = \"192.0.2.2\", v6 = \"2001:db8::zz\" }]\n")?.key == "Pool.Static[0].v6")
        #expect(parseError("[Pool]\nPrefixes = [\"192.0.2.0/24\"]\nStatic = [{ v4 = \"192.0.2.2\", ipv6 = \"2001:db8::2\" }]\n")?.key == "Pool.Static[0].v6")
        #expect(parseError("[Pool]\nPrefixes = [\"192.0.2.0/24\"]\nStatic = [{ v4 = \"192.0.2.2\", v6 = \"2001:db8::2\", v5 = 1 }]\n")?.key == "Pool.Static[0].v5")
        #expect(parseError("[Pool]\nPrefixes = [\"192.0.2.1/24\"]\n")?.key == "Pool.Prefixes[0]")
        #expect(parseError("[Pool]\nPrefixes = [\"192.0.2.0/24\"]\nSize = 3\n")?.key == "Pool.Size")
        #expect(parseError("Nat64Prefix = \"64:ff9b::/95\"\n[Pool]\nPrefixes = [\"192.0.2.0/24\"]\n")?.key == "Nat64Prefix")
        #expect(parseError("Prometheus = \"localhost\"\n[Pool]\nPrefixes = [\"192.0.2.0/24\"]\n")?.key == "Prometheus")
        #expect(parseError("Colour = 1\n[Pool]\nPrefixes = [\"192.0.2.0/24\"]\n")?.key == "Colour")
        #expect(parseError(protomaskREADME + "\n[nat64]\nmode = \"pool\"\n")?.key == "nat64")
        let e = parseError("[Pool]\nPrefixes = [\"192.0.2.0/24\"]\nStatic = [{ v4 = \"192.0.2.0\", v6 = \"2001:db8::2\" }]\n")
        #expect(e?.problem.contains("network or broadcast") == true)
        #expect(e?.description.contains("n64.toml") == true)
    }

    @Test func nat64PoolSection() throws {
        let c = try ConfigLoader.parse(pool64 + """

        max_idle = 300
        static = [{ v4 = "192.0.2.3", v6 = "2001:db8:1::3" }]
        state_file = "/tmp/x.state"
        state_interval = 5
        lowest_ipv6_mtu = 1400
        check_non_global = false
        rfc6791_pool = ["198.51.100.254"]
        """, file: "t.toml")
        let n = try #require(c.nat64)
        #expect(!n.fromProtomask && n.mode.name == "pool")
        #expect(n.prefix == IPv6Prefix("2001:db8:64::/96")!)
        #expect(n.poolMode?.pool.maxIdleSeconds == 300)
        #expect(n.poolMode?.pool.staticMappings.count == 1)
        #expect(n.poolMode?.stateFile == "/tmp/x.state" && n.poolMode?.stateInterval == 5)
        #expect(n.lowestIPv6MTU == 1400 && !n.checkNonGlobal)
        #expect(n.rfc6791Pool == [IPv4Prefix("198.51.100.254/32")!])
        #expect(c.nat44 == nil)
    }

    @Test func nat64SIITSection() throws {
        let c = try ConfigLoader.parse("""
        [nat64]
        mode = "siit"
        prefix = "2001:db8:64::/96"
        eam = [{ v4 = "198.51.100.8/29", v6 = "2001:db8:1::8/125" }, { v4 = "198.51.100.20", v6 = "2001:db8:2::20" }]
        translatable = ["203.0.113.128/25"]
        """, file: "t.toml")
        let n = try #require(c.nat64)
        #expect(n.mode.name == "siit" && n.poolMode == nil)
        #expect(n.siitMode?.eam == [EAMSetting(ipv4: IPv4Prefix("198.51.100.8/29")!, ipv6: IPv6Prefix("2001:db8:1::8/125")!),
                          EAMSetting(ipv4: IPv4Prefix("198.51.100.20/32")!, ipv6: IPv6Prefix("2001:db8:2::20/128")!)])
        #expect(n.ipv4Prefixes.map(\.description) == ["198.51.100.8/29", "198.51.100.20/32", "203.0.113.128/25"])
    }

    @Test func nat64SectionErrors() {
        #expect(parseError("[nat64]\npool = [\"192.0.2.0/24\"]\n")?.key == "nat64.mode")
        let st = parseError("[nat64]\nmode = \"stateful\"\npool = [\"192.0.2.0/24\"]\n")
        #expect(st == nil, "stateful NAT64 is available (NAT64StatefulConfigTests)")
        #expect(parseError("[nat64]\nmode = \"pool\"\n")?.key == "nat64.pool")
        #expect(parseError(pool64 + "\neam = []\n")?.key == "nat64.eam")
        #expect(parseError(pool64 + "\nmax_idle = -1\n")?.key == "nat64.max_idle")
        #expect(parseError(pool64 + "\nstate_file = \"\"\n")?.key == "nat64.state_file")
        #expect(parseError(pool64 + "\nlowest_ipv6_mtu = 1000\n")?.key == "nat64.lowest_ipv6_mtu")
        #expect(parseError(pool64 + "\nstatic = [{ v4 = \"192.0.2.100\", v6 = \"2001:db8::1\" }]\n")?.key == "nat64.static[0].v4")
        #expect(parseError(pool64 + "\npoool = 1\n")?.key == "nat64.poool")
        #expect(parseError(pool64 + "\nrfc6791_pool = [\"192.0.2.8/29\"]\n")?.key == "nat64.rfc6791_pool[0]")
        #expect(parseError("[nat64]\nmode = \"pool\"\nprefix = \"2001:db8:64::/80\"\npool = [\"192.0.2.0/28\"]\n")?.key == "nat64.prefix")
        #expect(parseError("[nat64]\nmode = \"pool\"\nprefix = \"2001:db8:64:0:ff00::/96\"\npool = [\"192.0.2.0/28\"]\n")?.problem.contains("u octet") == true)
        #expect(parseError("[nat64]\nmode = \"siit\"\nprefix = \"2001:db8:64::/96\"\n")?.key == "nat64.eam")
        #expect(parseError("[nat64]\nmode = \"siit\"\npool = [\"192.0.2.0/28\"]\ntranslatable = [\"192.0.2.0/28\"]\n")?.key == "nat64.pool")
        #expect(parseError("[nat64]\nmode = \"siit\"\neam = [{ v4 = \"198.51.100.8/29\", v6 = \"2001:db8:1::/120\" }]\n")?.key == "nat64.eam[0].v6")
        #expect(parseError("[nat64]\nmode = \"siit\"\nprefix = \"2001:db8:64::/96\"\neam = [{ v4 = \"198.51.100.8/29\", v6 = \"2001:db8:1::8/125\" }]\ntranslatable = [\"198.51.100.0/24\"]\n")?.key == "nat64.eam")
        // RFC 6052 §3.1: documentation (non-global) IPv4 addresses cannot live in 64:ff9b::/96.
        let wk = parseError("[nat64]\nmode = \"siit\"\ntranslatable = [\"198.51.100.0/24\"]\n")
        #expect(wk?.key == "nat64.translatable[0]" && wk?.problem.contains("RFC 6052") == true)
        #expect(parseError("[nat64]\nmode = \"siit\"\ncheck_non_global = false\ntranslatable = [\"198.51.100.0/24\"]\n") == nil)
    }

    @Test func nat44AndNAT64TogetherMustNotShareAddresses() throws {
        let both = "[nat44]\npool = [\"198.51.100.1/32\"]\n" + pool64
        let c = try ConfigLoader.parse(both, file: "t.toml")
        #expect(c.nat44 != nil && c.nat64 != nil)
        let e = parseError("[nat44]\npool = [\"192.0.2.1/32\"]\n" + pool64)
        #expect(e?.key == "nat64.pool" && e?.problem.contains("overlaps the NAT44 pool") == true)
        #expect(parseError("[nat44]\ninside = [\"192.0.2.0/24\"]\npool = [\"198.51.100.1/32\"]\n" + pool64)?.key == "nat64.pool")
        #expect(parseError("")?.hint?.contains("[nat64]") == true)
    }

    @Test func examplesLoad() throws {
        let a = try ConfigLoader.load(file: example("nat64.toml"))
        #expect(a.nat64?.mode.name == "pool" && a.nat64?.poolMode?.stateFile == "/var/lib/swiftnat/nat64.state")
        #expect(a.nat64?.poolMode?.pool.staticMappings.count == 1)
        let b = try ConfigLoader.load(file: example("protomask.toml"))
        #expect(b.nat64?.fromProtomask == true && b.nat64?.poolMode?.pool.prefixes == [IPv4Prefix("192.0.2.0/24")!])
    }
}

@Suite struct NAT64StateFileTests {
    let rs = [
        AddressReservation(ipv4: IPv4Address("192.0.2.1")!, ipv6: IPv6Address("2001:db8:1::a")!, idleSeconds: 300),
        AddressReservation(ipv4: IPv4Address("192.0.2.2")!, ipv6: IPv6Address("2001:db8:1::b")!, idleSeconds: 5),
        AddressReservation(ipv4: IPv4Address("192.0.2.3")!, ipv6: IPv6Address("2001:db8:1::2")!, idleSeconds: 0, isStatic: true),
    ]

    @Test func roundTripAddsTheDowntime() throws {
        let text = NAT64StateFile.render(rs, writtenAt: 1_000_000)
        #expect(text.contains("swiftnat-nat64-state 1\nwritten 1000000\n192.0.2.1 2001:db8:1::a 300\n192.0.2.2 2001:db8:1::b 5\n"))
        #expect(!text.contains("2001:db8:1::2"), "static pairs come from the configuration, not the state file")
        let back = try NAT64StateFile.parse(text, file: "s", wallNow: 1_000_060)
        #expect(back.map(\.idleSeconds) == [360, 65])
        #expect(back.map(\.ipv4) == [rs[0].ipv4, rs[1].ipv4] && back.map(\.ipv6) == [rs[0].ipv6, rs[1].ipv6])
        // A clock that went backwards never makes a reservation younger.
        #expect(try NAT64StateFile.parse(text, file: "s", wallNow: 999_000).map(\.idleSeconds) == [300, 5])
    }

    @Test func atomicWriteAndLoad() throws {
        let dir = NSTemporaryDirectory() + "sn-state-\(getpid())-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/nat64.state"
        #expect(try NAT64StateFile.load(path: path) == nil, "no file yet: first start")
        try NAT64StateFile.write(rs, to: path, wallNow: 2_000_000)
        try NAT64StateFile.write(Array(rs.prefix(1)), to: path, wallNow: 2_000_010)
        #expect(try NAT64StateFile.load(path: path, wallNow: 2_000_010)?.count == 1)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(left == ["nat64.state"], "no temporary file left: \(left)")
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        do {
            try NAT64StateFile.write(rs, to: dir + "/missing/nat64.state")
            Issue.record("wrote into a missing folder")
        } catch {
            #expect(error.description.contains("cannot create"))
        }
    }

    @Test func corruptFilesAreExplained() {
        func problem(_ text: String) -> NAT64StateFile.StateError? {
            do {
                _ = try NAT64StateFile.parse(text, file: "s.state", wallNow: 0)
                return nil
            } catch {
                return error
            }
        }
        #expect(problem("")?.problem.contains("empty") == true)
        #expect(problem("hello\n")?.line == 1)
        #expect(problem("swiftnat-nat64-state 9\n")?.problem.contains("version 9") == true)
        #expect(problem("swiftnat-nat64-state 1\n192.0.2.1 2001:db8::1 5\n")?.problem.contains("written") == true)
        #expect(problem("swiftnat-nat64-state 1\nwritten 5\n192.0.2.300 2001:db8::1 5\n")?.line == 3)
        #expect(problem("swiftnat-nat64-state 1\nwritten 5\n192.0.2.1 2001:db8::g 5\n")?.problem.contains("IPv6") == true)
        #expect(problem("swiftnat-nat64-state 1\nwritten 5\n192.0.2.1 2001:db8::1 -5\n")?.problem.contains("seconds") == true)
        #expect(problem("swiftnat-nat64-state 1\nwritten 5\n192.0.2.1 2001:db8::1\n")?.line == 3)
        #expect(problem("swiftnat-nat64-state 1\nwritten 5\n\u{0}\u{1}\n")?.line == 3)
        #expect(problem("swiftnat-nat64-state 1\nwritten 5\n") == nil)
    }
}
