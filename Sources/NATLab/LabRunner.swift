import Foundation
import NAPT44
import NATRuntime

/// `swiftnat lab`: builds the namespaces, runs the daemon in the middle, sends ping, HTTP and UDP
/// from client to server, shows what crossed and the mappings made, and cleans up (also on Ctrl-C).
/// It needs `ip` (iproute2), `sh` and the swiftnat binary only: the traffic on both sides comes from the
/// binary's own `lab-tool` subcommands (``LabPing``, ``LabHTTPServer``, ``LabHTTPGet``, ``LabUDPEcho``,
/// ``LabUDPSend``) run inside the namespaces.
public enum LabRunner {
    public struct LabFailure: Error, CustomStringConvertible {
        public var description: String
    }

    nonisolated(unsafe) static var current: LabNetwork?
    nonisolated(unsafe) static var signalSources: [DispatchSourceSignal] = []

    /// `nat64`: nil for the NAT44 lab, "pool" or "siit" for an IPv6-only client behind the NAT64.
    /// `nptv6`: a dual-stack client whose IPv6 crosses NPTv6 (and its IPv4 NAT44, in the same daemon).
    public static func run(behavior: String, keep: Bool, verbose: Bool, binary: String, nat64: String? = nil,
                           nptv6: Bool = false) throws(LabFailure) {
        if let why = LabNetwork.unavailableReason() {
            throw LabFailure(description: "the lab \(why): run it as `sudo \(binary) lab`")
        }
        if let m = nat64, m != "pool" && m != "siit" {
            throw LabFailure(description: "--nat64-mode '\(m)' is not a NAT64 mode: use pool or siit")
        }
        guard Behavior(preset: behavior) != nil else {
            throw LabFailure(description: "--behavior '\(behavior)' is not a preset: use one of \(Behavior.presets.map(\.0).joined(separator: ", "))")
        }
        // Ctrl-C and SIGTERM: remove everything, then leave.
        for s in [SIGINT, SIGTERM] {
            signal(s, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: s, queue: .global())
            src.setEventHandler {
                print("\ninterrupted: removing the lab")
                current?.destroy()
                exit(130)
            }
            src.resume()
            signalSources.append(src)
        }

        if nptv6 && nat64 != nil {
            throw LabFailure(description: "--nptv6 and --nat64 are two different labs: pick one")
        }
        if nptv6 {
            print("== building namespaces (client 100.64.0.2, 2001:db8:1::2 | nat 100.64.0.1, 2001:db8:1::1, 203.0.113.1, \(LabNetwork.natOutsideAddress6) | server 203.0.113.2, \(LabNetwork.outsideServerAddress6))")
        } else if nat64 != nil {
            print("== building namespaces (IPv6-only client 2001:db8:1::2 | nat 2001:db8:1::1, 203.0.113.1, NAT64 prefix \(LabNetwork.nat64Prefix) | server 203.0.113.2)")
        } else {
            print("== building namespaces (client 100.64.0.2 | nat 100.64.0.1, 203.0.113.1, pool 198.51.100.1 | server 203.0.113.2, .3)")
        }
        let net: LabNetwork
        do { net = try LabNetwork(ipv6: nat64 != nil, ipv4Client: nat64 == nil, outsideIPv6: nptv6, verbose: verbose) } catch { throw LabFailure(description: error.description) }
        current = net
        defer { if !keep { net.destroy() } }
        do {
            if nptv6 {
                try demoNPTv6(net, behavior: behavior, keep: keep, verbose: verbose, binary: binary)
            } else if let nat64 {
                try demo64(net, mode: nat64, keep: keep, verbose: verbose, binary: binary)
            } else {
                try demo(net, behavior: behavior, keep: keep, verbose: verbose, binary: binary)
            }
        } catch let e as LabFailure {
            throw e
        } catch {
            throw LabFailure(description: "\(error)")
        }
    }

