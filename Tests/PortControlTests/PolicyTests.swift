import NATWire
import Testing
@testable import PortControl

@Suite struct PolicyTests {
    @Test func miniupnpdPermissionRulesFirstMatchDecides() throws {
        let allow = try #require(PermissionRule("allow 1024-65535 100.64.0.0/24 1024-65535"))
        let deny = try #require(PermissionRule("deny 0-65535 0.0.0.0/0 0-65535"))
        #expect(allow.description == "allow 1024-65535 100.64.0.0/24 1024-65535")
        #expect(PermissionRule("permit 1 100.64.0.1 1") == nil && PermissionRule("allow 9-1 100.64.0.1 1") == nil)
        var p = PortControlPolicy()
        p.rules = [allow, deny]
        #expect(p.permits(externalPort: 8080, internalAddress: client, internalPort: 8080))
        #expect(!p.permits(externalPort: 80, internalAddress: client, internalPort: 8080))
        #expect(!p.permits(externalPort: 8080, internalAddress: IPv4Address("100.64.1.2")!, internalPort: 8080))
        p.rules = []
        #expect(p.permits(externalPort: 80, internalAddress: client, internalPort: 80))
    }

    @Test func leasesAreBounded() throws {
        var p = PortControlPolicy()
        p.minLease = 60; p.maxLease = 3600; p.defaultLease = 600
        #expect(p.lease(0) == 600 && p.lease(1) == 60 && p.lease(100_000) == 3600 && p.lease(1200) == 1200)
        p.defaultLease = 7200
        #expect(throws: (any Error).self) { try p.validate() }
    }

    @Test func deniedPortsAreSkippedWhenTheServerPicks() {
        let s = service { $0.rules = [PermissionRule("deny 9090-9099 0.0.0.0/0 0-65535")!] }
        let b = MemoryBackend()
        let a = s.handleDatagram(hex("00 02 0000 1f90 2382 00000e10"), from: client, now: 1000, backend: b)!
        #expect(a[3] == 0 && b.table.first?.externalPort == 9100)
    }
}
