import NATCore
import NATWire

extension NAT64Translator where Mapping: ~Copyable {
    /// RFC 7915 §4: an IPv4 packet to IPv6.
    @inlinable
    mutating func translate4to6(_ p: UnsafeRawPointer, available: Int, out: UnsafeMutableRawPointer, capacity: Int,
                                hairpin: Bool, now: Timestamp) throws(DropReason) -> (verdict: Verdict, length: Int) {
        throw .unsupportedProtocol
    }
}
