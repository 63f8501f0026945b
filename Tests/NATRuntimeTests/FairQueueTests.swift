import Foundation
@testable import NATRuntime
import Testing

// TunQueue over several descriptors: fair queueing between kernel queues (issue 12). Datagram socket
// pairs stand in for TUN queues: one read(2) per frame, non-blocking, readable while frames wait.
@Suite struct FairQueueTests {
    /// A non-blocking datagram socket pair: [write end, read end].
    static func pair() -> (Int32, Int32) {
        var sv: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &sv) == 0)
        var big: Int32 = 4 << 20
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, socklen_t(MemoryLayout<Int32>.size))
        return (sv[0], sv[1])
    }

    static func send(_ fd: Int32, _ tag: UInt8, count: Int) {
        var frame = [UInt8](repeating: tag, count: 64)
        for _ in 0..<count { precondition(write(fd, &frame, 64) == 64) }
    }

    /// Reads frames until none waits (at most `limit`), returning their tags in order.
    static func drain(_ q: inout TunQueue, limit: Int = 10_000) -> [UInt8] {
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buf.deallocate() }
        var tags: [UInt8] = []
        while tags.count < limit {
            let n = q.readFrame(into: buf, capacity: 2048)
            if n <= 0 { break }
            tags.append(buf.load(as: UInt8.self))
        }
        return tags
    }

    @Test("a flooded queue does not starve another: frames are taken from each waiting queue in turn")
    func floodDoesNotStarve() {
        let (fw, fr) = Self.pair(), (vw, vr) = Self.pair(), (_, er) = Self.pair()
        defer { for fd in [fw, fr, vw, vr, er] { close(fd) } }
        Self.send(fw, 1, count: 500)   // the flooding host's queue
        Self.send(vw, 2, count: 8)     // another host's
        var q = TunQueue(fds: [fr, vr, er], metadataSize: 0)
        let tags = Self.drain(&q)
        #expect(tags.count == 508)
        // The other host's 8 frames all come within the first 16 reads (alternating), not after the 500.
        let lastVictim = tags.lastIndex(of: 2) ?? Int.max
        #expect(lastVictim < 16)
        #expect(tags.prefix(16).filter { $0 == 2 }.count == 8)
    }

    @Test("a queue that starts receiving while another never empties gets its turn within one refresh interval")
    func lateQueueGetsTurn() {
        let (fw, fr) = Self.pair(), (vw, vr) = Self.pair()
        defer { for fd in [fw, fr, vw, vr] { close(fd) } }
        Self.send(fw, 1, count: 300)
        var q = TunQueue(fds: [fr, vr], metadataSize: 0)
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buf.deallocate() }
        for _ in 0..<5 { #expect(q.readFrame(into: buf, capacity: 2048) == 64) }
        Self.send(vw, 2, count: 3)
        var seen: [UInt8] = []
        for _ in 0..<(TunQueue.refreshInterval + 6) {
            #expect(q.readFrame(into: buf, capacity: 2048) == 64)
            seen.append(buf.load(as: UInt8.self))
        }
        #expect(seen.filter { $0 == 2 }.count == 3)
    }

    @Test("empty queues read as 0 (nothing waits), and the poll descriptor says when frames arrive")
    func emptyAndPoll() {
        let (aw, ar) = Self.pair(), (bw, br) = Self.pair()
        defer { for fd in [aw, ar, bw, br] { close(fd) } }
        var q = TunQueue(fds: [ar, br], metadataSize: 0)
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buf.deallocate() }
        #expect(q.readFrame(into: buf, capacity: 2048) == 0)
        var p = pollfd(fd: q.pollDescriptor, events: Int16(POLLIN), revents: 0)
        #expect(poll(&p, 1, 0) == 0)
        Self.send(bw, 9, count: 1)
        #expect(poll(&p, 1, 1000) == 1)
        #expect(q.readFrame(into: buf, capacity: 2048) == 64)
        #expect(buf.load(as: UInt8.self) == 9)
        #expect(q.readFrame(into: buf, capacity: 2048) == 0)
    }

    @Test("writes go to the queue last read")
    func writesFollowReads() {
        let (aw, ar) = Self.pair(), (bw, br) = Self.pair()
        defer { for fd in [aw, ar, bw, br] { close(fd) } }
        var q = TunQueue(fds: [ar, br], metadataSize: 0)
        Self.send(bw, 5, count: 1)
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16)
        defer { buf.deallocate() }
        #expect(q.readFrame(into: buf, capacity: 2048) == 64)
        let out: [UInt8] = [7, 7, 7]
        let wrote = out.withUnsafeBytes { q.writeFrame($0) }
        #expect(wrote)
        var got = [UInt8](repeating: 0, count: 8)
        #expect(read(bw, &got, 8) == 3)
        #expect(read(aw, &got, 8) < 0)
    }

    @Test("a queue that used its packet budget rests for the rest of the 5 ms window; the others go on; then it is read again")
    func budgetRestsAFloodingQueue() {
        let (fw, fr) = Self.pair(), (vw, vr) = Self.pair()
        defer { for fd in [fw, fr, vw, vr] { close(fd) } }
        // 2000 packets per second: 10 per 5 ms window.
        var q = TunQueue(fds: [fr, vr], metadataSize: 0, packetsPerSecond: 2000)
        Self.send(fw, 1, count: 100)
        Self.send(vw, 2, count: 5)
        let first = Self.drain(&q)
        #expect(first.filter { $0 == 1 }.count == 10)
        #expect(first.filter { $0 == 2 }.count == 5)
        #expect(q.budgetPauses == 1)
        // The resting queue asks for a short poll timeout so that it is looked at again when the window ends.
        #expect(q.idleWaitMilliseconds == 1)
        usleep(6000)
        let second = Self.drain(&q)
        #expect(second.count == 10 && second.allSatisfy { $0 == 1 })
        #expect(q.budgetPauses == 2)
    }
}
