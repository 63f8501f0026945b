import NATCore
import NATWire

/// The TCP sequence offset of one direction of a helped session, kept as Linux's `nf_nat_seq_adjust`
/// keeps it: the (original) sequence number of the last segment whose payload a helper resized, the
/// offset before it and the offset after it. A segment at or before that point (a retransmission of the
/// rewritten segment included) gets the offset before; anything later, the offset after.
public struct SequenceOffset: Sendable, Equatable {
    public var correctionPosition: UInt32 = 0
    public var before: Int32 = 0
    public var after: Int32 = 0

    public init() {}

    /// The offset to add to a segment's sequence number (its original one).
    @inlinable public func offset(forSequence seq: UInt32) -> Int32 {
        TCPSegmentEdit.after(seq, correctionPosition) ? after : before
    }

    /// The offset to subtract from an acknowledgment (or SACK edge) the other side sent, which is in
    /// the rewritten sequence space.
    @inlinable public func offset(forAcknowledgment ack: UInt32) -> Int32 {
        TCPSegmentEdit.after(ack &- UInt32(bitPattern: before), correctionPosition) ? after : before
    }

    /// Records that the segment starting at (original) `seq` changed length by `delta`. A retransmission
    /// of the same segment (same `seq`) rewritten again records nothing new.
    public mutating func record(rewriteAt seq: UInt32, delta: Int32) {
        guard delta != 0 else { return }
        if before == after || TCPSegmentEdit.after(seq, correctionPosition) {
            correctionPosition = seq
            before = after
            after &+= delta
        }
    }

    public var isZero: Bool { before == 0 && after == 0 }
}

/// What a helper keeps per helped session: the sequence offsets of both directions.
public struct HelperState: Sendable, Equatable {
    /// Offsets of the inside host's sequence space (segments going out), and of the remote's (coming in).
    public var outbound = SequenceOffset()
    public var inbound = SequenceOffset()
    public init() {}
}

/// A payload rewrite, at most 64 bytes, built without allocating.
struct HelperText {
    var bytes = InlineArray<64, UInt8>(repeating: 0)
    var count = 0

    mutating func append(_ b: UInt8) {
        if count < 64 { bytes[count] = b }
        count += 1
    }

    mutating func append(_ s: StaticString) {
        s.withUTF8Buffer { for b in $0 { append(b) } }
    }

    mutating func append(decimal v: UInt32) {
        var digits = InlineArray<10, UInt8>(repeating: 0)
        var n = 0, x = v
        repeat { digits[n] = UInt8(48 + x % 10); x /= 10; n += 1 } while x > 0
        while n > 0 { n -= 1; append(digits[n]) }
    }

    var overflowed: Bool { count > 64 }
}

extension NAPT44Engine {
    // MARK: Marking

    /// Whether a new TCP session to `remotePort` is one a helper watches (`[nat44.helpers]`).
    @inline(__always)
    func isHelperPort(_ port: UInt16) -> Bool {
        for p in helperPorts where p == port { return true }
        return false
    }

    /// Flags a new session as helped and gives it its sequence state; beyond `max_helped_sessions` it
    /// stays unhelped.
    mutating func markHelped(_ sid: UInt32) {
        guard helped.count < configuration.helpers.maxHelpedSessions else { return }
        helped[sid] = HelperState()
        table.sessions[Int(sid)].flags |= SessionRecord.flagHelped
    }

    /// Whether a packet (a GSO super-packet or one with a partial checksum) must reach the engine as a
    /// plain packet with a complete checksum: a TCP segment to or from a helper port, whose payload a
    /// helper may rewrite. The runtime asks this only of offloaded packets.
    public func needsPlainPacket(_ packet: UnsafeMutableRawBufferPointer) -> Bool {
        guard !helperPorts.isEmpty, let k = Self.peekKey(packet), k.proto == IPProtocol.tcp else { return false }
        return isHelperPort(WireKey.first(k.ports)) || isHelperPort(WireKey.second(k.ports))
    }

    /// The state of a helped session (tests, `swiftnat sessions`).
    public func helperState(session sid: UInt32) -> HelperState? { helped[sid] }

    /// The live expectations, for listing (allocates).
    public func liveExpectations() -> [Expectation] { expectations.live(now: lastNow.seconds) }

    /// Ends a helped session's helper state and the expectations it announced.
    mutating func endHelped(_ sid: UInt32, now: UInt32) {
        helped.removeValue(forKey: sid)
        expectations.removeAll(master: sid, now: now)
    }

    // MARK: The helped path

