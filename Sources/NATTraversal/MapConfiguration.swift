#if canImport(Glibc)
import Glibc
#endif
import NATWire
import STUN

/// NATMap's -b: which local port to map.
public enum BindPort: Hashable, Sendable, CustomStringConvertible {
    /// `-b 0` (the default): a port the kernel picks.
    case any
    /// `-b P`.
    case fixed(UInt16)
    /// `-b P~Q`: a random free port in the range.
    case randomIn(ClosedRange<UInt16>)
    /// `-b P-Q`: the first free port of the range.
    case nextFreeIn(ClosedRange<UInt16>)

    public init?(_ text: String) {
        func range(_ sep: Character) -> ClosedRange<UInt16>? {
            let p = text.split(separator: sep, omittingEmptySubsequences: false)
            guard p.count == 2, let a = UInt16(p[0]), let b = UInt16(p[1]), a > 0, a <= b else { return nil }
            return a...b
        }
        if let p = UInt16(text) {
            self = p == 0 ? .any : .fixed(p)
        } else if text.contains("~"), let r = range("~") {
            self = .randomIn(r)
        } else if text.contains("-"), let r = range("-") {
            self = .nextFreeIn(r)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .any: "0"
        case .fixed(let p): "\(p)"
        case .randomIn(let r): "\(r.lowerBound)~\(r.upperBound)"
        case .nextFreeIn(let r): "\(r.lowerBound)-\(r.upperBound)"
        }
    }
}

/// bind mode (the user's service listens on the bind port) or forward mode (-t/-p: swiftnat listens and relays).
public enum MapMode: Hashable, Sendable {
    case bind
    /// Relay to `target`; `port` 0 means "the public port" (NATMap's -p 0).
    case forward(target: String, port: UInt16)
}

/// `swiftnat map`'s settings, with NATMap's meaning for each option.
public struct MapConfiguration: Sendable {
    public var ipv6 = false
    public var udp = false
    /// -i: an interface name (SO_BINDTODEVICE) or a local address to bind.
    public var interface: String?
    /// -k: seconds between keep-alives.
    public var keepAlive = 10
    /// -c: a full STUN check (with retransmissions and failover) every this many keep-alive intervals.
    public var checkCycle = 10
    /// -s: STUN servers in failover order.
    public var stunServers: [String] = []
    /// -h: the HTTP server for TCP keep-alives.
    public var httpServer: String?
    /// -e: the notify script.
    public var script: String?
    /// -f: SO_MARK.
    public var fwmark: UInt32?
    public var bindPort: BindPort = .any
    /// -C: TCP congestion control for forwarded connections.
    public var congestion: String?
    /// -T: forwarding idle timeout in seconds.
    public var idleTimeout = 300
    public var mode: MapMode = .bind
    public var json = false
    /// Longest wait between retries after failures.
    public var maximumBackoff = 64

    public init() {}

    public var protocolName: String { udp ? "udp" : "tcp" }
    public var family: Int32 { ipv6 ? AF_INET6 : AF_INET }

    /// The local address to bind (from -i when it is an address) and the device (when it is a name).
    public var localAddress: STUNAddress? { interface.flatMap { STUNAddress($0) } }
    public var device: String? { interface.flatMap { STUNAddress($0) == nil ? $0 : nil } }

    public var socketOptions: SocketOptions { SocketOptions(reusePort: true, device: device, fwmark: fwmark) }

    /// What is wrong with these settings, said so that a person can fix it; nil when they are usable.
    public func problem() -> String? {
        if stunServers.isEmpty { return "no STUN server: give one or more -s ADDRESS[:PORT]" }
        if !udp && httpServer == nil { return "TCP mapping needs an HTTP server for keep-alives: -h ADDRESS[:PORT] (or -u for UDP)" }
        if keepAlive < 1 { return "-k must be at least 1 second" }
        if checkCycle < 1 { return "-c must be at least 1" }
        if idleTimeout < 1 { return "-T must be at least 1 second" }
        if let a = localAddress, a.isIPv4 == ipv6 { return "-i \(interface!) is not an IPv\(ipv6 ? 6 : 4) address (use -\(ipv6 ? 4 : 6) or another address)" }
        if case .forward(let t, _) = mode, t.isEmpty { return "-t needs a target address" }
        return nil
    }

    /// NATMap's -f: hexadecimal (0x…), octal (0…) or decimal.
    public static func parseMark(_ text: String) -> UInt32? {
        if text.hasPrefix("0x") || text.hasPrefix("0X") { return UInt32(text.dropFirst(2), radix: 16) }
        if text.count > 1, text.hasPrefix("0") { return UInt32(text.dropFirst(), radix: 8) }
        return UInt32(text)
    }
}

/// A mapping as NATMap reports it to its script (argv[1]-argv[6]).
public struct MappingInfo: Hashable, Sendable, Codable {
    public var publicAddress: String
    public var publicPort: UInt16
    public var ip4p: String
    public var bindPort: UInt16
    public var `protocol`: String
    public var privateAddress: String
    public var stunServer: String

    public init(public e: STUNEndpoint, bindPort: UInt16, protocol p: String, privateAddress: String, stunServer: String) {
        publicAddress = e.address.description
        publicPort = e.port
        // IP4P carries an IPv4 address; for IPv6 mappings NATMap's third argument has nothing to say.
        if case .v4(let a) = e.address { ip4p = IP4P.text(a, port: e.port) } else { ip4p = "::" }
        self.bindPort = bindPort
        self.protocol = p
        self.privateAddress = privateAddress
        self.stunServer = stunServer
    }

    /// The script's six arguments, in NATMap's order.
    public var scriptArguments: [String] {
        [publicAddress, String(publicPort), ip4p, String(bindPort), self.protocol, privateAddress]
    }

    /// Same mapping (the STUN server that reported it does not matter).
    public func sameMapping(as o: MappingInfo) -> Bool { scriptArguments == o.scriptArguments }
}

/// Waits that double after each failure up to a maximum, and start over after a success.
public struct Backoff: Sendable {
    public let initial: Duration
    public let maximum: Duration
    public private(set) var next: Duration

    public init(initial: Duration = .seconds(1), maximum: Duration = .seconds(64)) {
        self.initial = initial
        self.maximum = maximum
        next = initial
    }

    /// The wait before the next attempt; doubles the one after.
    public mutating func failed() -> Duration {
        let d = next
        next = min(maximum, next * 2)
        return d
    }

    public mutating func succeeded() { next = initial }
}
