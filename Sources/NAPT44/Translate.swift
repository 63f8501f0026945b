import NATCore
import NATWire

/// The incoming tuple of a packet (RFC 6146 §3.4 "determine the incoming tuple"). For ICMP queries the
/// identifier stands in for the port on the host's side and the remote "port" is 0.
@usableFromInline
struct IncomingTuple {
    var proto: UInt8
    var source: UInt32
    var destination: UInt32
    var sourcePort: UInt16
    var destinationPort: UInt16
    var tcpFlags: UInt8
    var l4: UnsafeMutableRawPointer
    var l4Length: Int
    var isFirstFragment: Bool
}

extension NAPT44Engine {
    /// Reads the tuple; throws for a malformed transport header. ICMP errors and unknown protocols are
    /// reported through `icmpError` / nil for the caller to route.
    @inline(__always)
    func incomingTuple(_ ip: MutableIPv4View, inbound: Bool) throws(DropReason) -> IncomingTuple? {
        let proto = ip.protocolNumber
        let l4 = ip.mutablePayloadPointer
        let n = ip.payloadLength
        let fragmented = ip.moreFragments
        var t = IncomingTuple(proto: proto, source: ip.source.rawValue, destination: ip.destination.rawValue,
                              sourcePort: 0, destinationPort: 0, tcpFlags: 0, l4: l4, l4Length: n,
                              isFirstFragment: fragmented)
        switch proto {
        case IPProtocol.tcp:
            guard n >= TCPLayout.minimumHeaderLength else { throw .badTransportHeader }
            let tcp = MutableTCPView(unchecked: l4, count: n)
            guard tcp.headerLength >= TCPLayout.minimumHeaderLength, fragmented || tcp.headerLength <= n else { throw .badTransportHeader }
            t.sourcePort = tcp.sourcePort
            t.destinationPort = tcp.destinationPort
            t.tcpFlags = tcp.flags.rawValue
        case IPProtocol.udp:
            guard n >= UDPLayout.headerLength else { throw .badTransportHeader }
            let udp = MutableUDPView(unchecked: l4, count: n)
            if !fragmented {
                guard udp.length >= UDPLayout.headerLength, udp.length <= n else { throw .badTransportHeader }
            }
            t.sourcePort = udp.sourcePort
            t.destinationPort = udp.destinationPort
        case IPProtocol.icmp:
            guard n >= ICMPv4Layout.headerLength else { throw .badTransportHeader }
            let icmp = MutableICMPv4View(unchecked: l4, count: n)
            let type = icmp.type
            if ICMPv4Type.isError(type) { return nil }
            guard ICMPv4Type.isQueryRequest(type) || ICMPv4Type.isQueryReply(type) else { throw .unsupportedICMPType }
            if inbound { t.destinationPort = icmp.identifier } else { t.sourcePort = icmp.identifier }
        default:
            return nil
        }
        return t
    }

    // MARK: Outbound

    mutating func outbound(_ ip: MutableIPv4View, tenant: UInt32, now: Timestamp) throws(DropReason) -> Verdict {
        if ip.isNonFirstFragment { return try followFragment(ip, inbound: false, tenant: tenant, now: now) }
        guard let t = try incomingTuple(ip, inbound: false) else {
            if ip.protocolNumber == IPProtocol.icmp { return try translateICMPError(ip, inbound: false, tenant: tenant, now: now) }
            return try statelessOneToOne(ip, inbound: false, tenant: tenant)
        }
        let nowS = now.sessionSeconds
        var sid = table.lookupFromInside(tenant: tenant, proto: t.proto, insideAddress: t.source, insidePort: t.sourcePort,
                                         remoteAddress: t.destination, remotePort: t.destinationPort)
        if sid == 0 {
            sid = try createOutboundSession(t, ip: ip, tenant: tenant, now: now)
        } else if t.proto == IPProtocol.tcp {
            tcpTransition(sid, flags: t.tcpFlags, outbound: true, now: nowS)
        } else {
            table.touch(sid, now: nowS)
        }
        let s = table.sessions + Int(sid)
        let originalSource = t.source, originalDestination = t.destination
        let newDestination = s.pointee.remoteAddress
        let d = rewriteAddresses(ip, source: s.pointee.outsideAddress, destination: newDestination)
        rewriteTransport(proto: t.proto, t.l4, available: t.l4Length, addressDelta: d,
                         sourcePort: s.pointee.outsidePort, destinationPort: t.proto == IPProtocol.icmp ? 0 : s.pointee.remotePort,
                         icmpIdentifierIsSource: true)
        if s.pointee.flags & SessionRecord.flagHelped != 0,
           try helpOutbound(ip, sid: sid, insideAddress: originalSource, now: now) {
            // Resized: the rewritten copy leaves from the outbox.
            counters.outboundPackets &+= 1
            counters.outboundBytes &+= UInt64(ip.count)
            return .held
        }
        counters.outboundPackets &+= 1
        counters.outboundBytes &+= UInt64(ip.count)
        var verdict = Verdict.toOutside
        if isOutside(newDestination) && !deferHairpinning {
            verdict = configuration.hairpinning ? try inbound(ip, now: now, hairpin: true) : .toOutside
        }
        if t.isFirstFragment {
            recordFragmentFlow(ip, originalSource: originalSource, originalDestination: originalDestination,
                               inbound: false, keyTenant: tenant, verdict: verdict, now: now)
        }
        return verdict
    }

