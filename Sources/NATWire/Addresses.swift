/// An IPv4 address in host byte order.
public struct IPv4Address: Hashable, Sendable, Comparable, CustomStringConvertible, RawRepresentable {
    public var rawValue: UInt32

    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        rawValue = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    public static let any = IPv4Address(rawValue: 0)

    /// Parses dotted-quad text: four decimal octets 0-255, no leading zeros (which some parsers read as octal).
    public init?(_ text: some StringProtocol) {
        var value: UInt32 = 0
        var parts = 0
        var octet: UInt32 = 0
        var digits = 0
        var leadingZero = false
        for c in text.utf8 {
            if c == UInt8(ascii: ".") {
                guard digits > 0, parts < 3 else { return nil }
                value = value << 8 | octet
                parts += 1; octet = 0; digits = 0; leadingZero = false
            } else if c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
                if leadingZero { return nil }
                if digits == 0 && c == UInt8(ascii: "0") { leadingZero = true }
                octet = octet * 10 + UInt32(c - UInt8(ascii: "0"))
                digits += 1
                guard octet <= 255, digits <= 3 else { return nil }
            } else {
                return nil
            }
        }
        guard parts == 3, digits > 0 else { return nil }
        rawValue = value << 8 | octet
    }

    public var description: String {
        "\(rawValue >> 24).\(rawValue >> 16 & 0xFF).\(rawValue >> 8 & 0xFF).\(rawValue & 0xFF)"
    }

    @inlinable public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.rawValue < b.rawValue }

    /// The four octets in network order.
    public var octets: (UInt8, UInt8, UInt8, UInt8) {
        (UInt8(rawValue >> 24), UInt8(rawValue >> 16 & 0xFF), UInt8(rawValue >> 8 & 0xFF), UInt8(rawValue & 0xFF))
    }

    /// RFC 6890 special-purpose blocks that are not globally reachable (used by RFC 6052 §3.1's check).
    public var isGloballyReachable: Bool {
        for (net, len) in IPv4Address.nonGlobalBlocks where IPv4Prefix(uncheckedAddress: IPv4Address(net), length: len).contains(self) {
            return false
        }
        return true
    }

    static let nonGlobalBlocks: [(UInt32, UInt8)] = [
        (0x0000_0000, 8), (0x0A00_0000, 8), (0x6440_0000, 10), (0x7F00_0000, 8), (0xA9FE_0000, 16),
        (0xAC10_0000, 12), (0xC000_0000, 24), (0xC000_0200, 24), (0xC058_6300, 24), (0xC0A8_0000, 16),
        (0xC612_0000, 15), (0xC633_6400, 24), (0xCB00_7100, 24), (0xE000_0000, 4), (0xF000_0000, 4),
    ]
}

/// An IPv6 address as two 64-bit halves in host order (`high` holds the first 8 bytes on the wire).
public struct IPv6Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    @inlinable public init(high: UInt64, low: UInt64) { self.high = high; self.low = low }

    /// From eight 16-bit groups, as written in text.
    public init(_ g0: UInt16, _ g1: UInt16, _ g2: UInt16, _ g3: UInt16,
                _ g4: UInt16, _ g5: UInt16, _ g6: UInt16, _ g7: UInt16) {
        high = UInt64(g0) << 48 | UInt64(g1) << 32 | UInt64(g2) << 16 | UInt64(g3)
        low = UInt64(g4) << 48 | UInt64(g5) << 32 | UInt64(g6) << 16 | UInt64(g7)
    }

    public static let any = IPv6Address(high: 0, low: 0)

    /// Group `i` (0-7) as written in text.
    @inlinable public func group(_ i: Int) -> UInt16 {
        let w = i < 4 ? high : low
        return UInt16(truncatingIfNeeded: w >> (UInt64(3 - (i & 3)) * 16))
    }

    /// Byte `i` (0-15) in network order.
    @inlinable public func byte(_ i: Int) -> UInt8 {
        let w = i < 8 ? high : low
        return UInt8(truncatingIfNeeded: w >> (UInt64(7 - (i & 7)) * 8))
    }

    /// The sum of the eight 16-bit groups, for checksums.
    @inlinable public var wordSum: UInt64 {
        (high >> 48) &+ ((high >> 32) & 0xFFFF) &+ ((high >> 16) & 0xFFFF) &+ (high & 0xFFFF)
            &+ (low >> 48) &+ ((low >> 32) & 0xFFFF) &+ ((low >> 16) & 0xFFFF) &+ (low & 0xFFFF)
    }

    @inlinable public static func < (a: IPv6Address, b: IPv6Address) -> Bool {
        a.high != b.high ? a.high < b.high : a.low < b.low
    }

    /// Parses RFC 4291 §2.2 text: full, `::`-compressed, and with a trailing dotted IPv4 address.
    public init?(_ text: some StringProtocol) {
        let u = Array(text.utf8)
        guard !u.isEmpty, u.count <= 45 else { return nil }
        var gap: Int? = nil
        var i = 0
        while i + 1 < u.count {
            if u[i] == UInt8(ascii: ":") && u[i + 1] == UInt8(ascii: ":") {
                guard gap == nil else { return nil }
                gap = i
                i += 2
            } else {
                i += 1
            }
        }
        func groups(_ part: ArraySlice<UInt8>, allowIPv4: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            let pieces = part.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
            for (n, piece) in pieces.enumerated() {
                if piece.contains(UInt8(ascii: ".")) {
                    guard allowIPv4, n == pieces.count - 1,
                          let v4 = IPv4Address(String(decoding: piece, as: UTF8.self)) else { return nil }
                    out.append(UInt16(v4.rawValue >> 16))
                    out.append(UInt16(v4.rawValue & 0xFFFF))
                    continue
                }
                guard (1...4).contains(piece.count) else { return nil }
                var v: UInt16 = 0
                for c in piece {
                    let d: UInt8
                    switch c {
                    case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
                    case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
                    case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
                    default: return nil
                    }
                    v = v << 4 | UInt16(d)
                }
                out.append(v)
            }
            return out
        }
        var all: [UInt16]
        if let g = gap {
            guard let head = groups(u[0..<g], allowIPv4: false),
                  let tail = groups(u[(g + 2)...], allowIPv4: true),
                  head.count + tail.count <= 7 else { return nil }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let g = groups(u[...], allowIPv4: true) else { return nil }
            all = g
        }
        guard all.count == 8 else { return nil }
        self.init(all[0], all[1], all[2], all[3], all[4], all[5], all[6], all[7])
    }

    /// RFC 5952 canonical text: lower case, no leading zeros, the longest run (≥ 2) of zero groups as `::`.
    public var description: String {
        var bestStart = -1, bestLen = 0, curStart = -1, curLen = 0
        for i in 0..<8 {
            if group(i) == 0 {
                if curStart < 0 { curStart = i; curLen = 0 }
                curLen += 1
                if curLen > bestLen { bestStart = curStart; bestLen = curLen }
            } else {
                curStart = -1
            }
        }
        if bestLen < 2 { bestStart = -1 }
        var out = ""
        var i = 0
        while i < 8 {
            if i == bestStart {
                out += "::"
                i += bestLen
                continue
            }
            if !out.isEmpty && !out.hasSuffix(":") { out += ":" }
            out += String(group(i), radix: 16)
            i += 1
        }
        return out
    }
}

