#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// NATMap's trick for a TCP port already held by a service that did not set SO_REUSEPORT: find the
/// listening socket's owner in /proc, copy its descriptor with pidfd_getfd (Linux ≥ 5.6, needs
/// CAP_SYS_PTRACE over that process) and set SO_REUSEPORT on it, so that swiftnat can bind the port too.
public enum PortTakeover {
    public struct Outcome: Sendable {
        public var done: Bool
        public var message: String
    }

    /// The inodes of TCP sockets listening on `port` (from /proc/net/tcp or tcp6).
    static func listeningInodes(port: UInt16, ipv6: Bool) -> [String] {
        guard let text = try? String(contentsOfFile: ipv6 ? "/proc/net/tcp6" : "/proc/net/tcp", encoding: .utf8) else { return [] }
        let hexPort = String(format: "%04X", port)
        return text.split(separator: "\n").dropFirst().compactMap { line in
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count > 9, f[1].hasSuffix(":" + hexPort), f[3] == "0A" else { return nil }
            return String(f[9])
        }
    }

    /// (pid, fd) of the process holding socket `inode`.
    static func owner(of inode: String) -> (pid: Int32, fd: Int32, name: String)? {
        let target = "socket:[\(inode)]"
        guard let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for p in pids {
            guard let pid = Int32(p), let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(p)/fd") else { continue }
            for f in fds {
                if let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(p)/fd/\(f)"), link == target, let fd = Int32(f) {
                    let name = (try? String(contentsOfFile: "/proc/\(p)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
                    return (pid, fd, name)
                }
            }
        }
        return nil
    }

    typealias PidfdOpen = @convention(c) (Int32, UInt32) -> Int32
    typealias PidfdGetfd = @convention(c) (Int32, Int32, UInt32) -> Int32

    public static func enableReusePort(port: UInt16, ipv6: Bool) -> Outcome {
        let inodes = listeningInodes(port: port, ipv6: ipv6) + listeningInodes(port: port, ipv6: !ipv6)
        guard let inode = inodes.first, let (pid, fd, name) = owner(of: inode) else {
            return Outcome(done: false, message: "TCP port \(port) is in use, and no process listening on it was found (a connection may hold it): choose another port with -b")
        }
        let who = "\(name) (pid \(pid), fd \(fd))"
        // glibc ≥ 2.36 has both wrappers; the syscalls exist from Linux 5.3 (pidfd_open) and 5.6 (pidfd_getfd).
        guard let h = dlopen(nil, RTLD_NOW), let o = dlsym(h, "pidfd_open"), let g = dlsym(h, "pidfd_getfd") else {
            return Outcome(done: false, message: "TCP port \(port) is held by \(who) without SO_REUSEPORT, and this C library has no pidfd_getfd: restart that service with SO_REUSEPORT or choose another port with -b")
        }
        let pidfdOpen = unsafeBitCast(o, to: PidfdOpen.self)
        let pidfdGetfd = unsafeBitCast(g, to: PidfdGetfd.self)
        let pfd = pidfdOpen(pid, 0)
        guard pfd >= 0 else {
            return Outcome(done: false, message: "TCP port \(port) is held by \(who) without SO_REUSEPORT; pidfd_open failed (\(String(cString: strerror(errno)))): needs Linux ≥ 5.6")
        }
        defer { close(pfd) }
        let copy = pidfdGetfd(pfd, fd, 0)
        guard copy >= 0 else {
            return Outcome(done: false, message: "TCP port \(port) is held by \(who) without SO_REUSEPORT; pidfd_getfd failed (\(String(cString: strerror(errno)))): run swiftnat as root (CAP_SYS_PTRACE) on Linux ≥ 5.6, or restart that service with SO_REUSEPORT")
        }
        defer { close(copy) }
        var one: Int32 = 1
        guard setsockopt(copy, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            return Outcome(done: false, message: "TCP port \(port) is held by \(who); setting SO_REUSEPORT on its socket failed: \(String(cString: strerror(errno)))")
        }
        return Outcome(done: true, message: "TCP port \(port) was held by \(who) without SO_REUSEPORT: set SO_REUSEPORT on its socket (pidfd_getfd)")
    }
}
