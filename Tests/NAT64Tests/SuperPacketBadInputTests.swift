#if canImport(Glibc)
import Glibc
import NATCore
import NATWire
import Testing
@testable import NAT64

/// NAT64SuperPacket reads only the bytes it was given (found by Fuzz/fuzz-nat64-superpacket under
/// AddressSanitizer).
@Suite struct SuperPacketBadInputTests {
    /// A "TCP" super-packet of 49 bytes (IPv6 header + 9): the shape checks let it through as long enough
    /// for a UDP header, then the TCP data offset was read at byte 52, past the packet. The packet here
    /// ends where readable memory ends (a PROT_NONE page follows), so that read would fault.
    @Test func rfc7915_superPacketShorterThanATCPHeaderIsRefusedWithoutReadingPastIt() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let raw = try #require(mmap(nil, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        #expect(raw != MAP_FAILED)
        defer { munmap(raw, 2 * page) }
        #expect(mprotect(raw + page, page, PROT_NONE) == 0)
        // The fuzzer's input: payload length 9, next header TCP, then 9 bytes of "TCP header".
        let packet: [UInt8] = [0x60, 0x00, 0x00, 0x30, 0x00, 0x09, 0x06, 0x40] + [UInt8](repeating: 0x20, count: 32)
            + [0x00, 0x50, 0x00, 0x64, 0x00, 0x00, 0x00, 0x01, 0x02]
        let start = raw + page - packet.count
        packet.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: packet.count) }
        let header = VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum, gsoType: VirtioNetHeader.gsoTCPv6,
                                     headerLength: 60, gsoSize: 1000, checksumStart: 40, checksumOffset: 16)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 16)
        defer { scratch.deallocate() }
        #expect(NAT64SuperPacket(packet: start, count: packet.count, header: header, scratch: scratch) == nil)
        // Shorter than the IPv6 header: refused too.
        #expect(NAT64SuperPacket(packet: start, count: 20, header: header, scratch: scratch) == nil)
    }
}
#endif
