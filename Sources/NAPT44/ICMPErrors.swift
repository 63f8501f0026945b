import NATCore
import NATWire

extension NAPT44Engine {
    /// Translates an ICMP error in either direction (RFC 5508 REQ-3, REQ-4, REQ-5): the outer ICMP
    /// checksum must verify, the embedded packet must be an IPv4 header with a valid checksum and at
    /// least 8 bytes of transport header, and it must belong to a session. The embedded packet is
    /// reverted to what the host on this side sent or received, the embedded IP checksum and the outer
    /// ICMP checksum are updated incrementally, and the session is neither refreshed nor deleted (REQ-6).
    /// Counted as every translated packet is: outbound, inbound, or (the inbound half of a hairpin) hairpinned.
    mutating func translateICMPError(_ ip: MutableIPv4View, inbound: Bool, tenant: UInt32, now: Timestamp,
                                     hairpin: Bool = false) throws(DropReason) -> Verdict {
        let l4 = ip.mutablePayloadPointer
        let n = ip.payloadLength
        guard !ip.isFragment else { throw .malformedICMPError }
        let icmp = MutableICMPv4View(unchecked: l4, count: n)
        guard icmp.isChecksumValid else { throw .badICMPChecksum }
        let embPtr = icmp.mutableBodyPointer
        let embAvail = icmp.bodyLength
        guard embAvail >= IPv4Layout.minimumHeaderLength else { throw .malformedICMPError }
        let emb = MutableIPv4View(unchecked: embPtr, count: embAvail)
        guard emb.version == 4, emb.headerLength >= IPv4Layout.minimumHeaderLength,
              embAvail >= emb.headerLength + 8 else { throw .malformedICMPError }
        guard emb.isChecksumValid else { throw .badEmbeddedPacket }
        let eproto = emb.protocolNumber
        let el4 = emb.mutablePayloadPointer
        let el4Avail = embAvail - emb.headerLength
        var esp: UInt16 = 0, edp: UInt16 = 0
        switch eproto {
        case IPProtocol.tcp, IPProtocol.udp:
            esp = MutableUDPView(unchecked: el4, count: el4Avail).sourcePort
            edp = MutableUDPView(unchecked: el4, count: el4Avail).destinationPort
        case IPProtocol.icmp:
            let eicmp = MutableICMPv4View(unchecked: el4, count: el4Avail)
            guard !eicmp.isError else { throw .icmpErrorAboutICMPError }
            guard eicmp.isQuery else { throw .unsupportedICMPType }
            // The embedded query travelled the other way: its identifier is the host-side "port".
            if inbound { esp = eicmp.identifier } else { edp = eicmp.identifier }
        default:
            throw .unsupportedProtocol
        }
        let esrc = emb.source.rawValue, edst = emb.destination.rawValue
        let sid: UInt32
        if inbound {
            // The embedded packet is one we sent out: outside endpoint → remote.
            sid = table.lookupFromOutside(proto: eproto, outsideAddress: esrc, outsidePort: esp,
                                          remoteAddress: edst, remotePort: edp)
        } else {
            // The embedded packet is one we delivered inside: remote (as seen inside) → inside endpoint.
            sid = table.lookupFromInside(tenant: tenant, proto: eproto, insideAddress: edst, insidePort: edp,
                                         remoteAddress: esrc, remotePort: esp)
            if sid == 0 && isOutside(ip.destination.rawValue) && isOutside(esrc) {
                // RFC 5508 REQ-3, RFC 1191: an error from an inside address to one of our outside addresses
                // about a packet already translated outbound: the NAT host's own kernel (Fragmentation Needed
                // when the outside link's MTU is below the TUN device's) answers from its inside-interface
                // address. It belongs to the session the embedded packet left by: translate it inbound.
                return try translateICMPError(ip, inbound: true, tenant: tenant, now: now)
            }
        }
        guard sid != 0 else { throw .noSessionForICMPError }
        let s = table.sessions[Int(sid)]
        // New embedded and outer values.
        let newES, newED: UInt32
        let newESP, newEDP: UInt16
        let newOuterSource, newOuterDestination: UInt32
        if inbound {
            newES = s.insideAddress; newESP = s.insidePort
            newED = s.viaAddress; newEDP = eproto == IPProtocol.icmp ? 0 : s.viaPort
            newOuterSource = ip.source.rawValue == s.remoteAddress ? s.viaAddress : ip.source.rawValue
            newOuterDestination = s.insideAddress
        } else {
            newES = s.remoteAddress; newESP = eproto == IPProtocol.icmp ? 0 : s.remotePort
            newED = s.outsideAddress; newEDP = s.outsidePort
            newOuterSource = s.outsideAddress
            newOuterDestination = ip.destination.rawValue == s.viaAddress ? s.remoteAddress : ip.destination.rawValue
        }
        // Embedded IP header: addresses and its checksum; every changed word also changes the outer ICMP sum.
        var outer = ChecksumDelta()
        let oldEmbSum = emb.checksum
        let ed = rewriteAddresses(emb, source: newES, destination: newED)
        outer.add(ed)
        outer.replace(oldEmbSum, with: emb.checksum)
        // Embedded transport header (its checksum only if it was quoted).
        let words = rewriteTransport(proto: eproto, el4, available: el4Avail, addressDelta: ed,
                                     sourcePort: newESP, destinationPort: newEDP, icmpIdentifierIsSource: inbound)
        outer.add(words)
        icmp.applyDelta(outer)
        _ = rewriteAddresses(ip, source: newOuterSource, destination: newOuterDestination)
        counters.icmpErrorsTranslated &+= 1
        if inbound {
            if hairpin {
                counters.hairpinnedPackets &+= 1
            } else {
                counters.inboundPackets &+= 1
                counters.inboundBytes &+= UInt64(ip.count)
            }
            return .toInside(tenant: s.tenant)
        }
        counters.outboundPackets &+= 1
        counters.outboundBytes &+= UInt64(ip.count)
        if configuration.hairpinning && !deferHairpinning && isOutside(newOuterDestination) {
            // RFC 5508 REQ-7: hairpinned ICMP errors.
            return try translateICMPError(ip, inbound: true, tenant: 0, now: now, hairpin: true)
        }
        return .toOutside
    }

