import Foundation
import NATLab
import NATRuntime
import Testing

// `swiftnat lab` as the README runs it, on a machine that has nothing but iproute2, sh and the binary;
// and the lab tools (`swiftnat lab-tool …`) against the real peers (curl, socat, python3, the kernel's
// own echo replies), which are the independent check that the tools speak the protocols right.

/// A directory whose only programs are `ip`, `sh` and `swiftnat` (symlinks), for a PATH without curl,
/// socat, python3, ping or sysctl. Removed by the caller.
func reducedPATH() throws -> String {
    let dir = NSTemporaryDirectory() + "snlab-path-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    for (name, target) in [("ip", Shell.which("ip")), ("sh", Shell.which("sh")), ("swiftnat", swiftnatBinary)] {
        guard let target else { throw LabToolError("no \(name) to link") }
        try FileManager.default.createSymbolicLink(atPath: dir + "/" + name, withDestinationPath: target)
    }
    return dir
}

/// The namespace prefix a lab run printed (`   snlab-<pid>-client, …`).
func labPrefix(_ output: String) -> String? {
    output.split(separator: "\n").lazy.compactMap { line -> String? in
        let t = line.trimmingCharacters(in: .whitespaces)
        guard t.hasPrefix("snlab-"), let r = t.range(of: "client,") else { return nil }
        return String(t[..<r.lowerBound])
    }.first
}

/// The `ttl=N` of the first reply line of ping's (or the lab tool's) output.
func firstTTL(_ output: String) -> String? {
    output.split(separator: " ").first { $0.hasPrefix("ttl=") }.map(String.init)
}

func namespaces(startingWith prefix: String) -> [String] {
    Shell.run(["ip", "netns", "list"], timeout: 10).stdout.split(separator: "\n")
        .compactMap { $0.split(separator: " ").first.map(String.init) }.filter { $0.hasPrefix(prefix) }
}

