import NATCore
import NATWire

extension NAPT64Mapping {
    // MARK: Timers (RFC 6146 §3.5.1, §3.5.2.2, §3.5.3, §4)

    /// Runs the timers: idle sessions of each class (UDP_DEFAULT, TCP_EST, TCP_TRANS, ICMP_DEFAULT; each
    /// class is a list ordered by last use, so the work is O(1) per session that ends), BIB entries left
    /// without sessions (their ports held for ``Timeouts/portHold``), fragment state, and unsolicited
    /// SYNs whose TCP_INCOMING_SYN ran out (answered with ICMP Port Unreachable or dropped). An ESTABLISHED
    /// session whose TCP_EST ran out is probed and moved to TRANS when probes are on (§3.5.2.2).
    /// Call it regularly; drain ``nextGeneratedPacket()`` (``NAT64Translator/nextOutput()``) after it. When
    /// the outbox (64 slots) fills up, the probes and ICMP errors still due wait for the next call.
    public mutating func expire(now: Timestamp) {
        let nowS = now.seconds
        let timeouts = configuration.timeouts
        for c in [TimerClass.udp, .tcpEstablished, .tcpTransitory, .icmp] {
            let timeout = timeouts.seconds(for: c)
            var sid = table.oldest(c)
            while sid != 0 && table.lastSeen(sid) &+ timeout <= nowS {
                if c == .tcpEstablished && configuration.tcpProbes
                    && table.sessionLinks[Int(sid)].state == TCPState.established.rawValue {
                    // No room for the probe until the outbox is drained: the rest waits for the next call.
                    guard !generated.isFull else { break }
                    sendProbe(sid)
                    table.sessionLinks[Int(sid)].state = TCPState.transitory.rawValue
                    table.setTimerClass(sid, .tcpTransitory, now: now.sessionSeconds)
                } else {
                    endSession(sid, now: nowS)
                    counters.sessionsExpired &+= 1
                }
                sid = table.oldest(c)
            }
        }
        expireRuntimeBindings(now: now)
        table.releaseHeldPorts(now: nowS)
        fragments.expire(now: now.milliseconds)
        expireHeldSYNs(now: now)
    }

    /// Removes a session, and its BIB entry when it was the last one and the entry is not static: the
    /// IPv4 port is held for ``Timeouts/portHold`` unless the TCP connection closed cleanly (RFC 6888
    /// REQ-8). The IPv6 host is forgotten once it has no BIB entries left.
    mutating func endSession(_ sid: UInt32, now: UInt32) {
        let s = table.sessions[Int(sid)]
        let mid = table.removeSession(sid)
        let host = s.insideAddress
        if hosts.records[Int(host)].sessions > 0 { hosts.records[Int(host)].sessions -= 1 }
        let m = table.mappings[Int(mid)]
        if !m.hasSessions && !m.isStatic {
            let clean = s.flags & SessionRecord.flagCleanClose != 0
            let hold = configuration.timeouts.portHold
            unbind(mid, host: host, holdUntil: clean || hold == 0 ? 0 : now &+ hold)
        }
        hosts.releaseIfUnused(host)
    }

    // MARK: Unsolicited SYNs (RFC 6146 §3.5.2.2, TCP_INCOMING_SYN)

    @inlinable @inline(__always)
    static func synKey(outside: UInt32, outsidePort: UInt16, remote: UInt32, remotePort: UInt16) -> (UInt64, UInt64) {
        (UInt64(outside) << 32 | UInt64(remote), UInt64(outsidePort) << 16 | UInt64(remotePort))
    }

