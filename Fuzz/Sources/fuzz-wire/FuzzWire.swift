import FuzzSupport
import NATWire

// Every validating view of NATWire over the input (IPv4, IPv6 with its extension chain, TCP, UDP, ICMPv4,
// ICMPv6, GRE), then every accessor and the writers over a copy, and IPv4Peek/IPPeek: nothing traps, and
// what a view reports stays inside the bytes it was made over.

let ip6A = IPv6Address(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)
let ip6B = IPv6Address(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)
let ip4B = IPv4Address(198, 51, 100, 7)

func sub(_ b: UnsafeMutableRawBufferPointer, _ from: Int, _ count: Int) -> UnsafeMutableRawBufferPointer {
    UnsafeMutableRawBufferPointer(rebasing: b[from..<(from + count)])
}

func touch(_ v: some IPv4Readable) -> Int {
    check(v.headerLength >= 20 && v.headerLength <= v.count && v.payloadLength >= 0, "IPv4 lengths \(v.headerLength) \(v.count)")
    var s = Int(v.version) + Int(v.tos) + Int(v.dscp) + Int(v.ecn) + v.totalLength + Int(v.identification)
    s += Int(v.flagsAndOffset) + (v.dontFragment ? 1 : 0) + (v.moreFragments ? 1 : 0) + v.fragmentOffset
    s += (v.isFragment ? 1 : 0) + (v.isNonFirstFragment ? 1 : 0) + Int(v.ttl) + Int(v.protocolNumber)
    s += Int(v.checksum) + Int(v.source.rawValue & 0xFF) + Int(v.destination.rawValue & 0xFF)
    s += (v.hasOptions ? 1 : 0) + v.payloadOffset + (v.isChecksumValid ? 1 : 0) + v.options.count
    s += IPv4Header(v).headerLength
    return s
}

func touch(_ v: some TCPReadable) -> Int {
    check(v.headerLength >= 20 && v.headerLength <= v.count, "TCP header length \(v.headerLength) of \(v.count)")
    var s = Int(v.sourcePort) + Int(v.destinationPort) + Int(v.sequenceNumber & 0xFF) + Int(v.acknowledgmentNumber & 0xFF)
    s += Int(v.flags.rawValue) + Int(v.window) + Int(v.checksum) + Int(v.urgentPointer) + v.payloadLength
    s += v.options.count + (v.mssOptionOffset ?? 0) + TCPHeader(v).headerLength
    if let o = v.mssOptionOffset { check(o + 2 <= v.headerLength, "MSS option at \(o) beyond \(v.headerLength)") }
    return s
}

func touch(_ v: some UDPReadable) -> Int {
    check(v.length == v.count && v.payloadLength >= 0, "UDP length \(v.length) of \(v.count)")
    return Int(v.sourcePort) + Int(v.destinationPort) + v.length + Int(v.checksum) + (v.hasChecksum ? 1 : 0) + Int(UDPHeader(v).sourcePort)
}

func touch(_ v: some ICMPv4Readable) -> Int {
    check(v.bodyLength >= 0, "ICMP body length")
    var s = Int(v.type) + Int(v.code) + Int(v.checksum) + Int(v.identifier) + Int(v.sequenceNumber)
    s += Int(v.restOfHeader & 0xFF) + Int(v.parameterPointer) + Int(v.nextHopMTU) + Int(v.gateway.rawValue & 0xFF)
    s += (v.isError ? 1 : 0) + (v.isQuery ? 1 : 0) + (v.isChecksumValid ? 1 : 0) + Int(ICMPv4Header(v).type)
    return s
}

func touch(_ v: some ICMPv6Readable) -> Int {
    check(v.bodyLength >= 0, "ICMPv6 body length")
    var s = Int(v.type) + Int(v.code) + Int(v.checksum) + Int(v.identifier) + Int(v.sequenceNumber)
    s += Int(v.restOfHeader & 0xFF) + Int(v.mtu & 0xFF) + Int(v.parameterPointer & 0xFF)
    s += (v.isError ? 1 : 0) + (v.isEcho ? 1 : 0) + (v.targetAddress == nil ? 0 : 1)
    s += (v.isChecksumValid(source: ip6A, destination: ip6B) ? 1 : 0) + Int(ICMPv6Header(v).code)
    return s
}

func touch(_ v: some GREReadable) -> Int {
    check(v.headerLength >= 4 && v.headerLength <= v.count && v.payloadLength >= 0, "GRE header length \(v.headerLength) of \(v.count)")
    var s = Int(v.flagsAndVersion) + Int(v.version) + Int(v.protocolType) + v.keyOffset + v.sequenceOffset
    s += v.acknowledgmentOffset + Int(v.checksum ?? 0) + Int((v.key ?? 0) & 0xFF) + Int((v.sequenceNumber ?? 0) & 0xFF)
    s += Int((v.acknowledgmentNumber ?? 0) & 0xFF) + Int(v.callID ?? 0) + (v.pptpPayloadLength ?? 0)
    s += (v.isChecksumValid ? 1 : 0) + (v.isEnhanced ? 1 : 0) + GREHeader(v).headerLength
    return s
}

