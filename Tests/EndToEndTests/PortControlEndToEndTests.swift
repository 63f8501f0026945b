import Foundation
import NATLab
import NATRuntime
import NATWire
import PortControl
import Testing

// Port control against the real daemon and the clients people use: natpmpc (RFC 6886), miniupnpc's upnpc
// (UPnP IGD), and PCP requests (RFC 6887) built here and sent from the inside namespace; a host outside
// then connects through each mapping.
@Suite(.serialized, .enabled(if: canRunLab, "end-to-end tests need root, /dev/net/tun and iproute2 (ip): run `sudo swift test` or .ci/run"))
struct PortControlEndToEndTests {
    static let table = """
    [port_control]
    listen = "100.64.0.1"
    interface = "in0"
    upnp_port = 5000
    min_lease = 2
    """
    static let rootDesc = "http://100.64.0.1:5000/rootDesc.xml"

    static func cli(_ net: LabNetwork, _ args: [String]) -> Shell.Output {
        Shell.run([swiftnatBinary] + args + ["--socket", net.controlSocket], timeout: 15)
    }

    static func forwards(_ net: LabNetwork) -> [[String: Any]] {
        let o = cli(net, ["forwards", "list", "--json"])
        return (try? JSONSerialization.jsonObject(with: Data(o.stdout.utf8))) as? [[String: Any]] ?? []
    }

    /// The inside web server and a curl from outside to `port` on the pool address.
    static func serveInside(_ net: LabNetwork, _ text: String) throws {
        try "\(text)\n".write(toFile: net.directory + "/index.html", atomically: true, encoding: .utf8)
        try net.startHTTPServer(net.client, address: LabNetwork.clientAddress, port: 8080, logName: "inside-http.log")
    }

    static func fromOutside(_ net: LabNetwork, _ port: Int) -> Shell.Output {
        net.exec(net.server, ["curl", "-sS", "-m", "3", "http://\(LabNetwork.poolAddress):\(port)/index.html"], timeout: 6)
    }

    /// Sends one UDP datagram (hex) from the client to 100.64.0.1:5351 and returns the answer's bytes.
    static func exchange(_ net: LabNetwork, _ request: [UInt8]) throws -> [UInt8]? {
        let path = try script(net, "pcp_send.py", """
        import binascii, socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("100.64.0.2", 0))
        s.settimeout(3)
        s.sendto(binascii.unhexlify(sys.argv[1]), ("100.64.0.1", 5351))
        try:
            print(binascii.hexlify(s.recvfrom(2000)[0]).decode())
        except socket.timeout:
            print("timeout")
        """)
        let o = net.exec(net.client, ["python3", path, request.map { String(format: "%02x", $0) }.joined()], timeout: 6)
        let text = o.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard o.ok, text != "timeout" else { return nil }
        var out: [UInt8] = []
        var i = text.startIndex
        while i < text.endIndex, let j = text.index(i, offsetBy: 2, limitedBy: text.endIndex), let b = UInt8(text[i..<j], radix: 16) {
            out.append(b)
            i = j
        }
        return out
    }

