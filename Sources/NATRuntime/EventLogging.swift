import Logging
import NAPT44
import NATCore
import NATWire

/// What a packet thread logs beyond start and stop, rate-limited so that a flood cannot fill a disk:
/// mapping creation and removal (RFC 6888 §4: time, protocol, inside and outside endpoint; the remote
/// endpoint only with `destinations`), and once a second a summary of new flows refused by a limit and
/// of invalid packets. Lines over `rate_per_second` in a second are counted and reported as suppressed.
struct EventLogger {
    var settings: LoggingSettings
    let queue: Int
    let logger: Logger
    private var second: UInt64 = 0
    private var linesThisSecond = 0
    private var suppressed: UInt64 = 0
    private var lastSummary: Counters? = nil

    init(settings: LoggingSettings, queue: Int, logger: Logger) {
        self.settings = settings
        self.queue = queue
        self.logger = logger
    }

    /// The drops reported as limit hits.
    static let limitReasons: [DropReason] = [.sessionTableFull, .mappingTableFull, .hostTableFull, .hostSessionLimit,
                                             .hostPortLimit, .portsExhausted, .poolExhausted, .icmpRateLimited]
    /// The drops reported as invalid packets.
    static let invalidReasons: [DropReason] = [.truncated, .badIPVersion, .badIPHeaderLength, .badIPLength, .badIPChecksum,
                                               .badOffloadHeader]

    /// Starts a new second's budget when the second has changed, first reporting what the last one
    /// suppressed (called for every line, and by every timer round so that the report never waits for
    /// the next event).
    mutating func flush(now: Timestamp) {
        let s = now.nanoseconds / 1_000_000_000
        guard s != second else { return }
        if suppressed > 0 {
            logger.warning("log: \(suppressed) event lines suppressed on queue \(queue) (over [logging] rate_per_second = \(settings.ratePerSecond))")
            suppressed = 0
        }
        second = s
        linesThisSecond = 0
    }

    /// Whether one more line fits in this second's budget (counts it either way).
    mutating func admit(now: Timestamp) -> Bool {
        flush(now: now)
        guard linesThisSecond < settings.ratePerSecond else {
            suppressed &+= 1
            return false
        }
        linesThisSecond += 1
        return true
    }

    /// Drains the engine's mapping events into the log (between bursts).
    mutating func drain(_ events: inout MappingEventLog, now: Timestamp) {
        while let e = events.pop() {
            guard settings.mappings, admit(now: now) else { continue }
            var line = "mapping \(e.kind == .created ? "created" : "removed") \(protocolName(e.proto)) inside=\(IPv4Address(e.insideAddress)):\(e.insidePort) outside=\(IPv4Address(e.outsideAddress)):\(e.outsidePort)"
            if settings.destinations { line += " remote=\(IPv4Address(e.remoteAddress)):\(e.remotePort)" }
            if e.tenant != 0 { line += " tenant=\(e.tenant)" }
            logger.info("\(line)")
        }
        let lost = events.takeOverflowed()
        if lost > 0 && settings.mappings { suppressed &+= lost }
    }

    /// Once a second: what limits refused and which invalid packets were dropped since the last summary.
    mutating func summarize(_ c: Counters, now: Timestamp) {
        defer { lastSummary = c }
        guard let last = lastSummary else { return }
        for (what, reasons) in [("limit hits", Self.limitReasons), ("invalid packets dropped", Self.invalidReasons)] {
            let parts = reasons.compactMap { r -> String? in
                let d = c.dropped(r) &- last.dropped(r)
                return d > 0 ? "\(r.name)=\(d)" : nil
            }
            if !parts.isEmpty && admit(now: now) { logger.notice("\(what) on queue \(queue): \(parts.joined(separator: " "))") }
        }
    }
}
