import Foundation
import NAPT44
import NATCore
import NATRuntime
import NATWire
import Testing

private let minimal = """
[nat44]
pool = ["198.51.100.1/32"]
"""

private func parseError(_ text: String) -> ConfigurationError? {
    do {
        _ = try ConfigLoader.parse(text, file: "test.toml")
        return nil
    } catch {
        return error
    }
}

@Suite struct ConfigLoaderTests {
    @Test func minimalFileTakesTheDefaults() throws {
        let c = try ConfigLoader.parse(minimal, file: "test.toml")
        #expect(c.tun.name == "swiftnat0")
        #expect(c.tun.mtu == 1500)
        #expect(c.routing.table == 7744)
        #expect(c.nat44?.pool == [IPv4Prefix("198.51.100.1/32")!])
        #expect(c.nat44?.insidePrefixes == [IPv4Prefix("100.64.0.0/10")!])
        #expect(c.nat44?.udp == .portRestrictedCone)
        #expect(c.insideInterfaces.isEmpty)
        #expect(c.tun.offload)
        #expect(c.tun.txQueueLength == nil)
    }

    @Test func tunOffloadAndQueueLength() throws {
        let c = try ConfigLoader.parse("[tun]\noffload = false\ntxqueuelen = 4000\n" + minimal, file: "test.toml")
        #expect(!c.tun.offload)
        #expect(c.tun.txQueueLength == 4000)
        #expect(parseError("[tun]\noffload = 1\n" + minimal)?.key == "tun.offload")
        #expect(parseError("[tun]\ntxqueuelen = 0\n" + minimal)?.key == "tun.txqueuelen")
    }

    @Test func groInterfacesAndFlushTimeout() throws {
        let d = try ConfigLoader.parse(minimal, file: "test.toml")
        #expect(d.routing.groInterfaces == nil && d.routing.groFlushTimeoutMicroseconds == nil)
        let c = try ConfigLoader.parse("[routing]\ngro_interfaces = [\"eth1\", \"eth2\"]\ngro_flush_timeout_us = 20\n" + minimal, file: "test.toml")
        #expect(c.routing.groInterfaces == ["eth1", "eth2"])
        #expect(c.routing.groFlushTimeoutMicroseconds == 20)
        let off = try ConfigLoader.parse("[routing]\ngro_interfaces = []\n" + minimal, file: "test.toml")
        #expect(off.routing.groInterfaces == [])
        #expect(parseError("[routing]\ngro_flush_timeout_us = -1\n" + minimal)?.key == "routing.gro_flush_timeout_us")
        #expect(parseError("[routing]\ngro_interfaces = [\"a/b\"]\n" + minimal)?.key == "routing.gro_interfaces[0]")
        #expect(parseError("[routing]\ngro_interfaces = \"eth1\"\n" + minimal)?.key == "routing.gro_interfaces")
    }

    /// Issue 11, failing closed: outside-to-inside forwarding is refused unless turned off; the refusing
    /// rules sit at priority - 2, so priority starts at 3.
    @Test func blockOutsideToInsideKey() throws {
        #expect(try ConfigLoader.parse(minimal, file: "test.toml").routing.blockOutsideToInside)
        let off = try ConfigLoader.parse("[routing]\nblock_outside_to_inside = false\n" + minimal, file: "test.toml")
        #expect(!off.routing.blockOutsideToInside)
        #expect(parseError("[routing]\nblock_outside_to_inside = 0\n" + minimal)?.key == "routing.block_outside_to_inside")
        #expect(parseError("[routing]\npriority = 2\n" + minimal)?.key == "routing.priority")
    }

    /// Issue 11 / RFC 1191: without `[tun] mtu` the TUN device is sized from the outside interface; the key turns that off.
    @Test func tunMTUFromOutsideInterfaceUnlessGiven() throws {
        #expect(try ConfigLoader.parse(minimal, file: "test.toml").tun.sizeMTUFromOutsideInterface)
        let given = try ConfigLoader.parse("[tun]\nmtu = 1500\n" + minimal, file: "test.toml")
        #expect(!given.tun.sizeMTUFromOutsideInterface && given.tun.mtu == 1500)
    }

