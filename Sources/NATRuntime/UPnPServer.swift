import Foundation
import Logging
import NATWire
import NIOCore
import NIOHTTP1
import NIOPosix
import PortControl
import SWXMLHash

/// A SOAP request of UPnP control (UPnP Device Architecture §3.2.1), parsed with SWXMLHash.
struct SOAPRequest: Equatable {
    var serviceType: String
    var action: String
    var arguments: [String: String]

    /// Largest body accepted; larger ones are refused before any parsing.
    static let maxBody = 16 * 1024
    /// Most arguments in one action (the largest has 8).
    static let maxArguments = 32

    enum Problem: Error, Equatable {
        /// A DTD (which SOAP forbids, and where entity expansion lives).
        case documentTypeDeclaration
        case notSOAP(String)
        case soapActionMismatch
    }

    /// `soapAction` is the SOAPACTION header (`"urn:...:WANIPConnection:2#AddPortMapping"`).
    static func parse(body: [UInt8], soapAction: String) throws(Problem) -> SOAPRequest {
        // SOAP 1.1 §3: a message must not contain a DTD. Refusing one before the parser sees the body keeps
        // entity expansion (billion laughs, external entities) out entirely.
        if Self.containsDTD(body) { throw .documentTypeDeclaration }
        // UPnP DA §3.2.1: UTF-8. Refused before the parser sees it: Foundation's XMLParser traps on an
        // element name that is not UTF-8 (found by fuzz-portcontrol), and a NUL ends libxml2's view early.
        guard String(validating: body, as: UTF8.self) != nil, !body.contains(0) else { throw .notSOAP("the body is not UTF-8 text") }
        // SOAP 1.1 §3: no processing instructions (the XML declaration at the start is not one). Foundation's
        // XMLParser also dereferences a null pointer on a PI without data (`<?x?>`; found by fuzz-portcontrol).
        if Self.containsProcessingInstruction(body) { throw .notSOAP("the body holds a processing instruction") }
        var header = soapAction.trimmingCharacters(in: .whitespaces)
        if header.hasPrefix("\"") && header.hasSuffix("\"") && header.count >= 2 { header = String(header.dropFirst().dropLast()) }
        guard let hash = header.lastIndex(of: "#") else { throw .notSOAP("the SOAPACTION header has no '#'") }
        let serviceType = String(header[..<hash]), actionName = String(header[header.index(after: hash)...])
        let xml = XMLHash.config { o in
            o.shouldProcessNamespaces = true
            o.detectParsingErrors = true
        }.parse(Data(body))
        if case .parsingError(let e) = xml { throw .notSOAP("the body is not XML (line \(e.line), column \(e.column))") }
        guard let envelope = xml.children.first, envelope.element?.name == "Envelope" else { throw .notSOAP("no SOAP Envelope") }
        guard let soapBody = envelope.children.first(where: { $0.element?.name == "Body" }) else { throw .notSOAP("no SOAP Body") }
        guard let call = soapBody.children.first, let name = call.element?.name else { throw .notSOAP("no action in the SOAP Body") }
        guard name == actionName else { throw .soapActionMismatch }
        var args: [String: String] = [:]
        for (i, a) in call.children.enumerated() {
            guard i < maxArguments, let e = a.element else { break }
            args[e.name] = e.text
        }
        return SOAPRequest(serviceType: serviceType, action: actionName, arguments: args)
    }

    /// Whether the bytes hold `<?` anywhere but in an XML declaration (`<?xml ` … `?>`) at the very start
    /// (after white space).
    static func containsProcessingInstruction(_ b: [UInt8]) -> Bool {
        var start = 0
        while start < b.count, [0x20, 0x09, 0x0A, 0x0D].contains(b[start]) { start += 1 }
        var i = start
        let declaration = Array("<?xml ".utf8)
        if b.count >= start + declaration.count && Array(b[start..<(start + declaration.count)]) == declaration {
            // Past the declaration's own "?>".
            i = start + declaration.count
            while i + 1 < b.count && !(b[i] == UInt8(ascii: "?") && b[i + 1] == UInt8(ascii: ">")) {
                if b[i] == UInt8(ascii: "<") { return true }
                i += 1
            }
            i += 2
        }
        while i + 1 < b.count {
            if b[i] == UInt8(ascii: "<") && b[i + 1] == UInt8(ascii: "?") { return true }
            i += 1
        }
        return false
    }