    /// An outbound segment of a helped session, already translated (addresses and ports): sequence and
    /// acknowledgment numbers and SACK blocks corrected, and the FTP payload rewritten. Returns true when
    /// the segment changed length and its rewritten copy went to the outbox (the caller reports `.held`).
    mutating func helpOutbound(_ ip: MutableIPv4View, sid: UInt32, insideAddress: UInt32, now: Timestamp) throws(DropReason) -> Bool {
        guard !ip.isFragment, var st = helped[sid] else { return false }
        let tcp = ip.mutablePayloadPointer
        let length = ip.payloadLength
        let hl = TCPSegmentEdit.headerLength(tcp)
        guard hl >= TCPLayout.minimumHeaderLength, hl <= length else { return false }
        let seq = TCPSegmentEdit.sequenceNumber(tcp)
        var text = HelperText()
        var replaced = 0, at = 0
        if length > hl {
            (at, replaced) = ftpOutbound(UnsafeRawBufferPointer(start: tcp + hl, count: length - hl), sid: sid,
                                   insideAddress: insideAddress, now: now, into: &text)
        }
        let seqOffset = st.outbound.offset(forSequence: seq)
        let inbound = st.inbound
        if seqOffset != 0 { TCPSegmentEdit.setSequenceNumber(tcp, seq &+ UInt32(bitPattern: seqOffset)) }
        if !inbound.isZero {
            if TCPSegmentEdit.hasACK(tcp) {
                let ack = TCPSegmentEdit.acknowledgmentNumber(tcp)
                TCPSegmentEdit.setAcknowledgmentNumber(tcp, ack &- UInt32(bitPattern: inbound.offset(forAcknowledgment: ack)))
            }
            TCPSegmentEdit.rewriteSACKEdges(tcp, length: length) { $0 &- UInt32(bitPattern: inbound.offset(forAcknowledgment: $0)) }
        }
        let changed = replaced > 0 || seqOffset != 0 || !inbound.isZero
        guard replaced > 0 else {
            if changed { TCPSegmentEdit.recomputeChecksum(UnsafeMutableRawBufferPointer(start: tcp, count: length), source: ip.source, destination: ip.destination) }
            return false
        }
        counters.helperRewrites &+= 1
        let delta = text.count - replaced
        st.outbound.record(rewriteAt: seq, delta: Int32(delta))
        helped[sid] = st
        if delta == 0 {
            for i in 0..<text.count { tcp.storeBytes(of: text.bytes[i], toByteOffset: hl + at + i, as: UInt8.self) }
            TCPSegmentEdit.recomputeChecksum(UnsafeMutableRawBufferPointer(start: tcp, count: length), source: ip.source, destination: ip.destination)
            return false
        }
        try emitResized(ip, tcpHeaderLength: hl + at, text: text, replaced: replaced)
        return true
    }

    /// Builds the rewritten segment in the outbox: IP and TCP headers (and the payload up to the command,
    /// all within `hl` bytes of the TCP header's start) as they are, `text` in place of the next `replaced`
    /// bytes, the rest after it; lengths and checksums recomputed.
    mutating func emitResized(_ ip: MutableIPv4View, tcpHeaderLength hl: Int, text: HelperText, replaced: Int) throws(DropReason) {
        let ihl = ip.headerLength
        let newCount = ip.count + text.count - replaced
        guard newCount <= outbox.slotSize, newCount <= 65535 else { throw .helperRewriteTooLarge }
        guard let out = outbox.reserve(), let o = out.baseAddress else { throw .outboxFull }
        let src = UnsafeRawPointer(ip.mutablePointer)
        o.copyMemory(from: src, byteCount: ihl + hl)
        for i in 0..<text.count { o.storeBytes(of: text.bytes[i], toByteOffset: ihl + hl + i, as: UInt8.self) }
        let rest = ip.count - ihl - hl - replaced
        if rest > 0 { (o + ihl + hl + text.count).copyMemory(from: src + ihl + hl + replaced, byteCount: rest) }
        let v = MutableIPv4View(unchecked: o, count: newCount)
        v.setTotalLength(newCount)
        TCPSegmentEdit.recomputeIPv4HeaderChecksum(o, headerLength: ihl)
        TCPSegmentEdit.recomputeChecksum(UnsafeMutableRawBufferPointer(start: o + ihl, count: newCount - ihl),
                                         source: v.source, destination: v.destination)
        outbox.commit(length: newCount, verdict: .toOutside)
    }

    /// An inbound segment of a helped session, already translated: its sequence number shifted by the
    /// remote's offsets (none yet: no inbound rewrite in this slice), its acknowledgment and SACK edges
    /// taken back into the inside host's original sequence space.
    mutating func helpInbound(_ ip: MutableIPv4View, sid: UInt32) {
        guard !ip.isFragment, let st = helped[sid], !(st.outbound.isZero && st.inbound.isZero) else { return }
        let tcp = ip.mutablePayloadPointer
        let length = ip.payloadLength
        let hl = TCPSegmentEdit.headerLength(tcp)
        guard hl >= TCPLayout.minimumHeaderLength, hl <= length else { return }
        let seq = TCPSegmentEdit.sequenceNumber(tcp)
        let seqOffset = st.inbound.offset(forSequence: seq)
        if seqOffset != 0 { TCPSegmentEdit.setSequenceNumber(tcp, seq &+ UInt32(bitPattern: seqOffset)) }
        let outbound = st.outbound
        if TCPSegmentEdit.hasACK(tcp) {
            let ack = TCPSegmentEdit.acknowledgmentNumber(tcp)
            TCPSegmentEdit.setAcknowledgmentNumber(tcp, ack &- UInt32(bitPattern: outbound.offset(forAcknowledgment: ack)))
        }
        TCPSegmentEdit.rewriteSACKEdges(tcp, length: length) { $0 &- UInt32(bitPattern: outbound.offset(forAcknowledgment: $0)) }
        TCPSegmentEdit.recomputeChecksum(UnsafeMutableRawBufferPointer(start: tcp, count: length), source: ip.source, destination: ip.destination)
    }

