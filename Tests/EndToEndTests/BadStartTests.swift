import Foundation
import NATLab
import NATRuntime
import Testing

// A bad start must say what is wrong (file, key, what to do), exit non-zero and leave nothing behind.
@Suite(.serialized, .enabled(if: canRunLab, "needs root, /dev/net/tun and iproute2 (ip): run `sudo swift test` or .ci/run"))
struct BadStartTests {
    @Test func badConfigNamesFileAndKey() throws {
        let net = try LabNetwork(tag: "badcfg")
        defer { net.destroy() }
        let path = net.directory + "/bad.toml"
        try "[nat44]\npool = [\"198.51.100.1/32\"]\nbehavior = \"cone\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        let o = net.exec(net.nat, [swiftnatBinary, "run", "--config", path])
        #expect(o.status != 0)
        #expect(o.stderr.contains(path) && o.stderr.contains("nat44.behavior") && o.stderr.contains("full-cone"), "\(o.stderr)")
        #expect(!net.exec(net.nat, ["ip", "link", "show", "snat0"]).ok, "a TUN device was left behind")
    }

    @Test func notRootIsRefused() throws {
        guard let setpriv = Shell.which("setpriv") else {
            Issue.record("setpriv (util-linux) is missing")
            return
        }
        let net = try LabNetwork(tag: "noroot")
        defer { net.destroy() }
        try net.daemonConfig(behavior: "full-cone").write(toFile: net.directory + "/nat44.toml", atomically: true, encoding: .utf8)
        chmod(net.directory, 0o755)
        chmod(net.directory + "/nat44.toml", 0o644)
        let o = net.exec(net.nat, [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", swiftnatBinary, "run", "--config", net.directory + "/nat44.toml"])
        #expect(o.status != 0)
        #expect(o.stderr.contains("must run as root"), "\(o.stdout) \(o.stderr)")
    }

    @Test func tunNameTakenIsRefusedAndTheRunningDaemonKeepsWorking() throws {
        try withLab("taken") { net, _ in
            // Its own control socket (the first daemon's answers, and that is refused first): the TUN
            // name is what clashes.
            let second = try String(contentsOfFile: net.directory + "/nat44.toml", encoding: .utf8)
                .replacingOccurrences(of: net.controlSocket, with: net.directory + "/second.sock")
            try second.write(toFile: net.directory + "/second.toml", atomically: true, encoding: .utf8)
            let o = net.exec(net.nat, [swiftnatBinary, "run", "--config", net.directory + "/second.toml"])
            #expect(o.status != 0)
            #expect(o.stderr.contains("'snat0' already exists") && o.stderr.contains("[tun]"), "\(o.stderr)")
            let ping = net.exec(net.client, ["ping", "-c", "1", "-W", "2", LabNetwork.serverAddress])
            #expect(ping.ok, "the first daemon stopped working after a refused second start")
        }
    }

    @Test func routeFailureRollsBackEverything() throws {
        let net = try LabNetwork(tag: "rollback")
        defer { net.destroy() }
        // Something already owns table 7744's default route: the daemon's third route step fails.
        _ = net.exec(net.nat, ["ip", "route", "add", "default", "dev", "lo", "table", "7744"])
        let path = net.directory + "/nat44.toml"
        try net.daemonConfig(behavior: "full-cone").write(toFile: path, atomically: true, encoding: .utf8)
        let o = net.exec(net.nat, [swiftnatBinary, "run", "--config", path])
        #expect(o.status != 0)
        #expect(o.stderr.contains("route setup failed") && o.stderr.contains("nothing was left behind"), "\(o.stderr)")
        #expect(!net.exec(net.nat, ["ip", "link", "show", "snat0"]).ok, "TUN device left behind")
        #expect(net.exec(net.nat, ["ip", "route", "show", "198.51.100.1"]).stdout.isEmpty, "pool route left behind")
        let rules = net.exec(net.nat, ["ip", "rule"]).stdout
        #expect(!rules.contains("7743:") && !rules.contains("7744:"), "rules left behind: \(rules)")
    }
}
