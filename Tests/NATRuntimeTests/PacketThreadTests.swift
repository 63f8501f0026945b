import Foundation
import Logging
import NAPT44
import NATCore
@testable import NATRuntime
import NATWire
import Testing

// The packet thread over the in-memory device: no root, no TUN device. Frames go in, the thread runs
// one step at a time on a manual clock, and what it wrote is read back; the control plane's commands
// are answered between steps.
@Suite struct PacketThreadTests {
    static let inside = IPv4Address("100.64.0.2")!
    static let remote = IPv4Address("203.0.113.2")!
    static let pool = IPv4Address("198.51.100.1")!

    static func setup(commands: CommandQueue, logging: LoggingSettings = LoggingSettings(),
                      edit: (inout NAPT44Configuration) -> Void = { _ in }) -> PacketThreadSetup {
        var c = NAPT44Configuration(pool: [IPv4Prefix("198.51.100.1/32")!])
        c.insidePrefixes = [IPv4Prefix("100.64.0.0/24")!]
        c.hashSeed = 7
        edit(&c)
        return PacketThreadSetup(queue: 0, configuration: c, nat64: nil, rings: nil, commands: commands, control: LoopControl(),
                                 logger: Logger(label: "test"), logging: logging)
    }

    static func t(_ s: Double) -> Timestamp { Timestamp(nanoseconds: UInt64(s * 1e9)) }

    static func udp(from: IPv4Address, _ sport: UInt16, to: IPv4Address, _ dport: UInt16) -> [UInt8] {
        PacketBuilder.udp4(source: from, sourcePort: sport, destination: to, destinationPort: dport, payload: Array("hello".utf8))
    }

    /// Sends a command from another thread (as the control plane does) while this one steps the packet
    /// thread, and returns the reply.
    static func ask<V: Sendable>(_ thread: inout PacketThread<MemoryPacketDevice>, _ commands: CommandQueue, now: Timestamp,
                                 _ make: (Reply<V>) -> PacketCommand) -> V? {
        let reply = Reply<V>()
        #expect(commands.send(make(reply)))
        // Some answers take several rounds (a session listing goes a slice of the table per round).
        for _ in 0..<64 {
            thread.step(now: now)
            if let v = reply.wait(seconds: 0) { return v }
        }
        return reply.wait(seconds: 1)
    }

    @Test func translatesFramesBothWaysAndCountsThem() throws {
        let memory = MemoryPacketQueue()
        let commands = CommandQueue()
        var thread = try PacketThread(device: MemoryPacketDevice(queue: memory), setup: Self.setup(commands: commands), now: Self.t(1))
        memory.inject([Self.udp(from: Self.inside, 40000, to: Self.remote, 53)])
        thread.step(now: Self.t(1))
        let out = memory.takeWritten()
        #expect(out.count == 1)
        let v = try IPv4View(validating: UnsafeRawBufferPointer(start: out[0].withUnsafeBytes { $0.baseAddress }, count: out[0].count))
        #expect(v.source == Self.pool && v.destination == Self.remote)
        // The reply comes back to the inside host.
        memory.inject([Self.udp(from: Self.remote, 53, to: Self.pool, 40000)])
        thread.step(now: Self.t(1.5))
        let back = memory.takeWritten()
        #expect(back.count == 1)
        let w = try back[0].withUnsafeBytes { try IPv4View(validating: $0) }
        #expect(w.destination == Self.inside)
        #expect(thread.ioCounters.reads == 2 && thread.ioCounters.writes == 2)
        // A frame nobody asked for is dropped and counted by reason.
        memory.inject([Self.udp(from: Self.remote, 53, to: Self.pool, 40001)])
        thread.step(now: Self.t(2))
        #expect(memory.takeWritten().isEmpty)
        let snap = try #require(Self.ask(&thread, commands, now: Self.t(2)) { .snapshot(SnapshotRequest(sessions: true), $0) })
        #expect(snap.nat44?.outboundPackets == 1 && snap.nat44?.inboundPackets == 1)
        #expect(snap.nat44?.dropped(.noMapping) == 1)
        #expect(snap.nat44Sessions == 1 && snap.nat44SessionsByProtocol.isEmpty, "no census asked for yet")
        // A census (by protocol, ports by address) is asked for, runs a slice per timer round, and the
        // next snapshots carry it.
        _ = Self.ask(&thread, commands, now: Self.t(2)) { .snapshot(SnapshotRequest(ports: true), $0) }
        for k in 1...25 { thread.tick(now: Self.t(2 + 0.1 * Double(k))) }
        let counted = try #require(Self.ask(&thread, commands, now: Self.t(5)) { .snapshot(SnapshotRequest(), $0) })
        #expect(counted.nat44SessionsByProtocol == ["udp": 1] && counted.nat44MappingsByProtocol == ["udp": 1])
        #expect(counted.outsidePortsInUse == ["198.51.100.1": 1])
        #expect(snap.sessions.map(\.inside) == ["100.64.0.2:40000"] && snap.sessions[0].remote == "203.0.113.2:53")
        #expect(snap.sessions[0].expiresInSeconds == 300 - snap.sessions[0].idleSeconds)
        #expect(snap.io.commands == 1)
    }

