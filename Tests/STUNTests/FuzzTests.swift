import NATWire
import Testing
@testable import STUN

/// Hostile input: every prefix, huge lengths, flipped bits and random bytes either decode or throw a
/// `STUNError`; nothing traps, and what decodes re-encodes to a message that decodes the same.
@Suite struct STUNFuzzTests {
    @Test func rfc8489_6_3_truncatedAtEveryLength() {
        for fixture in [Fixtures.rfc5769IPv4Response, Fixtures.rfc5769IPv6Response] {
            for n in 0..<fixture.count {
                #expect(throws: STUNError.self) { try STUNMessage(decoding: Array(fixture[0..<n])) }
            }
        }
    }

    /// An attribute length beyond the message, and a header length beyond the datagram.
    @Test func rfc8489_6_3_hugeLengths() {
        var attr = STUNMessage.bindingRequest(id: STUNTransactionID(1, 1, 1), software: "abcd").encode()
        attr[22] = 0xFF; attr[23] = 0xF0
        #expect(throws: STUNError.attributeOverrun(type: 0x8022, length: 0xFFF0)) { try STUNMessage(decoding: attr) }
        var header = attr
        header[2] = 0xFF; header[3] = 0xFC
        #expect(throws: STUNError.truncated(have: header.count, need: 20 + 0xFFFC)) { try STUNMessage(decoding: header) }
        var f = STUNStreamFramer()
        f.append(header)
        #expect((try? f.next()) == .some(nil))  // waits for the rest of a 64 KiB message, no more
    }

    @Test func rfc8489_6_3_bitFlipsAndGarbage() {
        var rng = SplitMix64(seed: 0x5354_554E)
        var decoded = 0, refused = 0
        let seeds = [Fixtures.rfc5769IPv4Response, Fixtures.rfc5769IPv6Response,
                     STUNMessage.bindingRequest(id: STUNTransactionID(1, 2, 3), changeIP: true, responsePort: 9, padding: 3).encode(),
                     STUNMessage.bindingError(id: STUNTransactionID(1, 2, 3), code: 420, reason: "x", unknown: [1, 2, 3]).encode()]
        for i in 0..<20_000 {
            var b: [UInt8]
            if i % 4 == 0 {
                b = rng.bytes(rng.below(120))
                if b.count >= 8, i % 8 == 0 { b[0] &= 0x3F; b[4] = 0x21; b[5] = 0x12; b[6] = 0xa4; b[7] = 0x42 }
                if b.count >= 20, i % 16 == 0 { b[2] = 0; b[3] = UInt8(b.count - 20) & ~3; b = Array(b[0..<(20 + Int(b[3]))]) }
            } else {
                b = seeds[rng.below(seeds.count)]
                for _ in 0..<(1 + rng.below(3)) { b[rng.below(b.count)] ^= UInt8(1) << UInt8(rng.below(8)) }
            }
            do {
                let m = try STUNMessage(decoding: b)
                decoded += 1
                let again = try STUNMessage(decoding: m.encode())
                #expect(again.type == m.type && again.transactionID == m.transactionID)
                _ = try? STUNBindingResponse(m, answering: m.transactionID)
            } catch {
                refused += 1
                #expect(!error.reason.isEmpty && !error.description.isEmpty)
            }
        }
        #expect(decoded + refused == 20_000 && refused > 0 && decoded > 0)
    }
}
