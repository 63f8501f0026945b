import CTun
import Foundation
import Logging
import NAPT44
import NAT64
import NATCore
import NATWire
import Synchronization

/// Flags the control side sets and the packet threads read between batches.
public final class LoopControl: Sendable {
    public let stop = Atomic<Bool>(false)
    public let failed = Atomic<Bool>(false)
    public let finished = DispatchSemaphore(value: 0)
    public init() {}
}

/// The monotonic clock, as the engine's `Timestamp`.
@inline(__always)
public func monotonicNow() -> Timestamp {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Timestamp(nanoseconds: UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec))
}

/// The I/O side of one packet thread: its device queue, its preallocated buffers, and how a packet is
/// read, handed to the engine and written back, with or without the virtio-net header (offloads).
/// Nothing here allocates after `init`.
struct QueueIO<Device: PacketDevice & ~Copyable>: ~Copyable {
    var device: Device
    /// virtio-net header bytes before each packet (0: offloads off).
    let vnet: Int
    /// Room for one header and the largest packet (a 64 KiB super-packet).
    let buffer: UnsafeMutableRawBufferPointer
    /// Where software segmentation builds each segment, behind a zeroed header.
    let scratch: UnsafeMutableRawBufferPointer
    /// A zeroed virtio-net header, for packets the engine built itself.
    let zeroHeader: UnsafeMutableRawPointer
    var io = IOCounters()
    /// Shards to wake (bit per shard) after this batch's hand-offs.
    var wake: UInt64 = 0
    /// Set when the NAT is sharded over several queues.
    let shard: ShardContext?

    static var packetCapacity: Int { 65536 + 64 }

    init(device: consuming Device, shard: ShardContext?) {
        vnet = device.metadataSize
        self.device = device
        self.shard = shard
        // The header goes 16 - vnet bytes into the buffer, so the IP header starts 16-byte aligned.
        buffer = .allocate(byteCount: Self.packetCapacity + 16, alignment: 64)
        scratch = .allocate(byteCount: Self.packetCapacity + 16, alignment: 64)
        zeroHeader = .allocate(byteCount: 16, alignment: 16)
        zeroHeader.initializeMemory(as: UInt8.self, repeating: 0, count: 16)
    }

    deinit {
        buffer.deallocate()
        scratch.deallocate()
        zeroHeader.deallocate()
    }

    /// Where a read lands: header (if any), then the packet at offset 16.
    var frame: UnsafeMutableRawPointer { buffer.baseAddress! + (16 - vnet) }
    var packetStart: UnsafeMutableRawPointer { buffer.baseAddress! + 16 }

    /// Reads one packet; returns its length without the header, 0 when there is none, -1 on a bad read.
    @inline(__always)
    mutating func readPacket() -> Int {
        let n = device.readFrame(into: frame, capacity: Self.packetCapacity + vnet)
        if n <= 0 {
            if n < 0 { io.readErrors &+= 1 }
            return n
        }
        io.reads &+= 1
        if n < vnet { io.readErrors &+= 1; return -1 }
        return n - vnet
    }

    /// Writes `count` bytes at `bytes`, which are preceded in memory by `vnet` bytes of header.
    @inline(__always)
    mutating func writeFramed(_ bytes: UnsafeMutableRawPointer, _ count: Int) {
        if device.writeFrame(UnsafeRawBufferPointer(start: bytes - vnet, count: count + vnet)) { io.writes &+= 1 } else { io.writeErrors &+= 1 }
    }

    /// Writes a plain packet (no room for a header before it): with a zero header in front when offloads are on.
    @inline(__always)
    mutating func writePlain(_ bytes: UnsafeRawPointer, _ count: Int) {
        let ok = device.writeFrame(metadata: UnsafeRawBufferPointer(start: zeroHeader, count: vnet),
                                   packet: UnsafeRawBufferPointer(start: bytes, count: count))
        if ok { io.writes &+= 1 } else { io.writeErrors &+= 1 }
    }

    /// Sends what the engine built itself (ICMP errors, echo replies, released fragments).
    @inline(__always)
    mutating func drainOutbox(_ engine: inout NAPT44Engine) {
        while let out = engine.nextOutput() {
            if out.verdict.isForwarded { writePlain(out.bytes.baseAddress!, out.bytes.count) }
        }
    }

