/// A mapping that was created or removed, for the log RFC 6888 §4 asks a CGN to be able to keep
/// (time, protocol, inside and outside endpoint; the remote endpoint only when an operator asks).
public struct MappingEvent: Sendable, Equatable {
    public enum Kind: UInt8, Sendable { case created, removed }
    public var kind: Kind
    public var proto: UInt8
    public var tenant: UInt32
    public var insideAddress: UInt32
    public var insidePort: UInt16
    public var outsideAddress: UInt32
    public var outsidePort: UInt16
    /// The remote endpoint of the flow that created the mapping (or of its last session).
    public var remoteAddress: UInt32
    public var remotePort: UInt16
    /// Engine time (seconds) of the event.
    public var seconds: UInt32

    public init(kind: Kind, proto: UInt8, tenant: UInt32, insideAddress: UInt32, insidePort: UInt16, outsideAddress: UInt32,
                outsidePort: UInt16, remoteAddress: UInt32, remotePort: UInt16, seconds: UInt32) {
        self.kind = kind
        self.proto = proto
        self.tenant = tenant
        self.insideAddress = insideAddress
        self.insidePort = insidePort
        self.outsideAddress = outsideAddress
        self.outsidePort = outsidePort
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
        self.seconds = seconds
    }
}

/// A bounded queue of ``MappingEvent``s that an engine fills on its new-mapping and mapping-release
/// paths and the packet thread drains between bursts. Preallocated: recording never allocates; when it
/// is full, events are counted in ``overflowed`` instead (a flood cannot grow it).
public struct MappingEventLog: ~Copyable {
    let slots: UnsafeMutablePointer<MappingEvent>
    public let capacity: Int
    var head = 0
    public private(set) var count = 0
    /// Events that found the queue full.
    public private(set) var overflowed: UInt64 = 0

    public init(capacity: Int = 4096) {
        self.capacity = max(1, capacity)
        slots = .allocate(capacity: self.capacity)
    }

    deinit { slots.deallocate() }

    @inline(__always)
    public mutating func record(_ e: MappingEvent) {
        guard count < capacity else {
            overflowed &+= 1
            return
        }
        (slots + (head + count) % capacity).initialize(to: e)
        count += 1
    }

    /// The oldest event, if any.
    public mutating func pop() -> MappingEvent? {
        guard count > 0 else { return nil }
        let e = (slots + head).move()
        head = (head + 1) % capacity
        count -= 1
        return e
    }

    /// Takes the overflow count (and sets it to 0).
    public mutating func takeOverflowed() -> UInt64 {
        defer { overflowed = 0 }
        return overflowed
    }
}
