import Testing
import NATCore
import NATWire
@testable import NAT64

@Suite struct SmokeTests {
    @Test func udpBothWays() {
        var t = makeTranslator()
        let in6 = PacketBuilder.udp6(source: host6, sourcePort: 5000, destination: server6, destinationPort: 53, payload: payload(20))
        let r = run(&t, in6)
        let exp4 = PacketBuilder.udp4(source: host4, sourcePort: 5000, destination: server4, destinationPort: 53,
                                      payload: payload(20), ttl: 63, identification: 1)
        #expect(r.verdict == toIPv4)
        #expect(r.bytes == exp4, "\(diff(r.bytes, exp4))")
        let in4 = PacketBuilder.udp4(source: server4, sourcePort: 53, destination: host4, destinationPort: 5000,
                                     payload: payload(20), ttl: 50, identification: 77, dontFragment: true)
        let r2 = run(&t, in4)
        let exp6 = PacketBuilder.udp6(source: server6, sourcePort: 53, destination: host6, destinationPort: 5000,
                                      payload: payload(20), hopLimit: 49)
        #expect(r2.verdict == toIPv6)
        #expect(r2.bytes == exp6, "\(diff(r2.bytes, exp6))")
    }
}
