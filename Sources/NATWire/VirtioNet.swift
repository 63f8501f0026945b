/// The virtio-net header (virtio 1.x §5.1.6, `struct virtio_net_hdr` in linux/virtio_net.h) that a TUN
/// device opened with IFF_VNET_HDR puts before every packet, in both directions. It carries the two
/// offloads a TUN reader can take over from the kernel:
///
/// - a partial checksum (`needsChecksum`): the TCP/UDP checksum field holds only the folded,
///   non-complemented pseudo-header sum; whoever sends the packet on sums the bytes from
///   `checksumStart` to the end and stores the complement at `checksumStart + checksumOffset`;
/// - segmentation (`gsoType` ≠ none): one "super-packet" of up to 64 KiB with one set of headers that
///   is cut into `gsoSize`-byte segments by whoever sends it on (the kernel, when we write it back).
///
/// Fields are little-endian (a TUN device on a little-endian host; TUNSETVNETLE only matters on
/// big-endian hosts). With TUNSETVNETHDRSZ 12 the last two bytes are `num_buffers`, always zero here.
public struct VirtioNetHeader: Sendable, Hashable {
    /// VIRTIO_NET_HDR_F_NEEDS_CSUM: use `checksumStart` and `checksumOffset`.
    public static let flagNeedsChecksum: UInt8 = 1
    /// VIRTIO_NET_HDR_F_DATA_VALID: the checksum was verified already (kernel to reader only).
    public static let flagDataValid: UInt8 = 2

    public static let gsoNone: UInt8 = 0
    public static let gsoTCPv4: UInt8 = 1
    /// UFO (IPv4 UDP fragmentation offload): long gone from Linux; refused here.
    public static let gsoUDP: UInt8 = 3
    public static let gsoTCPv6: UInt8 = 4
    /// USO: UDP segmentation offload (UDP_SEGMENT), IPv4 or IPv6 (Linux 6.2+, TUN_F_USO4/USO6).
    public static let gsoUDPL4: UInt8 = 5
    /// Set with a TCP type when the segments carry ECN (CWR on the first only).
    public static let gsoECN: UInt8 = 0x80

    /// The smallest header (10 bytes, `struct virtio_net_hdr`).
    public static let minimumSize = 10
    /// With `num_buffers` (12 bytes, `struct virtio_net_hdr_mrg_rxbuf`).
    public static let mergeableSize = 12

    public var flags: UInt8
    public var gsoType: UInt8
    /// Length of the headers before the payload (a hint for the kernel).
    public var headerLength: UInt16
    /// Payload bytes per segment.
    public var gsoSize: UInt16
    /// Where the checksummed region starts, from the start of the packet (the IP header for a TUN).
    public var checksumStart: UInt16
    /// Where the checksum field is, from `checksumStart`.
    public var checksumOffset: UInt16