    /// Translates the packet at `p` (`n` bytes; with offloads its virtio-net header is the `vnet` bytes
    /// before it) and writes it back if forwarded. `kind` says which engine entry to use (sharded mode);
    /// without a shard context the engine works out the direction itself.
    ///
    /// With offloads: a partial TCP/UDP checksum over IPv4 of the usual shape goes through the engine as
    /// it is and is fixed up afterwards (``IPv4PartialChecksum``); a GSO super-packet keeps its header
    /// and the kernel segments it on the way out. Anything else that is not plain (another shape, or
    /// not IPv4) has its checksum completed, or is cut into segments, in software first.
    @inline(__always)
    mutating func handle(_ p: UnsafeMutableRawPointer, _ n: Int, kind: ShardRouter.Kind, engine: inout NAPT44Engine,
                         now: Timestamp) {
        if vnet == 0 {
            finish(p, n, kind: kind, fix: nil, engine: &engine, now: now)
            return
        }
        let packet = UnsafeMutableRawBufferPointer(start: p, count: n)
        let h = VirtioNetHeader(loading: p - vnet)
        if h.isPlain {
            finish(p, n, kind: kind, fix: nil, engine: &engine, now: now)
            return
        }
        // A segment a helper may rewrite (issue 15) must be whole and plain: its checksum completed, a
        // super-packet cut into segments, below; everything else keeps its offloads.
        let plain = engine.needsPlainPacket(packet)
        if !plain, let fix = IPv4PartialChecksum(UnsafeRawBufferPointer(packet), header: h) {
            io.offloaded &+= 1
            finish(p, n, kind: kind, fix: fix, engine: &engine, now: now)
            return
        }
        if !h.isSegmentationOffload {
            guard VirtioNet.completeChecksum(packet, header: h) else {
                engine.counters.recordDrop(.badOffloadHeader)
                return
            }
            io.softwareChecksums &+= 1
            VirtioNetHeader().store(to: p - vnet, size: vnet)
            finish(p, n, kind: kind, fix: nil, engine: &engine, now: now)
            return
        }
        // A super-packet the engine cannot take whole: one plain packet per segment, behind a zero header.
        let seg = UnsafeMutableRawBufferPointer(rebasing: scratch[16...])
        VirtioNetHeader().store(to: seg.baseAddress! - vnet, size: vnet)
        do throws(VirtioNet.SegmentationError) {
            try VirtioNet.segment(UnsafeRawBufferPointer(packet), header: h, into: seg) { s in
                io.softwareSegments &+= 1
                finish(s.baseAddress!, s.count, kind: kind, fix: nil, engine: &engine, now: now)
            }
        } catch {
            engine.counters.recordDrop(.badOffloadHeader)
        }
    }

    /// Runs the engine on a packet in its final form and writes it back (or hands the second half of a
    /// hairpin to the shard that owns the destination).
    @inline(__always)
    mutating func finish(_ p: UnsafeMutableRawPointer, _ n: Int, kind: ShardRouter.Kind, fix: IPv4PartialChecksum?,
                         engine: inout NAPT44Engine, now: Timestamp) {
        let packet = UnsafeMutableRawBufferPointer(start: p, count: n)
        var fix = fix
        var v: Verdict
        if let shard {
            switch kind {
            case .outbound: v = engine.translateOutbound(packet, tenant: 0, now: now)
            case .inbound: v = engine.translateInbound(packet, now: now)
            case .hairpin: v = engine.translateHairpinned(packet, now: now)
            case .other: v = engine.process(packet, tenant: 0, now: now)
            }
            if kind == .outbound && v == .toOutside, let o = shard.router.hairpinOwner(p, n, me: shard.me) {
                // Hairpin: the inbound half belongs to the owner of the destination port.
                fix?.apply(to: packet)
                if o != shard.me {
                    handOff(p, n, to: o, kind: .hairpin, engine: &engine, shard: shard)
                    drainOutbox(&engine)
                    return
                }
                if vnet > 0 { fix = IPv4PartialChecksum(UnsafeRawBufferPointer(packet), header: VirtioNetHeader(loading: p - vnet)) }
                v = engine.translateHairpinned(packet, now: now)
            }
        } else {
            v = engine.process(packet, tenant: 0, now: now)
        }
        if v.isForwarded {
            if let fix { fix.apply(to: packet) }
            if vnet > 0 { VirtioNetHeader.keepOnlyNeedsChecksum(at: p - vnet) }
            writeFramed(p, n)
        }
        drainOutbox(&engine)
    }

