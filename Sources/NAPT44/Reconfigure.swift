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
    /// Refused (the engine stays as it was), because the tables were built for them: inside prefixes,
    /// pool, port ranges, table sizes, 1:1 NAT, fragment buffers, the hash seed.
    public mutating func reconfigure(_ new: NAPT44Configuration, now: Timestamp) throws(ConfigurationError) {
        try new.validate()
        let old = configuration
        func needsRestart(_ key: String, _ same: Bool) throws(ConfigurationError) {
            guard same else { throw ConfigurationError(key: key, problem: "cannot change while running (restart the daemon to apply it)") }
        }
        try needsRestart("inside", old.insidePrefixes == new.insidePrefixes)
        try needsRestart("pool", old.pool == new.pool)
        try needsRestart("ports", old.ports == new.ports)
        try needsRestart("max_sessions", old.maxSessions == new.maxSessions && old.maxHosts == new.maxHosts)
        try needsRestart("max_held_syns", old.maxHeldSYNs == new.maxHeldSYNs)
        try needsRestart("static_nat", old.staticNAT == new.staticNAT)
        try needsRestart("fragments", old.fragments == new.fragments)
        try needsRestart("hash_seed", new.hashSeed == nil || old.hashSeed == new.hashSeed)
        var c = new
        c.hashSeed = old.hashSeed
        // The forwards the engine holds are the truth (configured and run-time ones alike).
        c.forwards = forwards
        configuration = c
        icmpSource = (c.icmpSourceAddress ?? IPv4Address(poolAddresses[0])).rawValue
        hasRedirects = !c.redirects.isEmpty
        inboundRefresh = c.inboundRefresh
        mappingTCP = c.tcp.mapping
        mappingUDP = c.udp.mapping
        mappingICMP = c.icmp.mapping
        portPreservation = c.portPreservation
        parityPreservation = c.parityPreservation
        pairedPooling = c.pairedPooling
        maxPortAttempts = c.maxPortAttempts
        maxSessionsPerHost = c.limits.maxSessionsPerHost
        maxPortsPerHost = c.limits.maxPortsPerHost
        table.refreshReadsHighBits = TimerClass.allCases.contains { c.timeouts.seconds(for: $0) >= 1 << 16 }
        lastNow = now
    }
}