    static func demo(_ net: LabNetwork, behavior: String, keep: Bool, verbose: Bool, binary: String) throws {
        print("   \(net.client), \(net.nat), \(net.server)")
        print("== starting swiftnat in \(net.nat) (behavior \(behavior))")
        let daemon = try net.startDaemon(binary: binary, config: net.daemonConfig(behavior: behavior), verbose: verbose)
        for line in net.log("daemon.log").split(separator: "\n") where line.contains("ready:") { print("   " + line) }

        try "hello from 203.0.113.2 through swiftnat\n".write(toFile: net.directory + "/index.html", atomically: true, encoding: .utf8)
        try startServers(net, keep: keep, binary: binary)

        var ok = true
        ok = traffic(net, binary: binary, title: "ping 203.0.113.2 from the client", "ping", "-c", "3", "-i", "0.2", "-W", "2", LabNetwork.serverAddress) && ok
        ok = traffic(net, binary: binary, title: "HTTP: GET http://203.0.113.2:8000/ from the client",
                     "http-get", "--timeout", "5", "http://\(LabNetwork.serverAddress):8000/index.html") && ok
        showServerLog(net, "http.log", as: "server log (the source it saw)")
        ok = traffic(net, binary: binary, title: "UDP: datagram from 100.64.0.2:40000 to 203.0.113.2:7777 (echoed back)",
                     "udp-send", "--source-port", "40000", LabNetwork.serverAddress, "7777", "udp through swiftnat") && ok
        showServerLog(net, "udp.log", as: "server log")

        showControl(net, binary: binary, ["sessions"], title: "sessions the daemon holds (swiftnat sessions, over the control socket)")
        showControl(net, binary: binary, ["stats"], title: "its counters (swiftnat stats)", filter: { $0.hasPrefix("nat44:") || $0.contains("_packets") || $0.contains("sessions") })

        finish(net, daemon: daemon, keep: keep, client: "inside host 100.64.0.2", nat: "the NAT",
               server: "outside host 203.0.113.2 / .3",
               extra: "Sessions: sudo \(binary) sessions --socket \(net.controlSocket)   (also: status, stats, forwards add …)\n"
                   + toolsNote(net, binary: binary, ping: LabNetwork.serverAddress, url: "http://\(LabNetwork.serverAddress):8000/"))
        if !ok { throw LabFailure(description: "some traffic did not cross the NAT; daemon log:\n\(net.log("daemon.log"))") }
        print("== done: ping, HTTP and UDP crossed swiftnat")
    }

    /// The NAT64 lab: an IPv6-only client reaches the IPv4-only server through the daemon's NAT64.
    static func demo64(_ net: LabNetwork, mode: String, keep: Bool, verbose: Bool, binary: String) throws {
        let server6 = LabNetwork.serverAddress6
        print("   \(net.client), \(net.nat), \(net.server)")
        print("== starting swiftnat in \(net.nat) (NAT64 \(mode): \(mode == "pool" ? "pool \(LabNetwork.nat64Pool), one IPv4 address per IPv6 host" : "EAM 198.51.100.72 <-> \(LabNetwork.clientAddress6)"))")
        let daemon = try net.startDaemon(binary: binary, config: net.nat64Config(mode: mode), verbose: verbose)
        for line in net.log("daemon.log").split(separator: "\n") where line.contains("ready:") { print("   " + line) }

        try "hello from 203.0.113.2, an IPv4-only server, through swiftnat's NAT64\n".write(toFile: net.directory + "/index.html", atomically: true, encoding: .utf8)
        try startServers(net, keep: keep, binary: binary)

        var ok = true
        let v4 = Shell.run(["ip", "-n", net.client, "-4", "-o", "addr", "show", "dev", "eth0"], timeout: 10)
        print("== the client has no IPv4 address: \(v4.ok && v4.stdout.isEmpty ? "none" : "FAILED")")
        ok = traffic(net, binary: binary, title: "ping \(server6) (203.0.113.2 under the prefix, RFC 6052)",
                     "ping", "-c", "3", "-i", "0.2", "-W", "2", server6) && ok
        ok = traffic(net, binary: binary, title: "HTTP: GET http://[\(server6)]:8000/ from the client",
                     "http-get", "--timeout", "5", "http://[\(server6)]:8000/index.html") && ok
        showServerLog(net, "http.log", as: "server log (the IPv4 source it saw)")
        ok = traffic(net, binary: binary, title: "UDP: datagram to [\(server6)]:7777 (echoed back)",
                     "udp-send", server6, "7777", "udp over NAT64") && ok
        showServerLog(net, "udp.log", as: "server log")

        if mode == "pool" {
            showControl(net, binary: binary, ["reservations"], title: "what the NAT64 holds (swiftnat reservations, over the control socket)")
        }
        showControl(net, binary: binary, ["stats"], title: "its counters (swiftnat stats)", filter: { $0.hasPrefix("nat64:") || $0.contains("_packets") })

        finish(net, daemon: daemon, keep: keep, client: "IPv6-only host 2001:db8:1::2",
               nat: "the NAT64", server: "IPv4 host 203.0.113.2",
               extra: toolsNote(net, binary: binary, ping: server6, url: "http://[\(server6)]:8000/"))
        if !ok { throw LabFailure(description: "some traffic did not cross the NAT64; daemon log:\n\(net.log("daemon.log"))") }
        print("== done: ping, HTTP and UDP from an IPv6-only host crossed swiftnat's NAT64 to an IPv4-only server")
    }

