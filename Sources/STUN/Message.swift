import NATWire

/// RFC 8489 §5: the magic cookie in bytes 4-7 of every STUN message.
public let stunMagicCookie: UInt32 = 0x2112_A442

/// RFC 8489 §5: the message class (C1 C0 bits of the type).
public enum STUNClass: UInt8, Sendable, Hashable, CustomStringConvertible {
    case request = 0, indication = 1, successResponse = 2, errorResponse = 3

    public var description: String {
        switch self {
        case .request: "request"
        case .indication: "indication"
        case .successResponse: "success response"
        case .errorResponse: "error response"
        }
    }
}

/// RFC 8489 §5 / §18.2: a method and a class packed into the 14-bit message type.
public struct STUNMessageType: Hashable, Sendable, CustomStringConvertible {
    /// The 12-bit method; RFC 8489 §18.2 defines only Binding (0x001).
    public var method: UInt16
    public var messageClass: STUNClass

    public static let bindingMethod: UInt16 = 0x001
    public static let bindingRequest = STUNMessageType(method: bindingMethod, messageClass: .request)
    public static let bindingSuccess = STUNMessageType(method: bindingMethod, messageClass: .successResponse)
    public static let bindingError = STUNMessageType(method: bindingMethod, messageClass: .errorResponse)
    public static let bindingIndication = STUNMessageType(method: bindingMethod, messageClass: .indication)

    public init(method: UInt16, messageClass: STUNClass) {
        self.method = method & 0x0FFF
        self.messageClass = messageClass
    }

    /// RFC 8489 Figure 3: M11-M7 C1 M6-M4 C0 M3-M0.
    public init(rawValue v: UInt16) {
        method = (v & 0x000F) | ((v & 0x00E0) >> 1) | ((v & 0x3E00) >> 2)
        messageClass = STUNClass(rawValue: UInt8(((v >> 4) & 1) | ((v >> 7) & 2)))!
    }

    public var rawValue: UInt16 {
        let c = UInt16(messageClass.rawValue)
        return (method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
    }

    public var description: String {
        method == Self.bindingMethod ? "Binding \(messageClass)" : "method 0x\(String(method, radix: 16)) \(messageClass)"
    }
}

/// RFC 8489 §14.7: the 96-bit transaction id, as three big-endian words.
public struct STUNTransactionID: Hashable, Sendable, CustomStringConvertible {
    public var w0: UInt32, w1: UInt32, w2: UInt32

    public init(_ w0: UInt32, _ w1: UInt32, _ w2: UInt32) { self.w0 = w0; self.w1 = w1; self.w2 = w2 }

    /// A fresh id "uniformly and randomly chosen from the interval 0 .. 2**96-1" (RFC 8489 §6).
    public static func random(using rng: inout some RandomNumberGenerator) -> STUNTransactionID {
        STUNTransactionID(UInt32.random(in: .min ... .max, using: &rng), UInt32.random(in: .min ... .max, using: &rng),
                          UInt32.random(in: .min ... .max, using: &rng))
    }

    public static func random() -> STUNTransactionID {
        var g = SystemRandomNumberGenerator()
        return random(using: &g)
    }

    /// Byte `i` (0-11) in network order.
    public func byte(_ i: Int) -> UInt8 {
        let w = i < 4 ? w0 : (i < 8 ? w1 : w2)
        return UInt8(truncatingIfNeeded: w >> (UInt32(3 - (i & 3)) * 8))
    }

    public var description: String {
        (0..<12).map { b in let s = String(byte(b), radix: 16); return s.count == 1 ? "0" + s : s }.joined()
    }
}

/// One STUN message: type, transaction id and attributes in order (RFC 8489 §5, §14).
public struct STUNMessage: Hashable, Sendable {
    public var type: STUNMessageType
    public var transactionID: STUNTransactionID
    public var attributes: [STUNAttribute]

    public init(type: STUNMessageType, transactionID: STUNTransactionID, attributes: [STUNAttribute] = []) {
        self.type = type
        self.transactionID = transactionID
        self.attributes = attributes
    }

    /// RFC 8489 §5: the fixed header is 20 bytes.
    public static let headerLength = 20

    /// A Binding request, with the RFC 5780 attributes a behaviour-discovery client adds when asked.
    public static func bindingRequest(id: STUNTransactionID, changeIP: Bool = false, changePort: Bool = false,
                                      responsePort: UInt16? = nil, padding: Int? = nil, software: String? = nil) -> STUNMessage {
        var a: [STUNAttribute] = []
        if let software { a.append(.software(software)) }
        if changeIP || changePort { a.append(.changeRequest(changeIP: changeIP, changePort: changePort)) }
        if let responsePort { a.append(.responsePort(responsePort)) }
        if let padding { a.append(.padding(padding)) }
        return STUNMessage(type: .bindingRequest, transactionID: id, attributes: a)
    }

    /// The first attribute `pick` returns a value for.
    public func first<T>(_ pick: (STUNAttribute) -> T?) -> T? {
        for a in attributes { if let v = pick(a) { return v } }
        return nil
    }
}
