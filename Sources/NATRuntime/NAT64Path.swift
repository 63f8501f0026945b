import Foundation
import Logging
import NAT64
import NATCore
import NATWire
import Synchronization

/// What the daemon's main thread and the packet thread share about NAT64: the main thread asks for the
/// pool's reservations (for the state file) and the packet thread hands them over between batches; it
/// never touches the pool itself.
public final class NAT64Control: Sendable {
    let snapshotRequested = Atomic<Bool>(false)
    private let snapshot = Mutex<[AddressReservation]?>(nil)

    public init() {}

    /// Asks the packet thread for the reservations at its next batch boundary.
    public func requestSnapshot() { snapshotRequested.store(true, ordering: .relaxed) }

    /// The reservations the packet thread handed over since the last call, if any.
    public func takeSnapshot() -> [AddressReservation]? { snapshot.withLock { s in defer { s = nil }; return s } }

    func publish(_ r: [AddressReservation]) { snapshot.withLock { $0 = r } }
}

/// Everything a packet thread needs to build its NAT64.
public struct NAT64Setup: Sendable {
    public var settings: NAT64Settings
    /// The TUN device's MTU: the MTU of both sides as far as the translator knows (RFC 7915 §4.1, §5.1).
    public var mtu: Int
    /// Reservations from the state file, least recently used first.
    public var restore: [AddressReservation]
    /// No NAT44 in this daemon: every packet is the NAT64's (and dropped by it when not NAT64 traffic).
    public var claimsAllIPv4: Bool
    public var control: NAT64Control

    public init(settings: NAT64Settings, mtu: Int, restore: [AddressReservation] = [], claimsAllIPv4: Bool, control: NAT64Control) {
        self.settings = settings
        self.mtu = mtu
        self.restore = restore
        self.claimsAllIPv4 = claimsAllIPv4
        self.control = control
    }

    /// The translator's settings for these NAT64 settings on a TUN device of this MTU.
    public var translatorConfiguration: NAT64Configuration {
        var c = NAT64Configuration()
        c.lowestIPv6MTU = settings.lowestIPv6MTU
        c.ipv6MTU = settings.ipv6MTU ?? max(mtu, 1280)
        c.ipv4MTU = settings.ipv4MTU ?? mtu
        c.zeroUDPChecksum = settings.zeroUDPChecksum
        c.trafficClassOverride = settings.trafficClassOverride
        // The translator's own ICMP errors (Fragmentation Needed, Packet Too Big, Time Exceeded) come from
        // an address of the NAT64's own: the first RFC 6791 address, else the first address of its IPv4
        // prefixes (a pool's network address, never handed out), and that address under the prefix.
        let v4 = settings.rfc6791Pool.first?.address ?? settings.ipv4Prefixes.first?.address ?? IPv4Address(192, 0, 0, 8)
        c.ipv4ErrorSource = v4
        c.ipv6ErrorSource = settings.pool6791v6
            ?? (settings.usesPrefix ? (try? NAT64Prefix(settings.prefix, restrictsToGlobalIPv4: false))?.embedUnchecked(v4) : nil)
        return c
    }
}

/// The NAT64 of one packet thread: claims IPv6 packets and IPv4 packets to its addresses, runs them
/// through the translator, writes the results. Owned by the thread (no locks); nothing allocates per packet.
struct NAT64Path: ~Copyable {
    var pool: NAT64Translator<AddressPoolMapping>?
    var siit: NAT64Translator<SIITMapping>?
    var stateful: NAT64Translator<NAPT64Mapping>?
    let ipv4Prefixes: [IPv4Prefix]
    let claimsAll: Bool
    let control: NAT64Control
    let settings: NAT64Settings
    /// Link-scope IPv6 packets from the kernel itself, not translated (RFC 7915 translates neither
    /// multicast nor link-local addresses).
    var ignoredLinkScope: UInt64 = 0
    /// protomask's counters (its metrics' names).
    var protomask = ProtomaskCounters()

