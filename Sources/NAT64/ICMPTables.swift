import NATWire

/// What the four bytes after an ICMP error's checksum become.
@usableFromInline
enum ICMPRest: Equatable {
    /// Zero ("unused").
    case zero
    /// Packet Too Big / Fragmentation Needed: compute the MTU (RFC 7915 §4.2, §5.2).
    case mtu
    /// Parameter Problem: translate the pointer (Figure 3 / Figure 6).
    case translatedPointer
    /// Parameter Problem with a fixed pointer (ICMPv4 Protocol Unreachable → Next Header, 6).
    case fixedPointer(UInt32)
}

/// The ICMP type, code and pointer tables of RFC 7915 §4.2 and §5.2. A nil result means "silently drop".
public enum ICMPTranslationTables {
    /// RFC 7915 §4.2: an ICMPv4 error's type and code to ICMPv6 (errors only; echo is handled apart).
    @inlinable
    static func error4to6(type: UInt8, code: UInt8) -> (type: UInt8, code: UInt8, rest: ICMPRest)? {
        switch type {
        case ICMPv4Type.destinationUnreachable:
            switch code {
            case 0, 1: return (ICMPv6Type.destinationUnreachable, ICMPv6UnreachableCode.noRoute, .zero)
            case 2: return (ICMPv6Type.parameterProblem, ICMPv6ParameterProblemCode.unrecognizedNextHeader,
                            .fixedPointer(UInt32(IPv6Layout.nextHeader)))
            case 3: return (ICMPv6Type.destinationUnreachable, ICMPv6UnreachableCode.port, .zero)
            case 4: return (ICMPv6Type.packetTooBig, 0, .mtu)
            case 5, 6, 7, 8, 11, 12:
                return (ICMPv6Type.destinationUnreachable, ICMPv6UnreachableCode.noRoute, .zero)
            case 9, 10, 13, 15:
                return (ICMPv6Type.destinationUnreachable, ICMPv6UnreachableCode.administrativelyProhibited, .zero)
            default: return nil  // 14 (Host Precedence Violation) and unknown codes
            }
        case ICMPv4Type.timeExceeded:
            return (ICMPv6Type.timeExceeded, code, .zero)
        case ICMPv4Type.parameterProblem:
            switch code {
            case 0, 2: return (ICMPv6Type.parameterProblem, ICMPv6ParameterProblemCode.erroneousHeaderField, .translatedPointer)
            default: return nil  // 1 (Missing a required option) and unknown codes
            }
        default:
            return nil  // Source Quench, Redirect, Alternative Host Address, unknown errors
        }
    }

    /// RFC 7915 §5.2: an ICMPv6 error's type and code to ICMPv4.
    @inlinable
    static func error6to4(type: UInt8, code: UInt8) -> (type: UInt8, code: UInt8, rest: ICMPRest)? {
        switch type {
        case ICMPv6Type.destinationUnreachable:
            switch code {
            case 0, 2, 3: return (ICMPv4Type.destinationUnreachable, ICMPv4UnreachableCode.host, .zero)
            case 1: return (ICMPv4Type.destinationUnreachable, ICMPv4UnreachableCode.hostAdministrativelyProhibited, .zero)
            case 4: return (ICMPv4Type.destinationUnreachable, ICMPv4UnreachableCode.port, .zero)
            default: return nil
            }
        case ICMPv6Type.packetTooBig:
            return (ICMPv4Type.destinationUnreachable, ICMPv4UnreachableCode.fragmentationNeeded, .mtu)
        case ICMPv6Type.timeExceeded:
            return (ICMPv4Type.timeExceeded, code, .zero)
        case ICMPv6Type.parameterProblem:
            switch code {
            case 0: return (ICMPv4Type.parameterProblem, 0, .translatedPointer)
            case 1: return (ICMPv4Type.destinationUnreachable, ICMPv4UnreachableCode.protocolUnreachable, .zero)
            default: return nil  // 2 (Unrecognized IPv6 option) and unknown codes
            }
        default:
            return nil
        }
    }

    /// RFC 7915 §4.2 Figure 3: an ICMPv4 Parameter Problem pointer to its ICMPv6 value, or nil ("n/a").
    @inlinable
    public static func pointer4to6(_ p: UInt8) -> UInt32? {
        switch p {
        case 0: 0            // Version/IHL → Version/Traffic Class
        case 1: 1            // Type Of Service → Traffic Class/Flow Label
        case 2, 3: 4         // Total Length → Payload Length
        case 8: 7            // Time to Live → Hop Limit
        case 9: 6            // Protocol → Next Header
        case 12...15: 8      // Source Address
        case 16...19: 24     // Destination Address
        default: nil         // Identification, Flags/Fragment Offset, Header Checksum, options
        }
    }

    /// RFC 7915 §5.2 Figure 6: an ICMPv6 Parameter Problem pointer to its ICMPv4 value, or nil ("n/a").
    @inlinable
    public static func pointer6to4(_ p: UInt32) -> UInt8? {
        switch p {
        case 0: 0            // Version/Traffic Class → Version/IHL, Type Of Service
        case 1: 1            // Traffic Class/Flow Label → Type Of Service
        case 4, 5: 2         // Payload Length → Total Length
        case 6: 9            // Next Header → Protocol
        case 7: 8            // Hop Limit → Time to Live
        case 8...23: 12      // Source Address
        case 24...39: 16     // Destination Address
        default: nil         // Flow Label (2, 3), beyond the fixed header
        }
    }

    /// RFC 1191 §7 Table 7-1 plateaus, largest first.
    public static let plateaus: [Int] = [65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68]

    /// RFC 7915 §4.2 (RFC 1191 §5): for a Fragmentation Needed whose MTU field is zero, "the greatest
    /// plateau value that is less than the returned Total Length field" (68 when none is).
    @inlinable
    public static func plateau(below totalLength: Int) -> Int {
        for v in plateaus where v < totalLength { return v }
        return 68
    }
}
