#if canImport(Glibc)
import Glibc
#endif
import NATWire
import STUN

/// A socket call that failed: which call, on what, and errno.
public struct SocketError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var errno: Int32
    public var detail: String

    public init(_ operation: String, errno: Int32 = Glibc.errno, detail: String = "") {
        self.operation = operation
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        let reason = errno == 0 ? "" : ": " + String(cString: strerror(errno))
        return "\(operation)\(detail.isEmpty ? "" : " " + detail)\(reason)"
    }

    public var isAddressInUse: Bool { errno == EADDRINUSE }
    public var isTimeout: Bool { errno == ETIMEDOUT }
}

/// Monotonic time since an arbitrary origin, for the pure state machines of the STUN module.
public func monotonicNow() -> Duration {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return .seconds(ts.tv_sec) + .nanoseconds(ts.tv_nsec)
}

func milliseconds(_ d: Duration) -> Int32 {
    let (s, a) = d.components
    let ms = s * 1000 + a / 1_000_000_000_000_000
    return Int32(clamping: max(0, ms))
}

/// sockaddr storage for an endpoint.
struct SocketAddress {
    var storage = sockaddr_storage()
    var length: socklen_t = 0

    init() {}

    init(_ e: STUNEndpoint) {
        switch e.address {
        case .v4(let a):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = e.port.bigEndian
            sin.sin_addr.s_addr = a.rawValue.bigEndian
            withUnsafeBytes(of: sin) { src in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        case .v6(let a):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = e.port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { b in for i in 0..<16 { b[i] = a.byte(i) } }
            withUnsafeBytes(of: sin6) { src in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
    }

    var endpoint: STUNEndpoint? {
        withUnsafeBytes(of: storage) { b -> STUNEndpoint? in
            switch Int32(storage.ss_family) {
            case AF_INET:
                let sin = b.load(as: sockaddr_in.self)
                return STUNEndpoint(IPv4Address(UInt32(bigEndian: sin.sin_addr.s_addr)), UInt16(bigEndian: sin.sin_port))
            case AF_INET6:
                let sin6 = b.load(as: sockaddr_in6.self)
                var hi: UInt64 = 0, lo: UInt64 = 0
                withUnsafeBytes(of: sin6.sin6_addr) { a in
                    for i in 0..<8 { hi = hi << 8 | UInt64(a[i]) }
                    for i in 8..<16 { lo = lo << 8 | UInt64(a[i]) }
                }
                // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is reported as IPv4.
                if hi == 0, lo >> 32 == 0xFFFF { return STUNEndpoint(IPv4Address(UInt32(lo & 0xFFFF_FFFF)), UInt16(bigEndian: sin6.sin6_port)) }
                return STUNEndpoint(IPv6Address(high: hi, low: lo), UInt16(bigEndian: sin6.sin6_port))
            default:
                return nil
            }
        }
    }

    func withPointer<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafeBytes(of: storage) { body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), length) }
    }
}

/// What a socket is set up with before it binds (NATMap's -i, -f, SO_REUSEADDR/SO_REUSEPORT).
public struct SocketOptions: Sendable {
    public var reusePort = false
    /// SO_BINDTODEVICE (NATMap's -i with an interface name).
    public var device: String?
    /// SO_MARK (NATMap's -f).
    public var fwmark: UInt32?
    /// TCP_CONGESTION (NATMap's -C).
    public var congestion: String?

    public init(reusePort: Bool = false, device: String? = nil, fwmark: UInt32? = nil, congestion: String? = nil) {
        self.reusePort = reusePort
        self.device = device
        self.fwmark = fwmark
        self.congestion = congestion
    }
}

/// A socket file descriptor, closed when the object goes.
public final class Socket: @unchecked Sendable {
    public private(set) var fd: Int32
    public let family: Int32
    public let isTCP: Bool

