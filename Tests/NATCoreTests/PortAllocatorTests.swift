import NATCore
import NATWire
import Testing

/// The one port allocator of NAPT44 and stateful NAT64: preservation, RFC 6056 §3.3.3 walk, ranges, parity.
@Suite struct PortAllocatorTests {
    static let address: UInt32 = 0xC633_6401  // 198.51.100.1

    /// Takes `port` on the table's address for `proto`, as a mapping would.
    static func take(_ t: inout SessionTable, _ port: UInt16, proto: UInt8 = IPProtocol.udp, inside: UInt32 = 0x6440_0002) {
        var r = MappingRecord()
        r.insideAddress = inside
        r.insidePort = port
        r.outsideAddress = address
        r.outsidePort = port
        r.proto = proto
        #expect(t.createMapping(r) != nil)
    }

    static func allocator(_ ranges: [ClosedRange<UInt16>] = [1...65535], keepsRange: Bool = true, preserve: Bool = true,
                          parity: Bool = false, attempts: Int = 1024) -> PortAllocator {
        PortAllocator(ports: PortSet(ranges: ranges), keepsRange: keepsRange, preservesPort: preserve,
                      preservesParity: parity, maxAttempts: attempts, seed: 42)
    }

    @Test func rfc4787_preservesAFreePortAndWalksFromTheHashOtherwise() {
        var t = SessionTable(sessionCapacity: 64, seed: 1)
        let a = Self.allocator()
        #expect(a.allocate(proto: IPProtocol.udp, address: Self.address, preferred: 5000, keyA: 1, keyB: 2, probe: t.endpointProbe) == 5000)
        Self.take(&t, 5000)
        let other = a.allocate(proto: IPProtocol.udp, address: Self.address, preferred: 5000, keyA: 1, keyB: 2, probe: t.endpointProbe)
        #expect(other != nil && other != 5000 && other! >= 1024)
        #expect(a.allocate(proto: IPProtocol.udp, address: Self.address, preferred: 5000, keyA: 1, keyB: 2, probe: t.endpointProbe) == other,
                "the same key starts at the same port")
        // Another protocol's mapping does not take the port.
        #expect(a.allocate(proto: IPProtocol.tcp, address: Self.address, preferred: 5000, keyA: 1, keyB: 2, probe: t.endpointProbe) == 5000)
        // Without preservation the hash decides even for a free port.
        let h = Self.allocator(preserve: false).allocate(proto: IPProtocol.tcp, address: Self.address, preferred: 5000, keyA: 1, keyB: 2, probe: t.endpointProbe)
        #expect(h != nil && h! >= 1024)
    }

    @Test func rfc4787_req3_keepsBelow1024Apart() {
        let t = SessionTable(sessionCapacity: 64, seed: 1)
        let a = Self.allocator([500...600, 2000...2100], preserve: false)
        for key in UInt64(0)..<50 {
            let low = a.allocate(proto: IPProtocol.tcp, address: Self.address, preferred: 80, keyA: key, keyB: 0, probe: t.endpointProbe)!
            #expect((500...600).contains(low))
            let high = a.allocate(proto: IPProtocol.tcp, address: Self.address, preferred: 40000, keyA: key, keyB: 0, probe: t.endpointProbe)!
            #expect((2000...2100).contains(high))
        }
        // No port in the wanted range: the whole set.
        let onlyHigh = Self.allocator([2000...2100], preserve: false)
        #expect((2000...2100).contains(onlyHigh.allocate(proto: IPProtocol.udp, address: Self.address, preferred: 53, keyA: 9, keyB: 9, probe: t.endpointProbe)!))
        // ICMP identifiers have no ranges.
        let seen = Set((UInt64(0)..<200).map { a.allocate(proto: IPProtocol.icmp, address: Self.address, preferred: 80, keyA: $0, keyB: 0, probe: t.endpointProbe)! })
        #expect(seen.contains { $0 < 1024 } && seen.contains { $0 >= 1024 })
    }

    @Test func rfc4787_req4_keepsParityAndGivesUpAfterTheAttempts() {
        var t = SessionTable(sessionCapacity: 256, seed: 1)
        let a = Self.allocator([2000...2009], preserve: false, parity: true)
        for key in UInt64(0)..<20 {
            #expect(a.allocate(proto: IPProtocol.udp, address: Self.address, preferred: 4001, keyA: key, keyB: 0, probe: t.endpointProbe)! % 2 == 1)
            #expect(a.allocate(proto: IPProtocol.udp, address: Self.address, preferred: 4000, keyA: key, keyB: 0, probe: t.endpointProbe)! % 2 == 0)
        }
        for p in stride(from: UInt16(2001), through: 2009, by: 2) { Self.take(&t, p) }
        #expect(a.allocate(proto: IPProtocol.udp, address: Self.address, preferred: 4001, keyA: 3, keyB: 0, probe: t.endpointProbe) == nil,
                "every odd port taken")
        #expect(a.allocate(proto: IPProtocol.udp, address: Self.address, preferred: 4000, keyA: 3, keyB: 0, probe: t.endpointProbe) != nil)
        // One attempt: only the hash's first candidate is tried.
        let one = Self.allocator([2000...2009], preserve: false, attempts: 1)
        let first = one.allocate(proto: IPProtocol.tcp, address: Self.address, preferred: 4000, keyA: 5, keyB: 5, probe: t.endpointProbe)!
        Self.take(&t, first, proto: IPProtocol.tcp)
        #expect(one.allocate(proto: IPProtocol.tcp, address: Self.address, preferred: 4000, keyA: 5, keyB: 5, probe: t.endpointProbe) == nil)
        #expect(one.ports == PortSet(ranges: [2000...2009]))
    }
}
