import Foundation
import NATWire
#if canImport(Glibc)
import Glibc
#endif

/// `swiftnat lab-tool ping`: ICMP or ICMPv6 echo requests over a raw socket (the lab runs as root, and a
/// fresh namespace's `net.ipv4.ping_group_range` allows no unprivileged ping sockets), printed as ping does:
/// `64 bytes from 203.0.113.2: icmp_seq=1 ttl=63 time=0.41 ms`. ICMP errors about its own requests
/// (time exceeded, unreachable) are printed as `From <router> icmp_seq=N <what>`.
public struct LabPing {
    public var destination: String
    public var count = 3
    /// Seconds between requests.
    public var interval = 1.0
    /// Seconds to wait for the last reply.
    public var wait = 2.0
    /// The source address to bind (`-I`), if any.
    public var source: String?
    /// The TTL / hop limit of the requests, if not the system's.
    public var ttl: Int?
    /// Bytes of payload after the 8-byte ICMP header.
    public var size = 56

    public init(destination: String) { self.destination = destination }

    /// Runs it; true when at least one reply came back (ping's exit status 0).
    public func run() throws(LabToolError) -> Bool {
        guard (1...1000).contains(count) else { throw LabToolError("count \(count): use 1 to 1000") }
        guard (0.01...60).contains(interval), (0.01...60).contains(wait) else { throw LabToolError("interval and wait: 0.01 to 60 seconds") }
        guard (0...1400).contains(size) else { throw LabToolError("size \(size): use 0 to 1400") }
        let to = try LabSocketAddress(host: destination, port: 0)
        let v6 = to.family == AF_INET6
        let sock = try LabSocket(family: to.family, type: Int32(SOCK_RAW.rawValue),
                                 protocol: Int32(v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP))
        if let source {
            let s = try LabSocketAddress(host: source, port: 0)
            guard s.family == to.family else { throw LabToolError("source \(source) and destination \(destination) are not of one family") }
            try sock.bind(s)
        }
        if v6 { try sock.setOption(Int32(IPPROTO_IPV6), IPV6_RECVHOPLIMIT, Int32(1), "IPV6_RECVHOPLIMIT") }
        if let ttl {
            guard (1...255).contains(ttl) else { throw LabToolError("ttl \(ttl): use 1 to 255") }
            if v6 { try sock.setOption(Int32(IPPROTO_IPV6), IPV6_UNICAST_HOPS, Int32(ttl), "IPV6_UNICAST_HOPS") }
            else { try sock.setOption(Int32(IPPROTO_IP), IP_TTL, Int32(ttl), "IP_TTL") }
        }
        // Raw sockets see every ICMP message of the namespace: ours carry this identifier.
        let identifier = UInt16(truncatingIfNeeded: getpid())
        say("PING \(to.host): \(size) data bytes")
        var sent: [UInt16: Date] = [:]
        var received = 0
        let start = Date()
        var buffer = [UInt8](repeating: 0, count: 65536)
        for seq in 1...count {
            let sequence = UInt16(seq)
            try sock.send(request(v6: v6, identifier: identifier, sequence: sequence), to: to)
            sent[sequence] = Date()
            let until = seq == count ? Date().addingTimeInterval(wait) : start.addingTimeInterval(interval * Double(seq))
            while let r = try sock.receiveWithHopLimit(into: &buffer, until: until) {
                guard let from = r.from else { continue }
                let line = buffer.withUnsafeBytes { b in
                    describe(UnsafeRawBufferPointer(rebasing: b[..<r.count]), v6: v6, from: from, hopLimit: r.hopLimit,
                             identifier: identifier, sent: &sent)
                }
                if let line {
                    say(line.text)
                    if line.isReply { received += 1 }
                }
                if seq == count && received == count { break }
            }
        }
        let loss = (count - received) * 100 / count
        say("--- \(to.host) ping statistics ---")
        say("\(count) packets transmitted, \(received) received, \(loss)% packet loss, time \(Int(Date().timeIntervalSince(start) * 1000))ms")
        return received > 0
    }

