import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a lab tool reports when it cannot go on (a bad address, a socket call that failed, a timeout).
public struct LabToolError: Error, CustomStringConvertible {
    public var description: String
    /// The `errno` of the system call that failed, if one did.
    public var code: Int32?
    public init(_ description: String, code: Int32? = nil) {
        self.description = description
        self.code = code
    }

    /// `what: strerror(errno)`.
    static func errno(_ what: String) -> LabToolError {
        let e = Glibc.errno
        return LabToolError("\(what): \(String(cString: strerror(e)))", code: e)
    }
}

/// An IPv4 or IPv6 socket address, built from text with `inet_pton` (no name look-ups: the lab has no resolver).
public enum LabSocketAddress: CustomStringConvertible, Sendable {
    case v4(sockaddr_in)
    case v6(sockaddr_in6)

    /// `host` is an IPv4 or IPv6 literal (brackets allowed around IPv6).
    public init(host: String, port: UInt16) throws(LabToolError) {
        var h = host
        if h.hasPrefix("["), h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        var a4 = in_addr()
        if inet_pton(AF_INET, h, &a4) == 1 {
            var s = sockaddr_in()
            s.sin_family = sa_family_t(AF_INET)
            s.sin_port = port.bigEndian
            s.sin_addr = a4
            self = .v4(s)
            return
        }
        var a6 = in6_addr()
        if inet_pton(AF_INET6, h, &a6) == 1 {
            var s = sockaddr_in6()
            s.sin6_family = sa_family_t(AF_INET6)
            s.sin6_port = port.bigEndian
            s.sin6_addr = a6
            self = .v6(s)
            return
        }
        throw LabToolError("'\(host)' is not an IPv4 or IPv6 address (the lab tools take addresses, not names)")
    }

    /// From what `recvfrom`/`accept`/`getsockname` filled in; nil for another family.
    init?(storage: sockaddr_storage) {
        var st = storage
        switch Int32(storage.ss_family) {
        case AF_INET: self = withUnsafeBytes(of: &st) { .v4($0.load(as: sockaddr_in.self)) }
        case AF_INET6: self = withUnsafeBytes(of: &st) { .v6($0.load(as: sockaddr_in6.self)) }
        default: return nil
        }
    }

    public var family: Int32 {
        switch self {
        case .v4: AF_INET
        case .v6: AF_INET6
        }
    }

    public var port: UInt16 {
        switch self {
        case .v4(let s): UInt16(bigEndian: s.sin_port)
        case .v6(let s): UInt16(bigEndian: s.sin6_port)
        }
    }

    /// The address alone, as `inet_ntop` writes it.
    public var host: String {
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch self {
        case .v4(var s): _ = inet_ntop(AF_INET, &s.sin_addr, &buf, socklen_t(buf.count))
        case .v6(var s): _ = inet_ntop(AF_INET6, &s.sin6_addr, &buf, socklen_t(buf.count))
        }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `203.0.113.2:8000` or `[2001:db8::1]:8000`.
    public var description: String {
        switch self {
        case .v4: "\(host):\(port)"
        case .v6: "[\(host)]:\(port)"
        }
    }

    /// The same address with another port.
    func with(port: UInt16) -> LabSocketAddress {
        switch self {
        case .v4(var s): s.sin_port = port.bigEndian; return .v4(s)
        case .v6(var s): s.sin6_port = port.bigEndian; return .v6(s)
        }
    }

    /// Whether two addresses are the same host (ports ignored).
    func sameHost(_ other: LabSocketAddress) -> Bool { family == other.family && host == other.host }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        switch self {
        case .v4(var s):
            withUnsafePointer(to: &s) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        case .v6(var s):
            withUnsafePointer(to: &s) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        }
    }
}

/// A socket that closes itself; every wait on it is bounded by a deadline.
final class LabSocket {
    let fd: Int32

    init(family: Int32, type: Int32, protocol proto: Int32 = 0) throws(LabToolError) {
        fd = socket(family, type | Int32(SOCK_CLOEXEC.rawValue), proto)
        guard fd >= 0 else {
            let e = Glibc.errno
            if type == Int32(SOCK_RAW.rawValue) && (e == EPERM || e == EACCES) {
                throw LabToolError("a raw socket needs root (or CAP_NET_RAW): \(String(cString: strerror(e)))")
            }
            throw LabToolError("socket: \(String(cString: strerror(e)))")
        }
    }

