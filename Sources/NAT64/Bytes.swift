// Byte helpers for the translator's own header writing. Big-endian loads and stores are NATWire's
// public `load8`...`load64` / `store8`...`store64`.

/// Copies `count` bytes between non-overlapping buffers; small copies (the common 64-byte packet's
/// payload) are done in 8-byte words here instead of a call to memmove.
@inlinable @inline(__always)
func copyBytes(_ dst: UnsafeMutableRawPointer, _ src: UnsafeRawPointer, _ count: Int) {
    guard count <= 128 else {
        dst.copyMemory(from: src, byteCount: count)
        return
    }
    var i = 0
    while i + 8 <= count {
        dst.storeBytes(of: src.loadUnaligned(fromByteOffset: i, as: UInt64.self), toByteOffset: i, as: UInt64.self)
        i += 8
    }
    while i < count {
        dst.storeBytes(of: src.load(fromByteOffset: i, as: UInt8.self), toByteOffset: i, as: UInt8.self)
        i += 1
    }
}
