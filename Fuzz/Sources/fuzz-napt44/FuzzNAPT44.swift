import FuzzSupport
import NAPT44
import NATCore
import NATWire

// A flow of packets through NAPT44Engine (one-packet calls) and, in step, through a second engine with
// the burst calls; every packet also through ShardRouter.route. Input: one configuration byte, then
// records (see Records): control bits 0-2 advance the clock, bit 3 picks tenant 1, bits 4-5 the entry
// point (process, process, translateOutbound, translateInbound).
//
// Invariants: the counters account for every packet (a verdict moves its own counter: a drop its
// reason's, a held packet fragments_held or syns_held, a forwarded one outbound, inbound or hairpinned);
// a forwarded packet re-validates with a right IPv4 header checksum, and a right transport checksum stays
// right; every generated packet is a whole valid IPv4 datagram; the burst calls give exactly the
// verdicts, bytes and generated packets of the one-packet calls; route() names a shard that exists.

let advances: [Double] = [0, 0, 0, 1, 2, 10, 60, 400]

func configuration(_ v: UInt8) -> NAPT44Configuration {
    var c = NAPT44Configuration(pool: [IPv4Prefix("198.51.100.1/32")!, IPv4Prefix("198.51.100.2/32")!])
    c.setBehavior([Behavior.fullCone, .restrictedCone, .portRestrictedCone, .symmetric][Int(v & 3)])
    c.hashSeed = 7
    c.maxSessions = 64
    c.maxHeldSYNs = 4
    c.fragments.maxFlows = 16
    c.fragments.maxHeld = 4
    c.hairpinning = v & 4 == 0
    if v & 8 != 0 { c.ports = PortSet(ranges: [1000...1003, 40000...40003]) }
    if v & 16 != 0 {
        c.staticNAT = [StaticNAT(inside: IPv4Address("100.64.0.9")!, outside: IPv4Address("198.51.100.9")!)]
        do {
            c.forwards = [try PortForward(protocol: "tcp", outside: "198.51.100.1:8080", inside: "100.64.0.2:80")]
        } catch {
            fatalError("fuzz configuration: \(error)")
        }
    }
    c.unsolicitedSYN = v & 32 != 0 ? .drop : .icmpPortUnreachable
    c.limits.maxSessionsPerHost = v & 64 != 0 ? 8 : nil
    c.answerPing = v & 128 == 0
    return c
}

func engine(_ c: NAPT44Configuration) -> NAPT44Engine {
    do { return try NAPT44Engine(configuration: c) } catch { fatalError("fuzz configuration refused: \(error)") }
}

nonisolated(unsafe) var routers: [UInt8: ShardRouter] = [:]

func router(_ v: UInt8, _ c: NAPT44Configuration) -> ShardRouter {
    if let r = routers[v] { return r }
    do {
        let r = ShardRouter(plan: try ShardPlan(c, shards: 4), configuration: c)
        routers[v] = r
        return r
    } catch {
        fatalError("fuzz shard plan refused: \(error)")
    }
}

/// The sum of the counters a verdict moves.
func moved(_ c: Counters, _ v: Verdict) -> UInt64 {
    switch v {
    case .drop(let r): c.dropped(r)
    // A helper's resized segment (issue 15) leaves from the outbox, counted outbound and rewritten.
    case .held: c.fragmentsHeld &+ c.synsHeld &+ c.helperRewrites
    default: c.outboundPackets &+ c.inboundPackets &+ c.hairpinnedPackets
    }
}

func isValidPrefix(_ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { b in (try? IPv4View(validating: b)).map { $0.isChecksumValid } ?? false }
}

func checkGenerated(_ e: inout NAPT44Engine, into out: inout [[UInt8]]) {
    while let o = e.nextOutput() {
        let r = UnsafeRawBufferPointer(o.bytes)
        check(o.verdict.isForwarded, "generated packet with verdict \(o.verdict)")
        check(Invariants.isValidIPv4(r), "generated packet is not a whole valid IPv4 datagram: \(Array(r))")
        out.append(Array(r))
    }
}

struct Step {
    var entry: UInt8
    var tenant: UInt32
    var now: Timestamp
    var bytes: [UInt8]
}