    /// An echo request: the ICMP header and `size` bytes of pattern. ICMPv4 gets its checksum here; the
    /// kernel fills in ICMPv6's (RFC 3542 §3.1: it always does on an ICMPv6 raw socket).
    private func request(v6: Bool, identifier: UInt16, sequence: UInt16) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 8 + size)
        for i in 0..<size { bytes[8 + i] = UInt8(truncatingIfNeeded: 0x10 + i) }
        bytes.withUnsafeMutableBytes { b in
            if v6 {
                ICMPv6Header(type: ICMPv6Type.echoRequest, identifier: identifier, sequenceNumber: sequence).emit(into: b)
            } else {
                ICMPv4Header(type: ICMPv4Type.echoRequest, identifier: identifier, sequenceNumber: sequence).emit(into: b)
                let c = Checksum.compute(UnsafeRawBufferPointer(b))
                b[ICMPv4Layout.checksum] = UInt8(c >> 8)
                b[ICMPv4Layout.checksum + 1] = UInt8(c & 0xFF)
            }
        }
        return bytes
    }

    /// A line for a message about one of our requests, or nil for anything else. An IPv4 raw socket
    /// hands over the IP header too; an IPv6 one only the ICMPv6 message.
    private func describe(_ bytes: UnsafeRawBufferPointer, v6: Bool, from: LabSocketAddress, hopLimit: Int?,
                          identifier: UInt16, sent: inout [UInt16: Date]) -> (text: String, isReply: Bool)? {
        var ttl = hopLimit
        var message = bytes
        if !v6 {
            guard let ip = try? IPv4View(validating: bytes) else { return nil }
            ttl = Int(ip.ttl)
            message = UnsafeRawBufferPointer(start: ip.payloadPointer, count: ip.payloadLength)
        }
        guard message.count >= 8 else { return nil }
        let type: UInt8, id: UInt16, seq: UInt16, isError: Bool
        if v6 {
            let m = ICMPv6View(unchecked: message.baseAddress!, count: message.count)
            (type, id, seq, isError) = (m.type, m.identifier, m.sequenceNumber, m.isError)
        } else {
            let m = ICMPv4View(unchecked: message.baseAddress!, count: message.count)
            (type, id, seq, isError) = (m.type, m.identifier, m.sequenceNumber, m.isError)
        }
        let reply = v6 ? ICMPv6Type.echoReply : ICMPv4Type.echoReply
        if type == reply && id == identifier, let t = sent.removeValue(forKey: seq) {
            let ms = Date().timeIntervalSince(t) * 1000
            let hops = ttl.map { " ttl=\($0)" } ?? ""
            return ("\(message.count) bytes from \(from.host): icmp_seq=\(seq)\(hops) time=\(String(format: "%.2f", ms)) ms", true)
        }
        guard isError, let quoted = quotedEcho(message, v6: v6), quoted.id == identifier, sent[quoted.seq] != nil else { return nil }
        return ("From \(from.host) icmp_seq=\(quoted.seq) \(errorName(v6: v6, type: type, code: message[1]))", false)
    }

    /// The identifier and sequence number of the echo request an ICMP error quotes.
    private func quotedEcho(_ message: UnsafeRawBufferPointer, v6: Bool) -> (id: UInt16, seq: UInt16)? {
        let body = UnsafeRawBufferPointer(rebasing: message[8...])
        if v6 {
            guard body.count >= IPv6Layout.headerLength + 8 else { return nil }
            let ip = IPv6View(unchecked: body.baseAddress!, count: body.count)
            guard ip.nextHeader == IPProtocol.icmpv6 else { return nil }
            let m = ICMPv6View(unchecked: ip.payloadPointer, count: ip.payloadLength)
            return m.type == ICMPv6Type.echoRequest ? (m.identifier, m.sequenceNumber) : nil
        }
        guard body.count >= IPv4Layout.minimumHeaderLength + 8 else { return nil }
        let ip = IPv4View(unchecked: body.baseAddress!, count: body.count)
        guard ip.headerLength >= IPv4Layout.minimumHeaderLength, ip.headerLength + 8 <= body.count,
              ip.protocolNumber == IPProtocol.icmp else { return nil }
        let m = ICMPv4View(unchecked: ip.payloadPointer, count: ip.payloadLength)
        return m.type == ICMPv4Type.echoRequest ? (m.identifier, m.sequenceNumber) : nil
    }

    private func errorName(v6: Bool, type: UInt8, code: UInt8) -> String {
        switch (v6, type) {
        case (false, ICMPv4Type.timeExceeded), (true, ICMPv6Type.timeExceeded): "Time to live exceeded"
        case (false, ICMPv4Type.destinationUnreachable), (true, ICMPv6Type.destinationUnreachable): "Destination unreachable (code \(code))"
        case (true, ICMPv6Type.packetTooBig): "Packet too big"
        default: "ICMP\(v6 ? "v6" : "") type \(type) code \(code)"
        }
    }
}