    /// Whether the bytes hold `<!DOCTYPE` or `<!ENTITY` (ASCII letters in any case).
    static func containsDTD(_ b: [UInt8]) -> Bool {
        let words: [[UInt8]] = [Array("DOCTYPE".utf8), Array("ENTITY".utf8)]
        var i = 0
        while i + 2 < b.count {
            if b[i] == UInt8(ascii: "<") && b[i + 1] == UInt8(ascii: "!") {
                for w in words where i + 2 + w.count <= b.count {
                    if (0..<w.count).allSatisfy({ b[i + 2 + $0] & 0xDF == w[$0] }) { return true }
                }
            }
            i += 1
        }
        return false
    }

    static func envelope(_ inner: String) -> String {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
            + "s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>\(inner)</s:Body></s:Envelope>\r\n"
    }

    static func response(action: String, serviceType: String, output: UPnPIGD.Output) -> String {
        var s = "<u:\(action)Response xmlns:u=\"\(XMLText.escape(serviceType))\">"
        for (n, v) in output { s += "<\(n)>\(XMLText.escape(v))</\(n)>" }
        return envelope(s + "</u:\(action)Response>")
    }

    /// UPnP DA §3.2.2: the fault with the UPnP error code.
    static func fault(_ f: UPnPIGD.Failure) -> String {
        envelope("<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>"
                 + "<UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\"><errorCode>\(f.code)</errorCode>"
                 + "<errorDescription>\(XMLText.escape(f.name))</errorDescription></UPnPError></detail></s:Fault>")
    }
}

/// UPnP IGD's HTTP side: the descriptions and the SOAP control URLs, on the inside address.
final class UPnPHTTPServer: @unchecked Sendable {
    let channel: Channel

    init(core: PortControlCore, group: EventLoopGroup) throws {
        let listen = core.settings.listen, port = core.settings.upnpPort
        let pages: [String: [UInt8]] = [
            "/rootDesc.xml": Array(UPnPDescriptions.root(listen: listen, port: port).utf8),
            "/WANIPCn.xml": Array(UPnPDescriptions.scpd(UPnPDescriptions.ipConnectionActions, UPnPDescriptions.ipConnectionVariables).utf8),
            "/WANCfg.xml": Array(UPnPDescriptions.scpd(UPnPDescriptions.commonActions, UPnPDescriptions.commonVariables).utf8),
        ]
        let open = ConnectionCount()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 32)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                // Only inside hosts, and at most 64 connections at once (each holds at most 16 KiB for 10 s).
                guard let from = IPv4Address(channel.remoteAddress), core.service.isInside(from), open.enter() else {
                    return channel.close()
                }
                channel.closeFuture.whenComplete { _ in open.leave() }
                // A slow or idle client is cut off after 10 s.
                channel.eventLoop.scheduleTask(in: .seconds(10)) { channel.close(promise: nil) }
                return channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(UPnPHTTPHandler(core: core, client: from, pages: pages))
                }
            }
        channel = try bootstrap.bind(host: listen.description, port: Int(port)).wait()
    }

    func close() { try? channel.close().wait() }
}

/// Connections open at once, bounded.
final class ConnectionCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    static let limit = 64

    func enter() -> Bool {
        lock.withLock {
            guard count < Self.limit else { return false }
            count += 1
            return true
        }
    }

    func leave() { lock.withLock { count -= 1 } }
}

