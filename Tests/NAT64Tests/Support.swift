import Testing
import NATCore
import NATWire
@testable import NAT64

// Addresses from the documentation ranges only.
/// The IPv6 host, mapped by EAM to 198.51.100.5.
let host6 = IPv6Address("2001:db8:6::5")!
let host4 = IPv4Address("198.51.100.5")!
/// A second IPv6 host (for hairpinning), 198.51.100.6.
let peer6 = IPv6Address("2001:db8:6::6")!
let peer4 = IPv4Address("198.51.100.6")!
/// The IPv4 server and its RFC 6052 form under 64:ff9b::/96.
let server4 = IPv4Address("192.0.2.33")!
let server6 = IPv6Address("64:ff9b::192.0.2.33")!
/// An IPv4 router and its RFC 6052 form.
let router4 = IPv4Address("203.0.113.1")!
let router6 = IPv6Address("64:ff9b::203.0.113.1")!
/// An IPv6 router with no IPv4 form (RFC 6791 case) and the pool for it.
let router6Untranslatable = IPv6Address("2001:db8:ffff::1")!
let rfc6791Address = IPv4Address("203.0.113.254")!
/// The translator's own addresses for the errors it sends.
let translator4 = IPv4Address("203.0.113.100")!
let translator6 = IPv6Address("2001:db8:64::1")!

func siitConfiguration() -> SIITConfiguration {
    var c = SIITConfiguration()
    c.prefix = try! NAT64Prefix("64:ff9b::/96", restrictsToGlobalIPv4: false)
    c.explicitMappings = [try! ExplicitAddressMapping(ipv4: "198.51.100.0/24", ipv6: "2001:db8:6::/120")]
    c.rfc6791Pool = [IPv4Prefix("203.0.113.254/32")!]
    return c
}

func translatorConfiguration(_ edit: (inout NAT64Configuration) -> Void = { _ in }) -> NAT64Configuration {
    var c = NAT64Configuration()
    c.ipv4ErrorSource = translator4
    c.ipv6ErrorSource = translator6
    c.identificationSeed = 1
    edit(&c)
    return c
}

func makeTranslator(_ edit: (inout NAT64Configuration) -> Void = { _ in },
                    siit: (inout SIITConfiguration) -> Void = { _ in }) -> SIITTranslator {
    var s = siitConfiguration()
    siit(&s)
    do {
        return try NAT64Translator(configuration: translatorConfiguration(edit), mapping: SIITMapping(s))
    } catch {
        fatalError("bad test configuration: \(error)")
    }
}

/// The result of one translation: the verdict, the output bytes and everything left in the outbox.
struct Outcome {
    var verdict: Verdict
    var bytes: [UInt8]
    var generated: [(bytes: [UInt8], verdict: Verdict)]
}

func run(_ t: inout SIITTranslator, _ packet: [UInt8], now: Timestamp = .zero) -> Outcome {
    var copy = packet
    let v = copy.withUnsafeMutableBytes { t.process($0, now: now) }
    let out = v.isForwarded ? Array(UnsafeRawBufferPointer(t.output)) : []
    var gen: [(bytes: [UInt8], verdict: Verdict)] = []
    while let g = t.nextOutput() { gen.append((Array(UnsafeRawBufferPointer(g.bytes)), g.verdict)) }
    return Outcome(verdict: v, bytes: out, generated: gen)
}

let toIPv4 = Verdict.toOutside
let toIPv6 = Verdict.toInside(tenant: 0)

/// Hex dump of the first difference, for failure messages.
func diff(_ a: [UInt8], _ b: [UInt8]) -> String {
    if a.count != b.count { return "lengths \(a.count) vs \(b.count)" }
    for i in 0..<a.count where a[i] != b[i] {
        return "first difference at byte \(i): \(String(a[i], radix: 16)) vs \(String(b[i], radix: 16))"
    }
    return "equal"
}

func payload(_ n: Int, seed: UInt8 = 7) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) } }
