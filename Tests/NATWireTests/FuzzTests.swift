import Testing
import NATWire

/// Seeded random and mutated buffers through every validating init and every accessor: nothing traps, and
/// what a view reports stays inside the bytes it was made over (so no accessor can read outside them).
@Suite struct FuzzTests {
    static let seeds: [[UInt8]] = [
        Fixtures.udp4DNS, Fixtures.tcp4SYN, Fixtures.icmp4Echo, Fixtures.icmp4Timestamp, Fixtures.icmp4PortUnreachable,
        Fixtures.icmp4Redirect, Fixtures.udp6DNS, Fixtures.icmp6Echo, Fixtures.icmp6PacketTooBig,
        Fixtures.ipv6HopByHopUDP, Fixtures.ipv6RoutingUDP, Fixtures.ipv6FirstFragment, Fixtures.ipv6SecondFragment,
        Fixtures.ipv6DestOptsTCP, Fixtures.ipv6AuthenticationICMP, Fixtures.gre4KeySeqChecksum, Fixtures.gre4Plain,
        Fixtures.gre4PPTP, Fixtures.gre4PPTPAckOnly,
    ]
    /// Values that steer validation into its edge cases: versions, IHLs, next-header numbers, flags.
    static let interesting: [UInt8] = [0, 1, 2, 4, 5, 6, 7, 8, 15, 16, 17, 20, 40, 43, 44, 47, 50, 51, 58, 59, 60,
                                       0x30, 0x40, 0x45, 0x4F, 0x50, 0x60, 0x7F, 0x80, 0x81, 0xB0, 0xF0, 0xFE, 0xFF]

    static func mutate(_ seed: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = seed
        for _ in 0..<(1 + rng.below(4)) {
            switch rng.below(6) {
            case 0 where !b.isEmpty: b[rng.below(b.count)] = rng.byte()
            case 1 where !b.isEmpty: b[rng.below(b.count)] = interesting[rng.below(interesting.count)]
            case 2: b = Array(b.prefix(rng.below(b.count + 1)))
            case 3: b += rng.bytes(rng.below(24))
            case 4 where b.count > 2:
                let i = rng.below(b.count - 1)
                b[i] = interesting[rng.below(interesting.count)]; b[i + 1] = rng.byte()
            default: if !b.isEmpty { b[rng.below(b.count)] ^= 1 << UInt8(rng.below(8)) }
            }
        }
        return b
    }

    /// Every read accessor of each view; the sum only keeps the reads alive.
    static func touch(_ v: some IPv4Readable) -> Int {
        #expect(v.headerLength >= 20 && v.headerLength <= v.count && v.payloadLength >= 0)
        var s = Int(v.version) + Int(v.tos) + Int(v.dscp) + Int(v.ecn) + v.totalLength + Int(v.identification)
        s += Int(v.flagsAndOffset) + (v.dontFragment ? 1 : 0) + (v.moreFragments ? 1 : 0) + v.fragmentOffset
        s += (v.isFragment ? 1 : 0) + (v.isNonFirstFragment ? 1 : 0) + Int(v.ttl) + Int(v.protocolNumber)
        s += Int(v.checksum) + Int(v.source.rawValue & 0xFF) + Int(v.destination.rawValue & 0xFF)
        s += (v.hasOptions ? 1 : 0) + v.payloadOffset + (v.isChecksumValid ? 1 : 0) + v.options.count
        s += IPv4Header(v).headerLength
        return s
    }