    /// A NAT64 packet: the translator takes plain packets with complete checksums, so with offloads a
    /// partial checksum is completed and a super-packet cut into segments in software first; what it
    /// writes goes out behind a zero header.
    @inline(__always)
    mutating func handle64(_ p: UnsafeMutableRawPointer, _ n: Int, nat64: inout NAT64Path, now: Timestamp) {
        let packet = UnsafeMutableRawBufferPointer(start: p, count: n)
        if vnet > 0 {
            let h = VirtioNetHeader(loading: p - vnet)
            if !h.isPlain {
                if h.isSegmentationOffload {
                    if translate6SuperPacket(p, n, header: h, nat64: &nat64, now: now) { return }
                    let seg = UnsafeMutableRawBufferPointer(rebasing: scratch[16...])
                    do throws(VirtioNet.SegmentationError) {
                        try VirtioNet.segment(UnsafeRawBufferPointer(packet), header: h, into: seg) { s in
                            io.softwareSegments &+= 1
                            nat64.process(s, now: now) { writePlain($0, $1) }
                        }
                    } catch {
                        nat64.recordDrop(.badOffloadHeader)
                    }
                    return
                }
                guard VirtioNet.completeChecksum(packet, header: h) else {
                    nat64.recordDrop(.badOffloadHeader)
                    return
                }
                io.softwareChecksums &+= 1
            }
        }
        nat64.process(packet, now: now) { writePlain($0, $1) }
    }

    /// Puts a packet (with its header) on the ring to shard `o`; counted as a drop when the ring is full.
    @inline(__always)
    mutating func handOff(_ p: UnsafeMutableRawPointer, _ n: Int, to o: Int, kind: ShardRouter.Kind,
                          engine: inout NAPT44Engine, shard: ShardContext) {
        if shard.outRing(o).push(p, length: n, vnet: vnet, kind: kind) {
            io.handedOff &+= 1
            wake |= 1 << UInt64(o)
        } else {
            engine.counters.recordDrop(.handoffQueueFull)
        }
    }

    /// Wakes the shards that were handed packets since the last call.
    @inline(__always)
    mutating func signalHandoffs(_ shard: ShardContext) {
        while wake != 0 {
            let o = wake.trailingZeroBitCount
            wake &= wake - 1
            _ = ctun_eventfd_signal(shard.eventFDs[o])
        }
    }
}

/// What a packet thread needs when the NAT is sharded over several queues: the router, the rings to and
/// from the other threads, and their eventfds. Shared memory, owned by ``ShardRings``.
struct ShardContext {
    let me: Int
    let count: Int
    let router: ShardRouter
    let rings: UnsafeMutablePointer<HandoffRing>
    let eventFDs: UnsafeMutablePointer<Int32>

    @inline(__always) func outRing(_ to: Int) -> HandoffRing { rings[me * count + to] }
    @inline(__always) func inRing(_ from: Int) -> HandoffRing { rings[from * count + me] }
}

/// The hand-off rings between every pair of packet threads (ring i→j at i·N + j) and one eventfd per
/// thread; created before the threads start, freed after they stop.
public final class ShardRings: @unchecked Sendable {
    let count: Int
    let rings: UnsafeMutablePointer<HandoffRing>
    let eventFDs: UnsafeMutablePointer<Int32>
    public let router: ShardRouter

    /// Ring size per pair: 8 MiB of incoming hand-off space per thread, at least 256 KiB per ring.
    public init(count n: Int, router: ShardRouter) throws(DaemonError) {
        count = n
        self.router = router
        let size = max(256 << 10, (8 << 20) / max(1, n - 1))
        rings = .allocate(capacity: n * n)
        for i in 0..<(n * n) { (rings + i).initialize(to: HandoffRing(capacity: i / n == i % n ? 16 : size)) }
        eventFDs = .allocate(capacity: n)
        for i in 0..<n {
            let fd = ctun_eventfd()
            if fd < 0 {
                for k in 0..<i { close(eventFDs[k]) }
                for k in 0..<(n * n) { rings[k].deallocate() }
                rings.deallocate()
                eventFDs.deallocate()
                throw DaemonError("cannot create an eventfd for the packet threads: \(String(cString: strerror(-fd)))")
            }
            eventFDs[i] = fd
        }
    }

