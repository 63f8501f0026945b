// Big-endian loads and stores. NATWire's accessors work in host order above this file; the helpers
// are public (and inlinable, so zero-cost) for the layers that write their own headers (NAT64).

@inlinable @inline(__always)
public func load8(_ p: UnsafeRawPointer, _ offset: Int) -> UInt8 {
    p.load(fromByteOffset: offset, as: UInt8.self)
}

@inlinable @inline(__always)
public func load16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 {
    UInt16(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
}

@inlinable @inline(__always)
public func load32(_ p: UnsafeRawPointer, _ offset: Int) -> UInt32 {
    UInt32(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
}

@inlinable @inline(__always)
public func load64(_ p: UnsafeRawPointer, _ offset: Int) -> UInt64 {
    UInt64(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
}

@inlinable @inline(__always)
public func store8(_ p: UnsafeMutableRawPointer, _ offset: Int, _ v: UInt8) {
    p.storeBytes(of: v, toByteOffset: offset, as: UInt8.self)
}

@inlinable @inline(__always)
public func store16(_ p: UnsafeMutableRawPointer, _ offset: Int, _ v: UInt16) {
    p.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt16.self)
}

@inlinable @inline(__always)
public func store32(_ p: UnsafeMutableRawPointer, _ offset: Int, _ v: UInt32) {
    p.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt32.self)
}

@inlinable @inline(__always)
public func store64(_ p: UnsafeMutableRawPointer, _ offset: Int, _ v: UInt64) {
    p.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt64.self)
}
