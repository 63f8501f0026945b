import NATWire
import Testing
@testable import PortControl

@Suite struct NATPMPTests {
    @Test func rfc6886_3_2_externalAddressRequestAndResponse() throws {
        #expect(try NATPMP.parse([0, 0]) == .externalAddress)
        let b = MemoryBackend()
        let answer = service().handleDatagram([0, 0], from: client, now: 1042, backend: b)
        // version 0, opcode 128, result 0, epoch 42, 198.51.100.1
        #expect(answer == hex("00 80 0000 0000002a c6336401"))
    }

    @Test func rfc6886_3_3_mapRequestTakenApartAndAnswered() throws {
        // version 0, opcode 2 (TCP), reserved, internal 8080, suggested external 9090, lifetime 3600.
        let request = hex("00 02 0000 1f90 2382 00000e10")
        #expect(try NATPMP.parse(request) == .map(.tcp, internalPort: 8080, suggestedExternalPort: 9090, lifetime: 3600))
        let b = MemoryBackend()
        let answer = service().handleDatagram(request, from: client, now: 1010, backend: b)
        #expect(answer == hex("00 82 0000 0000000a 1f90 2382 00000e10"))
        #expect(b.table == [PortMapping(proto: .tcp, externalPort: 9090, internalAddress: client, internalPort: 8080, origin: .natpmp,
                                        description: "NAT-PMP 100.64.0.2:8080", expiresAt: 4610)])
        // A second client asking for the same external port gets another one (§3.3: the server picks).
        let second = service().handleDatagram(hex("00 02 0000 1f90 2382 00000e10"), from: other, now: 1010, backend: b)!
        #expect(Array(second[0..<4]) == [0, 0x82, 0, 0] && Array(second[10..<12]) != [0x23, 0x82])
        // The first client asking again refreshes its own mapping, same external port.
        let again = service().handleDatagram(hex("00 02 0000 1f90 0000 00000e10"), from: client, now: 1020, backend: b)!
        #expect(Array(again[10..<12]) == [0x23, 0x82] && b.table.count == 2)
    }

    @Test func rfc6886_3_3_lifetimeIsClampedToTheLeaseBounds() {
        let b = MemoryBackend()
        let s = service { $0.minLease = 60; $0.maxLease = 7200 }
        let short = s.handleDatagram(hex("00 01 0000 0035 0035 00000001"), from: client, now: 1000, backend: b)!
        #expect(Array(short[12..<16]) == hex("0000003c"))
        let long = s.handleDatagram(hex("00 01 0000 0036 0036 ffffffff"), from: client, now: 1000, backend: b)!
        #expect(Array(long[12..<16]) == hex("00001c20"))
    }

    @Test func rfc6886_3_4_lifetimeZeroDeletes() {
        let b = MemoryBackend()
        let s = service()
        _ = s.handleDatagram(hex("00 01 0000 1000 1000 00000e10"), from: client, now: 1000, backend: b)
        _ = s.handleDatagram(hex("00 01 0000 1001 1001 00000e10"), from: client, now: 1000, backend: b)
        let del = s.handleDatagram(hex("00 01 0000 1000 0000 00000000"), from: client, now: 1001, backend: b)
        #expect(del == hex("00 81 0000 00000001 1000 0000 00000000"))
        #expect(b.table.map(\.internalPort) == [0x1001])
        // Internal port 0: all of the client's UDP mappings.
        _ = s.handleDatagram(hex("00 01 0000 0000 0000 00000000"), from: client, now: 1001, backend: b)
        #expect(b.table.isEmpty)
    }

    @Test func rfc6886_3_5_errorsAndSilence() {
        let b = MemoryBackend()
        let s = service()
        // Unsupported opcode: result 5 with the header only.
        #expect(s.handleDatagram([0, 7], from: client, now: 1000, backend: b) == hex("00 87 0005 00000000"))
        // Truncated map request, a response, a single byte: no answer.
        #expect(s.handleDatagram(hex("00 02 0000 1f90"), from: client, now: 1000, backend: b) == nil)
        #expect(s.handleDatagram(hex("00 80 0000"), from: client, now: 1000, backend: b) == nil)
        #expect(s.handleDatagram([0], from: client, now: 1000, backend: b) == nil)
        // A request from outside the inside prefixes: no answer.
        #expect(s.handleDatagram([0, 0], from: IPv4Address("203.0.113.2")!, now: 1000, backend: b) == nil)
        // Version 1 (neither NAT-PMP nor PCP): PCP's UNSUPP_VERSION (RFC 6887 §9), with version 2.
        let v1 = s.handleDatagram(hex("01 01 0000") + [UInt8](repeating: 0, count: 20), from: client, now: 1000, backend: b)!
        #expect(v1[0] == 2 && v1[3] == PCP.ResultCode.unsupportedVersion.rawValue)
    }

    @Test func rfc6886_3_3_policyLimitsAnswerOutOfResources() {
        let b = MemoryBackend()
        let s = service { $0.maxPerClient = 1; $0.maxMappings = 1 }
        _ = s.handleDatagram(hex("00 01 0000 1000 1000 00000e10"), from: client, now: 1000, backend: b)
        let second = s.handleDatagram(hex("00 01 0000 1001 1001 00000e10"), from: client, now: 1000, backend: b)!
        #expect(Array(second[2..<4]) == [0, 4])
    }
}
