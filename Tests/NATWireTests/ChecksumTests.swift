import Testing
@testable import NATWire

@Suite struct ChecksumTests {
    /// RFC 1071 §3, the worked example: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (checksum 220d).
    @Test func rfc1071_workedExample() {
        let b: [UInt8] = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]
        b.withUnsafeBytes { p in
            #expect(Checksum.fold(Checksum.sum(p)) == 0xddf2)
            #expect(Checksum.compute(p) == 0x220d)
        }
        #expect(referenceSum(b) == 0xddf2)
    }

    /// RFC 1071 §2 (B): byte order independence does not matter here, but the sum must be the same
    /// whether computed 8 bytes at a time or byte pair by byte pair, for every length 0-200 (odd ones
    /// pad the last byte with zero), every alignment, and any initial value.
    @Test func rfc1071_sumMatchesReferenceForAllLengthsAndAlignments() {
        var rng = SplitMix64(seed: 1071)
        for length in 0...200 {
            for align in 0..<4 {
                let data = rng.bytes(length + align)
                let body = Array(data[align...]) + (length % 2 == 1 ? [0] : [])
                let initial = UInt64(rng.next() >> 40)
                data.withUnsafeBytes { p in
                    let s = Checksum.sum(sub(p, align), initial: initial)
                    let expected = referenceSum(body + be16(UInt16(initial >> 16)) + be16(UInt16(initial & 0xFFFF)))
                    #expect(Checksum.fold(s) == expected || (Checksum.fold(s) == 0xFFFF && expected == 0)
                            || (Checksum.fold(s) == 0 && expected == 0xFFFF), "length \(length) align \(align)")
                }
            }
        }
    }

    /// RFC 1071 §2(C): folding a wide accumulator with end-around carries gives the one's complement
    /// sum of its 16-bit words; checked against adding the four words one by one, 16 bits at a time,
    /// for edge values (all ones, carries in every position, zero) and 200 000 random accumulators.
    @Test func rfc1071_foldEqualsSixteenBitEndAroundCarrySum() {
        func reference(_ v: UInt64) -> UInt16 {
            var s: UInt32 = 0
            for i in 0..<4 {
                s += UInt32((v >> (16 * UInt64(i))) & 0xFFFF)
                s = (s & 0xFFFF) + (s >> 16)
            }
            return UInt16(s)
        }
        var edges: [UInt64] = [0, 1, 0xFFFF, 0x1_0000, 0xFFFF_FFFF, 0x1_0000_0000, 0xFFFF_FFFF_FFFF_FFFF,
                               0xFFFF_0000_FFFF_0001, 0x0000_FFFF_0000_FFFF, 0x8000_8000_8000_8000, 0x0001_FFFF_FFFF_FFFF]
        for shift in 0..<64 { edges.append(1 << UInt64(shift)); edges.append(~(1 << UInt64(shift))) }
        for v in edges { #expect(Checksum.fold(v) == reference(v), "\(v)") }
        var g = SystemRandomNumberGenerator()
        var bad = 0
        for _ in 0..<200_000 {
            let v = g.next() >> UInt64.random(in: 0...40, using: &g)
            if Checksum.fold(v) != reference(v) { bad += 1 }
        }
        #expect(bad == 0)
    }

    /// RFC 1071 over a 20-byte IPv4 header: the fast check (two 64-bit end-around-carry additions)
    /// agrees with the byte-wise sum on random headers with their checksum filled in (valid), and with
    /// one bit flipped anywhere (invalid).
    @Test func rfc1071_fastTwentyByteHeaderCheckAgreesWithTheFullSum() {
        var g = SystemRandomNumberGenerator()
        var header = [UInt8](repeating: 0, count: 20)
        for _ in 0..<20_000 {
            for i in 0..<20 { header[i] = UInt8.random(in: 0...255, using: &g) }
            header[10] = 0; header[11] = 0
            let c = header.withUnsafeBytes { Checksum.compute($0) }
            header[10] = UInt8(c >> 8); header[11] = UInt8(c & 0xFF)
            header.withUnsafeBytes { b in
                #expect(Checksum.isValidIPv4Header20(b.baseAddress!) == (Checksum.fold(Checksum.sum(b)) == 0xFFFF))
                #expect(Checksum.isValidIPv4Header20(b.baseAddress!))
            }
            let bit = Int.random(in: 0..<160, using: &g)
            header[bit / 8] ^= 1 << UInt8(bit % 8)
            header.withUnsafeBytes { b in
                #expect(Checksum.isValidIPv4Header20(b.baseAddress!) == (Checksum.fold(Checksum.sum(b)) == 0xFFFF))
            }
        }
    }

    /// RFC 1624 with a 64-bit field (an address pair): the same result as replacing its four 16-bit words.
    @Test func rfc1624_replacingAnAddressPairEqualsReplacingItsWords() {
        var g = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let old = g.next() as UInt64, new = g.next() as UInt64
            let checksum = UInt16(truncatingIfNeeded: g.next() as UInt64)
            var wide = ChecksumDelta()
            wide.replace(old, with: new)
            var words = ChecksumDelta()
            for i in 0..<4 {
                let sh = 16 * UInt64(i)
                words.replace(UInt16(truncatingIfNeeded: old >> sh), with: UInt16(truncatingIfNeeded: new >> sh))
            }
            #expect(wide.apply(to: checksum) == words.apply(to: checksum))
        }
    }

    @Test func rfc1071_oddLengthPadsWithZero() {
        let odd: [UInt8] = [0x12, 0x34, 0x56]
        let padded: [UInt8] = [0x12, 0x34, 0x56, 0x00]
        let a = odd.withUnsafeBytes { Checksum.compute($0) }
        let b = padded.withUnsafeBytes { Checksum.compute($0) }
        #expect(a == b)
        #expect(a == ~UInt16(0x1234 + 0x5600))
    }

    @Test func rfc1071_emptyBufferChecksumIsAllOnes() {
        let empty: [UInt8] = []
        #expect(empty.withUnsafeBytes { Checksum.compute($0) } == 0xFFFF)
    }

    /// A buffer carrying its own correct checksum sums to 0xFFFF (RFC 1071 §1 (2)).
    @Test func rfc1071_bufferWithItsChecksumSumsToAllOnes() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<200 {
            var b = rng.bytes(2 * (1 + rng.below(40)))
            b[0] = 0; b[1] = 0
            let c = b.withUnsafeBytes { Checksum.compute($0) }
            b[0] = UInt8(c >> 8); b[1] = UInt8(c & 0xFF)
            #expect(b.withUnsafeBytes { Checksum.fold(Checksum.sum($0)) } == 0xFFFF)
        }
    }

    /// RFC 1624 eqn. 3 applied field by field (16-bit, 32-bit and 128-bit fields, several edits accumulated in
    /// one ``ChecksumDelta``) gives exactly the checksum a full recompute gives, over 5000 seeded cases.
    @Test func rfc1624_incrementalMatchesFullRecompute() {
        var rng = SplitMix64(seed: 1624)
        for _ in 0..<5000 {
            let words = 18 + rng.below(30)
            var b = rng.bytes(2 * words)
            b[0] = 0; b[1] = 0   // checksum field at offset 0
            if b.allSatisfy({ $0 == 0 }) { b[2] = 1 }
            let original = referenceChecksum(b)
            var delta = ChecksumDelta()
            for _ in 0..<(1 + rng.below(4)) {
                switch rng.below(3) {
                case 0:
                    let off = 2 + 2 * rng.below(words - 1)
                    let old = UInt16(b[off]) << 8 | UInt16(b[off + 1])
                    let new = UInt16(truncatingIfNeeded: rng.next())
                    delta.replace(old, with: new)
                    b[off] = UInt8(new >> 8); b[off + 1] = UInt8(new & 0xFF)
                case 1:
                    let off = 2 + 2 * rng.below(words - 2)
                    let old = b[off..<off + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                    let new = UInt32(truncatingIfNeeded: rng.next())
                    delta.replace(old, with: new)
                    for i in 0..<4 { b[off + i] = UInt8(truncatingIfNeeded: new >> (24 - 8 * UInt32(i))) }
                default:
                    let off = 2 + 2 * rng.below(words - 8)
                    let oldBytes = Array(b[off..<off + 16])
                    let old = IPv6Address(high: oldBytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) },
                                          low: oldBytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
                    let new = IPv6Address(high: rng.next(), low: rng.next())
                    delta.replace(old, with: new)
                    for i in 0..<16 { b[off + i] = new.byte(i) }
                }
            }
            if b[2...].allSatisfy({ $0 == 0 }) { continue }
            let full = referenceChecksum(b)
            #expect(delta.apply(to: original) == full)
        }
    }

    @Test func rfc1624_singleFieldHelpers() {
        // RFC 1624 §4 example: HC = 0xDD2F, m = 0x5555 → m' = 0x3285 gives HC' = 0x0000.
        #expect(Checksum.update(0xdd2f, old: UInt16(0x5555), new: 0x3285) == 0x0000)
        var d = ChecksumDelta()
        #expect(d.isZero)
        d.replace(UInt32(0xC000_0201), with: 0xC000_0201)
        #expect(d.isZero)
        d.replace(UInt16(1), with: 2)
        #expect(!d.isZero)
    }

    /// RFC 768: a zero UDP checksum over IPv4 means "none" and must stay zero under any rewrite; a
    /// computed zero is sent as 0xFFFF.
    @Test func rfc768_udpZeroChecksumStaysZeroUnderApplyUDP() {
        var d = ChecksumDelta()
        d.replace(UInt32(0x6440_0002), with: 0xCB00_710A)
        d.replace(UInt16(49152), with: 1024)
        #expect(d.applyUDP(to: 0) == 0)
        // c = 1, word 5 → 6: ~1 + ~5 + 6 = 0xFFFF, so RFC 1624 gives 0, which UDP sends as 0xFFFF.
        var z = ChecksumDelta()
        z.replace(UInt16(5), with: 6)
        #expect(z.apply(to: 1) == 0)
        #expect(z.applyUDP(to: 1) == 0xFFFF)
    }

    @Test func rfc768_udpZeroChecksumStaysZeroThroughMutableUDPView() {
        var pkt = PacketBuilder.udp4(source: ip4A, sourcePort: 1234, destination: ip4B, destinationPort: 53,
                                     payload: dnsQuery, checksum: false)
        pkt.withUnsafeMutableBytes { b in
            var delta = ChecksumDelta()
            let ip = try! MutableIPv4View(validating: b)
            ip.rewriteSource(IPv4Address(203, 0, 113, 9), delta: &delta)
            let udp = try! MutableUDPView(validating: sub(b, ip.headerLength))
            udp.rewriteSourcePort(40000, delta: delta)
            #expect(udp.checksum == 0)
            #expect(udp.sourcePort == 40000)
            #expect(ip.isChecksumValid)
        }
    }

    /// The IPv4 pseudo-header sum equals the sum over the 12 pseudo-header bytes; the IPv6 one over the 40.
    @Test func rfc8200_pseudoHeaderSumsMatchTheirBytes() {
        let s4 = Checksum.fold(Checksum.pseudoHeaderSum(source: ip4A, destination: ip4B, protocol: 17, length: 37))
        #expect(s4 == referenceSum(pseudoHeader4(ip4A, ip4B, 17, 37)))
        let s6 = Checksum.fold(Checksum.pseudoHeaderSum(source: ip6A, destination: ip6B, nextHeader: 58, length: 70_000))
        #expect(s6 == referenceSum(pseudoHeader6(ip6A, ip6B, 58, 70_000)))
    }
}