/// An IPv4 prefix (network address and length); the host bits are zero.
public struct IPv4Prefix: Hashable, Sendable, CustomStringConvertible {
    public let address: IPv4Address
    public let length: UInt8

    /// The prefix; returns nil when `length` > 32 or host bits of `address` are set.
    public init?(address: IPv4Address, length: Int) {
        guard (0...32).contains(length) else { return nil }
        let mask = IPv4Prefix.mask(UInt8(length))
        guard address.rawValue & ~mask == 0 else { return nil }
        self.address = address
        self.length = UInt8(length)
    }

    /// The prefix containing `address`, with its host bits cleared.
    public init(containing address: IPv4Address, length: UInt8) {
        let l = min(length, 32)
        self.address = IPv4Address(address.rawValue & IPv4Prefix.mask(l))
        self.length = l
    }

    @usableFromInline init(uncheckedAddress: IPv4Address, length: UInt8) {
        self.address = uncheckedAddress
        self.length = length
    }

    /// Parses `a.b.c.d/len`, or a bare address as a /32.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let a = IPv4Address(parts[0]) else { return nil }
        var len = 32
        if parts.count == 2 {
            guard parts[1].utf8.count <= 2, parts[1].utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let l = Int(parts[1]) else { return nil }
            len = l
        }
        self.init(address: a, length: len)
    }

    @inlinable public static func mask(_ length: UInt8) -> UInt32 {
        length == 0 ? 0 : ~UInt32(0) << UInt32(32 - length)
    }

    @inlinable public var mask: UInt32 { IPv4Prefix.mask(length) }

    @inlinable public func contains(_ a: IPv4Address) -> Bool {
        a.rawValue & mask == address.rawValue
    }

    /// The number of addresses in the prefix.
    public var count: UInt64 { UInt64(1) << UInt64(32 - length) }

    /// The `i`th address of the prefix.
    public func address(at i: UInt32) -> IPv4Address { IPv4Address(address.rawValue &+ i) }

    public var description: String { "\(address)/\(length)" }
}

/// An IPv6 prefix (network address and length); the host bits are zero.
public struct IPv6Prefix: Hashable, Sendable, CustomStringConvertible {
    public let address: IPv6Address
    public let length: UInt8

    public init?(address: IPv6Address, length: Int) {
        guard (0...128).contains(length) else { return nil }
        let (mh, ml) = IPv6Prefix.mask(UInt8(length))
        guard address.high & ~mh == 0, address.low & ~ml == 0 else { return nil }
        self.address = address
        self.length = UInt8(length)
    }

    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let a = IPv6Address(parts[0]) else { return nil }
        var len = 128
        if parts.count == 2 {
            guard parts[1].utf8.count <= 3, parts[1].utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let l = Int(parts[1]) else { return nil }
            len = l
        }
        self.init(address: a, length: len)
    }

    @inlinable public static func mask(_ length: UInt8) -> (UInt64, UInt64) {
        if length == 0 { return (0, 0) }
        if length <= 64 { return (~UInt64(0) << UInt64(64 - length), 0) }
        if length == 128 { return (~0, ~0) }
        return (~0, ~UInt64(0) << UInt64(128 - length))
    }

    @inlinable public func contains(_ a: IPv6Address) -> Bool {
        let (mh, ml) = IPv6Prefix.mask(length)
        return a.high & mh == address.high && a.low & ml == address.low
    }

    public var description: String { "\(address)/\(length)" }
}