    @Test func exampleFileLoads() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Examples/nat44.toml").path
        let c = try ConfigLoader.load(file: path)
        #expect(c.tun.name == "swiftnat0")
        #expect(c.insideInterfaces == ["eth1"])
        #expect(c.outsideInterface == "eth0")
        #expect(c.nat44?.forwards.count == 2)
        #expect(c.nat44?.forwards[1].outsidePorts == 5000...5009)
        #expect(c.nat44?.forwards[1].proto == IPProtocol.udp)
        #expect(c.nat44?.redirects.count == 1)
        #expect(c.nat44?.staticNAT == [StaticNAT(inside: IPv4Address("100.64.0.20")!, outside: IPv4Address("198.51.100.100")!)])
        #expect(c.nat44?.ports == PortSet(ranges: [1024...65535]))
        #expect(c.nat44?.timeouts.synHoldMilliseconds == 6000)
        #expect(c.nat44?.limits.maxSessionsPerHost == 4096)
    }

    @Test(arguments: Behavior.presets.map(\.0))
    func presetsMapToBehaviors(name: String) throws {
        let c = try ConfigLoader.parse(minimal + "\nbehavior = \"\(name)\"\n", file: "t.toml")
        #expect(c.nat44?.tcp == Behavior(preset: name))
        #expect(c.nat44?.udp == Behavior(preset: name))
        #expect(c.nat44?.icmp == Behavior(preset: name))
    }

    @Test func perProtocolBehaviorTable() throws {
        let c = try ConfigLoader.parse(minimal + """

        behavior = "symmetric"
        udp = { mapping = "endpoint-independent", filtering = "address-dependent" }
        """, file: "t.toml")
        #expect(c.nat44?.udp == .restrictedCone)
        #expect(c.nat44?.tcp == .symmetric)
    }

    @Test func mapEPortSet() throws {
        let c = try ConfigLoader.parse(minimal + """

        [nat44.ports]
        psid = 52
        psid_length = 8
        offset_bits = 4
        """, file: "t.toml")
        #expect(c.nat44?.ports == PortSet(psid: 52, psidLength: 8, offsetBits: 4)!)
        #expect(c.nat44?.ports.count == 240)
    }

    @Test func unknownKeyIsNamed() {
        let e = parseError(minimal + "\nbehaviour = \"full-cone\"\n")
        #expect(e?.key == "nat44.behaviour")
        #expect(e?.problem.contains("not a known key") == true)
        #expect(parseError("[tun]\nnmae = \"x\"\n" + minimal)?.key == "tun.nmae")
        #expect(parseError(minimal + "\n[nat44.timeouts]\nudpp = 300\n")?.key == "nat44.timeouts.udpp")
        #expect(parseError("[extra]\n" + minimal)?.key == "extra")
    }

    @Test func typeErrorsNameFileAndKey() {
        let e = parseError("[tun]\nmtu = \"big\"\n" + minimal)
        #expect(e?.key == "tun.mtu")
        #expect(e?.file == "test.toml")
        #expect(e?.description.contains("test.toml") == true)
        #expect(e?.problem.contains("integer") == true)
        #expect(parseError("[nat44]\npool = \"198.51.100.1\"\n")?.key == "nat44.pool")
        #expect(parseError("[nat44]\npool = [1]\n")?.key == "nat44.pool[0]")
    }

    @Test func badValuesAreRefused() {
        #expect(parseError("[nat44]\npool = [\"198.51.100.300\"]\n")?.key == "nat44.pool[0]")
        #expect(parseError("[nat44]\npool = [\"198.51.100.1/24\"]\n")?.problem.contains("host bits") == true)
        #expect(parseError(minimal + "\nbehavior = \"cone\"\n")?.key == "nat44.behavior")
        #expect(parseError(minimal + "\nunsolicited_syn = \"reset\"\n")?.key == "nat44.unsolicited_syn")
        #expect(parseError("[tun]\nmtu = 100\n" + minimal)?.key == "tun.mtu")
        #expect(parseError("[tun]\nname = \"a-name-that-is-too-long\"\n" + minimal)?.key == "tun.name")
        #expect(parseError("[tun]\nqueues = 65\n" + minimal)?.key == "tun.queues")
        #expect(parseError("[routing]\ntable = 254\n" + minimal)?.key == "routing.table")
        #expect(parseError(minimal + "\n[nat44.ports]\nranges = [\"2000-1000\"]\n")?.key == "nat44.ports.ranges[0]")
        #expect(parseError(minimal + "\n[nat44.ports]\nranges = [\"1024-65535\"]\npsid = 1\npsid_length = 4\n")?.key == "nat44.ports.ranges")
        #expect(parseError("[nat44]\n")?.key == "nat44.pool")
        #expect(parseError("")?.key == "nat44")
        #expect(parseError("[nat44\n")?.problem.contains("not valid TOML") == true)
    }

    @Test func forwardsParseAndAreChecked() throws {
        let c = try ConfigLoader.parse(minimal + """

        [[nat44.forward]]
        protocol = "tcp"
        outside = "198.51.100.1:8080"
        inside = "100.64.0.2:80"
        """, file: "t.toml")
        #expect(c.nat44?.forwards == [PortForward(proto: IPProtocol.tcp, outsideAddress: IPv4Address("198.51.100.1")!,
                                                 outsidePorts: 8080...8080, insideAddress: IPv4Address("100.64.0.2")!, insidePort: 80)])
        let e = parseError(minimal + "\n[[nat44.forward]]\nprotocol = \"tcp\"\noutside = \"192.0.2.1:80\"\ninside = \"100.64.0.2:80\"\n")
        #expect(e?.key == "nat44.forward[0].outside")
        #expect(e?.problem.contains("not in the pool") == true)
        #expect(parseError(minimal + "\n[[nat44.forward]]\nprotocol = \"sctp\"\noutside = \"198.51.100.1:80\"\ninside = \"100.64.0.2:80\"\n")?.key == "nat44.forward[0].protocol")
        #expect(parseError(minimal + "\n[[nat44.forward]]\nprotocol = \"tcp\"\noutside = \"198.51.100.1\"\ninside = \"100.64.0.2:80\"\n")?.key == "nat44.forward[0].outside")
        #expect(parseError(minimal + "\n[[nat44.forward]]\nprotocol = \"tcp\"\noutside = \"198.51.100.1:80\"\ninside = \"100.64.0.2:80\"\ncolour = 1\n")?.key == "nat44.forward[0].colour")
    }

    @Test func engineValidationIsReportedWithTOMLKeys() {
        let e = parseError(minimal + "\n[nat44.timeouts]\nudp = 30\n")
        #expect(e?.key == "nat44.timeouts.udp")
        #expect(e?.problem.contains("RFC 4787") == true)
        #expect(parseError("[nat44]\ninside = [\"100.64.0.0/10\"]\npool = [\"100.64.1.0/24\"]\n")?.key == "nat44.pool[0]")
    }

    @Test func missingFileSaysSo() {
        do {
            _ = try ConfigLoader.load(file: "/nonexistent/swiftnat.toml")
            Issue.record("loaded a missing file")
        } catch {
            #expect(error.file == "/nonexistent/swiftnat.toml")
            #expect(error.problem.contains("no such file"))
        }
    }
}

