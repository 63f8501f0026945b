import NATWire

// RFC 8489 §5 (header), §14 (attributes): bytes to messages and back. Decoding checks every length
// before it reads, so any input either decodes or throws a `STUNError`; nothing traps.

extension STUNMessage {
    /// The total length (header + attributes) of the message whose 20-byte header starts at `start`,
    /// after checking what the header alone can tell. For TCP framing (RFC 8489 §7.2.2).
    public static func messageLength(header b: [UInt8], at start: Int = 0) throws(STUNError) -> Int {
        // The first byte alone tells a STUN message from most other protocols (RFC 7983 §7).
        if b.count > start, b[start] & 0xC0 != 0 { throw .notSTUN }
        guard b.count - start >= headerLength else { throw .truncated(have: max(0, b.count - start), need: headerLength) }
        let cookie = be32(b, start + 4)
        guard cookie == stunMagicCookie else { throw .badMagicCookie(cookie) }
        let len = Int(be16(b, start + 2))
        guard len % 4 == 0 else { throw .lengthNotMultipleOfFour(len) }
        return headerLength + len
    }

    /// Decodes exactly one message from `bytes` (a whole datagram: trailing bytes are refused).
    public init(decoding bytes: [UInt8]) throws(STUNError) {
        let total = try Self.messageLength(header: bytes)
        guard bytes.count >= total else { throw .truncated(have: bytes.count, need: total) }
        guard bytes.count == total else { throw .trailingBytes(bytes.count - total) }
        try self.init(decoding: bytes, at: 0, total: total)
    }

    /// Decodes the message of `total` bytes at `start` (the header already checked).
    init(decoding b: [UInt8], at start: Int, total: Int) throws(STUNError) {
        let type = STUNMessageType(rawValue: be16(b, start))
        let id = STUNTransactionID(be32(b, start + 8), be32(b, start + 12), be32(b, start + 16))
        var attributes: [STUNAttribute] = []
        let end = start + total
        var o = start + Self.headerLength
        var sawFingerprint = false
        while o < end {
            guard !sawFingerprint else { throw .fingerprintNotLast }
            guard end - o >= 4 else { throw .truncated(have: end - o, need: 4) }
            let t = be16(b, o), len = Int(be16(b, o + 2))
            let v = o + 4
            let padded = (len + 3) & ~3
            guard padded <= end - v else { throw .attributeOverrun(type: t, length: len) }
            if t == STUNAttributeType.fingerprint {
                guard len == 4 else { throw .badAttributeLength(type: t, length: len) }
                let found = be32(b, v)
                let expected = CRC32.stunFingerprint(b[start..<o])
                guard found == expected else { throw .fingerprintMismatch(expected: expected, found: found) }
                attributes.append(.fingerprint(found))
                sawFingerprint = true
            } else {
                attributes.append(try Self.decodeAttribute(type: t, b, v, len, id: id))
            }
            o = v + padded
        }
        self.init(type: type, transactionID: id, attributes: attributes)
    }

    static func decodeAttribute(type t: UInt16, _ b: [UInt8], _ v: Int, _ len: Int,
                                id: STUNTransactionID) throws(STUNError) -> STUNAttribute {
        typealias A = STUNAttributeType
        switch t {
        case A.mappedAddress: return .mappedAddress(try decodeAddress(t, b, v, len, xor: nil))
        case A.xorMappedAddress: return .xorMappedAddress(try decodeAddress(t, b, v, len, xor: id))
        case A.sourceAddress: return .sourceAddress(try decodeAddress(t, b, v, len, xor: nil))
        case A.changedAddress: return .changedAddress(try decodeAddress(t, b, v, len, xor: nil))
        case A.responseOrigin: return .responseOrigin(try decodeAddress(t, b, v, len, xor: nil))
        case A.otherAddress: return .otherAddress(try decodeAddress(t, b, v, len, xor: nil))
        case A.changeRequest:
            guard len == 4 else { throw .badAttributeLength(type: t, length: len) }
            return .changeRequest(changeIP: b[v + 3] & 0x04 != 0, changePort: b[v + 3] & 0x02 != 0)
        case A.responsePort:
            guard len == 4 || len == 2 else { throw .badAttributeLength(type: t, length: len) }
            return .responsePort(be16(b, v))
        case A.padding:
            return .padding(len)
        case A.errorCode:
            guard len >= 4 else { throw .badAttributeLength(type: t, length: len) }
            let cls = b[v + 2] & 0x07, number = b[v + 3]
            guard (3...6).contains(cls), number < 100 else { throw .badErrorCode(classValue: cls, number: number) }
            guard let reason = String(validating: b[(v + 4)..<(v + len)], as: UTF8.self) else { throw .invalidUTF8(type: t) }
            return .errorCode(code: Int(cls) * 100 + Int(number), reason: reason)
        case A.unknownAttributes:
            guard len % 2 == 0 else { throw .badAttributeLength(type: t, length: len) }
            return .unknownAttributes(stride(from: v, to: v + len, by: 2).map { be16(b, $0) })
        case A.software:
            guard let s = String(validating: b[v..<(v + len)], as: UTF8.self) else { throw .invalidUTF8(type: t) }
            return .software(s)
        default:
            return .other(type: t, value: Array(b[v..<(v + len)]))
        }
    }

