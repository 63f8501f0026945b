import Foundation
import Logging
import NAPT44
import NAT64
import NATCore
import NATWire
import Synchronization

/// One packet thread's share of a sessions file, and the downtime to add to every idle time.
public struct QueueRestore: Sendable {
    public var nat44: NAPT44SavedState
    public var nat64: NAPT64SavedState
    public var elapsedSeconds: UInt32

    public init(nat44: NAPT44SavedState = NAPT44SavedState(), nat64: NAPT64SavedState = NAPT64SavedState(), elapsedSeconds: UInt32 = 0) {
        self.nat44 = nat44
        self.nat64 = nat64
        self.elapsedSeconds = elapsedSeconds
    }
}

/// A sessions file split over the packet threads of the current configuration (issue 12, restart without
/// loss): NAT44 entries go to the shard that owns them now (``ShardRouter/restoreOwner(_:)``), NAT64 state
/// to queue 0 (NAT64 with state runs on one queue). What no thread can take is counted here.
public struct SessionRestorePlan: Sendable {
    public var writtenAt: Int64
    public var queues: [QueueRestore]
    /// Entries dropped before any engine saw them (`shard_changed`, `mode_changed`).
    public var skipped: RestoreReport
    /// NAT64 pool reservations (idle times as saved): they join the pool's own state file's at start.
    public var reservations: [AddressReservation]

    /// Splits `c` over `queues` threads; `router` is the shard router when there are several.
    public init(_ c: SessionsFile.Contents, configuration cfg: DaemonConfiguration, router: ShardRouter?) {
        writtenAt = c.writtenAt
        let n = max(1, cfg.tun.queues)
        queues = Array(repeating: QueueRestore(), count: n)
        skipped = RestoreReport()
        // Every queue's sessions, least recently used first overall: each shard's share stays in that order.
        var all: [NAPT44SavedSession] = []
        var holds: [SavedPortHold] = []
        for q in c.nat44.keys.sorted() {
            all += c.nat44[q]!.sessions
            holds += c.nat44[q]!.holds
        }
        all = all.enumerated().sorted { ($0.element.idleSeconds, $1.offset) > ($1.element.idleSeconds, $0.offset) }.map(\.element)
        if cfg.nat44 == nil {
            skipped.skip(.modeChanged, all.count + holds.count)
        } else {
            for s in all {
                guard let o = router.map({ $0.restoreOwner(s) }) ?? 0, o < n else { skipped.skip(.shardChanged); continue }
                queues[o].nat44.sessions.append(s)
            }
            for h in holds {
                let o = router?.portOwner(h.outsidePort) ?? 0
                queues[min(o, n - 1)].nat44.holds.append(h)
            }
        }
        if case .stateful? = cfg.nat64?.mode {
            queues[0].nat64 = c.nat64
        } else {
            skipped.skip(.modeChanged, c.nat64.sessions.count + c.nat64.holds.count)
        }
        if case .pool? = cfg.nat64?.mode {
            reservations = c.reservations
        } else {
            reservations = []
            skipped.skip(.modeChanged, c.reservations.count)
        }
    }

    /// The longest time anything in a sessions file can outlive the daemon under `cfg`: its longest
    /// timeout (or port hold, or pool idle time). A file older than that holds nothing alive.
    public static func maximumAge(_ cfg: DaemonConfiguration) -> UInt32 {
        var m: UInt32 = 0
        func take(_ t: Timeouts) {
            m = max(m, t.portHold)
            for c in TimerClass.allCases { m = max(m, t.seconds(for: c)) }
        }
        if let n = cfg.nat44 { take(n.timeouts) }
        switch cfg.nat64?.mode {
        case .stateful(let s)?: take(s.timeouts)
        case .pool(let p)?: m = max(m, p.pool.maxIdleSeconds)
        default: break
        }
        return m
    }

    /// The downtime in seconds: refuses a file written more than a minute in the future (the clock was
    /// set back) or longer ago than `maximumAge`.
    public static func elapsed(writtenAt: Int64, wallNow: Int64, maximumAge: UInt32) throws(SessionsFile.LoadError) -> UInt32 {
        if writtenAt > wallNow + 60 {
            throw SessionsFile.LoadError("was written \(writtenAt - wallNow) s in the future (the clock was set back?); its times cannot be trusted")
        }
        let e = max(0, wallNow - writtenAt)
        guard e <= Int64(maximumAge) else {
            throw SessionsFile.LoadError("is stale: written \(e) s ago, longer than the longest timeout of this configuration (\(maximumAge) s); nothing in it can still be alive")
        }
        return UInt32(e)
    }

