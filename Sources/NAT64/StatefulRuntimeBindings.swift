import NATCore
import NATWire

extension NAPT64Mapping {
    // MARK: Static BIB entries at run time (RFC 6146 §3.1; PCP MAP from an IPv6 host, RFC 6887 §11, RFC 7225)

    /// Why a run-time static BIB entry is refused.
    public enum BindingRefusal: Error, Sendable, Equatable {
        /// The exact IPv4 port asked for is another BIB entry's (or held after one ended).
        case portInUse
        /// No free IPv4 port, or the BIB or host table is full.
        case noResources
        /// The IPv6 host has its most BIB entries (`max_bindings_per_host`).
        case hostLimit
        /// Not TCP or UDP, port 0, or an IPv4 address outside the pool.
        case invalid
    }

    /// Makes the IPv6 transport address `[ipv6]:ipv6Port` reachable from IPv4 (a static BIB entry, as
    /// `static_bib` in the configuration) until `expires` (nil: until removed), and returns the entry.
    ///
    /// - The host's existing BIB entry for that transport address (dynamic or static) is kept and made
    ///   static: its IPv4 port is what its flows already use (RFC 6887 §11.3: a MAP for an endpoint that
    ///   has an implicit mapping gets that mapping).
    /// - Otherwise `suggestedPort` on the host's pool address when free, else (unless `exact`) a port
    ///   chosen as for a new flow (range and parity kept).
    /// Control plane: may allocate.
    ///
    /// `suggestedAddress` (a pool address) is tried before the host's own: a restart restores an entry on
    /// the address it had (the pool address a host pairs with depends on the hash seed of the run).
    public mutating func addStaticBinding(proto: NAT64Protocol, ipv6: IPv6Address, ipv6Port: UInt16, suggestedAddress: IPv4Address? = nil,
                                          suggestedPort: UInt16, exact: Bool, expires: Timestamp?,
                                          now: Timestamp) throws(BindingRefusal) -> NAT64StaticBinding {
        guard proto != .icmp, ipv6Port != 0 else { throw .invalid }
        let p = proto.ipv4Number
        guard let host = hosts.intern(ipv6) else { throw .noResources }
        var mid = table.lookupMapping(tenant: 0, proto: p, insideAddress: host, insidePort: ipv6Port, qualifierAddress: 0, qualifierPort: 0)
        if mid == 0 {
            do throws(BindingRefusal) {
                mid = try newStaticBinding(host: host, proto: p, local: ipv6Port, suggestedAddress: suggestedAddress, suggestedPort: suggestedPort,
                                           exact: exact, now: now.seconds)
            } catch {
                hosts.releaseIfUnused(host)
                throw error
            }
        } else {
            let m = table.mappings[Int(mid)]
            if exact && suggestedPort != 0 && m.outsidePort != suggestedPort { throw .portInUse }
            table.mappings[Int(mid)].flags |= MappingRecord.flagStatic
        }
        // A binding of the configuration stays without an end.
        if configurationBinding(mid) == nil { runtimeBindings[mid] = expires ?? Timestamp(nanoseconds: .max) }
        let m = table.mappings[Int(mid)]
        return NAT64StaticBinding(proto: proto, ipv6: ipv6, ipv6Port: ipv6Port, ipv4: IPv4Address(m.outsideAddress), ipv4Port: m.outsidePort)
    }

    /// Removes the run-time static BIB entry on `ipv4:ipv4Port` (its sessions with it); false when there
    /// is none (entries of the configuration are not removed).
    @discardableResult
    public mutating func removeStaticBinding(proto: NAT64Protocol, ipv4: IPv4Address, ipv4Port: UInt16, now: Timestamp) -> Bool {
        let mid = table.lookupMapping(proto: proto.ipv4Number, outsideAddress: ipv4.rawValue, outsidePort: ipv4Port)
        guard mid != 0, runtimeBindings.removeValue(forKey: mid) != nil else { return false }
        endBinding(mid, now: now.seconds)
        return true
    }

