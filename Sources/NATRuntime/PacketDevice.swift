import CTun
import Foundation
import Synchronization

/// One queue's packet I/O, as a packet thread sees it: frames in, frames out, each frame a packet behind
/// its offload metadata (the virtio-net header, when offloads are on). ``TunQueue`` is the TUN device;
/// ``MemoryPacketDevice`` drives a packet thread from a test without root (SwiftNIO's EmbeddedChannel
/// idea). An AF_XDP or io_uring backend would be one more conforming type.
///
/// The primitives are per frame: a TUN queue hands over one frame per `read(2)`, and the packet thread
/// reads a burst (up to ``PacketLoop/batch`` frames) per wake-up into one buffer that stays in cache.
/// Nothing here may allocate after `init`.
public protocol PacketDevice: ~Copyable {
    /// Bytes of offload metadata in front of every frame's packet (12 with TUN offloads, 0 without).
    var metadataSize: Int { get }
    /// A descriptor that is readable while frames wait (for `poll(2)`).
    var pollDescriptor: Int32 { get }
    /// Reads one frame (metadata, then packet) into `buffer`: its length, 0 when none waits, -1 on an error.
    mutating func readFrame(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int
    /// Writes one frame that lies contiguous in memory (metadata, then packet). Whether all of it went.
    mutating func writeFrame(_ frame: UnsafeRawBufferPointer) -> Bool
    /// Writes one frame given in two pieces (the metadata, then the packet). Whether all of it went.
    mutating func writeFrame(metadata: UnsafeRawBufferPointer, packet: UnsafeRawBufferPointer) -> Bool
    /// How long the packet thread may sleep in `poll(2)` when nothing is readable (milliseconds): a device
    /// that stopped watching a queue for a while (``TunQueue``'s per-queue budget) asks to be looked at
    /// again when the pause ends.
    var idleWaitMilliseconds: Int32 { get }
    /// Times a queue used its budget and was left alone for a while (``TunQueue``); 0 for other devices.
    var budgetPauses: UInt64 { get }
}

extension PacketDevice where Self: ~Copyable {
    public var idleWaitMilliseconds: Int32 { 100 }
    public var budgetPauses: UInt64 { 0 }
}

/// The TUN queues one packet thread reads: one non-blocking descriptor, or several read in turn (fair
/// queueing, `[tun] fair_queues`). With several, the kernel's steering program puts each host's packets
/// on one queue (``TunDevice/steerBySource(seed:outsideInterface:)``) and each queue has its own ring:
/// `readFrame` takes one frame from each queue that has some in turn, so a host that floods its queue
/// gets one frame per turn like every other host, and its excess is dropped in its own ring. Which
/// queues have frames comes from an epoll descriptor (also the poll descriptor), asked again every
/// ``refreshInterval`` frames so that a queue that fills up while another never empties still gets its
/// turn. Writes go to the queue last read.
public struct TunQueue: PacketDevice, ~Copyable {
    public let count: Int
    public let metadataSize: Int
    private let fds: UnsafeMutablePointer<Int32>
    private let epoll: Int32
    /// Indices (into `fds`) of the queues that had frames at the last look, in turn order.
    private let ready: UnsafeMutablePointer<UInt32>
    private var readyCount = 0
    private var cursor = 0
    private var sinceRefresh = 0
    private var current: Int32
    private let iov: UnsafeMutablePointer<iovec>
    /// Frames read between two looks at which queues have frames.
    static let refreshInterval = 16
    /// Frames one queue may give per window (0: no budget), and the window.
    private let budget: Int32
    static let windowNanoseconds: UInt64 = 5_000_000
    private let served: UnsafeMutablePointer<Int32>
    private var windowEnd: UInt64 = 0
    /// Queues (bit per index) that used their budget: out of the epoll set until the window ends.
    private var resting: UInt64 = 0
    /// Times a queue used its budget and was left alone for the rest of a window.
    public private(set) var budgetPauses: UInt64 = 0

    public init(fd: Int32, metadataSize: Int) {
        self.init(fds: [fd], metadataSize: metadataSize)
    }

    /// Several queues (at most 64) read in turn; `fds` stay owned by the ``TunDevice``. With
    /// `packetsPerSecond` > 0 a queue that gave that many frames per second (counted over 5 ms windows)
    /// is not read for the rest of the window: what its host sends beyond that is dropped by the kernel
    /// in that queue's ring, at the sender's cost, and the thread's time goes to the other queues (or
    /// to the other programs on the machine).
    public init(fds list: [Int32], metadataSize: Int, packetsPerSecond: Int = 0) {
        precondition(!list.isEmpty && list.count <= 64)
        count = list.count
        budget = list.count > 1 && packetsPerSecond > 0
            ? Int32(max(1, packetsPerSecond / Int(1_000_000_000 / Self.windowNanoseconds))) : 0
        served = .allocate(capacity: 64)
        served.initialize(repeating: 0, count: 64)
        self.metadataSize = metadataSize
        fds = .allocate(capacity: list.count)
        fds.initialize(from: list, count: list.count)
        ready = .allocate(capacity: 64)
        ready.initialize(repeating: 0, count: 64)
        current = list[0]
        epoll = list.count > 1 ? ctun_epoll_create(list, Int32(list.count)) : -1
        precondition(list.count == 1 || epoll >= 0, "epoll_create: \(String(cString: strerror(-epoll)))")
        iov = .allocate(capacity: 2)
        iov.initialize(repeating: iovec(), count: 2)
    }

    deinit {
        if epoll >= 0 { close(epoll) }
        served.deallocate()
        fds.deallocate()
        ready.deallocate()
        iov.deallocate()
    }

    public var pollDescriptor: Int32 { count == 1 ? fds[0] : epoll }