    // MARK: Expectations

    /// Announces the connection the remote of session `sid` will open to `insideAddress:insidePort`:
    /// picks an outside port on the session's outside address (the inside port when free) and records the
    /// expectation. Returns the outside port, or nil (refused: counted).
    mutating func expect(master sid: UInt32, insideAddress: UInt32, insidePort: UInt16, now: Timestamp) -> UInt16? {
        let s = table.sessions[Int(sid)]
        let nowS = now.seconds
        if let old = expectations.find(master: sid, proto: IPProtocol.tcp, insideAddress: insideAddress, insidePort: insidePort, now: nowS) {
            // The same announcement again (a retransmission): the same port, its wait restarted.
            var e = old
            e.expiry = nowS &+ configuration.helpers.expectationTimeout
            _ = expectations.add(e, now: nowS)
            return old.outsidePort
        }
        var preferred = insidePort
        for _ in 0..<8 {
            guard let port = allocatePort(proto: IPProtocol.tcp, address: s.outsideAddress, preferred: preferred, tenant: s.tenant,
                                          inside: insideAddress, remote: s.remoteAddress, remotePort: 0) else { break }
            if !expectations.holds(proto: IPProtocol.tcp, outsideAddress: s.outsideAddress, outsidePort: port, now: nowS) {
                let e = Expectation(proto: IPProtocol.tcp, remoteAddress: s.remoteAddress, remotePort: 0,
                                    outsideAddress: s.outsideAddress, outsidePort: port, insideAddress: insideAddress,
                                    insidePort: insidePort, tenant: s.tenant, master: sid,
                                    expiry: nowS &+ configuration.helpers.expectationTimeout)
                guard expectations.add(e, now: nowS) == .added else { break }
                counters.expectationsCreated &+= 1
                return port
            }
            preferred = port == .max ? 1024 : port &+ 1
        }
        counters.expectationsRefused &+= 1
        return nil
    }

    /// An inbound SYN that an expectation announced: a mapping to the announced inside endpoint on the
    /// expected outside port, and a session in it (related to the expectation's master).
    mutating func admitExpected(_ e: Expectation, _ t: IncomingTuple, now: Timestamp) throws(DropReason) -> UInt32 {
        guard table.lookupMapping(proto: t.proto, outsideAddress: e.outsideAddress, outsidePort: e.outsidePort) == 0 else {
            throw .expectedPortTaken
        }
        if table.isSessionTableFull { expire(now: now) }
        guard !table.isSessionTableFull, !table.isMappingTableFull else { throw .sessionTableFull }
        guard let host = table.host(tenant: e.tenant, address: e.insideAddress) else { throw .hostTableFull }
        if let l = maxSessionsPerHost, Int(table.hosts[Int(host)].sessions) >= l {
            table.releaseHostIfIdle(host)
            throw .hostSessionLimit
        }
        var rec = MappingRecord()
        rec.insideAddress = e.insideAddress
        rec.insidePort = e.insidePort
        rec.outsideAddress = e.outsideAddress
        rec.outsidePort = e.outsidePort
        rec.tenant = e.tenant
        rec.proto = e.proto
        guard let mid = table.createMapping(rec) else { table.releaseHostIfIdle(host); throw .mappingTableFull }
        table.hosts[Int(host)].ports += 1
        counters.mappingsCreated &+= 1
        if mappingEvents != nil { recordMappingEvent(.created, rec, remoteAddress: t.source, remotePort: t.sourcePort) }
        let (state, timer) = Self.initialTCPState(flags: t.tcpFlags, outbound: false)
        guard let sid = table.createSession(mapping: mid, remoteAddress: t.source, remotePort: t.sourcePort,
                                            viaAddress: t.source, viaPort: t.sourcePort, timerClass: timer,
                                            state: state.rawValue, now: now.sessionSeconds) else {
            table.releaseMapping(mid, holdUntil: 0)
            table.releaseHostIfIdle(host)
            throw .sessionTableFull
        }
        table.hosts[Int(host)].sessions += 1
        counters.sessionsCreated &+= 1
        counters.expectationsUsed &+= 1
        return sid
    }
}
