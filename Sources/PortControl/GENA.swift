import NATWire

/// UPnP eventing (GENA, UPnP Device Architecture 1.1 §4): the subscriptions of control points to a
/// service's evented state variables, and the event messages. Pure: time comes in as `now`, the SID as a
/// value the caller makes; delivery (HTTP NOTIFY to the callback URL) is the runtime's.
public struct GENASubscriptions: Sendable {
    /// One subscription (UPnP DA §4.1.1).
    public struct Subscription: Sendable, Equatable {
        public var sid: String
        /// The event sub-URL path it is for (`/evt/IPConn`).
        public var service: String
        /// Delivery URLs in the order given (UPnP DA §4.1.2: tried in order until one succeeds).
        public var callbacks: [Callback]
        public var expiresAt: Double
        /// The next event key (0 for the initial event, then 1, 2, … wrapping to 1, §4.2.1).
        public var seq: UInt32 = 0
    }

    /// A delivery URL: `http://HOST:PORT/PATH` with an IPv4 host.
    public struct Callback: Sendable, Equatable, CustomStringConvertible {
        public var host: IPv4Address
        public var port: UInt16
        public var path: String
        public var description: String { "http://\(host):\(port)\(path)" }
    }

    /// What a SUBSCRIBE or UNSUBSCRIBE gets (UPnP DA §4.1.2, §4.1.3, §4.1.4).
    public enum Answer: Sendable, Equatable {
        /// 200 OK with `SID` and `TIMEOUT: Second-<timeout>`; `initial` when the initial event is due.
        case subscribed(sid: String, timeout: Int, initial: Bool)
        /// 200 OK to an UNSUBSCRIBE.
        case unsubscribed
        /// An HTTP error status: 400 (SID together with NT or CALLBACK), 412 (missing or wrong NT,
        /// CALLBACK without a usable URL, unknown SID), 503 (too many subscriptions).
        case failed(Int)
    }

    public private(set) var subscriptions: [Subscription] = []
    /// Most subscriptions at once (bounded memory against a flood of SUBSCRIBEs).
    public static let maxSubscriptions = 32
    /// Most delivery URLs kept per subscription.
    public static let maxCallbacks = 4
    /// Subscription durations are cut to this (and `Second-infinite` gets it); UPnP DA recommends ≥ 1800 s.
    public static let maxTimeout = 1800

    public init() {}

    /// Handles SUBSCRIBE (new or renewal) and UNSUBSCRIBE for `service` from `subscriber`. `headers` keys
    /// are upper case. A delivery URL must name an inside host (`isInside`): the gateway never sends
    /// events anywhere else. `newSID` is used for a new subscription.
    public mutating func handle(method: String, service: String, headers: [String: String], subscriber: IPv4Address,
                                isInside: (IPv4Address) -> Bool, now: Double, newSID: String) -> Answer {
        expire(now: now)
        let sid = headers["SID"]?.trimmed
        switch method {
        case "UNSUBSCRIBE":
            guard let sid, !sid.isEmpty else { return .failed(412) }
            if headers["NT"] != nil || headers["CALLBACK"] != nil { return .failed(400) }
            guard let i = subscriptions.firstIndex(where: { $0.sid == sid && $0.service == service }) else { return .failed(412) }
            subscriptions.remove(at: i)
            return .unsubscribed
        case "SUBSCRIBE":
            let timeout = Self.timeout(headers["TIMEOUT"])
            if let sid, !sid.isEmpty {
                // §4.1.2 renewal: SID alone.
                if headers["NT"] != nil || headers["CALLBACK"] != nil { return .failed(400) }
                guard let i = subscriptions.firstIndex(where: { $0.sid == sid && $0.service == service }) else { return .failed(412) }
                subscriptions[i].expiresAt = now + Double(timeout)
                return .subscribed(sid: sid, timeout: timeout, initial: false)
            }
            guard headers["NT"]?.trimmed == "upnp:event", let cb = headers["CALLBACK"] else { return .failed(412) }
            let callbacks = Self.callbacks(cb).filter { isInside($0.host) }
            guard !callbacks.isEmpty else { return .failed(412) }
            guard subscriptions.count < Self.maxSubscriptions else { return .failed(503) }
            subscriptions.append(Subscription(sid: newSID, service: service, callbacks: Array(callbacks.prefix(Self.maxCallbacks)),
                                              expiresAt: now + Double(timeout)))
            return .subscribed(sid: newSID, timeout: timeout, initial: true)
        default:
            return .failed(405)
        }
    }

