import NATWire

/// STUN attribute types this module reads and writes (RFC 8489 §18.3, RFC 5780 §7, RFC 3489 §11.2).
public enum STUNAttributeType {
    /// RFC 8489 §14.1.
    public static let mappedAddress: UInt16 = 0x0001
    /// RFC 5780 §7.2.
    public static let changeRequest: UInt16 = 0x0003
    /// RFC 3489 §11.2.3 (classic servers).
    public static let sourceAddress: UInt16 = 0x0004
    /// RFC 3489 §11.2.4 (classic servers).
    public static let changedAddress: UInt16 = 0x0005
    /// RFC 8489 §14.3 (opaque here: long-term credentials are not used by map or probe).
    public static let username: UInt16 = 0x0006
    /// RFC 8489 §14.5 (opaque here).
    public static let messageIntegrity: UInt16 = 0x0008
    /// RFC 8489 §14.8.
    public static let errorCode: UInt16 = 0x0009
    /// RFC 8489 §14.13.
    public static let unknownAttributes: UInt16 = 0x000A
    /// RFC 8489 §14.9 (opaque here).
    public static let realm: UInt16 = 0x0014
    /// RFC 8489 §14.10 (opaque here).
    public static let nonce: UInt16 = 0x0015
    /// RFC 8489 §14.2.
    public static let xorMappedAddress: UInt16 = 0x0020
    /// RFC 5780 §7.6.
    public static let padding: UInt16 = 0x0026
    /// RFC 5780 §7.5.
    public static let responsePort: UInt16 = 0x0027
    /// RFC 8489 §14.14.
    public static let software: UInt16 = 0x8022
    /// RFC 8489 §14.15.
    public static let alternateServer: UInt16 = 0x8023
    /// RFC 8489 §14.7.
    public static let fingerprint: UInt16 = 0x8028
    /// RFC 5780 §7.3.
    public static let responseOrigin: UInt16 = 0x802B
    /// RFC 5780 §7.4.
    public static let otherAddress: UInt16 = 0x802C

    /// RFC 8489 §14: 0x0000-0x7FFF are comprehension-required.
    public static func isComprehensionRequired(_ t: UInt16) -> Bool { t < 0x8000 }

    /// Types whose meaning this module knows (so they are never "unknown comprehension-required").
    public static func isKnown(_ t: UInt16) -> Bool {
        [mappedAddress, changeRequest, sourceAddress, changedAddress, username, messageIntegrity, errorCode,
         unknownAttributes, realm, nonce, xorMappedAddress, padding, responsePort, 0x001C /* MESSAGE-INTEGRITY-SHA256 */,
         0x001D /* PASSWORD-ALGORITHM */, 0x001E /* USERHASH */].contains(t)
    }
}

/// One decoded attribute. Unknown or opaque ones keep their type and bytes in `.other`.
public enum STUNAttribute: Hashable, Sendable {
    /// RFC 8489 §14.1.
    case mappedAddress(STUNEndpoint)
    /// RFC 8489 §14.2 (stored un-XORed).
    case xorMappedAddress(STUNEndpoint)
    /// RFC 5780 §7.2: the "change IP" (0x4) and "change port" (0x2) flags.
    case changeRequest(changeIP: Bool, changePort: Bool)
    /// RFC 3489 §11.2.3.
    case sourceAddress(STUNEndpoint)
    /// RFC 3489 §11.2.4.
    case changedAddress(STUNEndpoint)
    /// RFC 5780 §7.3.
    case responseOrigin(STUNEndpoint)
    /// RFC 5780 §7.4.
    case otherAddress(STUNEndpoint)
    /// RFC 5780 §7.5.
    case responsePort(UInt16)
    /// RFC 5780 §7.6: `count` bytes of padding (their value is ignored).
    case padding(Int)
    /// RFC 8489 §14.8: code 300-699 and a reason phrase.
    case errorCode(code: Int, reason: String)
    /// RFC 8489 §14.13.
    case unknownAttributes([UInt16])
    /// RFC 8489 §14.14.
    case software(String)
    /// RFC 8489 §14.7: the value as found (verified while decoding).
    case fingerprint(UInt32)
    /// Anything else, kept as bytes.
    case other(type: UInt16, value: [UInt8])

    public var type: UInt16 {
        switch self {
        case .mappedAddress: STUNAttributeType.mappedAddress
        case .xorMappedAddress: STUNAttributeType.xorMappedAddress
        case .changeRequest: STUNAttributeType.changeRequest
        case .sourceAddress: STUNAttributeType.sourceAddress
        case .changedAddress: STUNAttributeType.changedAddress
        case .responseOrigin: STUNAttributeType.responseOrigin
        case .otherAddress: STUNAttributeType.otherAddress
        case .responsePort: STUNAttributeType.responsePort
        case .padding: STUNAttributeType.padding
        case .errorCode: STUNAttributeType.errorCode
        case .unknownAttributes: STUNAttributeType.unknownAttributes
        case .software: STUNAttributeType.software
        case .fingerprint: STUNAttributeType.fingerprint
        case .other(let t, _): t
        }
    }

    public var mappedAddress: STUNEndpoint? { if case .mappedAddress(let e) = self { e } else { nil } }
    public var xorMappedAddress: STUNEndpoint? { if case .xorMappedAddress(let e) = self { e } else { nil } }
    public var otherAddress: STUNEndpoint? { if case .otherAddress(let e) = self { e } else { nil } }
    public var changedAddress: STUNEndpoint? { if case .changedAddress(let e) = self { e } else { nil } }
    public var responseOrigin: STUNEndpoint? { if case .responseOrigin(let e) = self { e } else { nil } }
    public var sourceAddress: STUNEndpoint? { if case .sourceAddress(let e) = self { e } else { nil } }
    public var software: String? { if case .software(let s) = self { s } else { nil } }
    public var errorCode: (code: Int, reason: String)? { if case .errorCode(let c, let r) = self { (c, r) } else { nil } }
    public var changeRequest: (changeIP: Bool, changePort: Bool)? {
        if case .changeRequest(let i, let p) = self { (i, p) } else { nil }
    }
    public var responsePort: UInt16? { if case .responsePort(let p) = self { p } else { nil } }
}
