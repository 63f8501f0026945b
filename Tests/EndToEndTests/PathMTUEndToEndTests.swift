import Foundation
import NATLab
import NATRuntime
import Testing

// Issue 11: path MTU discovery through the NAT when the outside link's MTU is below 1500.
@Suite(.serialized, .enabled(if: canRunLab, "end-to-end tests need root, /dev/net/tun and iproute2 (ip): run `sudo swift test` or .ci/run"))
struct PathMTUEndToEndTests {
    /// Pings 203.0.113.2 with DF set and 1400 bytes of data (1428-byte datagrams), twice; returns ping's
    /// output and what the client's route to the server says afterwards (its learnt path MTU).
    static func dfPing(_ net: LabNetwork) -> (String, String) {
        let o = net.exec(net.client, ["ping", "-M", "do", "-s", "1400", "-c", "2", "-i", "0.3", "-W", "2", LabNetwork.serverAddress])
        let route = net.exec(net.client, ["ip", "route", "get", LabNetwork.serverAddress]).stdout
        return (o.stdout + o.stderr, route)
    }

    /// RFC 5508 REQ-3, RFC 1191: the TUN device's MTU (1500, set in the file) is above the outside link's
    /// (1280): the NAT host's kernel answers the translated DF datagram with Fragmentation Needed from its
    /// inside-interface address to the pool address; swiftnat translates it back to the client, which
    /// learns the path MTU.
    @Test func rfc5508_req3_rfc1191_kernelFragmentationNeededReachesTheClient() throws {
        guard requireTools(["ping"]) else { return }
        try withLab("pmtu") { net, _ in
            #expect(net.exec(net.nat, ["ip", "link", "set", "out0", "mtu", "1280"]).ok)
            #expect(net.exec(net.nat, ["ip", "link", "show", "snat0"]).stdout.contains("mtu 1500"))
            #expect(net.exec(net.client, ["ping", "-c", "1", "-W", "2", LabNetwork.serverAddress]).ok)
            let (out, route) = Self.dfPing(net)
            #expect(out.contains("mtu = 1280") || out.contains("mtu=1280"), "no Fragmentation Needed at the client: \(out)")
            #expect(route.contains("mtu 1280"), "the client did not learn the path MTU: \(route)")
            let small = net.exec(net.client, ["ping", "-M", "do", "-s", "1200", "-c", "1", "-W", "2", LabNetwork.serverAddress])
            #expect(small.ok, "a datagram that fits does not cross: \(small.stdout)")
        }
    }

    /// By default (no `[tun] mtu` in the file) the TUN device takes the outside interface's MTU: the
    /// kernel refuses a too-big DF datagram before it is translated, and the client learns the path MTU.
    @Test func rfc1191_tunMTUIsTheOutsideInterfaceMTUByDefault() throws {
        guard requireTools(["ping"]) else { return }
        let net = try LabNetwork(tag: "pmtudef")
        defer { net.destroy() }
        #expect(net.exec(net.nat, ["ip", "link", "set", "out0", "mtu", "1280"]).ok)
        let config = net.daemonConfig(behavior: "port-restricted-cone").replacingOccurrences(of: "mtu = 1500\n", with: "")
        #expect(!config.contains("mtu ="))
        let daemon = try net.startDaemon(binary: swiftnatBinary, config: config)
        let log = net.log("daemon.log")
        #expect(log.contains("TUN MTU 1280, from out0") && log.contains("mtu=1280"), "\(log)")
        #expect(net.exec(net.nat, ["ip", "link", "show", "snat0"]).stdout.contains("mtu 1280"))
        let (out, route) = Self.dfPing(net)
        #expect(out.contains("mtu = 1280") || out.contains("mtu=1280"), "no Fragmentation Needed at the client: \(out)")
        #expect(route.contains("mtu 1280"), "the client did not learn the path MTU: \(route)")
        net.stop(daemon)
        #expect(net.log("daemon.log").contains("stopped: routes and snat0 removed"))
    }
}
