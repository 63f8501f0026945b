/// What a client learns from a Binding success response (RFC 8489 §6.3.3, RFC 5780 §7), after
/// checking that it answers the request it sent.
public struct STUNBindingResponse: Hashable, Sendable {
    /// XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from a server that sent only that (RFC 8489 §14.1).
    public var mapped: STUNEndpoint
    /// OTHER-ADDRESS (RFC 5780 §7.4), or CHANGED-ADDRESS from an RFC 3489 server.
    public var otherAddress: STUNEndpoint?
    /// RESPONSE-ORIGIN (RFC 5780 §7.3), or SOURCE-ADDRESS from an RFC 3489 server.
    public var responseOrigin: STUNEndpoint?
    public var software: String?

    public init(mapped: STUNEndpoint, otherAddress: STUNEndpoint? = nil, responseOrigin: STUNEndpoint? = nil, software: String? = nil) {
        self.mapped = mapped
        self.otherAddress = otherAddress
        self.responseOrigin = responseOrigin
        self.software = software
    }

    /// Checks `message` against the request `id` and extracts the answer; `family` (0x01/0x02), when
    /// given, is the family the request was sent from, which the mapped address must have.
    public init(_ message: STUNMessage, answering id: STUNTransactionID, family: UInt8? = nil) throws(STUNError) {
        guard message.type.method == STUNMessageType.bindingMethod,
              message.type.messageClass == .successResponse || message.type.messageClass == .errorResponse
        else { throw .unexpectedMessage(message.type) }
        guard message.transactionID == id else { throw .transactionMismatch(message.transactionID) }
        if message.type.messageClass == .errorResponse {
            let e = message.first { $0.errorCode }
            throw .errorResponse(code: e?.code ?? 0, reason: e?.reason ?? "(no ERROR-CODE)")
        }
        let unknown = message.attributes.compactMap { a -> UInt16? in
            guard case .other(let t, _) = a, STUNAttributeType.isComprehensionRequired(t), !STUNAttributeType.isKnown(t) else { return nil }
            return t
        }
        guard unknown.isEmpty else { throw .unknownComprehensionRequired(unknown) }
        guard let mapped = message.first({ $0.xorMappedAddress }) ?? message.first({ $0.mappedAddress }) else { throw .noMappedAddress }
        guard !mapped.address.isUnspecified, mapped.port != 0, family == nil || mapped.address.family == family else {
            throw .unusableMappedAddress(mapped)
        }
        self.mapped = mapped
        otherAddress = message.first { $0.otherAddress } ?? message.first { $0.changedAddress }
        responseOrigin = message.first { $0.responseOrigin } ?? message.first { $0.sourceAddress }
        software = message.first { $0.software }
    }

    /// Decodes `bytes` (one datagram) and checks it as above.
    public init(bytes: [UInt8], answering id: STUNTransactionID, family: UInt8? = nil) throws(STUNError) {
        try self.init(try STUNMessage(decoding: bytes), answering: id, family: family)
    }
}

extension STUNMessage {
    /// A Binding success response, as a server (or a test) writes it: XOR-MAPPED-ADDRESS, and the
    /// RFC 5780 attributes when given.
    public static func bindingSuccess(id: STUNTransactionID, mapped: STUNEndpoint, responseOrigin: STUNEndpoint? = nil,
                                      otherAddress: STUNEndpoint? = nil, software: String? = nil) -> STUNMessage {
        var a: [STUNAttribute] = [.xorMappedAddress(mapped)]
        if let responseOrigin { a.append(.responseOrigin(responseOrigin)) }
        if let otherAddress { a.append(.otherAddress(otherAddress)) }
        if let software { a.append(.software(software)) }
        return STUNMessage(type: .bindingSuccess, transactionID: id, attributes: a)
    }

    /// A Binding error response (RFC 8489 §6.3.4), with UNKNOWN-ATTRIBUTES for a 420.
    public static func bindingError(id: STUNTransactionID, code: Int, reason: String, unknown: [UInt16] = []) -> STUNMessage {
        var a: [STUNAttribute] = [.errorCode(code: code, reason: reason)]
        if !unknown.isEmpty { a.append(.unknownAttributes(unknown)) }
        return STUNMessage(type: .bindingError, transactionID: id, attributes: a)
    }
}