    struct SetupError: Error, CustomStringConvertible {
        var description: String
    }

    init(_ s: NAT64Setup, now: Timestamp, logger: Logger) throws(SetupError) {
        settings = s.settings
        ipv4Prefixes = s.settings.ipv4Prefixes
        claimsAll = s.claimsAllIPv4
        control = s.control
        let tc = s.translatorConfiguration
        do {
            let prefix = try s.settings.nat64Prefix()
            switch s.settings.mode {
            case .pool(let pc):
                var m: AddressPoolMapping
                do {
                    m = try AddressPoolMapping(pool: AddressPool(configuration: pc.pool), prefix: prefix, rfc6791Pool: s.settings.rfc6791Pool)
                } catch {
                    throw SetupError(description: "the address pool refused its configuration: \(error)")
                }
                var outcomes: [String: Int] = [:]
                for r in s.restore {
                    let o = m.pool.restore(r, now: now)
                    outcomes["\(o)", default: 0] += 1
                }
                if !s.restore.isEmpty {
                    let detail = outcomes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                    logger.info("nat64 state: \(s.restore.count) saved reservations: \(detail)")
                }
                pool = try NAT64Translator(configuration: tc, mapping: m)
            case .siit(let sc):
                var sic = try sc.translatorConfiguration(prefix: prefix)
                sic.rfc6791Pool = s.settings.rfc6791Pool
                sic.rfc6791IPv6 = s.settings.pool6791v6
                siit = try NAT64Translator(configuration: tc, mapping: SIITMapping(sic))
            case .stateful(var sc):
                sc.prefix = prefix
                stateful = try NAT64Translator(configuration: tc, mapping: NAPT64Mapping(configuration: sc))
            }
        } catch let e as SetupError {
            throw e
        } catch {
            throw SetupError(description: "the translator refused its configuration: \(error)")
        }
    }

    /// Whether `packet` is NAT64 traffic: any IPv6 packet, and IPv4 packets to the NAT64's own IPv4
    /// addresses (every IPv4 packet when there is no NAT44).
    @inline(__always)
    func claims(_ packet: UnsafeMutableRawBufferPointer) -> Bool {
        guard let p = packet.baseAddress, packet.count >= IPv4Layout.minimumHeaderLength else { return claimsAll }
        if IPPeek.version(p, count: packet.count) == 6 || claimsAll { return true }
        guard let ip = IPv4Peek(p, count: packet.count) else { return false }
        let d = IPv4Address(ip.destination)
        for q in ipv4Prefixes where q.contains(d) { return true }
        return false
    }

    /// Translates one packet and writes what comes out (the translation, and any packets the translator
    /// made: fragments, ICMP errors).
    @inline(__always)
    mutating func process(_ packet: UnsafeMutableRawBufferPointer, now: Timestamp, send: (UnsafeRawPointer, Int) -> Void) {
        process(packet, now: now, translated: send, send: send)
    }

    /// As ``process(_:now:send:)``, with the translation itself handed to `translated` and the packets the
    /// translator made (fragments, ICMP errors) to `send`.
    @inline(__always)
    mutating func process(_ packet: UnsafeMutableRawBufferPointer, now: Timestamp,
                          translated: (UnsafeRawPointer, Int) -> Void, send: (UnsafeRawPointer, Int) -> Void) {
        // The kernel's own link-scope IPv6 traffic on the TUN device (router solicitations, MLD reports
        // sent before its link-local address was removed): multicast destination or link-local source.
        if let p = packet.baseAddress, IPPeek.isIPv6LinkScope(p, count: packet.count) {
            ignoredLinkScope &+= 1
            return
        }
        let kind = packet.baseAddress.map { IPPeek.classify($0, count: packet.count) } ?? (0, 0, nil)
        var forwarded = false
        if pool != nil {
            forwarded = Self.run(&pool!, packet, now: now, translated: translated, send: send)
        } else if siit != nil {
            forwarded = Self.run(&siit!, packet, now: now, translated: translated, send: send)
        } else if stateful != nil {
            forwarded = Self.run(&stateful!, packet, now: now, translated: translated, send: send)
        }
        protomask.record(kind, translated: forwarded)
    }

