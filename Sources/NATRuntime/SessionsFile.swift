import Foundation
import NAPT44
import NAT64
import NATCore
import NATWire

/// The session tables on disk across a planned restart (`[control] sessions_file`, issue 12): written at a
/// clean stop once the packet threads have stopped, read at the next start before the TUN device carries
/// traffic, and renamed away (`<file>.old`) as soon as it is read, so that a crash later never brings the
/// same state back.
///
/// Binary, little-endian, fixed-size records: a session is 44 bytes (NAT44) or 40 (NAT64), so a full table
/// of a million sessions is ~44 MB, written in well under a second at stop (JSON would be ~5x the size and
/// much slower to write and parse, and a stop has a deadline: systemd's `TimeoutStopSec`). The header
/// carries a CRC-32 of the body, so a corrupt or truncated file is refused whole, never half applied.
///
/// ```
/// header (40 bytes)
///   0  magic "SWNATSES"         8  version u16 (1)     10 header length u16 (40)   12 flags u32 (0)
///   16 written at i64 (Unix s)  24 body length u64     32 body CRC-32 u32          36 section count u32
/// section (12 bytes, then count × record size bytes)
///   0  kind u16   2 record size u16   4 queue u16   6 reserved u16   8 count u32
/// kinds: 1 NAT44 sessions (44 B), 2 NAT44 held ports (12 B), 3 NAT64 sessions (40 B),
///        4 NAT64 held ports (12 B), 5 NAT64 pool reservations (24 B)
/// ```
/// Times are relative: a session's idle seconds and a hold's remaining seconds at the moment of writing,
/// plus the wall-clock time of writing; on load the time since then (the downtime) is added, so timers
/// continue from the real time that passed, and whatever expired meanwhile is dropped.
public enum SessionsFile {
    public static let magic = Array("SWNATSES".utf8)
    public static let version: UInt16 = 1
    static let headerLength = 40
    static let sectionHeaderLength = 12

    enum Kind: UInt16 {
        case nat44Sessions = 1
        case nat44Holds = 2
        case nat64Sessions = 3
        case nat64Holds = 4
        case nat64Reservations = 5

        var recordSize: Int {
            switch self {
            case .nat44Sessions: 44
            case .nat44Holds, .nat64Holds: 12
            case .nat64Sessions: 40
            case .nat64Reservations: 24
            }
        }
    }

    /// What one file holds.
    public struct Contents: Sendable, Equatable {
        /// Wall-clock time of writing (Unix seconds).
        public var writtenAt: Int64
        /// NAT44 state by the queue that saved it.
        public var nat44: [Int: NAPT44SavedState]
        public var nat64: NAPT64SavedState
        public var reservations: [AddressReservation]

        public init(writtenAt: Int64, nat44: [Int: NAPT44SavedState] = [:], nat64: NAPT64SavedState = NAPT64SavedState(),
                    reservations: [AddressReservation] = []) {
            self.writtenAt = writtenAt
            self.nat44 = nat44
            self.nat64 = nat64
            self.reservations = reservations
        }

        public var sessionCount: Int { nat44.values.reduce(0) { $0 + $1.sessions.count } + nat64.sessions.count }
        public var holdCount: Int { nat44.values.reduce(0) { $0 + $1.holds.count } + nat64.holds.count }
    }

    /// Why a file was refused (it is then not applied at all).
    public struct LoadError: Error, Sendable, Equatable, CustomStringConvertible {
        public var problem: String
        public init(_ p: String) { problem = p }
        public var description: String { problem }
    }

    // MARK: Encoding

    public static func encode(_ c: Contents) -> [UInt8] {
        var body = ByteWriter()
        var sections: UInt32 = 0
        for q in c.nat44.keys.sorted() {
            let s = c.nat44[q]!
            if !s.sessions.isEmpty {
                body.section(.nat44Sessions, queue: q, count: s.sessions.count)
                for r in s.sessions { body.nat44(r) }
                sections += 1
            }
            if !s.holds.isEmpty {
                body.section(.nat44Holds, queue: q, count: s.holds.count)
                for h in s.holds { body.hold(h) }
                sections += 1
            }
        }
        if !c.nat64.sessions.isEmpty {
            body.section(.nat64Sessions, queue: 0, count: c.nat64.sessions.count)
            for r in c.nat64.sessions { body.nat64(r) }
            sections += 1
        }
        if !c.nat64.holds.isEmpty {
            body.section(.nat64Holds, queue: 0, count: c.nat64.holds.count)
            for h in c.nat64.holds { body.hold(h) }
            sections += 1
        }
        let reservations = c.reservations.filter { !$0.isStatic }
        if !reservations.isEmpty {
            body.section(.nat64Reservations, queue: 0, count: reservations.count)
            for r in reservations {
                body.u32(r.ipv4.rawValue)
                body.u64(r.ipv6.high)
                body.u64(r.ipv6.low)
                body.u32(r.idleSeconds)
            }
            sections += 1
        }
        var out = ByteWriter()
        out.bytes.reserveCapacity(headerLength + body.bytes.count)
        out.bytes += magic
        out.u16(version)
        out.u16(UInt16(headerLength))
        out.u32(0)
        out.u64(UInt64(bitPattern: c.writtenAt))
        out.u64(UInt64(body.bytes.count))
        out.u32(CRC32.checksum(body.bytes))
        out.u32(sections)
        out.bytes += body.bytes
        return out.bytes
    }