    @Test func forwardsAddedAndRemovedByCommand() throws {
        let memory = MemoryPacketQueue()
        let commands = CommandQueue()
        var thread = try PacketThread(device: MemoryPacketDevice(queue: memory), setup: Self.setup(commands: commands), now: Self.t(1))
        let f = try PortForward(protocol: "udp", outside: "198.51.100.1:5000", inside: "100.64.0.2:6000")
        #expect(Self.ask(&thread, commands, now: Self.t(1)) { .addForward(f, $0) } == .some(nil))
        // The same port again is refused with the reason.
        let again = Self.ask(&thread, commands, now: Self.t(1)) { .addForward(f, $0) }
        #expect(again??.contains("taken by another forward") == true)
        memory.inject([Self.udp(from: Self.remote, 9, to: Self.pool, 5000)])
        thread.step(now: Self.t(1))
        let w = try #require(memory.takeWritten().first)
        let v = try w.withUnsafeBytes { try IPv4View(validating: $0) }
        #expect(v.destination == Self.inside)
        #expect(Self.ask(&thread, commands, now: Self.t(2)) { .removeForward(proto: IPProtocol.udp, address: Self.pool, port: 5000, $0) } == true)
        memory.inject([Self.udp(from: Self.remote, 9, to: Self.pool, 5000)])
        thread.step(now: Self.t(2))
        #expect(memory.takeWritten().isEmpty)
    }

    @Test("RFC 6887 §12.3: PacketCommand.peer creates the session between bursts; the peer's first datagram then gets in and the flow leaves from the answered port")
    func rfc6887_12_3_peerCommandCreatesTheSession() throws {
        let memory = MemoryPacketQueue()
        let commands = CommandQueue()
        // Port 41414 outside taken by a forward, so the flow cannot keep its port.
        var thread = try PacketThread(device: MemoryPacketDevice(queue: memory), setup: Self.setup(commands: commands), now: Self.t(1))
        let f = try PortForward(protocol: "udp", outside: "198.51.100.1:41414", inside: "100.64.0.3:1")
        #expect(Self.ask(&thread, commands, now: Self.t(1)) { .addForward(f, $0) } == .some(nil))
        let look = PeerQuery(proto: IPProtocol.udp, inside: Self.inside, insidePort: 41414, remote: Self.remote, remotePort: 7777, create: false)
        #expect(Self.ask(&thread, commands, now: Self.t(1)) { .peer(look, $0) } == PeerAnswer.none)
        var make = look
        make.create = true
        let answer = try #require(Self.ask(&thread, commands, now: Self.t(1)) { .peer(make, $0) })
        guard case .mapping(let m) = answer else { Issue.record("PEER: \(answer)"); return }
        #expect(m.created && m.outsideAddress == Self.pool && m.outsidePort != 41414 && m.outsidePort != 0 && m.lifetime == 300)
        // The remote peer sends first (port-restricted cone: only the PEER session lets it in).
        memory.inject([Self.udp(from: Self.remote, 7777, to: Self.pool, m.outsidePort)])
        thread.step(now: Self.t(2))
        let inbound = try #require(memory.takeWritten().first)
        #expect(try inbound.withUnsafeBytes { try IPv4View(validating: $0) }.destination == Self.inside)
        memory.inject([Self.udp(from: Self.inside, 41414, to: Self.remote, 7777)])
        thread.step(now: Self.t(2))
        let out = try #require(memory.takeWritten().first)
        #expect(out.withUnsafeBytes { UInt16($0[20]) << 8 | UInt16($0[21]) } == m.outsidePort)
        // Not an inside host: refused with the reason.
        let bad = PeerQuery(proto: IPProtocol.udp, inside: Self.remote, insidePort: 1, remote: Self.remote, remotePort: 1, create: true)
        #expect(Self.ask(&thread, commands, now: Self.t(3)) { .peer(bad, $0) } == .refused(.notNATTraffic))
    }

