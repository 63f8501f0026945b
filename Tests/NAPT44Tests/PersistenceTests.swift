import Testing
import NATWire
import NATCore
import NAPT44

// Restart without loss (issue 12): an engine's sessions, mappings and port holds exported at a clean stop
// and imported into a fresh engine, whose clock starts elsewhere, with the downtime added to idle times.
@Suite("Restart without loss: NAPT44 export and import")
struct PersistenceTests {
    static let oneToOne = IPv4Address("198.51.100.9")!
    static let web = PortForward(proto: IPProtocol.tcp, outsideAddress: poolP, outsidePorts: 8080...8080, insideAddress: clientB, insidePort: 80)

    static func fullConfig(_ edit: (inout NAPT44Configuration) -> Void = { _ in }) -> NAPT44Configuration {
        config(.portRestrictedCone) {
            $0.staticNAT = [StaticNAT(inside: IPv4Address("100.64.0.9")!, outside: oneToOne)]
            $0.forwards = [web]
            edit(&$0)
        }
    }

    /// A TCP connection from inside, established at `t`; returns its outside endpoint.
    static func establishTCP(_ e: inout NAPT44Engine, _ s: IPv4Address, _ sp: UInt16, _ d: IPv4Address, _ dp: UInt16,
                             at t: Double) -> (IPv4Address, UInt16) {
        let (v, out) = send(&e, tcp(s, sp, d, dp, [.syn]), at: t)
        #expect(v == .toOutside)
        let o = parse(out)
        #expect(send(&e, tcp(d, dp, o.source, o.sourcePort, [.syn, .ack], seq: 5000, ack: 1001), at: t).0 == .toInside(tenant: 0))
        #expect(send(&e, tcp(s, sp, d, dp, [.ack], seq: 1001, ack: 5001), at: t).0 == .toOutside)
        return (o.source, o.sourcePort)
    }

    /// Every kind of entry: UDP, established TCP, TCP after an RST (transitory), ICMP echo, a 1:1 session,
    /// a session of a forward, a mapping with two sessions (seven sessions), and a port in its reuse hold.
    static func populated(at start: Double) -> NAPT44Engine {
        var e = engine(fullConfig())
        // A short flow that ends first: its port is held (RFC 6888 REQ-8).
        _ = openUDP(&e, clientB, 7000, serverX, 123, at: start)
        e.expire(now: .seconds(start + 300))
        #expect(e.table.heldCount == 1)
        let t = start + 300
        _ = openUDP(&e, clientA, 5000, serverX, 53, at: t)
        _ = openUDP(&e, clientA, 5000, serverY, 53, at: t + 1)
        _ = establishTCP(&e, clientA, 40000, serverX, 443, at: t + 2)
        let (ra, rp) = establishTCP(&e, clientA, 40001, serverX, 443, at: t + 3)
        #expect(send(&e, tcp(serverX, 443, ra, rp, [.rst], seq: 5001), at: t + 3).0 == .toInside(tenant: 0))
        let echo = PacketBuilder.icmp4(source: clientA, destination: serverX, header: ICMPv4Header(type: ICMPv4Type.echoRequest, identifier: 77, sequenceNumber: 1))
        #expect(send(&e, echo, at: t + 4).0 == .toOutside)
        #expect(send(&e, udp(IPv4Address("100.64.0.9")!, 6000, serverX, 53), at: t + 5).0 == .toOutside)
        #expect(send(&e, tcp(serverY, 33000, poolP, 8080, [.syn]), at: t + 6).0 == .toInside(tenant: 0))
        return e
    }

    @Test func restart_roundTripsEverySessionKind() {
        let a = Self.populated(at: 10)
        let saved = a.exportState(now: .seconds(330))
        #expect(saved.sessions.count == 7 && saved.holds.count == 1)
        #expect(saved.sessions.map(\.idleSeconds) == saved.sessions.map(\.idleSeconds).sorted(by: >), "least recently used first")
        var b = engine(Self.fullConfig())
        let report = b.importState(saved, elapsedSeconds: 0, now: .seconds(90_000))
        #expect(report.sessionsRestored == 7 && report.holdsRestored == 1 && report.skippedTotal == 0, "\(report.summary)")
        #expect(b.exportState(now: .seconds(90_000)) == saved, "the import gives back exactly what was saved")
        #expect(b.sessionCount == a.sessionCount && b.mappingCount == a.mappingCount && b.table.heldCount == 1)
        #expect(b.table.hostCount == a.table.hostCount)
        let sa = a.sessions().map(\.description).sorted(), sb = b.sessions().map(\.description).sorted()
        #expect(sa == sb)
        #expect(sb.contains { $0.contains("ESTABLISHED") } && sb.contains { $0.contains("TRANS") })
    }

