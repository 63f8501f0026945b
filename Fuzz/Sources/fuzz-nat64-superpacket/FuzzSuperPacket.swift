import FuzzNAT64
import FuzzSupport
import NAT64
import NATCore
import NATWire

// NAT64SuperPacket: a virtio-net header (the first 10 bytes) and an IPv6 GSO super-packet (the rest)
// through init, a SIIT translator on the header-only copy, place and finish, as the runtime does, then
// the kernel's part in software (VirtioNet.segment). Invariants: the header-only copy is inside the
// scratch buffer; the placed IPv4 super-packet validates (length, header checksum); it segments, and
// every segment is a valid IPv4 datagram whose DF bit is RFC 7915 §5.1's answer for its size (clear up
// to 1260 bytes, set above), the same for all.

nonisolated(unsafe) let scratch = UnsafeMutableRawPointer.allocate(byteCount: 65_600, alignment: 16)
nonisolated(unsafe) let segments = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_600, alignment: 16)

func makeSIIT() -> NAT64Translator<SIITMapping> {
    do {
        var s = SIITConfiguration()
        s.prefix = try NAT64Prefix("64:ff9b::/96", restrictsToGlobalIPv4: false)
        s.explicitMappings = [try ExplicitAddressMapping(ipv4: "198.51.100.0/24", ipv6: "2001:db8:6::/120")]
        return try NAT64Translator(configuration: translatorConfiguration(), mapping: SIITMapping(s))
    } catch {
        fatalError("fuzz configuration refused: \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let all = input(data, size)
    guard all.count >= VirtioNetHeader.minimumSize, let base = all.baseAddress else { return 0 }
    let h = VirtioNetHeader(loading: base)
    let n = all.count - VirtioNetHeader.minimumSize
    guard n > 0 else { return 0 }
    var t = makeSIIT()
    withExactCopy(of: all[VirtioNetHeader.minimumSize...]) { m in
        let p = m.baseAddress!
        guard let sp = NAT64SuperPacket(packet: p, count: n, header: h, scratch: scratch) else { return }
        let copy = sp.headerCopy
        check(copy.baseAddress == scratch && copy.count == 40 + sp.transportHeaderLength && copy.count < n,
              "header-only copy of \(copy.count) bytes for a \(n)-byte packet")
        let v = t.process(copy, now: .seconds(1))
        guard v.isForwarded else { return }
        let out = t.output
        guard sp.place(out.baseAddress!, count: out.count, into: p) else { return }
        let (h4, skip) = sp.finish(p, count: n)
        check(skip >= -1, "skip \(skip)")
        let placed = UnsafeRawBufferPointer(start: p + 20, count: n - 20)
        check(Invariants.isValidIPv4(placed), "placed IPv4 super-packet does not validate")
        check(Int(h4.checksumStart) + Int(h4.checksumOffset) + 2 <= placed.count, "checksum field outside the packet")
        var sizes: [Int] = [], df: [Bool] = []
        do {
            try VirtioNet.segment(placed, header: h4, into: segments) { seg in
                let s = UnsafeRawBufferPointer(seg)
                check(Invariants.isValidIPv4(s), "segment does not validate")
                sizes.append(s.count)
                df.append(s[6] & 0x40 != 0)
            }
        } catch {
            check(false, "the kernel could not segment the placed super-packet: \(error)")
        }
        for (size, d) in zip(sizes, df) {
            check(d == sp.dontFragment && d == (size > 1260), "segment of \(size) bytes with DF \(d) (super-packet DF \(sp.dontFragment))")
        }
    }
    return 0
}
