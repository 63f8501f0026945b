import Testing
@testable import NATCore

@Suite struct TableMemoryTests {
    /// Large tables start on a 2 MiB boundary (so the kernel can back them with huge pages) and come
    /// zero-filled; every element can be written and read back; small ones are page aligned.
    @Test(arguments: [1, 1000, (3 << 20) / 8 + 5, (8 << 20) / 8])
    func tablesAreAlignedZeroedAndUsable(count: Int) {
        let p = TableMemory.allocate(UInt64.self, count: count)
        defer { TableMemory.deallocate(p, count: count) }
        let address = UInt(bitPattern: p)
        #expect(address % 4096 == 0)
        if count * 8 >= 2 << 20 { #expect(address % (2 << 20) == 0) }
        var nonZero = 0
        for i in 0..<count where p[i] != 0 { nonZero += 1 }
        #expect(nonZero == 0)
        for i in 0..<count { p[i] = UInt64(i) &* 0x9E37_79B9 }
        var wrong = 0
        for i in 0..<count where p[i] != UInt64(i) &* 0x9E37_79B9 { wrong += 1 }
        #expect(wrong == 0)
    }

    /// The wire form of a key pair is what a packet's bytes read as: addresses and ports in network order
    /// one after the other, and exchanging the halves swaps the fields.
    @Test func wireKeysMatchPacketBytes() {
        let bytes: [UInt8] = [100, 64, 0, 7, 203, 0, 113, 9, 0x30, 0x39, 0x00, 0x35]
        bytes.withUnsafeBytes { b in
            let addresses = b.loadUnaligned(as: UInt64.self), ports = b.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
            #expect(addresses == WireKey.pair(0x6440_0007, 0xCB00_7109))
            #expect(ports == WireKey.pair(UInt16(12345), UInt16(53)))
            #expect(WireKey.first(addresses) == 0x6440_0007 && WireKey.second(addresses) == 0xCB00_7109)
            #expect(WireKey.first(ports) == 12345 && WireKey.second(ports) == 53)
            #expect(WireKey.swapped(addresses) == WireKey.pair(0xCB00_7109, 0x6440_0007))
            #expect(WireKey.swapped(ports) == WireKey.pair(UInt16(53), UInt16(12345)))
        }
        var r = SessionRecord()
        r.insideAddress = 1; r.viaAddress = 2; r.remoteAddress = 3; r.outsideAddress = 4
        r.insidePort = 5; r.viaPort = 6; r.remotePort = 7; r.outsidePort = 8
        #expect([r.insideAddress, r.viaAddress, r.remoteAddress, r.outsideAddress] == [1, 2, 3, 4])
        #expect([r.insidePort, r.viaPort, r.remotePort, r.outsidePort] == [5, 6, 7, 8])
        #expect(MemoryLayout<SessionRecord>.stride == 56)
    }
}
