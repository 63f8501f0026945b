import CTun
import Foundation

/// A TUN device (IFF_TUN | IFF_NO_PI): one file descriptor per queue. The device goes away when the
/// last descriptor is closed (it is never made persistent).
public final class TunDevice {
    public let name: String
    public private(set) var fds: [Int32]

    public struct OpenError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Creates the device with `queues` queues, sets its MTU and brings it up.
    public init(name: String, mtu: Int, queues: Int = 1) throws(OpenError) {
        self.name = name
        guard access("/dev/net/tun", F_OK) == 0 else {
            throw OpenError(description: "/dev/net/tun does not exist: load the tun module (`modprobe tun`) or, in a container, pass the device in (--device /dev/net/tun)")
        }
        guard if_nametoindex(name) == 0 else {
            throw OpenError(description: "an interface named '\(name)' already exists: pick another [tun] name in the configuration, or remove it (`ip link del \(name)`) if it is left over")
        }
        var fds: [Int32] = []
        for _ in 0..<queues {
            let fd = ctun_open(name, queues > 1 ? 1 : 0)
            if fd < 0 {
                for f in fds { close(f) }
                let e = -fd
                let why = String(cString: strerror(e))
                let hint: String
                switch e {
                case EPERM, EACCES: hint = "run as root or give the binary CAP_NET_ADMIN"
                case EBUSY: hint = "the device '\(name)' is in use by another program; pick another [tun] name"
                case EINVAL: hint = "'\(name)' may exist as another kind of interface; pick another [tun] name"
                default: hint = "check /dev/net/tun and the [tun] name"
                }
                throw OpenError(description: "cannot create TUN device '\(name)': \(why) (\(hint))")
            }
            fds.append(fd)
        }
        self.fds = fds
        var rc = ctun_set_mtu(name, Int32(mtu))
        if rc < 0 {
            closeAll()
            throw OpenError(description: "cannot set the MTU of '\(name)' to \(mtu): \(String(cString: strerror(-rc))) (check [tun] mtu)")
        }
        rc = ctun_set_up(name)
        if rc < 0 {
            closeAll()
            throw OpenError(description: "cannot bring '\(name)' up: \(String(cString: strerror(-rc)))")
        }
    }

    public func closeAll() {
        for f in fds { close(f) }
        fds = []
    }

    deinit { closeAll() }
}
