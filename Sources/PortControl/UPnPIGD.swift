import NATWire

/// UPnP IGD (v1 and v2): the actions of WANIPConnection:1/:2 and WANCommonInterfaceConfig:1 on values.
/// The SOAP envelope is the runtime's (it parses XML with a library); this decides and answers.
public enum UPnPIGD {
    public static let wanIPConnection1 = "urn:schemas-upnp-org:service:WANIPConnection:1"
    public static let wanIPConnection2 = "urn:schemas-upnp-org:service:WANIPConnection:2"
    public static let wanCommonInterfaceConfig = "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1"

    /// A UPnP error (UPnP Device Architecture §3.2.2 and the WANIPConnection:2 error list).
    public struct Failure: Error, Sendable, Equatable {
        public var code: Int
        public var name: String
        public init(_ code: Int, _ name: String) { self.code = code; self.name = name }

        public static let invalidAction = Failure(401, "Invalid Action")
        public static let invalidArgs = Failure(402, "Invalid Args")
        public static let actionFailed = Failure(501, "Action Failed")
        public static let notAuthorized = Failure(606, "Action not authorized")
        public static let arrayIndexInvalid = Failure(713, "SpecifiedArrayIndexInvalid")
        public static let noSuchEntry = Failure(714, "NoSuchEntryInArray")
        public static let wildCardNotPermittedInExtPort = Failure(716, "WildCardNotPermittedInExtPort")
        public static let conflictInMappingEntry = Failure(718, "ConflictInMappingEntry")
        public static let samePortValuesRequired = Failure(724, "SamePortValuesRequired")
        public static let onlyPermanentLeasesSupported = Failure(725, "OnlyPermanentLeasesSupported")
        public static let remoteHostOnlySupportsWildcard = Failure(726, "RemoteHostOnlySupportsWildcard")
        public static let externalPortOnlySupportsWildcard = Failure(727, "ExternalPortOnlySupportsWildcard")
        public static let noPortMapsAvailable = Failure(728, "NoPortMapsAvailable")
        public static let conflictWithOtherMechanisms = Failure(729, "ConflictWithOtherMechanisms")
        public static let portMappingNotFound = Failure(730, "PortMappingNotFound")
        public static let readOnly = Failure(731, "ReadOnly")
        public static let inconsistentParameters = Failure(733, "InconsistentParameters")
    }

    /// An action's output arguments, in the order the service description lists them.
    public typealias Output = [(name: String, value: String)]

    /// Most entries GetListOfPortMappings returns (the spec lets the gateway cap NewNumberOfPorts).
    public static let maxListed = 1000
}

extension PortControlService {
    /// Performs `action` of `serviceType` for `client`. `uptime` is the daemon's seconds running.
    public func performUPnP(action: String, serviceType: String, arguments a: [String: String], client: IPv4Address,
                            now: Double, uptime: UInt32, backend: some PortMappingBackend) -> Result<UPnPIGD.Output, UPnPIGD.Failure> {
        do throws(UPnPIGD.Failure) {
            return .success(try upnp(action, serviceType, a, client, now, uptime, backend))
        } catch {
            return .failure(error)
        }
    }

