import Testing
import NATCore
import NATWire
@testable import NAT64

// Stateful NAT64 (RFC 6146) test fixtures. Addresses from the documentation ranges only: IPv6 hosts in
// 2001:db8:6::/64, IPv4 servers in 192.0.2.0/24 seen under 64:ff9b::/96, the pool in 198.51.100.64/30.

/// The NAT64's IPv4 pool.
let statefulPool = IPv4Prefix("198.51.100.64/30")!
let poolFirst = IPv4Address("198.51.100.64")!
/// More IPv6 hosts and IPv4 servers.
let host6b = IPv6Address("2001:db8:6::7")!
let server4b = IPv4Address("192.0.2.34")!
let server6b = IPv6Address("64:ff9b::192.0.2.34")!
let server4c = IPv4Address("192.0.2.35")!
let server6c = IPv6Address("64:ff9b::192.0.2.35")!

func addr6(_ s: String) -> IPv6Address { IPv6Address(s)! }
func addr4(_ s: String) -> IPv4Address { IPv4Address(s)! }

/// A stateful configuration with a fixed hash seed (reproducible ports), the pool above and small tables.
func statefulConfiguration(_ edit: (inout NAPT64Configuration) -> Void = { _ in }) -> NAPT64Configuration {
    var c = NAPT64Configuration(prefix: try! NAT64Prefix("64:ff9b::/96", restrictsToGlobalIPv4: false), pool: [statefulPool])
    c.hashSeed = 0x6146
    c.maxSessions = 4096
    edit(&c)
    return c
}

func makeStateful(_ edit: (inout NAPT64Configuration) -> Void = { _ in },
                  translator: (inout NAT64Configuration) -> Void = { _ in }) -> NAPT64Translator {
    do {
        return try NAT64Translator(configuration: translatorConfiguration(translator),
                                   mapping: NAPT64Mapping(configuration: statefulConfiguration(edit)))
    } catch {
        fatalError("bad test configuration: \(error)")
    }
}

/// Translates one packet with any mapping; everything generated is collected.
func run<M: NAT64Mapping & ~Copyable>(_ t: inout NAT64Translator<M>, _ packet: [UInt8], at now: Timestamp) -> Outcome {
    var copy = packet
    let v = copy.withUnsafeMutableBytes { t.process($0, now: now) }
    let out = v.isForwarded ? Array(UnsafeRawBufferPointer(t.output)) : []
    var gen: [(bytes: [UInt8], verdict: Verdict)] = []
    while let g = t.nextOutput() { gen.append((Array(UnsafeRawBufferPointer(g.bytes)), g.verdict)) }
    return Outcome(verdict: v, bytes: out, generated: gen)
}

/// Runs the mapping's timers and collects what they generated.
func expire(_ t: inout NAPT64Translator, at now: Timestamp) -> [(bytes: [UInt8], verdict: Verdict)] {
    t.mapping.expire(now: now)
    var gen: [(bytes: [UInt8], verdict: Verdict)] = []
    while let g = t.nextOutput() { gen.append((Array(UnsafeRawBufferPointer(g.bytes)), g.verdict)) }
    return gen
}

func at(_ s: Double) -> Timestamp { .seconds(s) }

/// The BIB entry of an IPv6 transport address.
func bib(_ t: borrowing NAPT64Translator, _ p: NAT64Protocol, _ a: IPv6Address, _ port: UInt16) -> NAT64BindingInfo? {
    t.mapping.binding(p, ipv6: a, port: port)
}

/// The session of an IPv6 flow.
func session(_ t: borrowing NAPT64Translator, _ p: NAT64Protocol, _ a: IPv6Address, _ port: UInt16,
             _ remote: IPv4Address, _ remotePort: UInt16, at now: Timestamp = .zero) -> NAT64SessionInfo? {
    t.mapping.session(p, ipv6: a, port: port, remote: remote, remotePort: remotePort, now: now)
}

// Packet builders for the usual flows (IPv6 side hop limit 64 → IPv4 TTL 63 and back).

func udp6(_ src: IPv6Address = host6, _ sp: UInt16 = 5000, _ dst: IPv6Address = server6, _ dp: UInt16 = 53,
          n: Int = 20, hopLimit: UInt8 = 64) -> [UInt8] {
    PacketBuilder.udp6(source: src, sourcePort: sp, destination: dst, destinationPort: dp, payload: payload(n), hopLimit: hopLimit)
}

func udp4(_ src: IPv4Address, _ sp: UInt16, _ dst: IPv4Address, _ dp: UInt16, n: Int = 20, ttl: UInt8 = 64,
          id: UInt16 = 0) -> [UInt8] {
    PacketBuilder.udp4(source: src, sourcePort: sp, destination: dst, destinationPort: dp, payload: payload(n), ttl: ttl,
                       identification: id, dontFragment: false)
}

func tcp6(_ src: IPv6Address = host6, _ sp: UInt16 = 40000, _ dst: IPv6Address = server6, _ dp: UInt16 = 80,
          _ flags: TCPFlags, seq: UInt32 = 1000, ack: UInt32 = 0, n: Int = 0, hopLimit: UInt8 = 64) -> [UInt8] {
    PacketBuilder.tcp6(source: src, sourcePort: sp, destination: dst, destinationPort: dp, flags: flags,
                       sequenceNumber: seq, acknowledgmentNumber: ack, payload: payload(n), hopLimit: hopLimit)
}

/// host6:40000 → server6:80 with these flags.
func tcp6(_ flags: TCPFlags, seq: UInt32 = 1000, ack: UInt32 = 0, n: Int = 0, hopLimit: UInt8 = 64) -> [UInt8] {
    tcp6(host6, 40000, server6, 80, flags, seq: seq, ack: ack, n: n, hopLimit: hopLimit)
}

func tcp4(_ src: IPv4Address, _ sp: UInt16, _ dst: IPv4Address, _ dp: UInt16, _ flags: TCPFlags, seq: UInt32 = 1000,
          ack: UInt32 = 0, n: Int = 0, ttl: UInt8 = 64, id: UInt16 = 0, df: Bool = false) -> [UInt8] {
    PacketBuilder.tcp4(source: src, destination: dst,
                       header: TCPHeader(sourcePort: sp, destinationPort: dp, flags: flags, sequenceNumber: seq,
                                         acknowledgmentNumber: ack),
                       payload: payload(n), ttl: ttl, identification: id, dontFragment: df)
}