    /// RFC 8489 §14.1 / §14.2: reserved byte, family, port, address (XORed with the cookie and id for X-M-A).
    static func decodeAddress(_ t: UInt16, _ b: [UInt8], _ v: Int, _ len: Int,
                              xor id: STUNTransactionID?) throws(STUNError) -> STUNEndpoint {
        guard len >= 4 else { throw .badAttributeLength(type: t, length: len) }
        let family = b[v + 1]
        var port = be16(b, v + 2)
        if id != nil { port ^= UInt16(stunMagicCookie >> 16) }
        switch family {
        case 0x01:
            guard len == 8 else { throw .badAttributeLength(type: t, length: len) }
            var a = be32(b, v + 4)
            if id != nil { a ^= stunMagicCookie }
            return STUNEndpoint(IPv4Address(a), port)
        case 0x02:
            guard len == 20 else { throw .badAttributeLength(type: t, length: len) }
            var hi = UInt64(be32(b, v + 4)) << 32 | UInt64(be32(b, v + 8))
            var lo = UInt64(be32(b, v + 12)) << 32 | UInt64(be32(b, v + 16))
            if let id {
                hi ^= UInt64(stunMagicCookie) << 32 | UInt64(id.w0)
                lo ^= UInt64(id.w1) << 32 | UInt64(id.w2)
            }
            return STUNEndpoint(IPv6Address(high: hi, low: lo), port)
        default:
            throw .badAddressFamily(type: t, family: family)
        }
    }

    // MARK: Encoding