    /// The NPTv6 lab: the client's IPv6 (2001:db8:1::2, inside prefix 2001:db8:1::/48) reaches the server
    /// (2001:db8:100::2) as the same host under the outside prefix 2001:db8:2::/48; its IPv4 crosses NAT44
    /// in the same daemon and TUN device.
    static func demoNPTv6(_ net: LabNetwork, behavior: String, keep: Bool, verbose: Bool, binary: String) throws {
        let server6 = LabNetwork.outsideServerAddress6
        print("   \(net.client), \(net.nat), \(net.server)")
        print("== starting swiftnat in \(net.nat) (NPTv6 \(LabNetwork.nptv6InsidePrefix) <-> \(LabNetwork.nptv6OutsidePrefix), and NAT44 behavior \(behavior))")
        let daemon = try net.startDaemon(binary: binary, config: net.nptv6Config(nat44: behavior), verbose: verbose)
        for line in net.log("daemon.log").split(separator: "\n") where line.contains("ready:") { print("   " + line) }
        let mapped = LabRunner.nptv6Mapped(LabNetwork.clientAddress6)
        print("== RFC 6296 §3.6: \(LabNetwork.clientAddress6) maps to \(mapped) (prefix replaced, subnet word adjusted: checksum-neutral)")

        try "hello from \(server6) through swiftnat's NPTv6\n".write(toFile: net.directory + "/index.html", atomically: true, encoding: .utf8)
        let duration: Double = keep ? 3600 : 120
        try net.startToolHTTPServer(binary: binary, net.server, address: server6, port: 8000, logName: "http.log", duration: duration)
        try net.startToolUDPEcho(binary: binary, net.server, address: server6, port: 7777, logName: "udp.log", duration: duration)

        var ok = true
        ok = traffic(net, binary: binary, title: "ping \(server6) from the client", "ping", "-c", "3", "-i", "0.2", "-W", "2", server6) && ok
        ok = traffic(net, binary: binary, title: "HTTP: GET http://[\(server6)]:8000/ from the client",
                     "http-get", "--timeout", "5", "http://[\(server6)]:8000/index.html") && ok
        showServerLog(net, "http.log", as: "server log (the source it saw)")
        ok = traffic(net, binary: binary, title: "UDP: datagram to [\(server6)]:7777 (echoed back)",
                     "udp-send", server6, "7777", "udp through NPTv6") && ok
        showServerLog(net, "udp.log", as: "server log")
        let seen = net.log("http.log") + net.log("udp.log")
        print("== the server saw the client as \(mapped): \(seen.contains(mapped) ? "yes" : "NO")")
        ok = seen.contains(mapped) && ok
        ok = traffic(net, binary: binary, title: "and IPv4 through NAT44 in the same daemon: ping 203.0.113.2",
                     "ping", "-c", "2", "-i", "0.2", "-W", "2", LabNetwork.serverAddress) && ok
        showControl(net, binary: binary, ["stats"], title: "its counters (swiftnat stats)",
                    filter: { $0.hasPrefix("nptv6:") || $0.hasPrefix("nat44:") || $0.contains("_packets") || $0.contains("icmp_errors") })

        finish(net, daemon: daemon, keep: keep, client: "inside host 2001:db8:1::2 (and 100.64.0.2)",
               nat: "the NPTv6 (and NAT44)", server: "outside host \(server6) (and 203.0.113.2)",
               extra: toolsNote(net, binary: binary, ping: server6, url: "http://[\(server6)]:8000/"))
        if !ok { throw LabFailure(description: "some traffic did not cross NPTv6; daemon log:\n\(net.log("daemon.log"))") }
        print("== done: ping, HTTP and UDP crossed swiftnat's NPTv6; the server saw \(mapped)")
    }

    /// RFC 6296 §3.1 for the lab's /48 prefixes, computed here on its own (not with the translator): the
    /// inside prefix is replaced by the outside one and word 3 (the subnet ID) gets the one's complement
    /// difference of the two prefixes' sums, so the address's checksum contribution stays the same.
    public static func nptv6Mapped(_ inside: String, insidePrefix: String = LabNetwork.nptv6InsidePrefix,
                                   outsidePrefix: String = LabNetwork.nptv6OutsidePrefix) -> String {
        func words(_ a: String) -> [UInt32] {
            var b = in6_addr()
            _ = inet_pton(AF_INET6, a, &b)
            return withUnsafeBytes(of: &b) { r in (0..<8).map { UInt32(r[2 * $0]) << 8 | UInt32(r[2 * $0 + 1]) } }
        }
        func add(_ a: UInt32, _ b: UInt32) -> UInt32 { let s = a + b; return (s & 0xFFFF) + (s >> 16) }
        let i = words(String(insidePrefix.split(separator: "/")[0])), o = words(String(outsidePrefix.split(separator: "/")[0]))
        let si = i[0..<3].reduce(0, add), so = o[0..<3].reduce(0, add)
        let adjustment = add(si, ~so & 0xFFFF)
        var w = words(inside)
        w[0] = o[0]; w[1] = o[1]; w[2] = o[2]
        var x = add(w[3], adjustment)
        if x == 0xFFFF { x = 0 }
        w[3] = x
        var b = in6_addr()
        withUnsafeMutableBytes(of: &b) { r in for k in 0..<8 { r[2 * k] = UInt8(w[k] >> 8); r[2 * k + 1] = UInt8(w[k] & 0xFF) } }
        var text = [CChar](repeating: 0, count: 64)
        _ = inet_ntop(AF_INET6, &b, &text, 64)
        return String(cString: text)
    }

