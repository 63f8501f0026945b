import Foundation
import Logging
import NATWire
import NIOCore
import NIOPosix
import PortControl

/// UPnP eventing (GENA, UPnP DA 1.1 §4) for WANIPConnection (`/evt/IPConn`) and
/// WANCommonInterfaceConfig (`/evt/CmnIfCfg`): subscriptions, the initial event, and an event whenever
/// the mapping list changes (looked at once a second, so events are moderated to at most one a second).
/// NOTIFY goes over a new TCP connection to the first delivery URL that accepts it; each is bounded by 5 s.
final class GENAEvents: @unchecked Sendable {
    static let services = ["/evt/IPConn", "/evt/CmnIfCfg"]
    let core: PortControlCore
    let group: EventLoopGroup
    private let lock = NSLock()
    private var subscriptions = GENASubscriptions()
    private var state: WANIPConnectionEventState
    private var timer: RepeatedTask?

    init(core: PortControlCore, group: EventLoopGroup) {
        self.core = core
        self.group = group
        state = WANIPConnectionEventState(externalAddress: core.service.externalAddress)
        _ = state.update(core.backend.mappings(now: core.now))
        timer = group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [weak self] _ in self?.tick() }
    }

    func close() { timer?.cancel() }

    /// A SUBSCRIBE or UNSUBSCRIBE; returns the answer (the caller writes it, then calls ``sendInitial(_:service:)``).
    func handle(method: String, service: String, headers: [String: String], subscriber: IPv4Address) -> GENASubscriptions.Answer {
        let sid = "uuid:" + UUID().uuidString.lowercased()
        let inside = core.service
        return lock.withLock {
            subscriptions.handle(method: method, service: service, headers: headers, subscriber: subscriber,
                                 isInside: { inside.isInside($0) }, now: core.now, newSID: sid)
        }
    }

    /// The initial event of a new subscription: every evented variable, SEQ 0 (§4.2.1).
    func sendInitial(_ sid: String, service: String) {
        let variables: [(name: String, value: String)] = service == "/evt/IPConn"
            ? lock.withLock { state.all } : [("PhysicalLinkStatus", "Up")]
        send(variables, to: [sid])
    }

    /// Once a second: drops expired subscriptions; when the mapping list changed, the changed variables to
    /// every WANIPConnection subscriber.
    func tick() {
        let core = self.core
        let hasSubscribers = lock.withLock { () -> Bool in
            subscriptions.expire(now: core.now)
            return subscriptions.subscriptions.contains { $0.service == "/evt/IPConn" }
        }
        core.submit {
            let mappings = core.backend.mappings(now: core.now)
            let (changed, sids) = self.lock.withLock { () -> ([(name: String, value: String)], [String]) in
                (self.state.update(mappings), self.subscriptions.subscriptions.filter { $0.service == "/evt/IPConn" }.map(\.sid))
            }
            if hasSubscribers && !changed.isEmpty { self.send(changed, to: sids) }
        }
    }

    func send(_ variables: [(name: String, value: String)], to sids: [String]) {
        let body = Array(GENASubscriptions.propertySet(variables).utf8)
        for sid in sids {
            let target = lock.withLock { () -> (UInt32, [GENASubscriptions.Callback])? in
                guard let s = subscriptions.subscriptions.first(where: { $0.sid == sid }), !s.callbacks.isEmpty,
                      let seq = subscriptions.nextSeq(sid) else { return nil }
                return (seq, s.callbacks)
            }
            guard let (seq, callbacks) = target else { continue }
            deliver(seq: seq, sid: sid, body: body, to: callbacks)
        }
    }

    /// One NOTIFY over a new connection to the first delivery URL that takes the connection (UPnP DA
    /// §4.1.2: the URLs are tried in order); the answer is read and ignored; 5 s at most.
    func deliver(seq: UInt32, sid: String, body: [UInt8], to callbacks: [GENASubscriptions.Callback]) {
        guard let cb = callbacks.first else { return }
        let head = "NOTIFY \(cb.path) HTTP/1.1\r\nHOST: \(cb.host):\(cb.port)\r\nCONTENT-TYPE: text/xml; charset=\"utf-8\"\r\n"
            + "NT: upnp:event\r\nNTS: upnp:propchange\r\nSID: \(sid)\r\nSEQ: \(seq)\r\nCONTENT-LENGTH: \(body.count)\r\nConnection: close\r\n\r\n"
        let message = Array(head.utf8) + body
        let logger = core.logger
        ClientBootstrap(group: group)
            .connectTimeout(.seconds(2))
            .channelInitializer { ch in ch.pipeline.addHandler(DiscardingHandler()) }
            .connect(host: cb.host.description, port: Int(cb.port))
            .whenComplete { result in
                switch result {
                case .success(let ch):
                    ch.eventLoop.scheduleTask(in: .seconds(5)) { ch.close(promise: nil) }
                    ch.writeAndFlush(ByteBuffer(bytes: message)).whenComplete { _ in
                        // Half-close: the subscriber answers and closes its side.
                        ch.close(mode: .output, promise: nil)
                    }
                case .failure(let e):
                    if callbacks.count > 1 {
                        self.deliver(seq: seq, sid: sid, body: body, to: Array(callbacks.dropFirst()))
                    } else {
                        logger.info("upnp: event to \(cb) not delivered: \(e)")
                    }
                }
            }
    }
}

/// Reads and drops whatever a NOTIFY's recipient answers.
final class DiscardingHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
}