    // MARK: Decoding

    public static func decode(_ bytes: [UInt8]) throws(LoadError) -> Contents {
        guard bytes.count >= magic.count, Array(bytes[0..<magic.count]) == magic else {
            throw LoadError("is not a swiftnat sessions file (no SWNATSES magic)")
        }
        guard bytes.count >= headerLength else { throw LoadError("is truncated: \(bytes.count) bytes, shorter than its header") }
        var r = ByteReader(bytes: bytes, offset: magic.count)
        let v = r.u16()
        guard v == version else { throw LoadError("has format version \(v); this swiftnat reads version \(version)") }
        guard Int(r.u16()) == headerLength else { throw LoadError("is corrupt: bad header length") }
        _ = r.u32()
        let writtenAt = Int64(bitPattern: r.u64())
        let bodyLength = r.u64()
        let crc = r.u32()
        let sections = r.u32()
        guard UInt64(bytes.count - headerLength) >= bodyLength else {
            throw LoadError("is truncated: its header announces \(bodyLength) bytes of records, the file has \(bytes.count - headerLength)")
        }
        guard UInt64(bytes.count - headerLength) == bodyLength else {
            throw LoadError("is corrupt: \(UInt64(bytes.count - headerLength) - bodyLength) bytes after its records")
        }
        guard CRC32.checksum(bytes[headerLength...]) == crc else { throw LoadError("is corrupt: its checksum does not match its records") }
        var c = Contents(writtenAt: writtenAt)
        for _ in 0..<sections {
            guard r.remaining >= sectionHeaderLength else { throw LoadError("is corrupt: a section header runs past the end") }
            let rawKind = r.u16(), size = Int(r.u16()), queue = Int(r.u16())
            _ = r.u16()
            let count = Int(r.u32())
            guard let kind = Kind(rawValue: rawKind) else { throw LoadError("is corrupt: unknown section kind \(rawKind)") }
            guard size == kind.recordSize else { throw LoadError("is corrupt: section \(rawKind) has \(size)-byte records, not \(kind.recordSize)") }
            guard r.remaining / size >= count else { throw LoadError("is corrupt: section \(rawKind) runs past the end") }
            switch kind {
            case .nat44Sessions:
                for _ in 0..<count { c.nat44[queue, default: NAPT44SavedState()].sessions.append(try r.nat44()) }
            case .nat44Holds:
                for _ in 0..<count { c.nat44[queue, default: NAPT44SavedState()].holds.append(r.hold()) }
            case .nat64Sessions:
                for _ in 0..<count { c.nat64.sessions.append(r.nat64()) }
            case .nat64Holds:
                for _ in 0..<count { c.nat64.holds.append(r.hold()) }
            case .nat64Reservations:
                for _ in 0..<count {
                    let a = r.u32(), high = r.u64(), low = r.u64(), idle = r.u32()
                    c.reservations.append(AddressReservation(ipv4: IPv4Address(a), ipv6: IPv6Address(high: high, low: low), idleSeconds: idle))
                }
            }
        }
        guard r.remaining == 0 else { throw LoadError("is corrupt: \(r.remaining) bytes after its last section") }
        return c
    }

    // MARK: Files

    /// Reads `path`; nil when there is no such file.
    public static func load(path: String) throws(LoadError) -> Contents? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else { throw LoadError("cannot be read (check its permissions)") }
        return try decode([UInt8](data))
    }

    /// Writes atomically: a temporary file beside `path` (its folder made if missing), fsync, rename over
    /// `path`, fsync of the folder. A crash at any point leaves the old file or the new one, never a mix.
    public static func write(_ bytes: [UInt8], to path: String) throws(LoadError) {
        if let problem = StateFile.write(bytes, to: path) { throw LoadError(problem) }
    }
}

