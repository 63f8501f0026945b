import NATWire

/// Parses whitespace-separated hex ("45 00 00 39 …") into bytes; traps on bad input (test fixtures only).
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

/// The RFC 1071 checksum the slow, obvious way: big-endian 16-bit words, odd byte padded, end-around carry.
/// Independent of `Checksum` on purpose.
func referenceSum(_ bytes: [UInt8]) -> UInt16 {
    var s: UInt32 = 0
    var i = 0
    while i < bytes.count {
        let hi = UInt32(bytes[i])
        let lo = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
        s += hi << 8 | lo
        s = (s & 0xFFFF) + (s >> 16)
        i += 2
    }
    return UInt16(s)
}

func referenceChecksum(_ bytes: [UInt8]) -> UInt16 { ~referenceSum(bytes) }

func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
func bytes(of a: IPv4Address) -> [UInt8] { be32(a.rawValue) }
func bytes(of a: IPv6Address) -> [UInt8] { (0..<16).map { a.byte($0) } }

/// The IPv4 pseudo-header (RFC 793 §3.1 / RFC 768) as bytes.
func pseudoHeader4(_ s: IPv4Address, _ d: IPv4Address, _ proto: UInt8, _ length: Int) -> [UInt8] {
    bytes(of: s) + bytes(of: d) + [0, proto] + be16(UInt16(length))
}

/// The IPv6 pseudo-header (RFC 8200 §8.1) as bytes.
func pseudoHeader6(_ s: IPv6Address, _ d: IPv6Address, _ nextHeader: UInt8, _ length: Int) -> [UInt8] {
    bytes(of: s) + bytes(of: d) + be32(UInt32(length)) + [0, 0, 0, nextHeader]
}

/// Whether `segment` verifies under the given pseudo-header (the sum over both is 0xFFFF).
func verifies(_ pseudo: [UInt8], _ segment: [UInt8]) -> Bool { referenceSum(pseudo + segment) == 0xFFFF }

/// A buffer of `count` junk bytes (0xEE), handed to `body` to build into, then returned.
func buildIntoJunk(_ count: Int, _ body: (UnsafeMutableRawBufferPointer) -> Void) -> [UInt8] {
    var b = [UInt8](repeating: 0xEE, count: count)
    b.withUnsafeMutableBytes { body($0) }
    return b
}

/// Copies `bytes` into `buffer` at `offset`.
func copy(_ bytes: [UInt8], into buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
    for (i, v) in bytes.enumerated() { buffer[offset + i] = v }
}

/// `buffer[from..<from+count]` (or to the end) as a buffer of its own.
func sub(_ buffer: UnsafeMutableRawBufferPointer, _ from: Int, _ count: Int? = nil) -> UnsafeMutableRawBufferPointer {
    UnsafeMutableRawBufferPointer(rebasing: buffer[from..<(count.map { from + $0 } ?? buffer.count)])
}

func sub(_ buffer: UnsafeRawBufferPointer, _ from: Int, _ count: Int? = nil) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(rebasing: buffer[from..<(count.map { from + $0 } ?? buffer.count)])
}

/// The error a throwing call throws, or nil when it succeeds (or throws something other than a WireError).
func wireError<T>(_ body: () throws -> T) -> WireError? {
    do { _ = try body(); return nil } catch { return error as? WireError }
}

let ip4A = IPv4Address(192, 0, 2, 1)
let ip4B = IPv4Address(198, 51, 100, 7)
let ip6A = IPv6Address(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)
let ip6B = IPv6Address(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)
let dnsQuery = hex("ab cd 01 00 00 01 00 00 00 00 00 00 07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 00 01 00 01")