    /// Starts the lab's HTTP server (port 8000) and UDP echo server (port 7777) on 203.0.113.2 in the server
    /// namespace: `binary lab-tool http-serve` and `udp-echo`. With `--keep` they stay up for an hour.
    static func startServers(_ net: LabNetwork, keep: Bool, binary: String) throws {
        let duration: Double = keep ? 3600 : 120
        try net.startToolHTTPServer(binary: binary, net.server, address: LabNetwork.serverAddress, port: 8000,
                                    logName: "http.log", duration: duration)
        try net.startToolUDPEcho(binary: binary, net.server, address: LabNetwork.serverAddress, port: 7777,
                                 logName: "udp.log", duration: duration)
    }

    /// Runs `binary lab-tool <args>` in the client namespace under `== title`, prints its output indented
    /// (and why it failed), and says whether it succeeded.
    static func traffic(_ net: LabNetwork, binary: String, title: String, _ args: String...) -> Bool {
        print("== \(title)")
        let o = net.exec(net.client, [binary, "lab-tool"] + args, timeout: 15)
        for l in o.stdout.split(separator: "\n") { print("   " + l) }
        if !o.ok {
            let why = o.timedOut ? "timed out" : o.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            print("   FAILED: \(why.isEmpty ? "exit status \(o.status)" : why)")
        }
        return o.ok
    }

    /// How to send the lab's traffic again by hand from a kept lab (`--keep`).
    static func toolsNote(_ net: LabNetwork, binary: String, ping: String, url: String) -> String {
        """
        Traffic from the client (the servers on 203.0.113.2:8000 and :7777 run for an hour, logs in \(net.directory)):
           sudo ip netns exec \(net.client) \(binary) lab-tool ping \(ping)
           sudo ip netns exec \(net.client) \(binary) lab-tool http-get \(url)
           sudo ip netns exec \(net.client) \(binary) lab-tool udp-send \(ping) 7777 hello

        """
    }

    /// Prints what a lab server logged about its peers (all but its "listening" line).
    static func showServerLog(_ net: LabNetwork, _ name: String, as label: String) {
        for l in net.log(name).split(separator: "\n") where !l.hasPrefix("listening on") { print("   \(label): " + l) }
    }

    /// The end of a lab: with `--keep`, leaves it running and prints how to enter the namespaces (each with
    /// its note; `extra` is printed, newline included, before the removal recipe) and remove it all;
    /// otherwise stops swiftnat and prints its last words (the namespaces go with `net.destroy()`).
    static func finish(_ net: LabNetwork, daemon: Process, keep: Bool, client: String, nat: String, server: String,
                       extra: String) {
        if keep {
            net.abandon()
            print("""
            == left running (--keep). Enter the namespaces:
               sudo ip netns exec \(net.client) bash     # \(client)
               sudo ip netns exec \(net.nat) bash        # \(nat) (swiftnat pid \(daemon.processIdentifier), log \(net.logPath("daemon.log")))
               sudo ip netns exec \(net.server) bash     # \(server)
            \(extra)Remove it all:
               sudo kill \(daemon.processIdentifier); sudo ip netns pids \(net.server) | xargs -r sudo kill; \
            for n in \(net.client) \(net.nat) \(net.server); do sudo ip netns del $n; done; sudo rm -r \(net.directory)
            """)
        } else {
            print("== stopping swiftnat and removing the namespaces")
            net.stop(daemon)
            for l in net.log("daemon.log").split(separator: "\n") where l.contains("stopped:") { print("   " + l) }
        }
    }

    /// Runs a control command of the lab's daemon and shows its output.
    static func showControl(_ net: LabNetwork, binary: String, _ args: [String], title: String,
                            filter: (Substring) -> Bool = { _ in true }) {
        print("== \(title)")
        let o = Shell.run([binary] + args + ["--socket", net.controlSocket], timeout: 10)
        for l in (o.stdout + o.stderr).split(separator: "\n") where filter(l) { print("   " + l) }
    }
}
