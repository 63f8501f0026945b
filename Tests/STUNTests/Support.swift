import NATWire
@testable import STUN

/// Parses whitespace-separated hex into bytes; traps on bad input (test fixtures only).
func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var nibble: UInt8? = nil
    for c in s.utf8 {
        let v: UInt8
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): v = c - UInt8(ascii: "A") + 10
        default: continue
        }
        if let hi = nibble { out.append(hi << 4 | v); nibble = nil } else { nibble = v }
    }
    precondition(nibble == nil, "odd number of hex digits")
    return out
}

/// Encodes `message` into a buffer prefilled with junk (0xA5) one byte longer than needed, checks the
/// junk after it is untouched, and returns the message's bytes.
func buildIntoJunk(_ message: STUNMessage, fingerprint: Bool = false, padding: UInt8 = 0) -> [UInt8]? {
    let n = message.encode(fingerprint: fingerprint, padding: padding).count
    var buf = [UInt8](repeating: 0xA5, count: n + 1)
    let written = buf.withUnsafeMutableBytes { message.encode(into: $0, fingerprint: fingerprint, padding: padding) }
    guard written == n, buf[n] == 0xA5 else { return nil }
    return Array(buf[0..<n])
}

/// A deterministic RNG (SplitMix64), so every random test replays exactly.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in byte() } }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

enum Fixtures {
    /// RFC 5769 §2.2: sample IPv4 response (SOFTWARE "test vector", XOR-MAPPED-ADDRESS 192.0.2.1:32853,
    /// MESSAGE-INTEGRITY, FINGERPRINT). The FINGERPRINT was checked with zlib's crc32.
    static let rfc5769IPv4Response = hex("""
    01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 08 00 01 a1 47 e1 12 a6 43
    00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
    80 28 00 04 c0 7d 4c 96
    """)

    /// RFC 5769 §2.3: sample IPv6 response (XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853).
    static let rfc5769IPv6Response = hex("""
    01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
    00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
    80 28 00 04 c8 fb 0b 4c
    """)

    /// A real answer from coturn 4.6.1 in the lab (captured from 203.0.113.2:3478 to 100.64.0.2:40123 behind
    /// swiftnat's NAT, pool 198.51.100.1): XOR-MAPPED-ADDRESS, MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS, SOFTWARE.
    static let coturnResponse = hex("""
    01 01 00 48 21 12 a4 42 01 02 03 04 05 06 07 08 09 0a 0b 0c
    00 20 00 08 00 01 bd a9 e7 21 c0 43
    00 01 00 08 00 01 9c bb c6 33 64 01
    80 2b 00 08 00 01 0d 96 cb 00 71 02
    80 2c 00 08 00 01 0d 97 cb 00 71 03
    80 22 00 14 43 6f 74 75 72 6e 2d 34 2e 36 2e 31 20 27 47 6f 72 73 74 27
    """)
    static let coturnID = STUNTransactionID(0x0102_0304, 0x0506_0708, 0x090a_0b0c)

    static let rfc5769ID = STUNTransactionID(0xb7e7_a701, 0xbc34_d686, 0xfa87_dfae)
    static let rfc5769IPv4MI = hex("2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7")
    static let rfc5769IPv6MI = hex("a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41")
}