    public var idleWaitMilliseconds: Int32 { resting == 0 ? 100 : 1 }

    /// At a window's end: every queue's count starts again and the resting queues are watched again.
    @inline(__always)
    private mutating func startWindowIfDue() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let now = UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
        guard now >= windowEnd else { return }
        windowEnd = now &+ Self.windowNanoseconds
        served.update(repeating: 0, count: count)
        while resting != 0 {
            let i = resting.trailingZeroBitCount
            resting &= resting &- 1
            _ = ctun_epoll_watch(epoll, fds[i], UInt32(i), 1)
        }
    }

    @inline(__always)
    public mutating func readFrame(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int {
        if count == 1 {
            let n = read(fds[0], buffer, capacity)
            if n < 0 { return errno == EAGAIN || errno == EINTR ? 0 : -1 }
            return n
        }
        var looked = false
        while true {
            if readyCount == 0 || sinceRefresh >= Self.refreshInterval {
                if looked { return 0 }
                if budget > 0 { startWindowIfDue() }
                let r = ctun_epoll_ready(epoll, ready, 64)
                readyCount = max(0, Int(r))
                cursor = 0
                sinceRefresh = 0
                looked = true
                if readyCount == 0 { return 0 }
            }
            if cursor >= readyCount { cursor = 0 }
            let index = Int(ready[cursor])
            let fd = fds[index]
            let n = read(fd, buffer, capacity)
            if n > 0 {
                sinceRefresh += 1
                current = fd
                if budget > 0 {
                    served[index] &+= 1
                    if served[index] >= budget {
                        // Its budget for this window is spent: out of the turn and of the epoll set.
                        _ = ctun_epoll_watch(epoll, fd, UInt32(index), 0)
                        resting |= 1 << UInt64(index)
                        budgetPauses &+= 1
                        readyCount -= 1
                        if cursor < readyCount { (ready + cursor).update(from: ready + cursor + 1, count: readyCount - cursor) }
                        return n
                    }
                }
                cursor += 1
                return n
            }
            if n < 0 && errno != EAGAIN && errno != EINTR { return -1 }
            // This queue is empty now: out of the turn until the next look.
            readyCount -= 1
            if cursor < readyCount { (ready + cursor).update(from: ready + cursor + 1, count: readyCount - cursor) }
        }
    }

    @inline(__always)
    public mutating func writeFrame(_ frame: UnsafeRawBufferPointer) -> Bool {
        write(current, frame.baseAddress, frame.count) == frame.count
    }

    @inline(__always)
    public mutating func writeFrame(metadata: UnsafeRawBufferPointer, packet: UnsafeRawBufferPointer) -> Bool {
        if metadata.isEmpty { return writeFrame(packet) }
        iov[0] = iovec(iov_base: UnsafeMutableRawPointer(mutating: metadata.baseAddress), iov_len: metadata.count)
        iov[1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: packet.baseAddress), iov_len: packet.count)
        return writev(current, iov, 2) == metadata.count + packet.count
    }
}

/// Frames waiting to be read by a packet thread, and the frames it wrote, in memory: the test side of
/// ``MemoryPacketDevice``. `inject` from any thread wakes a thread that polls the device.
public final class MemoryPacketQueue: @unchecked Sendable {
    private struct State {
        var incoming: [[UInt8]] = []
        var next = 0
        var written: [[UInt8]] = []
    }
    private let state = Mutex(State())
    /// Readable while frames wait.
    public let eventFD: Int32

    public init() {
        eventFD = ctun_eventfd()
        precondition(eventFD >= 0, "eventfd: \(String(cString: strerror(-eventFD)))")
    }

    deinit { close(eventFD) }

    /// Queues frames (metadata included, if the device has any) for the packet thread.
    public func inject(_ frames: [[UInt8]]) {
        state.withLock { s in
            s.incoming += frames
            _ = ctun_eventfd_signal(eventFD)
        }
    }

    /// Takes every frame written so far.
    public func takeWritten() -> [[UInt8]] {
        state.withLock { s in
            defer { s.written = [] }
            return s.written
        }
    }

    /// Frames injected but not yet read.
    public var pending: Int { state.withLock { $0.incoming.count - $0.next } }

    func read(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int {
        state.withLock { s in
            guard s.next < s.incoming.count else {
                ctun_eventfd_drain(eventFD)
                if !s.incoming.isEmpty { s.incoming = []; s.next = 0 }
                return 0
            }
            let f = s.incoming[s.next]
            s.next += 1
            let n = min(f.count, capacity)
            f.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: n) }
            return n
        }
    }

    func write(_ pieces: UnsafeRawBufferPointer...) {
        var frame: [UInt8] = []
        for p in pieces { frame += p }
        state.withLock { $0.written.append(frame) }
    }
}

/// A ``PacketDevice`` over a ``MemoryPacketQueue`` (tests, simulations). It allocates per frame, unlike
/// the TUN queue: it stands in for the kernel.
public struct MemoryPacketDevice: PacketDevice {
    public let queue: MemoryPacketQueue
    public let metadataSize: Int

    public init(queue: MemoryPacketQueue, metadataSize: Int = 0) {
        self.queue = queue
        self.metadataSize = metadataSize
    }

    public var pollDescriptor: Int32 { queue.eventFD }

    public mutating func readFrame(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int {
        queue.read(into: buffer, capacity: capacity)
    }

    public mutating func writeFrame(_ frame: UnsafeRawBufferPointer) -> Bool {
        queue.write(frame)
        return true
    }

    public mutating func writeFrame(metadata: UnsafeRawBufferPointer, packet: UnsafeRawBufferPointer) -> Bool {
        queue.write(metadata, packet)
        return true
    }
}
