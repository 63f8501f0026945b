/// Why a STUN message or answer was refused. Decoding never traps: every malformed input ends here.
public enum STUNError: Error, Hashable, Sendable, CustomStringConvertible {
    // Malformed bytes (RFC 8489 §6.3: "discarded").
    /// Fewer bytes than the header, or than the header's length field promises.
    case truncated(have: Int, need: Int)
    /// The two most significant bits are not zero (RFC 8489 §5): not STUN.
    case notSTUN
    /// Bytes 4-7 are not 0x2112A442 (RFC 8489 §5).
    case badMagicCookie(UInt32)
    /// The message length is not a multiple of 4 (RFC 8489 §5).
    case lengthNotMultipleOfFour(Int)
    /// Bytes beyond the message's declared length (a datagram must hold exactly one message).
    case trailingBytes(Int)
    /// An attribute's length runs past the end of the message.
    case attributeOverrun(type: UInt16, length: Int)
    /// An attribute's length is wrong for its type.
    case badAttributeLength(type: UInt16, length: Int)
    /// An address attribute with a family that is neither 0x01 nor 0x02 (RFC 8489 §14.1).
    case badAddressFamily(type: UInt16, family: UInt8)
    /// ERROR-CODE class outside 3-6 or number above 99 (RFC 8489 §14.8).
    case badErrorCode(classValue: UInt8, number: UInt8)
    /// A text attribute that is not UTF-8.
    case invalidUTF8(type: UInt16)
    /// FINGERPRINT is not the last attribute (RFC 8489 §14.7).
    case fingerprintNotLast
    /// FINGERPRINT does not match the message (RFC 8489 §14.7).
    case fingerprintMismatch(expected: UInt32, found: UInt32)

    // Well-formed but refused answers (RFC 8489 §6.3.3, §6.3.4).
    /// Not a response to a Binding request.
    case unexpectedMessage(STUNMessageType)
    /// The transaction id is not the one asked (RFC 8489 §6.3.3: discarded).
    case transactionMismatch(STUNTransactionID)
    /// Comprehension-required attributes this client does not know (RFC 8489 §6.3.3).
    case unknownComprehensionRequired([UInt16])
    /// The server answered with an error (RFC 8489 §6.3.4).
    case errorResponse(code: Int, reason: String)
    /// A success response without MAPPED-ADDRESS or XOR-MAPPED-ADDRESS.
    case noMappedAddress
    /// A mapped address that cannot be anyone's (0.0.0.0, port 0, or another family than asked).
    case unusableMappedAddress(STUNEndpoint)

    /// A short name for logs and metrics labels.
    public var reason: String {
        switch self {
        case .truncated: "truncated"
        case .notSTUN: "not_stun"
        case .badMagicCookie: "bad_magic_cookie"
        case .lengthNotMultipleOfFour: "length_not_multiple_of_four"
        case .trailingBytes: "trailing_bytes"
        case .attributeOverrun: "attribute_overrun"
        case .badAttributeLength: "bad_attribute_length"
        case .badAddressFamily: "bad_address_family"
        case .badErrorCode: "bad_error_code"
        case .invalidUTF8: "invalid_utf8"
        case .fingerprintNotLast: "fingerprint_not_last"
        case .fingerprintMismatch: "fingerprint_mismatch"
        case .unexpectedMessage: "unexpected_message"
        case .transactionMismatch: "transaction_mismatch"
        case .unknownComprehensionRequired: "unknown_comprehension_required"
        case .errorResponse: "error_response"
        case .noMappedAddress: "no_mapped_address"
        case .unusableMappedAddress: "unusable_mapped_address"
        }
    }

    public var description: String {
        func h(_ v: some BinaryInteger) -> String { "0x" + String(v, radix: 16) }
        return switch self {
        case .truncated(let have, let need): "truncated STUN message: \(have) bytes, \(need) needed"
        case .notSTUN: "not a STUN message (top two bits set)"
        case .badMagicCookie(let c): "bad magic cookie \(h(c)) (expected 0x2112a442)"
        case .lengthNotMultipleOfFour(let n): "message length \(n) is not a multiple of 4"
        case .trailingBytes(let n): "\(n) bytes after the end of the message"
        case .attributeOverrun(let t, let n): "attribute \(h(t)) of length \(n) runs past the end of the message"
        case .badAttributeLength(let t, let n): "attribute \(h(t)) has a bad length \(n)"
        case .badAddressFamily(let t, let f): "attribute \(h(t)) has unknown address family \(h(f))"
        case .badErrorCode(let c, let n): "ERROR-CODE with class \(c) number \(n) (must be 300-699)"
        case .invalidUTF8(let t): "attribute \(h(t)) is not UTF-8"
        case .fingerprintNotLast: "FINGERPRINT is not the last attribute"
        case .fingerprintMismatch(let e, let f): "FINGERPRINT \(h(f)) does not match the message (\(h(e)))"
        case .unexpectedMessage(let t): "unexpected \(t)"
        case .transactionMismatch(let id): "answer for another transaction (\(id))"
        case .unknownComprehensionRequired(let ts): "unknown comprehension-required attributes \(ts.map { h($0) }.joined(separator: ", "))"
        case .errorResponse(let c, let r): "server error \(c) \(r)"
        case .noMappedAddress: "success response without a mapped address"
        case .unusableMappedAddress(let e): "unusable mapped address \(e)"
        }
    }
}
