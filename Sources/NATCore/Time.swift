/// A point on the engine's clock. Engines never read a clock: the runtime passes `now` in, so every
/// timeout is testable with a manual clock.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var nanoseconds: UInt64

    @inlinable public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }
    @inlinable public static func seconds(_ s: Double) -> Timestamp { Timestamp(nanoseconds: UInt64(s * 1e9)) }
    @inlinable public static func milliseconds(_ ms: UInt64) -> Timestamp { Timestamp(nanoseconds: ms &* 1_000_000) }
    public static let zero = Timestamp(nanoseconds: 0)

    /// Whole seconds, the resolution of session timers.
    @inlinable public var seconds: UInt32 { UInt32(truncatingIfNeeded: nanoseconds / 1_000_000_000) }
    /// Whole seconds rounded up: what a session records as its last use. Its idle timer then never ends
    /// early: it expires when `lastSeen + timeout <= now.seconds` (rounded down), so at least `timeout`
    /// seconds after the packet, and at most one second later (RFC 4787 REQ-5, RFC 5382 REQ-5, RFC 5508
    /// REQ-1 are minimums).
    @inlinable public var sessionSeconds: UInt32 {
        UInt32(truncatingIfNeeded: (nanoseconds &+ 999_999_999) / 1_000_000_000)
    }
    /// Whole milliseconds, the resolution of fragment and SYN-hold timers.
    @inlinable public var milliseconds: UInt64 { nanoseconds / 1_000_000 }

    @inlinable public static func < (a: Timestamp, b: Timestamp) -> Bool { a.nanoseconds < b.nanoseconds }
    @inlinable public static func + (a: Timestamp, s: Double) -> Timestamp {
        Timestamp(nanoseconds: a.nanoseconds &+ UInt64(s * 1e9))
    }
    public var description: String { "t=\(Double(nanoseconds) / 1e9)s" }
}
