import Foundation
import NATLab
import NATRuntime
import Testing

// Issue 11, masquerade on the outside interface's own address: refused at start with what to do, and
// nothing left behind (it used to start, add proxy ARP, and translate nothing).
@Suite(.serialized, .enabled(if: canRunLab, "end-to-end tests need root, /dev/net/tun and iproute2 (ip): run `sudo swift test` or .ci/run"))
struct MasqueradeEndToEndTests {
    /// RFC 4787 §4 (a NAT's external address): a pool equal to the outside interface's address
    /// (203.0.113.1 on out0) is refused, naming the key and the interface and saying what to use instead;
    /// the host keeps working as before.
    @Test func rfc4787_outsideInterfaceAddressAsPoolIsRefusedWithWhatToDo() throws {
        guard requireTools(["ping"]) else { return }
        let net = try LabNetwork(tag: "masq")
        defer { net.destroy() }
        let path = net.directory + "/masq.toml"
        let config = net.daemonConfig(behavior: "port-restricted-cone")
            .replacingOccurrences(of: "pool = [\"198.51.100.1/32\"]", with: "pool = [\"\(LabNetwork.natOutsideAddress)/32\"]")
            + "\n[control]\nsocket = \"\(net.controlSocket)\"\nstate_file = \"\"\nsessions_file = \"\"\n"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        let o = net.exec(net.nat, [swiftnatBinary, "run", "--config", path], timeout: 20)
        #expect(o.status != 0)
        #expect(o.stderr.contains(path) && o.stderr.contains("nat44.pool[0]") && o.stderr.contains("203.0.113.1 is an address of this host (out0)")
                && o.stderr.contains("203.0.113.10/32"), "\(o.stderr)")
        #expect(!net.exec(net.nat, ["ip", "link", "show", "snat0"]).ok, "TUN device left behind")
        #expect(net.exec(net.nat, ["ip", "neigh", "show", "proxy"]).stdout.isEmpty, "proxy ARP left behind")
        let rules = net.exec(net.nat, ["ip", "rule"]).stdout
        #expect(!rules.contains("7744:"), "rules left behind: \(rules)")
        // The host's own traffic on that address is untouched.
        #expect(net.exec(net.nat, ["ping", "-c", "1", "-W", "2", LabNetwork.serverAddress]).ok)
        // The address the message suggests works (proxy ARP on out0's subnet).
        let suggested = net.daemonConfig(behavior: "port-restricted-cone")
            .replacingOccurrences(of: "pool = [\"198.51.100.1/32\"]", with: "pool = [\"203.0.113.10/32\"]")
        let daemon = try net.startDaemon(binary: swiftnatBinary, config: suggested)
        let ping = net.exec(net.client, ["ping", "-c", "1", "-W", "2", LabNetwork.serverAddress])
        #expect(ping.ok, "the suggested pool address does not work: \(ping.stdout)")
        net.stop(daemon)
    }
}