    @inlinable
    public init(flags: UInt8 = 0, gsoType: UInt8 = 0, headerLength: UInt16 = 0, gsoSize: UInt16 = 0,
                checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    /// Reads a header (at least ``minimumSize`` bytes at `p`).
    @inlinable
    public init(loading p: UnsafeRawPointer) {
        flags = p.load(fromByteOffset: 0, as: UInt8.self)
        gsoType = p.load(fromByteOffset: 1, as: UInt8.self)
        headerLength = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        gsoSize = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        checksumStart = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
        checksumOffset = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
    }

    /// For a packet that was rewritten after the kernel handed it over: of the header at `p`, keeps only
    /// NEEDS_CSUM in its flags (whatever else the kernel said, such as DATA_VALID, no longer holds).
    @inlinable
    public static func keepOnlyNeedsChecksum(at p: UnsafeMutableRawPointer) {
        p.storeBytes(of: p.load(as: UInt8.self) & flagNeedsChecksum, as: UInt8.self)
    }

    /// Writes the header into `size` bytes at `p` (10 or 12; the bytes past 10 are zeroed).
    @inlinable
    public func store(to p: UnsafeMutableRawPointer, size: Int) {
        p.storeBytes(of: flags, toByteOffset: 0, as: UInt8.self)
        p.storeBytes(of: gsoType, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: headerLength.littleEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: gsoSize.littleEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: checksumStart.littleEndian, toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: checksumOffset.littleEndian, toByteOffset: 8, as: UInt16.self)
        var i = VirtioNetHeader.minimumSize
        while i < size {
            p.storeBytes(of: 0, toByteOffset: i, as: UInt8.self)
            i += 1
        }
    }

    @inlinable public var needsChecksum: Bool { flags & Self.flagNeedsChecksum != 0 }
    /// The segmentation type without the ECN bit.
    @inlinable public var segmentationType: UInt8 { gsoType & ~Self.gsoECN }
    @inlinable public var isSegmentationOffload: Bool { segmentationType != Self.gsoNone }
    /// Nothing to do: a whole packet with a whole checksum.
    @inlinable public var isPlain: Bool { flags & Self.flagNeedsChecksum == 0 && segmentationType == Self.gsoNone }
}

/// What a translator that rewrites IPv4 addresses and TCP/UDP ports must do to a packet whose TCP/UDP
/// checksum is partial (``VirtioNetHeader/flagNeedsChecksum``).
///
/// The field holds the folded pseudo-header sum, and the ports are in the bytes that will still be
/// summed later. So the field must absorb the address change (the pseudo-header) and nothing else:
/// an RFC 1624 update of a complemented checksum that includes the port change, complemented before
/// and after, would count the ports twice. Take this before the translator runs; ``apply(to:)``
/// afterwards recomputes the field from the original value and the address change alone, whatever
/// the translator wrote there. Only for the shape the Linux stack produces: IPv4, not a fragment,
/// TCP or UDP, the checksum starting right after the IP header; anything else is `nil` (complete the
/// checksum with ``VirtioNet/completeChecksum(_:header:)`` or segment it instead).
public struct IPv4PartialChecksum: Sendable, Equatable {
    public let fieldOffset: Int
    public let field: UInt16
    public let source: UInt32
    public let destination: UInt32

    @inlinable
    public init?(_ packet: UnsafeRawBufferPointer, header h: VirtioNetHeader) {
        guard h.needsChecksum, let p = packet.baseAddress, packet.count >= IPv4Layout.minimumHeaderLength,
              load8(p, IPv4Layout.versionIHL) >> 4 == 4 else { return nil }
        let ihl = Int(load8(p, IPv4Layout.versionIHL) & 0x0F) << 2
        let proto = load8(p, IPv4Layout.protocolNumber)
        let want = proto == IPProtocol.tcp ? TCPLayout.checksum : proto == IPProtocol.udp ? UDPLayout.checksum : -1
        guard want >= 0, Int(h.checksumStart) == ihl, Int(h.checksumOffset) == want,
              load16(p, IPv4Layout.flagsFragmentOffset) & (IPv4Layout.flagMF | IPv4Layout.offsetMask) == 0,
              ihl + want + 2 <= packet.count else { return nil }
        fieldOffset = ihl + want
        field = load16(p, fieldOffset)
        source = load32(p, IPv4Layout.source)
        destination = load32(p, IPv4Layout.destination)
    }

