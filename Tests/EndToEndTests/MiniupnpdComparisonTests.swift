import Foundation
import NATLab
import NATRuntime
import NATWire
import PortControl
import Testing

/// One client session (upnpc, natpmpc, a PCP MAP) run against miniupnpd (Debian's miniupnpd-nftables, with
/// the kernel's NAT) and then against swiftnat, in the same namespaces; the answers are compared action by
/// action and the table printed (the README's "Compared with miniupnpd" is read off it).
@Suite(.serialized, .enabled(if: canRunLab, "end-to-end tests need root, /dev/net/tun and iproute2 (ip): run `sudo swift test` or .ci/run"))
struct MiniupnpdComparisonTests {
    static let actions: [(String, [String])] = [
        ("status (-s)", ["-s"]),
        ("AddPortMapping (-a own address)", ["-e", "test", "-a", "100.64.0.2", "8080", "9191", "TCP", "3600"]),
        ("list (-l)", ["-l"]),
        ("AddPortMapping for another host (-a, secure mode)", ["-e", "x", "-a", "100.64.0.3", "8080", "9292", "TCP", "3600"]),
        ("AddPortMapping x2 (-r)", ["-r", "9301", "TCP", "9302", "UDP"]),
        ("DeletePortMapping (-d)", ["-d", "9191", "TCP"]),
        ("DeletePortMapping of a missing one (-d)", ["-d", "9191", "TCP"]),
    ]

    /// The lines of upnpc's output that carry the answer (not the banner).
    static func answer(_ o: Shell.Output) -> String {
        let keep = ["ExternalIPAddress", "failed", "redirected", "returned", "->", "Status"]
        let lines = (o.stdout + o.stderr).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { l in keep.contains { l.contains($0) } }
        return lines.isEmpty ? "(no answer, exit \(o.status))" : lines.joined(separator: " | ")
    }

    static func session(_ net: LabNetwork, pcp: [UInt8]) throws -> [String] {
        var out: [String] = []
        for (_, args) in actions {
            out.append(answer(net.exec(net.client, ["upnpc", "-i", "-u", "http://100.64.0.1:5000/rootDesc.xml"] + args, timeout: 20)))
        }
        let pmp = net.exec(net.client, ["natpmpc", "-g", "100.64.0.1", "-a", "9090", "8080", "tcp", "3600"], timeout: 15)
        out.append((pmp.stdout + pmp.stderr).split(separator: "\n")
            .filter { $0.contains("Public IP") || $0.contains("Mapped") || $0.contains("FAILED") || $0.contains("failure") }
            .joined(separator: " | "))
        let a = try PortControlEndToEndTests.exchange(net, pcp)
        out.append(a.map { "result \($0.count > 3 ? $0[3] : 255), lifetime \($0.count >= 8 ? PortControlEndToEndTests.u32($0, 4) : 0)" } ?? "(no answer)")
        return out
    }

    @Test func upnpIGD_sameSessionAgainstMiniupnpdAndSwiftnat() throws {
        guard requireTools(["upnpc", "natpmpc", "python3", "nft"]) else { return }
        guard let miniupnpd = Shell.which("miniupnpd") else {
            Issue.record("miniupnpd is missing: apt-get install miniupnpd-nftables (see .ci/run)")
            return
        }
        let net = try LabNetwork(tag: "pc-mini")
        defer { net.destroy() }
        let me = IPv6Address(ipv4Mapped: IPv4Address(LabNetwork.clientAddress)!)
        let pcp = PCP.request(.map, lifetime: 600, client: me, mapping: PCP.MappingData(
            nonce: [UInt8](repeating: 7, count: 12), protocolNumber: 6, internalPort: 8080, suggestedExternalPort: 9494, suggestedExternalAddress: .any))

        // miniupnpd with the kernel's NAT (its nftables chains, as its nft_init.sh makes them, plus masquerade).
        let rules = try script(net, "miniupnpd.nft", """
        table inet filter {
            chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
            chain miniupnpd { }
            chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
            chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; oifname "out0" masquerade; }
            chain prerouting_miniupnpd { }
            chain postrouting_miniupnpd { }
        }
        """)
        let conf = try script(net, "miniupnpd.conf", """
        ext_ifname=out0
        listening_ip=in0
        http_port=5000
        enable_natpmp=yes
        enable_upnp=yes
        secure_mode=yes
        system_uptime=yes
        min_lifetime=2
        uuid=73776966-746e-6174-0000-000000000099
        allow 1024-65535 100.64.0.0/24 1024-65535
        deny 0-65535 0.0.0.0/0 0-65535
        """)
        #expect(net.exec(net.nat, ["nft", "-f", rules]).ok)
        net.setSysctl(net.nat, "net/ipv4/ip_forward", "1")
        let m = try net.spawn(net.nat, [miniupnpd, "-f", conf, "-d", "-P", net.directory + "/miniupnpd.pid"], logName: "miniupnpd.log")
        #expect(net.waitForListener(net.nat, port: 5000, timeout: 10), "miniupnpd did not start: \(net.log("miniupnpd.log"))")
        let theirs = try Self.session(net, pcp: pcp)
        net.stop(m)
        _ = net.exec(net.nat, ["nft", "delete", "table", "inet", "filter"])

        // swiftnat, same namespaces, same session.
        let daemon = try net.startDaemon(binary: swiftnatBinary, config: net.daemonConfig(behavior: "port-restricted-cone",
                                                                                            extraTables: PortControlEndToEndTests.table))
        let ours = try Self.session(net, pcp: pcp)
        net.stop(daemon)

        var table = "| action | swiftnat | miniupnpd 2.3.1 |\n|---|---|---|\n"
        let names = Self.actions.map(\.0) + ["natpmpc -a (NAT-PMP)", "PCP MAP"]
        for (i, n) in names.enumerated() { table += "| \(n) | \(ours[i]) | \(theirs[i]) |\n" }
        print("swiftnat against miniupnpd, action by action:\n\(table)")
        try table.write(toFile: net.directory + "/comparison.md", atomically: true, encoding: .utf8)
        // swiftnat's side is what this project promises; miniupnpd's is recorded (it refuses a documentation
        // WAN address: "Reserved / private IP address ... Port forwarding is impossible").
        #expect(ours[1].contains("is redirected to internal 100.64.0.2:8080"), "\(ours[1])")
        #expect(ours[3].contains("606"), "\(ours[3])")
        #expect(ours[6].contains("714"), "\(ours[6])")
        #expect(ours[7].contains("Mapped public port 9090"), "\(ours[7])")
        #expect(ours[8].hasPrefix("result 0,"), "\(ours[8])")
        #expect(net.log("miniupnpd.log").contains("HTTP listening on port 5000"), "miniupnpd: \(net.log("miniupnpd.log"))")
    }
}
