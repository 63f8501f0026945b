/// Why a view refused to be made over some bytes. Small and trivially copyable, thrown with typed throws.
public enum WireError: UInt8, Error, Sendable, CaseIterable, CustomStringConvertible {
    /// Fewer bytes than the fixed header needs.
    case truncated
    /// The IP version nibble is not the expected one.
    case badVersion
    /// IHL below 5 or beyond the buffer; TCP data offset below 5 or beyond the segment.
    case badHeaderLength
    /// A length field disagrees with the bytes present.
    case badLength
    /// A header checksum does not verify.
    case badChecksum
    /// An extension-header chain that is too long, loops, or runs past the packet.
    case badExtensionChain

    public var description: String {
        switch self {
        case .truncated: "truncated"
        case .badVersion: "bad_version"
        case .badHeaderLength: "bad_header_length"
        case .badLength: "bad_length"
        case .badChecksum: "bad_checksum"
        case .badExtensionChain: "bad_extension_chain"
        }
    }
}

/// IANA protocol numbers used by the translators.
public enum IPProtocol {
    public static let hopByHop: UInt8 = 0
    public static let icmp: UInt8 = 1
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
    public static let ipv6Route: UInt8 = 43
    public static let ipv6Fragment: UInt8 = 44
    public static let gre: UInt8 = 47
    public static let esp: UInt8 = 50
    public static let ah: UInt8 = 51
    public static let icmpv6: UInt8 = 58
    public static let noNextHeader: UInt8 = 59
    public static let ipv6DestinationOptions: UInt8 = 60
}
