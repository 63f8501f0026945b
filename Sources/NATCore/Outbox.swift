/// Packets the engine produced on its own (ICMP errors, echo replies, released fragments), waiting for
/// the runtime to send them. A fixed ring of fixed-size slots: nothing allocates after `init`.
public struct Outbox: ~Copyable {
    @usableFromInline let storage: UnsafeMutableRawPointer
    @usableFromInline let lengths: UnsafeMutablePointer<Int>
    @usableFromInline let verdicts: UnsafeMutablePointer<Verdict>
    public let slotCount: Int
    public let slotSize: Int
    @usableFromInline var head = 0
    public private(set) var count = 0

    public init(slots: Int, slotSize: Int) {
        precondition(slots > 0 && slotSize > 0)
        slotCount = slots
        self.slotSize = slotSize
        storage = .allocate(byteCount: slots * slotSize, alignment: 16)
        lengths = .allocate(capacity: slots)
        lengths.initialize(repeating: 0, count: slots)
        verdicts = .allocate(capacity: slots)
        verdicts.initialize(repeating: .held, count: slots)
    }

    deinit {
        storage.deallocate()
        lengths.deallocate()
        verdicts.deallocate()
    }

    public var isFull: Bool { count == slotCount }
    public var isEmpty: Bool { count == 0 }

    /// The next free slot to write a packet into, or nil when full. Call ``commit(length:verdict:)`` after.
    public func reserve() -> UnsafeMutableRawBufferPointer? {
        guard count < slotCount else { return nil }
        let slot = (head + count) % slotCount
        return UnsafeMutableRawBufferPointer(start: storage + slot * slotSize, count: slotSize)
    }

    public mutating func commit(length: Int, verdict: Verdict) {
        precondition(count < slotCount && length <= slotSize)
        let slot = (head + count) % slotCount
        lengths[slot] = length
        verdicts[slot] = verdict
        count += 1
    }

    /// Takes the oldest packet; its bytes stay valid until the next engine call.
    public mutating func pop() -> (bytes: UnsafeMutableRawBufferPointer, verdict: Verdict)? {
        guard count > 0 else { return nil }
        let slot = head
        head = (head + 1) % slotCount
        count -= 1
        return (UnsafeMutableRawBufferPointer(start: storage + slot * slotSize, count: lengths[slot]), verdicts[slot])
    }
}

/// Packets kept for a while under a 128-bit key: out-of-order fragments waiting for their first
/// fragment, unsolicited SYNs waiting out RFC 5382's 6 seconds. Fixed slots, FIFO expiry by deadline.
public struct HeldPackets: ~Copyable {
    @usableFromInline let storage: UnsafeMutableRawPointer
    @usableFromInline let keysA: UnsafeMutablePointer<UInt64>
    @usableFromInline let keysB: UnsafeMutablePointer<UInt64>
    @usableFromInline let deadlines: UnsafeMutablePointer<UInt64>
    @usableFromInline let lengths: UnsafeMutablePointer<Int>
    @usableFromInline let tags: UnsafeMutablePointer<UInt32>
    public let capacity: Int
    public let slotSize: Int
    public private(set) var count = 0

    public init(capacity: Int, slotSize: Int) {
        self.capacity = capacity
        self.slotSize = slotSize
        let n = max(capacity, 1)
        storage = .allocate(byteCount: n * slotSize, alignment: 16)
        keysA = .allocate(capacity: n); keysA.initialize(repeating: 0, count: n)
        keysB = .allocate(capacity: n); keysB.initialize(repeating: 0, count: n)
        deadlines = .allocate(capacity: n); deadlines.initialize(repeating: 0, count: n)
        lengths = .allocate(capacity: n); lengths.initialize(repeating: -1, count: n)
        tags = .allocate(capacity: n); tags.initialize(repeating: 0, count: n)
    }

    deinit {
        storage.deallocate()
        keysA.deallocate(); keysB.deallocate(); deadlines.deallocate(); lengths.deallocate(); tags.deallocate()
    }

    /// Copies up to `slotSize` bytes of a packet in; false when every slot is taken.
    public mutating func hold(_ bytes: UnsafeRawBufferPointer, keyA: UInt64, keyB: UInt64, tag: UInt32 = 0,
                              deadline: UInt64) -> Bool {
        guard count < capacity else { return false }
        for i in 0..<capacity where lengths[i] < 0 {
            let n = min(bytes.count, slotSize)
            (storage + i * slotSize).copyMemory(from: bytes.baseAddress!, byteCount: n)
            keysA[i] = keyA
            keysB[i] = keyB
            tags[i] = tag
            deadlines[i] = deadline
            lengths[i] = n
            count += 1
            return true
        }
        return false
    }

    /// The slot of the first packet held under the key, or nil.
    public func firstMatch(keyA: UInt64, keyB: UInt64) -> Int? {
        guard count > 0 else { return nil }
        for i in 0..<capacity where lengths[i] >= 0 && keysA[i] == keyA && keysB[i] == keyB { return i }
        return nil
    }

    /// The slot of the first packet whose deadline has passed, or nil.
    public func firstExpired(now: UInt64) -> Int? {
        guard count > 0 else { return nil }
        for i in 0..<capacity where lengths[i] >= 0 && deadlines[i] <= now { return i }
        return nil
    }

    /// The bytes held in a slot.
    public func bytes(_ slot: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: storage + slot * slotSize, count: max(lengths[slot], 0))
    }

    public func tag(_ slot: Int) -> UInt32 { tags[slot] }

    /// Empties a slot.
    public mutating func remove(_ slot: Int) {
        guard lengths[slot] >= 0 else { return }
        lengths[slot] = -1
        count -= 1
    }

    /// Removes every held packet under the key; returns how many.
    @discardableResult
    public mutating func discard(keyA: UInt64, keyB: UInt64) -> Int {
        var n = 0
        while let i = firstMatch(keyA: keyA, keyB: keyB) {
            remove(i)
            n += 1
        }
        return n
    }

    /// Whether any packet is held under the key.
    public func contains(keyA: UInt64, keyB: UInt64) -> Bool {
        firstMatch(keyA: keyA, keyB: keyB) != nil
    }
}