    /// The message's bytes; with `fingerprint`, a FINGERPRINT attribute is appended (RFC 8489 §14.7)
    /// unless the attributes already end with one (its value is then recomputed). `padding` is the value
    /// of the bytes that pad attributes to 4 bytes (RFC 8489 §14: any value; receivers ignore it).
    public func encode(fingerprint: Bool = false, padding: UInt8 = 0) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        put16(&out, type.rawValue)
        put16(&out, 0)
        put32(&out, stunMagicCookie)
        put32(&out, transactionID.w0)
        put32(&out, transactionID.w1)
        put32(&out, transactionID.w2)
        var attrs = attributes
        if case .fingerprint = attrs.last { attrs.removeLast() }
        for a in attrs { encodeAttribute(a, into: &out, padding: padding) }
        if fingerprint || attributes.last?.type == STUNAttributeType.fingerprint {
            setLength(&out, out.count - Self.headerLength + 8)
            let crc = CRC32.stunFingerprint(out)
            put16(&out, STUNAttributeType.fingerprint)
            put16(&out, 4)
            put32(&out, crc)
        } else {
            setLength(&out, out.count - Self.headerLength)
        }
        return out
    }

    /// Writes the message into `buffer` (which may hold anything) and returns the byte count, or nil
    /// when it does not fit. Bytes after the message are left as they were.
    public func encode(into buffer: UnsafeMutableRawBufferPointer, fingerprint: Bool = false, padding: UInt8 = 0) -> Int? {
        let bytes = encode(fingerprint: fingerprint, padding: padding)
        guard bytes.count <= buffer.count else { return nil }
        for (i, x) in bytes.enumerated() { buffer[i] = x }
        return bytes.count
    }

    func encodeAttribute(_ a: STUNAttribute, into out: inout [UInt8], padding: UInt8) {
        var v: [UInt8] = []
        switch a {
        case .mappedAddress(let e), .sourceAddress(let e), .changedAddress(let e), .responseOrigin(let e), .otherAddress(let e):
            encodeAddress(e, xor: nil, into: &v)
        case .xorMappedAddress(let e):
            encodeAddress(e, xor: transactionID, into: &v)
        case .changeRequest(let ip, let port):
            put32(&v, (ip ? 0x04 : 0) | (port ? 0x02 : 0))
        case .responsePort(let p):
            put16(&v, p)
            put16(&v, 0)
        case .padding(let n):
            v = [UInt8](repeating: 0, count: max(0, min(n, 0xFFFF)))
        case .errorCode(let code, let reason):
            put16(&v, 0)
            v.append(UInt8(truncatingIfNeeded: code / 100) & 0x07)
            v.append(UInt8(truncatingIfNeeded: code % 100))
            v += Array(reason.utf8)
        case .unknownAttributes(let ts):
            for t in ts { put16(&v, t) }
        case .software(let s):
            v = Array(s.utf8)
        case .fingerprint(let f):
            put32(&v, f)
        case .other(_, let bytes):
            v = bytes
        }
        put16(&out, a.type)
        put16(&out, UInt16(truncatingIfNeeded: v.count))
        out += v
        // RFC 8489 §14: padded to a multiple of 4 bytes (the padding's value is ignored by receivers).
        while out.count % 4 != 0 { out.append(padding) }
    }

    func encodeAddress(_ e: STUNEndpoint, xor id: STUNTransactionID?, into v: inout [UInt8]) {
        v.append(0)
        v.append(e.address.family)
        put16(&v, id == nil ? e.port : e.port ^ UInt16(stunMagicCookie >> 16))
        switch e.address {
        case .v4(let a):
            put32(&v, id == nil ? a.rawValue : a.rawValue ^ stunMagicCookie)
        case .v6(let a):
            var hi = a.high, lo = a.low
            if let id {
                hi ^= UInt64(stunMagicCookie) << 32 | UInt64(id.w0)
                lo ^= UInt64(id.w1) << 32 | UInt64(id.w2)
            }
            put32(&v, UInt32(truncatingIfNeeded: hi >> 32)); put32(&v, UInt32(truncatingIfNeeded: hi))
            put32(&v, UInt32(truncatingIfNeeded: lo >> 32)); put32(&v, UInt32(truncatingIfNeeded: lo))
        }
    }
}

@inline(__always) func be16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) << 8 | UInt16(b[i + 1]) }
@inline(__always) func be32(_ b: [UInt8], _ i: Int) -> UInt32 {
    UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
}
@inline(__always) func put16(_ out: inout [UInt8], _ v: UInt16) { out.append(UInt8(v >> 8)); out.append(UInt8(v & 0xFF)) }
@inline(__always) func put32(_ out: inout [UInt8], _ v: UInt32) { put16(&out, UInt16(v >> 16)); put16(&out, UInt16(v & 0xFFFF)) }
func setLength(_ out: inout [UInt8], _ n: Int) {
    out[2] = UInt8(truncatingIfNeeded: n >> 8)
    out[3] = UInt8(truncatingIfNeeded: n)
}

/// RFC 8489 §7.2.2: over TCP, STUN messages follow each other on the stream with no extra framing;
/// each one's header says how long it is. Feed bytes as they arrive; take whole messages out.
public struct STUNStreamFramer: Sendable {
    private var buffer: [UInt8] = []
    /// Refuse to buffer more than this (a message is at most 20 + 65532 bytes).
    public static let maximumMessage = STUNMessage.headerLength + 0xFFFC

    public init() {}

    public var bufferedCount: Int { buffer.count }

    public mutating func append(_ bytes: some Sequence<UInt8>) { buffer.append(contentsOf: bytes) }

    /// The next whole message, nil when more bytes are needed. A malformed header throws: the stream
    /// cannot be resynchronised after that and should be closed.
    public mutating func next() throws(STUNError) -> STUNMessage? {
        guard buffer.count >= STUNMessage.headerLength else { return nil }
        let total = try STUNMessage.messageLength(header: buffer)
        guard buffer.count >= total else { return nil }
        let m = try STUNMessage(decoding: buffer, at: 0, total: total)
        buffer.removeFirst(total)
        return m
    }
}
