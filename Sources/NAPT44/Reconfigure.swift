import NATCore
import NATWire

extension NAPT44Engine {
    /// Applies a changed configuration to the running engine without touching its sessions (a reload).
    ///
    /// In place: the mapping and filtering behaviours (new sessions follow the new ones; RFC 4787 has a
    /// mapping keep its behaviour for its life), port and parity preservation, paired pooling, the port
    /// search length, inbound refresh, unsolicited-SYN policy, hairpinning, ICMP settings, timeouts (every
    /// live session's timer follows the new value from its last use), limits and redirects. Forwards are
    /// left alone: the caller adds and removes them one by one (``addForward(_:)``, ``removeForward(proto:outsideAddress:port:)``).
    ///
    /// The pool may change: sessions whose outside address is still in it keep flowing; those on an
    /// address that left it end (their hosts' next packets get a mapping from the new pool), and so do
    /// the forwards on such an address. Paired pooling follows the new pool for new mappings.
    ///
    /// Refused (the engine stays as it was), because the tables were built for them: inside prefixes,
    /// port ranges, table sizes, 1:1 NAT, fragment buffers, the hash seed, the expectation table's size.
    /// The helper ports may change: new sessions follow them, sessions helped already stay helped.
    public mutating func reconfigure(_ new: NAPT44Configuration, now: Timestamp) throws(ConfigurationError) {
        try new.validate()
        let old = configuration
        if let key = Self.restartReason(from: old, to: new) {
            throw ConfigurationError(key: key, problem: "cannot change while running (restart the daemon to apply it)")
        }
        var c = new
        c.hashSeed = old.hashSeed
        // The forwards the engine holds are the truth (configured and run-time ones alike).
        c.forwards = forwards
        configuration = c
        if old.pool != new.pool { changePool(now: now) }
        loadSettings(c)
        lastNow = now
    }

    /// The first setting that differs between `old` and `new` and cannot change in a running engine
    /// (its key, as ``NAPT44Configuration/validate()`` names keys), or nil when ``reconfigure(_:now:)`` can apply `new`.
    public static func restartReason(from old: NAPT44Configuration, to new: NAPT44Configuration) -> String? {
        if old.insidePrefixes != new.insidePrefixes { return "inside" }
        if old.ports != new.ports { return "ports" }
        if old.maxSessions != new.maxSessions || old.maxHosts != new.maxHosts { return "max_sessions" }
        if old.maxHeldSYNs != new.maxHeldSYNs { return "max_held_syns" }
        if old.staticNAT != new.staticNAT { return "static_nat" }
        if old.fragments != new.fragments { return "fragments" }
        // The expectation table is preallocated; the helper ports and timeout may change in place.
        if old.helpers.maxExpectations != new.helpers.maxExpectations
            || old.helpers.maxExpectationsPerSession != new.helpers.maxExpectationsPerSession { return "helpers.max_expectations" }
        if new.hashSeed != nil && old.hashSeed != new.hashSeed { return "hash_seed" }
        return nil
    }

    /// After `configuration.pool` changed: the outside-address matcher and the pool list from it, and
    /// every session, mapping and forward on an address that is no longer ours ended.
    mutating func changePool(now: Timestamp) {
        outsideNets.deallocate()
        outsideNets = configuration.outsideMatcher
        poolAddresses = configuration.poolAddresses.map(\.rawValue)
        for f in forwards where !isOutside(f.outsideAddress.rawValue) {
            removeForward(proto: f.proto, outsideAddress: f.outsideAddress, port: f.outsidePorts.lowerBound)
        }
        configuration.forwards = forwards
        let nowS = now.seconds
        for i in 1...table.sessionCapacity where table.sessions[i].isLive && !isOutside(table.sessions[i].outsideAddress) {
            endSession(UInt32(i), now: nowS)
        }
    }
}