    /// Keeps a copy of an unsolicited IPv4 SYN (its first 576 bytes: enough for the ICMP error that may
    /// quote it) for TCP_INCOMING_SYN. False (the SYN is dropped) when the same SYN is kept already or every
    /// slot is taken.
    mutating func holdSYN(_ packet: UnsafeRawBufferPointer, now: Timestamp) -> Bool {
        guard let p = packet.baseAddress, packet.count >= IPv4Layout.minimumHeaderLength,
              p.load(as: UInt8.self) >> 4 == 4 else { return false }
        let hl = Int(p.load(as: UInt8.self) & 0x0F) << 2
        let total = min(packet.count, Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: IPv4Layout.totalLength, as: UInt16.self))))
        guard hl >= IPv4Layout.minimumHeaderLength, hl + 4 <= total else { return false }
        let src = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: IPv4Layout.source, as: UInt32.self))
        let dst = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: IPv4Layout.destination, as: UInt32.self))
        let sp = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: hl, as: UInt16.self))
        let dp = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: hl + 2, as: UInt16.self))
        let (a, b) = Self.synKey(outside: dst, outsidePort: dp, remote: src, remotePort: sp)
        if heldSYNs.contains(keyA: a, keyB: b) { return false }
        return heldSYNs.hold(UnsafeRawBufferPointer(start: p, count: total), keyA: a, keyB: b,
                             deadline: now.milliseconds &+ configuration.timeouts.synHoldMilliseconds)
    }

    /// Unsolicited SYNs whose time ran out: ICMPv4 Port Unreachable (3/3) quoting the SYN, from the
    /// address it was sent to, back to its source (RFC 6146 §3.5.2.2), or nothing (by setting); either way
    /// counted as an `unsolicited_syn` drop.
    mutating func expireHeldSYNs(now: Timestamp) {
        let ms = now.milliseconds
        while let slot = heldSYNs.firstExpired(now: ms) {
            // No room for the ICMP error until the outbox is drained: the SYN waits for the next call.
            if configuration.unsolicitedSYN == .icmpPortUnreachable && generated.isFull { break }
            let bytes = heldSYNs.bytes(slot)
            if configuration.unsolicitedSYN == .icmpPortUnreachable, let p = bytes.baseAddress,
               bytes.count >= IPv4Layout.minimumHeaderLength {
                let src = IPv4Address(UInt32(bigEndian: p.loadUnaligned(fromByteOffset: IPv4Layout.source, as: UInt32.self)))
                let dst = IPv4Address(UInt32(bigEndian: p.loadUnaligned(fromByteOffset: IPv4Layout.destination, as: UInt32.self)))
                sendICMPv4Error(type: ICMPv4Type.destinationUnreachable, code: ICMPv4UnreachableCode.port,
                                source: dst, destination: src, quoting: UnsafeRawBufferPointer(bytes))
            }
            counters.recordDrop(.unsolicitedSYN)
            heldSYNs.remove(slot)
        }
    }

    /// Unsolicited SYNs kept right now.
    public var heldSYNCount: Int { heldSYNs.count }

    // MARK: Generated packets

    /// An ICMPv4 error (RFC 792) into the outbox: as much of the packet as fits in 576 bytes (RFC 1812
    /// §4.3.2.3), TTL 64, DF clear.
    mutating func sendICMPv4Error(type: UInt8, code: UInt8, source: IPv4Address, destination: IPv4Address,
                                  quoting original: UnsafeRawBufferPointer) {
        guard let slot = generated.reserve(), let o = slot.baseAddress, let q = original.baseAddress else {
            counters.recordDrop(.outboxFull)
            return
        }
        let quote = min(original.count, 576 - IPv4Layout.minimumHeaderLength - ICMPv4Layout.headerLength)
        let total = IPv4Layout.minimumHeaderLength + ICMPv4Layout.headerLength + quote
        let id = nextIdentification
        nextIdentification &+= 1
        IPv4Header(protocolNumber: IPProtocol.icmp, source: source, destination: destination, ttl: 64,
                   identification: id).emit(into: slot, totalLength: total)
        let m = o + IPv4Layout.minimumHeaderLength
        let msg = UnsafeMutableRawBufferPointer(start: m, count: total - IPv4Layout.minimumHeaderLength)
        ICMPv4Header(type: type, code: code, restOfHeader: 0).emit(into: msg)
        (m + ICMPv4Layout.headerLength).copyMemory(from: q, byteCount: quote)
        let sum = Checksum.compute(UnsafeRawBufferPointer(msg))
        m.storeBytes(of: sum.bigEndian, toByteOffset: ICMPv4Layout.checksum, as: UInt16.self)
        generated.commit(length: total, verdict: .toOutside)
        counters.icmpErrorsGenerated &+= 1
    }

    /// RFC 6146 §3.5.2.2: the probe of an idle ESTABLISHED connection, sent to its IPv6 host as if from the
    /// IPv4 host: a TCP segment without data, sequence and acknowledgment numbers zero, only ACK set. A live
    /// host answers it (an ACK or an RST), and its answer brings the session back from TRANS.
    mutating func sendProbe(_ sid: UInt32) {
        let s = table.sessions[Int(sid)]
        guard let slot = generated.reserve(), let o = slot.baseAddress else {
            counters.recordDrop(.outboxFull)
            return
        }
        let source = prefix.embedUnchecked(IPv4Address(s.remoteAddress))
        let destination = hosts.address(s.insideAddress)
        let total = IPv6Layout.headerLength + TCPLayout.minimumHeaderLength
        IPv6Header(nextHeader: IPProtocol.tcp, source: source, destination: destination, hopLimit: 64)
            .emit(into: slot, payloadLength: TCPLayout.minimumHeaderLength)
        let seg = UnsafeMutableRawBufferPointer(start: o + IPv6Layout.headerLength, count: TCPLayout.minimumHeaderLength)
        _ = TCPHeader(sourcePort: s.remotePort, destinationPort: s.insidePort, flags: [.ack], sequenceNumber: 0,
                      acknowledgmentNumber: 0, window: 0).emit(into: seg)
        let ph = Checksum.pseudoHeaderSum(source: source, destination: destination, nextHeader: IPProtocol.tcp,
                                          length: TCPLayout.minimumHeaderLength)
        seg.baseAddress!.storeBytes(of: UInt16(0), toByteOffset: TCPLayout.checksum, as: UInt16.self)
        let sum = Checksum.finish(Checksum.sum(UnsafeRawBufferPointer(seg), initial: ph))
        seg.baseAddress!.storeBytes(of: sum.bigEndian, toByteOffset: TCPLayout.checksum, as: UInt16.self)
        generated.commit(length: total, verdict: .toInside(tenant: 0))
        probesSent &+= 1
    }
}