final class UPnPHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let core: PortControlCore
    let client: IPv4Address
    let pages: [String: [UInt8]]
    var head: HTTPRequestHead?
    var body: [UInt8] = []
    var tooLarge = false

    init(core: PortControlCore, client: IPv4Address, pages: [String: [UInt8]]) {
        self.core = core
        self.client = client
        self.pages = pages
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = []
            tooLarge = h.headers.first(name: "content-length").flatMap(Int.init).map { $0 > SOAPRequest.maxBody } ?? false
        case .body(var b):
            guard !tooLarge else { return }
            if body.count + b.readableBytes > SOAPRequest.maxBody {
                tooLarge = true
                body = []
            } else if let bytes = b.readBytes(length: b.readableBytes) {
                body += bytes
            }
        case .end:
            guard let h = head else { return }
            handle(h, context.channel)
        }
    }

    func handle(_ h: HTTPRequestHead, _ channel: Channel) {
        let path = String(h.uri.split(separator: "?", maxSplits: 1).first ?? "")
        if h.method == .GET || h.method == .HEAD {
            guard let page = pages[path] else { return respond(channel, .notFound, Array("not found\n".utf8), type: "text/plain") }
            return respond(channel, .ok, h.method == .HEAD ? [] : page, type: "text/xml; charset=\"utf-8\"")
        }
        if h.method == .SUBSCRIBE || h.method == .UNSUBSCRIBE {
            return subscription(h, path: path, channel)
        }
        guard h.method == .POST else { return respond(channel, .methodNotAllowed, [], type: "text/plain") }
        guard !tooLarge else { return respond(channel, .payloadTooLarge, Array("the SOAP body is larger than 16 KiB\n".utf8), type: "text/plain") }
        let services: [String]
        switch path {
        case "/ctl/IPConn": services = [UPnPIGD.wanIPConnection1, UPnPIGD.wanIPConnection2]
        case "/ctl/CmnIfCfg": services = [UPnPIGD.wanCommonInterfaceConfig]
        default: return respond(channel, .notFound, [], type: "text/plain")
        }
        let request: SOAPRequest
        do {
            request = try SOAPRequest.parse(body: body, soapAction: h.headers.first(name: "soapaction") ?? "")
        } catch {
            switch error {
            case .soapActionMismatch: return fault(channel, .invalidAction)
            case .documentTypeDeclaration:
                core.logger.warning("port control: a SOAP request from \(client) with a DTD refused")
                return respond(channel, .badRequest, Array("a DTD is not allowed in SOAP\n".utf8), type: "text/plain")
            case .notSOAP(let why):
                return respond(channel, .badRequest, Array("not a SOAP request: \(why)\n".utf8), type: "text/plain")
            }
        }
        guard services.contains(request.serviceType) else { return fault(channel, .invalidAction) }
        let core = self.core, client = self.client
        core.submit {
            let result = core.service.performUPnP(action: request.action, serviceType: request.serviceType, arguments: request.arguments,
                                                  client: client, now: core.now, uptime: core.uptime, backend: core.backend)
            switch result {
            case .success(let out):
                if request.action.hasPrefix("Add") || request.action.hasPrefix("Delete") {
                    core.logger.info("upnp: \(client) \(request.action) \(request.arguments["NewProtocol"] ?? "") \(request.arguments["NewExternalPort"] ?? request.arguments["NewStartPort"] ?? ""): ok")
                }
                self.respond(channel, .ok, Array(SOAPRequest.response(action: request.action, serviceType: request.serviceType, output: out).utf8),
                             type: "text/xml; charset=\"utf-8\"")
            case .failure(let f):
                core.logger.info("upnp: \(client) \(request.action): \(f.code) \(f.name)")
                self.fault(channel, f)
            }
        }
    }

    /// GENA SUBSCRIBE / UNSUBSCRIBE (UPnP DA §4.1) on an event sub-URL.
    func subscription(_ h: HTTPRequestHead, path: String, _ channel: Channel) {
        guard let events = core.events, GENAEvents.services.contains(path) else { return respond(channel, .notFound, [], type: "text/plain") }
        var headers: [String: String] = [:]
        for (n, v) in h.headers { headers[n.uppercased()] = v }
        let method = h.method == .SUBSCRIBE ? "SUBSCRIBE" : "UNSUBSCRIBE"
        switch events.handle(method: method, service: path, headers: headers, subscriber: client) {
        case .subscribed(let sid, let timeout, let initial):
            if initial { core.logger.info("upnp: \(client) subscribed to \(path) (\(sid), \(timeout) s)") }
            respond(channel, .ok, [], type: nil, extra: [("SID", sid), ("TIMEOUT", "Second-\(timeout)")]) {
                if initial { events.sendInitial(sid, service: path) }
            }
        case .unsubscribed:
            respond(channel, .ok, [], type: nil)
        case .failed(let status):
            respond(channel, HTTPResponseStatus(statusCode: status), [], type: nil)
        }
    }

    func fault(_ channel: Channel, _ f: UPnPIGD.Failure) {
        respond(channel, .internalServerError, Array(SOAPRequest.fault(f).utf8), type: "text/xml; charset=\"utf-8\"")
    }

    func respond(_ channel: Channel, _ status: HTTPResponseStatus, _ body: [UInt8], type: String?, extra: [(String, String)] = [],
                 then: (@Sendable () -> Void)? = nil) {
        var headers = HTTPHeaders()
        if let type { headers.add(name: "Content-Type", value: type) }
        for (n, v) in extra { headers.add(name: n, value: v) }
        headers.add(name: "Content-Length", value: "\(body.count)")
        headers.add(name: "Connection", value: "close")
        headers.add(name: "Server", value: "Linux UPnP/1.1 swiftnat/\(SwiftNATVersion.string)")
        headers.add(name: "EXT", value: "")
        let head = HTTPResponseHead(version: .http1_1, status: status, headers: headers)
        channel.eventLoop.execute {
            channel.write(HTTPServerResponsePart.head(head), promise: nil)
            if !body.isEmpty { channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
            channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in
                channel.close(promise: nil)
                then?()
            }
        }
    }
}

