import NATCore
import NATWire

extension NAT64Translator where Mapping: ~Copyable {
    /// RFC 7915 §5: an IPv6 packet to IPv4.
    @inlinable
    mutating func translate6to4(_ p: UnsafeRawPointer, available: Int, out: UnsafeMutableRawPointer, capacity: Int,
                                now: Timestamp) throws(DropReason) -> (verdict: Verdict, length: Int) {
        throw .unsupportedProtocol
    }
}
