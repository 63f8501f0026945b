import NATWire

/// Big-endian reads and writes over a control-plane message (`[UInt8]`: these are a few dozen bytes a
/// request, far from the packet path). Every read is bounds-checked by the caller's length check first.
struct ByteReader {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func u8(_ o: Int) -> UInt8 { bytes[o] }
    func u16(_ o: Int) -> UInt16 { UInt16(bytes[o]) << 8 | UInt16(bytes[o + 1]) }
    func u32(_ o: Int) -> UInt32 { UInt32(u16(o)) << 16 | UInt32(u16(o + 2)) }
    func slice(_ o: Int, _ n: Int) -> [UInt8] { Array(bytes[o..<(o + n)]) }
    func ipv6(_ o: Int) -> IPv6Address {
        var hi: UInt64 = 0, lo: UInt64 = 0
        for i in 0..<8 { hi = hi << 8 | UInt64(bytes[o + i]) }
        for i in 8..<16 { lo = lo << 8 | UInt64(bytes[o + i]) }
        return IPv6Address(high: hi, low: lo)
    }
}

extension Array where Element == UInt8 {
    mutating func put(_ v: UInt8) { append(v) }
    mutating func put(_ v: UInt16) { append(UInt8(v >> 8)); append(UInt8(v & 0xFF)) }
    mutating func put(_ v: UInt32) { put(UInt16(v >> 16)); put(UInt16(v & 0xFFFF)) }
    mutating func put(_ a: IPv6Address) {
        for i in (0..<8).reversed() { append(UInt8((a.high >> (UInt64(i) * 8)) & 0xFF)) }
        for i in (0..<8).reversed() { append(UInt8((a.low >> (UInt64(i) * 8)) & 0xFF)) }
    }
    mutating func zeros(_ n: Int) { append(contentsOf: repeatElement(0, count: n)) }
}

extension IPv6Address {
    /// RFC 6887 §5: an IPv4 address in a PCP address field is IPv4-mapped (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2).
    public init(ipv4Mapped a: IPv4Address) { self.init(high: 0, low: 0xFFFF_0000_0000 | UInt64(a.rawValue)) }

    /// The IPv4 address inside an IPv4-mapped address, or nil.
    public var ipv4Mapped: IPv4Address? {
        high == 0 && low >> 32 == 0xFFFF ? IPv4Address(rawValue: UInt32(truncatingIfNeeded: low)) : nil
    }
}

/// TCP or UDP: the two protocols a port mapping can carry.
public enum MappingProtocol: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case tcp = 6
    case udp = 17

    /// `tcp`/`udp` (as the control socket and `swiftnat forwards` write them).
    public var description: String { self == .tcp ? "tcp" : "udp" }
    /// `TCP`/`UDP` (as UPnP writes them).
    public var upnpName: String { self == .tcp ? "TCP" : "UDP" }

    public init?(name: String) {
        switch name.uppercased() {
        case "TCP": self = .tcp
        case "UDP": self = .udp
        default: return nil
        }
    }
}
