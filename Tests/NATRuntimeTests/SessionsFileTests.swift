import Foundation
import Logging
import NAPT44
import NAT64
import NATCore
@testable import NATRuntime
import NATWire
import Testing

// Restart without loss (issue 12): the sessions file (binary, versioned, CRC-32), what is refused and
// why, how a file is split over the packet threads, and a packet thread that holds its traffic until
// its saved sessions are back.
@Suite struct SessionsFileTests {
    static let inside = IPv4Address("100.64.0.2")!
    static let remote = IPv4Address("203.0.113.2")!
    static let pool = IPv4Address("198.51.100.1")!

    static func udpSession(port: UInt16 = 5000, outsidePort: UInt16 = 5000, idle: UInt32 = 10) -> NAPT44SavedSession {
        NAPT44SavedSession(proto: IPProtocol.udp, kind: .dynamic, insideAddress: inside.rawValue, insidePort: port,
                           outsideAddress: pool.rawValue, outsidePort: outsidePort, remoteAddress: remote.rawValue, remotePort: 53,
                           viaAddress: remote.rawValue, viaPort: 53, timerClass: TimerClass.udp.rawValue, idleSeconds: idle)
    }

    static var everything: SessionsFile.Contents {
        let tcp = NAPT44SavedSession(proto: IPProtocol.tcp, kind: .forward, tenant: 3, insideAddress: inside.rawValue, insidePort: 80,
                                     outsideAddress: pool.rawValue, outsidePort: 8080, remoteAddress: remote.rawValue, remotePort: 40000,
                                     viaAddress: IPv4Address("203.0.113.3")!.rawValue, viaPort: 40001, qualifierAddress: 7, qualifierPort: 9,
                                     tcpState: TCPState.established.rawValue, timerClass: TimerClass.tcpEstablished.rawValue,
                                     cleanClose: true, idleSeconds: 4000)
        let n64 = NAPT64SavedSession(proto: IPProtocol.tcp, isStatic: true, ipv6: IPv6Address("2001:db8:1::2")!, ipv6Port: 40000,
                                     ipv4: IPv4Address("198.51.100.65")!.rawValue, ipv4Port: 61000, remoteAddress: remote.rawValue,
                                     remotePort: 80, tcpState: TCPState.bothFIN.rawValue, timerClass: TimerClass.tcpTransitory.rawValue,
                                     cleanClose: true, idleSeconds: 3)
        let hold = SavedPortHold(proto: IPProtocol.udp, outsideAddress: pool.rawValue, outsidePort: 7000, remainingSeconds: 99)
        return SessionsFile.Contents(
            writtenAt: 1_765_000_000,
            nat44: [0: NAPT44SavedState(sessions: [udpSession(), tcp], holds: [hold]), 3: NAPT44SavedState(sessions: [udpSession(port: 6000, outsidePort: 6001)])],
            nat64: NAPT64SavedState(sessions: [n64], holds: [hold]),
            reservations: [AddressReservation(ipv4: IPv4Address("198.51.100.66")!, ipv6: IPv6Address("2001:db8:1::3")!, idleSeconds: 12)])
    }

    static func refusal(_ bytes: [UInt8]) -> String? {
        do {
            _ = try SessionsFile.decode(bytes)
            return nil
        } catch {
            return error.problem
        }
    }

    @Test func sessionsFile_roundTripsEveryRecordKind() throws {
        let c = Self.everything
        let bytes = SessionsFile.encode(c)
        #expect(Array(bytes[0..<8]) == Array("SWNATSES".utf8))
        #expect(bytes.count == 40 + 6 * 12 + 3 * 44 + 12 + 40 + 12 + 24, "fixed-size records: \(bytes.count) bytes")
        #expect(try SessionsFile.decode(bytes) == c)
        #expect(try SessionsFile.decode(SessionsFile.encode(SessionsFile.Contents(writtenAt: 5))) == SessionsFile.Contents(writtenAt: 5))
    }

