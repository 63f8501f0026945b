/// RFC 8489 §6.2.1: when a STUN request over UDP is sent and when it has failed.
///
/// The first request goes out at once; each retransmission waits twice as long as the one before,
/// starting from RTO; after Rc requests the client waits Rm × RTO more and gives up. With the defaults
/// (RTO 500 ms, Rc 7, Rm 16) requests leave at 0, 500, 1500, 3500, 7500, 15500 and 31500 ms and the
/// transaction fails at 39500 ms. Time is passed in (`now`, any monotonic origin); nothing here sleeps.
public struct STUNRetransmission: Hashable, Sendable {
    public enum Action: Hashable, Sendable {
        /// Send (or resend) the request now.
        case send
        /// Nothing to do before this time.
        case wait(until: Duration)
        /// No answer: the transaction failed.
        case timedOut
    }

    public let rto: Duration
    /// Rc: how many requests in all.
    public let rc: Int
    /// Rm: the last wait, as a multiple of RTO.
    public let rm: Int
    public private(set) var sent = 0
    private var nextAt: Duration = .zero
    private var interval: Duration

    public init(rto: Duration = .milliseconds(500), rc: Int = 7, rm: Int = 16) {
        self.rto = rto
        self.rc = max(1, rc)
        self.rm = max(1, rm)
        interval = rto
    }

    /// What to do at `now`. `.send` counts as sent.
    public mutating func poll(now: Duration) -> Action {
        if sent == 0 {
            sent = 1
            nextAt = now + (rc == 1 ? rto * rm : interval)
            return .send
        }
        guard now >= nextAt else { return .wait(until: nextAt) }
        if sent >= rc { return .timedOut }
        sent += 1
        interval = interval * 2
        nextAt = sent == rc ? nextAt + rto * rm : nextAt + interval
        return .send
    }

    /// The time at which the transaction fails if no answer comes, counted from the first send.
    public var totalTimeout: Duration {
        var t: Duration = .zero, i = rto
        for _ in 1..<rc { t += i; i = i * 2 }
        return t + rto * rm
    }
}