    /// Whether the packet itself was translated (not counting what the translator made).
    @inline(__always)
    static func run<M: NAT64Mapping & ~Copyable>(_ t: inout NAT64Translator<M>, _ packet: UnsafeMutableRawBufferPointer,
                                                 now: Timestamp, translated: (UnsafeRawPointer, Int) -> Void,
                                                 send: (UnsafeRawPointer, Int) -> Void) -> Bool {
        let forwarded = t.process(packet, now: now).isForwarded
        if forwarded {
            let o = t.output
            translated(UnsafeRawPointer(o.baseAddress!), o.count)
        }
        while let out = t.nextOutput() {
            if out.verdict.isForwarded { send(UnsafeRawPointer(out.bytes.baseAddress!), out.bytes.count) }
        }
        return forwarded
    }

    /// Timers (every 100 ms) and the control plane's requests, between batches. Stateful NAT64's timers
    /// may make packets (ICMP Port Unreachable for unsolicited SYNs, TCP probes): they are sent at once.
    mutating func tick(now: Timestamp, send: (UnsafeRawPointer, Int) -> Void) {
        if stateful != nil {
            stateful!.mapping.expire(now: now)
            while let out = stateful!.nextOutput() {
                if out.verdict.isForwarded { send(UnsafeRawPointer(out.bytes.baseAddress!), out.bytes.count) }
            }
        }
        guard pool != nil else { return }
        pool!.mapping.pool.expire(now: now)
        if control.snapshotRequested.exchange(false, ordering: .relaxed) {
            control.publish(pool!.mapping.pool.dynamicReservations(now: now))
        }
    }

    /// Hands the final reservations over when the thread stops.
    mutating func finish(now: Timestamp) {
        guard pool != nil else { return }
        pool!.mapping.pool.expire(now: now)
        control.publish(pool!.mapping.pool.dynamicReservations(now: now))
    }

    /// Stateful NAT64's sessions and held ports, for the sessions file (nil in the other modes).
    func exportState(now: Timestamp) -> NAPT64SavedState? {
        switch stateful {
        case .some(let t): return t.mapping.exportState(now: now)
        case .none: return nil
        }
    }

    /// The pool's dynamic reservations, for the sessions file (empty in the other modes).
    func exportReservations(now: Timestamp) -> [AddressReservation] {
        switch pool {
        case .some(let t): return t.mapping.pool.dynamicReservations(now: now)
        case .none: return []
        }
    }

    /// Saved stateful NAT64 state back; nil when this NAT64 is not stateful.
    mutating func importState(_ s: NAPT64SavedState, elapsedSeconds: UInt32, now: Timestamp) -> RestoreReport? {
        guard stateful != nil else { return nil }
        return stateful!.mapping.importState(s, elapsedSeconds: elapsedSeconds, now: now)
    }

    var counters: Counters {
        switch pool {
        case .some(let t): return t.counters
        case .none: break
        }
        switch siit {
        case .some(let t): return t.counters
        case .none: break
        }
        switch stateful {
        case .some(let t):
            // Packet drops (translator) and timer drops (the mapping: unsolicited SYNs whose 6 s ran out).
            var c = t.counters
            c += t.mapping.counters
            return c
        case .none: return Counters()
        }
    }

    /// See ``NAT64Translator/skipIdentifications(_:)``.
    mutating func skipIdentifications(_ count: Int) {
        if pool != nil { pool!.skipIdentifications(count) } else if siit != nil { siit!.skipIdentifications(count) } else if stateful != nil { stateful!.skipIdentifications(count) }
    }

