import FuzzSupport
import NATWire
import STUN

// STUN (RFC 8489, RFC 5780, RFC 3489 attributes) from a stranger: the input as one datagram, as a TCP
// stream cut in three (STUNStreamFramer), as text (IP4P, addresses, endpoints) and its first 16 bytes as
// an IP4P address. Invariants: a message that decodes re-encodes to bytes that decode to the same
// message, and encode(into:) writes exactly encode()'s bytes; the framer hands out only messages that
// decode on their own and never more bytes than it got; parsed text prints back to the same value.

func withoutFingerprint(_ m: STUNMessage) -> STUNMessage {
    var c = m
    c.attributes = m.attributes.map { if case .fingerprint = $0 { .fingerprint(0) } else { $0 } }
    return c
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(input(data, size))

    // One datagram.
    if let m = try? STUNMessage(decoding: bytes) {
        let encoded = m.encode()
        do {
            let again = try STUNMessage(decoding: encoded)
            // encode() computes FINGERPRINT afresh over its own bytes (its padding is zeros), so that value may differ.
            check(withoutFingerprint(again) == withoutFingerprint(m), "re-encoded message decodes differently: \(m) vs \(again)")
        } catch {
            check(false, "re-encoded message does not decode: \(error)")
        }
        var buffer = [UInt8](repeating: 0xA5, count: encoded.count + 1)
        let written = buffer.withUnsafeMutableBytes { m.encode(into: $0) }
        check(written == encoded.count && Array(buffer[0..<encoded.count]) == encoded && buffer[encoded.count] == 0xA5,
              "encode(into:) wrote \(String(describing: written)) bytes, encode() \(encoded.count)")
        let short = buffer.withUnsafeMutableBytes { m.encode(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<(encoded.count - 1)])) }
        check(short == nil, "encode(into:) wrote into a buffer one byte too short")
        _ = try? STUNBindingResponse(m, answering: m.transactionID)
        _ = try? STUNBindingResponse(m, answering: m.transactionID, family: 1)
    }

    // A TCP stream, in three pieces.
    var framer = STUNStreamFramer()
    var framed = 0
    let cuts = [0, bytes.count / 3, bytes.count * 2 / 3, bytes.count]
    streaming: for k in 0..<3 {
        framer.append(bytes[cuts[k]..<cuts[k + 1]])
        while true {
            do {
                guard let m = try framer.next() else { break }
                framed += m.encode().count
                check(framed <= cuts[k + 1], "framer handed out \(framed) bytes of \(cuts[k + 1])")
            } catch {
                break streaming
            }
        }
    }

    // Text.
    let text = String(decoding: bytes, as: UTF8.self)
    if let (a, p) = IP4P.parse(text) {
        let back = IP4P.parse(IP4P.text(a, port: p))
        check(back?.address == a && back?.port == p, "IP4P text does not round-trip")
    }
    if let a = STUNAddress(text) { check(STUNAddress(a.description) == a, "STUN address \(a) does not print back") }
    if let e = STUNEndpoint(text) { check(STUNEndpoint(e.description) == e, "STUN endpoint \(e) does not print back") }
    if let e = STUNEndpoint(text, defaultPort: 3478) { check(STUNEndpoint(e.description) == e, "STUN endpoint \(e) does not print back") }

    // An IP4P address in binary.
    if bytes.count >= 16 {
        var high: UInt64 = 0, low: UInt64 = 0
        for i in 0..<8 { high = high << 8 | UInt64(bytes[i]); low = low << 8 | UInt64(bytes[8 + i]) }
        let a = IPv6Address(high: high, low: low)
        if let (v4, port) = IP4P.decode(a) { check(IP4P.encode(v4, port: port) == a, "IP4P \(a) does not round-trip") }
    }
    return 0
}
