import NATWire
import Testing
@testable import PortControl

@Suite struct GENATests {
    let inside: (IPv4Address) -> Bool = { IPv4Prefix("100.64.0.0/24")!.contains($0) }

    func subscribe(_ g: inout GENASubscriptions, _ h: [String: String], now: Double = 0, sid: String = "uuid:1") -> GENASubscriptions.Answer {
        g.handle(method: "SUBSCRIBE", service: "/evt/IPConn", headers: h, subscriber: client, isInside: inside, now: now, newSID: sid)
    }

    @Test("UPnP DA 1.1 §4.1.2: SUBSCRIBE with NT upnp:event and a CALLBACK gets a SID and the bounded TIMEOUT; renewal by SID; §4.1.4 UNSUBSCRIBE")
    func upnpDA_4_1_subscribeRenewUnsubscribe() {
        var g = GENASubscriptions()
        let a = subscribe(&g, ["NT": "upnp:event", "CALLBACK": "<http://100.64.0.2:49152/evt>", "TIMEOUT": "Second-300"])
        #expect(a == .subscribed(sid: "uuid:1", timeout: 300, initial: true))
        #expect(g.subscriptions.first?.callbacks == [GENASubscriptions.Callback(host: client, port: 49152, path: "/evt")])
        // infinite and huge timeouts are cut to 1800 s.
        #expect(subscribe(&g, ["NT": "upnp:event", "CALLBACK": "<http://100.64.0.2/>", "TIMEOUT": "Second-infinite"], sid: "uuid:2")
                == .subscribed(sid: "uuid:2", timeout: 1800, initial: true))
        // Renewal: the same SID, no initial event; expiry counted from the renewal.
        #expect(subscribe(&g, ["SID": "uuid:1", "TIMEOUT": "Second-600"], now: 200) == .subscribed(sid: "uuid:1", timeout: 600, initial: false))
        g.expire(now: 799)
        #expect(g.subscriptions.count == 2)
        g.expire(now: 800)
        #expect(g.subscriptions.map(\.sid) == ["uuid:2"])
        // A renewal after expiry, or of an unknown SID: 412.
        #expect(subscribe(&g, ["SID": "uuid:1"], now: 801) == .failed(412))
        #expect(g.handle(method: "UNSUBSCRIBE", service: "/evt/IPConn", headers: ["SID": "uuid:2"], subscriber: client, isInside: inside,
                         now: 801, newSID: "x") == .unsubscribed)
        #expect(g.handle(method: "UNSUBSCRIBE", service: "/evt/IPConn", headers: ["SID": "uuid:2"], subscriber: client, isInside: inside,
                         now: 801, newSID: "x") == .failed(412))
    }

    @Test("UPnP DA 1.1 §4.1.2: 400 for SID with NT or CALLBACK, 412 for a missing or wrong NT, no usable CALLBACK (not http, not an inside host); 503 past the bound")
    func upnpDA_4_1_2_errors() {
        var g = GENASubscriptions()
        #expect(subscribe(&g, ["SID": "uuid:9", "NT": "upnp:event"]) == .failed(400))
        #expect(subscribe(&g, ["CALLBACK": "<http://100.64.0.2/>"]) == .failed(412))
        #expect(subscribe(&g, ["NT": "upnp:propchange", "CALLBACK": "<http://100.64.0.2/>"]) == .failed(412))
        #expect(subscribe(&g, ["NT": "upnp:event", "CALLBACK": "<https://100.64.0.2/>"]) == .failed(412))
        // The gateway sends events only to inside hosts (never to the outside, never to a name it would resolve).
        #expect(subscribe(&g, ["NT": "upnp:event", "CALLBACK": "<http://203.0.113.2/>"]) == .failed(412))
        #expect(subscribe(&g, ["NT": "upnp:event", "CALLBACK": "<http://example.org/>"]) == .failed(412))
        #expect(subscribe(&g, ["NT": "upnp:event", "CALLBACK": "<http://203.0.113.2/><http://100.64.0.3:8000/b>"])
                == .subscribed(sid: "uuid:1", timeout: 1800, initial: true))
        #expect(g.subscriptions.first?.callbacks.map(\.description) == ["http://100.64.0.3:8000/b"])
        for i in 2...GENASubscriptions.maxSubscriptions {
            _ = subscribe(&g, ["NT": "upnp:event", "CALLBACK": "<http://100.64.0.2/>"], sid: "uuid:\(i)")
        }
        #expect(subscribe(&g, ["NT": "upnp:event", "CALLBACK": "<http://100.64.0.2/>"], sid: "uuid:x") == .failed(503))
        #expect(g.subscriptions.count == GENASubscriptions.maxSubscriptions)
    }

    @Test("UPnP DA 1.1 §4.2.1 and §4.3.2: SEQ 0 for the initial event, then 1, 2 …; the propertyset body; WANIPConnection's evented variables and SystemUpdateID on each change of the mapping list")
    func upnpDA_4_2_eventKeysBodyAndState() {
        var g = GENASubscriptions()
        _ = subscribe(&g, ["NT": "upnp:event", "CALLBACK": "<http://100.64.0.2/>"])
        #expect(g.nextSeq("uuid:1") == 0 && g.nextSeq("uuid:1") == 1 && g.nextSeq("uuid:1") == 2 && g.nextSeq("nope") == nil)
        #expect(GENASubscriptions.propertySet([("ExternalIPAddress", "198.51.100.1"), ("X", "a<b")]) == """
        <?xml version="1.0"?>
        <e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0">
        <e:property><ExternalIPAddress>198.51.100.1</ExternalIPAddress></e:property>
        <e:property><X>a&lt;b</X></e:property>
        </e:propertyset>

        """)
        var s = WANIPConnectionEventState(externalAddress: pool)
        #expect(s.update([]).isEmpty)
        let m = PortMapping(proto: .tcp, externalPort: 9090, internalAddress: client, internalPort: 8080, origin: .upnp)
        let first = s.update([m])
        #expect(first.map(\.name) == ["PortMappingNumberOfEntries", "SystemUpdateID"] && first.map(\.value) == ["1", "2"])
        #expect(s.update([m]).isEmpty, "no change, no event")
        var disabled = m
        disabled.enabled = false
        #expect(s.update([disabled]).map(\.name) == ["SystemUpdateID"])
        #expect(s.all.map(\.name) == ["PossibleConnectionTypes", "ConnectionStatus", "ExternalIPAddress", "PortMappingNumberOfEntries", "SystemUpdateID"])
        #expect(s.all[2].value == "198.51.100.1" && s.all[3].value == "1" && s.all[4].value == "3")
    }
}
