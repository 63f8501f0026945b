import CTun
import Foundation
import Logging
import NAPT44
import NATCore
import NATWire
import Synchronization

/// Flags the control side sets and the packet threads read between batches.
public final class LoopControl: Sendable {
    public let stop = Atomic<Bool>(false)
    /// Bumped to ask every packet thread for its counters and sessions.
    public let dumpGeneration = Atomic<Int>(0)
    public let failed = Atomic<Bool>(false)
    public let finished = DispatchSemaphore(value: 0)
    private let dumps: Mutex<[[String]?]>

    public init(queues: Int = 1) {
        dumps = Mutex([[String]?](repeating: nil, count: queues))
    }

    /// Asks every packet thread for a dump.
    public func requestDump() { dumpGeneration.add(1, ordering: .relaxed) }

    /// A packet thread's dump lines.
    func deposit(queue: Int, lines: [String]) {
        dumps.withLock { $0[queue] = lines }
    }

    /// Once every thread has deposited: all lines in queue order, and the slots are emptied.
    public func collectDumps() -> [[String]]? {
        dumps.withLock { d in
            guard d.allSatisfy({ $0 != nil }) else { return nil }
            let all = d.map { $0! }
            for i in d.indices { d[i] = nil }
            return all
        }
    }
}

/// The monotonic clock, as the engine's `Timestamp`.
@inline(__always)
public func monotonicNow() -> Timestamp {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Timestamp(nanoseconds: UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec))
}

/// Counters a packet thread keeps beside its engine's (runtime matters: system calls, offloads).
struct IOCounters {
    var reads: UInt64 = 0
    var writes: UInt64 = 0
    var readErrors: UInt64 = 0
    var writeErrors: UInt64 = 0
    /// Packets that came with a partial checksum or as a GSO super-packet and went back the same way.
    var offloaded: UInt64 = 0
    /// Packets whose checksum was completed, or that were segmented, in software.
    var softwareChecksums: UInt64 = 0
    var softwareSegments: UInt64 = 0
    var wakeups: UInt64 = 0
    /// Packets put on another shard's ring, and taken from others' rings.
    var handedOff: UInt64 = 0
    var received: UInt64 = 0

    var description: String {
        "reads=\(reads) writes=\(writes) read_errors=\(readErrors) write_errors=\(writeErrors) offloaded=\(offloaded) sw_checksums=\(softwareChecksums) sw_segments=\(softwareSegments) wakeups=\(wakeups) handed_off=\(handedOff) received=\(received)"
    }
}

/// The I/O side of one packet thread: its TUN queue, its preallocated buffers, and how a packet is read,
/// handed to the engine and written back, with or without the virtio-net header (TUN offloads). Nothing
/// here allocates after `init`.
struct TunQueueIO: ~Copyable {
    let fd: Int32
    /// virtio-net header bytes before each packet (0: offloads off).
    let vnet: Int
    /// Room for one header and the largest packet (a 64 KiB super-packet).
    let buffer: UnsafeMutableRawBufferPointer
    /// Where software segmentation builds each segment, behind a zeroed header.
    let scratch: UnsafeMutableRawBufferPointer
    /// A zeroed virtio-net header, for packets the engine built itself.
    let zeroHeader: UnsafeMutableRawPointer
    let iov: UnsafeMutablePointer<iovec>
    var io = IOCounters()
    /// Shards to wake (bit per shard) after this batch's hand-offs.
    var wake: UInt64 = 0
    /// Set when the NAT is sharded over several queues.
    let shard: ShardContext?

    static let packetCapacity = 65536 + 64

    init(fd: Int32, vnetHeaderSize: Int, shard: ShardContext?) {
        self.fd = fd
        self.shard = shard
        vnet = vnetHeaderSize
        // The header goes 16 - vnet bytes into the buffer, so the IP header starts 16-byte aligned.
        buffer = .allocate(byteCount: Self.packetCapacity + 16, alignment: 64)
        scratch = .allocate(byteCount: Self.packetCapacity + 16, alignment: 64)
        zeroHeader = .allocate(byteCount: 16, alignment: 16)
        zeroHeader.initializeMemory(as: UInt8.self, repeating: 0, count: 16)
        iov = .allocate(capacity: 2)
        iov.initialize(repeating: iovec(), count: 2)
    }

