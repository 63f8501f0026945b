import Foundation
import NAT64
import NATWire

/// The NAT64 pool's reservations on disk, so that IPv6 hosts keep their IPv4 addresses across a
/// restart. A small text file, written atomically (temporary file, fsync, rename, fsync of the folder):
///
/// ```
/// # swiftnat NAT64 pool reservations (IPv4 IPv6 idle-seconds); written by `swiftnat run`
/// swiftnat-nat64-state 1
/// written 1763750000
/// 192.0.2.1 2001:db8:1::2 300
/// ```
/// `written` is the wall-clock time (Unix seconds) of writing: on load the time since then is added to
/// every idle time, so a reservation that expired while the daemon was down is not brought back.
public enum NAT64StateFile {
    public static let magic = "swiftnat-nat64-state"
    public static let version = 1

    public struct StateError: Error, Sendable, Equatable, CustomStringConvertible {
        public var file: String
        public var line: Int?
        public var problem: String
        public init(file: String, line: Int? = nil, problem: String) {
            self.file = file
            self.line = line
            self.problem = problem
        }
        public var description: String {
            let at = line.map { "\(file), line \($0)" } ?? file
            return "NAT64 state file \(at): \(problem)"
        }
    }

    /// The file's text for `reservations` (dynamic ones; static ones come from the configuration).
    public static func render(_ reservations: [AddressReservation], writtenAt: Int64) -> String {
        var s = "# swiftnat NAT64 pool reservations (IPv4 IPv6 idle-seconds); written by `swiftnat run`, safe to delete while it is stopped\n"
        s += "\(magic) \(version)\nwritten \(writtenAt)\n"
        for r in reservations where !r.isStatic { s += "\(r.ipv4) \(r.ipv6) \(r.idleSeconds)\n" }
        return s
    }

    /// Reads the text back; idle times are advanced by the time since `written` (never moved back).
    public static func parse(_ text: String, file: String, wallNow: Int64) throws(StateError) -> [AddressReservation] {
        var out: [AddressReservation] = []
        var sawMagic = false
        var written: Int64?
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let n = i + 1
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if !sawMagic {
                guard f.count == 2, f[0] == magic else {
                    throw StateError(file: file, line: n, problem: "does not start with '\(magic) \(version)'; it is not a swiftnat NAT64 state file")
                }
                guard Int(f[1]) == version else {
                    throw StateError(file: file, line: n, problem: "has version \(f[1]); this swiftnat reads version \(version)")
                }
                sawMagic = true
                continue
            }
            if f.first == "written" {
                guard f.count == 2, let t = Int64(f[1]) else { throw StateError(file: file, line: n, problem: "'\(line)' is not 'written <unix seconds>'") }
                written = t
                continue
            }
            guard f.count == 3 else { throw StateError(file: file, line: n, problem: "'\(line)' is not '<IPv4> <IPv6> <idle seconds>'") }
            guard let a = IPv4Address(f[0]) else { throw StateError(file: file, line: n, problem: "'\(f[0])' is not an IPv4 address") }
            guard let b = IPv6Address(f[1]) else { throw StateError(file: file, line: n, problem: "'\(f[1])' is not an IPv6 address") }
            guard let idle = UInt32(f[2]) else { throw StateError(file: file, line: n, problem: "'\(f[2])' is not a number of seconds") }
            out.append(AddressReservation(ipv4: a, ipv6: b, idleSeconds: idle))
        }
        guard sawMagic else { throw StateError(file: file, problem: "is empty or holds only comments; expected '\(magic) \(version)'") }
        guard let written else { throw StateError(file: file, problem: "has no 'written <unix seconds>' line") }
        let elapsed = UInt64(max(0, wallNow - written))
        return out.map { r in
            var r = r
            r.idleSeconds = UInt32(min(UInt64(r.idleSeconds) + elapsed, UInt64(UInt32.max)))
            return r
        }
    }

    /// Loads `path`; nil when there is no such file (the first start).
    public static func load(path: String, wallNow: Int64 = Int64(Date().timeIntervalSince1970)) throws(StateError) -> [AddressReservation]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StateError(file: path, problem: "cannot be read (check its permissions)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw StateError(file: path, problem: "is not UTF-8 text; it is not a swiftnat NAT64 state file")
        }
        return try parse(text, file: path, wallNow: wallNow)
    }

    /// Writes atomically: a temporary file beside `path`, fsync, rename over `path`, fsync of the folder.
    /// A crash at any point leaves either the old file or the new one, never a mix.
    public static func write(_ reservations: [AddressReservation], to path: String,
                             wallNow: Int64 = Int64(Date().timeIntervalSince1970)) throws(StateError) {
        let text = render(reservations, writtenAt: wallNow)
        // The folder must exist (checked at start): a state file is not a reason to make folders.
        if let problem = StateFile.write(Array(text.utf8), to: path, makingFolder: false) {
            let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
            throw StateError(file: path, problem: "\(problem) (check that \(dir) exists and is writable)")
        }
    }
}