    public init(family: Int32, tcp: Bool, options: SocketOptions = SocketOptions()) throws(SocketError) {
        let type = tcp ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_DGRAM.rawValue)
        let fd = Glibc.socket(family, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket") }
        self.fd = fd
        self.family = family
        isTCP = tcp
        if family == AF_INET6 { try setInt(Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1, "IPV6_V6ONLY") }
        if options.reusePort {
            try setInt(SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR")
            try setInt(SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT")
        }
        if let mark = options.fwmark { try setInt(SOL_SOCKET, SO_MARK, Int32(bitPattern: mark), "SO_MARK (needs CAP_NET_ADMIN)") }
        if let dev = options.device {
            let r = dev.withCString { setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, $0, socklen_t(strlen($0) + 1)) }
            guard r == 0 else { throw SocketError("setsockopt SO_BINDTODEVICE", detail: dev) }
        }
        if tcp, let cc = options.congestion {
            let r = cc.withCString { setsockopt(fd, Int32(IPPROTO_TCP), Int32(TCP_CONGESTION), $0, socklen_t(strlen($0))) }
            guard r == 0 else { throw SocketError("setsockopt TCP_CONGESTION", detail: cc) }
        }
    }

    /// Wraps an accepted descriptor.
    init(fd: Int32, family: Int32, tcp: Bool) {
        self.fd = fd
        self.family = family
        isTCP = tcp
    }

    deinit { close() }

    public func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    func setInt(_ level: Int32, _ name: Int32, _ value: Int32, _ what: String) throws(SocketError) {
        var v = value
        guard setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) == 0 else { throw SocketError("setsockopt \(what)") }
    }

    /// SO_LINGER 0: close sends RST and leaves no TIME_WAIT on the bind port.
    public func setAbortiveClose() {
        var l = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
    }

    public func bind(_ e: STUNEndpoint) throws(SocketError) {
        let r = SocketAddress(e).withPointer { Glibc.bind(fd, $0, $1) }
        guard r == 0 else { throw SocketError("bind", detail: e.description) }
    }

    public func listen(backlog: Int32 = 128) throws(SocketError) {
        guard Glibc.listen(fd, backlog) == 0 else { throw SocketError("listen") }
    }

