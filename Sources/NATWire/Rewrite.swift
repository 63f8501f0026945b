/// Address and port rewriting with RFC 1624 checksum updates, shared by the translators.

/// Rewrites both IPv4 addresses with one RFC 1624 update of the header checksum and returns the
/// change, which TCP and UDP checksums (pseudo-header) must also absorb.
@inlinable @inline(__always)
public func rewriteAddresses(_ ip: MutableIPv4View, source: UInt32, destination: UInt32) -> ChecksumDelta {
    var d = ChecksumDelta()
    d.replace(ip.source.rawValue, with: source)
    d.replace(ip.destination.rawValue, with: destination)
    ip.setSource(IPv4Address(source))
    ip.setDestination(IPv4Address(destination))
    ip.setChecksum(d.apply(to: ip.checksum))
    return d
}

/// Rewrites the ports (or an ICMP query's identifier, passed as `sourcePort` for outbound queries and
/// `destinationPort` for inbound ones) and folds the address change into the transport checksum.
/// Returns the change to the transport header's 16-bit words (ports and checksum), for callers that
/// must also fix a checksum covering these bytes (the ICMP checksum around an embedded packet).
@inlinable @inline(__always)
@discardableResult
public func rewriteTransport(proto: UInt8, _ l4: UnsafeMutableRawPointer, available: Int, addressDelta: ChecksumDelta,
                      sourcePort: UInt16, destinationPort: UInt16, icmpIdentifierIsSource: Bool) -> ChecksumDelta {
    var words = ChecksumDelta()
    switch proto {
    case IPProtocol.tcp, IPProtocol.udp:
        let sp = load16(l4, 0), dp = load16(l4, 2)
        var d = addressDelta
        d.replace(sp, with: sourcePort)
        d.replace(dp, with: destinationPort)
        store16(l4, 0, sourcePort)
        store16(l4, 2, destinationPort)
        words.replace(sp, with: sourcePort)
        words.replace(dp, with: destinationPort)
        let off = proto == IPProtocol.tcp ? TCPLayout.checksum : UDPLayout.checksum
        if available >= off + 2 {
            let old = load16(l4, off)
            let new = proto == IPProtocol.tcp ? d.apply(to: old) : d.applyUDP(to: old)
            store16(l4, off, new)
            words.replace(old, with: new)
        }
    case IPProtocol.icmp:
        let old = load16(l4, ICMPv4Layout.identifier)
        let new = icmpIdentifierIsSource ? sourcePort : destinationPort
        store16(l4, ICMPv4Layout.identifier, new)
        words.replace(old, with: new)
        let oldSum = load16(l4, ICMPv4Layout.checksum)
        let newSum = Checksum.update(oldSum, old: old, new: new)
        store16(l4, ICMPv4Layout.checksum, newSum)
        words.replace(oldSum, with: newSum)
    default:
        break
    }
    return words
}

