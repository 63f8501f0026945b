import Foundation
import NAPT44
import NATCore
@testable import NATRuntime
import NATWire
import Testing

private let pool = IPv4Address("198.51.100.1")!
private let server = IPv4Address("203.0.113.2")!
private let host = IPv4Address("100.64.0.2")!

private func config(_ edit: (inout NAPT44Configuration) -> Void = { _ in }) -> NAPT44Configuration {
    var c = NAPT44Configuration(pool: [IPv4Prefix("198.51.100.1/32")!])
    c.insidePrefixes = [IPv4Prefix("100.64.0.0/24")!]
    c.hashSeed = 3
    edit(&c)
    return c
}

private func route(_ r: ShardRouter, _ packet: [UInt8], me: Int = 0) -> (Int, ShardRouter.Kind) {
    packet.withUnsafeBytes { b in
        let x = r.route(b.baseAddress!, b.count, me: me)
        return (x.owner, x.kind)
    }
}

@Suite struct ShardPlanTests {
    @Test(arguments: [2, 3, 4, 7])
    func portSlicesAreDisjointCoverTheSetAndSplitLowAndHigh(n: Int) throws {
        let c = config { $0.ports = PortSet(ranges: [100...1999, 30000...30999]) }
        let plan = try ShardPlan(c, shards: n)
        var seen = Set<UInt16>()
        for (i, s) in plan.configurations.enumerated() {
            let ports = s.ports.ranges.flatMap { Array($0) }
            #expect(Set(ports).isDisjoint(with: seen))
            seen.formUnion(ports)
            // Each shard gets its share of the privileged and of the other ports.
            #expect(abs(ports.filter { $0 < 1024 }.count - 924 / n) <= 1)
            #expect(abs(ports.filter { $0 >= 1024 }.count - 1976 / n) <= 1)
            for p in ports { #expect(plan.portOwner[Int(p)] == UInt8(i)) }
            #expect(s.hashSeed == 3)
            #expect(s.maxSessions == (c.maxSessions + n - 1) / n)
            try s.validate()
        }
        #expect(seen == Set((100...1999).map { UInt16($0) } + (30000...30999).map { UInt16($0) }))
    }

    @Test func forwardsGoToTheShardOwningTheirOutsidePortSplitWhereOwnershipChanges() throws {
        // 1024-65535 split in two at index 32256: 1024...33279 and 33280...65535.
        let f = PortForward(proto: IPProtocol.udp, outsideAddress: pool, outsidePorts: 33270...33290, insideAddress: host, insidePort: 5000)
        let plan = try ShardPlan(config { $0.ports = PortSet(ranges: [1024...65535]); $0.forwards = [f] }, shards: 2)
        #expect(plan.configurations[0].forwards == [PortForward(proto: IPProtocol.udp, outsideAddress: pool, outsidePorts: 33270...33279, insideAddress: host, insidePort: 5000)])
        #expect(plan.configurations[1].forwards == [PortForward(proto: IPProtocol.udp, outsideAddress: pool, outsidePorts: 33280...33290, insideAddress: host, insidePort: 5010)])
        // A forwarded port outside the dynamic set is owned by its block of port numbers.
        let low = PortForward(proto: IPProtocol.tcp, outsideAddress: pool, outsidePorts: 80...80, insideAddress: host, insidePort: 80)
        let p2 = try ShardPlan(config { $0.ports = PortSet(ranges: [1024...65535]); $0.forwards = [low] }, shards: 2)
        #expect(p2.configurations[0].forwards == [low] && p2.configurations[1].forwards.isEmpty)
    }

    @Test func tooFewPortsForTheQueuesIsRefused() {
        #expect(throws: ConfigurationError.self) { try ShardPlan(config { $0.ports = PortSet(ranges: [5000...5000]) }, shards: 2) }
        let e = try? ConfigLoader.parse("[tun]\nqueues = 2\n[nat44]\npool = [\"198.51.100.1/32\"]\n[nat44.ports]\nranges = [\"5000\"]\n")
        #expect(e == nil)
        do {
            _ = try ConfigLoader.parse("[tun]\nqueues = 2\n[nat44]\npool = [\"198.51.100.1/32\"]\n[nat44.ports]\nranges = [\"5000\"]\n", file: "t.toml")
        } catch {
            #expect(error.key == "tun.queues")
        }
        #expect((try? ConfigLoader.parse("[tun]\nqueues = 4\n[nat44]\npool = [\"198.51.100.1/32\"]\n"))?.tun.queues == 4)
    }
}

@Suite struct ShardRouterTests {
    let fwd = PortForward(proto: IPProtocol.tcp, outsideAddress: pool, outsidePorts: 40000...40000, insideAddress: host, insidePort: 8080)
    let oneToOne = StaticNAT(inside: IPv4Address("100.64.0.77")!, outside: IPv4Address("198.51.100.9")!)