    @Test func sessionsFile_refusesCorruptTruncatedWrongVersionAndForeignFiles() {
        let good = SessionsFile.encode(Self.everything)
        var flipped = good
        flipped[60] ^= 0x40
        #expect(Self.refusal(flipped)?.contains("checksum") == true)
        #expect(Self.refusal(Array(good.dropLast(7)))?.contains("truncated") == true)
        #expect(Self.refusal(Array(good.prefix(20)))?.contains("truncated") == true)
        #expect(Self.refusal(good + [0])?.contains("corrupt") == true)
        var v2 = good
        v2[8] = 2
        #expect(Self.refusal(v2)?.contains("version 2") == true)
        #expect(Self.refusal(Array("swiftnat-nat64-state 1\n".utf8))?.contains("not a swiftnat sessions file") == true)
        #expect(Self.refusal([])?.contains("not a swiftnat sessions file") == true)
        // A record size that does not match its kind, with a checksum that does (a writer's bug, not a disk's).
        var badSize = good
        badSize[40 + 2] = 45
        let body = Array(badSize[40...])
        let crc = CRC32.checksum(body)
        for i in 0..<4 { badSize[32 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        #expect(Self.refusal(badSize)?.contains("44") == true)
    }

    @Test func sessionsFile_crc32IsZlibs() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test func sessionsFile_refusesStaleAndFutureFiles() throws {
        #expect(try SessionRestorePlan.elapsed(writtenAt: 1000, wallNow: 1100, maximumAge: 7440) == 100)
        #expect(try SessionRestorePlan.elapsed(writtenAt: 1030, wallNow: 1000, maximumAge: 7440) == 0, "a small clock step back is no downtime")
        #expect(throws: SessionsFile.LoadError.self) { try SessionRestorePlan.elapsed(writtenAt: 1000, wallNow: 9000, maximumAge: 7440) }
        #expect(throws: SessionsFile.LoadError.self) { try SessionRestorePlan.elapsed(writtenAt: 5000, wallNow: 1000, maximumAge: 7440) }
        let cfg = try ConfigLoader.parse("[nat44]\npool = [\"198.51.100.1/32\"]\n", file: "t.toml")
        #expect(SessionRestorePlan.maximumAge(cfg) == 7440)
    }

    static func configError(_ text: String) -> String? {
        do {
            _ = try ConfigLoader.parse(text, file: "t.toml")
            return nil
        } catch {
            return error.key
        }
    }

    @Test func sessionsFile_configKeyDefaultsOffSwitchAndChecks() throws {
        let minimal = "[nat44]\npool = [\"198.51.100.1/32\"]\n"
        #expect(try ConfigLoader.parse(minimal, file: "t.toml").control.sessionsFile == "/var/lib/swiftnat/sessions.bin")
        #expect(try ConfigLoader.parse("[control]\nsessions_file = \"\"\n" + minimal, file: "t.toml").control.sessionsFile == nil)
        #expect(try ConfigLoader.parse("[control]\nsessions_file = \"/tmp/s.bin\"\n" + minimal, file: "t.toml").control.sessionsFile == "/tmp/s.bin")
        #expect(Self.configError("[control]\nsessions_file = \"s.bin\"\n" + minimal) == "control.sessions_file")
        #expect(Self.configError("[control]\nsessions_file = \"/tmp/x\"\nstate_file = \"/tmp/x\"\n" + minimal) == "control.sessions_file")
        #expect(try ConfigLoader.parse("[routing]\nfail_closed_across_restart = true\n" + minimal, file: "t.toml").routing.failClosedAcrossRestart)
        #expect(Self.configError("[routing]\nfail_closed_across_restart = true\n[control]\nsessions_file = \"\"\n" + minimal) == "routing.fail_closed_across_restart")
    }

    /// The kept fail-closed rules come from a file: only the undo commands RouteSetup itself makes, at the
    /// configured priorities and table, are ever run from it.
    @Test func failClosedAcrossRestart_keptRulesFileRunsOnlyOurOwnUndoCommands() {
        let r = RoutingSettings()
        #expect(RouteSetup.isFailClosedUndo(["rule", "del", "iif", "in0", "lookup", "7744", "priority", "7744"], r))
        #expect(RouteSetup.isFailClosedUndo(["rule", "del", "iif", "out0", "to", "100.64.0.0/24", "prohibit", "priority", "7742"], r))
        #expect(RouteSetup.isFailClosedUndo(["route", "del", "unreachable", "default", "metric", "4294967295", "table", "7744"], r))
        #expect(RouteSetup.isFailClosedUndo(["-6", "route", "del", "unreachable", "64:ff9b::/96", "metric", "4294967295"], r))
        #expect(!RouteSetup.isFailClosedUndo(["rule", "del", "priority", "0"], r))
        #expect(!RouteSetup.isFailClosedUndo(["rule", "del", "-force", "x", "priority", "7744"], r))
        #expect(!RouteSetup.isFailClosedUndo(["link", "del", "eth0"], r))
        #expect(!RouteSetup.isFailClosedUndo(["route", "del", "default", "table", "main"], r))
        #expect(!RouteSetup.isFailClosedUndo(["-6", "route", "del", "unreachable", "default", "metric", "4294967295"], r))
    }

    static func withTemporaryFile(_ body: (String) throws -> Void) throws {
        let dir = NSTemporaryDirectory() + "swiftnat-sessions-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try body(dir + "/sessions.bin")
    }

    @Test func sessionsFile_prepareSetsTheFileAsideWhetherItIsUsedOrRefused() throws {
        let cfg = try ConfigLoader.parse("[nat44]\ninside = [\"100.64.0.0/24\"]\npool = [\"198.51.100.1/32\"]\n", file: "t.toml")
        let logger = Logger(label: "test")
        try Self.withTemporaryFile { path in
            #expect(SessionRestorePlan.prepare(path: path, configuration: cfg, router: nil, logger: logger) == nil, "no file: a first start")
            var c = Self.everything
            c.writtenAt = 2_000_000_000
            try SessionsFile.write(SessionsFile.encode(c), to: path)
            let plan = SessionRestorePlan.prepare(path: path, configuration: cfg, router: nil, logger: logger, wallNow: 2_000_000_010)
            #expect(plan?.queues.count == 1 && plan?.queues[0].nat44.sessions.count == 3)
            #expect(plan?.queues[0].nat44.sessions.map(\.idleSeconds) == [4000, 10, 10], "least recently used first over every saved queue")
            // No NAT64 in this configuration: its sessions, holds and reservations are counted as such.
            #expect(plan?.skipped.skipped[.modeChanged] == 3)
            #expect(!FileManager.default.fileExists(atPath: path) && FileManager.default.fileExists(atPath: path + ".old"))
            // A corrupt file is refused whole, and set aside too.
            var bytes = SessionsFile.encode(c)
            bytes[bytes.count - 1] ^= 1
            try SessionsFile.write(bytes, to: path)
            #expect(SessionRestorePlan.prepare(path: path, configuration: cfg, router: nil, logger: logger, wallNow: 2_000_000_010) == nil)
            #expect(!FileManager.default.fileExists(atPath: path))
            // A stale one likewise.
            try SessionsFile.write(SessionsFile.encode(c), to: path)
            #expect(SessionRestorePlan.prepare(path: path, configuration: cfg, router: nil, logger: logger, wallNow: 2_000_100_000) == nil)
            #expect(!FileManager.default.fileExists(atPath: path))
        }
    }

    @Test func sessionsFile_planRoutesEachSessionToTheShardThatOwnsItNow() throws {
        let cfg = try ConfigLoader.parse("[tun]\nqueues = 4\n[nat44]\ninside = [\"100.64.0.0/24\"]\npool = [\"198.51.100.1/32\"]\nhash_seed = 5\n", file: "t.toml")
        let n44 = try #require(cfg.nat44)
        let plan = try ShardPlan(n44, shards: 4)
        let router = ShardRouter(plan: plan, configuration: n44)
        let owner = router.hostOwner(Self.inside.rawValue)
        let mine = plan.configurations[owner].ports.port(at: 5)
        let other = plan.configurations[(owner + 1) % 4].ports.port(at: 5)
        let c = SessionsFile.Contents(writtenAt: 0, nat44: [
            1: NAPT44SavedState(sessions: [Self.udpSession(port: 1, outsidePort: mine), Self.udpSession(port: 2, outsidePort: other)],
                                holds: [SavedPortHold(proto: IPProtocol.udp, outsideAddress: Self.pool.rawValue, outsidePort: other, remainingSeconds: 5)]),
        ])
        let p = SessionRestorePlan(c, configuration: cfg, router: router)
        #expect(p.queues.count == 4)
        #expect(p.queues[owner].nat44.sessions.map(\.insidePort) == [1])
        #expect(p.skipped.skipped[.shardChanged] == 1)
        #expect(p.queues[(owner + 1) % 4].nat44.holds.count == 1, "a hold goes to the owner of its port")
    }

    static func setup(commands: CommandQueue, holds: Bool, exports: SessionExports?) -> PacketThreadSetup {
        var c = NAPT44Configuration(pool: [IPv4Prefix("198.51.100.1/32")!])
        c.insidePrefixes = [IPv4Prefix("100.64.0.0/24")!]
        c.hashSeed = 7
        return PacketThreadSetup(queue: 0, configuration: c, nat64: nil, rings: nil, commands: commands, control: LoopControl(),
                                 logger: Logger(label: "test"), holdsTraffic: holds, exports: exports)
    }

    static func udp(from: IPv4Address, _ sport: UInt16, to: IPv4Address, _ dport: UInt16) -> [UInt8] {
        PacketBuilder.udp4(source: from, sourcePort: sport, destination: to, destinationPort: dport, payload: Array("hello".utf8))
    }

    static func t(_ s: Double) -> Timestamp { Timestamp(nanoseconds: UInt64(s * 1e9)) }

    /// A thread hands its table over when it stops; the next thread reads no packet until that table
    /// is back, then carries the flow on its old outside port.
    @Test func packetThread_exportsAtStopAndHoldsTrafficUntilRestored() throws {
        let exports = SessionExports()
        let firstMemory = MemoryPacketQueue()
        let c1 = CommandQueue()
        var first = try PacketThread(device: MemoryPacketDevice(queue: firstMemory), setup: Self.setup(commands: c1, holds: false, exports: exports), now: Self.t(100))
        firstMemory.inject([Self.udp(from: Self.inside, 40000, to: Self.remote, 53)])
        first.step(now: Self.t(100))
        #expect(firstMemory.takeWritten().count == 1)
        first.finish(now: Self.t(104))
        #expect(exports.isComplete(queues: 1))
        let saved = exports.contents(writtenAt: 0)
        #expect(saved.nat44[0]?.sessions.count == 1 && saved.nat44[0]?.sessions.first?.idleSeconds == 4)

        let memory = MemoryPacketQueue()
        let commands = CommandQueue()
        var thread = try PacketThread(device: MemoryPacketDevice(queue: memory), setup: Self.setup(commands: commands, holds: true, exports: nil), now: Self.t(7))
        memory.inject([Self.udp(from: Self.remote, 53, to: Self.pool, 40000)])
        thread.step(now: Self.t(7))
        #expect(memory.takeWritten().isEmpty, "nothing read while the saved sessions are not back")
        let reply = Reply<RestoreReport>()
        #expect(commands.send(.restoreState(QueueRestore(nat44: saved.nat44[0]!, elapsedSeconds: 2), reply)))
        thread.step(now: Self.t(8))
        let report = try #require(reply.wait(seconds: 1))
        #expect(report.sessionsRestored == 1)
        // The reply the thread held back now reaches the inside host (port-restricted filtering: the session is known).
        thread.step(now: Self.t(8))
        let out = memory.takeWritten()
        #expect(out.count == 1)
        if let f = out.first {
            let v = try IPv4View(validating: UnsafeRawBufferPointer(start: f.withUnsafeBytes { $0.baseAddress }, count: f.count))
            #expect(v.destination == Self.inside)
        }
    }
}
