import NATWire

/// TCP session states, after RFC 6146 §3.5.2 and RFC 7857 §2.1. "Inside" is the side whose hosts own the
/// mappings (IPv6 for NAT64, the private side for NAPT44); "outside" is the other one. RFC 6146 names the
/// states from the NAT64's point of view: V6 = inside, V4 = outside (``rfc6146Name``).
///
/// One state machine serves NAPT44 and NAT64: ``transition(from:flags:fromInside:)`` says what a segment
/// does to a session, and ``SessionTable/tcpTransition(_:flags:fromInside:now:)`` applies it to a session
/// of the table, timers included.
public enum TCPState: UInt8, Sendable, CustomStringConvertible {
    case closed = 0
    /// A SYN came from the inside; waiting for the other side's SYN (RFC 6146 "V6 INIT").
    case outboundInit = 1
    /// A SYN came from the outside (through a forward or an open filter); waiting for the inside SYN
    /// (RFC 6146 "V4 INIT").
    case inboundInit = 2
    case established = 3
    /// The inside sent a FIN (RFC 6146 "V6 FIN RCV").
    case outboundFIN = 4
    /// The outside sent a FIN (RFC 6146 "V4 FIN RCV").
    case inboundFIN = 5
    /// FINs seen both ways: the connection closed cleanly (RFC 6146 "V6 FIN + V4 FIN RCV").
    case bothFIN = 6
    /// After an RST, an expired established timer, or picked up mid-stream: kept on the transitory timer
    /// (RFC 6146 "TRANS", RFC 7857 §2.1).
    case transitory = 7

    public var description: String {
        switch self {
        case .closed: "CLOSED"
        case .outboundInit: "SYN_SENT"
        case .inboundInit: "SYN_RECV"
        case .established: "ESTABLISHED"
        case .outboundFIN: "FIN_OUT"
        case .inboundFIN: "FIN_IN"
        case .bothFIN: "FIN_BOTH"
        case .transitory: "TRANSITORY"
        }
    }

    /// The state's name in RFC 6146 §3.5.2 (inside = IPv6, outside = IPv4).
    public var rfc6146Name: String {
        switch self {
        case .closed: "CLOSED"
        case .outboundInit: "V6 INIT"
        case .inboundInit: "V4 INIT"
        case .established: "ESTABLISHED"
        case .outboundFIN: "V6 FIN RCV"
        case .inboundFIN: "V4 FIN RCV"
        case .bothFIN: "V6 FIN + V4 FIN RCV"
        case .transitory: "TRANS"
        }
    }

    /// The timer a session in this state runs on: TCP_EST (RFC 6146 §4: at least 2 h 4 min) while the
    /// connection is open or half closed, TCP_TRANS (at least 4 min) otherwise.
    @inlinable public var timerClass: TimerClass {
        switch self {
        case .established, .outboundFIN, .inboundFIN: .tcpEstablished
        default: .tcpTransitory
        }
    }

    /// The state of a new session whose first segment has `flags`: a SYN without ACK opens it from its
    /// side (V6 INIT or V4 INIT); anything else picks the connection up mid-stream (TRANS, until the other
    /// side answers).
    @inlinable
    public static func initial(flags: TCPFlags, fromInside: Bool) -> TCPState {
        if flags.contains(.syn) && !flags.contains(.ack) { return fromInside ? .outboundInit : .inboundInit }
        return .transitory
    }

    /// What a segment with `flags`, from the inside or the outside, does to a session in state `state`
    /// (RFC 6146 §3.5.2.2 with RFC 7857 §2.1's RST handling):
    ///
    /// | state | segment | next | timer |
    /// |---|---|---|---|
    /// | CLOSED | SYN | V6/V4 INIT by direction | refreshed |
    /// | CLOSED | other | TRANS | refreshed |
    /// | V6 INIT | V4 SYN | ESTABLISHED | TCP_EST |
    /// | V4 INIT | V6 SYN | ESTABLISHED | TCP_EST |
    /// | V6/V4 INIT | RST | TRANS | TCP_TRANS |
    /// | ESTABLISHED | V6/V4 FIN | V6/V4 FIN RCV | TCP_EST |
    /// | ESTABLISHED, V6/V4 FIN RCV | RST | TRANS | TCP_TRANS |
    /// | V6 FIN RCV | V4 FIN (V4 FIN RCV: V6 FIN) | V6 FIN + V4 FIN RCV | TCP_TRANS |
    /// | V6 FIN + V4 FIN RCV | any | unchanged | not refreshed |
    /// | TRANS | not RST | ESTABLISHED | TCP_EST |
    /// | TRANS | RST | unchanged | not refreshed |
    /// | any other | any | unchanged | refreshed |
    @inlinable
    public static func transition(from state: TCPState, flags: TCPFlags, fromInside: Bool) -> (state: TCPState, refresh: Bool) {
        let rst = flags.contains(.rst)
        switch state {
        case .closed:
            return (flags.contains(.syn) ? (fromInside ? .outboundInit : .inboundInit) : .transitory, true)
        case .outboundInit:
            if !fromInside && flags.contains(.syn) { return (.established, true) }
            if rst { return (.transitory, true) }
        case .inboundInit:
            if fromInside && flags.contains(.syn) { return (.established, true) }
            if rst { return (.transitory, true) }
        case .established:
            if rst { return (.transitory, true) }
            if flags.contains(.fin) { return (fromInside ? .outboundFIN : .inboundFIN, true) }
        case .outboundFIN:
            if rst { return (.transitory, true) }
            if !fromInside && flags.contains(.fin) { return (.bothFIN, true) }
        case .inboundFIN:
            if rst { return (.transitory, true) }
            if fromInside && flags.contains(.fin) { return (.bothFIN, true) }
        case .bothFIN:
            // Forwarded, but not refreshed: the transitory timer runs out (RFC 6146 §3.5.2.2).
            return (.bothFIN, false)
        case .transitory:
            // Any segment but an RST brings the session back (RFC 6146: TRANS → ESTABLISHED).
            return rst ? (.transitory, false) : (.established, true)
        }
        return (state, true)
    }
}

extension SessionTable {
    /// Applies ``TCPState/transition(from:flags:fromInside:)`` to session `sid`: the new state, the
    /// timer list of its class (refreshed on a change of class), or a plain refresh, or nothing. Entering
    /// "both FIN" marks the session closed cleanly (its port may be reused at once, RFC 6888 REQ-8).
    /// Returns the new state.
    @inlinable @discardableResult
    public mutating func tcpTransition(_ sid: UInt32, flags: TCPFlags, fromInside: Bool, now: UInt32) -> TCPState {
        let l = sessionLinks + Int(sid)
        let state = TCPState(rawValue: l.pointee.state) ?? .closed
        let (next, refresh) = TCPState.transition(from: state, flags: flags, fromInside: fromInside)
        if next != state {
            l.pointee.state = next.rawValue
            if next == .bothFIN { sessions[Int(sid)].flags |= SessionRecord.flagCleanClose }
            let cls = next.timerClass
            if cls.rawValue != l.pointee.timerClass {
                setTimerClass(sid, cls, now: now)
            } else {
                touch(sid, now: now)
            }
        } else if refresh {
            touch(sid, now: now)
        }
        return next
    }
}
