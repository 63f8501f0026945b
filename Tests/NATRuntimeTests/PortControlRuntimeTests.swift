import Foundation
import NATCore
@testable import NATRuntime
import NATWire
import PortControl
import Testing

private let base = """
[nat44]
pool = ["198.51.100.1/32"]
inside = ["100.64.0.0/24"]

"""

@Suite struct PortControlConfigTests {
    @Test func portControlTableIsRead() throws {
        let c = try ConfigLoader.parse(base + """
        [port_control]
        listen = "100.64.0.1"
        interface = "in0"
        upnp_port = 5000
        pcp = false
        secure_mode = false
        rules = ["allow 1024-65535 100.64.0.0/24 1024-65535", "deny 0-65535 0.0.0.0/0 0-65535"]
        max_mappings = 10
        max_per_client = 2
        min_lease = 60
        max_lease = 7200
        default_lease = 600
        """, file: "test.toml")
        let pc = try #require(c.portControl)
        #expect(pc.listen == IPv4Address("100.64.0.1") && pc.interface == "in0" && pc.upnpPort == 5000 && !pc.pcp && pc.natPMP && pc.upnp)
        #expect(!pc.policy.secureMode && pc.policy.rules.count == 2 && pc.policy.maxMappings == 10 && pc.policy.maxPerClient == 2)
        #expect(pc.policy.minLease == 60 && pc.policy.maxLease == 7200 && pc.policy.defaultLease == 600)
        #expect(try ConfigLoader.parse(base, file: "test.toml").portControl == nil)
    }

    @Test func portControlErrorsSayWhereAndWhat() {
        func problem(_ table: String) -> String {
            do {
                _ = try ConfigLoader.parse(base + "[port_control]\n" + table, file: "test.toml")
                return ""
            } catch {
                return error.description
            }
        }
        #expect(problem("interface = \"in0\"\n").hasPrefix("test.toml: key 'port_control.listen': is missing"))
        #expect(problem("listen = \"100.64.0.1\"\n").contains("key 'port_control.interface'"))
        #expect(problem("listen = \"100.64.0.1\"\ninterface = \"in0\"\nrules = [\"permit all\"]\n").contains("key 'port_control.rules[0]'"))
        #expect(problem("listen = \"100.64.0.1\"\ninterface = \"in0\"\nmax_per_client = 500\n").contains("key 'port_control.max_per_client'"))
        #expect(problem("listen = \"100.64.0.1\"\ninterface = \"in0\"\nmin_lease = 0\n").contains("key 'port_control.min_lease'"))
        #expect(problem("listen = \"100.64.0.1\"\ninterface = \"in0\"\nexternal_address = \"192.0.2.1\"\n").contains("not in nat44.pool"))
        #expect(problem("listen = \"100.64.0.1\"\ninterface = \"in0\"\nupnp_port = 1900\n").contains("key 'port_control.upnp_port'"))
        #expect(problem("listen = \"100.64.0.1\"\ninterface = \"in0\"\nbogus = 1\n").contains("key 'port_control.bogus': is not a known key"))
        #expect(problem("listen = \"100.64.0.1\"\ninterface = \"in0\"\nlisten_ipv6 = \"100.64.0.1\"\n").contains("key 'port_control.listen_ipv6'"))
    }

    @Test("[port_control] listen_ipv6: PCP for the stateful NAT64's IPv6 hosts")
    func listenIPv6IsRead() throws {
        let c = try ConfigLoader.parse(base + "[port_control]\nlisten = \"100.64.0.1\"\ninterface = \"in0\"\nlisten_ipv6 = \"2001:db8:1::1\"\n",
                                       file: "test.toml")
        #expect(c.portControl?.listen6 == IPv6Address("2001:db8:1::1"))
    }
}

@Suite struct SOAPRequestTests {
    static let action = "\"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping\""
    static let body = """
    <?xml version="1.0"?>
    <s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">
    <s:Body><u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">
    <NewRemoteHost></NewRemoteHost><NewExternalPort>9191</NewExternalPort><NewProtocol>TCP</NewProtocol>
    <NewInternalPort>8080</NewInternalPort><NewInternalClient>100.64.0.2</NewInternalClient><NewEnabled>1</NewEnabled>
    <NewPortMappingDescription>a &amp; b</NewPortMappingDescription><NewLeaseDuration>3600</NewLeaseDuration>
    </u:AddPortMapping></s:Body></s:Envelope>
    """