    static func u32(_ b: [UInt8], _ o: Int) -> UInt32 { b[o..<(o + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
    static func u16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) << 8 | UInt16(b[o + 1]) }

    @Test func rfc6886_natpmpcMapsUnmapsAndTheMappingWorksFromOutside() throws {
        guard requireTools(["natpmpc", "curl", "python3", "socat"]) else { return }
        try withLab("pc-pmp", extraTables: Self.table) { net, _ in
            try Self.serveInside(net, "natpmp")
            #expect(!Self.fromOutside(net, 9090).ok, "reached the inside server before any mapping")
            let map = net.exec(net.client, ["natpmpc", "-g", "100.64.0.1", "-a", "9090", "8080", "tcp", "3600"], timeout: 15)
            #expect(map.ok && map.stdout.contains("Public IP address : 198.51.100.1"), "natpmpc: \(map.stdout) \(map.stderr)")
            #expect(map.stdout.contains("Mapped public port 9090 protocol TCP to local port 8080 lifetime 3600")
                    || map.stdout.contains("Mapped public port 9090 protocol TCP to local port 8080 liftime 3600"), "natpmpc: \(map.stdout)")
            let rows = Self.forwards(net)
            #expect(rows.contains { $0["outside"] as? String == "198.51.100.1:9090" && $0["origin"] as? String == "natpmp"
                && $0["inside"] as? String == "100.64.0.2:8080" && $0["expires_at"] != nil }, "forwards: \(rows)")
            let through = Self.fromOutside(net, 9090)
            #expect(through.ok && through.stdout == "natpmp\n", "through the NAT-PMP mapping: \(through.stdout) \(through.stderr)")
            // A renewal (the client asks again before the lease ends) keeps a connection through the mapping alive.
            try net.spawn(net.client, ["socat", "TCP-LISTEN:8081,bind=\(LabNetwork.clientAddress),reuseaddr,fork", "SYSTEM:cat"], logName: "echo.log")
            #expect(net.waitForListener(net.client, port: 8081))
            let echo = net.exec(net.client, ["natpmpc", "-g", "100.64.0.1", "-a", "9091", "8081", "tcp", "3600"], timeout: 15)
            #expect(echo.ok, "natpmpc: \(echo.stdout) \(echo.stderr)")
            let talk = try script(net, "talk.py", """
            import socket, time
            s = socket.create_connection(("198.51.100.1", 9091), timeout=3)
            ok = 0
            end = time.time() + 3
            while time.time() < end:
                s.sendall(b"ping\\n")
                if s.recv(100) == b"ping\\n":
                    ok += 1
                print("echoes", ok, flush=True)
                time.sleep(0.1)
            print("done", ok, flush=True)
            """)
            let talker = try net.spawn(net.server, ["python3", "-u", talk], logName: "talk.log")
            #expect(net.waitFor("echoes 3", in: "talk.log", process: talker, timeout: 5), "\(net.log("talk.log"))")
            let renew = net.exec(net.client, ["natpmpc", "-g", "100.64.0.1", "-a", "9091", "8081", "tcp", "3600"], timeout: 15)
            #expect(renew.ok && renew.stdout.contains("Mapped public port 9091"), "renewal: \(renew.stdout) \(renew.stderr)")
            #expect(net.waitFor("done", in: "talk.log", process: talker, timeout: 8))
            let done = net.log("talk.log").split(separator: "\n").last { $0.hasPrefix("done") }.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
            #expect(done >= 20, "the connection broke at the renewal: \(done) echoes in 3 s\n\(net.log("talk.log"))")
            // Lifetime 0 deletes it (RFC 6886 §3.4).
            let unmap = net.exec(net.client, ["natpmpc", "-g", "100.64.0.1", "-a", "9090", "8080", "tcp", "0"], timeout: 15)
            #expect(unmap.ok, "natpmpc delete: \(unmap.stdout) \(unmap.stderr)")
            #expect(!Self.forwards(net).contains { $0["outside"] as? String == "198.51.100.1:9090" }, "the mapping stayed")
            #expect(!Self.fromOutside(net, 9090).ok, "reached the inside server after the mapping was deleted")
        }
    }

    @Test func upnpIGD_upnpcAddListDeleteSecureModeAndHostileRequests() throws {
        guard requireTools(["upnpc", "curl", "python3"]) else { return }
        try withLab("pc-upnp", extraTables: Self.table) { net, _ in
            try Self.serveInside(net, "upnp")
            func upnpc(_ args: [String]) -> Shell.Output {
                net.exec(net.client, ["upnpc", "-i", "-u", Self.rootDesc] + args, timeout: 20)
            }
            // Discovery by SSDP (M-SEARCH on the inside link).
            let discover = net.exec(net.client, ["upnpc", "-i", "-m", "eth0", "-s"], timeout: 20)
            #expect(discover.stdout.contains("http://100.64.0.1:5000/ctl/IPConn") && discover.stdout.contains("ExternalIPAddress = 198.51.100.1"),
                    "upnpc -s: \(discover.stdout) \(discover.stderr)")
            let add = upnpc(["-e", "test", "-a", "100.64.0.2", "8080", "9191", "TCP", "3600"])
            #expect(add.ok && add.stdout.contains("external 198.51.100.1:9191 TCP is redirected to internal 100.64.0.2:8080"),
                    "upnpc -a: \(add.stdout) \(add.stderr)")
            let list = upnpc(["-l"])
            #expect(list.stdout.contains("9191->100.64.0.2:8080") && list.stdout.contains("'test'"), "upnpc -l: \(list.stdout) \(list.stderr)")
            let rows = Self.forwards(net)
            #expect(rows.contains { $0["outside"] as? String == "198.51.100.1:9191" && $0["origin"] as? String == "upnp" }, "forwards: \(rows)")
            let through = Self.fromOutside(net, 9191)
            #expect(through.ok && through.stdout == "upnp\n", "through the UPnP mapping: \(through.stdout) \(through.stderr)")
            // Secure mode: a mapping for another inside host is refused (606).
            let other = upnpc(["-e", "x", "-a", "100.64.0.3", "8080", "9292", "TCP", "3600"])
            #expect(other.stdout.contains("606"), "secure mode: \(other.stdout) \(other.stderr)")
            // -r: several at once.
            let r = upnpc(["-r", "9301", "TCP", "9302", "UDP"])
            #expect(r.stdout.contains("9301") && Self.forwards(net).filter { $0["origin"] as? String == "upnp" }.count == 3, "upnpc -r: \(r.stdout)")
            let del = upnpc(["-d", "9191", "TCP"])
            #expect(del.ok && !Self.forwards(net).contains { $0["outside"] as? String == "198.51.100.1:9191" }, "upnpc -d: \(del.stdout) \(del.stderr)")
            #expect(!Self.fromOutside(net, 9191).ok, "reached the inside server after the mapping was deleted")
            let missing = upnpc(["-d", "9191", "TCP"])
            #expect(missing.stdout.contains("714"), "deleting a missing mapping: \(missing.stdout) \(missing.stderr)")

            // Hostile requests: a DTD (entity expansion), an oversized body, garbage; the server keeps answering.
            let laughs = "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><u:GetExternalIPAddress xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:2\">&b;</u:GetExternalIPAddress></s:Body></s:Envelope>"
            let soap = ["-H", "SOAPAction: \"urn:schemas-upnp-org:service:WANIPConnection:2#GetExternalIPAddress\"", "-H", "Content-Type: text/xml"]
            let dtd = net.exec(net.client, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5"] + soap
                               + ["--data-binary", laughs, "http://100.64.0.1:5000/ctl/IPConn"], timeout: 8)
            #expect(dtd.stdout == "400", "DTD: \(dtd.stdout)")
            let bigFile = net.directory + "/big.xml"
            try String(repeating: "<a>x</a>", count: 10_000).write(toFile: bigFile, atomically: true, encoding: .utf8)
            let big = net.exec(net.client, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5"] + soap
                               + ["--data-binary", "@" + bigFile, "http://100.64.0.1:5000/ctl/IPConn"], timeout: 8)
            #expect(big.stdout == "413", "oversized body: \(big.stdout)")
            let junk = net.exec(net.client, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5"] + soap
                                + ["--data-binary", "<s:Envelope><unclosed", "http://100.64.0.1:5000/ctl/IPConn"], timeout: 8)
            #expect(junk.stdout == "400", "malformed XML: \(junk.stdout)")
            let still = upnpc(["-s"])
            #expect(still.stdout.contains("ExternalIPAddress = 198.51.100.1"), "after hostile requests: \(still.stdout)")
            // From outside: the server does not even listen there, and the PMP port answers nothing.
            let outside = net.exec(net.server, ["curl", "-s", "-m", "2", "http://198.51.100.1:5000/rootDesc.xml"], timeout: 5)
            #expect(!outside.ok)
        }
    }

    @Test func rfc6887_pcpMapPeerAndErrorsCheckedFieldByField() throws {
        guard requireTools(["python3", "curl", "socat"]) else { return }
        try withLab("pc-pcp", extraTables: Self.table) { net, _ in
            try Self.serveInside(net, "pcp")
            let me = IPv6Address(ipv4Mapped: IPv4Address(LabNetwork.clientAddress)!)
            let nonce: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
            let mapping = PCP.MappingData(nonce: nonce, protocolNumber: 6, internalPort: 8080, suggestedExternalPort: 9494,
                                          suggestedExternalAddress: .any)
            // §11: MAP, answered field by field.
            let a = try #require(try Self.exchange(net, PCP.request(.map, lifetime: 600, client: me, mapping: mapping)), "no PCP answer")
            #expect(a.count == 60 && a[0] == 2 && a[1] == 0x81 && a[3] == 0, "MAP answer: \(a)")
            #expect(Self.u32(a, 4) == 600, "lifetime")
            #expect(Self.u32(a, 8) < 30, "epoch \(Self.u32(a, 8)) (the daemon just started)")
            #expect(Array(a[24..<36]) == nonce && a[36] == 6 && Self.u16(a, 40) == 8080 && Self.u16(a, 42) == 9494)
            #expect(Array(a[44..<60]) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 198, 51, 100, 1], "external address")
            #expect(Self.forwards(net).contains { $0["outside"] as? String == "198.51.100.1:9494" && $0["origin"] as? String == "pcp" })
            let through = Self.fromOutside(net, 9494)
            #expect(through.ok && through.stdout == "pcp\n", "through the PCP mapping: \(through.stdout) \(through.stderr)")
            // §11.3: another nonce may not delete it.
            var thief = mapping
            thief.nonce = [UInt8](repeating: 0xEE, count: 12)
            let stolen = try #require(try Self.exchange(net, PCP.request(.map, lifetime: 0, client: me, mapping: thief)))
            #expect(stolen[3] == PCP.ResultCode.notAuthorized.rawValue)
            // Errors: address mismatch, unsupported version, THIRD_PARTY in secure mode, unsupported protocol.
            let wrong = IPv6Address(ipv4Mapped: IPv4Address("100.64.0.9")!)
            let mismatch = try #require(try Self.exchange(net, PCP.request(.map, lifetime: 600, client: wrong, mapping: mapping)))
            #expect(mismatch[1] == 0x81 && mismatch[3] == PCP.ResultCode.addressMismatch.rawValue && Array(mismatch[24..<36]) == nonce)
            var v3 = PCP.request(.map, lifetime: 600, client: me, mapping: mapping)
            v3[0] = 3
            let version = try #require(try Self.exchange(net, v3))
            #expect(version[0] == 2 && version[3] == PCP.ResultCode.unsupportedVersion.rawValue)
            var third: [UInt8] = []
            for b in [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 100, 64, 0, 3] as [UInt8] { third.append(b) }
            let tp = try #require(try Self.exchange(net, PCP.request(.map, lifetime: 600, client: me, mapping: mapping, options: PCP.option(1, third))))
            #expect(tp[3] == PCP.ResultCode.notAuthorized.rawValue)
            var sctp = mapping
            sctp.protocolNumber = 132
            let proto = try #require(try Self.exchange(net, PCP.request(.map, lifetime: 600, client: me, mapping: sctp)))
            #expect(proto[3] == PCP.ResultCode.unsupportedProtocol.rawValue)
            // §12: PEER for a flow the client has going: the NAT's mapping for it.
            _ = net.exec(net.client, ["sh", "-c", "echo x | socat -T 0.3 - UDP4:\(LabNetwork.serverAddress):7777,sourceport=41414"], timeout: 5)
            let peer = PCP.MappingData(nonce: nonce, protocolNumber: 17, internalPort: 41414, suggestedExternalPort: 0, suggestedExternalAddress: .any)
            let server = IPv6Address(ipv4Mapped: IPv4Address(LabNetwork.serverAddress)!)
            let p = try #require(try Self.exchange(net, PCP.request(.peer, lifetime: 60, client: me, mapping: peer, remotePort: 7777, remoteAddress: server)))
            #expect(p.count == 80 && p[1] == 0x82 && p[3] == 0, "PEER answer: \(p)")
            #expect(Self.u16(p, 42) != 0 && Array(p[56..<60]) == [198, 51, 100, 1] && Self.u16(p, 60) == 7777 && Array(p[76..<80]) == [203, 0, 113, 2])
            // A request from outside (routed to the inside address over out0) gets no answer.
            #expect(net.exec(net.server, ["ip", "route", "add", "100.64.0.0/24", "via", LabNetwork.natOutsideAddress]).ok)
            let outsider = try script(net, "outsider.py", """
            import binascii, socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(2)
            s.sendto(binascii.unhexlify("0000"), ("100.64.0.1", 5351))
            try:
                print("answered", binascii.hexlify(s.recvfrom(2000)[0]).decode())
            except socket.timeout:
                print("silence")
            """)
            let o = net.exec(net.server, ["python3", outsider], timeout: 6)
            #expect(o.stdout.contains("silence"), "a NAT-PMP request from outside: \(o.stdout) \(o.stderr)")
            let http = net.exec(net.server, ["curl", "-sS", "-m", "3", "http://100.64.0.1:5000/rootDesc.xml"], timeout: 6)
            #expect(!http.ok || !http.stdout.contains("InternetGatewayDevice"), "the description was served to outside: \(http.stdout)")
            // The same nonce deletes the MAP.
            let gone = try #require(try Self.exchange(net, PCP.request(.map, lifetime: 0, client: me, mapping: mapping)))
            #expect(gone[3] == 0 && Self.u32(gone, 4) == 0)
            #expect(!Self.fromOutside(net, 9494).ok)
        }
    }

    @Test("RFC 6887 §12.3: PEER before any packet creates the flow's mapping; the flow then leaves from the answered port (as the outside server sees it) and the peer may send first")
    func rfc6887_12_3_peerCreatesTheMappingTheFlowThenUses() throws {
        guard requireTools(["python3"]) else { return }
        try withLab("pc-peer", extraTables: Self.table) { net, _ in
            let me = IPv6Address(ipv4Mapped: IPv4Address(LabNetwork.clientAddress)!)
            let server = IPv6Address(ipv4Mapped: IPv4Address(LabNetwork.serverAddress)!)
            // Port 41414 outside is taken first (a PCP MAP with PREFER_FAILURE for another inside port), so the
            // flow from inside port 41414 cannot simply keep its port: the answered port is the NAT's choice.
            let taker = PCP.MappingData(nonce: [9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9], protocolNumber: 17, internalPort: 5555,
                                        suggestedExternalPort: 41414, suggestedExternalAddress: .any)
            let taken = try #require(try Self.exchange(net, PCP.request(.map, lifetime: 600, client: me, mapping: taker,
                                                                        options: PCP.option(2, []))), "no PCP answer")
            #expect(taken[3] == 0 && Self.u16(taken, 42) == 41414, "MAP with PREFER_FAILURE: \(taken)")
            // §12: PEER for 100.64.0.2:41414 -> 203.0.113.2:7777, before the client has sent anything.
            let nonce: [UInt8] = [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7]
            let peer = PCP.MappingData(nonce: nonce, protocolNumber: 17, internalPort: 41414, suggestedExternalPort: 0, suggestedExternalAddress: .any)
            let p = try #require(try Self.exchange(net, PCP.request(.peer, lifetime: 120, client: me, mapping: peer, remotePort: 7777, remoteAddress: server)),
                                 "no PEER answer")
            #expect(p.count == 80 && p[0] == 2 && p[1] == 0x82 && p[3] == 0, "PEER answer: \(p)")
            #expect(Self.u32(p, 4) > 0 && Self.u32(p, 4) <= 120, "PEER lifetime \(Self.u32(p, 4))")
            #expect(Array(p[24..<36]) == nonce && p[36] == 17 && Self.u16(p, 40) == 41414)
            let external = Self.u16(p, 42)
            #expect(external != 0 && external != 41414, "assigned external port \(external)")
            #expect(Array(p[44..<60]) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 198, 51, 100, 1], "external address")
            #expect(Self.u16(p, 60) == 7777 && Array(p[64..<80]) == Array(PCP.request(.peer, lifetime: 0, client: me, mapping: peer,
                                                                                          remotePort: 7777, remoteAddress: server)[64..<80]))
            // The session is listed before any packet.
            let sessions = Self.cli(net, ["sessions", "--json"])
            #expect(sessions.stdout.contains("198.51.100.1:\(external)"), "sessions: \(sessions.stdout)")
            // The peer sends first (port-restricted cone filtering would drop it without the PEER session) ...
            let client = try script(net, "udp_client.py", """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("100.64.0.2", 41414))
            s.settimeout(3)
            print("bound", flush=True)
            try:
                d, a = s.recvfrom(2000)
                print("got", a[0], a[1], d.decode(errors="replace"), flush=True)
            except socket.timeout:
                print("nothing", flush=True)
            s.sendto(b"hello", ("203.0.113.2", 7777))
            print("sent", flush=True)
            """)
            let c = try net.spawn(net.client, ["python3", "-u", client], logName: "udp-client.log")
            #expect(net.waitFor("bound", in: "udp-client.log", process: c, timeout: 5))
            // The outside server sends first to the answered port, then prints the source of what it receives.
            let echo = try script(net, "udp_server.py", """
            import socket, sys, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("203.0.113.2", 7777))
            s.settimeout(0.5)
            s.sendto(b"first", ("198.51.100.1", int(sys.argv[1])))
            print("listening", flush=True)
            end = time.time() + 8
            while time.time() < end:
                try:
                    d, a = s.recvfrom(2000)
                    print("from", a[0], a[1], d.decode(errors="replace"), flush=True)
                except socket.timeout:
                    pass
            """)
            let srv = try net.spawn(net.server, ["python3", "-u", echo, String(external)], logName: "udp-server.log")
            #expect(net.waitFor("sent", in: "udp-client.log", process: c, timeout: 6))
            #expect(net.log("udp-client.log").contains("got 203.0.113.2 7777 first"), "the peer's first datagram: \(net.log("udp-client.log"))")
            // ... and the flow from inside leaves from the port PEER answered, as the outside server sees it.
            #expect(net.waitFor("from 198.51.100.1 \(external) hello", in: "udp-server.log", process: srv, timeout: 5),
                    "the outside server saw: \(net.log("udp-server.log"))")
            net.stop(srv)
        }
    }

    @Test("RFC 6887 §11 over IPv6 with the stateful NAT64 (RFC 6146 §3.1): a PCP MAP from the IPv6 host makes a static BIB entry; an IPv4 host reaches the IPv6 host through the answered IPv4 address and port; a restart keeps it and sends ANNOUNCE; lifetime 0 removes it")
    func rfc6887_11_pcpMapOverIPv6MakesANAT64StaticBIBEntry() throws {
        guard requireTools(["python3"]) else { return }
        let table = Self.table + "\nlisten_ipv6 = \"\(LabNetwork.natInsideAddress6)\"\n"
        try withNAT64Lab("pc-nat64", config: { $0.nat64Config(mode: "stateful", nat44: "port-restricted-cone") + "\n" + table }, dualStack: true) { net, daemon in
            #expect(net.log("daemon.log").contains("PCP for the stateful NAT64 on [2001:db8:1::1]:5351"), "\(net.log("daemon.log"))")
            let exchange6 = try script(net, "pcp6_send.py", """
            import binascii, socket, sys
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.bind(("2001:db8:1::2", 0))
            s.settimeout(3)
            s.sendto(binascii.unhexlify(sys.argv[1]), ("2001:db8:1::1", 5351))
            try:
                print(binascii.hexlify(s.recvfrom(2000)[0]).decode())
            except socket.timeout:
                print("timeout")
            """)
            func send(_ request: [UInt8]) -> [UInt8]? {
                let o = net.exec(net.client, ["python3", exchange6, request.map { String(format: "%02x", $0) }.joined()], timeout: 6)
                let text = o.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                guard o.ok, text != "timeout", text.count % 2 == 0 else { return nil }
                return stride(from: 0, to: text.count, by: 2).compactMap {
                    UInt8(text[text.index(text.startIndex, offsetBy: $0)..<text.index(text.startIndex, offsetBy: $0 + 2)], radix: 16)
                }
            }
            let me = IPv6Address(LabNetwork.clientAddress6)!
            let nonce: [UInt8] = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8]
            let mapping = PCP.MappingData(nonce: nonce, protocolNumber: 17, internalPort: 7000, suggestedExternalPort: 7000,
                                          suggestedExternalAddress: .any)
            let a = try #require(send(PCP.request(.map, lifetime: 600, client: me, mapping: mapping)), "no PCP answer over IPv6")
            #expect(a.count == 60 && a[0] == 2 && a[1] == 0x81 && a[3] == 0, "MAP answer: \(a)")
            #expect(Self.u32(a, 4) == 600 && Array(a[24..<36]) == nonce && a[36] == 17 && Self.u16(a, 40) == 7000)
            #expect(Array(a[44..<56]) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] && Array(a[56..<59]) == [198, 51, 100]
                    && (64...71).contains(a[59]), "external address: \(Array(a[44..<60]))")
            let external = "198.51.100.\(a[59])", port = Self.u16(a, 42)
            #expect(port == 7000, "the suggested port was free: \(port)")
            let rows = Self.forwards(net)
            #expect(rows.contains { $0["inside"] as? String == "[2001:db8:1::2]:7000" && $0["outside"] as? String == "\(external):\(port)"
                && $0["origin"] as? String == "pcp" && $0["expires_at"] != nil }, "forwards: \(rows)")
            // The IPv6 host listens; an IPv4 host sends to the answered IPv4 transport address.
            let listen = try script(net, "udp6_listen.py", """
            import socket
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.bind(("2001:db8:1::2", 7000))
            s.settimeout(4)
            print("bound", flush=True)
            try:
                d, a = s.recvfrom(2000)
                print("got", a[0], a[1], d.decode(errors="replace"), flush=True)
            except socket.timeout:
                print("nothing", flush=True)
            """)
            let l = try net.spawn(net.client, ["python3", "-u", listen], logName: "udp6.log")
            #expect(net.waitFor("bound", in: "udp6.log", process: l, timeout: 5))
            let hello = net.exec(net.server, ["python3", "-c", "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                + "s.bind(('203.0.113.2', 4444)); s.sendto(b'hello', ('\(external)', \(port)))"], timeout: 5)
            #expect(hello.ok, "\(hello.stderr)")
            #expect(net.waitFor("got", in: "udp6.log", process: l, timeout: 5))
            #expect(net.log("udp6.log").contains("got \(LabNetwork.serverAddress6) 4444 hello"), "the IPv6 host saw: \(net.log("udp6.log"))")
            net.stop(l)
            // A restart keeps the entry (state file, remaining lease) and announces the new epoch to the IPv6 host.
            let listener = try script(net, "announce6.py", """
            import binascii, socket, time
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("::", 5350))
            s.settimeout(0.5)
            print("listening", flush=True)
            end = time.time() + 15
            while time.time() < end:
                try:
                    d, a = s.recvfrom(2000)
                    print("from", a[0], binascii.hexlify(d).decode(), flush=True)
                except socket.timeout:
                    pass
            """)
            let al = try net.spawn(net.client, ["python3", "-u", listener], logName: "announce6.log")
            #expect(net.waitFor("listening", in: "announce6.log", process: al, timeout: 5))
            let config = try String(contentsOfFile: net.directory + "/nat44.toml", encoding: .utf8)
            net.stop(daemon)
            let again = try net.startDaemon(binary: swiftnatBinary, config: config)
            defer { net.stop(again) }
            #expect(net.log("daemon.log").contains("restored 1 of 1 nat64 static BIB entries"), "\(net.log("daemon.log"))")
            // RFC 6887 §14.1.3: ANNOUNCE (version 2, opcode 0x80, SUCCESS) to the host.
            #expect(net.waitFor("from 2001:db8:1::1 02800000", in: "announce6.log", timeout: 5), "no ANNOUNCE: \(net.log("announce6.log"))")
            // Four rounds (0, 0.25, 0.75, 1.75 s), each to ff02::1 and to the host: at least eight (the exact
            // count that lands in the window depends on timing).
            let t0 = Date()
            while Date().timeIntervalSince(t0) < 4 && net.log("announce6.log").components(separatedBy: " 02800000").count - 1 < 8 { usleep(100_000) }
            #expect(net.log("announce6.log").components(separatedBy: " 02800000").count - 1 >= 8, "ANNOUNCEs: \(net.log("announce6.log"))")
            net.stop(al)
            let kept = Self.forwards(net)
            #expect(kept.contains { $0["inside"] as? String == "[2001:db8:1::2]:7000" && $0["outside"] as? String == "\(external):\(port)"
                && (($0["expires_at"] as? Double ?? 0) - Date().timeIntervalSince1970) > 500 }, "after the restart: \(kept)")
            let l2 = try net.spawn(net.client, ["python3", "-u", listen], logName: "udp6b.log")
            #expect(net.waitFor("bound", in: "udp6b.log", process: l2, timeout: 5))
            _ = net.exec(net.server, ["python3", "-c", "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                + "s.bind(('203.0.113.2', 4445)); s.sendto(b'again', ('\(external)', \(port)))"], timeout: 5)
            #expect(net.waitFor("got", in: "udp6b.log", process: l2, timeout: 5))
            #expect(net.log("udp6b.log").contains("got \(LabNetwork.serverAddress6) 4445 again"), "after the restart: \(net.log("udp6b.log"))")
            net.stop(l2)
            // Lifetime 0 with the same nonce (kept across the restart) removes it, and it is no longer listed.
            let gone = try #require(send(PCP.request(.map, lifetime: 0, client: me, mapping: mapping)))
            #expect(gone[3] == 0 && Self.u32(gone, 4) == 0)
            #expect(!Self.forwards(net).contains { $0["inside"] as? String == "[2001:db8:1::2]:7000" }, "still listed after deletion")
        }
    }

    @Test("UPnP DA 1.1 §4 (GENA): curl SUBSCRIBEs to /evt/IPConn; the initial event (SEQ 0) and, after upnpc adds a mapping, an event with PortMappingNumberOfEntries and SystemUpdateID (SEQ 1) reach the callback; renewal, UNSUBSCRIBE, 412 for an unknown SID and an outside callback")
    func upnpDA_4_genaEventsReachTheSubscriber() throws {
        guard requireTools(["upnpc", "curl", "python3"]) else { return }
        try withLab("pc-gena", extraTables: Self.table) { net, _ in
            let sink = try script(net, "gena_sink.py", """
            import http.server, sys
            class H(http.server.BaseHTTPRequestHandler):
                def do_NOTIFY(self):
                    n = int(self.headers.get("Content-Length", "0"))
                    body = self.rfile.read(n).decode(errors="replace").replace("\\n", " ")
                    print("NOTIFY", self.path, "SID=" + self.headers.get("SID", ""), "SEQ=" + self.headers.get("SEQ", ""),
                          "NT=" + self.headers.get("NT", ""), "NTS=" + self.headers.get("NTS", ""), body, flush=True)
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                def log_message(self, *a):
                    pass
            # socketserver's TCPServer: http.server.HTTPServer looks the address up in DNS (getfqdn) first.
            import socketserver
            socketserver.TCPServer.allow_reuse_address = True
            s = socketserver.TCPServer(("100.64.0.2", 49152), H)
            s.timeout = 0.5
            print("listening", flush=True)
            import time
            end = time.time() + 20
            while time.time() < end:
                s.handle_request()
            """)
            let sinkProcess = try net.spawn(net.client, ["python3", "-u", sink], logName: "gena.log")
            #expect(net.waitFor("listening", in: "gena.log", process: sinkProcess, timeout: 5), "callback server: \(net.log("gena.log"))")
            func request(_ method: String, _ headers: [String]) -> (status: String, headers: String) {
                let o = net.exec(net.client, ["curl", "-s", "-i", "-m", "5", "-X", method] + headers.flatMap { ["-H", $0] }
                                 + ["http://100.64.0.1:5000/evt/IPConn"], timeout: 8)
                let first = o.stdout.split(separator: "\r\n").first.map(String.init) ?? ""
                return (first, o.stdout)
            }
            // The first delivery URL has no listener: events go to the next one (UPnP DA §4.1.2).
            let sub = request("SUBSCRIBE", ["CALLBACK: <http://100.64.0.2:49999/dead><http://100.64.0.2:49152/events>", "NT: upnp:event",
                                            "TIMEOUT: Second-300"])
            #expect(sub.status.contains("200"), "SUBSCRIBE: \(sub.headers)")
            let sidLine = sub.headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix("sid:") }
            let sid = sidLine.map { $0.dropFirst(4).trimmingCharacters(in: .whitespaces) } ?? ""
            #expect(sid.hasPrefix("uuid:") && sub.headers.lowercased().contains("timeout: second-300"), "\(sub.headers)")
            #expect(net.waitFor("SEQ=0", in: "gena.log", process: sinkProcess, timeout: 5), "no initial event: \(net.log("gena.log"))")
            let initial = net.log("gena.log")
            #expect(initial.contains("NOTIFY /events SID=\(sid) SEQ=0 NT=upnp:event NTS=upnp:propchange")
                    && initial.contains("<ExternalIPAddress>198.51.100.1</ExternalIPAddress>")
                    && initial.contains("<PortMappingNumberOfEntries>0</PortMappingNumberOfEntries>"), "initial event: \(initial)")
            let add = net.exec(net.client, ["upnpc", "-i", "-u", Self.rootDesc, "-e", "ev", "-a", "100.64.0.2", "8080", "9393", "TCP", "600"], timeout: 20)
            #expect(add.ok, "\(add.stdout) \(add.stderr)")
            #expect(net.waitFor("SEQ=1", in: "gena.log", process: sinkProcess, timeout: 5), "no event after the mapping: \(net.log("gena.log"))")
            let change = net.log("gena.log").split(separator: "\n").first { $0.contains("SEQ=1") }.map(String.init) ?? ""
            #expect(change.contains("<PortMappingNumberOfEntries>1</PortMappingNumberOfEntries>") && change.contains("<SystemUpdateID>"), "\(change)")
            // Renewal by SID; UNSUBSCRIBE; then the SID is unknown (412).
            #expect(request("SUBSCRIBE", ["SID: \(sid)", "TIMEOUT: Second-600"]).status.contains("200"))
            #expect(request("UNSUBSCRIBE", ["SID: \(sid)"]).status.contains("200"))
            #expect(request("UNSUBSCRIBE", ["SID: \(sid)"]).status.contains("412"))
            // A callback outside the inside network is refused.
            #expect(request("SUBSCRIBE", ["CALLBACK: <http://203.0.113.2:80/>", "NT: upnp:event"]).status.contains("412"))
            // The description says which variables are evented.
            let scpd = net.exec(net.client, ["curl", "-s", "-m", "5", "http://100.64.0.1:5000/WANIPCn.xml"], timeout: 8).stdout
            #expect(scpd.contains("<stateVariable sendEvents=\"yes\"><name>PortMappingNumberOfEntries</name>"), "SCPD")
            net.stop(sinkProcess)
        }
    }

    @Test("WANIPConnection:2 AddPortMapping NewEnabled=0 (SOAP from the inside host): listed as disabled, forwards nothing; added again enabled it forwards on the same port")
    func upnpIGD_newEnabledZeroIsListedButDoesNotForward() throws {
        guard requireTools(["curl", "python3"]) else { return }
        try withLab("pc-disabled", extraTables: Self.table) { net, _ in
            try Self.serveInside(net, "enabled")
            func add(_ enabled: Int) -> String {
                let body = "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>"
                    + "<u:AddPortMapping xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:2\"><NewRemoteHost></NewRemoteHost>"
                    + "<NewExternalPort>9494</NewExternalPort><NewProtocol>TCP</NewProtocol><NewInternalPort>8080</NewInternalPort>"
                    + "<NewInternalClient>100.64.0.2</NewInternalClient><NewEnabled>\(enabled)</NewEnabled>"
                    + "<NewPortMappingDescription>off</NewPortMappingDescription><NewLeaseDuration>600</NewLeaseDuration>"
                    + "</u:AddPortMapping></s:Body></s:Envelope>"
                return net.exec(net.client, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5",
                                             "-H", "SOAPAction: \"urn:schemas-upnp-org:service:WANIPConnection:2#AddPortMapping\"",
                                             "-H", "Content-Type: text/xml", "--data-binary", body, "http://100.64.0.1:5000/ctl/IPConn"], timeout: 8).stdout
            }
            #expect(add(0) == "200")
            let rows = Self.forwards(net)
            #expect(rows.contains { $0["outside"] as? String == "198.51.100.1:9494" && $0["origin"] as? String == "upnp"
                && $0["enabled"] as? Bool == false }, "forwards: \(rows)")
            #expect(!Self.fromOutside(net, 9494).ok, "a disabled mapping forwarded")
            #expect(add(1) == "200")
            #expect(Self.forwards(net).contains { $0["outside"] as? String == "198.51.100.1:9494" && $0["enabled"] == nil })
            let through = Self.fromOutside(net, 9494)
            #expect(through.ok && through.stdout == "enabled\n", "after enabling: \(through.stdout) \(through.stderr)")
        }
    }

    @Test func leasesExpireOnTimeAndARestartKeepsMappingsAndAnnounces() throws {
        guard requireTools(["natpmpc", "curl", "python3"]) else { return }
        guard FileManager.default.isExecutableFile(atPath: swiftnatBinary) else {
            Issue.record("swiftnat binary not found at \(swiftnatBinary)")
            return
        }
        let net = try LabNetwork(tag: "pc-lease")
        defer { net.destroy() }
        let metrics = "\n[metrics]\nlisten = \"127.0.0.1:9771\"\n"
        var daemon = try net.startDaemon(binary: swiftnatBinary, config: net.daemonConfig(behavior: "port-restricted-cone",
                                                                                        extraTables: Self.table + metrics))
        let config = try String(contentsOfFile: net.directory + "/nat44.toml", encoding: .utf8)
        try Self.serveInside(net, "lease")
        // A 3 s lease: there, then gone on time.
        let short = net.exec(net.client, ["natpmpc", "-g", "100.64.0.1", "-a", "9595", "8080", "tcp", "3"], timeout: 15)
        #expect(short.ok, "\(short.stdout) \(short.stderr)")
        let t0 = Date()
        #expect(Self.fromOutside(net, 9595).ok, "the 3 s mapping did not work")
        while Date().timeIntervalSince(t0) < 3.6 { usleep(100_000) }
        #expect(!Self.fromOutside(net, 9595).ok, "the 3 s mapping was still open after 3.6 s")
        #expect(!Self.forwards(net).contains { $0["outside"] as? String == "198.51.100.1:9595" }, "listed after its lease")

        // A 600 s mapping survives a restart, and the new epoch is announced to the client.
        let long = net.exec(net.client, ["natpmpc", "-g", "100.64.0.1", "-a", "9696", "8080", "tcp", "600"], timeout: 15)
        #expect(long.ok, "\(long.stdout) \(long.stderr)")
        let listener = try script(net, "announce.py", """
        import binascii, socket, sys, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 5350))
        s.settimeout(0.5)
        print("listening", flush=True)
        end = time.time() + float(sys.argv[1])
        while time.time() < end:
            try:
                d, a = s.recvfrom(2000)
                print("from", a[0], binascii.hexlify(d).decode(), flush=True)
            except socket.timeout:
                pass
        """)
        let l = try net.spawn(net.client, ["python3", "-u", listener, "20"], logName: "announce.log")
        #expect(net.waitFor("listening", in: "announce.log", process: l, timeout: 5))
        // SSDP (UPnP DA §1.2): ssdp:byebye at the stop, ssdp:alive at the start, on the inside link.
        let ssdp = try script(net, "ssdp.py", """
        import socket, struct, sys, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 1900))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack("4s4s", socket.inet_aton("239.255.255.250"), socket.inet_aton("100.64.0.2")))
        s.settimeout(0.5)
        print("listening", flush=True)
        end = time.time() + float(sys.argv[1])
        while time.time() < end:
            try:
                d, a = s.recvfrom(2000)
                lines = d.decode(errors="replace").split("\\r\\n")
                print(a[0], " ".join(l for l in lines if l.startswith("NTS:") or l.startswith("NT:")), flush=True)
            except socket.timeout:
                pass
        """)
        let sl = try net.spawn(net.client, ["python3", "-u", ssdp, "20"], logName: "ssdp.log")
        #expect(net.waitFor("listening", in: "ssdp.log", process: sl, timeout: 5))
        net.stop(daemon)
        daemon = try net.startDaemon(binary: swiftnatBinary, config: config)
        #expect(net.log("daemon.log").contains("restored 1 of 1 run-time forwards"), "\(net.log("daemon.log"))")
        // RFC 6887 §14.1.3: ANNOUNCE (version 2, opcode 0x80, SUCCESS); RFC 6886 §3.2.1: the address announcement.
        #expect(net.waitFor(" 02800000", in: "announce.log", timeout: 5), "no PCP ANNOUNCE: \(net.log("announce.log"))")
        #expect(net.waitFor(" 00800000", in: "announce.log", timeout: 5), "no NAT-PMP announcement: \(net.log("announce.log"))")
        #expect(net.waitFor("NTS: ssdp:alive", in: "ssdp.log", timeout: 5), "no NOTIFY ssdp:alive: \(net.log("ssdp.log"))")
        #expect(net.log("ssdp.log").contains("100.64.0.1 NT: upnp:rootdevice NTS: ssdp:byebye"), "no NOTIFY ssdp:byebye: \(net.log("ssdp.log"))")
        // The metrics count forwards by origin.
        let scrape = net.exec(net.nat, ["curl", "-sS", "-m", "5", "http://127.0.0.1:9771/metrics"], timeout: 8)
        #expect(scrape.stdout.contains("swiftnat_forwards{origin=\"natpmp\"} 1"), "metrics: \(scrape.stdout.split(separator: "\n").filter { $0.contains("forwards") })")
        let rows = Self.forwards(net)
        #expect(rows.contains { $0["outside"] as? String == "198.51.100.1:9696" && $0["origin"] as? String == "natpmp"
            && (($0["expires_at"] as? Double ?? 0) - Date().timeIntervalSince1970) > 500 }, "after the restart: \(rows)")
        let through = Self.fromOutside(net, 9696)
        #expect(through.ok && through.stdout == "lease\n", "the restored mapping: \(through.stdout) \(through.stderr)")
        net.stop(l)
        net.stop(sl)
        net.stop(daemon)
    }
}