    init(fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    func setOption<T: BitwiseCopyable>(_ level: Int32, _ name: Int32, _ value: T, _ what: String) throws(LabToolError) {
        var v = value
        guard setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<T>.size)) == 0 else { throw .errno(what) }
    }

    func bind(_ a: LabSocketAddress) throws(LabToolError) {
        let r = a.withSockaddr { Glibc.bind(fd, $0, $1) }
        guard r == 0 else { throw .errno("bind \(a)") }
    }

    /// A connect that gives up at `deadline` (non-blocking connect, then poll).
    func connect(_ a: LabSocketAddress, deadline: Date) throws(LabToolError) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(fd, F_SETFL, flags) }
        let r = a.withSockaddr { Glibc.connect(fd, $0, $1) }
        if r == 0 { return }
        guard Glibc.errno == EINPROGRESS else { throw .errno("connect to \(a)") }
        guard try wait(for: Int16(POLLOUT), until: deadline) else {
            throw LabToolError("connect to \(a): no answer within the time limit")
        }
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        guard err == 0 else { throw LabToolError("connect to \(a): \(String(cString: strerror(err)))") }
    }

    /// Waits until the socket is ready for `events` or `deadline` passes (false).
    func wait(for events: Int16, until deadline: Date) throws(LabToolError) -> Bool {
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return false }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let r = poll(&p, 1, Int32(min(left * 1000, 1000).rounded(.up)))
            if r > 0 { return true }
            if r < 0 && Glibc.errno != EINTR { throw .errno("poll") }
        }
    }

    /// Receives one datagram (or stream chunk) into `buffer`, waiting until `deadline`; nil on timeout.
    func receive(into buffer: inout [UInt8], until deadline: Date) throws(LabToolError) -> (count: Int, from: LabSocketAddress?)? {
        guard try wait(for: Int16(POLLIN), until: deadline) else { return nil }
        var st = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let n = buffer.withUnsafeMutableBytes { b in
            withUnsafeMutablePointer(to: &st) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, b.baseAddress, b.count, 0, $0, &len) }
            }
        }
        guard n >= 0 else { throw .errno("receive") }
        return (n, len > 0 ? LabSocketAddress(storage: st) : nil)
    }

    /// As ``receive(into:until:)``, also returning the hop limit the datagram arrived with (an IPv6
    /// socket with `IPV6_RECVHOPLIMIT` on: RFC 3542 §6.3 hands it over as ancillary data).
    func receiveWithHopLimit(into buffer: inout [UInt8], until deadline: Date) throws(LabToolError)
        -> (count: Int, from: LabSocketAddress?, hopLimit: Int?)? {
        guard try wait(for: Int16(POLLIN), until: deadline) else { return nil }
        var st = sockaddr_storage()
        var control = [UInt8](repeating: 0, count: 256)
        let (n, controlLength) = buffer.withUnsafeMutableBytes { b in
            control.withUnsafeMutableBytes { c in
                withUnsafeMutablePointer(to: &st) { sp in
                    var iov = iovec(iov_base: b.baseAddress, iov_len: b.count)
                    return withUnsafeMutablePointer(to: &iov) { iovp in
                        var m = msghdr(msg_name: UnsafeMutableRawPointer(sp), msg_namelen: socklen_t(MemoryLayout<sockaddr_storage>.size),
                                       msg_iov: iovp, msg_iovlen: 1, msg_control: c.baseAddress, msg_controllen: c.count, msg_flags: 0)
                        let n = recvmsg(fd, &m, 0)
                        return (n, Int(m.msg_controllen))
                    }
                }
            }
        }
        guard n >= 0 else { throw .errno("receive") }
        // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } followed by its data, each
        // message aligned to size_t.
        var hopLimit: Int?
        let align = MemoryLayout<Int>.size, header = MemoryLayout<Int>.size + 8
        var off = 0
        control.withUnsafeBytes { c in
            while off + header <= controlLength {
                let len = c.loadUnaligned(fromByteOffset: off, as: Int.self)
                let level = c.loadUnaligned(fromByteOffset: off + align, as: Int32.self)
                let type = c.loadUnaligned(fromByteOffset: off + align + 4, as: Int32.self)
                guard len >= header, off + len <= controlLength else { break }
                if level == Int32(IPPROTO_IPV6) && type == IPV6_HOPLIMIT && len >= header + 4 {
                    hopLimit = Int(c.loadUnaligned(fromByteOffset: off + header, as: Int32.self))
                }
                off += (len + align - 1) / align * align
            }
        }
        return (n, LabSocketAddress(storage: st), hopLimit)
    }

    func send(_ bytes: [UInt8], to a: LabSocketAddress? = nil) throws(LabToolError) {
        let n = bytes.withUnsafeBytes { b in
            if let a { a.withSockaddr { sendto(fd, b.baseAddress, b.count, Int32(MSG_NOSIGNAL), $0, $1) } }
            else { Glibc.send(fd, b.baseAddress, b.count, Int32(MSG_NOSIGNAL)) }
        }
        guard n == bytes.count else { throw .errno("send\(a.map { " to \($0)" } ?? "")") }
    }

    /// Sends all of `bytes` on a stream socket, giving up at `deadline`.
    func sendAll(_ bytes: [UInt8], until deadline: Date) throws(LabToolError) {
        var off = 0
        while off < bytes.count {
            guard try wait(for: Int16(POLLOUT), until: deadline) else { throw LabToolError("send: timed out") }
            // MSG_DONTWAIT: a peer that stops reading cannot hold the tool past its deadline.
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n < 0 && (Glibc.errno == EAGAIN || Glibc.errno == EINTR) { continue }
            guard n > 0 else { throw .errno("send") }
            off += n
        }
    }
}

/// Checks a time limit given on the command line: more than 0 and at most a day.
func checkSeconds(_ value: Double, _ name: String) throws(LabToolError) {
    guard value > 0 && value <= 86400 else { throw LabToolError("\(name) \(value): use more than 0 and at most 86400 seconds") }
}

/// Lab tools print as they go (their output is read from a log file while they run).
func say(_ line: String) {
    print(line)
    fflush(nil)
}

func warn(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
