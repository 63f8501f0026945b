import CTun
import Foundation
import NAPT44
import NAT64
import NATCore
import NATWire
import Synchronization

/// What the control plane asks of a packet thread. The thread applies commands between bursts, in
/// order; none of them is looked at on the packet path.
public enum PacketCommand: Sendable {
    /// Counters and, when asked, sessions and reservations.
    case snapshot(SnapshotRequest, Reply<QueueSnapshot>)
    /// Installs a port forward in this thread's NAT44 engine; the reply is nil or the refusal.
    case addForward(PortForward, Reply<String?>)
    /// Removes the forward that covers an outside port (with its sessions); the reply says whether one did.
    case removeForward(proto: UInt8, address: IPv4Address, port: UInt16, Reply<Bool>)
    /// Sets when the forward that covers an outside port ends, keeping its sessions (a lease renewed).
    case renewForward(proto: UInt8, address: IPv4Address, port: UInt16, expires: Timestamp?, Reply<Bool>)
    /// PCP PEER (RFC 6887 §12): the NAT44 session of a flow, created (as its first outbound packet would)
    /// or refreshed when `create`; only looked up otherwise.
    case peer(PeerQuery, Reply<PeerAnswer>)
    /// A static BIB entry of the stateful NAT64 added at run time (PCP MAP from an IPv6 host).
    case addBinding(BindingQuery, Reply<BindingAnswer>)
    /// Removes a run-time static BIB entry by its IPv4 transport address; the reply says whether one was.
    case removeBinding(proto: NAT64Protocol, ipv4: IPv4Address, port: UInt16, Reply<Bool>)
    /// Applies a changed NAT44 configuration to the running engine (``NAPT44Engine/reconfigure(_:now:)``);
    /// the reply is nil or why it cannot be applied.
    case reconfigure(NAPT44Configuration, Reply<String?>)
    /// New `[logging]` settings (a reload).
    case logging(LoggingSettings, Reply<String?>)
    /// The counters and sessions as log lines (SIGUSR1).
    case dumpLines(Reply<[String]>)
    /// Saved sessions to put back at start (restart without loss); the thread reads no packets until
    /// it has (``PacketThreadSetup/holdsTraffic``). The reply counts what was restored and skipped.
    case restoreState(QueueRestore, Reply<RestoreReport>)
}

/// A PEER request as the packet thread takes it.
public struct PeerQuery: Sendable {
    public var proto: UInt8
    public var inside: IPv4Address
    public var insidePort: UInt16
    public var remote: IPv4Address
    public var remotePort: UInt16
    public var create: Bool

    public init(proto: UInt8, inside: IPv4Address, insidePort: UInt16, remote: IPv4Address, remotePort: UInt16, create: Bool) {
        self.proto = proto
        self.inside = inside
        self.insidePort = insidePort
        self.remote = remote
        self.remotePort = remotePort
        self.create = create
    }
}

/// What a packet thread answers to ``PacketCommand/peer(_:_:)``.
public enum PeerAnswer: Sendable, Equatable {
    case mapping(PeerMapping)
    /// No session (and none asked for).
    case none
    /// The NAT refused the new flow, for this reason (its metrics name, e.g. `ports_exhausted`).
    case refused(DropReason)
    /// No NAT44 engine on this thread.
    case unavailable
}

/// A run-time static BIB entry as the packet thread takes it.
public struct BindingQuery: Sendable {
    public var proto: NAT64Protocol
    public var ipv6: IPv6Address
    public var ipv6Port: UInt16
    /// The IPv4 address wanted first (a restored entry's), if any.
    public var suggestedAddress: IPv4Address? = nil
    /// The IPv4 port wanted (0: any), and whether only it will do.
    public var suggestedPort: UInt16
    public var exact: Bool
    /// Seconds until it ends (nil: never).
    public var lifetime: Int?

    public init(proto: NAT64Protocol, ipv6: IPv6Address, ipv6Port: UInt16, suggestedPort: UInt16, exact: Bool, lifetime: Int?) {
        self.proto = proto
        self.ipv6 = ipv6
        self.ipv6Port = ipv6Port
        self.suggestedPort = suggestedPort
        self.exact = exact
        self.lifetime = lifetime
    }
}

/// What a packet thread answers to ``PacketCommand/addBinding(_:_:)``.
public enum BindingAnswer: Sendable, Equatable {
    case bound(NAT64StaticBinding)
    case refused(NAPT64Mapping.BindingRefusal)
    /// No stateful NAT64 on this thread.
    case unavailable
}

