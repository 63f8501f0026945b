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
    public let dumpSessions = Atomic<Bool>(false)
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

    var description: String {
        "reads=\(reads) writes=\(writes) read_errors=\(readErrors) write_errors=\(writeErrors) offloaded=\(offloaded) sw_checksums=\(softwareChecksums) sw_segments=\(softwareSegments) wakeups=\(wakeups)"
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

    static let packetCapacity = 65536 + 64

    init(fd: Int32, vnetHeaderSize: Int) {
        self.fd = fd
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

    /// Translates the packet in `buffer` (length `n`, header before it) and writes it back if forwarded.
    ///
    /// With offloads: a partial TCP/UDP checksum over IPv4 of the usual shape goes through the engine as
    /// it is and is fixed up afterwards (``IPv4PartialChecksum``); a GSO super-packet keeps its header
    /// and the kernel segments it on the way out. Anything else that is not plain (another shape, or
    /// not IPv4) has its checksum completed, or is cut into segments, in software first.
    @inline(__always)
    mutating func handle(_ n: Int, engine: inout NAPT44Engine, now: Timestamp) {
        let p = packetStart
        let packet = UnsafeMutableRawBufferPointer(start: p, count: n)
        if vnet == 0 {
            if engine.process(packet, tenant: 0, now: now).isForwarded { writeFramed(p, n) }
            drainOutbox(&engine)
            return
        }
        var h = VirtioNetHeader(loading: frame)
        if h.isPlain {
            if engine.process(packet, tenant: 0, now: now).isForwarded {
                h.flags = 0
                h.store(to: frame, size: vnet)
                writeFramed(p, n)
            }
            drainOutbox(&engine)
            return
        }
        if let fix = IPv4PartialChecksum(UnsafeRawBufferPointer(packet), header: h) {
            if engine.process(packet, tenant: 0, now: now).isForwarded {
                fix.apply(to: packet)
                h.flags &= VirtioNetHeader.flagNeedsChecksum
                h.store(to: frame, size: vnet)
                io.offloaded &+= 1
                writeFramed(p, n)
            }
            drainOutbox(&engine)
            return
        }
        if !h.isSegmentationOffload {
            guard VirtioNet.completeChecksum(packet, header: h) else {
                engine.counters.recordDrop(.badOffloadHeader)
                return
            }
            io.softwareChecksums &+= 1
            h = VirtioNetHeader()
            h.store(to: frame, size: vnet)
            if engine.process(packet, tenant: 0, now: now).isForwarded { writeFramed(p, n) }
            drainOutbox(&engine)
            return
        }
        // A super-packet the engine cannot take whole: one plain packet per segment.
        let seg = UnsafeMutableRawBufferPointer(rebasing: scratch[16...])
        do throws(VirtioNet.SegmentationError) {
            try VirtioNet.segment(UnsafeRawBufferPointer(packet), header: h, into: seg) { s in
                io.softwareSegments &+= 1
                if engine.process(s, tenant: 0, now: now).isForwarded { writePlain(s.baseAddress!, s.count) }
                drainOutbox(&engine)
            }
        } catch {
            engine.counters.recordDrop(.badOffloadHeader)
        }
    }
}

/// One packet thread: reads a TUN queue, runs each packet through its own engine, writes the result
/// back, drains the engine's own packets, runs its timers every 100 ms. Nothing allocates per packet.
public enum PacketLoop {
    /// Packets read per wake-up before the timers get a look.
    static let batch = 256
    static let expireIntervalNanoseconds: UInt64 = 100_000_000

    /// Starts the thread for `fd`; it builds its engine from `configuration` and owns it.
    public static func start(fd: Int32, queue: Int, vnetHeaderSize: Int, configuration: NAPT44Configuration,
                             control: LoopControl, logger: Logger) {
        let t = Thread {
            run(fd: fd, queue: queue, vnetHeaderSize: vnetHeaderSize, configuration: configuration, control: control, logger: logger)
            control.finished.signal()
        }
        t.name = "swiftnat-q\(queue)"
        t.start()
    }

    static func run(fd: Int32, queue: Int, vnetHeaderSize: Int, configuration: NAPT44Configuration,
                    control: LoopControl, logger: Logger) {
        var engine: NAPT44Engine
        do {
            engine = try NAPT44Engine(configuration: configuration)
        } catch {
            logger.critical("queue \(queue): the engine refused the configuration: \(error)")
            control.failed.store(true, ordering: .relaxed)
            return
        }
        var q = TunQueueIO(fd: fd, vnetHeaderSize: vnetHeaderSize)
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var lastExpire = monotonicNow()

        while !control.stop.load(ordering: .relaxed) {
            let r = poll(&pfd, 1, 100)
            var now = monotonicNow()
            if r > 0 {
                q.io.wakeups &+= 1
                for _ in 0..<batch {
                    let n = q.readPacket()
                    if n == 0 { break }
                    if n < 0 { continue }
                    q.handle(n, engine: &engine, now: now)
                }
                now = monotonicNow()
            }
            if now.nanoseconds &- lastExpire.nanoseconds >= expireIntervalNanoseconds {
                engine.expire(now: now)
                q.drainOutbox(&engine)
                lastExpire = now
            }
            if control.dumpSessions.exchange(false, ordering: .relaxed) {
                dump(engine, queue: queue, logger: logger, io: q.io)
            }
        }
        dump(engine, queue: queue, logger: logger, io: q.io)
    }

    /// Logs the counters and the sessions (control-plane work, off the packet path).
    static func dump(_ engine: borrowing NAPT44Engine, queue: Int, logger: Logger, io: IOCounters) {
        let c = engine.counters
        var drops: [String] = []
        for r in DropReason.allCases where c.dropped(r) > 0 { drops.append("\(r.name)=\(c.dropped(r))") }
        logger.info("stats queue=\(queue) outbound=\(c.outboundPackets) inbound=\(c.inboundPackets) hairpinned=\(c.hairpinnedPackets) sessions=\(engine.sessionCount) mappings=\(engine.mappingCount) created=\(c.sessionsCreated) expired=\(c.sessionsExpired) icmp_errors_translated=\(c.icmpErrorsTranslated) icmp_errors_generated=\(c.icmpErrorsGenerated) \(io.description) dropped=[\(drops.joined(separator: " "))]")
        let list = engine.sessions(limit: 1000)
        for s in list { logger.info("session \(s.description) idle=\(s.idleSeconds)s\(s.isStatic ? " static" : "")") }
        logger.info("sessions listed: \(list.count) of \(engine.sessionCount)")
    }
}