    func context(for me: Int) -> ShardContext {
        ShardContext(me: me, count: count, router: router, rings: rings, eventFDs: eventFDs)
    }

    deinit {
        for i in 0..<count { close(eventFDs[i]) }
        for k in 0..<(count * count) { rings[k].deallocate() }
        rings.deallocate()
        eventFDs.deallocate()
    }
}

/// Everything one packet thread needs to start: its queue's device, its NAT44 configuration (its
/// shard's, when sharded), the NAT64, the hand-off rings, its command queue.
public struct PacketThreadSetup: Sendable {
    public var queue: Int
    public var configuration: NAPT44Configuration?
    public var nat64: NAT64Setup?
    public var nptv6: NPTv6Setup?
    public var rings: ShardRings?
    public var commands: CommandQueue
    public var control: LoopControl
    public var logger: Logger
    public var logging: LoggingSettings
    /// Read no packets until a ``PacketCommand/restoreState(_:_:)`` arrives (saved sessions go in first).
    public var holdsTraffic: Bool
    /// Where the thread hands its tables over when it stops (for the sessions file); nil: not saved.
    public var exports: SessionExports?

    public init(queue: Int, configuration: NAPT44Configuration?, nat64: NAT64Setup?, rings: ShardRings?,
                commands: CommandQueue, control: LoopControl, logger: Logger, logging: LoggingSettings = LoggingSettings(),
                holdsTraffic: Bool = false, exports: SessionExports? = nil, nptv6: NPTv6Setup? = nil) {
        self.logging = logging
        self.holdsTraffic = holdsTraffic
        self.exports = exports
        self.nptv6 = nptv6
        self.queue = queue
        self.configuration = configuration
        self.nat64 = nat64
        self.rings = rings
        self.commands = commands
        self.control = control
        self.logger = logger
    }
}

/// One packet thread: reads its device queue, runs each packet through its own engines, writes the
/// result back, drains the engines' own packets, runs the timers every 100 ms, and between bursts
/// applies the control plane's commands (``PacketCommand``). Nothing allocates per packet.
/// Sharded (several queues): packets another shard owns go to it through a hand-off ring, and the
/// thread also drains the rings from the others (woken by its eventfd).
///
/// Generic over its ``PacketDevice``: the daemon runs it on a ``TunQueue``; tests drive ``step(now:)``
/// over a ``MemoryPacketDevice`` without root.
public struct PacketThread<Device: PacketDevice & ~Copyable>: ~Copyable {
    var q: QueueIO<Device>
    var engine: NAPT44Engine?
    var nat64: NAT64Path?
    var nptv6: NPTv6Path?
    public let queue: Int
    let commands: CommandQueue
    let frags = FragmentOwners()
    let pfds: UnsafeMutablePointer<pollfd>
    let nfds: nfds_t
    var lastExpire: Timestamp
    var lastSummary: Timestamp
    let logger: Logger
    var events: EventLogger
    var census = TableCensus()
    /// Session listings under way (`swiftnat sessions`), advanced one slice per round.
    var listings: [SessionListing] = []
    /// Waiting for saved sessions: the device is not polled or read (see ``PacketThreadSetup/holdsTraffic``).
    var holding: Bool
    let deviceFD: Int32
    let exports: SessionExports?

    /// Builds the engines (they check their configuration) around `device`.
    public init(device: consuming Device, setup: PacketThreadSetup, now: Timestamp) throws(DaemonError) {
        queue = setup.queue
        commands = setup.commands
        logger = setup.logger
        events = EventLogger(settings: setup.logging, queue: setup.queue, logger: setup.logger)
        do {
            if let c = setup.configuration { engine = try NAPT44Engine(configuration: c) }
        } catch {
            throw DaemonError("queue \(setup.queue): the NAT44 engine refused the configuration: \(error)")
        }
        do {
            if let s = setup.nat64 { nat64 = try NAT64Path(s, now: now, logger: setup.logger) }
        } catch {
            throw DaemonError("queue \(setup.queue): the NAT64 refused the configuration: \(error)")
        }
        do throws(ConfigurationError) {
            if let s = setup.nptv6 { nptv6 = try NPTv6Path(s) }
        } catch {
            throw DaemonError("queue \(setup.queue): the NPTv6 refused the configuration: \(error)")
        }
        let shard = setup.rings?.context(for: setup.queue)
        engine?.deferHairpinning = shard != nil
        let fd = device.pollDescriptor
        q = QueueIO(device: device, shard: shard)
        deviceFD = fd
        holding = setup.holdsTraffic
        exports = setup.exports
        pfds = .allocate(capacity: 3)
        // poll() skips a negative descriptor: while holding, only commands wake the thread.
        pfds[0] = pollfd(fd: holding ? -1 : fd, events: Int16(POLLIN), revents: 0)
        pfds[1] = pollfd(fd: setup.commands.eventFD, events: Int16(POLLIN), revents: 0)
        pfds[2] = pollfd(fd: shard.map { $0.eventFDs[setup.queue] } ?? -1, events: Int16(POLLIN), revents: 0)
        nfds = shard == nil ? 2 : 3
        lastExpire = now
        lastSummary = now
        if setup.logging.mappings { engine?.mappingEvents = MappingEventLog() }
    }

