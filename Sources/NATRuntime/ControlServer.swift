import Foundation
import Logging
import NIOCore
import NIOPosix

/// The control socket: a Unix stream socket (mode 0600) that takes one JSON request per line and
/// answers each with one JSON line (`{"ok":true,"result":…}` or `{"ok":false,"error":"…"}`); see the
/// README's "Control socket". Requests go to the ``DaemonController``, off the event loop.
public final class ControlServer: @unchecked Sendable {
    let path: String
    let channel: Channel
    let group: EventLoopGroup

    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Requests longer than this are refused (and the connection closed): bounded memory per client.
    static let maxLine = 64 * 1024

    /// Binds the socket; refuses when another daemon answers on it, removes a stale one.
    public init(path: String, controller: DaemonController, group: EventLoopGroup, logger: Logger) throws(StartError) {
        self.path = path
        self.group = group
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
        } catch {
            throw StartError(description: "control socket \(path): cannot create \(dir): \(error.localizedDescription) (set [control] socket to a writable place)")
        }
        if FileManager.default.fileExists(atPath: path) {
            if ControlClient.answers(path) {
                throw StartError(description: "control socket \(path) answers: another swiftnat is running (stop it first, or give this one its own [control] socket)")
            }
            unlink(path)
        }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 16)
            // A client may send its requests and shut its side (`echo … | socat - UNIX-CONNECT:…`): the
            // answers still go out, then the connection closes.
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ControlHandler(controller: controller))
                }
            }
        let old = umask(0o177)
        defer { umask(old) }
        do {
            channel = try bootstrap.bind(unixDomainSocketPath: path).wait()
        } catch {
            throw StartError(description: "control socket \(path): cannot listen: \(error) (set [control] socket, or enabled = false)")
        }
        chmod(path, 0o600)
        logger.info("control socket: \(path) (swiftnat status, sessions, stats, forwards, reload)")
    }

    /// Stops listening and removes the socket file.
    public func close() {
        try? channel.close().wait()
        unlink(path)
    }
}

/// One connection: splits what arrives into lines, answers each in order.
final class ControlHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let controller: DaemonController
    var pending = ByteBuffer()
    /// Answers of one connection go out in the order of its requests.
    let answers = DispatchQueue(label: "swiftnat.control.connection")

    init(controller: DaemonController) { self.controller = controller }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // The client is done sending: close once every answer queued before now has been written.
        let channel = context.channel
        answers.async { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        pending.writeBuffer(&incoming)
        while let nl = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = nl - pending.readerIndex
            let line = pending.readString(length: length) ?? ""
            pending.moveReaderIndex(forwardBy: 1)
            answer(line, context: context)
        }
        if pending.readableBytes > ControlServer.maxLine {
            let channel = context.channel
            let reply = DaemonController.failure("request longer than \(ControlServer.maxLine) bytes") + "\n"
            channel.writeAndFlush(ByteBuffer(string: reply)).whenComplete { _ in channel.close(promise: nil) }
            pending.clear()
        }
        pending.discardReadBytes()
    }

    func answer(_ line: String, context: ChannelHandlerContext) {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return }
        let channel = context.channel
        let controller = controller
        // Requests wait for the packet threads: never on the event loop. One serial queue per
        // connection keeps the answers in order; each waits until written.
        answers.async {
            let reply = controller.handle(line: trimmed) + "\n"
            try? channel.writeAndFlush(ByteBuffer(string: reply)).wait()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// The client side, for the CLI and scripts: one request, one answer, plain blocking socket.
public enum ControlClient {
    public enum Failure: Error, CustomStringConvertible {
        case notRunning(String, String)
        case permission(String)
        case protocolError(String)

        public var description: String {
            switch self {
            case .notRunning(let path, let why):
                "no swiftnat daemon answers on \(path) (\(why)): start it with `swiftnat run FILE`, or pass --socket with its [control] socket"
            case .permission(let path):
                "permission denied on \(path): the control socket is root's (mode 0600); run this with sudo"
            case .protocolError(let m):
                "the daemon's answer could not be read: \(m)"
            }
        }
    }

    /// Sends one request line and returns the answer line.
    public static func request(_ json: String, socket path: String, timeout: Int = 10) throws(Failure) -> String {
        let fd = connect(path)
        guard fd >= 0 else {
            let e = -fd
            if e == EACCES || e == EPERM { throw .permission(path) }
            throw .notRunning(path, String(cString: strerror(e)))
        }
        defer { Glibc.close(fd) }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let line = Array((json + "\n").utf8)
        guard line.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == line.count else {
            throw .notRunning(path, "write failed: \(String(cString: strerror(errno)))")
        }
        var answer: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while !answer.contains(UInt8(ascii: "\n")) {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { throw .protocolError(n == 0 ? "the daemon closed the connection" : "no answer within \(timeout) s") }
            answer += buf[0..<n]
        }
        return String(decoding: answer.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
    }

    /// Whether a daemon answers on `path`.
    static func answers(_ path: String) -> Bool {
        let fd = connect(path)
        if fd < 0 { return false }
        Glibc.close(fd)
        return true
    }

    /// A connected socket, or -errno.
    static func connect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -errno }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { Glibc.close(fd); return -ENAMETOOLONG }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 {
            let e = errno
            Glibc.close(fd)
            return -e
        }
        return fd
    }
}