    /// After translation: the field is the original pseudo-header sum plus the address change (RFC 1624
    /// arithmetic without the complements). The IP header length must not have changed.
    @inlinable
    public func apply(to packet: UnsafeMutableRawBufferPointer) {
        guard let p = packet.baseAddress, fieldOffset + 2 <= packet.count else { return }
        var d = ChecksumDelta()
        d.replace(source, with: load32(p, IPv4Layout.source))
        d.replace(destination, with: load32(p, IPv4Layout.destination))
        store16(p, fieldOffset, Checksum.fold(UInt64(field) &+ d.acc))
    }
}

/// Software fallbacks for the offloads, for packets a translator cannot take in offloaded form (for
/// example IPv6 ones headed for a translator that rewrites them into IPv4).
public enum VirtioNet {
    /// Completes a partial checksum in software: sums from `checksumStart` to the end (the field holds the
    /// pseudo-header sum) and stores the complement (0 is sent as 0xFFFF, as Linux does). Returns false
    /// when the header points outside the packet. Clear ``VirtioNetHeader/flagNeedsChecksum`` after.
    @discardableResult
    public static func completeChecksum(_ packet: UnsafeMutableRawBufferPointer, header h: VirtioNetHeader) -> Bool {
        guard let p = packet.baseAddress else { return false }
        let start = Int(h.checksumStart), field = start + Int(h.checksumOffset)
        guard field + 2 <= packet.count, start < packet.count else { return false }
        let c = Checksum.finish(Checksum.sum(p + start, count: packet.count - start))
        store16(p, field, c == 0 ? 0xFFFF : c)
        return true
    }

    /// Why ``segment(_:header:into:emit:)`` refused a packet.
    public enum SegmentationError: Error, Sendable, Equatable {
        case unsupportedType
        case malformed
        case scratchTooSmall
    }

