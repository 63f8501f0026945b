import NATCore
import NATWire

extension NAPT44Engine {
    /// Remembers how the first fragment of a datagram was translated and releases any later fragments
    /// that arrived before it (RFC 4787 REQ-13 and REQ-14).
    mutating func recordFragmentFlow(_ ip: MutableIPv4View, originalSource: UInt32, originalDestination: UInt32,
                                     inbound: Bool, keyTenant: UInt32, verdict: Verdict, now: Timestamp) {
        var tenant: UInt32 = 0
        var toInside = false
        if case .toInside(let t) = verdict { tenant = t; toInside = true }
        let (a, b) = FragmentTracker.key(source: originalSource, destination: originalDestination,
                                         identification: ip.identification, proto: ip.protocolNumber,
                                         inbound: inbound, tenant: keyTenant)
        var f = FragmentTracker.Flow()
        f.keyA = a
        f.keyB = b
        f.newSource = ip.source.rawValue
        f.newDestination = ip.destination.rawValue
        f.tenant = tenant
        f.toInside = toInside
        let ms = now.milliseconds
        f.expires = ms &+ configuration.timeouts.fragmentMilliseconds
        guard fragmentFlows.record(f, now: ms) else {
            counters.recordDrop(.fragmentTableFull)
            return
        }
        while let slot = heldFragments.firstMatch(keyA: a, keyB: b) {
            let held = heldFragments.bytes(slot)
            if let out = outbox.reserve() {
                out.copyMemory(from: UnsafeRawBufferPointer(held))
                let v = MutableIPv4View(unchecked: out.baseAddress!, count: held.count)
                _ = rewriteAddresses(v, source: f.newSource, destination: f.newDestination)
                outbox.commit(length: held.count, verdict: verdict)
                counters.fragmentsTranslated &+= 1
            } else {
                counters.recordDrop(.outboxFull)
            }
            heldFragments.remove(slot)
        }
    }

    /// A second or later fragment: translated like its first fragment, or held until that arrives.
    mutating func followFragment(_ ip: MutableIPv4View, inbound: Bool, tenant: UInt32, now: Timestamp) throws(DropReason) -> Verdict {
        let (a, b) = FragmentTracker.key(source: ip.source.rawValue, destination: ip.destination.rawValue,
                                         identification: ip.identification, proto: ip.protocolNumber,
                                         inbound: inbound, tenant: inbound ? 0 : tenant)
        let ms = now.milliseconds
        if let f = fragmentFlows.lookup(keyA: a, keyB: b, now: ms) {
            _ = rewriteAddresses(ip, source: f.newSource, destination: f.newDestination)
            counters.fragmentsTranslated &+= 1
            if inbound { counters.inboundPackets &+= 1 } else { counters.outboundPackets &+= 1 }
            return f.toInside ? .toInside(tenant: f.tenant) : .toOutside
        }
        guard ip.count <= configuration.fragments.maxHeldSize else { throw .fragmentTooLarge }
        guard heldFragments.hold(UnsafeRawBufferPointer(start: ip.pointer, count: ip.count), keyA: a, keyB: b,
                                 deadline: ms &+ configuration.timeouts.fragmentMilliseconds) else {
            throw .fragmentBufferFull
        }
        counters.fragmentsHeld &+= 1
        return .held
    }

    mutating func expireFragments(now: Timestamp) {
        let ms = now.milliseconds
        fragmentFlows.expire(now: ms)
        while let slot = heldFragments.firstExpired(now: ms) {
            counters.recordDrop(.fragmentTimeout)
            heldFragments.remove(slot)
        }
    }

    /// Fragment flows and held fragments right now.
    public var fragmentState: (flows: Int, held: Int) { (fragmentFlows.count, heldFragments.count) }
}
