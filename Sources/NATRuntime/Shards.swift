import CTun
import Foundation
import NAPT44
import NATCore
import NATWire

/// A single-producer, single-consumer ring of packets from one packet thread to another: variable-size
/// records in preallocated memory, no locks and no allocation per packet. A record is a 32-byte header
/// (length, kind) whose last bytes hold the packet's virtio-net header, then the packet, 16-byte aligned:
/// the consumer translates and writes it in place. The producer publishes with a release store of its
/// position, the consumer frees with a release store of its own; each side caches the other's.
struct HandoffRing: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let capacity: Int
    /// [0] tail (producer), [8] producer's copy of head, [16] head (consumer), [24] consumer's copy of
    /// tail: one 64-byte line each.
    let positions: UnsafeMutablePointer<UInt64>

    static let recordHeader = 32
    static let wrapMarker: UInt8 = 0xFF

    init(capacity: Int) {
        let c = (capacity + 15) & ~15
        self.capacity = c
        base = .allocate(byteCount: c, alignment: 64)
        positions = .allocate(capacity: 32)
        positions.initialize(repeating: 0, count: 32)
    }

    func deallocate() {
        base.deallocate()
        positions.deallocate()
    }

    @inline(__always) static func recordSize(_ length: Int) -> Int { recordHeader + ((length + 15) & ~15) }

    /// Copies a packet (and the `vnet` header bytes before it) in; false when the ring is full.
    @inline(__always)
    func push(_ packet: UnsafeRawPointer, length: Int, vnet: Int, kind: ShardRouter.Kind) -> Bool {
        let need = Self.recordSize(length)
        guard need <= capacity else { return false }
        var tail = Int(positions[0])
        let pos = tail % capacity
        let contiguous = capacity - pos
        let total = need <= contiguous ? need : contiguous + need
        if tail + total - Int(positions[8]) > capacity {
            positions[8] = ctun_load_acquire(positions + 16)
            if tail + total - Int(positions[8]) > capacity { return false }
        }
        var at = pos
        if need > contiguous {
            (base + pos).storeBytes(of: Self.wrapMarker, toByteOffset: 4, as: UInt8.self)
            tail += contiguous
            at = 0
        }
        let r = base + at
        r.storeBytes(of: UInt32(length), toByteOffset: 0, as: UInt32.self)
        r.storeBytes(of: kind.rawValue, toByteOffset: 4, as: UInt8.self)
        (r + Self.recordHeader - vnet).copyMemory(from: packet - vnet, byteCount: vnet + length)
        ctun_store_release(positions, UInt64(tail + need))
        return true
    }

    /// The oldest record: its packet (with the header `vnet` bytes before it), length and kind.
    @inline(__always)
    func peek() -> (packet: UnsafeMutableRawPointer, length: Int, kind: ShardRouter.Kind)? {
        var head = Int(positions[16])
        while true {
            if head == Int(positions[24]) {
                positions[24] = ctun_load_acquire(positions)
                if head == Int(positions[24]) { return nil }
            }
            let pos = head % capacity
            let r = base + pos
            let k = r.load(fromByteOffset: 4, as: UInt8.self)
            if k == Self.wrapMarker {
                head += capacity - pos
                ctun_store_release(positions + 16, UInt64(head))
                continue
            }
            let len = Int(r.load(fromByteOffset: 0, as: UInt32.self))
            return (r + Self.recordHeader, len, ShardRouter.Kind(rawValue: k) ?? .other)
        }
    }

    /// Frees the record `peek` returned.
    @inline(__always)
    func pop(length: Int) {
        ctun_store_release(positions + 16, positions[16] &+ UInt64(Self.recordSize(length)))
    }

    var isEmpty: Bool { positions[16] == ctun_load_acquire(positions) }
}