    @Test func upnpDA_3_2_1_soapActionParsedWithTheLibrary() throws {
        let r = try SOAPRequest.parse(body: Array(Self.body.utf8), soapAction: Self.action)
        #expect(r.serviceType == UPnPIGD.wanIPConnection1 && r.action == "AddPortMapping")
        #expect(r.arguments["NewExternalPort"] == "9191" && r.arguments["NewPortMappingDescription"] == "a & b"
                && r.arguments["NewRemoteHost"] == "" && r.arguments.count == 8)
    }

    @Test("UPnP DA §3.2.1: a body that is not UTF-8 (an 0xFF in an element name) or holds a NUL is refused before the parser, which traps on it (found by fuzz-portcontrol)")
    func nonUTF8BodiesAreRefused() {
        var bad = Array(Self.body.utf8)
        let at = bad.firstIndex(of: UInt8(ascii: "E"))!  // in "Envelope"
        bad[at] = 0xFF
        #expect(throws: SOAPRequest.Problem.notSOAP("the body is not UTF-8 text")) { try SOAPRequest.parse(body: bad, soapAction: Self.action) }
        var nul = Array(Self.body.utf8)
        nul[nul.count / 2] = 0
        #expect(throws: SOAPRequest.Problem.notSOAP("the body is not UTF-8 text")) { try SOAPRequest.parse(body: nul, soapAction: Self.action) }
    }

    @Test("SOAP 1.1 §3: no processing instructions; Foundation's XMLParser crashes on one without data (found by fuzz-portcontrol)")
    func processingInstructionsAreRefused() throws {
        let pi = "<?x?>" + Self.body
        #expect(throws: SOAPRequest.Problem.notSOAP("the body holds a processing instruction")) { try SOAPRequest.parse(body: Array(pi.utf8), soapAction: Self.action) }
        let inside = Self.body.replacingOccurrences(of: "<s:Body>", with: "<s:Body><?pi data?>")
        #expect(inside != Self.body)
        #expect(throws: SOAPRequest.Problem.notSOAP("the body holds a processing instruction")) { try SOAPRequest.parse(body: Array(inside.utf8), soapAction: Self.action) }
        // The XML declaration at the start is not a processing instruction.
        #expect(!SOAPRequest.containsProcessingInstruction(Array("  <?xml version=\"1.0\"?><a/>".utf8)))
        #expect(SOAPRequest.containsProcessingInstruction(Array("<?xml version=\"1.0\"?><a/><?x?>".utf8)))
        #expect(try SOAPRequest.parse(body: Array(Self.body.utf8), soapAction: Self.action).action == "AddPortMapping")
    }

    @Test func hostileBodiesAreRefusedBeforeOrByTheParser() {
        let laughs = "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]>" + Self.body.dropFirst(22)
        #expect(throws: SOAPRequest.Problem.documentTypeDeclaration) { try SOAPRequest.parse(body: Array(laughs.utf8), soapAction: Self.action) }
        #expect(SOAPRequest.containsDTD(Array("<!doctype x>".utf8)) && !SOAPRequest.containsDTD(Array("<![CDATA[x]]>".utf8)))
        #expect(throws: SOAPRequest.Problem.soapActionMismatch) {
            try SOAPRequest.parse(body: Array(Self.body.utf8), soapAction: "\"urn:schemas-upnp-org:service:WANIPConnection:1#DeletePortMapping\"")
        }
        for junk in ["", "<a>", "<s:Envelope><unclosed", "not xml at all", "<x/>", String(repeating: "<a>", count: 2000)] {
            #expect(throws: (any Error).self) { try SOAPRequest.parse(body: Array(junk.utf8), soapAction: Self.action) }
        }
        #expect(throws: (any Error).self) { try SOAPRequest.parse(body: Array(Self.body.utf8), soapAction: "AddPortMapping") }
    }

    @Test func upnpDA_3_2_2_faultCarriesTheUPnPErrorCode() {
        let f = SOAPRequest.fault(.conflictInMappingEntry)
        #expect(f.contains("<errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription>"))
        let r = SOAPRequest.response(action: "GetExternalIPAddress", serviceType: UPnPIGD.wanIPConnection2,
                                     output: [("NewExternalIPAddress", "198.51.100.1")])
        #expect(r.contains("<u:GetExternalIPAddressResponse xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:2\"><NewExternalIPAddress>198.51.100.1</NewExternalIPAddress>"))
    }

    @Test func pcpNonceSurvivesInTheForwardDescription() {
        let (d, n) = ControllerMappingBackend.splitNonce("PCP 100.64.0.2:8080 nonce=0102030405060708090a0b0c")
        #expect(d == "PCP 100.64.0.2:8080" && n == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
        #expect(ControllerMappingBackend.splitNonce("game nonce=zz").1 == nil)
        #expect(ControllerMappingBackend.endpointRange("198.51.100.1:8000-8010").map { $0.1 } == 8000...8010)
    }
}
