import NAPT44
import NATCore
@testable import NATRuntime
import NATWire
import Testing

// Issue 15: a helped session's TCP super-packet (GSO, partial checksum) is cut into plain segments in
// software before the engine sees it, so the FTP helper's rewrite and the sequence offset are right in
// every segment that leaves.
@Suite struct HelperOffloadTests {
    static let client = IPv4Address("100.64.0.2")!
    static let server = IPv4Address("203.0.113.2")!
    static let pool = IPv4Address("198.51.100.1")!

    @Test func helpedTCPSuperPacketIsSegmentedAndEachSegmentRewritten() throws {
        var c = NAPT44Configuration(pool: [IPv4Prefix("198.51.100.1/32")!])
        c.hashSeed = 7
        var engine = try NAPT44Engine(configuration: c)
        var syn = PacketBuilder.tcp4(source: Self.client, sourcePort: 40000, destination: Self.server, destinationPort: 21,
                                     flags: .syn, sequenceNumber: 1000)
        let synVerdict = engine.process(&syn, now: Timestamp(nanoseconds: 1_000_000_000))
        #expect(synVerdict == .toOutside)
        let first = "PORT 100,64,0,2,39,16\r\n", second = "NOOP\r\n"
        var p = PacketBuilder.tcp4(source: Self.client, sourcePort: 40000, destination: Self.server, destinationPort: 21,
                                   flags: [.ack, .psh], sequenceNumber: 1001, acknowledgmentNumber: 5001,
                                   payload: Array((first + second).utf8))
        let pseudo = Checksum.fold(Checksum.pseudoHeaderSum(source: Self.client, destination: Self.server, protocol: IPProtocol.tcp,
                                                            length: 20 + first.utf8.count + second.utf8.count))
        p[36] = UInt8(pseudo >> 8)
        p[37] = UInt8(pseudo & 0xFF)
        let h = VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum, gsoType: VirtioNetHeader.gsoTCPv4, headerLength: 40,
                                gsoSize: UInt16(first.utf8.count), checksumStart: 20, checksumOffset: 16)
        let memory = MemoryPacketQueue()
        var q = QueueIO(device: MemoryPacketDevice(queue: memory, metadataSize: 12), shard: nil)
        let start = q.packetStart
        h.store(to: start - 12, size: 12)
        p.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let plain = engine.needsPlainPacket(UnsafeMutableRawBufferPointer(start: start, count: p.count))
        #expect(plain)
        q.handle(start, p.count, kind: .other, engine: &engine, now: Timestamp(nanoseconds: 2_000_000_000))
        let written = memory.takeWritten().map { Array($0.dropFirst(12)) }
        #expect(written.count == 2)
        var texts: [String] = [], seqs: [UInt32] = []
        for w in written {
            try w.withUnsafeBytes { b in
                let ip = try IPv4View(validating: b)
                #expect(ip.isChecksumValid && ip.source == Self.pool)
                let l4 = UnsafeRawBufferPointer(rebasing: b[ip.headerLength..<ip.count])
                let ph = Checksum.pseudoHeaderSum(source: ip.source, destination: ip.destination, protocol: IPProtocol.tcp, length: l4.count)
                #expect(Checksum.fold(Checksum.sum(l4, initial: ph)) == 0xFFFF, "TCP checksum")
                let hl = TCPSegmentEdit.headerLength(l4.baseAddress!)
                seqs.append(TCPSegmentEdit.sequenceNumber(l4.baseAddress!))
                texts.append(String(decoding: l4[hl...], as: UTF8.self))
            }
        }
        #expect(texts == ["PORT 198,51,100,1,39,16\r\n", "NOOP\r\n"])
        #expect(seqs == [1001, 1026])
    }
}