    deinit {
        buffer.deallocate()
        scratch.deallocate()
        zeroHeader.deallocate()
        iov.deallocate()
    }

    /// Where a read lands: header (if any), then the packet at offset 16.
    var frame: UnsafeMutableRawPointer { buffer.baseAddress! + (16 - vnet) }
    var packetStart: UnsafeMutableRawPointer { buffer.baseAddress! + 16 }

    /// Reads one packet; returns its length without the header, 0 when there is none, -1 on a bad read.
    @inline(__always)
    mutating func readPacket() -> Int {
        let n = read(fd, frame, Self.packetCapacity + vnet)
        if n <= 0 {
            if n < 0 && errno != EAGAIN && errno != EINTR { io.readErrors &+= 1; return -1 }
            return 0
        }
        io.reads &+= 1
        if n < vnet { io.readErrors &+= 1; return -1 }
        return n - vnet
    }

    /// Writes `count` bytes at `bytes`, which are preceded in memory by `vnet` bytes of header.
    @inline(__always)
    mutating func writeFramed(_ bytes: UnsafeMutableRawPointer, _ count: Int) {
        let total = count + vnet
        if write(fd, bytes - vnet, total) != total { io.writeErrors &+= 1 } else { io.writes &+= 1 }
    }

    /// Writes a plain packet (no room for a header before it): with a zero header in front when offloads are on.
    @inline(__always)
    mutating func writePlain(_ bytes: UnsafeRawPointer, _ count: Int) {
        if vnet == 0 {
            if write(fd, bytes, count) != count { io.writeErrors &+= 1 } else { io.writes &+= 1 }
            return
        }
        iov[0] = iovec(iov_base: zeroHeader, iov_len: vnet)
        iov[1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes), iov_len: count)
        if writev(fd, iov, 2) != count + vnet { io.writeErrors &+= 1 } else { io.writes &+= 1 }
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
        if let fix = IPv4PartialChecksum(UnsafeRawBufferPointer(packet), header: h) {
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
            if kind == .outbound && v == .toOutside && shard.router.hairpinning
                && shard.router.isOutside(UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt32.self))) {
                // Hairpin: the inbound half belongs to the owner of the destination port.
                fix?.apply(to: packet)
                let o = shard.router.hairpinOwner(p, n, me: shard.me)
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
            if vnet > 0 {
                // Whatever the kernel said was verified, we changed: keep only NEEDS_CSUM.
                let flags = (p - vnet).load(as: UInt8.self)
                (p - vnet).storeBytes(of: flags & VirtioNetHeader.flagNeedsChecksum, as: UInt8.self)
            }
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

/// One packet thread: reads a TUN queue, runs each packet through its own engine, writes the result
/// back, drains the engine's own packets, runs its timers every 100 ms. Nothing allocates per packet.
/// Sharded (several queues): packets another shard owns go to it through a hand-off ring, and the
/// thread also drains the rings from the others (woken by its eventfd).
public enum PacketLoop {
    /// Packets read (and taken from each hand-off ring) per wake-up before the timers get a look.
    static let batch = 256
    static let expireIntervalNanoseconds: UInt64 = 100_000_000

    /// Starts the thread for `fd`; it builds its engine from `configuration` and owns it. With `rings`,
    /// it is shard `queue` of `rings.count`.
    public static func start(fd: Int32, queue: Int, vnetHeaderSize: Int, configuration: NAPT44Configuration?,
                             nat64: NAT64Setup? = nil, rings: ShardRings?, control: LoopControl, logger: Logger) {
        let t = Thread {
            run(fd: fd, queue: queue, vnetHeaderSize: vnetHeaderSize, configuration: configuration, nat64: nat64,
                rings: rings, control: control, logger: logger)
            control.finished.signal()
        }
        t.name = "swiftnat-q\(queue)"
        t.start()
    }

    static func run(fd: Int32, queue: Int, vnetHeaderSize: Int, configuration: NAPT44Configuration?, nat64 setup64: NAT64Setup?,
                    rings: ShardRings?, control: LoopControl, logger: Logger) {
        // NAT44 and NAT64 share the device: NAT64 claims IPv6 and its own IPv4 addresses, NAT44 the rest.
        var engine: NAPT44Engine? = nil
        var nat64: NAT64Path? = nil
        do {
            if let configuration { engine = try NAPT44Engine(configuration: configuration) }
            if let setup64 { nat64 = try NAT64Path(setup64, now: monotonicNow(), logger: logger) }
        } catch {
            logger.critical("queue \(queue): the engine refused the configuration: \(error)")
            control.failed.store(true, ordering: .relaxed)
            control.deposit(queue: queue, lines: [])
            return
        }
        let shard = rings?.context(for: queue)
        engine?.deferHairpinning = shard != nil
        var q = TunQueueIO(fd: fd, vnetHeaderSize: vnetHeaderSize, shard: shard)
        let frags = FragmentOwners()
        let pfds = UnsafeMutablePointer<pollfd>.allocate(capacity: 2)
        defer { pfds.deallocate() }
        pfds[0] = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        pfds[1] = pollfd(fd: shard.map { $0.eventFDs[queue] } ?? -1, events: Int16(POLLIN), revents: 0)
        let nfds: nfds_t = shard == nil ? 1 : 2
        var lastExpire = monotonicNow()
        var dumped = 0
        var busy = false
        ctun_set_thread_name("swiftnat-q\(queue)")

        while !control.stop.load(ordering: .relaxed) {
            let r = poll(pfds, nfds, busy ? 0 : 100)
            var now = monotonicNow()
            busy = false
            if r > 0 {
                q.io.wakeups &+= 1
                if pfds[1].revents != 0, let shard { ctun_eventfd_drain(shard.eventFDs[shard.me]) }
                for i in 0..<batch {
                    let n = q.readPacket()
                    if n == 0 { break }
                    if n < 0 { continue }
                    if i == batch - 1 { busy = true }
                    let p = q.packetStart
                    if nat64 != nil && nat64!.claims(UnsafeMutableRawBufferPointer(start: p, count: n)) {
                        q.handle64(p, n, nat64: &nat64!, now: now)
                        continue
                    }
                    guard engine != nil else { continue }
                    guard let shard else {
                        q.handle(p, n, kind: .other, engine: &engine!, now: now)
                        continue
                    }
                    var (owner, kind) = shard.router.route(p, n, me: shard.me)
                    if kind != .other && n >= 20 {
                        // Fragments: later ones follow the owner of their first fragment.
                        let frag = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
                        if frag & IPv4Layout.offsetMask != 0 {
                            if let o = frags.lookup(p) { owner = o } else if kind == .inbound { owner = shard.me }
                        } else if frag & IPv4Layout.flagMF != 0 {
                            frags.record(p, owner: owner)
                        }
                    }
                    if owner == shard.me {
                        q.handle(p, n, kind: kind, engine: &engine!, now: now)
                    } else {
                        q.handOff(p, n, to: owner, kind: kind, engine: &engine!, shard: shard)
                    }
                }
            }
            if let shard, engine != nil {
                for from in 0..<shard.count where from != shard.me {
                    let ring = shard.inRing(from)
                    var k = 0
                    while k < batch, let rec = ring.peek() {
                        q.io.received &+= 1
                        q.handle(rec.packet, rec.length, kind: rec.kind, engine: &engine!, now: now)
                        ring.pop(length: rec.length)
                        k += 1
                    }
                    if k == batch { busy = true }
                }
                q.signalHandoffs(shard)
            }
            if r > 0 { now = monotonicNow() }
            if now.nanoseconds &- lastExpire.nanoseconds >= expireIntervalNanoseconds {
                if engine != nil {
                    engine!.expire(now: now)
                    q.drainOutbox(&engine!)
                }
                if nat64 != nil { nat64!.tick(now: now) { q.writePlain($0, $1) } }
                lastExpire = now
            }
            let generation = control.dumpGeneration.load(ordering: .relaxed)
            if generation != dumped {
                dumped = generation
                control.deposit(queue: queue, lines: dump(engine, nat64, queue: queue, io: q.io, now: now))
            }
        }
        if nat64 != nil { nat64!.finish(now: monotonicNow()) }
        control.deposit(queue: queue, lines: dump(engine, nat64, queue: queue, io: q.io, now: monotonicNow()))
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
