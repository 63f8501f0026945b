import NATCore
import NATWire

/// Translating an IPv6 TCP or UDP GSO super-packet (a TUN device's segmentation offload) to IPv4 whole,
/// instead of cutting it into segments first: a header-only copy (IPv6 header + transport header,
/// lengths as if there were no payload) goes through the translator, and the IPv4 header and transport
/// header that come out are put in front of the untouched payload, with a virtio-net header that has
/// the kernel segment it as IPv4.
///
/// RFC 7915 §5.1 decides DF per datagram by its size: the super-packet goes whole only when every
/// segment gets the same answer: all ≤ 1260 bytes as IPv4 (DF clear; identifications numbered on from
/// the translator's, which skips them) or all larger (DF set, identification 0, which RFC 6864 §4.1
/// allows for atomic datagrams). Anything else is refused, and the caller segments it in software, so
/// every datagram leaves exactly as it would have without offloads.
///
/// Call order: ``init(packet:count:header:scratch:)`` (nil: not of the plain shape), the translator on
/// ``headerCopy``, ``place(_:count:into:)`` with its translation, then ``finish(_:count:tookIdentification:)``.
public struct NAT64SuperPacket {
    public let proto: UInt8
    let isTCP: Bool
    /// The transport header's length.
    public let transportHeaderLength: Int
    let payload: Int
    let gso: Int
    let gsoECN: UInt8
    /// All segments larger than 1260 bytes as IPv4: DF set.
    public let dontFragment: Bool
    /// The header-only copy to translate (in the caller's scratch buffer).
    public let headerCopy: UnsafeMutableRawBufferPointer