/// Little-endian appends.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes.append(UInt8(truncatingIfNeeded: v)); bytes.append(UInt8(truncatingIfNeeded: v >> 8)) }
    mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func u64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }

    mutating func section(_ k: SessionsFile.Kind, queue: Int, count: Int) {
        u16(k.rawValue)
        u16(UInt16(k.recordSize))
        u16(UInt16(queue))
        u16(0)
        u32(UInt32(count))
    }

    /// 44 bytes.
    mutating func nat44(_ s: NAPT44SavedSession) {
        u8(s.proto); u8(s.kind.rawValue); u8(s.tcpState); u8(s.timerClass); u8(s.cleanClose ? 1 : 0); u8(0)
        u16(s.insidePort); u32(s.tenant); u32(s.insideAddress); u32(s.outsideAddress); u16(s.outsidePort)
        u16(s.remotePort); u32(s.remoteAddress); u32(s.viaAddress); u16(s.viaPort); u16(s.qualifierPort)
        u32(s.qualifierAddress); u32(s.idleSeconds)
    }

    /// 40 bytes.
    mutating func nat64(_ s: NAPT64SavedSession) {
        u8(s.proto); u8(s.isStatic ? 1 : 0); u8(s.tcpState); u8(s.timerClass); u8(s.cleanClose ? 1 : 0); u8(0)
        u16(s.ipv6Port); u64(s.ipv6.high); u64(s.ipv6.low); u32(s.ipv4); u16(s.ipv4Port); u16(s.remotePort)
        u32(s.remoteAddress); u32(s.idleSeconds)
    }

    /// 12 bytes.
    mutating func hold(_ h: SavedPortHold) {
        u8(h.proto); u8(0); u16(h.outsidePort); u32(h.outsideAddress); u32(h.remainingSeconds)
    }
}

/// Little-endian reads; the caller has checked that the bytes are there.
struct ByteReader {
    let bytes: [UInt8]
    var offset: Int

    var remaining: Int { bytes.count - offset }

    mutating func u8() -> UInt8 { defer { offset += 1 }; return bytes[offset] }
    mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }
    mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    mutating func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }

    mutating func nat44() throws(SessionsFile.LoadError) -> NAPT44SavedSession {
        let proto = u8(), rawKind = u8(), state = u8(), timer = u8(), flags = u8()
        _ = u8()
        guard let kind = NAPT44SavedSession.MappingKind(rawValue: rawKind) else {
            throw SessionsFile.LoadError("is corrupt: a NAT44 session of unknown mapping kind \(rawKind)")
        }
        let insidePort = u16(), tenant = u32(), inside = u32(), outside = u32(), outsidePort = u16()
        let remotePort = u16(), remote = u32(), via = u32(), viaPort = u16(), qualifierPort = u16()
        let qualifier = u32(), idle = u32()
        return NAPT44SavedSession(proto: proto, kind: kind, tenant: tenant, insideAddress: inside, insidePort: insidePort,
                                  outsideAddress: outside, outsidePort: outsidePort, remoteAddress: remote, remotePort: remotePort,
                                  viaAddress: via, viaPort: viaPort, qualifierAddress: qualifier, qualifierPort: qualifierPort,
                                  tcpState: state, timerClass: timer, cleanClose: flags & 1 != 0, idleSeconds: idle)
    }

    mutating func nat64() -> NAPT64SavedSession {
        let proto = u8(), isStatic = u8(), state = u8(), timer = u8(), flags = u8()
        _ = u8()
        let port = u16(), high = u64(), low = u64(), v4 = u32(), v4Port = u16(), remotePort = u16()
        let remote = u32(), idle = u32()
        return NAPT64SavedSession(proto: proto, isStatic: isStatic != 0, ipv6: IPv6Address(high: high, low: low), ipv6Port: port,
                                  ipv4: v4, ipv4Port: v4Port, remoteAddress: remote, remotePort: remotePort, tcpState: state,
                                  timerClass: timer, cleanClose: flags & 1 != 0, idleSeconds: idle)
    }

    mutating func hold() -> SavedPortHold {
        let proto = u8()
        _ = u8()
        let port = u16(), address = u32(), remaining = u32()
        return SavedPortHold(proto: proto, outsideAddress: address, outsidePort: port, remainingSeconds: remaining)
    }
}

/// CRC-32 (IEEE 802.3, as zlib's `crc32`), table-driven.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        return c ^ 0xFFFF_FFFF
    }
}
