import NATWire

// Restart without loss (issue 12): what NAPT44 and stateful NAT64 share to save their tables at a clean
// stop and put them back at the next start. Control-plane work: it allocates, and never runs per packet.

/// An outside port in its reuse hold (RFC 6888 REQ-8) as it is saved across a restart.
public struct SavedPortHold: Sendable, Hashable {
    public var proto: UInt8
    public var outsideAddress: UInt32
    public var outsidePort: UInt16
    /// Seconds of hold left when it was saved.
    public var remainingSeconds: UInt32

    public init(proto: UInt8, outsideAddress: UInt32, outsidePort: UInt16, remainingSeconds: UInt32) {
        self.proto = proto
        self.outsideAddress = outsideAddress
        self.outsidePort = outsidePort
        self.remainingSeconds = remainingSeconds
    }
}

/// Why a saved entry was not restored; the name is the counter label.
public enum RestoreSkip: String, Sendable, CaseIterable, Comparable, Error {
    /// Its idle time plus the time the daemon was down reached its timeout (or its hold ended).
    case expired
    /// The inside address is not in the current inside prefixes.
    case insideNotInPrefixes = "inside_not_in_prefixes"
    /// The outside address is not in the current pool (or no longer the host's 1:1 address).
    case outsideNotInPool = "outside_not_in_pool"
    /// The outside port is not among the current ports of the shard that would own it.
    case portNotInRange = "port_not_in_range"
    /// The mapping behaviour changed (the saved mapping's qualifier does not fit the current one).
    case behaviorChanged = "behavior_changed"
    /// A session of a forward, or a static BIB entry, that the current configuration does not have.
    case noForward = "no_forward"
    /// With the current shards, outbound and inbound packets of the flow would go to different threads.
    case shardChanged = "shard_changed"
    /// Its outside endpoint or its session is taken already (a duplicate, or a clash with a forward).
    case conflict
    /// The session, mapping or host table (or a per-host limit) has no room.
    case tableFull = "table_full"
    /// A value no engine writes (an unknown protocol, TCP state or timer class).
    case invalid
    /// NAT64 state, but the current configuration has no stateful NAT64 (or NAT44 state and no NAT44).
    case modeChanged = "mode_changed"

    public static func < (a: RestoreSkip, b: RestoreSkip) -> Bool { a.rawValue < b.rawValue }
}

/// What an import did: restored sessions and holds, and every skipped entry by reason.
public struct RestoreReport: Sendable, Equatable {
    public var sessionsRestored = 0
    public var mappingsRestored = 0
    public var holdsRestored = 0
    public var skipped: [RestoreSkip: Int] = [:]

    public init() {}

    public var skippedTotal: Int { skipped.values.reduce(0, +) }

    public mutating func skip(_ r: RestoreSkip, _ n: Int = 1) {
        if n > 0 { skipped[r, default: 0] += n }
    }

    public static func += (a: inout RestoreReport, b: RestoreReport) {
        a.sessionsRestored += b.sessionsRestored
        a.mappingsRestored += b.mappingsRestored
        a.holdsRestored += b.holdsRestored
        for (k, v) in b.skipped { a.skipped[k, default: 0] += v }
    }

    /// `restored=… mappings=… holds=… skipped=… (reason=n …)` for the log.
    public var summary: String {
        var s = "restored \(sessionsRestored) sessions (\(mappingsRestored) mappings), \(holdsRestored) port holds; skipped \(skippedTotal)"
        if !skipped.isEmpty {
            s += " (" + skipped.sorted { $0.key < $1.key }.map { "\($0.key.rawValue)=\($0.value)" }.joined(separator: " ") + ")"
        }
        return s
    }
}

extension SessionTable {
    /// Every outside port in its reuse hold, soonest free first, with the seconds it has left at `now`.
    public func exportHolds(now: UInt32) -> [SavedPortHold] {
        var holds: [SavedPortHold] = []
        for i in 1...mappingCapacity {
            let m = mappings[i]
            guard m.flags & MappingRecord.flagLive != 0, m.isHeld, m.expiry > now else { continue }
            holds.append(SavedPortHold(proto: m.proto, outsideAddress: m.outsideAddress, outsidePort: m.outsidePort,
                                       remainingSeconds: m.expiry - now))
        }
        holds.sort { $0.remainingSeconds < $1.remainingSeconds }
        return holds
    }

    /// Saved held ports back, soonest free first (the hold list is a FIFO by expiry): each keeps what was
    /// left of it minus the downtime (`elapsedSeconds`), at most the current `portHold`. The caller has
    /// checked that the ports are its own.
    public mutating func restoreHolds(_ holds: [SavedPortHold], elapsedSeconds: UInt32, now: UInt32, portHold: UInt32,
                                      report: inout RestoreReport) {
        var live: [(until: UInt32, h: SavedPortHold)] = []
        for h in holds {
            guard h.remainingSeconds > elapsedSeconds, portHold > 0 else { report.skip(.expired); continue }
            live.append((now &+ min(h.remainingSeconds - elapsedSeconds, portHold), h))
        }
        live.sort { $0.until < $1.until }
        for (until, h) in live {
            guard lookupMapping(proto: h.proto, outsideAddress: h.outsideAddress, outsidePort: h.outsidePort) == 0 else {
                report.skip(.conflict)
                continue
            }
            var rec = MappingRecord()
            rec.proto = h.proto
            rec.outsideAddress = h.outsideAddress
            rec.outsidePort = h.outsidePort
            guard let mid = createMapping(rec) else { report.skip(.tableFull); continue }
            releaseMapping(mid, holdUntil: until)
            report.holdsRestored += 1
        }
    }
}
