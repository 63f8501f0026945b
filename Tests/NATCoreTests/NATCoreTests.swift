import Testing
import NATWire
import NATCore

@Suite("NATCore: port sets, hash index, session table")
struct NATCoreTests {
    @Test func rfc7597_mapE_v6plusHas240PortsInFifteenBlocks() {
        let s = PortSet(psid: 0x12, psidLength: 8, offsetBits: 4)!
        #expect(s.count == 240)
        #expect(s.ranges.count == 15)
        // Block A = 1: 0x1000 | 0x12 << 4 = 4384 ... 4399; block A = 15: 0xF120 ... 0xF12F.
        #expect(s.ranges.first == 4384...4399)
        #expect(s.ranges.last == 61728...61743)
        var all: [UInt16] = []
        for i in 0..<s.count { all.append(s.port(at: i)) }
        #expect(Set(all).count == 240)
        for a in 1...15 { for j in 0..<16 { #expect(all.contains(UInt16(a << 12 | 0x12 << 4 | j))) } }
        #expect(!s.contains(4383) && !s.contains(4400))
    }

    @Test func rfc7597_mapE_ocnVirtualConnectHas1008Ports() {
        let s = PortSet(psid: 0x2A, psidLength: 6, offsetBits: 6)!
        #expect(s.count == 1008)
        #expect(s.ranges.count == 63)
        for i in 0..<s.count {
            let p = Int(s.port(at: i))
            #expect(p >> 10 >= 1 && (p >> 4) & 0x3F == 0x2A)
        }
        #expect(s.port(at: 0) == UInt16(1 << 10 | 0x2A << 4))
        #expect(s.port(at: 1007) == UInt16(63 << 10 | 0x2A << 4 | 15))
    }

    @Test func mapEInvalidParametersAreRefused() {
        #expect(PortSet(psid: 256, psidLength: 8, offsetBits: 4) == nil)
        #expect(PortSet(psid: 0, psidLength: 10, offsetBits: 8) == nil)
    }

    @Test func portRangesMergeAndSplitAt1024() {
        let s = PortSet(ranges: [1000...1100, 1050...2000, 2001...2001, 5...5])
        #expect(s.ranges == [5...5, 1000...2001])
        #expect(s.count == 1 + 1002)
        let (low, high) = s.split()
        #expect(low.ranges == [5...5, 1000...1023])
        #expect(high.ranges == [1024...2001])
        #expect(s.port(at: 0) == 5 && s.port(at: 1) == 1000 && s.port(at: 1002) == 2001)
    }

    @Test func hashIndexInsertLookupRemove() {
        let idx = HashIndex(capacity: 100)
        for id in 1...100 { idx.insert(UInt32(id), hash: UInt32(id % 7)) }
        var seen = 0
        var id = idx.first(3)
        while id != 0 { #expect(id % 7 == 3); seen += 1; id = idx.next(id, hash: 3) }
        #expect(seen == 14)
        let first = idx.remove(10, hash: 3), again = idx.remove(10, hash: 3)
        #expect(first && !again)
        seen = 0
        id = idx.first(3)
        while id != 0 { seen += 1; id = idx.next(id, hash: 3) }
        #expect(seen == 13)
    }

    /// Entries that share a bucket but not a tag are never offered as candidates, and removing one from
    /// the middle of a mixed chain keeps the others' tags intact.
    @Test func hashIndexTagsSkipForeignEntriesInOneBucket() {
        let idx = HashIndex(capacity: 100)  // 128 buckets, 7 id bits, 25 tag bits
        func h(_ tag: UInt32) -> UInt32 { 5 | tag << 20 }
        for id in 1...30 { idx.insert(UInt32(id), hash: h(UInt32(id % 3))) }
        func candidates(_ tag: UInt32) -> [UInt32] {
            var out: [UInt32] = []
            var id = idx.first(h(tag))
            while id != 0 && out.count < 100 { out.append(id); id = idx.next(id, hash: h(tag)) }
            return out
        }
        #expect(candidates(1).sorted() == (1...30).filter { $0 % 3 == 1 }.map(UInt32.init))
        #expect(candidates(7).isEmpty)
        let removed = idx.remove(16, hash: h(1)), removedAgain = idx.remove(16, hash: h(1))
        #expect(removed && !removedAgain)
        #expect(candidates(1).count == 9 && !candidates(1).contains(16))
        #expect(candidates(0).sorted() == (1...30).filter { $0 % 3 == 0 }.map(UInt32.init))
        #expect(candidates(2).count == 10)
    }

    @Test func sessionTableIndexesBothSidesAndRecyclesSlots() {
        var t = SessionTable(sessionCapacity: 2, seed: 1)
        var m = MappingRecord()
        m.insideAddress = 1; m.insidePort = 10; m.outsideAddress = 2; m.outsidePort = 20; m.proto = 17
        let mid = t.createMapping(m)!
        let s1 = t.createSession(mapping: mid, remoteAddress: 3, remotePort: 30, viaAddress: 3, viaPort: 30, timerClass: .udp, state: 0, now: 0)!
        let s2 = t.createSession(mapping: mid, remoteAddress: 4, remotePort: 40, viaAddress: 4, viaPort: 40, timerClass: .udp, state: 0, now: 1)!
        #expect(t.createSession(mapping: mid, remoteAddress: 5, remotePort: 50, viaAddress: 5, viaPort: 50, timerClass: .udp, state: 0, now: 1) == nil)
        #expect(t.lookupFromInside(tenant: 0, proto: 17, insideAddress: 1, insidePort: 10, remoteAddress: 4, remotePort: 40) == s2)
        #expect(t.lookupFromOutside(proto: 17, outsideAddress: 2, outsidePort: 20, remoteAddress: 3, remotePort: 30) == s1)
        #expect(t.oldest(.udp) == s1)
        t.touch(s1, now: 5)
        #expect(t.oldest(.udp) == s2)
        let had = t.mappingHasSession(mid, remoteAddress: 4)
        #expect(had)
        t.removeSession(s2)
        let hasAfter = t.mappingHasSession(mid, remoteAddress: 4)
        #expect(!hasAfter)
        #expect(t.lookupFromOutside(proto: 17, outsideAddress: 2, outsidePort: 20, remoteAddress: 4, remotePort: 40) == 0)
        t.removeSession(s1)
        t.releaseMapping(mid, holdUntil: 120)
        #expect(t.lookupMapping(proto: 17, outsideAddress: 2, outsidePort: 20) == mid)   // held
        #expect(t.lookupMapping(tenant: 0, proto: 17, insideAddress: 1, insidePort: 10, qualifierAddress: 0, qualifierPort: 0) == 0)
        t.releaseHeldPorts(now: 119)
        #expect(t.heldCount == 1)
        t.releaseHeldPorts(now: 120)
        #expect(t.heldCount == 0 && t.lookupMapping(proto: 17, outsideAddress: 2, outsidePort: 20) == 0)
        #expect(t.sessionCount == 0 && t.mappingCount == 0)
    }

    @Test func recordSizesStayWithinTheMemoryBudget() {
        #expect(MemoryLayout<SessionRecord>.stride + MemoryLayout<SessionLinks>.stride <= 56)
        #expect(MemoryLayout<MappingRecord>.stride <= 40)
        // A session, its own mapping and both of their indexes: at most 128 bytes.
        let t = SessionTable(sessionCapacity: 1 << 17, seed: 1)
        let perSession = Double(t.memoryBytes - (t.hostCapacity + 1) * MemoryLayout<HostRecord>.stride - 4 * t.hostCapacity * 2) / Double(1 << 17)
        #expect(perSession <= 128)
    }
}