/// Issue 11: masquerade on one of the host's own addresses is refused, with the key and what to do.
@Suite struct HostAddressConflictTests {
    @Test func poolOnAHostAddressIsNamed() throws {
        let c = try ConfigLoader.parse("[nat44]\ninside = [\"100.64.0.0/24\"]\npool = [\"203.0.113.0/29\"]\n", file: "m.toml")
        let host: [(interface: String, address: IPv4Address)] = [("lo", IPv4Address("127.0.0.1")!), ("out0", IPv4Address("203.0.113.1")!)]
        let m = try #require(c.hostAddressConflict(hostAddresses: host))
        #expect(m.hasPrefix("m.toml: key 'nat44.pool[0]': 203.0.113.1 is an address of this host (out0)") && m.contains("203.0.113.10/32"), "\(m)")
        #expect(c.hostAddressConflict(hostAddresses: [("out0", IPv4Address("203.0.113.9")!)]) == nil)
        let s = try ConfigLoader.parse("[nat44]\ninside = [\"100.64.0.0/24\"]\npool = [\"198.51.100.1/32\"]\n[[nat44.static_nat]]\ninside = \"100.64.0.5\"\noutside = \"203.0.113.1\"\n", file: "m.toml")
        #expect(s.hostAddressConflict(hostAddresses: host)?.contains("nat44.static_nat[0].outside") == true)
    }
}
