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
}

/// One queue of a ``TunDevice``: a non-blocking descriptor.
public struct TunQueue: PacketDevice, ~Copyable {
    public let fd: Int32
    public let metadataSize: Int
    private let iov: UnsafeMutablePointer<iovec>

    public init(fd: Int32, metadataSize: Int) {
        self.fd = fd
        self.metadataSize = metadataSize
        iov = .allocate(capacity: 2)
        iov.initialize(repeating: iovec(), count: 2)
    }

    deinit { iov.deallocate() }

    public var pollDescriptor: Int32 { fd }

    @inline(__always)
    public mutating func readFrame(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int {
        let n = read(fd, buffer, capacity)
        if n < 0 { return errno == EAGAIN || errno == EINTR ? 0 : -1 }
        return n
    }

    @inline(__always)
    public mutating func writeFrame(_ frame: UnsafeRawBufferPointer) -> Bool {
        write(fd, frame.baseAddress, frame.count) == frame.count
    }

    @inline(__always)
    public mutating func writeFrame(metadata: UnsafeRawBufferPointer, packet: UnsafeRawBufferPointer) -> Bool {
        if metadata.isEmpty { return writeFrame(packet) }
        iov[0] = iovec(iov_base: UnsafeMutableRawPointer(mutating: metadata.baseAddress), iov_len: metadata.count)
        iov[1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: packet.baseAddress), iov_len: packet.count)
        return writev(fd, iov, 2) == metadata.count + packet.count
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