    /// A drop the runtime decided before the translator saw the packet (a bad offload header).
    mutating func recordDrop(_ r: DropReason) {
        if pool != nil { pool!.counters.recordDrop(r) } else if siit != nil { siit!.counters.recordDrop(r) } else if stateful != nil { stateful!.counters.recordDrop(r) }
    }

    /// The counters and the reservations as log lines (control-plane work, off the packet path).
    func dumpLines(queue: Int, now: Timestamp) -> [String] {
        let c = counters
        var drops: [String] = []
        for r in DropReason.allCases where c.dropped(r) > 0 { drops.append("\(r.name)=\(c.dropped(r))") }
        var line = "nat64 counters queue=\(queue) mode=\(settings.mode.name) v6_to_v4=\(c.outboundPackets) v4_to_v6=\(c.inboundPackets) icmp_errors_translated=\(c.icmpErrorsTranslated) icmp_errors_generated=\(c.icmpErrorsGenerated) fragments=\(c.fragmentsTranslated) ignored_link_scope=\(ignoredLinkScope)"
        var list: [AddressReservation] = []
        var total = 0
        switch pool {
        case .some(let t):
            line += " reservations=\(t.mapping.pool.reservationCount) static=\(t.mapping.pool.staticCount) free=\(t.mapping.pool.freeCount) reserved_total=\(t.mapping.pool.reservationsMade) expired_total=\(t.mapping.pool.reservationsExpired)"
            list = t.mapping.pool.reservations(now: now, limit: 1000)
            total = t.mapping.pool.reservationCount
        case .none:
            break
        }
        var sessions: [NAT64SessionInfo] = []
        switch stateful {
        case .some(let t):
            line += " sessions=\(t.mapping.sessionCount) bib=\(t.mapping.bindingCount) hosts=\(t.mapping.hostCount)"
            line += " held_ports=\(t.mapping.heldPortCount) held_syns=\(t.mapping.heldSYNCount)"
            line += " sessions_created=\(t.mapping.counters.sessionsCreated) sessions_expired=\(t.mapping.counters.sessionsExpired) probes=\(t.mapping.probesSent)"
            sessions = Array(t.mapping.sessions(now: now).prefix(1000))
        case .none:
            break
        }
        var lines = ["\(line) dropped=[\(drops.joined(separator: " "))]"]
        switch settings.mode {
        case .stateful:
            for s in sessions { lines.append("nat64 session \(s)") }
            lines.append("nat64 sessions listed: \(sessions.count)")
            return lines
        case .siit:
            return lines
        case .pool:
            break
        }
        for r in list { lines.append("nat64 reservation \(r.ipv6) -> \(r.ipv4) idle=\(r.idleSeconds)s\(r.isStatic ? " static" : "")") }
        lines.append("nat64 reservations listed: \(list.count) of \(total)")
        return lines
    }
}

extension NAT64Path {
    /// A run-time static BIB entry in the stateful NAT64 (PCP MAP from an IPv6 host).
    mutating func addBinding(_ q: BindingQuery, now: Timestamp) -> BindingAnswer {
        guard stateful != nil else { return .unavailable }
        let expires = q.lifetime.map { Timestamp(nanoseconds: now.nanoseconds &+ UInt64($0) * 1_000_000_000) }
        do throws(NAPT64Mapping.BindingRefusal) {
            return .bound(try stateful!.mapping.addStaticBinding(proto: q.proto, ipv6: q.ipv6, ipv6Port: q.ipv6Port, suggestedAddress: q.suggestedAddress,
                                                                 suggestedPort: q.suggestedPort,
                                                                 exact: q.exact, expires: expires, now: now))
        } catch {
            return .refused(error)
        }
    }

    /// Removes a run-time static BIB entry (false when there is none, or no stateful NAT64).
    mutating func removeBinding(proto: NAT64Protocol, ipv4: IPv4Address, port: UInt16, now: Timestamp) -> Bool {
        guard stateful != nil else { return false }
        return stateful!.mapping.removeStaticBinding(proto: proto, ipv4: ipv4, ipv4Port: port, now: now)
    }
}
