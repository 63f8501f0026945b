import Foundation
import NATLab
import NATRuntime
import Testing

// UDP GRO forwarding: the daemon turns GRO and UDP GRO forwarding on for the inside interface (and a
// GRO flush timeout, since a veth link hands packets over one at a time), the kernel merges a burst of
// one flow's datagrams into one UDP GSO super-packet, swiftnat translates it once and hands it back as
// one (GSO UDP_L4), and the kernel cuts it up again on the way out. The server must get every datagram
// intact and in order, and the daemon must have seen fewer packets than were sent; at stop the
// interface's settings are back as they were.

/// Sends `count` 64-byte datagrams (a 4-byte sequence number, then a pattern of it) as fast as it can.
private func senderScript(family: String, address: String, port: Int, count: Int) -> String {
    """
    import socket, struct
    s = socket.socket(socket.\(family), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    for i in range(\(count)):
        body = struct.pack("!I", i) + bytes((i + k) & 0xFF for k in range(60))
        while True:
            try:
                s.sendto(body, ("\(address)", \(port)))
                break
            except BlockingIOError:
                pass
    print("SENT", \(count))
    """
}

/// Receives until 2 s of silence (at most 20 s); checks every datagram's length and pattern.
private func receiverScript(family: String, address: String, port: Int) -> String {
    """
    import socket, struct, sys, time
    s = socket.socket(socket.\(family), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)   # SO_RCVBUFFORCE: no loss in the receiver
    s.bind(("\(address)", \(port)))
    print("READY", flush=True)
    s.settimeout(15)
    got, bad, order, last = 0, 0, 0, -1
    seen = set()
    end = time.time() + 20
    while time.time() < end:
        try:
            d = s.recv(2048)
        except socket.timeout:
            break
        s.settimeout(2)
        got += 1
        if len(d) != 64:
            bad += 1; continue
        i = struct.unpack("!I", d[:4])[0]
        if d[4:] != bytes((i + k) & 0xFF for k in range(60)):
            bad += 1
        if i < last: order += 1
        last = i
        seen.add(i)
    print("RECEIVED", got, "DISTINCT", len(seen), "BAD", bad, "REORDERED", order, flush=True)
    """
}

private func parse(_ text: String, _ key: String) -> Int? {
    let f = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
    guard let i = f.firstIndex(where: { $0 == key }), i + 1 < f.count else { return nil }
    return Int(f[i + 1])
}

/// Runs the burst from client to server through the daemon; returns (sent, received line).
/// Sends `count` 64-byte datagrams from the client to `address` and checks what the server got: all
/// sent, at least 99 % received, none damaged, none twice. Returns how many arrived.
private func burst(_ net: LabNetwork, family: String, to address: String, count: Int) throws -> Int {
    let port = 7700
    let rx = try script(net, "rx.py", receiverScript(family: "AF_INET", address: LabNetwork.serverAddress, port: port))
    let tx = try script(net, "tx.py", senderScript(family: family, address: address, port: port, count: count))
    let receiver = try net.spawn(net.server, ["timeout", "30", "python3", "-u", rx], logName: "rx.log")
    defer { if receiver.isRunning { receiver.terminate() } }
    let ready = Date().addingTimeInterval(5)
    while !net.log("rx.log").contains("READY") && Date() < ready { usleep(50_000) }
    let sent = net.exec(net.client, ["python3", tx], timeout: 30)
    #expect(sent.ok, "sender: \(sent.stderr)")
    let end = Date().addingTimeInterval(25)
    while receiver.isRunning && Date() < end { usleep(100_000) }
    let log = net.log("rx.log"), received = parse(log, "RECEIVED") ?? 0
    #expect(parse(sent.stdout, "SENT") == count)
    #expect(received >= count * 99 / 100, "received \(received) of \(count): \(log)")
    #expect(parse(log, "BAD") == 0 && parse(log, "DISTINCT") == received, "\(log)")
    return received
}

private func groState(_ net: LabNetwork) -> (gro: Bool, udpForwarding: Bool, flushTimeout: String) {
    let k = net.exec(net.nat, ["ethtool", "-k", "in0"]).stdout
    let t = net.exec(net.nat, ["cat", "/sys/class/net/in0/gro_flush_timeout"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    return (k.contains("generic-receive-offload: on"), k.contains("rx-udp-gro-forwarding: on"), t)
}

@Suite(.serialized, .enabled(if: canRunLab, "end-to-end tests need root, /dev/net/tun and iproute2 (ip): run `sudo swift test` or .ci/run"))
struct GROEndToEndTests {
    static let count = 20_000

    @Test func nat44UDPBurstCrossesAsSuperPacketsAndSettingsAreRestored() throws {
        guard requireTools(["python3", "ethtool"]) else { return }
        let net = try LabNetwork(tag: "gro44")
        defer { net.destroy() }
        // The veth default, as the daemon will find it.
        _ = net.exec(net.nat, ["ethtool", "-K", "in0", "gro", "off", "rx-udp-gro-forwarding", "off"])
        #expect(groState(net) == (false, false, "0"))
        let daemon = try net.startDaemon(binary: swiftnatBinary,
                                         config: net.daemonConfig(behavior: "port-restricted-cone",
                                                                  extraTables: "[routing]\ngro_flush_timeout_us = 500\n"))
        #expect(groState(net) == (true, true, "500000"), "the daemon did not set GRO up on in0: \(net.log("daemon.log"))")
        let received = try burst(net, family: "AF_INET", to: LabNetwork.serverAddress, count: Self.count)
        _ = net.sessions(daemon: daemon)
        let stats = net.log("daemon.log").split(separator: "\n").last { $0.contains("stats queue=") }.map(String.init) ?? ""
        let outbound = statsCounter(stats, "outbound") ?? Int.max
        #expect(outbound * 4 < received, "the daemon saw \(outbound) packets for \(received) datagrams: not merged (\(stats))")
        print("gro44: \(received) datagrams of \(Self.count) in \(outbound) packets: \(stats)")
        net.stop(daemon)
        #expect(net.log("daemon.log").contains("stopped: routes and snat0 removed"))
        #expect(groState(net) == (false, false, "0"), "GRO settings not restored at stop")
    }

    @Test(arguments: ["stateful", "siit"])
    func nat64UDPBurstCrossesAsSuperPackets(mode: String) throws {
        guard requireTools(["python3", "ethtool"]) else { return }
        let config: (LabNetwork) -> String = {
            $0.nat64Config(mode: mode) + "\n[routing]\ngro_interfaces = [\"in0\"]\ngro_flush_timeout_us = 500\n"
        }
        try withNAT64Lab("gro64-\(mode)", config: config) { net, daemon in
            #expect(groState(net) == (true, true, "500000"), "the daemon did not set GRO up on in0: \(net.log("daemon.log"))")
            let received = try burst(net, family: "AF_INET6", to: LabNetwork.serverAddress6, count: Self.count)
            let stats = nat64Dump(net, daemon).stats
            let translated = statsCounter(stats, "v6_to_v4") ?? Int.max
            #expect(translated * 4 < received, "the daemon translated \(translated) packets for \(received) datagrams: not merged (\(stats))")
            print("gro64 \(mode): \(received) datagrams of \(Self.count) in \(translated) packets: \(stats)")
        }
    }
}