    deinit { pfds.deallocate() }

    /// The runtime's own counters.
    public var ioCounters: IOCounters {
        var io = q.io
        io.queuePauses = q.device.budgetPauses
        return io
    }

    /// Runs until `control.stop`: waits for packets (or a command, or a hand-off), then ``step(now:)``.
    public mutating func run(control: LoopControl) {
        var busy = false
        while !control.stop.load(ordering: .relaxed) {
            let r = poll(pfds, nfds, busy ? 0 : q.device.idleWaitMilliseconds)
            if r > 0 { q.io.wakeups &+= 1 }
            busy = step(now: monotonicNow())
        }
        finish(now: monotonicNow())
    }

    /// One round: applies waiting commands, reads up to ``PacketLoop/batch`` packets and translates
    /// them, takes packets handed over by other shards, runs the timers when 100 ms have passed.
    /// Returns whether more work may be waiting (a full batch was read).
    @discardableResult
    public mutating func step(now: Timestamp) -> Bool {
        var busy = false
        applyCommands(now: now)
        if !listings.isEmpty { advanceListings() }
        if holding { return false }
        if let shard = q.shard, pfds[2].revents != 0 {
            pfds[2].revents = 0
            ctun_eventfd_drain(shard.eventFDs[shard.me])
        }
        for i in 0..<PacketLoop.batch {
            let n = q.readPacket()
            if n == 0 { break }
            if n < 0 { continue }
            if i == PacketLoop.batch - 1 { busy = true }
            dispatch(q.packetStart, n, now: now)
        }
        if let shard = q.shard, engine != nil {
            for from in 0..<shard.count where from != shard.me {
                let ring = shard.inRing(from)
                var k = 0
                while k < PacketLoop.batch, let rec = ring.peek() {
                    q.io.received &+= 1
                    q.handle(rec.packet, rec.length, kind: rec.kind, engine: &engine!, now: now)
                    ring.pop(length: rec.length)
                    k += 1
                }
                if k == PacketLoop.batch { busy = true }
            }
            q.signalHandoffs(shard)
        }
        if now.nanoseconds &- lastExpire.nanoseconds >= PacketLoop.expireIntervalNanoseconds {
            tick(now: now)
        }
        return busy || !listings.isEmpty
    }

    /// Runs the timers now (every 100 ms from ``step(now:)``).
    public mutating func tick(now: Timestamp) {
        switch engine {
        case .some(let e): census.advance(e)
        case .none: break
        }
        if engine != nil {
            engine!.expire(now: now)
            q.drainOutbox(&engine!)
            if engine!.mappingEvents != nil { events.drain(&engine!.mappingEvents!, now: now) }
            events.flush(now: now)
        }
        if nat64 != nil { nat64!.tick(now: now) { q.writePlain($0, $1) } }
        lastExpire = now
        if now.nanoseconds &- lastSummary.nanoseconds >= 1_000_000_000 {
            lastSummary = now
            switch engine {
            case .some(let e): events.summarize(e.counters, now: now)
            case .none: break
            }
        }
    }

