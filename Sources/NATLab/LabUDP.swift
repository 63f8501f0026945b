import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `swiftnat lab-tool udp-echo`: sends every datagram back to where it came from and prints a line per
/// datagram with the sender it saw (`echoed 22 bytes to 198.51.100.1:40000: udp through swiftnat`).
/// It stops after `duration` seconds.
public struct LabUDPEcho {
    public var address: String
    public var port: UInt16
    public var duration: Double

    public init(address: String, port: UInt16, duration: Double) {
        self.address = address
        self.port = port
        self.duration = duration
    }

    public func run() throws(LabToolError) {
        try checkSeconds(duration, "--duration")
        let end = Date().addingTimeInterval(duration)
        let local = try LabSocketAddress(host: address, port: port)
        let s = try LabSocket(family: local.family, type: Int32(SOCK_DGRAM.rawValue))
        try s.setOption(SOL_SOCKET, SO_REUSEADDR, Int32(1), "SO_REUSEADDR")
        try s.bind(local)
        say("listening on udp \(local) for \(Int(duration)) s")
        var buffer = [UInt8](repeating: 0, count: 65536)
        while let r = try s.receive(into: &buffer, until: end) {
            guard let from = r.from else { continue }
            let datagram = Array(buffer[..<r.count])
            do {
                try s.send(datagram, to: from)
                say("echoed \(r.count) bytes to \(from): \(printable(datagram))")
            } catch {
                say("cannot echo to \(from): \(error)")
            }
        }
        say("stopped after \(Int(duration)) s")
    }
}

/// `swiftnat lab-tool udp-send`: sends one datagram and prints the answer (the first datagram back from
/// the same address and port). An ICMP port unreachable in answer is reported as such.
public struct LabUDPSend {
    public var address: String
    public var port: UInt16
    public var message: String
    public var sourcePort: UInt16?
    public var source: String?
    public var timeout: Double

    public init(address: String, port: UInt16, message: String, sourcePort: UInt16? = nil, source: String? = nil, timeout: Double = 2) {
        self.address = address
        self.port = port
        self.message = message
        self.sourcePort = sourcePort
        self.source = source
        self.timeout = timeout
    }

    /// The answer's bytes.
    public func run() throws(LabToolError) -> [UInt8] {
        try checkSeconds(timeout, "--timeout")
        let deadline = Date().addingTimeInterval(timeout)
        let to = try LabSocketAddress(host: address, port: port)
        let s = try LabSocket(family: to.family, type: Int32(SOCK_DGRAM.rawValue))
        if source != nil || sourcePort != nil {
            let local = try LabSocketAddress(host: source ?? (to.family == AF_INET6 ? "::" : "0.0.0.0"), port: sourcePort ?? 0)
            guard local.family == to.family else { throw LabToolError("source \(source ?? "") and \(address) are not of one family") }
            try s.bind(local)
        }
        // Connected: only the peer's datagrams come in, and an ICMP port unreachable fails the receive.
        try s.connect(to, deadline: deadline)
        try s.send(Array(message.utf8))
        var buffer = [UInt8](repeating: 0, count: 65536)
        do throws(LabToolError) {
            guard let r = try s.receive(into: &buffer, until: deadline) else {
                throw LabToolError("no answer from \(to) within \(timeout) s")
            }
            return Array(buffer[..<r.count])
        } catch {
            if error.code == ECONNREFUSED {
                throw LabToolError("\(to) refused it (ICMP port unreachable)")
            }
            throw error
        }
    }
}

/// A datagram as text for a log line: its UTF-8, newlines and other controls escaped.
func printable(_ bytes: [UInt8]) -> String {
    String(decoding: bytes, as: UTF8.self).unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? $0.escaped(asASCII: true) : String($0) }.joined()
}