/// SSDP (UPnP DA §1) on the inside interface: answers M-SEARCH, sends NOTIFY ssdp:alive at start and
/// every `notify_interval` seconds, and ssdp:byebye at stop.
final class SSDPServer: @unchecked Sendable {
    let channel: Channel
    let core: PortControlCore
    let location: String
    var timer: RepeatedTask?
    static let group = try! SocketAddress(ipAddress: "239.255.255.250", port: 1900)
    static let maxAge = 1800

    init(core: PortControlCore, group: EventLoopGroup) throws {
        self.core = core
        let s = core.settings
        location = "http://\(s.listen):\(s.upnpPort)/rootDesc.xml"
        guard let device = try System.enumerateDevices().first(where: { $0.name == s.interface && IPv4Address($0.address) != nil }) else {
            throw DaemonError("the interface \(s.interface) has no IPv4 address (port_control.interface)")
        }
        let bootstrap = DatagramBootstrap(group: group)
            .channelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .channelOption(ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 2048))
        let handler = SSDPHandler()
        let ch = try bootstrap.channelInitializer { $0.pipeline.addHandler(handler) }.bind(host: "0.0.0.0", port: 1900).wait()
        channel = ch
        try (ch as! MulticastChannel).joinGroup(Self.group, device: device).wait()
        try (ch as? SocketOptionProvider)?.setIPMulticastIF(in_addr(s_addr: s.listen.rawValue.bigEndian)).wait()
        handler.server = self
        notify("ssdp:alive")
        timer = ch.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(Int64(s.notifyInterval)), delay: .seconds(Int64(s.notifyInterval))) { _ in
            self.notify("ssdp:alive")
        }
    }

    /// (NT/ST, USN) of everything this gateway is: the root device, the three devices, the two services.
    var targets: [(String, String)] {
        let l = core.settings.listen
        let (d1, d2, d3) = (UPnPDescriptions.uuid(1, l), UPnPDescriptions.uuid(2, l), UPnPDescriptions.uuid(3, l))
        return [
            ("upnp:rootdevice", "\(d1)::upnp:rootdevice"), (d1, d1), (d2, d2), (d3, d3),
            ("urn:schemas-upnp-org:device:InternetGatewayDevice:2", "\(d1)::urn:schemas-upnp-org:device:InternetGatewayDevice:2"),
            ("urn:schemas-upnp-org:device:WANDevice:2", "\(d2)::urn:schemas-upnp-org:device:WANDevice:2"),
            ("urn:schemas-upnp-org:device:WANConnectionDevice:2", "\(d3)::urn:schemas-upnp-org:device:WANConnectionDevice:2"),
            (UPnPIGD.wanCommonInterfaceConfig, "\(d2)::\(UPnPIGD.wanCommonInterfaceConfig)"),
            (UPnPIGD.wanIPConnection2, "\(d3)::\(UPnPIGD.wanIPConnection2)"),
        ]
    }

    /// The targets an ST matches: ssdp:all, one of ours, or an older version of one of our types
    /// (answered with the ST as asked, UPnP DA §1.3.2).
    func matches(_ st: String) -> [(String, String)] {
        if st == "ssdp:all" { return targets }
        if let t = targets.first(where: { $0.0 == st }) { return [t] }
        if let colon = st.lastIndex(of: ":"), let v = Int(st[st.index(after: colon)...]), v >= 1 {
            let base = st[...colon]
            if let t = targets.first(where: { $0.0.hasPrefix(base) && Int($0.0.split(separator: ":").last ?? "") ?? 0 >= v }) {
                let uuid = t.1.components(separatedBy: "::").first ?? t.1
                return [(st, "\(uuid)::\(st)")]
            }
        }
        return []
    }

    func notify(_ nts: String) {
        for (nt, usn) in targets {
            var m = "NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nNT: \(nt)\r\nNTS: \(nts)\r\nUSN: \(usn)\r\n"
            if nts == "ssdp:alive" {
                m += "CACHE-CONTROL: max-age=\(Self.maxAge)\r\nLOCATION: \(location)\r\nSERVER: Linux UPnP/1.1 swiftnat/\(SwiftNATVersion.string)\r\n"
            }
            m += "BOOTID.UPNP.ORG: 1\r\nCONFIGID.UPNP.ORG: 1\r\n\r\n"
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: Self.group, data: ByteBuffer(string: m)), promise: nil)
        }
    }

    /// Answers an M-SEARCH (UPnP DA §1.3.2) from an inside host.
    func search(_ text: String, from remote: SocketAddress) {
        guard let from = IPv4Address(remote), core.service.isInside(from) else { return }
        let lines = text.components(separatedBy: "\r\n")
        guard lines.first?.hasPrefix("M-SEARCH * HTTP/1.1") == true, lines.count <= 32 else { return }
        var headers: [String: String] = [:]
        for l in lines.dropFirst() {
            guard let c = l.firstIndex(of: ":") else { continue }
            headers[l[..<c].trimmingCharacters(in: .whitespaces).uppercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
        }
        guard headers["MAN"] == "\"ssdp:discover\"", let st = headers["ST"] else { return }
        for (t, usn) in matches(st) {
            let m = "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=\(Self.maxAge)\r\nEXT:\r\nLOCATION: \(location)\r\n"
                + "SERVER: Linux UPnP/1.1 swiftnat/\(SwiftNATVersion.string)\r\nST: \(t)\r\nUSN: \(usn)\r\n"
                + "BOOTID.UPNP.ORG: 1\r\nCONFIGID.UPNP.ORG: 1\r\n\r\n"
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: ByteBuffer(string: m)), promise: nil)
        }
    }

    func close() {
        timer?.cancel()
        try? channel.eventLoop.submit { self.notify("ssdp:byebye") }.wait()
        try? channel.close().wait()
    }
}