@Suite(.serialized, .enabled(if: canRunLab, "end-to-end tests need root, /dev/net/tun and iproute2 (ip): run `sudo swift test` or .ci/run"))
struct LabTests {
    /// `swiftnat lab` (and its NAT64 and symmetric variants) with PATH = ip, sh and swiftnat only. With -v it
    /// shows every command it runs: none may be anything else.
    @Test(arguments: [
        ([], "== done: ping, HTTP and UDP crossed swiftnat"),
        (["--behavior", "symmetric"], "== done: ping, HTTP and UDP crossed swiftnat"),
        (["--nat64"], "== done: ping, HTTP and UDP from an IPv6-only host crossed swiftnat's NAT64"),
        (["--nat64", "--nat64-mode", "siit"], "== done: ping, HTTP and UDP from an IPv6-only host crossed swiftnat's NAT64"),
        (["--nptv6"], "== done: ping, HTTP and UDP crossed swiftnat's NPTv6; the server saw 2001:db8:2:fffe::2"),
    ])
    func labNeedsOnlyIPAndTheBinary(options: [String], done: String) throws {
        let dir = try reducedPATH()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let o = Shell.run(["env", "-i", "PATH=\(dir)", dir + "/swiftnat", "lab", "-v"] + options, timeout: 90)
        let prefix = labPrefix(o.stdout)
        defer { if let prefix { for ns in namespaces(startingWith: prefix) { Shell.run(["ip", "netns", "del", ns]) } } }
        #expect(o.ok, "lab \(options) failed (status \(o.status)):\n\(o.stdout)\n\(o.stderr)")
        #expect(o.stdout.contains(done), "no done line:\n\(o.stdout)")
        #expect(!o.stdout.contains("FAILED"), "\(o.stdout)")
        // Every command it ran, in a namespace or not, is ip, sh or the binary.
        for line in o.stdout.split(separator: "\n") where line.hasPrefix("  + ") {
            let command = line.dropFirst(4).hasPrefix("[") ? line.split(separator: "] ", maxSplits: 1).last ?? "" : line.dropFirst(4)
            let program = String(command.split(separator: " ").first ?? "")
            #expect(["ip", "sh"].contains(program) || program.hasSuffix("/swiftnat"), "the lab ran \(program): \(line)")
        }
        #expect(prefix != nil, "no namespace names in:\n\(o.stdout)")
        if let prefix { #expect(namespaces(startingWith: prefix).isEmpty, "namespaces left behind") }
    }

    /// `swiftnat lab --keep` leaves the namespaces, the daemon and the lab's servers running; the printed
    /// lab-tool commands work; the printed recipe removes it all.
    @Test func labKeepLeavesAWorkingLabAndSaysHowToRemoveIt() throws {
        let dir = try reducedPATH()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let o = Shell.run(["env", "-i", "PATH=\(dir)", dir + "/swiftnat", "lab", "--keep"], timeout: 90)
        guard let prefix = labPrefix(o.stdout) else {
            Issue.record("no namespace names in:\n\(o.stdout)\n\(o.stderr)")
            return
        }
        defer {
            // What the printed recipe does: stop what runs in the namespaces (all started by this lab), delete them.
            for ns in namespaces(startingWith: prefix) {
                for pid in Shell.run(["ip", "netns", "pids", ns]).stdout.split(separator: "\n").compactMap({ Int32($0) }) {
                    kill(pid, SIGTERM)
                }
            }
            let end = Date().addingTimeInterval(5)
            while Date() < end && namespaces(startingWith: prefix).contains(where: { !Shell.run(["ip", "netns", "pids", $0]).stdout.isEmpty }) {
                usleep(50_000)
            }
            for ns in namespaces(startingWith: prefix) { Shell.run(["ip", "netns", "del", ns]) }
            // The kept lab's directory (its logs), named at the end of the recipe.
            if let line = o.stdout.split(separator: "\n").last(where: { $0.contains("sudo rm -r ") }),
               let r = line.range(of: "sudo rm -r ") {
                let directory = String(line[r.upperBound...]).trimmingCharacters(in: .whitespaces)
                #expect(directory.contains("/" + prefix), "not the lab's directory: \(directory)")
                if directory.contains("/" + prefix) { try? FileManager.default.removeItem(atPath: directory) }
            } else {
                Issue.record("no directory to remove in the recipe:\n\(o.stdout)")
            }
        }
        #expect(o.ok && o.stdout.contains("== left running (--keep)") && o.stdout.contains("== done:"), "\(o.stdout)\n\(o.stderr)")
        #expect(namespaces(startingWith: prefix).count == 3)
        let client = prefix + "client"
        let ping = Shell.run(["ip", "netns", "exec", client, swiftnatBinary, "lab-tool", "ping", "-c", "1", LabNetwork.serverAddress])
        #expect(ping.ok && ping.stdout.contains("1 received"), "\(ping.stdout) \(ping.stderr)")
        let get = Shell.run(["ip", "netns", "exec", client, swiftnatBinary, "lab-tool", "http-get", "http://\(LabNetwork.serverAddress):8000/"])
        #expect(get.ok && get.stdout.contains("hello from 203.0.113.2"), "\(get.stdout) \(get.stderr)")
        let udp = Shell.run(["ip", "netns", "exec", client, swiftnatBinary, "lab-tool", "udp-send", LabNetwork.serverAddress, "7777", "hello"])
        #expect(udp.ok && udp.stdout == "hello\n", "\(udp.stdout) \(udp.stderr)")
    }

    /// The lab tools against real peers through the NAT: curl and socat talk to the tools' servers, the
    /// tools' clients talk to python3's HTTP server and socat's echo, the tool's ping gets the kernel's replies.
    @Test func labToolsAgreeWithRealPeers() throws {
        guard requireTools(["curl", "socat", "python3", "ping"]) else { return }
        try withLab("tools") { net, _ in
            let tool = [swiftnatBinary, "lab-tool"]
            try "tool body\n".write(toFile: net.directory + "/index.html", atomically: true, encoding: .utf8)
            // The tools' servers, real clients.
            try net.startToolHTTPServer(binary: swiftnatBinary, net.server, address: LabNetwork.serverAddress, port: 8000, logName: "tool-http.log")
            try net.startToolUDPEcho(binary: swiftnatBinary, net.server, address: LabNetwork.serverAddress, port: 7777, logName: "tool-udp.log")
            let curl = net.exec(net.client, ["curl", "-sS", "-m", "5", "http://\(LabNetwork.serverAddress):8000/index.html"])
            #expect(curl.ok && curl.stdout == "tool body\n", "curl from the tool's server: \(curl.stdout) \(curl.stderr)")
            let missing = net.exec(net.client, ["curl", "-sS", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://\(LabNetwork.serverAddress):8000/../etc/passwd"])
            #expect(missing.stdout == "404", "a path outside the directory: \(missing.stdout) \(missing.stderr)")
            #expect(net.log("tool-http.log").contains("\(LabNetwork.poolAddress):"), "the tool's server log: \(net.log("tool-http.log"))")
            let socat = net.exec(net.client, ["sh", "-c", "echo datagram | socat -T 2 - UDP4:\(LabNetwork.serverAddress):7777,sourceport=40000"])
            #expect(socat.stdout == "datagram\n", "socat to the tool's echo: \(socat.stdout) \(socat.stderr)")
            #expect(net.log("tool-udp.log").contains("echoed 9 bytes to \(LabNetwork.poolAddress):40000: datagram\\n"), "\(net.log("tool-udp.log"))")

            // Real servers, the tools' clients.
            try net.startHTTPServer(net.server, address: LabNetwork.serverAddress2, port: 8001, logName: "http.log")
            try net.spawn(net.server, ["socat", "UDP4-RECVFROM:7778,bind=\(LabNetwork.serverAddress2),fork", "SYSTEM:cat"], logName: "udp.log")
            #expect(net.waitForListener(net.server, port: 7778, udp: true))
            let get = net.exec(net.client, tool + ["http-get", "http://\(LabNetwork.serverAddress2):8001/index.html"])
            #expect(get.ok && get.stdout == "tool body\n", "http-get from python3: \(get.stdout) \(get.stderr)")
            let notFound = net.exec(net.client, tool + ["http-get", "http://\(LabNetwork.serverAddress2):8001/nothing"])
            #expect(!notFound.ok && notFound.stderr.contains("404"), "http-get of a missing file: \(notFound.stdout) \(notFound.stderr)")
            let send = net.exec(net.client, tool + ["udp-send", "--source-port", "40001", LabNetwork.serverAddress2, "7778", "to socat"])
            #expect(send.ok && send.stdout == "to socat\n", "udp-send to socat: \(send.stdout) \(send.stderr)")
            let refused = net.exec(net.client, tool + ["udp-send", LabNetwork.serverAddress2, "9", "anyone?"])
            #expect(!refused.ok && refused.stderr.contains("ICMP port unreachable"), "udp-send to a closed port: \(refused.stderr)")

            // The kernel answers the tool's echo requests; a TTL of 1 dies on the nat namespace's router.
            let ping = net.exec(net.client, tool + ["ping", "-c", "3", "-i", "0.2", LabNetwork.serverAddress])
            #expect(ping.ok && ping.stdout.contains("3 packets transmitted, 3 received"), "\(ping.stdout) \(ping.stderr)")
            #expect(ping.stdout.contains("64 bytes from \(LabNetwork.serverAddress): icmp_seq=3 ttl="), "\(ping.stdout)")
            let real = net.exec(net.client, ["ping", "-c", "1", "-W", "2", LabNetwork.serverAddress])
            #expect(firstTTL(ping.stdout) != nil && firstTTL(ping.stdout) == firstTTL(real.stdout), "tool: \(ping.stdout) ping: \(real.stdout)")
            let ttl = net.exec(net.client, tool + ["ping", "-c", "1", "-t", "1", "-W", "1", LabNetwork.serverAddress])
            #expect(!ttl.ok && ttl.stdout.contains("From \(LabNetwork.natInsideAddress) icmp_seq=1 Time to live exceeded"), "\(ttl.stdout) \(ttl.stderr)")
        }
    }

    /// The same over NAT64: the tools' IPv6 side (ICMPv6 echo, bracketed URLs, UDP over IPv6) with real peers.
    @Test func labToolsOverNAT64AgreeWithRealPeers() throws {
        guard requireTools(["curl", "socat", "python3", "ping"]) else { return }
        try withNAT64Lab("tools64", config: { $0.nat64Config(mode: "stateful") }) { net, _ in
            let tool = [swiftnatBinary, "lab-tool"]
            let server6 = LabNetwork.serverAddress6
            try "tool body 64\n".write(toFile: net.directory + "/index.html", atomically: true, encoding: .utf8)
            try net.startHTTPServer(net.server, address: LabNetwork.serverAddress, port: 8000, logName: "http.log")
            try net.spawn(net.server, ["socat", "UDP4-RECVFROM:7777,bind=\(LabNetwork.serverAddress),fork", "SYSTEM:cat"], logName: "udp.log")
            #expect(net.waitForListener(net.server, port: 7777, udp: true))
            let ping = net.exec(net.client, tool + ["ping", "-c", "2", "-i", "0.2", server6])
            #expect(ping.ok && ping.stdout.contains("2 packets transmitted, 2 received"), "\(ping.stdout) \(ping.stderr)")
            let real = net.exec(net.client, ["ping", "-6", "-c", "1", "-W", "2", server6])
            #expect(firstTTL(ping.stdout) != nil && firstTTL(ping.stdout) == firstTTL(real.stdout), "tool: \(ping.stdout) ping: \(real.stdout)")
            let get = net.exec(net.client, tool + ["http-get", "http://[\(server6)]:8000/index.html"])
            #expect(get.ok && get.stdout == "tool body 64\n", "http-get over NAT64: \(get.stdout) \(get.stderr)")
            let send = net.exec(net.client, tool + ["udp-send", server6, "7777", "six to four"])
            #expect(send.ok && send.stdout == "six to four\n", "udp-send over NAT64: \(send.stdout) \(send.stderr)")

            // The tools' servers on the IPv6 client, real IPv6 clients in the same namespace.
            try net.startToolHTTPServer(binary: swiftnatBinary, net.client, address: LabNetwork.clientAddress6, port: 8080, logName: "tool-http6.log")
            try net.startToolUDPEcho(binary: swiftnatBinary, net.client, address: LabNetwork.clientAddress6, port: 7070, logName: "tool-udp6.log")
            let curl = net.exec(net.client, ["curl", "-sS", "-g", "-m", "5", "http://[\(LabNetwork.clientAddress6)]:8080/"])
            #expect(curl.ok && curl.stdout == "tool body 64\n", "curl to the tool's IPv6 server: \(curl.stdout) \(curl.stderr)")
            let socat = net.exec(net.client, ["sh", "-c", "echo v6 | socat -T 2 - UDP6:[\(LabNetwork.clientAddress6)]:7070"])
            #expect(socat.stdout == "v6\n", "socat to the tool's IPv6 echo: \(socat.stdout) \(socat.stderr)")
        }
    }
}
