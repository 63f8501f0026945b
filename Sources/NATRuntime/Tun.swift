import CTun
import Foundation
import NATWire

/// A TUN device (IFF_TUN | IFF_NO_PI): one file descriptor per queue. The device goes away when the
/// last descriptor is closed (it is never made persistent).
///
/// With `offload`, every packet is preceded by a 12-byte virtio-net header (IFF_VNET_HDR,
/// TUNSETVNETHDRSZ) and the kernel is told (TUNSETOFFLOAD) that the reader takes partial checksums and
/// TCP (and, where the kernel has it, UDP) segmentation offload: it hands over 64 KiB super-packets and
/// segments what is written back. Flags the kernel refuses are left out, one group at a time.
public final class TunDevice {
    public let name: String
    public private(set) var fds: [Int32]
    /// Bytes of virtio-net header before each packet: 12 with offloads, 0 without.
    public let vnetHeaderSize: Int
    /// The TUN_F_* flags the kernel accepted (0 without offloads).
    public let offloadFlags: UInt32

    /// The offload sets tried in order, the first one the kernel accepts wins.
    static let offloadCandidates: [UInt32] = [
        UInt32(CTUN_F_CSUM | CTUN_F_TSO4 | CTUN_F_TSO6 | CTUN_F_TSO_ECN | CTUN_F_USO4 | CTUN_F_USO6),
        UInt32(CTUN_F_CSUM | CTUN_F_TSO4 | CTUN_F_TSO6 | CTUN_F_TSO_ECN),
        UInt32(CTUN_F_CSUM | CTUN_F_TSO4 | CTUN_F_TSO6),
        UInt32(CTUN_F_CSUM),
        0,
    ]

    /// The offload flags as words, for the log.
    public var offloadDescription: String {
        if vnetHeaderSize == 0 { return "off" }
        var parts: [String] = []
        for (bit, name) in [(CTUN_F_CSUM, "csum"), (CTUN_F_TSO4, "tso4"), (CTUN_F_TSO6, "tso6"), (CTUN_F_TSO_ECN, "tso_ecn"),
                            (CTUN_F_USO4, "uso4"), (CTUN_F_USO6, "uso6")] where offloadFlags & UInt32(bit) != 0 {
            parts.append(name)
        }
        return parts.isEmpty ? "vnet header only" : parts.joined(separator: ",")
    }

    public struct OpenError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Creates the device with `queues` queues, sets its MTU (and transmit queue length, when given)
    /// and brings it up.
    public init(name: String, mtu: Int, queues: Int = 1, offload: Bool = false, txQueueLength: Int? = nil) throws(OpenError) {
        self.name = name
        guard access("/dev/net/tun", F_OK) == 0 else {
            throw OpenError(description: "/dev/net/tun does not exist: load the tun module (`modprobe tun`) or, in a container, pass the device in (--device /dev/net/tun)")
        }
        guard if_nametoindex(name) == 0 else {
            throw OpenError(description: "an interface named '\(name)' already exists: pick another [tun] name in the configuration, or remove it (`ip link del \(name)`) if it is left over")
        }
        var fds: [Int32] = []
        var accepted: UInt32? = offload ? nil : 0
        for _ in 0..<queues {
            var fd = ctun_open(name, queues > 1 ? 1 : 0, offload ? 1 : 0)
            if fd >= 0 && offload {
                var rc = ctun_set_vnet_header_size(fd, Int32(VirtioNetHeader.mergeableSize))
                if rc == 0 {
                    if let a = accepted {
                        rc = ctun_set_offload(fd, a)
                    } else {
                        for c in Self.offloadCandidates {
                            rc = ctun_set_offload(fd, c)
                            if rc == 0 { accepted = c; break }
                        }
                    }
                }
                if rc < 0 { close(fd); fd = rc }
            }
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
        vnetHeaderSize = offload ? VirtioNetHeader.mergeableSize : 0
        offloadFlags = accepted ?? 0
        var rc = ctun_set_mtu(name, Int32(mtu))
        if rc < 0 {
            closeAll()
            throw OpenError(description: "cannot set the MTU of '\(name)' to \(mtu): \(String(cString: strerror(-rc))) (check [tun] mtu)")
        }
        if let q = txQueueLength {
            rc = ctun_set_txqueuelen(name, Int32(q))
            if rc < 0 {
                closeAll()
                throw OpenError(description: "cannot set the transmit queue length of '\(name)' to \(q): \(String(cString: strerror(-rc))) (check [tun] txqueuelen)")
            }
        }
        rc = ctun_set_up(name)
        if rc < 0 {
            closeAll()
            throw OpenError(description: "cannot bring '\(name)' up: \(String(cString: strerror(-rc)))")
        }
    }

    /// Loads (or replaces) the steering program that puts each packet on the queue its source address
    /// hashes to with `seed` (``TunQueue``'s fair queueing); with an outside interface, packets from it
    /// and packets from elsewhere use separate queues. nil, or why the kernel refused it.
    public func steerBySource(seed: UInt32, outsideInterface: String?) -> String? {
        guard let fd = fds.first else { return "no queue" }
        let index = outsideInterface.map { if_nametoindex($0) } ?? 0
        let rc = ctun_steer_by_source(fd, UInt32(fds.count), seed, index)
        return rc == 0 ? nil : String(cString: strerror(-rc))
    }

    public func closeAll() {
        for f in fds { close(f) }
        fds = []
    }

    deinit { closeAll() }
}
