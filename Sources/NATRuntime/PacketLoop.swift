import Foundation
import Logging
import NAPT44
import NATCore
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

/// One packet thread: reads a TUN queue, runs each packet through its own engine, writes the result
/// back, drains the engine's own packets, runs its timers every 100 ms. Nothing allocates per packet.
public enum PacketLoop {
    /// Packets read per wake-up before the timers get a look.
    static let batch = 256
    static let expireIntervalNanoseconds: UInt64 = 100_000_000

    /// Starts the thread for `fd`; it builds its engine from `configuration` (and its NAT64 from `nat64`)
    /// and owns them.
    public static func start(fd: Int32, queue: Int, configuration: NAPT44Configuration?, nat64: NAT64Setup? = nil, mtu: Int,
                             control: LoopControl, logger: Logger) {
        let t = Thread {
            run(fd: fd, queue: queue, configuration: configuration, nat64: nat64, mtu: mtu, control: control, logger: logger)
            control.finished.signal()
        }
        t.name = "swiftnat-q\(queue)"
        t.start()
    }

    static func run(fd: Int32, queue: Int, configuration: NAPT44Configuration?, nat64 setup64: NAT64Setup?, mtu: Int,
                    control: LoopControl, logger: Logger) {
        var engine: NAPT44Engine? = nil
        var nat64: NAT64Path? = nil
        do {
            if let configuration { engine = try NAPT44Engine(configuration: configuration) }
            if let setup64 { nat64 = try NAT64Path(setup64, now: monotonicNow(), logger: logger) }
        } catch {
            logger.critical("queue \(queue): the engine refused the configuration: \(error)")
            control.failed.store(true, ordering: .relaxed)
            return
        }
        let size = max(mtu, 65535) + 64
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        defer { buffer.deallocate() }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var lastExpire = monotonicNow()
        var writeErrors: UInt64 = 0
        var readErrors: UInt64 = 0

        @inline(__always) func send(_ bytes: UnsafeRawPointer, _ n: Int) {
            if write(fd, bytes, n) != n { writeErrors &+= 1 }
        }

        while !control.stop.load(ordering: .relaxed) {
            let r = poll(&pfd, 1, 100)
            var now = monotonicNow()
            if r > 0 {
                for _ in 0..<batch {
                    let n = read(fd, buffer.baseAddress, buffer.count)
                    if n <= 0 {
                        if n < 0 && errno != EAGAIN && errno != EINTR { readErrors &+= 1 }
                        break
                    }
                    let packet = UnsafeMutableRawBufferPointer(start: buffer.baseAddress, count: n)
                    if nat64 != nil && nat64!.claims(packet) {
                        nat64!.process(packet, now: now, send: send)
                        continue
                    }
                    guard engine != nil else { continue }
                    let v = engine!.process(packet, tenant: 0, now: now)
                    if v.isForwarded { send(packet.baseAddress!, n) }
                    while let out = engine!.nextOutput() {
                        if out.verdict.isForwarded { send(out.bytes.baseAddress!, out.bytes.count) }
                    }
                }
                now = monotonicNow()
            }
            if now.nanoseconds &- lastExpire.nanoseconds >= expireIntervalNanoseconds {
                if engine != nil {
                    engine!.expire(now: now)
                    while let out = engine!.nextOutput() {
                        if out.verdict.isForwarded { send(out.bytes.baseAddress!, out.bytes.count) }
                    }
                }
                if nat64 != nil { nat64!.tick(now: now, send: send) }
                lastExpire = now
            }
            if control.dumpSessions.exchange(false, ordering: .relaxed) {
                if engine != nil { dump(engine!, queue: queue, logger: logger, writeErrors: writeErrors, readErrors: readErrors) }
                if nat64 != nil { nat64!.dump(queue: queue, now: now, logger: logger) }
            }
        }
        if engine != nil { dump(engine!, queue: queue, logger: logger, writeErrors: writeErrors, readErrors: readErrors) }
        if nat64 != nil {
            nat64!.finish(now: monotonicNow())
            nat64!.dump(queue: queue, now: monotonicNow(), logger: logger)
        }
    }

    /// Logs the counters and the sessions (control-plane work, off the packet path).
    static func dump(_ engine: borrowing NAPT44Engine, queue: Int, logger: Logger, writeErrors: UInt64, readErrors: UInt64) {
        let c = engine.counters
        var drops: [String] = []
        for r in DropReason.allCases where c.dropped(r) > 0 { drops.append("\(r.name)=\(c.dropped(r))") }
        logger.info("stats queue=\(queue) outbound=\(c.outboundPackets) inbound=\(c.inboundPackets) hairpinned=\(c.hairpinnedPackets) sessions=\(engine.sessionCount) mappings=\(engine.mappingCount) created=\(c.sessionsCreated) expired=\(c.sessionsExpired) icmp_errors_translated=\(c.icmpErrorsTranslated) icmp_errors_generated=\(c.icmpErrorsGenerated) write_errors=\(writeErrors) read_errors=\(readErrors) dropped=[\(drops.joined(separator: " "))]")
        let list = engine.sessions(limit: 1000)
        for s in list { logger.info("session \(s.description) idle=\(s.idleSeconds)s\(s.isStatic ? " static" : "")") }
        logger.info("sessions listed: \(list.count) of \(engine.sessionCount)")
    }
}
