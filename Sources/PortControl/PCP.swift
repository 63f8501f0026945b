import NATWire

/// The Port Control Protocol (RFC 6887): requests parsed and responses built as values.
public enum PCP {
    public static let version: UInt8 = 2
    /// §7: requests and responses are at most 1100 bytes.
    public static let maxMessage = 1100
    static let headerSize = 24

    /// §19.2: opcodes.
    public enum Opcode: UInt8, Sendable, Equatable {
        case announce = 0
        case map = 1
        case peer = 2

        /// The opcode-specific data's size (§14.1, §11.1, §12.1).
        var dataSize: Int {
            switch self {
            case .announce: return 0
            case .map: return 36
            case .peer: return 56
            }
        }
    }

    /// §7.4: result codes.
    public enum ResultCode: UInt8, Sendable, Equatable, CaseIterable {
        case success = 0
        case unsupportedVersion = 1
        case notAuthorized = 2
        case malformedRequest = 3
        case unsupportedOpcode = 4
        case unsupportedOption = 5
        case malformedOption = 6
        case networkFailure = 7
        case noResources = 8
        case unsupportedProtocol = 9
        case userExceededQuota = 10
        case cannotProvideExternal = 11
        case addressMismatch = 12
        case excessiveRemotePeers = 13

        /// §7.4: how long a client should wait before asking again: short-lived errors 30 s, the
        /// long-lived ones (policy, protocol support) 30 minutes.
        public var errorLifetime: UInt32 {
            switch self {
            case .success: return 0
            case .networkFailure, .noResources, .userExceededQuota, .cannotProvideExternal, .excessiveRemotePeers: return 30
            default: return 1800
            }
        }
    }

    /// §19.4: option codes; codes 0-127 must be processed, 128-255 may be ignored (§7.3).
    public enum OptionCode: UInt8, Sendable {
        case thirdParty = 1
        case preferFailure = 2
        case filter = 3
    }

    /// MAP's and PEER's common fields (§11.1, §12.1).
    public struct MappingData: Sendable, Equatable {
        public var nonce: [UInt8]
        /// The IANA protocol number; 0 means all protocols.
        public var protocolNumber: UInt8
        public var internalPort: UInt16
        public var suggestedExternalPort: UInt16
        public var suggestedExternalAddress: IPv6Address

        public init(nonce: [UInt8], protocolNumber: UInt8, internalPort: UInt16, suggestedExternalPort: UInt16,
                    suggestedExternalAddress: IPv6Address) {
            self.nonce = nonce
            self.protocolNumber = protocolNumber
            self.internalPort = internalPort
            self.suggestedExternalPort = suggestedExternalPort
            self.suggestedExternalAddress = suggestedExternalAddress
        }
    }

    /// A request that parsed (§7.1), options checked (§7.3).
    public struct Request: Sendable, Equatable {
        public var opcode: Opcode
        public var lifetime: UInt32
        public var clientAddress: IPv6Address
        /// MAP and PEER.
        public var mapping: MappingData?
        /// PEER: the remote peer (§12.1).
        public var remotePort: UInt16 = 0
        public var remoteAddress: IPv6Address = .any
        /// THIRD_PARTY (§13.1): the internal address the mapping is for.
        public var thirdParty: IPv6Address?
        /// PREFER_FAILURE (§13.2): fail rather than assign another port or address.
        public var preferFailure = false
        /// The options as received (echoed in responses).
        public var options: [UInt8] = []
    }

    /// Why a request gets an error response, or none.
    public enum ParseError: Error, Sendable, Equatable {
        /// §8.3: under 2 bytes, or a response (R bit set): silently dropped.
        case ignored
        /// An error response: `result`, for `opcode`, echoing `body` (opcode data and options, §7.2).
        case failure(ResultCode, opcode: UInt8, body: [UInt8])
    }