func touch(_ v: some IPv6Readable) -> Int {
    check(v.count >= 40 && v.payloadLength >= 0, "IPv6 lengths")
    var s = Int(v.version) + Int(v.trafficClass) + Int(v.dscp) + Int(v.ecn) + Int(v.flowLabel) + v.payloadLengthField
    s += Int(v.nextHeader) + Int(v.hopLimit) + Int(v.source.low & 0xFF) + Int(v.destination.low & 0xFF)
    s += IPv6Header(v).headerLength
    if let chain = try? v.walkExtensionHeaders() {
        check(chain.upperLayerOffset >= 40 && chain.upperLayerOffset <= v.count, "upper layer at \(chain.upperLayerOffset) of \(v.count)")
        check(chain.extensionHeaderCount <= IPv6Layout.maximumExtensionHeaders, "extension header count")
        if let f = chain.fragmentHeaderOffset { check(f + 8 <= v.count, "fragment header beyond the packet") }
        if let r = chain.routingHeaderOffset { check(r + 8 <= v.count, "routing header beyond the packet") }
        s += chain.upperLayerOffset + Int(chain.upperLayerProtocol)
    }
    return s
}

func transport(_ q: UnsafeMutableRawBufferPointer, ipv6: Bool) -> Int {
    var s = 0
    let r = UnsafeRawBufferPointer(q)
    if let v = try? TCPView(validating: r) { s += touch(v) }
    if let v = try? UDPView(validating: r) { s += touch(v) }
    if let v = try? ICMPv4View(validating: r) { s += touch(v) }
    if let v = try? ICMPv6View(validating: r) { s += touch(v) }
    if let v = try? GREView(validating: r) { s += touch(v) }
    if let t = try? MutableTCPView(validating: q) {
        t.clampMSS(to: 536)
        t.rewriteSourcePort(1, delta: ChecksumDelta())
        s += touch(t)
    }
    if let u = try? MutableUDPView(validating: q) { u.rewriteDestinationPort(2, delta: ChecksumDelta()); s += touch(u) }
    if ipv6, let i = try? MutableICMPv6View(validating: q) {
        i.rewriteIdentifier(3)
        i.updateChecksum(source: ip6A, destination: ip6B)
        check(i.isChecksumValid(source: ip6A, destination: ip6B), "ICMPv6 checksum wrong after updateChecksum")
    } else if let i = try? MutableICMPv4View(validating: q) {
        i.rewriteIdentifier(3)
    }
    if let g = try? MutableGREView(validating: q) {
        g.rewriteCallID(4)
        g.rewriteKey(5)
        g.setSequenceNumber(6)
        g.setAcknowledgmentNumber(7)
        g.updateChecksum()
        check(g.isChecksumValid, "GRE checksum wrong after updateChecksum")
        s += touch(g)
    }
    return s
}

func peek(_ p: UnsafeRawBufferPointer) -> Int {
    guard let base = p.baseAddress else { return 0 }
    var s = Int(IPPeek.version(base, count: p.count)) + (IPPeek.isIPv6LinkScope(base, count: p.count) ? 1 : 0)
    var ip = IPv4Peek(base, count: p.count)
    var depth = 0
    while let v = ip, depth < 4 {
        check(v.count >= 20, "IPv4Peek over \(v.count) bytes")
        s += Int(v.source & 1) + Int(v.destination & 1) + Int(v.protocolNumber) + v.headerLength
        s += (v.isLaterFragment ? 1 : 0) + (v.isFirstOfFragments ? 1 : 0) + Int(v.fragmentKey.identification)
        if let x = v.sourcePort { s += Int(x); check(v.headerLength + 2 <= v.count, "sourcePort read past the bytes") }
        if let x = v.destinationPort { s += Int(x); check(v.headerLength + 4 <= v.count, "destinationPort read past the bytes") }
        if let x = v.icmpType { s += Int(x); check(v.headerLength + 1 <= v.count, "icmpType read past the bytes") }
        if let x = v.icmpIdentifier { s += Int(x); check(v.headerLength + 8 <= v.count, "icmpIdentifier read past the bytes") }
        ip = v.quoted
        if let q = ip { check(q.pointer >= v.pointer && q.pointer + q.count == v.pointer + v.count, "quoted datagram outside the packet") }
        depth += 1
    }
    return s
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = input(data, size)
    var s = 0
    withExactCopy(of: bytes) { m in
        let p = UnsafeRawBufferPointer(m)
        s += peek(p)
        if let v = try? IPv4View(validating: p) { s += touch(v) }
        if let v = try? IPv6View(validating: p) { s += touch(v) }
        if let ip = try? MutableIPv4View(validating: m) {
            let wasValid = ip.isChecksumValid
            var d = ChecksumDelta()
            ip.rewriteSource(ip4B, delta: &d)
            ip.rewriteTTL(1)
            // RFC 1624: an incremental update keeps a right header checksum right.
            check(!wasValid || ip.isChecksumValid, "IPv4 header checksum broken by rewriteSource/rewriteTTL")
            s += transport(sub(m, ip.headerLength, ip.payloadLength), ipv6: false)
        }
        if let ip = try? MutableIPv6View(validating: m) {
            var d = ChecksumDelta()
            ip.rewriteDestination(ip6A, delta: &d)
            ip.setFlowLabel(0xFFFFF)
            ip.setTrafficClass(0xFF)
            if let chain = try? ip.walkExtensionHeaders() {
                s += transport(sub(m, chain.upperLayerOffset, ip.count - chain.upperLayerOffset), ipv6: true)
            }
        }
        s += transport(m, ipv6: false)
    }
    return s == Int.min ? 1 : 0
}
