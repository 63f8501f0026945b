import FuzzSupport
import NAT64
import NATCore
import NATWire

// The NAT64 translator run over a flow of packets (see Records: control bits 0-2 advance the clock), three
// times in step: one packet at a time (A), the burst call (B), one packet at a time with the fast path off
// (C). Invariants: a drop moves its reason's counter, a held packet syns_held, a forwarded one
// outbound, inbound or hairpinned; a translated packet is one whole valid IPv4 or IPv6 packet that fits
// its buffer, and a right transport checksum stays right; every generated packet is whole and valid;
// B gives exactly A's verdicts, bytes, generated packets and counters; C gives A's verdicts and bytes.

public let advances: [Double] = [0, 0, 0, 1, 2, 10, 60, 400]

public func translatorConfiguration() -> NAT64Configuration {
    var c = NAT64Configuration()
    c.ipv4ErrorSource = IPv4Address("203.0.113.100")!
    c.ipv6ErrorSource = IPv6Address("2001:db8:64::1")!
    c.identificationSeed = 1
    c.outboxSlots = 64
    return c
}

struct Step {
    var now: Timestamp
    var bytes: [UInt8]
}

func steps(_ data: UnsafeRawBufferPointer) -> [Step] {
    var out: [Step] = []
    var now = 1000.0
    for r in Records(data) {
        now += advances[Int(r.control & 7)]
        out.append(Step(now: .seconds(now), bytes: r.bytes))
        if out.count == 64 { break }
    }
    return out
}

func moved(_ c: Counters, _ v: Verdict) -> UInt64 {
    switch v {
    case .drop(let r): c.dropped(r)
    case .held: c.synsHeld
    default: c.outboundPackets &+ c.inboundPackets &+ c.hairpinnedPackets
    }
}

/// A translated or generated packet: one whole valid IPv4 or IPv6 packet.
public func isWholePacket(_ r: UnsafeRawBufferPointer) -> Bool {
    switch r.first.map({ $0 >> 4 }) {
    case 4: Invariants.isValidIPv4(r)
    case 6: Invariants.isValidIPv6(r)
    default: false
    }
}

func drain<M: NAT64Mapping & ~Copyable>(_ t: inout NAT64Translator<M>, into out: inout [[UInt8]]) {
    while let o = t.nextOutput() {
        let r = UnsafeRawBufferPointer(o.bytes)
        check(o.verdict.isForwarded, "generated packet with verdict \(o.verdict)")
        check(isWholePacket(r), "generated packet is not whole and valid: \(Array(r))")
        out.append(Array(r))
    }
}

struct Run {
    var verdicts: [Verdict] = []
    var bytes: [[UInt8]] = []
    var generated: [[UInt8]] = []
}

func oneByOne<M: NAT64Mapping & ~Copyable>(_ t: inout NAT64Translator<M>, _ steps: [Step], checks: Bool,
                                            expire: (inout NAT64Translator<M>, Timestamp) -> Void) -> Run {
    var run = Run()
    var last = Timestamp.zero
    for s in steps {
        if s.now != last { expire(&t, s.now); last = s.now }
        let before = t.counters
        let v = withExactCopy(of: s.bytes) { t.process($0, now: s.now) }
        let out = v.isForwarded ? Array(UnsafeRawBufferPointer(t.output)) : []
        if checks {
            check(moved(t.counters, v) > moved(before, v), "verdict \(v) moved no counter")
            if v.isForwarded {
                out.withUnsafeBytes { o in
                    check(isWholePacket(o), "translated packet is not whole and valid: \(s.bytes) -> \(out)")
                    let inOK = s.bytes.withUnsafeBytes { Invariants.transportChecksumOK($0) }
                    if inOK == true, let outOK = Invariants.transportChecksumOK(o) {
                        check(outOK, "a right transport checksum went wrong: \(s.bytes) -> \(out)")
                    }
                }
            } else {
                check(t.output.count == 0, "output left after a \(v)")
            }
        }
        run.verdicts.append(v)
        run.bytes.append(out)
        drain(&t, into: &run.generated)
    }
    return run
}

func burst<M: NAT64Mapping & ~Copyable>(_ t: inout NAT64Translator<M>, _ steps: [Step],
                                         expire: (inout NAT64Translator<M>, Timestamp) -> Void) -> Run {
    var run = Run()
    var last = Timestamp.zero
    var i = 0
    while i < steps.count {
        var j = i + 1
        while j < steps.count && j - i < 8 && steps[j].now == steps[i].now { j += 1 }
        let now = steps[i].now
        if now != last { expire(&t, now); last = now }
        let n = j - i
        var inputs = steps[i..<j].map { s -> UnsafeRawBufferPointer in
            let m = UnsafeMutableRawBufferPointer.allocate(byteCount: s.bytes.count, alignment: 16)
            m.copyBytes(from: s.bytes)
            return UnsafeRawBufferPointer(m)
        }
        let outputs = (0..<n).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: 65_600, alignment: 16) }
        var verdicts = [Verdict](repeating: .held, count: n)
        var lengths = [Int](repeating: -1, count: n)
        inputs.withUnsafeBufferPointer { ip in
            outputs.withUnsafeBufferPointer { op in
                verdicts.withUnsafeMutableBufferPointer { vp in
                    lengths.withUnsafeMutableBufferPointer { lp in
                        t.process(burst: ip.baseAddress!, count: n, into: op.baseAddress!, verdicts: vp.baseAddress!,
                                  lengths: lp.baseAddress!, now: now)
                    }
                }
            }
        }
        for k in 0..<n {
            check(lengths[k] >= 0 && lengths[k] <= outputs[k].count, "burst length \(lengths[k])")
            run.verdicts.append(verdicts[k])
            run.bytes.append(verdicts[k].isForwarded ? Array(UnsafeRawBufferPointer(rebasing: outputs[k][0..<lengths[k]])) : [])
        }
        for m in inputs { m.deallocate() }
        for m in outputs { m.deallocate() }
        inputs.removeAll()
        drain(&t, into: &run.generated)
        i = j
    }
    return run
}

/// Runs the input through three translators that `make` builds, and checks them against each other.
public func fuzzTranslator<M: NAT64Mapping & ~Copyable>(_ data: UnsafeRawBufferPointer, make: () -> NAT64Translator<M>,
                                                         expire: (inout NAT64Translator<M>, Timestamp) -> Void) {
    let s = steps(data)
    guard !s.isEmpty else { return }
    var a = make()
    let ra = oneByOne(&a, s, checks: true, expire: expire)
    var b = make()
    let rb = burst(&b, s, expire: expire)
    check(ra.verdicts == rb.verdicts, "burst verdicts \(rb.verdicts) differ from one-packet verdicts \(ra.verdicts)")
    check(ra.bytes == rb.bytes, "burst bytes differ from one-packet bytes")
    check(ra.generated == rb.generated, "burst generated \(rb.generated.count) packets, one-packet calls \(ra.generated.count)")
    check(a.counters == b.counters, "burst counters differ from one-packet counters")
    var c = make()
    c.fastPathEnabled = false
    let rc = oneByOne(&c, s, checks: false, expire: expire)
    check(ra.verdicts == rc.verdicts, "slow-path verdicts \(rc.verdicts) differ from fast-path verdicts \(ra.verdicts)")
    check(ra.bytes == rc.bytes, "slow-path bytes differ from fast-path bytes")
}
