/// Idle timeouts in seconds (milliseconds for the SYN hold and fragment state), for NAPT44 and stateful
/// NAT64 alike. The defaults are the RFCs': UDP 300 s (RFC 4787 REQ-5, RFC 6146 §4 UDP_DEFAULT), TCP
/// established 7440 s (RFC 5382 REQ-5, RFC 6146 §4 TCP_EST), TCP transitory 240 s (RFC 5382, RFC 6146
/// TCP_TRANS), ICMP 60 s (RFC 5508 REQ-1, RFC 6146 ICMP_DEFAULT). Each engine's `validate()` holds the
/// minimums its RFCs set.
public struct Timeouts: Sendable, Hashable {
    public var udp: UInt32 = 300
    public var tcpEstablished: UInt32 = 7440
    public var tcpTransitory: UInt32 = 240
    public var icmp: UInt32 = 60
    /// Other protocols through 1:1 NAT (NAPT44; stateless, kept for completeness). Stateful NAT64 keeps
    /// sessions for TCP, UDP and ICMP only.
    public var other: UInt32 = 60
    /// How long an unsolicited inbound SYN is held before it is answered or dropped: RFC 5382 REQ-4 (NAPT44),
    /// RFC 6146 §4 TCP_INCOMING_SYN (NAT64), 6 s.
    public var synHoldMilliseconds: UInt64 = 6000
    /// How long a released outside port waits before reuse (RFC 6888 REQ-8; a cleanly closed TCP
    /// connection frees its port at once). 0: no wait.
    public var portHold: UInt32 = 120
    /// How long fragment state and held fragments live (RFC 6146 §4 FRAGMENT_MIN: 2 s).
    public var fragmentMilliseconds: UInt64 = 2000

    public init() {}

    @inlinable public func seconds(for c: TimerClass) -> UInt32 {
        switch c {
        case .udp: udp
        case .tcpEstablished: tcpEstablished
        case .tcpTransitory: tcpTransitory
        case .icmp: icmp
        case .other: other
        }
    }
}
