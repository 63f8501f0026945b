import NAT64
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
    /// Returns false, with nothing changed, when the super-packet does not have the plain shape or its
    /// translation is not one IPv4 packet of the same protocol (``NAT64SuperPacket``): the caller then
    /// segments it in software. The bytes are the NAT64 module's business; this writes the result.
    @inline(__always)
    mutating func translate6SuperPacket(_ p: UnsafeMutableRawPointer, _ n: Int, header h: VirtioNetHeader,
                                        nat64: inout NAT64Path, now: Timestamp) -> Bool {
        guard vnet <= 20, let plan = NAT64SuperPacket(packet: p, count: n, header: h, scratch: scratch.baseAddress! + 16) else {
            return false
        }
        var placed = false, other = false
        nat64.process(plan.headerCopy, now: now, translated: { out, len in
            if plan.place(out, count: len, into: p) { placed = true } else { other = true }
        }, send: { writePlain($0, $1) })
        if other { return false }
        guard placed else { return true }  // refused or held by the translator (counted there)
        let (header, skip) = plan.finish(p, count: n)
        if skip != 0 { nat64.skipIdentifications(skip) }
        header.store(to: p + 20 - vnet, size: vnet)
        io.offloaded &+= 1
        writeFramed(p + 20, n - 20)
        return true
    }
}
