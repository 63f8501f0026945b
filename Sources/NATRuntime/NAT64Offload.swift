import NATCore
import NATWire

/// Segmentation offload through NAT64 (IPv6 → IPv4). With TUN offloads on, the kernel hands over an IPv6
/// TCP stream as 64 KiB super-packets (TSO), and with GRO and UDP GRO forwarding on the inside interface
/// a burst of one UDP flow's datagrams as one UDP super-packet (GSO UDP_L4). Instead of cutting one into
/// segments and translating and writing each, the translator gets a header-only copy (IPv6 + TCP or UDP
/// header: the mapping sees the real addresses, ports and flags, and keeps its state), and the IPv4
/// header and transport header it produces are put in front of the untouched payload; the kernel
/// segments the IPv4 super-packet on the way out (GSO TCPv4 or UDP_L4), computing each segment's
/// checksum from the pseudo-header sum left in the checksum field.
///
/// RFC 7915 §5.1 (DF and Identification): a super-packet is taken whole only when every segment it
/// stands for gets the same DF: all at most 1260 bytes as IPv4 (DF = 0; the kernel numbers them on from
/// the identification the translator chose, and the translator skips those) or all over 1260 (DF = 1,
/// identification 0; the kernel numbers the segments on from 0, which RFC 6864 §4.1 allows for atomic
/// datagrams). Mixed ones (a short last segment) are segmented in software and translated one by one,
/// so that every datagram leaves exactly as it would have without offloads.
extension QueueIO where Device: ~Copyable {
    /// Returns false, with nothing changed, when the super-packet does not have the plain shape (IPv6
    /// header directly followed by TCP or UDP, partial checksum at its checksum field, length fits an
    /// IPv4 datagram) or its translation is not one IPv4 packet of the same protocol (hairpinning, for
    /// example): the caller then segments it in software.
    @inline(__always)
    mutating func translate6SuperPacket(_ p: UnsafeMutableRawPointer, _ n: Int, header h: VirtioNetHeader,
                                        nat64: inout NAT64Path, now: Timestamp) -> Bool {
        let type = h.gsoType & ~VirtioNetHeader.gsoECN
        let proto: UInt8
        switch type {
        case VirtioNetHeader.gsoTCPv6: proto = IPProtocol.tcp
        case VirtioNetHeader.gsoUDPL4: proto = IPProtocol.udp
        default: return false
        }
        let isTCP = proto == IPProtocol.tcp
        guard h.flags & VirtioNetHeader.flagNeedsChecksum != 0,
              h.checksumStart == 40, h.checksumOffset == (isTCP ? 16 : 6), h.gsoSize > 0,
              n >= 48, n - 20 <= 65535, vnet <= 20,
              p.load(as: UInt8.self) >> 4 == 6,
              p.load(fromByteOffset: 6, as: UInt8.self) == proto,
              Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt16.self))) + 40 == n else { return false }
        let l4Header = isTCP ? Int(p.load(fromByteOffset: 52, as: UInt8.self) >> 4) << 2 : 8
        guard l4Header >= (isTCP ? 20 : 8), 40 + l4Header < n else { return false }
        let payload = n - 40 - l4Header
        let gso = Int(h.gsoSize)
        // Every segment's IPv4 size: headers + gso, the last one headers + what is left.
        let last = payload - (payload - 1) / gso * gso
        let small = 20 + l4Header + gso <= 1260, lastSmall = 20 + l4Header + last <= 1260
        guard small == lastSmall else { return false }
        let dontFragment = !small
        // The header-only copy: IPv6 header + transport header, lengths as if there were no payload.
        let s = scratch.baseAddress! + 16
        s.copyMemory(from: p, byteCount: 40 + l4Header)
        s.storeBytes(of: UInt16(l4Header).bigEndian, toByteOffset: 4, as: UInt16.self)
        if !isTCP {
            s.storeBytes(of: UInt16(8).bigEndian, toByteOffset: 44, as: UInt16.self)
            // The field holds a pseudo-header sum; 0 would read as "no checksum", which IPv6 UDP may not have.
            if s.loadUnaligned(fromByteOffset: 46, as: UInt16.self) == 0 { s.storeBytes(of: UInt16(0xFFFF), toByteOffset: 46, as: UInt16.self) }
        }
        var placed = false, other = false
        nat64.process(UnsafeMutableRawBufferPointer(start: s, count: 40 + l4Header), now: now, translated: { out, len in
            guard len == 20 + l4Header, out.load(as: UInt8.self) == 0x45,
                  out.load(fromByteOffset: 9, as: UInt8.self) == proto else { other = true; return }
            // IPv4 header into the last 20 bytes of the old IPv6 header; the transport header where it was.
            (p + 20).copyMemory(from: out, byteCount: 20 + l4Header)
            placed = true
        }, send: { writePlain($0, $1) })
        if other { return false }
        guard placed else { return true }  // refused or held by the translator (counted there)
        let q = p + 20
        let l4Length = n - 40
        q.storeBytes(of: UInt16(n - 20).bigEndian, toByteOffset: 2, as: UInt16.self)
        // The small header-only copy went out with DF clear and took an identification.
        let tookIdentification = q.load(fromByteOffset: 6, as: UInt8.self) & 0x40 == 0
        if !dontFragment {
            nat64.skipIdentifications((payload + gso - 1) / gso - (tookIdentification ? 1 : 0))
        } else {
            if tookIdentification { nat64.skipIdentifications(-1) }  // not used after all: given back
            q.storeBytes(of: UInt16(0).bigEndian, toByteOffset: 4, as: UInt16.self)        // identification
            q.storeBytes(of: UInt16(0x4000).bigEndian, toByteOffset: 6, as: UInt16.self)   // DF
        }
        q.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
        let ipSum = Checksum.finish(Checksum.sum(UnsafeRawPointer(q), count: 20))
        q.storeBytes(of: ipSum.bigEndian, toByteOffset: 10, as: UInt16.self)
        if !isTCP { q.storeBytes(of: UInt16(l4Length).bigEndian, toByteOffset: 24, as: UInt16.self) }
        // The checksum field: the IPv4 pseudo-header sum over the whole super-packet's length (not
        // complemented), as a sender with checksum offload leaves it; the kernel adds each segment and
        // adjusts the length per segment.
        let pseudo = Checksum.fold(Checksum.sum(UnsafeRawPointer(q + 12), count: 8) &+ UInt64(proto) &+ UInt64(l4Length))
        q.storeBytes(of: pseudo.bigEndian, toByteOffset: 20 + (isTCP ? 16 : 6), as: UInt16.self)
        VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum,
                        gsoType: isTCP ? VirtioNetHeader.gsoTCPv4 | (h.gsoType & VirtioNetHeader.gsoECN) : VirtioNetHeader.gsoUDPL4,
                        headerLength: UInt16(20 + l4Header), gsoSize: h.gsoSize,
                        checksumStart: 20, checksumOffset: isTCP ? 16 : 6).store(to: q - vnet, size: vnet)
        io.offloaded &+= 1
        writeFramed(q, n - 20)
        return true
    }
}