    /// connect(), waiting at most `timeout` (TCP) or immediately (UDP).
    public func connect(_ e: STUNEndpoint, timeout: Duration = .seconds(5)) throws(SocketError) {
        guard isTCP else {
            let r = SocketAddress(e).withPointer { Glibc.connect(fd, $0, $1) }
            guard r == 0 else { throw SocketError("connect", detail: e.description) }
            return
        }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(fd, F_SETFL, flags) }
        let r = SocketAddress(e).withPointer { Glibc.connect(fd, $0, $1) }
        if r == 0 { return }
        guard errno == EINPROGRESS else { throw SocketError("connect", detail: "to \(e)") }
        guard try wait(readable: false, timeout: timeout) else { throw SocketError("connect", errno: ETIMEDOUT, detail: "to \(e)") }
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        guard err == 0 else { throw SocketError("connect", errno: err, detail: "to \(e)") }
    }

    public func accept() -> Socket? {
        let c = Glibc.accept(fd, nil, nil)
        guard c >= 0 else { return nil }
        _ = fcntl(c, F_SETFD, FD_CLOEXEC)
        return Socket(fd: c, family: family, tcp: true)
    }

    /// poll() for readability (or writability); false on timeout.
    public func wait(readable: Bool = true, timeout: Duration) throws(SocketError) -> Bool {
        var p = pollfd(fd: fd, events: Int16(readable ? POLLIN : POLLOUT), revents: 0)
        while true {
            let r = poll(&p, 1, milliseconds(timeout))
            if r < 0 && errno == EINTR { continue }
            guard r >= 0 else { throw SocketError("poll") }
            return r > 0
        }
    }

    public var localEndpoint: STUNEndpoint? {
        var a = SocketAddress()
        a.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutableBytes(of: &a.storage) { b in
            getsockname(fd, b.baseAddress!.assumingMemoryBound(to: sockaddr.self), &a.length)
        }
        return r == 0 ? a.endpoint : nil
    }

    public var remoteEndpoint: STUNEndpoint? {
        var a = SocketAddress()
        a.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutableBytes(of: &a.storage) { b in
            getpeername(fd, b.baseAddress!.assumingMemoryBound(to: sockaddr.self), &a.length)
        }
        return r == 0 ? a.endpoint : nil
    }

    @discardableResult
    public func send(_ bytes: [UInt8]) throws(SocketError) -> Int {
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard n >= 0 else { throw SocketError("send") }
        return n
    }

    public func sendAll(_ bytes: [UInt8]) throws(SocketError) {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw SocketError("send") }
            off += n
        }
    }

    public func send(_ bytes: [UInt8], to e: STUNEndpoint) throws(SocketError) {
        let n = SocketAddress(e).withPointer { sa, len in
            bytes.withUnsafeBytes { Glibc.sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, len) }
        }
        guard n >= 0 else { throw SocketError("sendto", detail: e.description) }
    }

    /// One read: nil at end of stream (TCP) — an empty array is never returned.
    public func receive(max: Int = 65536) throws(SocketError) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: max)
        let n = buf.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 0 else { throw SocketError("recv") }
        if n == 0 && isTCP { return nil }
        buf.removeSubrange(n...)
        return buf
    }

    public func receiveFrom(max: Int = 65536) throws(SocketError) -> ([UInt8], STUNEndpoint?) {
        var buf = [UInt8](repeating: 0, count: max)
        var a = SocketAddress()
        a.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let n = buf.withUnsafeMutableBytes { b in
            withUnsafeMutableBytes(of: &a.storage) { s in
                recvfrom(fd, b.baseAddress, b.count, 0, s.baseAddress!.assumingMemoryBound(to: sockaddr.self), &a.length)
            }
        }
        guard n >= 0 else { throw SocketError("recvfrom") }
        buf.removeSubrange(n...)
        return (buf, a.endpoint)
    }
}

/// Resolves `host[:port]` (`[v6]:port` for IPv6 literals) to an endpoint of `family` (AF_INET / AF_INET6).
public func resolveEndpoint(_ text: String, defaultPort: UInt16, family: Int32 = AF_INET) throws(SocketError) -> STUNEndpoint {
    if let e = STUNEndpoint(text, defaultPort: defaultPort) { return e }
    var host = text, port = defaultPort
    if let colon = text.lastIndex(of: ":"), !text.hasSuffix("]"), text.filter({ $0 == ":" }).count == 1 {
        guard let p = UInt16(text[text.index(after: colon)...]) else {
            throw SocketError("resolve", errno: 0, detail: "\(text): bad port")
        }
        host = String(text[..<colon])
        port = p
    }
    var hints = addrinfo()
    hints.ai_family = family
    hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
    var res: UnsafeMutablePointer<addrinfo>? = nil
    let r = getaddrinfo(host, nil, &hints, &res)
    guard r == 0, let first = res else {
        throw SocketError("resolve", errno: 0, detail: "\(host): \(String(cString: gai_strerror(r)))")
    }
    defer { freeaddrinfo(res) }
    var a = SocketAddress()
    withUnsafeMutableBytes(of: &a.storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: Int(first.pointee.ai_addrlen))) }
    a.length = first.pointee.ai_addrlen
    guard var e = a.endpoint else { throw SocketError("resolve", errno: 0, detail: "\(host): no address") }
    e.port = port
    return e
}

/// The local address the kernel would use to reach `destination` (a UDP connect, nothing sent).
public func sourceAddress(toward destination: STUNEndpoint, options: SocketOptions = SocketOptions()) -> STUNAddress? {
    guard let s = try? Socket(family: destination.address.isIPv4 ? AF_INET : AF_INET6, tcp: false,
                              options: SocketOptions(device: options.device, fwmark: options.fwmark)),
          (try? s.connect(destination)) != nil else { return nil }
    return s.localEndpoint?.address
}
