import Testing
import NATWire
import NATCore
import NAPT44

// Addresses from the documentation and shared ranges only.
let clientA = IPv4Address("100.64.0.2")!
let clientB = IPv4Address("100.64.0.3")!
let serverX = IPv4Address("203.0.113.2")!
let serverY = IPv4Address("203.0.113.3")!
let routerR = IPv4Address("203.0.113.1")!
let poolP = IPv4Address("198.51.100.1")!

func config(_ preset: Behavior = .portRestrictedCone, pool: [String] = ["198.51.100.1/32"],
            _ edit: (inout NAPT44Configuration) -> Void = { _ in }) -> NAPT44Configuration {
    var c = NAPT44Configuration(pool: pool.map { IPv4Prefix($0)! })
    c.setBehavior(preset)
    c.hashSeed = 7
    c.maxSessions = 4096
    edit(&c)
    return c
}

func engine(_ c: NAPT44Configuration) -> NAPT44Engine {
    do { return try NAPT44Engine(configuration: c) } catch { fatalError("bad test configuration: \(error)") }
}

/// The fields a test looks at, read back through the wire views.
struct Parsed: Equatable, CustomStringConvertible {
    var source: IPv4Address
    var destination: IPv4Address
    var proto: UInt8
    var sourcePort: UInt16 = 0
    var destinationPort: UInt16 = 0
    var icmpType: UInt8 = 0
    var icmpCode: UInt8 = 0
    var icmpIdentifier: UInt16 = 0
    var description: String { "\(proto) \(source):\(sourcePort) -> \(destination):\(destinationPort) icmp \(icmpType)/\(icmpCode) id \(icmpIdentifier)" }
}

func parse(_ bytes: [UInt8]) -> Parsed {
    bytes.withUnsafeBytes { b in
        let ip = try! IPv4View(validating: b)
        var p = Parsed(source: ip.source, destination: ip.destination, proto: ip.protocolNumber)
        let l4 = UnsafeRawBufferPointer(rebasing: b[ip.headerLength..<ip.count])
        switch ip.protocolNumber {
        case IPProtocol.tcp, IPProtocol.udp:
            if !ip.isNonFirstFragment {
                let u = UDPView(unchecked: l4.baseAddress!, count: l4.count)
                p.sourcePort = u.sourcePort
                p.destinationPort = u.destinationPort
            }
        case IPProtocol.icmp:
            let i = ICMPv4View(unchecked: l4.baseAddress!, count: l4.count)
            p.icmpType = i.type
            p.icmpCode = i.code
            p.icmpIdentifier = i.identifier
        default: break
        }
        return p
    }
}

/// The embedded packet of an ICMP error, parsed.
func embedded(_ bytes: [UInt8]) -> [UInt8] {
    bytes.withUnsafeBytes { b in
        let ip = try! IPv4View(validating: b)
        return Array(b[(ip.headerLength + 8)..<ip.count])
    }
}

/// Verifies the IPv4 header checksum and, for unfragmented TCP/UDP/ICMP, the transport checksum, by full
/// recomputation: proves the engine's RFC 1624 incremental updates.
func checksumsValid(_ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { b in
        guard let ip = try? IPv4View(validating: b), ip.isChecksumValid else { return false }
        if ip.isFragment { return true }
        let l4 = UnsafeRawBufferPointer(rebasing: b[ip.headerLength..<ip.count])
        switch ip.protocolNumber {
        case IPProtocol.tcp:
            let ph = Checksum.pseudoHeaderSum(source: ip.source, destination: ip.destination, protocol: IPProtocol.tcp, length: l4.count)
            return Checksum.fold(Checksum.sum(l4, initial: ph)) == 0xFFFF
        case IPProtocol.udp:
            if UDPView(unchecked: l4.baseAddress!, count: l4.count).checksum == 0 { return true }
            let ph = Checksum.pseudoHeaderSum(source: ip.source, destination: ip.destination, protocol: IPProtocol.udp, length: l4.count)
            return Checksum.fold(Checksum.sum(l4, initial: ph)) == 0xFFFF
        case IPProtocol.icmp:
            return Checksum.fold(Checksum.sum(l4)) == 0xFFFF
        default:
            return true
        }
    }
}

func udp(_ s: IPv4Address, _ sp: UInt16, _ d: IPv4Address, _ dp: UInt16, payload: [UInt8] = Array("hello".utf8),
         id: UInt16 = 0x1234, checksum: Bool = true) -> [UInt8] {
    PacketBuilder.udp4(source: s, sourcePort: sp, destination: d, destinationPort: dp, payload: payload,
                       identification: id, checksum: checksum)
}

func tcp(_ s: IPv4Address, _ sp: UInt16, _ d: IPv4Address, _ dp: UInt16, _ flags: TCPFlags, seq: UInt32 = 1000,
         ack: UInt32 = 0) -> [UInt8] {
    PacketBuilder.tcp4(source: s, sourcePort: sp, destination: d, destinationPort: dp, flags: flags,
                       sequenceNumber: seq, acknowledgmentNumber: ack)
}

/// Sends one packet through the engine at time `t` seconds; returns the verdict and the bytes after.
@discardableResult
func send(_ e: inout NAPT44Engine, _ packet: [UInt8], at t: Double = 0, tenant: UInt32 = 0) -> (Verdict, [UInt8]) {
    var p = packet
    let v = e.process(&p, tenant: tenant, now: .seconds(t))
    return (v, p)
}

/// Drains the engine's generated packets.
func outputs(_ e: inout NAPT44Engine) -> [([UInt8], Verdict)] {
    var out: [([UInt8], Verdict)] = []
    while let o = e.nextOutput() { out.append((Array(o.bytes), o.verdict)) }
    return out
}

/// Sends a UDP flow out and returns the outside endpoint it got.
func openUDP(_ e: inout NAPT44Engine, _ s: IPv4Address, _ sp: UInt16, _ d: IPv4Address, _ dp: UInt16,
             at t: Double = 0, tenant: UInt32 = 0) -> (IPv4Address, UInt16) {
    let (v, out) = send(&e, udp(s, sp, d, dp), at: t, tenant: tenant)
    #expect(v == .toOutside)
    let p = parse(out)
    return (p.source, p.sourcePort)
}

/// Seeded random numbers (SplitMix64) so fuzz runs are repeatable.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