    func upnp(_ action: String, _ service: String, _ a: [String: String], _ client: IPv4Address, _ now: Double, _ uptime: UInt32,
              _ backend: some PortMappingBackend) throws(UPnPIGD.Failure) -> UPnPIGD.Output {
        guard isInside(client) else { throw .notAuthorized }
        let v2 = service == UPnPIGD.wanIPConnection2
        if service == UPnPIGD.wanCommonInterfaceConfig {
            let t = backend.totals()
            func ui4(_ x: UInt64) -> String { String(UInt32(truncatingIfNeeded: x)) }
            switch action {
            case "GetCommonLinkProperties":
                return [("NewWANAccessType", "Ethernet"), ("NewLayer1UpstreamMaxBitRate", "1000000000"),
                        ("NewLayer1DownstreamMaxBitRate", "1000000000"), ("NewPhysicalLinkStatus", "Up")]
            case "GetTotalBytesSent": return [("NewTotalBytesSent", ui4(t.bytesSent))]
            case "GetTotalBytesReceived": return [("NewTotalBytesReceived", ui4(t.bytesReceived))]
            case "GetTotalPacketsSent": return [("NewTotalPacketsSent", ui4(t.packetsSent))]
            case "GetTotalPacketsReceived": return [("NewTotalPacketsReceived", ui4(t.packetsReceived))]
            default: throw .invalidAction
            }
        }
        guard service == UPnPIGD.wanIPConnection1 || v2 else { throw .invalidAction }
        switch action {
        case "GetExternalIPAddress":
            return [("NewExternalIPAddress", externalAddress.description)]
        case "GetStatusInfo":
            return [("NewConnectionStatus", "Connected"), ("NewLastConnectionError", "ERROR_NONE"), ("NewUptime", String(uptime))]
        case "GetConnectionTypeInfo":
            return [("NewConnectionType", "IP_Routed"), ("NewPossibleConnectionTypes", "IP_Routed")]
        case "AddPortMapping":
            let m = try addMapping(a, client, now, backend, any: false, v2: v2)
            _ = m
            return []
        case "AddAnyPortMapping":
            guard v2 else { throw .invalidAction }
            let m = try addMapping(a, client, now, backend, any: true, v2: v2)
            return [("NewReservedPort", String(m.externalPort))]
        case "DeletePortMapping":
            // Every mapping here has a wildcard RemoteHost: one for a specific host does not exist (714).
            guard remoteHostIsWildcard(a) else { throw .noSuchEntry }
            let p = try proto(a), port = try externalPort(a, wildcardError: .invalidArgs)
            guard let m = backend.mappings(now: now).first(where: { $0.proto == p && $0.externalPort == port }) else { throw .noSuchEntry }
            guard m.origin.isPortControl else { throw .readOnly }
            if policy.secureMode && m.internalAddress != client { throw .notAuthorized }
            backend.remove(p, externalPort: port)
            return []
        case "DeletePortMappingRange":
            guard v2 else { throw .invalidAction }
            let (lo, hi, p, manage) = try range(a)
            let victims = backend.mappings(now: now).filter {
                $0.origin == .upnp && $0.proto == p && (lo...hi).contains($0.externalPort)
                    && (($0.internalAddress == client) || (manage && !policy.secureMode))
            }
            guard !victims.isEmpty else { throw .portMappingNotFound }
            for m in victims { backend.remove(p, externalPort: m.externalPort) }
            return []
        case "GetSpecificPortMappingEntry":
            guard remoteHostIsWildcard(a) else { throw .noSuchEntry }
            let p = try proto(a), port = try externalPort(a, wildcardError: .invalidArgs)
            guard let m = backend.mappings(now: now).first(where: { $0.proto == p && $0.externalPort == port }) else { throw .noSuchEntry }
            return [("NewInternalPort", String(m.internalPort)), ("NewInternalClient", m.internalAddress.description),
                    ("NewEnabled", m.enabled ? "1" : "0"), ("NewPortMappingDescription", m.description),
                    ("NewLeaseDuration", String(m.remaining(at: now) ?? 0))]
        case "GetGenericPortMappingEntry":
            guard let s = a["NewPortMappingIndex"], let i = Int(s.trimmed), i >= 0 else { throw .invalidArgs }
            let list = backend.mappings(now: now).sorted { ($0.proto.rawValue, $0.externalPort) < ($1.proto.rawValue, $1.externalPort) }
            guard i < list.count else { throw v2 ? .arrayIndexInvalid : .noSuchEntry }
            let m = list[i]
            return [("NewRemoteHost", ""), ("NewExternalPort", String(m.externalPort)), ("NewProtocol", m.proto.upnpName),
                    ("NewInternalPort", String(m.internalPort)), ("NewInternalClient", m.internalAddress.description),
                    ("NewEnabled", m.enabled ? "1" : "0"), ("NewPortMappingDescription", m.description),
                    ("NewLeaseDuration", String(m.remaining(at: now) ?? 0))]
        case "GetListOfPortMappings":
            guard v2 else { throw .invalidAction }
            let (lo, hi, p, manage) = try range(a)
            guard let ns = a["NewNumberOfPorts"].flatMap({ Int($0.trimmed) }), ns >= 0 else { throw .invalidArgs }
            let count = ns == 0 ? UPnPIGD.maxListed : min(ns, UPnPIGD.maxListed)
            let list = backend.mappings(now: now)
                .filter { $0.proto == p && (lo...hi).contains($0.externalPort) && (manage || $0.internalAddress == client) }
                .sorted { $0.externalPort < $1.externalPort }.prefix(count)
            guard !list.isEmpty else { throw .noSuchEntry }
            return [("NewPortListing", Self.portListing(Array(list), now: now))]
        default:
            throw .invalidAction
        }
    }

    /// WANIPConnection:2's PortMappingList document (the value of NewPortListing, escaped by the caller).
    static func portListing(_ list: [PortMapping], now: Double) -> String {
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<p:PortMappingList xmlns:p=\"urn:schemas-upnp-org:gw:WANIPConnection\" "
            + "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"urn:schemas-upnp-org:gw:WANIPConnection "
            + "http://www.upnp.org/schemas/gw/WANIPConnection-v2.xsd\">\n"
        for m in list {
            s += "<p:PortMappingEntry><p:NewRemoteHost></p:NewRemoteHost><p:NewExternalPort>\(m.externalPort)</p:NewExternalPort>"
                + "<p:NewProtocol>\(m.proto.upnpName)</p:NewProtocol><p:NewInternalPort>\(m.internalPort)</p:NewInternalPort>"
                + "<p:NewInternalClient>\(m.internalAddress)</p:NewInternalClient><p:NewEnabled>\(m.enabled ? 1 : 0)</p:NewEnabled>"
                + "<p:NewDescription>\(XMLText.escape(m.description))</p:NewDescription>"
                + "<p:NewLeaseTime>\(m.remaining(at: now) ?? 0)</p:NewLeaseTime></p:PortMappingEntry>\n"
        }
        return s + "</p:PortMappingList>"
    }