    /// One packet read from the device: NPTv6's, NAT64's, this shard's NAT44 engine's, or another shard's.
    @inline(__always)
    mutating func dispatch(_ p: UnsafeMutableRawPointer, _ n: Int, now: Timestamp) {
        if nptv6 != nil {
            let i = nptv6!.owner(p, n)
            if i >= 0 {
                q.handleNPTv6(p, n, translator: i, nptv6: &nptv6!, now: now)
                return
            }
            if nptv6!.claimsAll {
                nptv6!.unclaimed(p, n)
                return
            }
        }
        if nat64 != nil && nat64!.claims(UnsafeMutableRawBufferPointer(start: p, count: n)) {
            q.handle64(p, n, nat64: &nat64!, now: now)
            return
        }
        guard engine != nil else { return }
        guard let shard = q.shard else {
            q.handle(p, n, kind: .other, engine: &engine!, now: now)
            return
        }
        let (owner, kind) = shard.router.route(p, n, me: shard.me, fragments: frags)
        if owner == shard.me {
            q.handle(p, n, kind: kind, engine: &engine!, now: now)
        } else {
            q.handOff(p, n, to: owner, kind: kind, engine: &engine!, shard: shard)
        }
    }

    /// Applies every waiting command (control-plane work: may allocate).
    mutating func applyCommands(now: Timestamp) {
        guard commands.hasPending else { return }
        commands.clearWakeup()
        while let c = commands.next() {
            q.io.commands &+= 1
            apply(c, now: now)
        }
    }

    mutating func apply(_ c: PacketCommand, now: Timestamp) {
        switch c {
        case .snapshot(let request, let reply):
            guard request.sessions, engine != nil else {
                reply.fulfil(snapshot(request, now: now))
                return
            }
            // NAT44 sessions are listed a slice per round (see SessionListing); the rest is taken now.
            var r = request
            r.sessions = false
            var s = snapshot(r, now: now)
            switch nat64 {
            case .some(let n): n.fill(&s, request, now: now)
            case .none: break
            }
            listings.append(SessionListing(snapshot: s, limit: request.limit, reply: reply))
        case .addForward(let f, let reply):
            guard engine != nil else { reply.fulfil("this daemon has no NAT44"); return }
            do {
                try engine!.addForward(f)
                reply.fulfil(nil)
            } catch {
                reply.fulfil(error.problem)
            }
        case .removeForward(let proto, let address, let port, let reply):
            reply.fulfil(engine != nil && engine!.removeForward(proto: proto, outsideAddress: address, port: port))
        case .renewForward(let proto, let address, let port, let expires, let reply):
            reply.fulfil(engine != nil && engine!.renewForward(proto: proto, outsideAddress: address, port: port, expires: expires))
        case .peer(let q, let reply):
            guard engine != nil else { reply.fulfil(.unavailable); return }
            do throws(DropReason) {
                let m = try engine!.peer(proto: q.proto, inside: q.inside, insidePort: q.insidePort, remote: q.remote,
                                         remotePort: q.remotePort, create: q.create, now: now)
                reply.fulfil(m.map { .mapping($0) } ?? .none)
            } catch {
                reply.fulfil(.refused(error))
            }
        case .addBinding(let q, let reply):
            guard nat64 != nil else { reply.fulfil(.unavailable); return }
            reply.fulfil(nat64!.addBinding(q, now: now))
        case .removeBinding(let proto, let ipv4, let port, let reply):
            reply.fulfil(nat64 != nil && nat64!.removeBinding(proto: proto, ipv4: ipv4, port: port, now: now))
        case .reconfigure(let configuration, let reply):
            guard engine != nil else { reply.fulfil("this daemon has no NAT44"); return }
            do {
                try engine!.reconfigure(configuration, now: now)
                reply.fulfil(nil)
            } catch {
                reply.fulfil("\(error.key): \(error.problem)")
            }
        case .logging(let settings, let reply):
            events.settings = settings
            if engine != nil {
                if settings.mappings && engine!.mappingEvents == nil { engine!.mappingEvents = MappingEventLog() }
                if !settings.mappings { engine!.mappingEvents = nil }
            }
            reply.fulfil(nil)
        case .dumpLines(let reply):
            var lines = PacketLoop.dump(engine, nat64, queue: queue, io: q.io, now: now)
            switch nptv6 {
            case .some(let n): lines += n.dumpLines(queue: queue)
            case .none: break
            }
            reply.fulfil(lines)
        case .restoreState(let share, let reply):
            reply.fulfil(restore(share, now: now))
        }
    }