    /// RFC 6887 §8.3: checks the header, the opcode and the options, in the order the section gives.
    /// A NAT-PMP request (version 0) is the caller's to route before this.
    public static func parse(_ b: [UInt8]) throws(ParseError) -> Request {
        guard b.count >= 2, b[1] & 0x80 == 0 else { throw .ignored }
        let op = b[1] & 0x7F
        guard b[0] == version else { throw .failure(.unsupportedVersion, opcode: op, body: []) }
        guard b.count >= headerSize, b.count <= maxMessage, b.count % 4 == 0 else {
            // The echo is cut to whole 32-bit words: every PCP message is a multiple of 4 bytes (§7).
            let end = headerSize + ((min(b.count, maxMessage) - headerSize) & ~3)
            let body = b.count > headerSize ? Array(b[headerSize..<end]) : []
            throw .failure(.malformedRequest, opcode: op, body: body)
        }
        let all = Array(b[headerSize...])
        guard let opcode = Opcode(rawValue: op) else { throw .failure(.unsupportedOpcode, opcode: op, body: all) }
        guard all.count >= opcode.dataSize else { throw .failure(.malformedRequest, opcode: op, body: all) }
        let r = ByteReader(b)
        var req = Request(opcode: opcode, lifetime: r.u32(4), clientAddress: r.ipv6(8))
        if opcode != .announce {
            req.mapping = MappingData(nonce: r.slice(24, 12), protocolNumber: r.u8(36), internalPort: r.u16(40),
                                      suggestedExternalPort: r.u16(42), suggestedExternalAddress: r.ipv6(44))
        }
        if opcode == .peer {
            req.remotePort = r.u16(60)
            req.remoteAddress = r.ipv6(64)
        }
        var o = headerSize + opcode.dataSize
        req.options = Array(b[o...])
        while o < b.count {
            guard o + 4 <= b.count else { throw .failure(.malformedOption, opcode: op, body: all) }
            let code = r.u8(o), length = Int(r.u16(o + 2))
            let padded = (length + 3) & ~3
            guard o + 4 + padded <= b.count else { throw .failure(.malformedOption, opcode: op, body: all) }
            switch OptionCode(rawValue: code) {
            case .thirdParty:
                guard length == 16, req.thirdParty == nil, opcode != .announce else { throw .failure(.malformedOption, opcode: op, body: all) }
                req.thirdParty = r.ipv6(o + 4)
            case .preferFailure:
                // §13.2: no data, only once, and only in MAP.
                guard length == 0, !req.preferFailure, opcode == .map else { throw .failure(.malformedOption, opcode: op, body: all) }
                req.preferFailure = true
            case .filter:
                throw .failure(.unsupportedOption, opcode: op, body: all)
            case nil:
                if code < 128 { throw .failure(.unsupportedOption, opcode: op, body: all) }
            }
            o += 4 + padded
        }
        return req
    }

    /// §7.2: a response: the common header, then `body` (opcode data and options).
    public static func response(opcode: UInt8, result: ResultCode, lifetime: UInt32, epoch: UInt32, body: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [version, opcode | 0x80, 0, result.rawValue]
        out.reserveCapacity(headerSize + body.count)
        out.put(lifetime)
        out.put(epoch)
        out.zeros(12)
        out.append(contentsOf: body.prefix(maxMessage - headerSize))
        // §7: a multiple of 4 bytes, whatever the body was.
        while out.count % 4 != 0 { out.append(0) }
        return out
    }

    /// The MAP (and the first part of PEER) opcode data with the assigned external endpoint (§11.1).
    public static func mappingBody(_ m: MappingData, externalPort: UInt16, externalAddress: IPv6Address) -> [UInt8] {
        var out: [UInt8] = []
        out.append(contentsOf: m.nonce)
        out.put(m.protocolNumber)
        out.zeros(3)
        out.put(m.internalPort)
        out.put(externalPort)
        out.put(externalAddress)
        return out
    }

    /// PEER's data (§12.1): the MAP part, then the remote peer.
    public static func peerBody(_ m: MappingData, externalPort: UInt16, externalAddress: IPv6Address,
                                remotePort: UInt16, remoteAddress: IPv6Address) -> [UInt8] {
        var out = mappingBody(m, externalPort: externalPort, externalAddress: externalAddress)
        out.put(remotePort)
        out.zeros(2)
        out.put(remoteAddress)
        return out
    }

    /// §14.1.3: the unsolicited ANNOUNCE a server sends after it restarted (its epoch starts again).
    public static func announce(epoch: UInt32) -> [UInt8] {
        response(opcode: Opcode.announce.rawValue, result: .success, lifetime: 0, epoch: epoch, body: [])
    }

    /// A request as a client builds it (tests, and a client embedded elsewhere).
    public static func request(_ opcode: Opcode, lifetime: UInt32, client: IPv6Address, mapping: MappingData? = nil,
                               remotePort: UInt16 = 0, remoteAddress: IPv6Address = .any, options: [UInt8] = []) -> [UInt8] {
        var out: [UInt8] = [version, opcode.rawValue, 0, 0]
        out.put(lifetime)
        out.put(client)
        if let mapping {
            if opcode == .peer {
                out += peerBody(mapping, externalPort: mapping.suggestedExternalPort, externalAddress: mapping.suggestedExternalAddress,
                                remotePort: remotePort, remoteAddress: remoteAddress)
            } else {
                out += mappingBody(mapping, externalPort: mapping.suggestedExternalPort, externalAddress: mapping.suggestedExternalAddress)
            }
        }
        return out + options
    }

    /// An option (§7.3): code, reserved, length, data padded to 4 bytes.
    public static func option(_ code: UInt8, _ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [code, 0]
        out.put(UInt16(data.count))
        out += data
        out.zeros((4 - data.count % 4) % 4)
        return out
    }
}