    func router(_ n: Int = 2) throws -> (ShardRouter, ShardPlan) {
        let c = config { $0.ports = PortSet(ranges: [1024...65535]); $0.forwards = [fwd]; $0.staticNAT = [oneToOne] }
        let plan = try ShardPlan(c, shards: n)
        return (ShardRouter(plan: plan, configuration: c), plan)
    }

    @Test func outboundGoesToTheInsideHostsShard() throws {
        let (r, _) = try router(4)
        var used = Set<Int>()
        for i in 2...60 {
            let h = IPv4Address("100.64.0.\(i)")!
            let o = r.hostOwner(h.rawValue)
            used.insert(o)
            for sp in [1000, 40001, 60000] as [UInt16] {
                #expect(route(r, PacketBuilder.udp4(source: h, sourcePort: sp, destination: server, destinationPort: 53), me: 3) == (o, .outbound))
            }
            #expect(route(r, PacketBuilder.echo4(source: h, destination: server, identifier: 7)) == (o, .outbound))
        }
        #expect(used == [0, 1, 2, 3])
    }

    @Test func inboundGoesToTheOwnerOfTheDestinationPort() throws {
        let (r, plan) = try router()
        for port in [1024, 20000, 33279, 33280, 65535] as [UInt16] {
            let want = Int(plan.portOwner[Int(port)])
            #expect(route(r, PacketBuilder.udp4(source: server, sourcePort: 53, destination: pool, destinationPort: port), me: 1 - want) == (want, .inbound))
            #expect(route(r, PacketBuilder.tcp4(source: server, sourcePort: 80, destination: pool, destinationPort: port, flags: [.ack])) == (want, .inbound))
            // Echo reply: the identifier is the outside "port".
            #expect(route(r, PacketBuilder.echo4(source: server, destination: pool, identifier: port, reply: true)) == (want, .inbound))
            // ICMP error about a datagram we sent from that port.
            let sent = PacketBuilder.udp4(source: pool, sourcePort: port, destination: server, destinationPort: 9)
            let err = PacketBuilder.icmp4Error(source: server, destination: pool, type: 3, code: 3, original: sent)
            #expect(route(r, err, me: 1 - want) == (want, .inbound))
            let ping = PacketBuilder.echo4(source: pool, destination: server, identifier: port)
            #expect(route(r, PacketBuilder.icmp4Error(source: server, destination: pool, type: 11, code: 0, original: ping), me: 1 - want) == (want, .inbound))
        }
    }

