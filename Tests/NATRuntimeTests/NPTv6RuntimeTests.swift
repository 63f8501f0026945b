import Foundation
import Logging
import NAPT44
import NATCore
@testable import NATRuntime
import NATWire
import NPTv6
import Testing

private func parseError(_ text: String) -> ConfigurationError? {
    do {
        _ = try ConfigLoader.parse(text, file: "n66.toml")
        return nil
    } catch {
        return error
    }
}

private let one = """
[nptv6]
inside_interface = "in0"
outside_interface = "out0"
inside_prefix = "fd01:203:405::/48"
outside_prefix = "2001:db8:1::/48"
"""

/// `[nptv6]` in the configuration file, and NPTv6 in the packet thread beside NAT44 (no root: the
/// in-memory device).
@Suite struct NPTv6RuntimeTests {
    // MARK: Configuration

    @Test func nptv6AloneIsAConfiguration() throws {
        let c = try ConfigLoader.parse(one, file: "n66.toml")
        #expect(c.nat44 == nil && c.nat64 == nil)
        let n = try #require(c.nptv6)
        #expect(n.translations.count == 1)
        #expect(n.translations[0].insideInterface == "in0" && n.translations[0].outsideInterface == "out0")
        #expect(n.translations[0].insidePrefix == IPv6Prefix("fd01:203:405::/48")!)
        #expect(n.translations[0].outsidePrefix == IPv6Prefix("2001:db8:1::/48")!)
    }

    @Test func severalTranslationsAsAnArrayOfTables() throws {
        let c = try ConfigLoader.parse("""
        [[nptv6]]
        inside_interface = "in0"
        inside_prefix = "fd01:203:405::/48"
        outside_prefix = "2001:db8:1::/48"

        [[nptv6]]
        inside_interface = "in1"
        inside_prefix = "fd01:203:406:100::/56"
        outside_prefix = "2001:db8:2:100::/56"
        """, file: "n66.toml")
        #expect(c.nptv6?.translations.count == 2)
        #expect(c.nptv6?.insideInterfaces == ["in0", "in1"])
    }

    @Test func nptv6BesideNAT44AndNAT64() throws {
        let c = try ConfigLoader.parse(one + """

        [nat44]
        inside = ["100.64.0.0/24"]
        pool = ["198.51.100.1/32"]

        [nat64]
        mode = "siit"
        prefix = "64:ff9b::/96"
        eam = [{ v4 = "198.51.100.72", v6 = "2001:db8:99::2" }]
        """, file: "n66.toml")
        #expect(c.nat44 != nil && c.nat64 != nil && c.nptv6 != nil)
    }