    @Test func restart_restoredSessionsCarryTrafficOnTheSameOutsidePorts() {
        var a = engine(Self.fullConfig())
        let (ua, up) = openUDP(&a, clientA, 5000, serverX, 53, at: 10)
        let (ta, tp) = Self.establishTCP(&a, clientA, 40000, serverX, 443, at: 10)
        var b = engine(Self.fullConfig())
        _ = b.importState(a.exportState(now: .seconds(20)), elapsedSeconds: 3, now: .seconds(500))
        // Inbound first (port-restricted filtering lets the known remote in), then outbound keeps the port.
        let (v, back) = send(&b, udp(serverX, 53, ua, up), at: 500)
        #expect(v == .toInside(tenant: 0) && parse(back).destination == clientA && parse(back).destinationPort == 5000)
        let (vo, out) = send(&b, udp(clientA, 5000, serverX, 53), at: 500)
        #expect(vo == .toOutside && parse(out).source == ua && parse(out).sourcePort == up)
        // A mid-connection TCP segment (no SYN) passes both ways: the session is ESTABLISHED.
        let (tv, tout) = send(&b, tcp(clientA, 40000, serverX, 443, [.ack, .psh], seq: 2000, ack: 6000), at: 500)
        #expect(tv == .toOutside && parse(tout).sourcePort == tp && parse(tout).source == ta)
        #expect(send(&b, tcp(serverX, 443, ta, tp, [.ack], seq: 6000, ack: 2010), at: 500).0 == .toInside(tenant: 0))
        #expect(b.counters.sessionsCreated == 0, "no new session: the restored ones carried the traffic")
    }

    @Test func restart_timersContinueFromElapsedTime() {
        var a = engine(config())
        _ = openUDP(&a, clientA, 5000, serverX, 53, at: 0)
        let saved = a.exportState(now: .seconds(100))
        #expect(saved.sessions.first?.idleSeconds == 100)
        var b = engine(config())
        // 150 s down: 250 s of the 300 s UDP timeout are gone.
        let r = b.importState(saved, elapsedSeconds: 150, now: .seconds(1000))
        #expect(r.sessionsRestored == 1)
        #expect(b.sessions().first?.idleSeconds == 250)
        b.expire(now: .seconds(1049))
        #expect(b.sessionCount == 1)
        b.expire(now: .seconds(1050))
        #expect(b.sessionCount == 0, "ends 300 s after its last use, downtime included")
        #expect(b.table.heldCount == 1, "and its port is held as usual")
    }

    @Test func restart_entriesExpiredDuringDowntimeAreDropped() {
        var a = engine(config())
        _ = openUDP(&a, clientA, 5000, serverX, 53, at: 0)
        _ = Self.establishTCP(&a, clientA, 40000, serverX, 443, at: 0)
        _ = openUDP(&a, clientB, 7000, serverX, 123, at: 0)
        a.expire(now: .seconds(0))
        let saved = a.exportState(now: .seconds(10))
        var b = engine(config())
        let r = b.importState(saved, elapsedSeconds: 295, now: .seconds(50))
        #expect(r.sessionsRestored == 1 && r.skipped[.expired] == 2, "\(r.summary)")
        #expect(b.sessions().first?.tcpState == .established)
        #expect(b.mappingCount == 1 && b.table.hostCount == 1, "nothing half-made for the dropped ones")
    }

    @Test func restart_heldPortsStayHeldForWhatIsLeftOfTheirHold() {
        var a = engine(config())
        let (_, p) = openUDP(&a, clientA, 5000, serverX, 53, at: 0)
        a.expire(now: .seconds(300))   // held until 420
        let saved = a.exportState(now: .seconds(320))
        #expect(saved.holds == [SavedPortHold(proto: IPProtocol.udp, outsideAddress: poolP.rawValue, outsidePort: p, remainingSeconds: 100)])
        var b = engine(config())
        #expect(b.importState(saved, elapsedSeconds: 40, now: .seconds(2000)).holdsRestored == 1)
        // Another host asking for the same port (port preservation) does not get it while it is held.
        let (_, other) = openUDP(&b, clientB, p, serverX, 53, at: 2000)
        #expect(other != p)
        b.expire(now: .seconds(2059))
        #expect(b.table.heldCount == 1)
        b.expire(now: .seconds(2060))
        #expect(b.table.heldCount == 0)
    }