/// A one-shot answer from a packet thread to the control plane.
public final class Reply<Value: Sendable>: Sendable {
    private let value = Mutex<Value?>(nil)
    private let ready = DispatchSemaphore(value: 0)

    public init() {}

    /// Called once, by the packet thread.
    func fulfil(_ v: Value) {
        value.withLock { $0 = v }
        ready.signal()
    }

    /// Waits up to `seconds` for the answer (nil when the thread did not answer in time).
    public func wait(seconds: Double = 5) -> Value? {
        guard ready.wait(timeout: .now() + seconds) == .success else { return nil }
        return value.withLock { $0 }
    }
}

/// A bounded single-consumer queue of ``PacketCommand``s with an eventfd that wakes the consumer. The
/// consumer (the packet thread) takes commands without a lock; producers are serialized among
/// themselves by a lock (they are control-plane threads), so the ring itself sees a single producer.
public final class CommandQueue: @unchecked Sendable {
    let capacity: Int
    private let slots: UnsafeMutablePointer<PacketCommand?>
    private let head = Atomic<Int>(0)
    private let tail = Atomic<Int>(0)
    private let producer = Mutex(())
    /// Readable while commands wait.
    public let eventFD: Int32

    public init(capacity: Int = 64) {
        self.capacity = capacity
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: nil, count: capacity)
        eventFD = ctun_eventfd()
        precondition(eventFD >= 0, "eventfd: \(String(cString: strerror(-eventFD)))")
    }

    deinit {
        slots.deinitialize(count: capacity)
        slots.deallocate()
        close(eventFD)
    }

    /// Queues a command and wakes the thread; false when the queue is full.
    @discardableResult
    public func send(_ c: PacketCommand) -> Bool {
        producer.withLock { _ in
            let t = tail.load(ordering: .relaxed)
            guard t - head.load(ordering: .acquiring) < capacity else { return false }
            slots[t % capacity] = c
            tail.store(t + 1, ordering: .releasing)
            _ = ctun_eventfd_signal(eventFD)
            return true
        }
    }

    /// The next command, if any (consumer side only).
    func next() -> PacketCommand? {
        let h = head.load(ordering: .relaxed)
        guard h != tail.load(ordering: .acquiring) else { return nil }
        let c = slots[h % capacity].take()
        head.store(h + 1, ordering: .releasing)
        return c
    }

    /// Whether a command waits (two atomic loads: cheap enough for every round).
    var hasPending: Bool { head.load(ordering: .relaxed) != tail.load(ordering: .acquiring) }

    /// Clears the wake-up before the consumer drains the queue.
    func clearWakeup() { ctun_eventfd_drain(eventFD) }
}

/// What a snapshot should include besides the counters.
public struct SnapshotRequest: Sendable {
    public var sessions: Bool
    public var reservations: Bool
    /// Start a census of the tables (sessions and mappings by protocol, outside ports by address) if
    /// none is under way; the snapshot always carries the last completed one (see ``TableCensus``).
    public var ports: Bool
    /// Most sessions (and reservations) per queue.
    public var limit: Int

    public init(sessions: Bool = false, reservations: Bool = false, ports: Bool = false, limit: Int = 100_000) {
        self.sessions = sessions
        self.reservations = reservations
        self.ports = ports
        self.limit = limit
    }
}

/// Counters a packet thread keeps beside its engines' (runtime matters: system calls, offloads).
public struct IOCounters: Sendable, Equatable, Codable {
    public var reads: UInt64 = 0
    public var writes: UInt64 = 0
    public var readErrors: UInt64 = 0
    public var writeErrors: UInt64 = 0
    /// Packets that came with a partial checksum or as a GSO super-packet and went back the same way.
    public var offloaded: UInt64 = 0
    /// Packets whose checksum was completed, or that were segmented, in software.
    public var softwareChecksums: UInt64 = 0
    public var softwareSegments: UInt64 = 0
    public var wakeups: UInt64 = 0
    /// Packets put on another shard's ring, and taken from others' rings.
    public var handedOff: UInt64 = 0
    public var received: UInt64 = 0
    /// Control-plane commands applied.
    public var commands: UInt64 = 0
    /// Times a fair queue used its packet budget (`[tun] fair_queue_rate`) and was not read for the rest
    /// of a 5 ms window (the kernel drops that host's excess in its ring: `tun_tx_dropped`).
    public var queuePauses: UInt64 = 0

    public init() {}