    /// Reads and checks the sessions file at start, before any thread runs: a missing file is a first
    /// start; a refused one is logged with its reason. Either way the file is renamed to `<path>.old` at
    /// once, so that a crash later never brings it back. nil: nothing to restore.
    public static func prepare(path: String, configuration cfg: DaemonConfiguration, router: ShardRouter?, logger: Logger,
                               wallNow: Int64 = Int64(Date().timeIntervalSince1970)) -> SessionRestorePlan? {
        let contents: SessionsFile.Contents
        do {
            guard let c = try SessionsFile.load(path: path) else {
                logger.info("sessions: no sessions file at \(path); starting with empty tables")
                return nil
            }
            contents = c
            _ = try elapsed(writtenAt: c.writtenAt, wallNow: wallNow, maximumAge: maximumAge(cfg))
        } catch {
            logger.warning("sessions: \(path) \(error.problem); refused, starting with empty tables (kept as \(path).old)")
            setAside(path, logger: logger)
            return nil
        }
        setAside(path, logger: logger)
        let plan = SessionRestorePlan(contents, configuration: cfg, router: router)
        logger.info("sessions: read \(contents.sessionCount) sessions and \(contents.holdCount) port holds\(contents.reservations.isEmpty ? "" : " and \(contents.reservations.count) NAT64 reservations") from \(path), written \(max(0, wallNow - contents.writtenAt)) s ago")
        return plan
    }

    static func setAside(_ path: String, logger: Logger) {
        let old = path + ".old"
        unlink(old)
        if rename(path, old) != 0 {
            logger.error("sessions: cannot rename \(path) to \(old) (\(String(cString: strerror(errno)))): deleting it")
            unlink(path)
        }
    }

    /// Sends every thread its share (the downtime measured now) and waits for each report; the threads
    /// hold their traffic until then. Returns the total, this plan's own skips included.
    public func apply(_ commands: [CommandQueue], logger: Logger, failed: () -> Bool = { false },
                      wallNow: Int64 = Int64(Date().timeIntervalSince1970)) -> RestoreReport {
        let elapsed = UInt32(clamping: max(0, wallNow - writtenAt))
        let replies = commands.enumerated().map { q, c -> Reply<RestoreReport>? in
            var share = q < queues.count ? queues[q] : QueueRestore()
            share.elapsedSeconds = elapsed
            let r = Reply<RestoreReport>()
            return c.send(.restoreState(share, r)) ? r : nil
        }
        var total = skipped
        for (q, r) in replies.enumerated() {
            // Up to a minute per thread (a big table), but not for a thread that failed to start.
            var answer: RestoreReport? = nil
            for _ in 0..<600 where answer == nil && !failed() { answer = r?.wait(seconds: 0.1) }
            guard let report = answer else {
                logger.error("sessions: packet thread \(q) did not answer the restore; its share is lost")
                continue
            }
            total += report
        }
        logger.info("sessions: \(total.summary) after \(elapsed) s down")
        return total
    }
}

/// What the packet threads hand over when they stop, for the sessions file.
public final class SessionExports: Sendable {
    struct Entry: Sendable {
        var nat44: NAPT44SavedState?
        var nat64: NAPT64SavedState?
        var reservations: [AddressReservation]
    }

    private let entries = Mutex<[Int: Entry]>([:])

    public init() {}

    func store(queue: Int, nat44: NAPT44SavedState?, nat64: NAPT64SavedState?, reservations: [AddressReservation]) {
        entries.withLock { $0[queue] = Entry(nat44: nat44, nat64: nat64, reservations: reservations) }
    }

    /// Whether every one of `queues` threads handed its state over.
    public func isComplete(queues: Int) -> Bool { entries.withLock { $0.count == queues } }

    /// Everything handed over, as a file's contents.
    public func contents(writtenAt: Int64) -> SessionsFile.Contents {
        entries.withLock { e in
            var c = SessionsFile.Contents(writtenAt: writtenAt)
            for (q, x) in e {
                if let n = x.nat44 { c.nat44[q] = n }
                if let n = x.nat64 {
                    c.nat64.sessions += n.sessions
                    c.nat64.holds += n.holds
                }
                c.reservations += x.reservations
            }
            return c
        }
    }
}