    /// Cuts a GSO super-packet (TCPv4, TCPv6, UDP L4 over either) into plain packets with full
    /// checksums, as the kernel's software GSO would: each segment copies the headers, carries at most
    /// `gsoSize` payload bytes, and gets its own lengths, IPv4 identification (+1 per segment), TCP
    /// sequence number, flags (FIN and PSH on the last segment only, CWR on the first only) and
    /// checksums. Each segment is built in `scratch` and handed to `emit` before the next is built.
    /// Returns the number of segments. A packet that is no bigger than one segment comes out whole with
    /// its checksum completed. IPv6 extension headers are passed over when `checksumStart` says where the
    /// transport header is; otherwise the transport header must follow the fixed header.
    @discardableResult
    public static func segment(_ packet: UnsafeRawBufferPointer, header h: VirtioNetHeader,
                               into scratch: UnsafeMutableRawBufferPointer,
                               emit: (UnsafeMutableRawBufferPointer) -> Void) throws(SegmentationError) -> Int {
        guard let p = packet.baseAddress, packet.count >= IPv4Layout.minimumHeaderLength, let out = scratch.baseAddress else {
            throw .malformed
        }
        let version = load8(p, 0) >> 4
        let isV4: Bool
        var l4: Int, proto: UInt8
        var total = packet.count
        switch version {
        case 4:
            isV4 = true
            l4 = Int(load8(p, IPv4Layout.versionIHL) & 0x0F) << 2
            proto = load8(p, IPv4Layout.protocolNumber)
            let tl = Int(load16(p, IPv4Layout.totalLength))
            guard l4 >= IPv4Layout.minimumHeaderLength, tl >= l4, tl <= packet.count else { throw .malformed }
            guard load16(p, IPv4Layout.flagsFragmentOffset) & (IPv4Layout.flagMF | IPv4Layout.offsetMask) == 0 else { throw .malformed }
            total = tl
        case 6:
            isV4 = false
            guard packet.count >= IPv6Layout.headerLength else { throw .malformed }
            let pl = Int(load16(p, IPv6Layout.payloadLength))
            guard IPv6Layout.headerLength + pl <= packet.count else { throw .malformed }
            total = IPv6Layout.headerLength + pl
            if h.needsChecksum && Int(h.checksumStart) > IPv6Layout.headerLength {
                l4 = Int(h.checksumStart)
                proto = h.checksumOffset == UInt16(TCPLayout.checksum) ? IPProtocol.tcp : IPProtocol.udp
            } else {
                l4 = IPv6Layout.headerLength
                proto = load8(p, IPv6Layout.nextHeader)
            }
        default:
            throw .malformed
        }
        let type = h.segmentationType
        switch (type, proto) {
        case (VirtioNetHeader.gsoTCPv4, IPProtocol.tcp) where isV4, (VirtioNetHeader.gsoTCPv6, IPProtocol.tcp) where !isV4,
             (VirtioNetHeader.gsoUDPL4, IPProtocol.udp), (VirtioNetHeader.gsoNone, IPProtocol.tcp), (VirtioNetHeader.gsoNone, IPProtocol.udp):
            break
        default:
            throw .unsupportedType
        }
        let isTCP = proto == IPProtocol.tcp
        guard l4 + (isTCP ? TCPLayout.minimumHeaderLength : UDPLayout.headerLength) <= total else { throw .malformed }
        let thl = isTCP ? Int(load8(p, l4 + TCPLayout.dataOffset) >> 4) << 2 : UDPLayout.headerLength
        guard thl >= (isTCP ? TCPLayout.minimumHeaderLength : UDPLayout.headerLength), l4 + thl <= total else { throw .malformed }
        let headers = l4 + thl
        let payload = total - headers
        let mss = type == VirtioNetHeader.gsoNone || h.gsoSize == 0 ? max(payload, 1) : Int(h.gsoSize)
        guard headers + min(mss, max(payload, 0)) <= scratch.count else { throw .scratchTooSmall }
        let segments = payload == 0 ? 1 : (payload + mss - 1) / mss
        let id = isV4 ? load16(p, IPv4Layout.identification) : 0
        let seq = isTCP ? load32(p, l4 + TCPLayout.sequenceNumber) : 0
        let flags = isTCP ? load8(p, l4 + TCPLayout.flags) : 0
        for i in 0..<segments {
            let off = i * mss
            let n = min(mss, payload - off)
            let length = headers + max(n, 0)
            out.copyMemory(from: p, byteCount: headers)
            if n > 0 { (out + headers).copyMemory(from: p + headers + off, byteCount: n) }
            if isV4 {
                store16(out, IPv4Layout.totalLength, UInt16(length))
                store16(out, IPv4Layout.identification, id &+ UInt16(truncatingIfNeeded: i))
                store16(out, IPv4Layout.checksum, 0)
                store16(out, IPv4Layout.checksum, Checksum.finish(Checksum.sum(out, count: l4)))
            } else {
                store16(out, IPv6Layout.payloadLength, UInt16(length - IPv6Layout.headerLength))
            }
            let seg = length - l4
            let field: Int
            if isTCP {
                store32(out, l4 + TCPLayout.sequenceNumber, seq &+ UInt32(truncatingIfNeeded: off))
                var f = flags
                if i != segments - 1 { f &= ~(TCPFlags.fin.rawValue | TCPFlags.psh.rawValue) }
                if i != 0 { f &= ~TCPFlags.cwr.rawValue }
                store8(out, l4 + TCPLayout.flags, f)
                field = l4 + TCPLayout.checksum
            } else {
                store16(out, l4 + UDPLayout.length, UInt16(seg))
                field = l4 + UDPLayout.checksum
            }
            let pseudo: UInt64
            if isV4 {
                pseudo = Checksum.pseudoHeaderSum(source: IPv4Address(load32(out, IPv4Layout.source)),
                                                  destination: IPv4Address(load32(out, IPv4Layout.destination)),
                                                  protocol: proto, length: seg)
            } else {
                pseudo = Checksum.pseudoHeaderSum(source: IPv6Address(high: load64(out, IPv6Layout.source), low: load64(out, IPv6Layout.source + 8)),
                                                  destination: IPv6Address(high: load64(out, IPv6Layout.destination), low: load64(out, IPv6Layout.destination + 8)),
                                                  nextHeader: proto, length: seg)
            }
            store16(out, field, 0)
            let c = Checksum.finish(Checksum.sum(out + l4, count: seg, initial: pseudo))
            store16(out, field, c == 0 && !isTCP ? 0xFFFF : c)
            emit(UnsafeMutableRawBufferPointer(start: out, count: length))
        }
        return segments
    }
}
