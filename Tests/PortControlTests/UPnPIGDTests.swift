import NATWire
import Testing
@testable import PortControl

@Suite struct UPnPIGDTests {
    static let v1 = UPnPIGD.wanIPConnection1, v2 = UPnPIGD.wanIPConnection2

    func add(_ s: PortControlService, _ b: MemoryBackend, ext: String = "9090", internalClient: String = "100.64.0.2",
             lease: String = "3600", action: String = "AddPortMapping", service: String = v1, from: IPv4Address = client)
        -> Result<UPnPIGD.Output, UPnPIGD.Failure> {
        s.performUPnP(action: action, serviceType: service, arguments: [
            "NewRemoteHost": "", "NewExternalPort": ext, "NewProtocol": "TCP", "NewInternalPort": "8080",
            "NewInternalClient": internalClient, "NewEnabled": "1", "NewPortMappingDescription": "game", "NewLeaseDuration": lease,
        ], client: from, now: 1000, uptime: 5, backend: b)
    }

    func code(_ r: Result<UPnPIGD.Output, UPnPIGD.Failure>) -> Int? {
        if case .failure(let f) = r { return f.code }
        return nil
    }

    @Test func wanIPConnection_addGetListDelete() throws {
        let s = service(), b = MemoryBackend()
        #expect(code(add(s, b)) == nil)
        let m = try #require(b.table.first)
        #expect(m.externalPort == 9090 && m.origin == .upnp && m.expiresAt == 4600 && m.description == "game")
        let get = try s.performUPnP(action: "GetSpecificPortMappingEntry", serviceType: Self.v1,
                                    arguments: ["NewRemoteHost": "", "NewExternalPort": "9090", "NewProtocol": "TCP"],
                                    client: client, now: 1100, uptime: 5, backend: b).get()
        #expect(get.map(\.value) == ["8080", "100.64.0.2", "1", "game", "3500"])
        let generic = try s.performUPnP(action: "GetGenericPortMappingEntry", serviceType: Self.v1, arguments: ["NewPortMappingIndex": "0"],
                                        client: client, now: 1000, uptime: 5, backend: b).get()
        #expect(generic[1].value == "9090" && generic[2].value == "TCP")
        #expect(code(s.performUPnP(action: "GetGenericPortMappingEntry", serviceType: Self.v1, arguments: ["NewPortMappingIndex": "1"],
                                   client: client, now: 1000, uptime: 5, backend: b)) == 714)
        #expect(code(s.performUPnP(action: "GetGenericPortMappingEntry", serviceType: Self.v2, arguments: ["NewPortMappingIndex": "1"],
                                   client: client, now: 1000, uptime: 5, backend: b)) == 713)
        let list = try s.performUPnP(action: "GetListOfPortMappings", serviceType: Self.v2, arguments: [
            "NewStartPort": "1", "NewEndPort": "65535", "NewProtocol": "TCP", "NewManage": "1", "NewNumberOfPorts": "0"],
                                     client: client, now: 1000, uptime: 5, backend: b).get()
        #expect(list[0].value.contains("<p:NewExternalPort>9090</p:NewExternalPort>"))
        #expect(code(s.performUPnP(action: "DeletePortMapping", serviceType: Self.v1,
                                   arguments: ["NewRemoteHost": "", "NewExternalPort": "9090", "NewProtocol": "TCP"],
                                   client: client, now: 1000, uptime: 5, backend: b)) == nil)
        #expect(b.table.isEmpty)
        #expect(code(s.performUPnP(action: "DeletePortMapping", serviceType: Self.v1,
                                   arguments: ["NewRemoteHost": "", "NewExternalPort": "9090", "NewProtocol": "TCP"],
                                   client: client, now: 1000, uptime: 5, backend: b)) == 714)
    }

    @Test func wanIPConnection_errorCodesAsTheSpecificationLists() {
        let s = service(), b = MemoryBackend()
        #expect(code(add(s, b, ext: "0")) == 716)
        #expect(code(add(s, b, ext: "x")) == 402)
        #expect(code(add(s, b, internalClient: "100.64.0.3")) == 606)   // secure mode
        #expect(code(s.performUPnP(action: "AddPortMapping", serviceType: Self.v1, arguments: ["NewRemoteHost": "203.0.113.9"],
                                   client: client, now: 1000, uptime: 5, backend: b)) == 726)
        #expect(code(s.performUPnP(action: "Reboot", serviceType: Self.v1, arguments: [:], client: client, now: 1000, uptime: 5, backend: b)) == 401)
        // Another client's port: 718; a port of the configuration: 729 (v2), 718 (v1); deleting it: 731.
        let open = service(secure: false)
        _ = add(open, b, internalClient: "100.64.0.3", from: other)
        #expect(code(add(s, b)) == 718)
        b.table.append(PortMapping(proto: .tcp, externalPort: 80, internalAddress: other, internalPort: 80, origin: .config))
        #expect(code(add(s, b, ext: "80", service: Self.v2)) == 729)
        #expect(code(add(s, b, ext: "80")) == 718)
        #expect(code(s.performUPnP(action: "DeletePortMapping", serviceType: Self.v1,
                                   arguments: ["NewRemoteHost": "", "NewExternalPort": "80", "NewProtocol": "TCP"],
                                   client: client, now: 1000, uptime: 5, backend: b)) == 731)
        // Secure mode: another client's UPnP mapping may not be deleted.
        #expect(code(s.performUPnP(action: "DeletePortMapping", serviceType: Self.v1,
                                   arguments: ["NewRemoteHost": "", "NewExternalPort": "9090", "NewProtocol": "TCP"],
                                   client: client, now: 1000, uptime: 5, backend: b)) == 606)
        // Limits: 728.
        let tight = service { $0.maxPerClient = 1; $0.maxMappings = 2 }
        let b2 = MemoryBackend()
        _ = add(tight, b2, ext: "1000")
        #expect(code(add(tight, b2, ext: "1001")) == 728)
        // Ranges: 733, 730.
        let range = ["NewStartPort": "2000", "NewEndPort": "1000", "NewProtocol": "TCP", "NewManage": "0"]
        #expect(code(s.performUPnP(action: "DeletePortMappingRange", serviceType: Self.v2, arguments: range,
                                   client: client, now: 1000, uptime: 5, backend: b2)) == 733)
        var empty = range
        empty["NewStartPort"] = "1"; empty["NewEndPort"] = "10"
        #expect(code(s.performUPnP(action: "DeletePortMappingRange", serviceType: Self.v2, arguments: empty,
                                   client: client, now: 1000, uptime: 5, backend: b2)) == 730)
    }

    @Test func wanIPConnection2_addAnyPortMappingPicksAFreePort() throws {
        let s = service(), b = MemoryBackend()
        b.table = [PortMapping(proto: .tcp, externalPort: 9090, internalAddress: other, internalPort: 1, origin: .cli)]
        let out = try add(s, b, action: "AddAnyPortMapping", service: Self.v2).get()
        #expect(out.first?.name == "NewReservedPort" && out.first?.value == "9091")
        // v1 has no AddAnyPortMapping.
        #expect(code(add(s, b, action: "AddAnyPortMapping", service: Self.v1)) == 401)
    }

    @Test func wanIPConnection_infiniteLeaseGetsTheDefault() {
        let s = service { $0.defaultLease = 1800 }, b = MemoryBackend()
        _ = add(s, b, lease: "0")
        #expect(b.table.first?.expiresAt == 2800)
    }

    @Test func wanCommonInterfaceConfig_linkAndCounters() throws {
        let s = service(), b = MemoryBackend()
        let link = try s.performUPnP(action: "GetCommonLinkProperties", serviceType: UPnPIGD.wanCommonInterfaceConfig, arguments: [:],
                                     client: client, now: 1000, uptime: 5, backend: b).get()
        #expect(link.map(\.name) == ["NewWANAccessType", "NewLayer1UpstreamMaxBitRate", "NewLayer1DownstreamMaxBitRate", "NewPhysicalLinkStatus"])
        let sent = try s.performUPnP(action: "GetTotalBytesSent", serviceType: UPnPIGD.wanCommonInterfaceConfig, arguments: [:],
                                     client: client, now: 1000, uptime: 5, backend: b).get()
        // ui4 wraps (5e9 mod 2^32).
        #expect(sent.first?.value == "705032704")
        let ip = try s.performUPnP(action: "GetExternalIPAddress", serviceType: Self.v2, arguments: [:], client: client, now: 1000,
                                   uptime: 5, backend: b).get()
        #expect(ip.first?.value == "198.51.100.1")
        // From outside the inside prefixes: 606.
        #expect(code(s.performUPnP(action: "GetExternalIPAddress", serviceType: Self.v1, arguments: [:],
                                   client: IPv4Address("203.0.113.2")!, now: 1000, uptime: 5, backend: b)) == 606)
    }

    func args(_ a: [String: String], enabled: String = "1", remote: String = "") -> [String: String] {
        var x = ["NewRemoteHost": remote, "NewExternalPort": "9090", "NewProtocol": "TCP", "NewInternalPort": "8080",
                 "NewInternalClient": "100.64.0.2", "NewEnabled": enabled, "NewPortMappingDescription": "game", "NewLeaseDuration": "3600"]
        for (k, v) in a { x[k] = v }
        return x
    }

    @Test("WANIPConnection:1/:2 AddPortMapping NewEnabled=0: the mapping is kept and listed with NewEnabled 0, not forwarding; added again enabled it forwards")
    func wanIPConnection_newEnabledZeroKeepsADisabledMapping() throws {
        let s = service(), b = MemoryBackend()
        for v in [Self.v1, Self.v2] {
            b.table = []
            #expect(code(s.performUPnP(action: "AddPortMapping", serviceType: v, arguments: args([:], enabled: "0"),
                                       client: client, now: 1000, uptime: 5, backend: b)) == nil)
            let m = try #require(b.table.first)
            #expect(!m.enabled && m.externalPort == 9090 && m.origin == .upnp)
            let get = try s.performUPnP(action: "GetSpecificPortMappingEntry", serviceType: v,
                                        arguments: ["NewRemoteHost": "", "NewExternalPort": "9090", "NewProtocol": "TCP"],
                                        client: client, now: 1000, uptime: 5, backend: b).get()
            #expect(get.first { $0.name == "NewEnabled" }?.value == "0")
            let generic = try s.performUPnP(action: "GetGenericPortMappingEntry", serviceType: v, arguments: ["NewPortMappingIndex": "0"],
                                            client: client, now: 1000, uptime: 5, backend: b).get()
            #expect(generic.first { $0.name == "NewEnabled" }?.value == "0")
            // Its port stays reserved: another client gets 718 for it.
            #expect(code(s.performUPnP(action: "AddPortMapping", serviceType: v, arguments: args(["NewInternalClient": "100.64.0.3"]),
                                       client: other, now: 1000, uptime: 5, backend: b)) == 718)
            // The same client enables it.
            #expect(code(s.performUPnP(action: "AddPortMapping", serviceType: v, arguments: args([:]),
                                       client: client, now: 1000, uptime: 5, backend: b)) == nil)
            #expect(b.table.count == 1 && b.table[0].enabled)
        }
        #expect(code(s.performUPnP(action: "AddPortMapping", serviceType: Self.v2, arguments: args(["NewExternalPort": "9091"], enabled: "0"),
                                   client: client, now: 1000, uptime: 5, backend: b)) == nil)
        let list = try s.performUPnP(action: "GetListOfPortMappings", serviceType: Self.v2, arguments: [
            "NewStartPort": "9091", "NewEndPort": "9091", "NewProtocol": "TCP", "NewManage": "1", "NewNumberOfPorts": "0"],
                                     client: client, now: 1000, uptime: 5, backend: b).get()
        #expect(list[0].value.contains("<p:NewEnabled>0</p:NewEnabled>"))
        // Not a boolean: 402.
        #expect(code(s.performUPnP(action: "AddPortMapping", serviceType: Self.v1, arguments: args([:], enabled: "maybe"),
                                   client: client, now: 1000, uptime: 5, backend: b)) == 402)
    }

    @Test("WANIPConnection:1/:2 NewRemoteHost: AddPortMapping for one remote host gets 726 RemoteHostOnlySupportsWildcard; Get/Delete for one find no entry (714); wildcards work")
    func wanIPConnection_remoteHostWildcardOnly() {
        let s = service(), b = MemoryBackend()
        for v in [Self.v1, Self.v2] {
            #expect(code(s.performUPnP(action: "AddPortMapping", serviceType: v, arguments: args([:], remote: "203.0.113.9"),
                                       client: client, now: 1000, uptime: 5, backend: b)) == 726)
            #expect(b.table.isEmpty)
        }
        for wildcard in ["", "*", "0.0.0.0", " "] {
            #expect(code(s.performUPnP(action: "AddPortMapping", serviceType: Self.v1, arguments: args([:], remote: wildcard),
                                       client: client, now: 1000, uptime: 5, backend: b)) == nil)
        }
        let key = ["NewRemoteHost": "203.0.113.9", "NewExternalPort": "9090", "NewProtocol": "TCP"]
        #expect(code(s.performUPnP(action: "GetSpecificPortMappingEntry", serviceType: Self.v1, arguments: key,
                                   client: client, now: 1000, uptime: 5, backend: b)) == 714)
        #expect(code(s.performUPnP(action: "DeletePortMapping", serviceType: Self.v1, arguments: key,
                                   client: client, now: 1000, uptime: 5, backend: b)) == 714)
        #expect(b.table.count == 1)
    }
}