    /// Checks the super-packet's shape (IPv6 directly followed by TCP or UDP, partial checksum at its
    /// checksum field, a length that fits an IPv4 datagram, one DF answer for all segments) and builds
    /// the header-only copy in `scratch`.
    public init?(packet p: UnsafeRawPointer, count n: Int, header h: VirtioNetHeader, scratch s: UnsafeMutableRawPointer) {
        switch h.gsoType & ~VirtioNetHeader.gsoECN {
        case VirtioNetHeader.gsoTCPv6: proto = IPProtocol.tcp
        case VirtioNetHeader.gsoUDPL4: proto = IPProtocol.udp
        default: return nil
        }
        isTCP = proto == IPProtocol.tcp
        let v6 = IPv6Layout.headerLength
        guard h.flags & VirtioNetHeader.flagNeedsChecksum != 0,
              Int(h.checksumStart) == v6, h.checksumOffset == (isTCP ? UInt16(TCPLayout.checksum) : UInt16(UDPLayout.checksum)),
              h.gsoSize > 0, n >= v6 + (isTCP ? TCPLayout.minimumHeaderLength : UDPLayout.headerLength), n - 20 <= 65535,
              p.load(as: UInt8.self) >> 4 == 6,
              p.load(fromByteOffset: IPv6Layout.nextHeader, as: UInt8.self) == proto,
              Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: IPv6Layout.payloadLength, as: UInt16.self))) + v6 == n else { return nil }
        let l4Header = isTCP ? Int(p.load(fromByteOffset: v6 + TCPLayout.dataOffset, as: UInt8.self) >> 4) << 2 : UDPLayout.headerLength
        guard l4Header >= (isTCP ? TCPLayout.minimumHeaderLength : UDPLayout.headerLength), v6 + l4Header < n else { return nil }
        transportHeaderLength = l4Header
        payload = n - v6 - l4Header
        gso = Int(h.gsoSize)
        gsoECN = h.gsoType & VirtioNetHeader.gsoECN
        // Every segment's IPv4 size: headers + gso, the last one headers + what is left.
        let last = payload - (payload - 1) / gso * gso
        let small = 20 + l4Header + gso <= 1260, lastSmall = 20 + l4Header + last <= 1260
        guard small == lastSmall else { return nil }
        dontFragment = !small
        s.copyMemory(from: p, byteCount: v6 + l4Header)
        s.storeBytes(of: UInt16(l4Header).bigEndian, toByteOffset: IPv6Layout.payloadLength, as: UInt16.self)
        if !isTCP {
            s.storeBytes(of: UInt16(UDPLayout.headerLength).bigEndian, toByteOffset: v6 + UDPLayout.length, as: UInt16.self)
            // The field holds a pseudo-header sum; 0 would read as "no checksum", which IPv6 UDP may not have.
            if s.loadUnaligned(fromByteOffset: v6 + UDPLayout.checksum, as: UInt16.self) == 0 {
                s.storeBytes(of: UInt16(0xFFFF), toByteOffset: v6 + UDPLayout.checksum, as: UInt16.self)
            }
        }
        headerCopy = UnsafeMutableRawBufferPointer(start: s, count: v6 + l4Header)
    }

    /// Puts the translated header-only copy (`out`, `len` bytes) in front of the payload of the
    /// super-packet at `p`: the IPv4 header into the last 20 bytes of the old IPv6 header, the transport
    /// header where it was. False, with nothing changed, when the translation is not one IPv4 packet of
    /// the same protocol with a 20-byte header (hairpinning to IPv6, for example).
    public func place(_ out: UnsafeRawPointer, count len: Int, into p: UnsafeMutableRawPointer) -> Bool {
        guard len == 20 + transportHeaderLength, out.load(as: UInt8.self) == 0x45,
              out.load(fromByteOffset: IPv4Layout.protocolNumber, as: UInt8.self) == proto else { return false }
        (p + 20).copyMemory(from: out, byteCount: 20 + transportHeaderLength)
        return true
    }

    /// Completes the placed IPv4 super-packet (it starts 20 bytes into the old one and is `count - 20`
    /// long): total length, DF and identification, header checksum, UDP length, and in the transport
    /// checksum field the IPv4 pseudo-header sum over the whole length (not complemented), as a sender
    /// with checksum offload leaves it. Returns the virtio-net header for it and how many
    /// identifications the translator must skip (negative: give back the one it took).
    public func finish(_ p: UnsafeMutableRawPointer, count n: Int) -> (header: VirtioNetHeader, skipIdentifications: Int) {
        let q = p + 20
        let l4Length = n - IPv6Layout.headerLength
        q.storeBytes(of: UInt16(n - 20).bigEndian, toByteOffset: IPv4Layout.totalLength, as: UInt16.self)
        // The small header-only copy went out with DF clear and took an identification.
        let tookIdentification = UInt16(q.load(fromByteOffset: IPv4Layout.flagsFragmentOffset, as: UInt8.self)) << 8 & IPv4Layout.flagDF == 0
        let skip: Int
        if !dontFragment {
            skip = (payload + gso - 1) / gso - (tookIdentification ? 1 : 0)
        } else {
            skip = tookIdentification ? -1 : 0  // not used after all: given back
            q.storeBytes(of: UInt16(0).bigEndian, toByteOffset: IPv4Layout.identification, as: UInt16.self)
            q.storeBytes(of: IPv4Layout.flagDF.bigEndian, toByteOffset: IPv4Layout.flagsFragmentOffset, as: UInt16.self)
        }
        q.storeBytes(of: UInt16(0), toByteOffset: IPv4Layout.checksum, as: UInt16.self)
        let ipSum = Checksum.finish(Checksum.sum(UnsafeRawPointer(q), count: 20))
        q.storeBytes(of: ipSum.bigEndian, toByteOffset: IPv4Layout.checksum, as: UInt16.self)
        if !isTCP { q.storeBytes(of: UInt16(l4Length).bigEndian, toByteOffset: 20 + UDPLayout.length, as: UInt16.self) }
        let pseudo = Checksum.fold(Checksum.sum(UnsafeRawPointer(q + IPv4Layout.source), count: 8) &+ UInt64(proto) &+ UInt64(l4Length))
        let checksumOffset = isTCP ? TCPLayout.checksum : UDPLayout.checksum
        q.storeBytes(of: pseudo.bigEndian, toByteOffset: 20 + checksumOffset, as: UInt16.self)
        let h = VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum,
                                gsoType: isTCP ? VirtioNetHeader.gsoTCPv4 | gsoECN : VirtioNetHeader.gsoUDPL4,
                                headerLength: UInt16(20 + transportHeaderLength), gsoSize: UInt16(gso),
                                checksumStart: 20, checksumOffset: UInt16(checksumOffset))
        return (h, skip)
    }
}
