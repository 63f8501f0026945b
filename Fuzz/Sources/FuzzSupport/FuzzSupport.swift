import CLibFuzzer
import Glibc
import NATCore
import NATWire

/// A broken invariant: traps with the message, so libFuzzer saves the input as `crash-…`.
@inline(never)
public func check(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition { fatalError("invariant broken: \(message())", file: file, line: line) }
}

/// The fuzz input as a sequence of records, each `[control byte][length, 2 bytes big-endian][bytes]`
/// (the length is cut to what is left), so one input can carry a flow of packets: the engines keep
/// state from packet to packet. The control byte steers time and the entry point.
public struct Records: Sequence, IteratorProtocol {
    let data: UnsafeRawBufferPointer
    var at = 0
    public init(_ data: UnsafeRawBufferPointer) { self.data = data }

    public mutating func next() -> (control: UInt8, bytes: [UInt8])? {
        guard at + 3 <= data.count else { return nil }
        let control = data[at]
        let n = Swift.min(Int(data[at + 1]) << 8 | Int(data[at + 2]), data.count - at - 3)
        let bytes = Array(data[(at + 3)..<(at + 3 + n)])
        at += 3 + n
        return (control, bytes)
    }
}

/// What libFuzzer hands over, as a buffer (an empty one for a null pointer).
@inline(__always)
public func input(_ data: UnsafePointer<UInt8>?, _ size: Int) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: data.map { UnsafeRawPointer($0) }, count: data == nil ? 0 : size)
}

public enum Invariants {
    /// The bytes are one IPv4 datagram that validates, with a correct header checksum, and fills `bytes`
    /// exactly (a translated packet's length fits its buffer).
    public static func isValidIPv4(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let ip = try? IPv4View(validating: bytes) else { return false }
        return ip.isChecksumValid && ip.totalLength == bytes.count
    }

    /// The bytes are one IPv6 packet whose payload length field covers `bytes` exactly.
    public static func isValidIPv6(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let ip = try? IPv6View(validating: bytes) else { return false }
        return 40 + ip.payloadLengthField == bytes.count
    }

    /// Whether the TCP, UDP, ICMP or ICMPv6 checksum of an unfragmented IPv4 or IPv6 packet is right,
    /// by a full recomputation; nil when it does not apply (fragment, other protocol, not a packet, UDP
    /// over IPv4 without a checksum).
    public static func transportChecksumOK(_ bytes: UnsafeRawBufferPointer) -> Bool? {
        guard let first = bytes.first else { return nil }
        if first >> 4 == 4 {
            guard let ip = try? IPv4View(validating: bytes), !ip.isFragment else { return nil }
            let l4 = UnsafeRawBufferPointer(rebasing: bytes[ip.headerLength..<ip.count])
            switch ip.protocolNumber {
            case IPProtocol.tcp, IPProtocol.udp:
                if ip.protocolNumber == IPProtocol.udp {
                    guard l4.count >= 8 else { return nil }
                    if l4[6] == 0 && l4[7] == 0 { return nil }
                } else if l4.count < 20 { return nil }
                let ph = Checksum.pseudoHeaderSum(source: ip.source, destination: ip.destination, protocol: ip.protocolNumber, length: l4.count)
                return Checksum.fold(Checksum.sum(l4, initial: ph)) == 0xFFFF
            case IPProtocol.icmp:
                guard l4.count >= 8 else { return nil }
                return Checksum.fold(Checksum.sum(l4)) == 0xFFFF
            default:
                return nil
            }
        } else if first >> 4 == 6 {
            guard let ip = try? IPv6View(validating: bytes), let chain = try? ip.walkExtensionHeaders(),
                  chain.fragmentHeaderOffset == nil else { return nil }
            let proto = chain.upperLayerProtocol
            guard proto == IPProtocol.tcp || proto == IPProtocol.udp || proto == IPProtocol.icmpv6 else { return nil }
            let l4 = UnsafeRawBufferPointer(rebasing: bytes[chain.upperLayerOffset..<ip.count])
            guard l4.count >= (proto == IPProtocol.tcp ? 20 : 8) else { return nil }
            let ph = Checksum.pseudoHeaderSum(source: ip.source, destination: ip.destination, nextHeader: proto, length: l4.count)
            return Checksum.fold(Checksum.sum(l4, initial: ph)) == 0xFFFF
        }
        return nil
    }
}

/// Runs `body` over a copy of `bytes` in a heap block of exactly that size (not an array's storage,
/// which may be longer), so AddressSanitizer reports a read one byte past the packet.
public func withExactCopy<R>(of bytes: some Collection<UInt8>, _ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
    let m = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
    defer { m.deallocate() }
    m.copyBytes(from: bytes)
    return try body(m)
}

/// The whole of a fuzz target's main.swift: hands `callback` (its LLVMFuzzerTestOneInput) and the
/// command line to libFuzzer's driver, which parses libFuzzer's options and runs.
public func runLibFuzzer(_ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
}
