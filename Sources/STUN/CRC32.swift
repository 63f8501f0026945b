/// CRC-32 (ISO-HDLC, the one in zlib and Ethernet), as RFC 8489 §14.7 asks for FINGERPRINT.
public enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    /// RFC 8489 §14.7: the CRC-32 XORed with 0x5354554e.
    public static func stunFingerprint(_ bytes: some Sequence<UInt8>) -> UInt32 { checksum(bytes) ^ 0x5354_554E }
}