    @Test func reconfigureKeepsSessionsAndRefusesWhatNeedsARestart() throws {
        let memory = MemoryPacketQueue()
        let commands = CommandQueue()
        let s = Self.setup(commands: commands)
        var thread = try PacketThread(device: MemoryPacketDevice(queue: memory), setup: s, now: Self.t(1))
        memory.inject([Self.udp(from: Self.inside, 40000, to: Self.remote, 53)])
        thread.step(now: Self.t(1))
        _ = memory.takeWritten()
        var longer = s.configuration!
        longer.timeouts.udp = 900
        longer.udp = .fullCone
        #expect(Self.ask(&thread, commands, now: Self.t(2)) { .reconfigure(longer, $0) } == .some(nil))
        // The session outlives the old 300 s timer: the new timeout applies to it.
        thread.tick(now: Self.t(400))
        let snap = try #require(Self.ask(&thread, commands, now: Self.t(400)) { .snapshot(SnapshotRequest(sessions: true), $0) })
        #expect(snap.nat44Sessions == 1)
        // Changed port ranges need a restart: refused, the engine unchanged.
        var otherPorts = longer
        otherPorts.ports = PortSet(ranges: [1024...2047])
        let refused = Self.ask(&thread, commands, now: Self.t(401)) { .reconfigure(otherPorts, $0) }
        #expect(refused??.hasPrefix("ports:") == true)
        memory.inject([Self.udp(from: Self.remote, 53, to: Self.pool, 40000)])
        thread.step(now: Self.t(402))
        #expect(memory.takeWritten().count == 1)
    }

    @Test func poolChangeKeepsSessionsOnAddressesThatStay() throws {
        let memory = MemoryPacketQueue()
        let commands = CommandQueue()
        let s = Self.setup(commands: commands) {
            $0.pool = [IPv4Prefix("198.51.100.0/31")!]
            $0.pairedPooling = true
        }
        var thread = try PacketThread(device: MemoryPacketDevice(queue: memory), setup: s, now: Self.t(1))
        // Hosts until both pool addresses are in use.
        var outsideOf: [UInt32: IPv4Address] = [:]
        for h in 2...40 where Set(outsideOf.values).count < 2 {
            let a = IPv4Address(100, 64, 0, UInt8(h))
            memory.inject([Self.udp(from: a, 40000, to: Self.remote, 53)])
            thread.step(now: Self.t(1))
            let w = try #require(memory.takeWritten().first)
            outsideOf[a.rawValue] = try w.withUnsafeBytes { try IPv4View(validating: $0) }.source
        }
        #expect(Set(outsideOf.values).count == 2)
        var smaller = s.configuration!
        smaller.pool = [IPv4Prefix("198.51.100.0/32")!]
        #expect(Self.ask(&thread, commands, now: Self.t(2)) { .reconfigure(smaller, $0) } == .some(nil))
        let kept = outsideOf.filter { $0.value == IPv4Address("198.51.100.0")! }.count
        let snap = try #require(Self.ask(&thread, commands, now: Self.t(2)) { .snapshot(SnapshotRequest(sessions: true), $0) })
        #expect(snap.nat44Sessions == kept && snap.sessions.allSatisfy { $0.outside.hasPrefix("198.51.100.0:") })
        // A host whose address left the pool gets a new mapping on the remaining one; replies to the
        // departed address are no longer ours.
        let moved = try #require(outsideOf.first { $0.value == IPv4Address("198.51.100.1")! }?.key)
        memory.inject([Self.udp(from: IPv4Address(moved), 40000, to: Self.remote, 53)])
        thread.step(now: Self.t(3))
        let w = try #require(memory.takeWritten().first)
        #expect(try w.withUnsafeBytes { try IPv4View(validating: $0) }.source == IPv4Address("198.51.100.0")!)
        memory.inject([Self.udp(from: Self.remote, 53, to: IPv4Address("198.51.100.1")!, 40000)])
        thread.step(now: Self.t(3))
        #expect(memory.takeWritten().isEmpty)
    }