    /// RFC 6296 §3.1: equal lengths, at most /64, two different, non-overlapping prefixes; refused with
    /// the file, the key and the problem.
    @Test("RFC 6296 §3.1: bad [nptv6] tables are refused with file, key and problem")
    func rfc6296_3_1_badTablesRefused() throws {
        func table(_ i: String, _ o: String, extra: String = "") -> String {
            "[nptv6]\ninside_interface = \"in0\"\ninside_prefix = \"\(i)\"\noutside_prefix = \"\(o)\"\n\(extra)"
        }
        let unequal = try #require(parseError(table("fd01:203:405::/48", "2001:db8:1:100::/56")))
        #expect(unequal.file == "n66.toml" && unequal.key == "nptv6.outside_prefix" && unequal.problem.contains("equal length"))
        #expect(parseError(table("fd01:203:405:6:7::/80", "2001:db8:1:2:3::/80"))?.key == "nptv6.inside_prefix")
        #expect(parseError(table("2001:db8:1::/48", "2001:db8:1::/48"))?.key == "nptv6.outside_prefix")
        #expect(parseError(table("fd01:203:405::1/48", "2001:db8:1::/48"))?.problem.contains("bits set") == true)
        #expect(parseError(table("fd01:203:405::/48", "nonsense"))?.key == "nptv6.outside_prefix")
        #expect(parseError(table("fd01:203:405::/48", "2001:db8:1::/48", extra: "colour = 1"))?.key == "nptv6.colour")
        #expect(parseError("[nptv6]\ninside_prefix = \"fd01::/48\"\noutside_prefix = \"2001:db8:1::/48\"\n")?.key == "nptv6.inside_interface")
        #expect(parseError("[nptv6]\ninside_interface = \"in0\"\noutside_prefix = \"2001:db8:1::/48\"\n")?.key == "nptv6.inside_prefix")
        let overlap = try #require(parseError("""
        [[nptv6]]
        inside_interface = "in0"
        inside_prefix = "fd01:203:405::/48"
        outside_prefix = "2001:db8:1::/48"

        [[nptv6]]
        inside_interface = "in1"
        inside_prefix = "fd01:203:405:100::/56"
        outside_prefix = "2001:db8:2:100::/56"
        """))
        #expect(overlap.key == "nptv6[1].inside_prefix" && overlap.problem.contains("overlaps"))
        let with64 = try #require(parseError(table("fd01:203:405::/48", "2001:db8:64::/48") + """

        [nat64]
        mode = "siit"
        prefix = "2001:db8:64::/96"
        eam = [{ v4 = "198.51.100.72", v6 = "2001:db8:99::2" }]
        """))
        #expect(with64.key == "nptv6.outside_prefix" && with64.problem.contains("nat64.prefix"))
        #expect(with64.description.hasPrefix("n66.toml: key 'nptv6.outside_prefix':"))
    }

    @Test func examplesFileParses() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Examples/nptv6.toml").path
        let c = try ConfigLoader.load(file: path)
        #expect(c.nptv6?.translations.first?.outsidePrefix == IPv6Prefix("2001:db8:1::/48")!)
    }

    // MARK: The packet thread

    static let host = IPv6Address("fd01:203:405:1::1234")!
    static let hostOutside = IPv6Address("2001:db8:1:d550::1234")!
    static let remote = IPv6Address("2001:db8:beef::1")!

    static func setup(nat44: Bool, commands: CommandQueue) -> PacketThreadSetup {
        var c = NAPT44Configuration(pool: [IPv4Prefix("198.51.100.1/32")!])
        c.insidePrefixes = [IPv4Prefix("100.64.0.0/24")!]
        c.hashSeed = 7
        let n66 = NPTv6Setup(configurations: [NPTv6Configuration(insidePrefix: IPv6Prefix("fd01:203:405::/48")!,
                                                                 outsidePrefix: IPv6Prefix("2001:db8:1::/48")!)],
                             claimsAll: !nat44)
        return PacketThreadSetup(queue: 0, configuration: nat44 ? c : nil, nat64: nil, rings: nil, commands: commands,
                                 control: LoopControl(), logger: Logger(label: "test"), nptv6: n66)
    }

    @Test("RFC 6296 §3.6: the packet thread translates both ways beside NAT44 and counts it")
    func rfc6296_3_6_packetThreadBesideNAT44() throws {
        let memory = MemoryPacketQueue()
        let commands = CommandQueue()
        var thread = try PacketThread(device: MemoryPacketDevice(queue: memory), setup: Self.setup(nat44: true, commands: commands),
                                      now: Timestamp(nanoseconds: 1))
        let out = PacketBuilder.udp6(source: Self.host, sourcePort: 5000, destination: Self.remote, destinationPort: 53,
                                     payload: Array("query".utf8))
        let back = PacketBuilder.udp6(source: Self.remote, sourcePort: 53, destination: Self.hostOutside, destinationPort: 5000,
                                      payload: Array("answer".utf8))
        let v4 = PacketBuilder.udp4(source: IPv4Address("100.64.0.2")!, sourcePort: 40000, destination: IPv4Address("203.0.113.2")!,
                                    destinationPort: 53, payload: Array("hello".utf8))
        let foreign = PacketBuilder.udp6(source: IPv6Address("2001:db8:cafe::1")!, sourcePort: 1, destination: Self.remote, destinationPort: 2)
        memory.inject([out, back, v4, foreign])
        thread.step(now: Timestamp(nanoseconds: 2))
        let w = memory.takeWritten()
        #expect(w.count == 3)
        #expect(w[0] == PacketBuilder.udp6(source: Self.hostOutside, sourcePort: 5000, destination: Self.remote, destinationPort: 53,
                                           payload: Array("query".utf8)))
        #expect(w[1] == PacketBuilder.udp6(source: Self.remote, sourcePort: 53, destination: Self.host, destinationPort: 5000,
                                           payload: Array("answer".utf8)))
        #expect(w.count == 3 && w[2][12...15] == [198, 51, 100, 1])
        let snap = try #require(PacketThreadTests.ask(&thread, commands, now: Timestamp(nanoseconds: 3)) { .snapshot(SnapshotRequest(), $0) })
        #expect(snap.nptv6?.outboundPackets == 1 && snap.nptv6?.inboundPackets == 1)
        #expect(snap.nat44?.outboundPackets == 1)
        let dump = try #require(PacketThreadTests.ask(&thread, commands, now: Timestamp(nanoseconds: 4)) { .dumpLines($0) })
        #expect(dump.contains { $0.hasPrefix("nptv6 counters queue=0 outbound=1 inbound=1") })
    }

    @Test func nptv6AloneCountsWhatItDoesNotTranslate() throws {
        let memory = MemoryPacketQueue()
        let commands = CommandQueue()
        var thread = try PacketThread(device: MemoryPacketDevice(queue: memory), setup: Self.setup(nat44: false, commands: commands),
                                      now: Timestamp(nanoseconds: 1))
        memory.inject([PacketBuilder.udp6(source: IPv6Address("2001:db8:cafe::1")!, sourcePort: 1, destination: Self.remote, destinationPort: 2),
                       PacketBuilder.udp6(source: Self.host, sourcePort: 1, destination: Self.remote, destinationPort: 2)])
        thread.step(now: Timestamp(nanoseconds: 2))
        #expect(memory.takeWritten().count == 1)
        let snap = try #require(PacketThreadTests.ask(&thread, commands, now: Timestamp(nanoseconds: 3)) { .snapshot(SnapshotRequest(), $0) })
        #expect(snap.nptv6?.dropped(.notNATTraffic) == 1)
        #expect(snap.nptv6?.outboundPackets == 1)
    }

    /// RFC 6296 §3.2 with TUN offloads: a TCP super-packet (GSO TCPv6) whose checksum field holds only the
    /// pseudo-header sum (NEEDS_CSUM) is written back whole with its header, and the checksum the kernel
    /// completes for the translated addresses verifies: the translation does not change the pseudo-header sum.
    @Test("RFC 6296 §3.2: a GSO super-packet with a partial checksum passes whole and stays right")
    func rfc6296_3_2_superPacketWithPartialChecksum() throws {
        let payload = (0..<9000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
        var p = PacketBuilder.tcp6(source: Self.host, sourcePort: 40001, destination: Self.remote, destinationPort: 5201,
                                   flags: [.ack, .psh], sequenceNumber: 77_000, acknowledgmentNumber: 5, payload: payload)
        let pseudo = Checksum.fold(Checksum.pseudoHeaderSum(source: Self.host, destination: Self.remote, nextHeader: IPProtocol.tcp,
                                                            length: 20 + payload.count))
        p[56] = UInt8(pseudo >> 8)
        p[57] = UInt8(pseudo & 0xFF)
        let h = VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum | VirtioNetHeader.flagDataValid, gsoType: VirtioNetHeader.gsoTCPv6,
                                headerLength: 60, gsoSize: 1440, checksumStart: 40, checksumOffset: 16)
        let memory = MemoryPacketQueue()
        var q = QueueIO(device: MemoryPacketDevice(queue: memory, metadataSize: 12), shard: nil)
        var path = try NPTv6Path(NPTv6Setup(configurations: [NPTv6Configuration(insidePrefix: IPv6Prefix("fd01:203:405::/48")!,
                                                                                outsidePrefix: IPv6Prefix("2001:db8:1::/48")!)]))
        let at = q.packetStart
        h.store(to: at - 12, size: 12)
        p.withUnsafeBytes { at.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let i = path.owner(at, p.count)
        #expect(i == 0)
        q.handleNPTv6(at, p.count, translator: i, nptv6: &path, now: Timestamp(nanoseconds: 1))
        let w = memory.takeWritten()
        try #require(w.count == 1)
        let out = w[0].withUnsafeBytes { VirtioNetHeader(loading: $0.baseAddress!) }
        #expect(out.gsoType == VirtioNetHeader.gsoTCPv6 && out.gsoSize == 1440 && out.flags == VirtioNetHeader.flagNeedsChecksum)
        var packet = Array(w[0][12...])
        #expect(packet.count == p.count)
        #expect(packet[56] == p[56] && packet[57] == p[57])   // the partial checksum is untouched
        let ok = packet.withUnsafeMutableBytes { VirtioNet.completeChecksum($0, header: out) }
        #expect(ok)
        let verifies = packet.withUnsafeBytes { b -> Bool in
            let v = try! IPv6View(validating: b)
            #expect(v.source == Self.hostOutside)
            let ph = Checksum.pseudoHeaderSum(source: v.source, destination: v.destination, nextHeader: v.nextHeader, length: v.payloadLength)
            return Checksum.fold(Checksum.sum(v.payloadPointer, count: v.payloadLength, initial: ph)) == 0xFFFF
        }
        #expect(verifies)
        #expect(q.io.offloaded == 1)
    }

    /// With a NAT64 in the daemon, an inside host's packet to the NAT64 prefix is the NAT64's.
    @Test func packetsToTheNAT64PrefixAreLeftToTheNAT64() throws {
        let path = try NPTv6Path(NPTv6Setup(configurations: [NPTv6Configuration(insidePrefix: IPv6Prefix("fd01:203:405::/48")!,
                                                                                outsidePrefix: IPv6Prefix("2001:db8:1::/48")!)],
                                            nat64Prefix: IPv6Prefix("64:ff9b::/96")!))
        let to64 = PacketBuilder.udp6(source: Self.host, sourcePort: 1, destination: IPv6Address("64:ff9b::cb00:7102")!, destinationPort: 2)
        let other = PacketBuilder.udp6(source: Self.host, sourcePort: 1, destination: Self.remote, destinationPort: 2)
        #expect(to64.withUnsafeBytes { path.owner($0.baseAddress!, $0.count) } == -1)
        #expect(other.withUnsafeBytes { path.owner($0.baseAddress!, $0.count) } == 0)
    }
}
