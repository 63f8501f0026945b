// Big-endian loads and stores for the translator's own header writing (NATWire keeps its helpers
// internal). Host order everywhere else.

@inlinable @inline(__always)
func ld8(_ p: UnsafeRawPointer, _ o: Int) -> UInt8 { p.load(fromByteOffset: o, as: UInt8.self) }

@inlinable @inline(__always)
func ld16(_ p: UnsafeRawPointer, _ o: Int) -> UInt16 {
    UInt16(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self))
}

@inlinable @inline(__always)
func ld32(_ p: UnsafeRawPointer, _ o: Int) -> UInt32 {
    UInt32(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self))
}

@inlinable @inline(__always)
func ld64(_ p: UnsafeRawPointer, _ o: Int) -> UInt64 {
    UInt64(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt64.self))
}

@inlinable @inline(__always)
func st8(_ p: UnsafeMutableRawPointer, _ o: Int, _ v: UInt8) { p.storeBytes(of: v, toByteOffset: o, as: UInt8.self) }

@inlinable @inline(__always)
func st16(_ p: UnsafeMutableRawPointer, _ o: Int, _ v: UInt16) {
    p.storeBytes(of: v.bigEndian, toByteOffset: o, as: UInt16.self)
}

@inlinable @inline(__always)
func st32(_ p: UnsafeMutableRawPointer, _ o: Int, _ v: UInt32) {
    p.storeBytes(of: v.bigEndian, toByteOffset: o, as: UInt32.self)
}

@inlinable @inline(__always)
func st64(_ p: UnsafeMutableRawPointer, _ o: Int, _ v: UInt64) {
    p.storeBytes(of: v.bigEndian, toByteOffset: o, as: UInt64.self)
}