    /// The run-time static BIB entries and when they end (nil: never).
    public var runtimeStaticBindings: [(binding: NAT64StaticBinding, expires: Timestamp?)] {
        runtimeBindings.sorted { $0.key < $1.key }.compactMap { mid, until in
            let m = table.mappings[Int(mid)]
            guard let proto = NAT64Protocol(ipv4Number: m.proto) else { return nil }
            let v6 = hosts.records[Int(m.insideAddress)].address
            return (NAT64StaticBinding(proto: proto, ipv6: v6, ipv6Port: m.insidePort, ipv4: IPv4Address(m.outsideAddress), ipv4Port: m.outsidePort),
                    until.nanoseconds == .max ? nil : until)
        }
    }

    /// Ends run-time static BIB entries whose time is up (called by ``expire(now:)``; nothing to do when none).
    mutating func expireRuntimeBindings(now: Timestamp) {
        guard !runtimeBindings.isEmpty else { return }
        for (mid, until) in runtimeBindings where until <= now {
            runtimeBindings[mid] = nil
            endBinding(mid, now: now.seconds)
        }
    }

    /// A static binding of the configuration on BIB entry `mid`, if it is one.
    func configurationBinding(_ mid: UInt32) -> NAT64StaticBinding? {
        let m = table.mappings[Int(mid)]
        return configuration.staticBindings.first {
            $0.proto.ipv4Number == m.proto && $0.ipv4.rawValue == m.outsideAddress && $0.ipv4Port == m.outsidePort
        }
    }

    /// A new static BIB entry for (host, local): `suggestedPort` on a pool address when free, else a chosen one.
    mutating func newStaticBinding(host: UInt32, proto: UInt8, local: UInt16, suggestedAddress: IPv4Address?, suggestedPort: UInt16,
                                   exact: Bool, now: UInt32) throws(BindingRefusal) -> UInt32 {
        if let l = configuration.maxBindingsPerHost, Int(hosts.records[Int(host)].bindings) >= l { throw .hostLimit }
        if table.isMappingTableFull { table.releaseHeldPorts(now: now) }
        guard !table.isMappingTableFull else { throw .noResources }
        var address: UInt32 = 0, port: UInt16 = 0
        // The host's pool addresses in the order a new flow of it tries them (paired pooling: its one address).
        let h = hosts.records[Int(host)]
        let n = poolAddresses.count
        let start = Int(KeyHash.hash(h.high, h.low ^ 0x706F_6F6C, seed: seed) % UInt32(n))
        var candidates = (0..<(configuration.pairedPooling ? 1 : n)).map { poolAddresses[(start + $0) % n] }
        if let a = suggestedAddress?.rawValue, poolAddresses.contains(a) { candidates.insert(a, at: 0) }
        if suggestedPort != 0, let a = candidates.first(where: { table.lookupMapping(proto: proto, outsideAddress: $0, outsidePort: suggestedPort) == 0 }) {
            (address, port) = (a, suggestedPort)
        } else if exact && suggestedPort != 0 {
            throw .portInUse
        } else {
            do {
                (address, port) = try allocate(host: host, proto: proto, local: local)
            } catch {
                throw .noResources
            }
        }
        var rec = MappingRecord()
        rec.insideAddress = host
        rec.insidePort = local
        rec.outsideAddress = address
        rec.outsidePort = port
        rec.proto = proto
        rec.flags = MappingRecord.flagStatic
        guard let id = table.createMapping(rec) else { throw .noResources }
        hosts.records[Int(host)].bindings += 1
        counters.mappingsCreated &+= 1
        return id
    }

    /// Ends a BIB entry and its sessions; its IPv4 port is free at once (it was asked for, not used by a flow's chance).
    mutating func endBinding(_ mid: UInt32, now: UInt32) {
        let host = table.mappings[Int(mid)].insideAddress
        table.mappings[Int(mid)].flags &= ~MappingRecord.flagStatic
        var sid = table.firstSession(ofMapping: mid)
        if sid == 0 {
            unbind(mid, host: host, holdUntil: 0)
            hosts.releaseIfUnused(host)
            return
        }
        while sid != 0 {
            let next = table.nextSession(inMapping: sid)
            // The last one unbinds the entry (it is no longer static).
            endSession(sid, now: now)
            sid = next
        }
    }
}
