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
        // The part an established packet reads is half a cache line; the whole session stays 56 bytes.
        #expect(MemoryLayout<SessionRecord>.stride == 32 && MemoryLayout<SessionLinks>.stride == 24)
    }
}

@Suite struct SessionRefreshTests {
    /// A UDP session of inside port `port`, created at `now`, in `t`.
    func addSession(_ t: inout SessionTable, port: UInt16, now: UInt32) -> UInt32 {
        var m = MappingRecord()
        m.insideAddress = 0x6440_0001; m.insidePort = port; m.outsideAddress = 0xC633_6401; m.outsidePort = port; m.proto = 17
        let mid = t.createMapping(m)!
        return t.createSession(mapping: mid, remoteAddress: 0xCB00_7101, remotePort: 53, viaAddress: 0xCB00_7101, viaPort: 53,
                               timerClass: .udp, state: 0, now: now)!
    }

    /// The last use is split over the two halves of a session (low 16 bits in the record a packet reads,
    /// high 16 in its links) and reads back whole, across a carry into the high half.
    @Test func lastUseReadsBackWhole() {
        var t = SessionTable(sessionCapacity: 8, seed: 7)
        let sid = addSession(&t, port: 1000, now: 0xFFFF)
        var seen = t.lastSeen(sid)
        #expect(seen == 0xFFFF)
        t.touch(sid, now: 0x1_0000)
        seen = t.lastSeen(sid)
        #expect(seen == 0x1_0000)
        t.touch(sid, now: 0x0012_3456)
        seen = t.lastSeen(sid)
        #expect(seen == 0x0012_3456)
    }

    /// With timeouts of 2^16 s or more a session can live while the low 16 bits come round again: then a
    /// refresh compares the high bits too, so a packet exactly 65 536 s after the last one still counts.
    @Test func refreshExactlyOneWrapLaterCountsWhenTimeoutsAreLong() {
        var t = SessionTable(sessionCapacity: 8, seed: 7)
        let sid = addSession(&t, port: 1000, now: 100)
        let safeDefault = t.refreshReadsHighBits
        #expect(safeDefault)
        t.touch(sid, now: 100 + 65_536)
        let seen = t.lastSeen(sid)
        #expect(seen == 100 + 65_536)
    }

    /// A refresh in a new second moves the session to the tail of its timer list (the expiry order).
    @Test func refreshMovesTheSessionToTheTailOfItsTimerList() {
        var t = SessionTable(sessionCapacity: 8, seed: 7)
        t.refreshReadsHighBits = false
        let first = addSession(&t, port: 1000, now: 10)
        let second = addSession(&t, port: 1001, now: 11)
        var oldest = t.oldest(.udp)
        #expect(oldest == first)
        t.touch(first, now: 11)
        oldest = t.oldest(.udp)
        let seen = t.lastSeen(first)
        #expect(oldest == second && seen == 11)
        t.touch(second, now: 11)  // same second: no move
        oldest = t.oldest(.udp)
        #expect(oldest == second)
    }
}