    @Test func forwardsAndOneToOneGoToTheirShard() throws {
        let (r, plan) = try router()
        let fo = Int(plan.portOwner[40000])
        // Replies from the forward's inside endpoint, and ICMP errors about packets delivered through it.
        #expect(route(r, PacketBuilder.tcp4(source: host, sourcePort: 8080, destination: server, destinationPort: 5555, flags: [.syn, .ack])) == (fo, .outbound))
        let delivered = PacketBuilder.tcp4(source: server, sourcePort: 5555, destination: host, destinationPort: 8080, flags: [.syn])
        #expect(route(r, PacketBuilder.icmp4Error(source: host, destination: server, type: 3, code: 3, original: delivered)) == (fo, .outbound))
        // The host's other ports go by the host.
        #expect(route(r, PacketBuilder.tcp4(source: host, sourcePort: 8081, destination: server, destinationPort: 80, flags: [.syn])) == (r.hostOwner(host.rawValue), .outbound))
        // 1:1: inbound to the outside address goes to the inside host's shard, any protocol.
        let o = r.hostOwner(oneToOne.inside.rawValue)
        #expect(route(r, PacketBuilder.udp4(source: server, sourcePort: 1, destination: oneToOne.outside, destinationPort: 40000), me: 1 - o) == (o, .inbound))
        let gre = PacketBuilder.gre4(source: server, destination: oneToOne.outside, header: GREHeader(protocolType: 0x0800))
        #expect(route(r, gre, me: 1 - o) == (o, .inbound))
        // Other protocols to a pool address: shard 0 (the engine drops them); not ours at all: stays.
        #expect(route(r, PacketBuilder.gre4(source: server, destination: pool, header: GREHeader(protocolType: 0x0800)), me: 1) == (0, .inbound))
        #expect(route(r, PacketBuilder.udp4(source: server, sourcePort: 1, destination: IPv4Address("192.0.2.1")!, destinationPort: 2), me: 1) == (1, .other))
        #expect(route(r, [0x60, 0, 0, 0], me: 1) == (1, .other))
    }
}

@Suite struct HandoffRingTests {
    @Test func packetsComeOutInOrderWithTheirHeadersAcrossTheWrap() {
        let ring = HandoffRing(capacity: 4096)
        defer { ring.deallocate() }
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buf.deallocate() }
        var next = 0, expect = 0
        for round in 0..<200 {
            // Push until full, pop a few: the positions walk around the ring many times.
            while true {
                let len = 1 + (next * 37) % 700
                for i in 0..<(len + 12) { buf[i] = UInt8(truncatingIfNeeded: next &+ i) }
                if !ring.push(buf.baseAddress! + 12, length: len, vnet: 12, kind: .inbound) { break }
                next += 1
            }
            for _ in 0..<(1 + round % 5) {
                guard let r = ring.peek() else { break }
                let len = 1 + (expect * 37) % 700
                #expect(r.length == len && r.kind == .inbound)
                var ok = true
                for i in 0..<(len + 12) where (r.packet - 12).load(fromByteOffset: i, as: UInt8.self) != UInt8(truncatingIfNeeded: expect &+ i) { ok = false }
                #expect(ok, "record \(expect) corrupted")
                ring.pop(length: r.length)
                expect += 1
            }
        }
        #expect(next > 500 && expect > 500)
        // A packet bigger than the ring never fits.
        let small = HandoffRing(capacity: 64)
        defer { small.deallocate() }  // a ring is freed by its owner (LeakSanitizer, scripts/sanitize.sh)
        #expect(!small.push(buf.baseAddress!, length: 100, vnet: 0, kind: .outbound))
    }

    @Test func producerAndConsumerThreadsTransferEveryPacket() async {
        let ring = HandoffRing(capacity: 64 << 10)
        let count = 200_000
        let producer = Thread {
            let buf = UnsafeMutableRawPointer.allocate(byteCount: 256, alignment: 16)
            for i in 0..<count {
                let len = 9 + i % 200
                buf.storeBytes(of: UInt64(i), as: UInt64.self)
                buf.storeBytes(of: UInt8(truncatingIfNeeded: i), toByteOffset: len - 1, as: UInt8.self)
                while !ring.push(buf, length: len, vnet: 0, kind: .outbound) { sched_yield() }
            }
            buf.deallocate()
        }
        producer.start()
        var got = 0, bad = 0
        let deadline = Date().addingTimeInterval(60)
        while got < count && Date() < deadline {
            guard let r = ring.peek() else { sched_yield(); continue }
            let i = Int(r.packet.load(as: UInt64.self))
            if i != got || r.length != 9 + i % 200 || r.packet.load(fromByteOffset: r.length - 1, as: UInt8.self) != UInt8(truncatingIfNeeded: i) { bad += 1 }
            ring.pop(length: r.length)
            got += 1
        }
        #expect(got == count && bad == 0)
        while !producer.isFinished { usleep(1000) }
        ring.deallocate()
    }
}