    /// Puts saved sessions back (control-plane work, before the first packet), then lets traffic in.
    mutating func restore(_ share: QueueRestore, now: Timestamp) -> RestoreReport {
        var report = RestoreReport()
        if engine != nil {
            report += engine!.importState(share.nat44, elapsedSeconds: share.elapsedSeconds, now: now)
        } else {
            report.skip(.modeChanged, share.nat44.sessions.count + share.nat44.holds.count)
        }
        if !share.nat64.isEmpty {
            if nat64 != nil, let r = nat64!.importState(share.nat64, elapsedSeconds: share.elapsedSeconds, now: now) {
                report += r
            } else {
                report.skip(.modeChanged, share.nat64.sessions.count + share.nat64.holds.count)
            }
        }
        holding = false
        pfds[0].fd = deviceFD
        return report
    }

    /// When the thread stops: NAT64 hands its final reservations over, and with a sessions file every
    /// table is handed over for saving (after the last packet: nothing changes them any more).
    mutating func finish(now: Timestamp) {
        applyCommands(now: now)
        while !listings.isEmpty { advanceListings() }
        if nat64 != nil { nat64!.finish(now: now) }
        if let exports {
            var n44: NAPT44SavedState? = nil
            switch engine {
            case .some(let e): n44 = e.exportState(now: now)
            case .none: break
            }
            var n64: NAPT64SavedState? = nil
            var reservations: [AddressReservation] = []
            switch nat64 {
            case .some(let n):
                n64 = n.exportState(now: now)
                reservations = n.exportReservations(now: now)
            case .none: break
            }
            exports.store(queue: queue, nat44: n44, nat64: n64, reservations: reservations)
        }
    }
}

public enum PacketLoop {
    /// Packets read (and taken from each hand-off ring) per wake-up before the timers get a look.
    static let batch = 256
    static let expireIntervalNanoseconds: UInt64 = 100_000_000

    /// Starts the thread for one TUN queue; it builds its engines and owns them.
    public static func start(queue device: consuming TunQueue, setup: PacketThreadSetup) {
        // A noncopyable value cannot be captured by an escaping closure: it goes through a box.
        let box = DeviceBox(device)
        let t = Thread {
            let control = setup.control
            do throws(DaemonError) {
                var thread = try PacketThread(device: box.take(), setup: setup, now: monotonicNow())
                ctun_set_thread_name("swiftnat-q\(setup.queue)")
                thread.run(control: control)
            } catch {
                setup.logger.critical("\(error.description)")
                control.failed.store(true, ordering: .relaxed)
            }
            control.finished.signal()
        }
        t.name = "swiftnat-q\(setup.queue)"
        t.start()
    }

    /// The counters and the sessions as log lines (control-plane work, off the packet path).
    static func dump(_ engine: borrowing NAPT44Engine?, _ nat64: borrowing NAT64Path?, queue: Int, io: IOCounters,
                     now: Timestamp) -> [String] {
        var lines: [String] = []
        switch engine {
        case .some(let e): lines += dump(e, queue: queue, io: io)
        case .none: lines.append("stats queue=\(queue) \(io.description)")
        }
        switch nat64 {
        case .some(let n): lines += n.dumpLines(queue: queue, now: now)
        case .none: break
        }
        return lines
    }

    static func dump(_ engine: borrowing NAPT44Engine, queue: Int, io: IOCounters) -> [String] {
        let c = engine.counters
        var drops: [String] = []
        for r in DropReason.allCases where c.dropped(r) > 0 { drops.append("\(r.name)=\(c.dropped(r))") }
        var lines = ["stats queue=\(queue) outbound=\(c.outboundPackets) inbound=\(c.inboundPackets) hairpinned=\(c.hairpinnedPackets) sessions=\(engine.sessionCount) mappings=\(engine.mappingCount) created=\(c.sessionsCreated) expired=\(c.sessionsExpired) icmp_errors_translated=\(c.icmpErrorsTranslated) icmp_errors_generated=\(c.icmpErrorsGenerated) \(io.description) dropped=[\(drops.joined(separator: " "))]"]
        for s in engine.sessions(limit: 1000) {
            lines.append("session \(s.description) idle=\(s.idleSeconds)s\(s.isStatic ? " static" : "")")
        }
        return lines
    }
}

/// Carries a noncopyable device into a thread's closure, once.
final class DeviceBox<Device: PacketDevice & ~Copyable>: @unchecked Sendable {
    private var device: Device?
    init(_ d: consuming Device) { device = consume d }
    func take() -> Device { device.take()! }
}