    /// Drops the subscriptions that were not renewed in time (§4.1.2).
    public mutating func expire(now: Double) {
        subscriptions.removeAll { $0.expiresAt <= now }
    }

    /// The SEQ for the next event of `sid` (0 first, then 1 … 4294967295, then 1 again, §4.2.1), and
    /// counts it; nil when the subscription is gone.
    public mutating func nextSeq(_ sid: String) -> UInt32? {
        guard let i = subscriptions.firstIndex(where: { $0.sid == sid }) else { return nil }
        let s = subscriptions[i].seq
        subscriptions[i].seq = s == .max ? 1 : s + 1
        return s
    }

    /// `TIMEOUT: Second-N` (§4.1.2), bounded; absent, malformed or `infinite`: the maximum.
    static func timeout(_ header: String?) -> Int {
        guard let h = header?.trimmed, h.lowercased().hasPrefix("second-"), let n = Int(h.dropFirst(7)), n > 0 else { return maxTimeout }
        return min(n, maxTimeout)
    }

    /// `CALLBACK: <url1><url2>…`: the `http://` URLs with an IPv4 host (others are left out).
    static func callbacks(_ header: String) -> [Callback] {
        var out: [Callback] = []
        var rest = Substring(header)
        while let open = rest.firstIndex(of: "<"), let close = rest[open...].firstIndex(of: ">"), out.count < 16 {
            let url = rest[rest.index(after: open)..<close]
            rest = rest[rest.index(after: close)...]
            guard url.lowercased().hasPrefix("http://") else { continue }
            let hostPart = url.dropFirst(7)
            let slash = hostPart.firstIndex(of: "/") ?? hostPart.endIndex
            let authority = hostPart[..<slash]
            let path = slash == hostPart.endIndex ? "/" : String(hostPart[slash...])
            var host = authority, port: UInt16 = 80
            if let colon = authority.lastIndex(of: ":") {
                guard let p = UInt16(authority[authority.index(after: colon)...]), p != 0 else { continue }
                host = authority[..<colon]
                port = p
            }
            guard let a = IPv4Address(host), !path.contains(" "), !path.contains("\r"), !path.contains("\n") else { continue }
            out.append(Callback(host: a, port: port, path: path))
        }
        return out
    }

    /// The event message body (§4.3.2): a propertyset of the variables and their values.
    public static func propertySet(_ variables: [(name: String, value: String)]) -> String {
        var s = "<?xml version=\"1.0\"?>\n<e:propertyset xmlns:e=\"urn:schemas-upnp-org:event-1-0\">\n"
        for (n, v) in variables { s += "<e:property><\(n)>\(XMLText.escape(v))</\(n)></e:property>\n" }
        return s + "</e:propertyset>\n"
    }
}

/// WANIPConnection's evented state variables (WANIPConnection:2 §2.2: SystemUpdateID, and as in :1
/// PossibleConnectionTypes, ConnectionStatus, ExternalIPAddress, PortMappingNumberOfEntries), computed
/// from the NAT's mappings; a change of the mapping list increments SystemUpdateID.
public struct WANIPConnectionEventState: Sendable, Equatable {
    public var externalAddress: IPv4Address
    public var entries = 0
    public var systemUpdateID: UInt32 = 1
    /// What the list looked like at the last update (protocol, port, internal endpoint, enabled).
    var fingerprint: [String] = []

    public init(externalAddress: IPv4Address) { self.externalAddress = externalAddress }

    /// Takes the current mappings; returns the variables that changed (empty: nothing to send).
    public mutating func update(_ mappings: [PortMapping]) -> [(name: String, value: String)] {
        let f = mappings.map { "\($0.proto) \($0.externalPort) \($0.internalAddress):\($0.internalPort) \($0.enabled)" }.sorted()
        guard f != fingerprint else { return [] }
        fingerprint = f
        systemUpdateID = systemUpdateID == .max ? 1 : systemUpdateID + 1
        var changed: [(name: String, value: String)] = []
        if mappings.count != entries {
            entries = mappings.count
            changed.append(("PortMappingNumberOfEntries", String(entries)))
        }
        changed.append(("SystemUpdateID", String(systemUpdateID)))
        return changed
    }

    /// Every evented variable (the initial event, §4.2.1).
    public var all: [(name: String, value: String)] {
        [("PossibleConnectionTypes", "IP_Routed"), ("ConnectionStatus", "Connected"), ("ExternalIPAddress", externalAddress.description),
         ("PortMappingNumberOfEntries", String(entries)), ("SystemUpdateID", String(systemUpdateID))]
    }
}
