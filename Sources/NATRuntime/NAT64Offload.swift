import NATCore
import NATWire

/// TCP segmentation offload through NAT64 (IPv6 → IPv4). With TUN offloads on, the kernel hands over an
/// IPv6 TCP stream as 64 KiB super-packets. Instead of cutting one into ~45 segments and translating and
/// writing each, the translator gets a header-only copy (IPv6 + TCP header: the mapping sees the real
/// addresses, ports and flags, and keeps its state), and the IPv4 + TCP headers it produces are put in
/// front of the untouched payload; the kernel segments the IPv4 super-packet on the way out (GSO TCPv4),
/// computing each segment's checksum from the pseudo-header sum left in the TCP checksum field. Per
/// RFC 7915 §5.1 the translated segments (over 1260 bytes) carry DF = 1.
extension TunQueueIO {
    /// Returns false, with nothing changed, when the super-packet does not have the plain shape
    /// (IPv6 header directly followed by TCP, partial checksum at the TCP checksum field, length fits an
    /// IPv4 datagram) or its translation is not one IPv4 TCP packet (hairpinning, for example): the
    /// caller then segments it in software.
    @inline(__always)
    mutating func translateTCP6SuperPacket(_ p: UnsafeMutableRawPointer, _ n: Int, header h: VirtioNetHeader,
                                           nat64: inout NAT64Path, now: Timestamp) -> Bool {
        guard h.gsoType & ~VirtioNetHeader.gsoECN == VirtioNetHeader.gsoTCPv6,
              h.flags & VirtioNetHeader.flagNeedsChecksum != 0,
              h.checksumStart == 40, h.checksumOffset == 16,
              n >= 60, n - 20 <= 65535, vnet <= 20,
              p.load(as: UInt8.self) >> 4 == 6,
              p.load(fromByteOffset: 6, as: UInt8.self) == IPProtocol.tcp,
              Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt16.self))) + 40 == n else { return false }
        let tcpHeader = Int(p.load(fromByteOffset: 52, as: UInt8.self) >> 4) << 2
        guard tcpHeader >= 20, 40 + tcpHeader < n else { return false }
        // The header-only copy: IPv6 header + TCP header, payload length = the TCP header.
        let s = scratch.baseAddress! + 16
        s.copyMemory(from: p, byteCount: 40 + tcpHeader)
        s.storeBytes(of: UInt16(tcpHeader).bigEndian, toByteOffset: 4, as: UInt16.self)
        var placed = false, other = false
        nat64.process(UnsafeMutableRawBufferPointer(start: s, count: 40 + tcpHeader), now: now, translated: { out, len in
            guard len == 20 + tcpHeader, out.load(as: UInt8.self) == 0x45,
                  out.load(fromByteOffset: 9, as: UInt8.self) == IPProtocol.tcp else { other = true; return }
            // IPv4 header into the last 20 bytes of the old IPv6 header; the TCP header where it was.
            (p + 20).copyMemory(from: out, byteCount: 20 + tcpHeader)
            placed = true
        }, send: { writePlain($0, $1) })
        if other { return false }
        guard placed else { return true }  // refused or held by the translator (counted there)
        let q = p + 20
        let tcpLength = n - 40
        q.storeBytes(of: UInt16(n - 20).bigEndian, toByteOffset: 2, as: UInt16.self)
        q.storeBytes(of: UInt16(0).bigEndian, toByteOffset: 4, as: UInt16.self)        // identification
        q.storeBytes(of: UInt16(0x4000).bigEndian, toByteOffset: 6, as: UInt16.self)   // DF
        q.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
        let ipSum = Checksum.finish(Checksum.sum(UnsafeRawPointer(q), count: 20))
        q.storeBytes(of: ipSum.bigEndian, toByteOffset: 10, as: UInt16.self)
        // The TCP checksum field: the IPv4 pseudo-header sum (not complemented), as a sender with checksum
        // offload leaves it; the kernel adds the segment and adjusts the length per segment.
        let pseudo = Checksum.fold(Checksum.sum(UnsafeRawPointer(q + 12), count: 8) &+ UInt64(IPProtocol.tcp) &+ UInt64(tcpLength))
        q.storeBytes(of: pseudo.bigEndian, toByteOffset: 20 + 16, as: UInt16.self)
        VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum,
                        gsoType: VirtioNetHeader.gsoTCPv4 | (h.gsoType & VirtioNetHeader.gsoECN),
                        headerLength: UInt16(20 + tcpHeader), gsoSize: h.gsoSize,
                        checksumStart: 20, checksumOffset: 16).store(to: q - vnet, size: vnet)
        io.offloaded &+= 1
        writeFramed(q, n - 20)
        return true
    }
}