    // MARK: Inbound

    mutating func inbound(_ ip: MutableIPv4View, now: Timestamp, hairpin: Bool) throws(DropReason) -> Verdict {
        if ip.isNonFirstFragment { return try followFragment(ip, inbound: true, tenant: 0, now: now) }
        guard let t = try incomingTuple(ip, inbound: true) else {
            if ip.protocolNumber == IPProtocol.icmp { return try translateICMPError(ip, inbound: true, tenant: 0, now: now, hairpin: hairpin) }
            return try statelessOneToOne(ip, inbound: true, tenant: 0)
        }
        let nowS = now.sessionSeconds
        var sid = table.lookupFromOutside(proto: t.proto, outsideAddress: t.destination, outsidePort: t.destinationPort,
                                          remoteAddress: t.source, remotePort: t.sourcePort)
        if sid == 0 {
            switch try admitInbound(t, ip: ip, now: now, hairpin: hairpin) {
            case .session(let id): sid = id
            case .held: return .held
            case .answered: return .toOutside
            }
        } else if t.proto == IPProtocol.tcp {
            tcpTransition(sid, flags: t.tcpFlags, outbound: false, now: nowS)
        } else if configuration.inboundRefresh {
            table.touch(sid, now: nowS)
        }
        let s = table.sessions + Int(sid)
        let originalSource = t.source, originalDestination = t.destination
        let d = rewriteAddresses(ip, source: s.pointee.viaAddress, destination: s.pointee.insideAddress)
        rewriteTransport(proto: t.proto, t.l4, available: t.l4Length, addressDelta: d,
                         sourcePort: t.proto == IPProtocol.icmp ? 0 : s.pointee.viaPort, destinationPort: s.pointee.insidePort,
                         icmpIdentifierIsSource: false)
        if s.pointee.flags & SessionRecord.flagHelped != 0 { helpInbound(ip, sid: sid) }
        if hairpin {
            counters.hairpinnedPackets &+= 1
        } else {
            counters.inboundPackets &+= 1
            counters.inboundBytes &+= UInt64(ip.count)
        }
        let verdict = Verdict.toInside(tenant: s.pointee.tenant)
        if t.isFirstFragment && !hairpin {
            recordFragmentFlow(ip, originalSource: originalSource, originalDestination: originalDestination,
                               inbound: true, keyTenant: 0, verdict: verdict, now: now)
        }
        return verdict
    }

    // MARK: TCP state machine (RFC 6146 §3.5.2.2, RFC 7857 §2.1)

    /// The shared RFC 6146 §3.5.2 / RFC 7857 §2.1 state machine (NATCore), applied to one session.
    @inline(__always)
    mutating func tcpTransition(_ sid: UInt32, flags raw: UInt8, outbound: Bool, now: UInt32) {
        table.tcpTransition(sid, flags: TCPFlags(rawValue: raw), fromInside: outbound, now: now)
    }

    /// A new session's state (shared with NAT64): SYN opens it, anything else is picked up mid-stream
    /// (for example after a restart) and stays transitory until the other side answers.
    static func initialTCPState(flags raw: UInt8, outbound: Bool) -> (TCPState, TimerClass) {
        (TCPState.initial(flags: TCPFlags(rawValue: raw), fromInside: outbound), .tcpTransitory)
    }

    @inline(__always)
    static func timerClass(for proto: UInt8) -> TimerClass {
        switch proto {
        case IPProtocol.udp: .udp
        case IPProtocol.icmp: .icmp
        case IPProtocol.tcp: .tcpTransitory
        default: .other
        }
    }
}