    @Test func restart_entriesOutsideTheNewPoolOrInsidePrefixesAreSkipped() {
        let saved = Self.populated(at: 10).exportState(now: .seconds(330))
        var otherPool = engine(Self.fullConfig { $0.pool = [IPv4Prefix("198.51.100.2/32")!]; $0.forwards = [] })
        let r = otherPool.importState(saved, elapsedSeconds: 0, now: .seconds(400))
        // Five dynamic sessions and the hold on the old pool; the 1:1 session fits; the forward is gone.
        #expect(r.sessionsRestored == 1 && r.skipped[.outsideNotInPool] == 6 && r.skipped[.noForward] == 1, "\(r.summary)")
        var otherInside = engine(Self.fullConfig { $0.insidePrefixes = [IPv4Prefix("100.64.1.0/24")!]; $0.staticNAT = []; $0.forwards = [] })
        let r2 = otherInside.importState(saved, elapsedSeconds: 0, now: .seconds(400))
        #expect(r2.sessionsRestored == 0 && r2.skipped[.insideNotInPrefixes] == 7 && r2.holdsRestored == 1, "\(r2.summary)")
        var otherPorts = engine(Self.fullConfig { $0.ports = PortSet(ranges: [20000...20999]) })
        let r3 = otherPorts.importState(saved, elapsedSeconds: 0, now: .seconds(400))
        #expect((r3.skipped[.portNotInRange] ?? 0) >= 1, "\(r3.summary)")
        var symmetric = engine(Self.fullConfig { $0.setBehavior(.symmetric) })
        let r4 = symmetric.importState(saved, elapsedSeconds: 0, now: .seconds(400))
        #expect(r4.skipped[.behaviorChanged] == 5, "\(r4.summary)")
    }

    @Test func restart_importTwiceCountsConflictsAndChangesNothing() {
        let saved = Self.populated(at: 10).exportState(now: .seconds(330))
        var b = engine(Self.fullConfig())
        _ = b.importState(saved, elapsedSeconds: 0, now: .seconds(400))
        let before = b.exportState(now: .seconds(400))
        let again = b.importState(saved, elapsedSeconds: 0, now: .seconds(400))
        #expect(again.sessionsRestored == 0 && again.skipped[.conflict] == 8, "\(again.summary)")
        #expect(b.exportState(now: .seconds(400)) == before)
    }

    @Test func restart_perHostLimitsHoldForRestoredSessions() {
        let saved = Self.populated(at: 10).exportState(now: .seconds(330))
        var b = engine(Self.fullConfig { $0.limits.maxSessionsPerHost = 2 })
        let r = b.importState(saved, elapsedSeconds: 0, now: .seconds(400))
        // clientA had five sessions: two restored, three refused for the limit.
        #expect(r.skipped[.tableFull] == 3, "\(r.summary)")
        #expect(b.table.hosts[Int(b.table.lookupHost(tenant: 0, address: clientA.rawValue))].sessions == 2)
    }

    @Test func restart_shardRouterKeepsOnlySessionsWhoseBothDirectionsMeetOneShard() throws {
        let c = Self.fullConfig()
        let plan = try ShardPlan(c, shards: 4)
        let router = ShardRouter(plan: plan, configuration: c)
        // A dynamic mapping made by the shard of its inside host, on a port of that shard's slice.
        let owner = router.hostOwner(clientA.rawValue)
        let port = plan.configurations[owner].ports.port(at: 0)
        var s = NAPT44SavedSession(proto: IPProtocol.udp, kind: .dynamic, insideAddress: clientA.rawValue, insidePort: 5000,
                                   outsideAddress: poolP.rawValue, outsidePort: port, remoteAddress: serverX.rawValue,
                                   remotePort: 53, viaAddress: serverX.rawValue, viaPort: 53, timerClass: TimerClass.udp.rawValue,
                                   idleSeconds: 1)
        #expect(router.restoreOwner(s) == owner)
        // The same mapping on a port another shard owns now (the queues changed): cannot be restored.
        s.outsidePort = plan.configurations[(owner + 1) % 4].ports.port(at: 0)
        #expect(router.restoreOwner(s) == nil)
        // Restored into its shard's engine, it takes traffic there.
        s.outsidePort = port
        var e = engine(plan.configurations[owner])
        #expect(e.importState(NAPT44SavedState(sessions: [s]), elapsedSeconds: 0, now: .seconds(5)).sessionsRestored == 1)
    }
}
