import NATWire

/// NAT-PMP (RFC 6886): the requests a client sends to UDP 5351 and the server's answers, parsed and
/// built as values. No sockets, no clock: the server passes the epoch in.
public enum NATPMP {
    /// RFC 6886 §3.5: result codes.
    public enum ResultCode: UInt16, Sendable, Equatable {
        case success = 0
        case unsupportedVersion = 1
        /// Not authorized / refused (for example the policy, or a box that has turned the feature off).
        case notAuthorized = 2
        case networkFailure = 3
        case outOfResources = 4
        case unsupportedOpcode = 5
    }

    /// RFC 6886 §3.2 and §3.3: what a client asks.
    public enum Request: Sendable, Equatable {
        /// §3.2: the external address (opcode 0).
        case externalAddress
        /// §3.3: a mapping (opcode 1 UDP, 2 TCP); a lifetime of 0 deletes it (§3.4), and an internal port
        /// of 0 with lifetime 0 deletes all of the client's mappings of that protocol.
        case map(MappingProtocol, internalPort: UInt16, suggestedExternalPort: UInt16, lifetime: UInt32)
    }

    /// Why a datagram is not a request this server answers with success.
    public enum ParseError: Error, Sendable, Equatable {
        /// Too short to hold even the version and opcode, or a response (opcode ≥ 128): no answer (§3.5, §3.1).
        case ignored
        /// Version is not 0: answered with result 1 (§3.5), unless the server speaks PCP for that version.
        case unsupportedVersion(UInt8)
        /// An opcode this server does not know: answered with result 5 (§3.5).
        case unsupportedOpcode(UInt8)
        /// Shorter than its opcode's format: no answer.
        case truncated
    }

    public static let port: UInt16 = 5351
    /// §3.2.1: where the server announces a new external address (and a restart).
    public static let clientPort: UInt16 = 5350

    /// Parses a request datagram (RFC 6886 §3.2, §3.3); longer datagrams are read up to their format.
    public static func parse(_ b: [UInt8]) throws(ParseError) -> Request {
        guard b.count >= 2, b[1] < 128 else { throw .ignored }
        guard b[0] == 0 else { throw .unsupportedVersion(b[0]) }
        let r = ByteReader(b)
        switch b[1] {
        case 0:
            return .externalAddress
        case 1, 2:
            guard b.count >= 12 else { throw .truncated }
            return .map(b[1] == 1 ? .udp : .tcp, internalPort: r.u16(4), suggestedExternalPort: r.u16(6), lifetime: r.u32(8))
        default:
            throw .unsupportedOpcode(b[1])
        }
    }

    /// §3.2: the external address response (12 bytes).
    public static func externalAddressResponse(result: ResultCode, epoch: UInt32, address: IPv4Address) -> [UInt8] {
        var out: [UInt8] = [0, 128]
        out.put(result.rawValue)
        out.put(epoch)
        out.put(result == .success ? address.rawValue : 0)
        return out
    }

    /// §3.3: the mapping response (16 bytes).
    public static func mapResponse(_ p: MappingProtocol, result: ResultCode, epoch: UInt32, internalPort: UInt16,
                                   externalPort: UInt16, lifetime: UInt32) -> [UInt8] {
        var out: [UInt8] = [0, p == .udp ? 129 : 130]
        out.put(result.rawValue)
        out.put(epoch)
        out.put(internalPort)
        out.put(externalPort)
        out.put(lifetime)
        return out
    }

    /// §3.5: an error answer that carries only the common header (version, opcode + 128, result, epoch).
    public static func errorResponse(opcode: UInt8, result: ResultCode, epoch: UInt32) -> [UInt8] {
        var out: [UInt8] = [0, opcode | 128]
        out.put(result.rawValue)
        out.put(epoch)
        return out
    }
}
