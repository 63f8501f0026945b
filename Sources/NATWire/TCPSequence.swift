/// TCP sequence-space edits for application-level gateways: sequence and acknowledgment numbers,
/// SACK blocks (RFC 2018 §3), and the full checksum after a payload rewrite. Offsets stay here.
public enum TCPSegmentEdit {
    /// `a` is after `b` in sequence space (RFC 793 §3.3, modulo 2^32).
    @inlinable public static func after(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: b &- a) < 0 }

    @inlinable public static func sequenceNumber(_ tcp: UnsafeRawPointer) -> UInt32 { load32(tcp, TCPLayout.sequenceNumber) }
    @inlinable public static func acknowledgmentNumber(_ tcp: UnsafeRawPointer) -> UInt32 { load32(tcp, TCPLayout.acknowledgmentNumber) }
    @inlinable public static func setSequenceNumber(_ tcp: UnsafeMutableRawPointer, _ v: UInt32) { store32(tcp, TCPLayout.sequenceNumber, v) }
    @inlinable public static func setAcknowledgmentNumber(_ tcp: UnsafeMutableRawPointer, _ v: UInt32) { store32(tcp, TCPLayout.acknowledgmentNumber, v) }
    @inlinable public static func headerLength(_ tcp: UnsafeRawPointer) -> Int { Int(load8(tcp, TCPLayout.dataOffset) >> 4) << 2 }
    @inlinable public static func hasACK(_ tcp: UnsafeRawPointer) -> Bool { load8(tcp, TCPLayout.flags) & TCPFlags.ack.rawValue != 0 }

    /// Calls `body` with each SACK block's edge (left and right) and stores what it returns; `length`
    /// is the segment's length (the header must be within it). Malformed options end the walk.
    @inlinable
    public static func rewriteSACKEdges(_ tcp: UnsafeMutableRawPointer, length: Int, _ body: (UInt32) -> UInt32) {
        let end = min(headerLength(tcp), length)
        var i = TCPLayout.minimumHeaderLength
        while i < end {
            let kind = load8(tcp, i)
            if kind == TCPOption.kindEnd { return }
            if kind == TCPOption.kindNoOperation { i += 1; continue }
            guard i + 1 < end else { return }
            let len = Int(load8(tcp, i + 1))
            guard len >= 2, i + len <= end else { return }
            if kind == TCPOption.kindSACK && (len - 2) % 8 == 0 {
                var j = i + 2
                while j < i + len {
                    store32(tcp, j, body(load32(tcp, j)))
                    j += 4
                }
            }
            i += len
        }
    }

    /// Recomputes the TCP checksum of an unfragmented IPv4 segment (`segment`: the TCP header and payload).
    public static func recomputeChecksum(_ segment: UnsafeMutableRawBufferPointer, source: IPv4Address, destination: IPv4Address) {
        let p = segment.baseAddress!
        store16(p, TCPLayout.checksum, 0)
        let ph = Checksum.pseudoHeaderSum(source: source, destination: destination, protocol: IPProtocol.tcp, length: segment.count)
        store16(p, TCPLayout.checksum, Checksum.finish(Checksum.sum(UnsafeRawBufferPointer(segment), initial: ph)))
    }

    /// Recomputes an IPv4 header's checksum (`headerLength` bytes at `ip`).
    public static func recomputeIPv4HeaderChecksum(_ ip: UnsafeMutableRawPointer, headerLength: Int) {
        store16(ip, IPv4Layout.checksum, 0)
        store16(ip, IPv4Layout.checksum, Checksum.finish(Checksum.sum(UnsafeRawPointer(ip), count: headerLength)))
    }
}
