import NATWire
import PortControl

/// The UPnP IGD v2 device description and the service descriptions (SCPD) the HTTP server serves.
enum UPnPDescriptions {
    /// The three devices' UUIDs, stable for a listen address (the same across restarts, as a client expects).
    static func uuid(_ n: Int, _ listen: IPv4Address) -> String {
        let a = String(listen.rawValue, radix: 16)
        return "uuid:73776966-746e-6174-000\(n)-" + String(repeating: "0", count: 12 - a.count) + a
    }

    static func root(listen: IPv4Address, port: UInt16) -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <root xmlns="urn:schemas-upnp-org:device-1-0" configId="1">
        <specVersion><major>1</major><minor>1</minor></specVersion>
        <device>
        <deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType>
        <friendlyName>swiftnat</friendlyName>
        <manufacturer>swiftnat</manufacturer>
        <modelDescription>swiftnat NAT44 gateway</modelDescription>
        <modelName>swiftnat</modelName>
        <modelNumber>\(SwiftNATVersion.string)</modelNumber>
        <UDN>\(uuid(1, listen))</UDN>
        <deviceList>
        <device>
        <deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType>
        <friendlyName>WANDevice</friendlyName>
        <manufacturer>swiftnat</manufacturer>
        <modelName>swiftnat</modelName>
        <UDN>\(uuid(2, listen))</UDN>
        <serviceList>
        <service>
        <serviceType>\(UPnPIGD.wanCommonInterfaceConfig)</serviceType>
        <serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId>
        <SCPDURL>/WANCfg.xml</SCPDURL>
        <controlURL>/ctl/CmnIfCfg</controlURL>
        <eventSubURL>/evt/CmnIfCfg</eventSubURL>
        </service>
        </serviceList>
        <deviceList>
        <device>
        <deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType>
        <friendlyName>WANConnectionDevice</friendlyName>
        <manufacturer>swiftnat</manufacturer>
        <modelName>swiftnat</modelName>
        <UDN>\(uuid(3, listen))</UDN>
        <serviceList>
        <service>
        <serviceType>\(UPnPIGD.wanIPConnection2)</serviceType>
        <serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
        <SCPDURL>/WANIPCn.xml</SCPDURL>
        <controlURL>/ctl/IPConn</controlURL>
        <eventSubURL>/evt/IPConn</eventSubURL>
        </service>
        </serviceList>
        </device>
        </deviceList>
        </device>
        </deviceList>
        <presentationURL>http://\(listen):\(port)/</presentationURL>
        </device>
        </root>
        """
    }

    /// (action, [(argument, "in"/"out", related state variable)]).
    typealias Action = (String, [(String, String, String)])

    static let mappingArguments: [(String, String, String)] = [
        ("NewRemoteHost", "in", "RemoteHost"), ("NewExternalPort", "in", "ExternalPort"), ("NewProtocol", "in", "PortMappingProtocol"),
        ("NewInternalPort", "in", "InternalPort"), ("NewInternalClient", "in", "InternalClient"), ("NewEnabled", "in", "PortMappingEnabled"),
        ("NewPortMappingDescription", "in", "PortMappingDescription"), ("NewLeaseDuration", "in", "PortMappingLeaseDuration"),
    ]

    static let ipConnectionActions: [Action] = [
        ("GetConnectionTypeInfo", [("NewConnectionType", "out", "ConnectionType"), ("NewPossibleConnectionTypes", "out", "PossibleConnectionTypes")]),
        ("GetStatusInfo", [("NewConnectionStatus", "out", "ConnectionStatus"), ("NewLastConnectionError", "out", "LastConnectionError"),
                           ("NewUptime", "out", "Uptime")]),
        ("GetExternalIPAddress", [("NewExternalIPAddress", "out", "ExternalIPAddress")]),
        ("AddPortMapping", mappingArguments),
        ("AddAnyPortMapping", mappingArguments + [("NewReservedPort", "out", "ExternalPort")]),
        ("DeletePortMapping", [("NewRemoteHost", "in", "RemoteHost"), ("NewExternalPort", "in", "ExternalPort"),
                               ("NewProtocol", "in", "PortMappingProtocol")]),
        ("DeletePortMappingRange", [("NewStartPort", "in", "ExternalPort"), ("NewEndPort", "in", "ExternalPort"),
                                    ("NewProtocol", "in", "PortMappingProtocol"), ("NewManage", "in", "A_ARG_TYPE_Manage")]),
        ("GetSpecificPortMappingEntry", [("NewRemoteHost", "in", "RemoteHost"), ("NewExternalPort", "in", "ExternalPort"),
                                         ("NewProtocol", "in", "PortMappingProtocol"), ("NewInternalPort", "out", "InternalPort"),
                                         ("NewInternalClient", "out", "InternalClient"), ("NewEnabled", "out", "PortMappingEnabled"),
                                         ("NewPortMappingDescription", "out", "PortMappingDescription"),
                                         ("NewLeaseDuration", "out", "PortMappingLeaseDuration")]),
        ("GetGenericPortMappingEntry", [("NewPortMappingIndex", "in", "PortMappingNumberOfEntries")]
            + mappingArguments.map { ($0.0, "out", $0.2) }),
        ("GetListOfPortMappings", [("NewStartPort", "in", "ExternalPort"), ("NewEndPort", "in", "ExternalPort"),
                                   ("NewProtocol", "in", "PortMappingProtocol"), ("NewManage", "in", "A_ARG_TYPE_Manage"),
                                   ("NewNumberOfPorts", "in", "PortMappingNumberOfEntries"),
                                   ("NewPortListing", "out", "A_ARG_TYPE_PortListing")]),
    ]

    static let ipConnectionVariables: [(String, String)] = [
        ("ConnectionType", "string"), ("PossibleConnectionTypes", "string"), ("ConnectionStatus", "string"), ("Uptime", "ui4"),
        ("LastConnectionError", "string"), ("ExternalIPAddress", "string"), ("RemoteHost", "string"), ("ExternalPort", "ui2"),
        ("InternalPort", "ui2"), ("PortMappingProtocol", "string"), ("InternalClient", "string"), ("PortMappingEnabled", "boolean"),
        ("PortMappingDescription", "string"), ("PortMappingLeaseDuration", "ui4"), ("PortMappingNumberOfEntries", "ui2"),
        ("A_ARG_TYPE_Manage", "boolean"), ("A_ARG_TYPE_PortListing", "string"), ("SystemUpdateID", "ui4"),
    ]

    /// The variables GENA events (UPnP DA §4; see ``GENAEvents``).
    static let eventedVariables: Set<String> = ["PossibleConnectionTypes", "ConnectionStatus", "ExternalIPAddress",
                                                "PortMappingNumberOfEntries", "SystemUpdateID", "PhysicalLinkStatus"]

    static let commonActions: [Action] = [
        ("GetCommonLinkProperties", [("NewWANAccessType", "out", "WANAccessType"), ("NewLayer1UpstreamMaxBitRate", "out", "Layer1UpstreamMaxBitRate"),
                                     ("NewLayer1DownstreamMaxBitRate", "out", "Layer1DownstreamMaxBitRate"),
                                     ("NewPhysicalLinkStatus", "out", "PhysicalLinkStatus")]),
        ("GetTotalBytesSent", [("NewTotalBytesSent", "out", "TotalBytesSent")]),
        ("GetTotalBytesReceived", [("NewTotalBytesReceived", "out", "TotalBytesReceived")]),
        ("GetTotalPacketsSent", [("NewTotalPacketsSent", "out", "TotalPacketsSent")]),
        ("GetTotalPacketsReceived", [("NewTotalPacketsReceived", "out", "TotalPacketsReceived")]),
    ]

    static let commonVariables: [(String, String)] = [
        ("WANAccessType", "string"), ("Layer1UpstreamMaxBitRate", "ui4"), ("Layer1DownstreamMaxBitRate", "ui4"),
        ("PhysicalLinkStatus", "string"), ("TotalBytesSent", "ui4"), ("TotalBytesReceived", "ui4"), ("TotalPacketsSent", "ui4"),
        ("TotalPacketsReceived", "ui4"),
    ]

    static func scpd(_ actions: [Action], _ variables: [(String, String)]) -> String {
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<scpd xmlns=\"urn:schemas-upnp-org:service-1-0\">\n"
            + "<specVersion><major>1</major><minor>0</minor></specVersion>\n<actionList>\n"
        for (name, args) in actions {
            s += "<action><name>\(name)</name><argumentList>"
            for (a, d, v) in args {
                s += "<argument><name>\(a)</name><direction>\(d)</direction><relatedStateVariable>\(v)</relatedStateVariable></argument>"
            }
            s += "</argumentList></action>\n"
        }
        s += "</actionList>\n<serviceStateTable>\n"
        for (v, t) in variables {
            let evented = eventedVariables.contains(v) ? "yes" : "no"
            s += "<stateVariable sendEvents=\"\(evented)\"><name>\(v)</name><dataType>\(t)</dataType></stateVariable>\n"
        }
        return s + "</serviceStateTable>\n</scpd>\n"
    }
}