    var description: String {
        "reads=\(reads) writes=\(writes) read_errors=\(readErrors) write_errors=\(writeErrors) offloaded=\(offloaded) sw_checksums=\(softwareChecksums) sw_segments=\(softwareSegments) wakeups=\(wakeups) handed_off=\(handedOff) received=\(received)"
    }

    /// Name and value of every counter, in a fixed order (metrics, `swiftnat stats`).
    public var fields: [(String, UInt64)] {
        [("reads", reads), ("writes", writes), ("read_errors", readErrors), ("write_errors", writeErrors),
         ("offloaded", offloaded), ("sw_checksums", softwareChecksums), ("sw_segments", softwareSegments),
         ("wakeups", wakeups), ("handed_off", handedOff), ("received", received), ("commands", commands),
         ("queue_pauses", queuePauses)]
    }

    public static func += (a: inout IOCounters, b: IOCounters) {
        a.reads &+= b.reads; a.writes &+= b.writes; a.readErrors &+= b.readErrors; a.writeErrors &+= b.writeErrors
        a.offloaded &+= b.offloaded; a.softwareChecksums &+= b.softwareChecksums; a.softwareSegments &+= b.softwareSegments
        a.wakeups &+= b.wakeups; a.handedOff &+= b.handedOff; a.received &+= b.received; a.commands &+= b.commands
        a.queuePauses &+= b.queuePauses
    }
}

/// One session as the control plane lists it (`swiftnat sessions`), NAT44 or NAT64 alike.
public struct SessionRow: Sendable, Equatable, Codable {
    /// "nat44" or "nat64".
    public var engine: String
    public var queue: Int
    /// "tcp", "udp", "icmp" (or a protocol number).
    public var `protocol`: String
    /// The inside endpoint (`ADDR:PORT`, IPv6 as `[ADDR]:PORT`).
    public var inside: String
    /// The outside endpoint the NAT gave it.
    public var outside: String
    /// The remote endpoint, as the inside host addresses it.
    public var remote: String
    /// The remote endpoint as the outside sees it (differs from `remote` for NAT64 and redirects).
    public var remoteOutside: String
    /// TCP state (RFC 6146 names), empty for other protocols.
    public var state: String
    public var idleSeconds: UInt32
    /// Seconds until it expires if no packet comes.
    public var expiresInSeconds: UInt32
    public var isStatic: Bool
    public var tenant: UInt32
    /// A helped session: the helper's name ("ftp"); nil otherwise (issue 15).
    public var helper: String? = nil
    /// An expectation (state "expected"): its master session, `INSIDE -> REMOTE` of the control connection.
    public var master: String? = nil
}

/// What one packet thread reports: its engines' counters and sizes, its own counters, and on request
/// its sessions and reservations.
public struct QueueSnapshot: Sendable {
    public var queue: Int
    public var io = IOCounters()
    public var nat44: Counters?
    public var nat44Sessions = 0
    public var nat44Mappings = 0
    /// NAT44 sessions by protocol name (with `ports` only).
    public var nat44SessionsByProtocol: [String: Int] = [:]
    /// NAT44 outside ports in use (mappings), by outside address.
    public var outsidePortsInUse: [String: Int] = [:]
    /// NAT44 live mappings by protocol name (with `ports` only).
    public var nat44MappingsByProtocol: [String: Int] = [:]
    public var forwards: [PortForward] = []
    public var nat64: Counters?
    public var nat64Mode: String?
    public var nat64Sessions = 0
    public var nat64Bindings = 0
    public var nat64Reservations = 0
    public var nat64StaticReservations = 0
    public var nat64FreeAddresses = 0
    /// ICMP and ICMPv6 packets received by the NAT64, by (protocol, type, code) (protomask's metric).
    public var nat64ICMP: [ICMPKey: UInt64] = [:]
    /// NAT64 packets by protocol (ipv4, ipv6, tcp, udp, icmp, icmpv6) and status (translated, dropped).
    public var nat64ProtocolPackets: [ProtocolCount] = []
    /// NPTv6's counters (every translation's, summed).
    public var nptv6: Counters?
    public var sessions: [SessionRow] = []
    public var reservations: [AddressReservation] = []

    public init(queue: Int) { self.queue = queue }

    public struct ProtocolCount: Sendable {
        public var `protocol`: String
        public var status: String
        public var packets: UInt64
    }

    public struct ICMPKey: Sendable, Hashable {
        public var icmpv6: Bool
        public var type: UInt8
        public var code: UInt8
    }
}
