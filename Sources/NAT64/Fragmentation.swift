import NATCore
import NATWire

extension NAT64Translator where Mapping: ~Copyable {
    /// RFC 7915 §4.1: splits the translated IPv6 packet in `o` (fixed header, Fragment header at 40, data
    /// after it; `length` bytes in all) into fragments of at most `mtu` bytes. Each fragment's data is a
    /// multiple of 8 bytes except the last; offsets continue from the packet's own fragment offset and M
    /// stays set on the last piece when the original IPv4 fragment had MF. The first fragment stays in `o`
    /// (its length is returned); the others wait in the outbox. Refuses with `.outboxFull` before sending
    /// anything when the outbox cannot take them all.
    @inlinable
    mutating func fragment6(_ o: UnsafeMutableRawPointer, length: Int, mtu: Int) throws(DropReason) -> Int {
        let header = IPv6Layout.headerLength + IPv6ExtensionLayout.fragmentHeaderLength
        let data = length - header
        let piece = (mtu - header) & ~7
        let pieces = (data + piece - 1) / piece
        guard pieces - 1 <= outbox.slotCount - outbox.count else { throw .outboxFull }
        let fh = o + IPv6Layout.headerLength
        let flags = load16(fh, IPv6ExtensionLayout.fragmentOffsetFlags)
        let baseOffset = Int(flags & IPv6ExtensionLayout.fragmentOffsetMask)
        let lastMore = flags & IPv6ExtensionLayout.fragmentMoreFlag != 0
        var start = piece
        while start < data {
            let n = min(piece, data - start)
            let more = start + n < data || lastMore
            // A slot was counted free above.
            let f = outbox.reserve()!.baseAddress!
            f.copyMemory(from: o, byteCount: header)
            store16(f, IPv6Layout.payloadLength, UInt16(truncatingIfNeeded: IPv6ExtensionLayout.fragmentHeaderLength + n))
            store16(f + IPv6Layout.headerLength, IPv6ExtensionLayout.fragmentOffsetFlags,
                 UInt16(truncatingIfNeeded: baseOffset + start) & IPv6ExtensionLayout.fragmentOffsetMask | (more ? 1 : 0))
            (f + header).copyMemory(from: o + header + start, byteCount: n)
            outbox.commit(length: header + n, verdict: .toInside(tenant: 0))
            start += n
        }
        store16(o, IPv6Layout.payloadLength, UInt16(truncatingIfNeeded: IPv6ExtensionLayout.fragmentHeaderLength + piece))
        store16(fh, IPv6ExtensionLayout.fragmentOffsetFlags,
             UInt16(truncatingIfNeeded: baseOffset) & IPv6ExtensionLayout.fragmentOffsetMask | 1)
        return header + piece
    }

    /// RFC 791 §2.3 (RFC 7915 §5: the translated packet has DF clear and the IPv4 link is smaller): splits
    /// the IPv4 packet in `o` (20-byte header, no options) into fragments of at most `mtu` bytes; the first
    /// stays in `o`, the others wait in the outbox.
    @inlinable
    mutating func fragment4(_ o: UnsafeMutableRawPointer, length: Int, mtu: Int) throws(DropReason) -> Int {
        let header = IPv4Layout.minimumHeaderLength
        let data = length - header
        let piece = (mtu - header) & ~7
        guard piece > 0 else { throw .packetTooBig }
        let pieces = (data + piece - 1) / piece
        guard pieces - 1 <= outbox.slotCount - outbox.count else { throw .outboxFull }
        let flags = load16(o, IPv4Layout.flagsFragmentOffset)
        let baseOffset = Int(flags & IPv4Layout.offsetMask) << 3
        let lastMore = flags & IPv4Layout.flagMF != 0
        let tos = load8(o, IPv4Layout.tos), id = load16(o, IPv4Layout.identification), ttl = load8(o, IPv4Layout.ttl)
        let proto = load8(o, IPv4Layout.protocolNumber)
        let s = IPv4Address(load32(o, IPv4Layout.source)), d = IPv4Address(load32(o, IPv4Layout.destination))
        var start = piece
        while start < data {
            let n = min(piece, data - start)
            let more = start + n < data || lastMore
            let f = outbox.reserve()!.baseAddress!
            writeIPv4Header(f, tos: tos, totalLength: header + n, identification: id,
                            flagsAndOffset: UInt16(truncatingIfNeeded: (baseOffset + start) >> 3) | (more ? IPv4Layout.flagMF : 0),
                            ttl: ttl, protocolNumber: proto, source: s, destination: d)
            (f + header).copyMemory(from: o + header + start, byteCount: n)
            outbox.commit(length: header + n, verdict: .toOutside)
            start += n
        }
        writeIPv4Header(o, tos: tos, totalLength: header + piece, identification: id,
                        flagsAndOffset: UInt16(truncatingIfNeeded: baseOffset >> 3) | IPv4Layout.flagMF,
                        ttl: ttl, protocolNumber: proto, source: s, destination: d)
        return header + piece
    }
}