    // MARK: Generated messages

    /// Builds an ICMP error about a packet into the outbox (RFC 1812 §4.3.2: quote as much as fits in
    /// 576 bytes; never about an ICMP error or a non-first fragment), rate-limited.
    mutating func sendICMPError(about original: UnsafeRawPointer, length: Int, type: UInt8, code: UInt8,
                                restOfHeader: UInt32 = 0, source: UInt32? = nil, destination: UInt32, verdict: Verdict) {
        let orig = IPv4View(unchecked: original, count: length)
        guard length >= IPv4Layout.minimumHeaderLength, !orig.isNonFirstFragment else { return }
        if orig.protocolNumber == IPProtocol.icmp && length >= orig.headerLength + 1
            && ICMPv4Type.isError(original.load(fromByteOffset: orig.headerLength, as: UInt8.self)) { return }
        let sec = lastNow.seconds
        if sec != icmpTokenSecond {
            icmpTokenSecond = sec
            icmpTokens = configuration.limits.icmpErrorsPerSecond
        }
        guard icmpTokens > 0 else {
            counters.recordDrop(.icmpRateLimited)
            return
        }
        guard let slot = outbox.reserve() else {
            counters.recordDrop(.outboxFull)
            return
        }
        icmpTokens -= 1
        let quote = min(length, 576 - IPv4Layout.minimumHeaderLength - ICMPv4Layout.headerLength)
        let total = IPv4Layout.minimumHeaderLength + ICMPv4Layout.headerLength + quote
        let h = IPv4Header(protocolNumber: IPProtocol.icmp, source: IPv4Address(source ?? icmpSource),
                           destination: IPv4Address(destination), ttl: 64)
        h.emit(into: slot, totalLength: total)
        let msg = UnsafeMutableRawBufferPointer(rebasing: slot[IPv4Layout.minimumHeaderLength..<total])
        ICMPv4Header(type: type, code: code, restOfHeader: restOfHeader).emit(into: msg)
        (msg.baseAddress! + ICMPv4Layout.headerLength).copyMemory(from: original, byteCount: quote)
        MutableICMPv4View(unchecked: msg.baseAddress!, count: msg.count).updateChecksum()
        outbox.commit(length: total, verdict: verdict)
        counters.icmpErrorsGenerated &+= 1
    }

    /// Turns an echo request to one of our addresses into its reply, in place.
    mutating func answerEcho(_ ip: MutableIPv4View, _ t: IncomingTuple) {
        let icmp = MutableICMPv4View(unchecked: t.l4, count: t.l4Length)
        icmp.setType(ICMPv4Type.echoReply)
        icmp.updateChecksum()
        ip.setSource(IPv4Address(t.destination))
        ip.setDestination(IPv4Address(t.source))
        ip.setTTL(64)
        ip.updateChecksum()
    }

    // MARK: Unsolicited SYNs (RFC 5382 REQ-4)

    static func synKey(outside: UInt32, outsidePort: UInt16, remote: UInt32, remotePort: UInt16) -> (UInt64, UInt64) {
        (UInt64(outside) << 32 | UInt64(remote), UInt64(outsidePort) << 16 | UInt64(remotePort))
    }

    /// Holds an unsolicited inbound SYN for 6 s; if no outbound SYN for the connection comes, it is answered
    /// with ICMP 3/3 or dropped, by policy. A full hold table drops the SYN at once.
    mutating func holdSYN(_ ip: MutableIPv4View, _ t: IncomingTuple, now: Timestamp) throws(DropReason) -> Admission {
        let (a, b) = Self.synKey(outside: t.destination, outsidePort: t.destinationPort, remote: t.source, remotePort: t.sourcePort)
        if heldSYNs.contains(keyA: a, keyB: b) { throw .unsolicitedSYN }
        guard heldSYNs.hold(UnsafeRawBufferPointer(start: ip.pointer, count: ip.count), keyA: a, keyB: b,
                            deadline: now.milliseconds &+ configuration.timeouts.synHoldMilliseconds) else {
            throw .unsolicitedSYN
        }
        counters.synsHeld &+= 1
        return .held
    }

    mutating func expireHeldSYNs(now: Timestamp) {
        let ms = now.milliseconds
        while let slot = heldSYNs.firstExpired(now: ms) {
            let bytes = heldSYNs.bytes(slot)
            if configuration.unsolicitedSYN == .icmpPortUnreachable, bytes.count >= IPv4Layout.minimumHeaderLength {
                let v = IPv4View(unchecked: bytes.baseAddress!, count: bytes.count)
                sendICMPError(about: bytes.baseAddress!, length: bytes.count, type: ICMPv4Type.destinationUnreachable,
                              code: ICMPv4UnreachableCode.port, source: v.destination.rawValue,
                              destination: v.source.rawValue, verdict: .toOutside)
            }
            counters.recordDrop(.unsolicitedSYN)
            heldSYNs.remove(slot)
        }
    }

    /// Unsolicited SYNs held right now.
    public var heldSYNCount: Int { heldSYNs.count }
}