    static func touch(_ v: some TCPReadable) -> Int {
        #expect(v.headerLength >= 20 && v.headerLength <= v.count)
        var s = Int(v.sourcePort) + Int(v.destinationPort) + Int(v.sequenceNumber & 0xFF) + Int(v.acknowledgmentNumber & 0xFF)
        s += Int(v.flags.rawValue) + Int(v.window) + Int(v.checksum) + Int(v.urgentPointer) + v.payloadLength
        s += v.options.count + (v.mssOptionOffset ?? 0) + TCPHeader(v).headerLength
        if let o = v.mssOptionOffset { #expect(o + 2 <= v.headerLength) }
        return s
    }

    static func touch(_ v: some UDPReadable) -> Int {
        #expect(v.length == v.count && v.payloadLength >= 0)
        return Int(v.sourcePort) + Int(v.destinationPort) + v.length + Int(v.checksum) + (v.hasChecksum ? 1 : 0)
            + Int(UDPHeader(v).sourcePort)
    }

    static func touch(_ v: some ICMPv4Readable) -> Int {
        #expect(v.bodyLength >= 0)
        var s = Int(v.type) + Int(v.code) + Int(v.checksum) + Int(v.identifier) + Int(v.sequenceNumber)
        s += Int(v.restOfHeader & 0xFF) + Int(v.parameterPointer) + Int(v.nextHopMTU) + Int(v.gateway.rawValue & 0xFF)
        s += (v.isError ? 1 : 0) + (v.isQuery ? 1 : 0) + (v.isChecksumValid ? 1 : 0) + Int(ICMPv4Header(v).type)
        return s
    }

    static func touch(_ v: some ICMPv6Readable) -> Int {
        #expect(v.bodyLength >= 0)
        var s = Int(v.type) + Int(v.code) + Int(v.checksum) + Int(v.identifier) + Int(v.sequenceNumber)
        s += Int(v.restOfHeader & 0xFF) + Int(v.mtu & 0xFF) + Int(v.parameterPointer & 0xFF)
        s += (v.isError ? 1 : 0) + (v.isEcho ? 1 : 0) + (v.targetAddress == nil ? 0 : 1)
        s += (v.isChecksumValid(source: ip6A, destination: ip6B) ? 1 : 0) + Int(ICMPv6Header(v).code)
        return s
    }

    static func touch(_ v: some GREReadable) -> Int {
        #expect(v.headerLength >= 4 && v.headerLength <= v.count && v.payloadLength >= 0)
        var s = Int(v.flagsAndVersion) + Int(v.version) + Int(v.protocolType) + v.keyOffset + v.sequenceOffset
        s += v.acknowledgmentOffset + Int(v.checksum ?? 0) + Int((v.key ?? 0) & 0xFF) + Int((v.sequenceNumber ?? 0) & 0xFF)
        s += Int((v.acknowledgmentNumber ?? 0) & 0xFF) + Int(v.callID ?? 0) + (v.pptpPayloadLength ?? 0)
        s += (v.isChecksumValid ? 1 : 0) + (v.isEnhanced ? 1 : 0) + GREHeader(v).headerLength
        return s
    }

    static func touch(_ v: some IPv6Readable) -> Int {
        #expect(v.count >= 40 && v.payloadLength >= 0)
        var s = Int(v.version) + Int(v.trafficClass) + Int(v.dscp) + Int(v.ecn) + Int(v.flowLabel) + v.payloadLengthField
        s += Int(v.nextHeader) + Int(v.hopLimit) + Int(v.source.low & 0xFF) + Int(v.destination.low & 0xFF)
        s += IPv6Header(v).headerLength
        if let chain = try? v.walkExtensionHeaders() {
            #expect(chain.upperLayerOffset >= 40 && chain.upperLayerOffset <= v.count)
            #expect(chain.extensionHeaderCount <= IPv6Layout.maximumExtensionHeaders)
            if let f = chain.fragmentHeaderOffset { #expect(f + 8 <= v.count) }
            if let r = chain.routingHeaderOffset { #expect(r + 8 <= v.count) }
            s += chain.upperLayerOffset + Int(chain.upperLayerProtocol)
        }
        return s
    }

    /// Every validating init over `bytes` and over the transport part behind a valid IP header; then every
    /// accessor and the writers over a copy.
    static func exercise(_ bytes: [UInt8]) -> Int {
        var s = 0
        var copy = bytes
        copy.withUnsafeMutableBytes { m in
            let p = UnsafeRawBufferPointer(m)
            func transport(_ q: UnsafeMutableRawBufferPointer, ipv6: Bool) {
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
                    #expect(i.isChecksumValid(source: ip6A, destination: ip6B))
                } else if let i = try? MutableICMPv4View(validating: q) {
                    i.rewriteIdentifier(3)
                }
                if let g = try? MutableGREView(validating: q) {
                    g.rewriteCallID(4)
                    g.rewriteKey(5)
                    g.setSequenceNumber(6)
                    g.setAcknowledgmentNumber(7)
                    g.updateChecksum()
                    #expect(g.isChecksumValid)
                    s += touch(g)
                }
            }
            if let v = try? IPv4View(validating: p) { s += touch(v) }
            if let v = try? IPv6View(validating: p) { s += touch(v) }
            if let ip = try? MutableIPv4View(validating: m) {
                var d = ChecksumDelta()
                ip.rewriteSource(ip4B, delta: &d)
                ip.rewriteTTL(1)
                transport(sub(m, ip.headerLength, ip.payloadLength), ipv6: false)
            }
            if let ip = try? MutableIPv6View(validating: m) {
                var d = ChecksumDelta()
                ip.rewriteDestination(ip6A, delta: &d)
                ip.setFlowLabel(0xFFFFF)
                ip.setTrafficClass(0xFF)
                if let chain = try? ip.walkExtensionHeaders() {
                    transport(sub(m, chain.upperLayerOffset, ip.count - chain.upperLayerOffset), ipv6: true)
                }
            }
            transport(m, ipv6: false)
        }
        return s
    }

    /// About 20 000 buffers: a quarter pure random, the rest mutated real packets.
    @Test func fuzz_randomAndMutatedBuffersNeverTrap() {
        var rng = SplitMix64(seed: 0x5EED_F00D)
        var total = 0
        for i in 0..<20_000 {
            let b: [UInt8]
            if i % 4 == 0 {
                var r = rng.bytes(rng.below(161))
                if !r.isEmpty && rng.below(2) == 0 { r[0] = [0x45, 0x60, 0x4F, 0x00, 0x30][rng.below(5)] }
                b = r
            } else {
                b = Self.mutate(Self.seeds[rng.below(Self.seeds.count)], &rng)
            }
            total &+= Self.exercise(b)
        }
        #expect(total != 0)
    }

    /// Every prefix of every real packet (each truncation point) through the same paths.
    @Test func fuzz_everyTruncationOfEveryFixture() {
        var total = 0
        for seed in Self.seeds {
            for n in 0...seed.count { total &+= Self.exercise(Array(seed.prefix(n))) }
        }
        #expect(total != 0)
    }

    /// Random text through the address and prefix parsers: never traps, and whatever parses prints back
    /// to something that parses to the same value.
    @Test func fuzz_addressParsersNeverTrap() {
        var rng = SplitMix64(seed: 4291)
        let alphabet = Array("0123456789abcdefABCDEF:./".utf8)
        for _ in 0..<20_000 {
            let text = String(decoding: (0..<rng.below(48)).map { _ in alphabet[rng.below(alphabet.count)] }, as: UTF8.self)
            if let a = IPv4Address(text) { #expect(IPv4Address(a.description) == a) }
            if let a = IPv6Address(text) { #expect(IPv6Address(a.description) == a) }
            if let p = IPv4Prefix(text) { #expect(IPv4Prefix(p.description) == p) }
            if let p = IPv6Prefix(text) { #expect(IPv6Prefix(p.description) == p) }
        }
    }
}