final class SSDPHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    weak var server: SSDPServer?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let e = unwrapInboundIn(data)
        guard e.data.readableBytes <= 1500, let text = e.data.getString(at: e.data.readerIndex, length: e.data.readableBytes) else { return }
        server?.search(text, from: e.remoteAddress)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {}
}

/// The port-control servers the daemon runs: NAT-PMP/PCP, UPnP's HTTP and SSDP, on the control plane's
/// event loop group.
final class PortControlServers: @unchecked Sendable {
    let core: PortControlCore
    var pmp: PMPServer?
    var http: UPnPHTTPServer?
    var ssdp: SSDPServer?

    init(_ cfg: DaemonConfiguration, settings s: PortControlSettings, controller: DaemonController, group: EventLoopGroup,
         logger: Logger) throws(DaemonError) {
        guard let n = cfg.nat44, let external = s.externalAddress ?? n.pool.first?.address else {
            throw DaemonError("\(cfg.file): [port_control] needs a [nat44] pool")
        }
        core = PortControlCore(settings: s, external: external, inside: n.insidePrefixes, controller: controller, logger: logger)
        var what: [String] = []
        do {
            if s.natPMP || s.pcp {
                pmp = try PMPServer(core: core, group: group)
                what.append([s.natPMP ? "NAT-PMP" : nil, s.pcp ? "PCP" : nil].compactMap { $0 }.joined(separator: "+") + " on \(s.listen):5351")
                if s.pcp, let v6 = s.listen6 { what.append("PCP for the stateful NAT64 on [\(v6)]:5351") }
            }
            if s.upnp {
                core.events = GENAEvents(core: core, group: group)
                http = try UPnPHTTPServer(core: core, group: group)
                ssdp = try SSDPServer(core: core, group: group)
                what.append("UPnP IGD on http://\(s.listen):\(s.upnpPort)/rootDesc.xml, SSDP on \(s.interface)")
            }
        } catch {
            close()
            throw DaemonError("\(cfg.file): [port_control]: cannot listen: \(error) (check listen = \"\(s.listen)\" is an address of this host and interface = \"\(s.interface)\", and that the ports are free)")
        }
        logger.info("port control: \(what.joined(separator: "; ")); external address \(external); secure mode \(s.policy.secureMode ? "on" : "off")")
    }

    /// Once the run-time forwards are restored: the new epoch is announced.
    func ready() { pmp?.announce() }

    func close() {
        core.events?.close()
        core.events = nil
        ssdp?.close()
        http?.close()
        pmp?.close()
        ssdp = nil
        http = nil
        pmp = nil
    }
}

/// UPnP control's SOAP parsing, for programs that embed the port-control logic with their own HTTP
/// server (and for the fuzz target): a body and its SOAPACTION header to service type, action and
/// arguments, or nil when the request is refused (a DTD, not SOAP, or an action that differs from the
/// header's). The same checks as swiftnat's own server, bounded the same way.
public enum UPnPSOAP {
    public static func parse(body: [UInt8], soapAction: String) -> (serviceType: String, action: String, arguments: [String: String])? {
        guard body.count <= SOAPRequest.maxBody, let r = try? SOAPRequest.parse(body: body, soapAction: soapAction) else { return nil }
        return (r.serviceType, r.action, r.arguments)
    }
}