    /// Whether NewRemoteHost is absent or a wildcard (empty, `*`, `0.0.0.0`). A forward of this NAT
    /// admits every remote host; AddPortMapping for one host gets 726 RemoteHostOnlySupportsWildcard.
    func remoteHostIsWildcard(_ a: [String: String]) -> Bool {
        guard let h = a["NewRemoteHost"]?.trimmed else { return true }
        return h.isEmpty || h == "*" || h == "0.0.0.0"
    }

    func proto(_ a: [String: String]) throws(UPnPIGD.Failure) -> MappingProtocol {
        guard let s = a["NewProtocol"], let p = MappingProtocol(name: s.trimmed) else { throw .invalidArgs }
        return p
    }

    func externalPort(_ a: [String: String], wildcardError: UPnPIGD.Failure) throws(UPnPIGD.Failure) -> UInt16 {
        guard let s = a["NewExternalPort"], let p = UInt16(s.trimmed) else { throw .invalidArgs }
        guard p != 0 else { throw wildcardError }
        return p
    }

    func range(_ a: [String: String]) throws(UPnPIGD.Failure) -> (UInt16, UInt16, MappingProtocol, Bool) {
        guard let l = a["NewStartPort"].flatMap({ UInt16($0.trimmed) }), let h = a["NewEndPort"].flatMap({ UInt16($0.trimmed) }),
              let m = a["NewManage"].flatMap({ UPnPBool($0) }) else { throw .invalidArgs }
        let p = try proto(a)
        guard l <= h else { throw .inconsistentParameters }
        return (l, h, p, m)
    }

    func addMapping(_ a: [String: String], _ client: IPv4Address, _ now: Double, _ backend: some PortMappingBackend,
                    any: Bool, v2: Bool) throws(UPnPIGD.Failure) -> PortMapping {
        guard remoteHostIsWildcard(a) else { throw .remoteHostOnlySupportsWildcard }
        let p = try proto(a)
        guard let es = a["NewExternalPort"], let ext = UInt16(es.trimmed) else { throw .invalidArgs }
        if ext == 0 && !any { throw .wildCardNotPermittedInExtPort }
        guard let ip = a["NewInternalPort"].flatMap({ UInt16($0.trimmed) }), ip != 0 else { throw .invalidArgs }
        guard let ic = a["NewInternalClient"].flatMap({ IPv4Address($0.trimmed) }) else { throw .invalidArgs }
        guard let en = a["NewEnabled"].flatMap({ UPnPBool($0) }) else { throw .invalidArgs }
        guard let ls = a["NewLeaseDuration"], let lease = UInt32(ls.trimmed) else { throw .invalidArgs }
        let desc = String((a["NewPortMappingDescription"] ?? "").prefix(256))
        // v1 treats 0 as "no end": it gets the default lease; v2 caps every lease at 604800 s (the policy's max is lower).
        let granted = policy.lease(lease)
        let ask = Ask(proto: p, client: client, internalAddress: ic, internalPort: ip, externalPort: ext, exact: !any,
                      lifetime: lease, origin: .upnp, description: desc, enabled: en)
        do {
            return try grant(ask, lifetime: granted, backend: backend, now: now)
        } catch {
            switch error {
            case .notAuthorized: throw .notAuthorized
            case .clientQuota, .noResources: throw .noPortMapsAvailable
            case .conflict(let o): throw o == .upnp || !v2 ? .conflictInMappingEntry : .conflictWithOtherMechanisms
            case .cannotProvide: throw .conflictInMappingEntry
            case .failed: throw .actionFailed
            }
        }
    }
}

/// A UPnP boolean ("0", "1", "true", "false", "yes", "no").
func UPnPBool(_ s: String) -> Bool? {
    switch s.trimmed.lowercased() {
    case "1", "true", "yes": return true
    case "0", "false", "no": return false
    default: return nil
    }
}

/// Escaping for text put into XML (element content and attribute values).
public enum XMLText {
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                // XML 1.0 has no control characters but tab, newline and carriage return.
                if c.value < 0x20 && c != "\t" && c != "\n" && c != "\r" { continue }
                out.unicodeScalars.append(c)
            }
        }
        return out
    }
}

extension String {
    var trimmed: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\n" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\n" || l == "\r" { s.removeLast() }
        return String(s)
    }
}
