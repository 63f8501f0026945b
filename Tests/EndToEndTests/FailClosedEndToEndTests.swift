import Foundation
import NATLab
import NATRuntime
import Testing

// Failing closed (issue 11): a killed daemon must not let inside traffic leave untranslated, a restart
// must clean up what it left, and outside hosts must not reach inside hosts past swiftnat's filtering.
@Suite(.serialized, .enabled(if: canRunLab, "end-to-end tests need root, /dev/net/tun and iproute2 (ip): run `sudo swift test` or .ci/run"))
struct FailClosedEndToEndTests {
    /// Echo requests the namespace's kernel has received (its own ICMP counters, /proc/net/snmp).
    static func echoRequestsIn(_ net: LabNetwork, _ ns: String) -> Int {
        let snmp = net.exec(ns, ["cat", "/proc/net/snmp"]).stdout.split(separator: "\n")
        guard let header = snmp.first(where: { $0.hasPrefix("Icmp: InMsgs") }),
              let values = snmp.first(where: { $0.hasPrefix("Icmp: ") && !$0.hasPrefix("Icmp: InMsgs") }) else { return -1 }
        let keys = header.split(separator: " "), vals = values.split(separator: " ")
        guard let i = keys.firstIndex(of: "InEchos"), i < vals.count else { return -1 }
        return Int(vals[i]) ?? -1
    }

    /// The server can answer untranslated inside addresses: it routes the inside prefix back to the nat,
    /// so a leak would be seen (and answered), not lost for want of a route.
    static func routeInsideFromServer(_ net: LabNetwork) {
        net.exec(net.server, ["ip", "route", "add", "100.64.0.0/24", "via", LabNetwork.natOutsideAddress])
    }

    /// RFC 4787 §1's premise (all inside traffic goes through the NAT's translation) held when the daemon
    /// is killed: after SIGKILL, steered traffic meets the unreachable route behind the (gone) TUN route
    /// and never leaves with its 100.64.x source; a new start removes the earlier run's rules and routes,
    /// says so, and works.
    @Test func failClosed_killedDaemonLeaksNothingAndRestartCleansUp() throws {
        guard requireTools(["ping"]) else { return }
        let net = try LabNetwork(tag: "kill9")
        defer { net.destroy() }
        Self.routeInsideFromServer(net)
        let config = net.daemonConfig(behavior: "port-restricted-cone")
        let first = try net.startDaemon(binary: swiftnatBinary, config: config)
        let ping = net.exec(net.client, ["ping", "-c", "1", "-W", "2", LabNetwork.serverAddress])
        #expect(ping.ok, "no ping through the NAT: \(ping.stdout)")

        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        let end = Date().addingTimeInterval(5)
        while net.exec(net.nat, ["ip", "link", "show", "snat0"]).ok && Date() < end { usleep(50_000) }
        #expect(!net.exec(net.nat, ["ip", "link", "show", "snat0"]).ok, "the TUN device outlived the daemon")
        let rulesLeft = net.exec(net.nat, ["ip", "rule"]).stdout
        #expect(rulesLeft.contains("7744:"), "expected the killed daemon's rules to stay (the case under test): \(rulesLeft)")

        let before = Self.echoRequestsIn(net, net.server)
        let leak = net.exec(net.client, ["ping", "-c", "3", "-i", "0.2", "-W", "1", LabNetwork.serverAddress])
        #expect(!leak.ok, "inside traffic crossed untranslated after the daemon was killed: \(leak.stdout)")
        #expect(Self.echoRequestsIn(net, net.server) == before, "the server received echo requests from the inside prefix")
        // The client is told (ICMP unreachable from the nat), not left to time out.
        #expect(leak.stdout.contains("Unreachable"), "\(leak.stdout)")

        let second = try net.startDaemon(binary: swiftnatBinary, config: config)
        let log = net.log("daemon.log")
        #expect(log.contains("removed leftovers of an earlier run"), "\(log)")
        #expect(log.contains("rule 7744:"), "\(log)")
        let again = net.exec(net.client, ["ping", "-c", "1", "-W", "2", LabNetwork.serverAddress])
        #expect(again.ok, "no ping after the restart: \(again.stdout)\n\(log)")
        net.stop(second)
        #expect(net.log("daemon.log").contains("stopped: routes and snat0 removed"))
        let rules = net.exec(net.nat, ["ip", "rule"]).stdout
        #expect(!rules.contains("7742:") && !rules.contains("7743:") && !rules.contains("7744:"), "rules left after a clean stop: \(rules)")
        #expect(net.exec(net.nat, ["ip", "route", "show", "table", "7744"]).stdout.isEmpty, "table 7744 not empty after a clean stop")
    }

    /// RFC 4787 REQ-8 / RFC 5382 REQ-3 (filtering) mean something only if nothing else forwards to the
    /// inside: an unsolicited packet from outside addressed straight to an inside host is refused by
    /// default, and `[routing] block_outside_to_inside = false` gives that forwarding back.
    @Test func failClosed_unsolicitedPacketToInsideAddressIsNotDelivered() throws {
        guard requireTools(["ping"]) else { return }
        try withLab("direct") { net, _ in
            Self.routeInsideFromServer(net)
            let before = Self.echoRequestsIn(net, net.client)
            let o = net.exec(net.server, ["ping", "-c", "2", "-i", "0.2", "-W", "1", LabNetwork.clientAddress])
            #expect(!o.ok, "an outside host reached an inside address directly: \(o.stdout)")
            #expect(Self.echoRequestsIn(net, net.client) == before, "the client received echo requests from outside")
            let rules = net.exec(net.nat, ["ip", "rule"]).stdout
            #expect(rules.contains("7742:") && rules.contains("iif out0") && rules.contains("prohibit"), "\(rules)")
            // Traffic the NAT translates still reaches the client.
            #expect(net.exec(net.client, ["ping", "-c", "1", "-W", "2", LabNetwork.serverAddress]).ok)
        }
        try withLab("directoff", extraTables: "[routing]\nblock_outside_to_inside = false\n") { net, _ in
            Self.routeInsideFromServer(net)
            let o = net.exec(net.server, ["ping", "-c", "1", "-W", "2", LabNetwork.clientAddress])
            #expect(o.ok, "with block_outside_to_inside = false, plain forwarding should work: \(o.stdout)")
        }
    }
}