func call(_ e: inout NAPT44Engine, _ p: UnsafeMutableRawBufferPointer, _ s: Step) -> Verdict {
    switch s.entry {
    case 2: e.translateOutbound(p, tenant: s.tenant, now: s.now)
    case 3: e.translateInbound(p, now: s.now)
    default: e.process(p, tenant: s.tenant, now: s.now)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let all = input(data, size)
    guard let variant = all.first else { return 0 }
    let c = configuration(variant)
    let shards = router(variant, c)
    let fragments = FragmentOwners()
    var steps: [Step] = []
    var now = 1000.0
    for r in Records(UnsafeRawBufferPointer(rebasing: all.dropFirst())) {
        now += advances[Int(r.control & 7)]
        steps.append(Step(entry: r.control >> 4 & 3, tenant: r.control & 8 != 0 ? 1 : 0, now: .seconds(now), bytes: r.bytes))
        if steps.count == 64 { break }
    }

    // One packet at a time.
    var a = engine(c)
    var verdictsA: [Verdict] = [], bytesA: [[UInt8]] = [], generatedA: [[UInt8]] = []
    var last = Timestamp.zero
    for s in steps {
        if s.now != last { a.expire(now: s.now); last = s.now }
        let before = a.counters
        let (v, packet) = withExactCopy(of: s.bytes) { p -> (Verdict, [UInt8]) in
            if let base = p.baseAddress {
                let (owner, kind) = shards.route(base, p.count, me: 1, fragments: fragments)
                check(owner >= 0 && owner < 4 && [.outbound, .inbound, .hairpin, .other].contains(kind), "route gave shard \(owner)")
            }
            return (call(&a, p, s), Array(p))
        }
        check(moved(a.counters, v) > moved(before, v), "verdict \(v) moved no counter")
        check(a.counters.totalDropped >= before.totalDropped, "drop counters went down")
        if v.isForwarded {
            check(isValidPrefix(packet), "forwarded packet does not re-validate with a right header checksum: \(packet)")
            let inOK = s.bytes.withUnsafeBytes { Invariants.transportChecksumOK($0) }
            let outOK = packet.withUnsafeBytes { Invariants.transportChecksumOK($0) }
            if inOK == true, let outOK { check(outOK, "a right transport checksum went wrong: \(s.bytes) -> \(packet)") }
            if case .toOutside = v {
                _ = packet.withUnsafeBytes { shards.hairpinOwner($0.baseAddress!, $0.count, me: 2) }.map { check($0 >= 0 && $0 < 4, "hairpin owner") }
            }
        }
        verdictsA.append(v)
        bytesA.append(packet)
        checkGenerated(&a, into: &generatedA)
    }

    // The same steps through the burst calls: runs of the same time, entry and tenant, at most 8 long.
    var b = engine(c)
    var verdictsB: [Verdict] = [], bytesB: [[UInt8]] = [], generatedB: [[UInt8]] = []
    last = .zero
    var i = 0
    while i < steps.count {
        var j = i + 1
        while j < steps.count && j - i < 8 && steps[j].now == steps[i].now && steps[j].entry == steps[i].entry
                && steps[j].tenant == steps[i].tenant { j += 1 }
        let s = steps[i]
        if s.now != last { b.expire(now: s.now); last = s.now }
        var buffers = steps[i..<j].map { st -> UnsafeMutableRawBufferPointer in
            let m = UnsafeMutableRawBufferPointer.allocate(byteCount: st.bytes.count, alignment: 16)
            m.copyBytes(from: st.bytes)
            return m
        }
        var verdicts = [Verdict](repeating: .held, count: j - i)
        buffers.withUnsafeMutableBufferPointer { bp in
            verdicts.withUnsafeMutableBufferPointer { vp in
                switch s.entry {
                case 2: b.translateOutbound(burst: bp.baseAddress!, count: bp.count, verdicts: vp.baseAddress!, tenant: s.tenant, now: s.now)
                case 3: b.translateInbound(burst: bp.baseAddress!, count: bp.count, verdicts: vp.baseAddress!, now: s.now)
                default: b.process(burst: bp.baseAddress!, count: bp.count, verdicts: vp.baseAddress!, tenant: s.tenant, now: s.now)
                }
            }
        }
        verdictsB += verdicts
        for m in buffers { bytesB.append(Array(UnsafeRawBufferPointer(m))); m.deallocate() }
        buffers.removeAll()
        checkGenerated(&b, into: &generatedB)
        i = j
    }
    check(verdictsA == verdictsB, "burst verdicts \(verdictsB) differ from one-packet verdicts \(verdictsA)")
    check(bytesA == bytesB, "burst bytes differ from one-packet bytes")
    check(generatedA == generatedB, "burst generated \(generatedB.count) packets, one-packet calls \(generatedA.count)")
    check(a.counters == b.counters, "burst counters differ from one-packet counters")
    return 0
}