    @Test func rfc6888_4_mappingEventsAreLoggedAndBounded() throws {
        var log = MappingEventLog(capacity: 2)
        for i in 0..<5 {
            log.record(MappingEvent(kind: .created, proto: IPProtocol.udp, tenant: 0, insideAddress: 1, insidePort: UInt16(i),
                                    outsideAddress: 2, outsidePort: UInt16(i), remoteAddress: 3, remotePort: 4, seconds: 0))
        }
        #expect(log.count == 2 && log.overflowed == 3)
        #expect(log.pop()?.insidePort == 0 && log.pop()?.insidePort == 1 && log.pop() == nil)
        #expect(log.takeOverflowed() == 3 && log.overflowed == 0)

        // The engine records a created and a removed event for a mapping's life.
        let memory = MemoryPacketQueue()
        let commands = CommandQueue()
        var logging = LoggingSettings()
        logging.mappings = true
        var thread = try PacketThread(device: MemoryPacketDevice(queue: memory), setup: Self.setup(commands: commands, logging: logging),
                                      now: Self.t(1))
        memory.inject([Self.udp(from: Self.inside, 40000, to: Self.remote, 53)])
        thread.step(now: Self.t(1))
        let created = thread.engine!.mappingEvents!.pop()
        #expect(created?.kind == .created && created?.insidePort == 40000 && created?.outsideAddress == Self.pool.rawValue
                && created?.remoteAddress == Self.remote.rawValue)
        thread.engine!.expire(now: Self.t(302))
        let removed = thread.engine!.mappingEvents!.pop()
        #expect(removed?.kind == .removed && removed?.insidePort == 40000)
        // The thread drains new events into the log at its next timer round (every 100 ms).
        memory.inject([Self.udp(from: Self.inside, 40001, to: Self.remote, 53)])
        thread.step(now: Self.t(303))
        #expect(thread.pendingMappingEvents() == 0)
    }

    @Test func commandQueueIsBoundedAndInOrder() {
        let q = CommandQueue(capacity: 4)
        let replies = (0..<5).map { _ in Reply<[String]>() }
        #expect(replies.prefix(4).allSatisfy { q.send(.dumpLines($0)) })
        #expect(!q.send(.dumpLines(replies[4])), "a full queue refuses")
        var n = 0
        while let c = q.next() {
            if case .dumpLines(let r) = c { r.fulfil(["\(n)"]) }
            n += 1
        }
        #expect(n == 4 && replies[3].wait(seconds: 0) == ["3"])
        #expect(q.send(.dumpLines(replies[4])))
    }
}

extension PacketThread where Device: ~Copyable {
    mutating func pendingMappingEvents() -> Int {
        var n = 0
        while engine!.mappingEvents!.pop() != nil { n += 1 }
        return n
    }
}
