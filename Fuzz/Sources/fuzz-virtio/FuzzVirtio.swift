import FuzzSupport
import NATWire

// A virtio-net header (the first 10 bytes) and a packet (the rest), as a TUN device with offloads hands
// them over: VirtioNet.completeChecksum, IPv4PartialChecksum and VirtioNet.segment. Every segment fits
// the scratch buffer, re-validates (IPv4: header checksum; both: length fields), and carries a right
// transport checksum; the segment count is what segment() returns.

nonisolated(unsafe) let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_600, alignment: 16)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let all = input(data, size)
    guard all.count >= VirtioNetHeader.minimumSize, let base = all.baseAddress else { return 0 }
    let h = VirtioNetHeader(loading: base)
    var stored = [UInt8](repeating: 0xEE, count: VirtioNetHeader.mergeableSize)
    stored.withUnsafeMutableBytes { h.store(to: $0.baseAddress!, size: VirtioNetHeader.mergeableSize) }
    check(stored.withUnsafeBytes { VirtioNetHeader(loading: $0.baseAddress!) } == h, "virtio-net header does not round-trip")
    withExactCopy(of: all[VirtioNetHeader.minimumSize...]) { m in
        let r = UnsafeRawBufferPointer(m)
        // Segmentation first, over the untouched packet.
        var emitted = 0
        let isV4 = r.first.map { $0 >> 4 == 4 } ?? false
        let l4Guessed = !isV4 && h.needsChecksum && Int(h.checksumStart) > 40
        do {
            let n = try VirtioNet.segment(r, header: h, into: scratch) { seg in
                emitted += 1
                check(seg.baseAddress == scratch.baseAddress && seg.count <= scratch.count && seg.count <= r.count,
                      "segment of \(seg.count) bytes outside the scratch buffer or longer than the packet")
                let s = UnsafeRawBufferPointer(seg)
                if isV4 {
                    check(Invariants.isValidIPv4(s), "IPv4 segment does not validate")
                } else {
                    check(Invariants.isValidIPv6(s), "IPv6 segment does not validate")
                }
                if !l4Guessed, let ok = Invariants.transportChecksumOK(s) { check(ok, "segment with a wrong transport checksum") }
            }
            check(n == emitted, "segment() returned \(n) but emitted \(emitted)")
        } catch {
            _ = error  // refused: fine
        }
        // The partial-checksum bookkeeping, then the software completion.
        if let partial = IPv4PartialChecksum(r, header: h) {
            check(partial.fieldOffset + 2 <= m.count, "partial checksum field outside the packet")
            partial.apply(to: m)
        }
        if VirtioNet.completeChecksum(m, header: h) {
            check(Int(h.checksumStart) + Int(h.checksumOffset) + 2 <= m.count, "completeChecksum wrote outside the packet")
        }
    }
    return 0
}
