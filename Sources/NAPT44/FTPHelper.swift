import NATCore
import NATWire

/// The FTP helper's parsing, over payload bytes (no copies, no strings).
///
/// Active mode: the client (inside) announces where it listens, with `PORT h1,h2,h3,h4,p1,p2` (RFC 959
/// §4.1.2) or `EPRT |1|a.b.c.d|port|` (RFC 2428 §2). The helper rewrites the announcement to the
/// client's outside address and an outside port it expects the server's connection on.
/// Passive mode: the server answers `227 … (h1,h2,h3,h4,p1,p2)` (RFC 959 §4.2) or `229 … (|||port|)`
/// (RFC 2428 §3) with its own address and port; the client connects out as any client does, so with
/// the client inside nothing in those replies needs rewriting.
public enum FTPCommand {
    /// `PORT` or `EPRT` with the announced IPv4 endpoint, and the command line's length (through LF).
    public enum Parsed: Equatable, Sendable {
        case none
        /// The segment holds only the beginning of a PORT/EPRT line (no LF yet): split over segments.
        case split
        case port(address: UInt32, port: UInt16, lineLength: Int)
        case eprt(address: UInt32, port: UInt16, lineLength: Int, delimiter: UInt8)
    }

    @inline(__always)
    static func upper(_ b: UInt8) -> UInt8 { b >= 97 && b <= 122 ? b - 32 : b }

    /// Whether `p` starts with `word` (upper case ASCII), ignoring case, as far as `p` goes.
    static func startsWith(_ p: UnsafeRawBufferPointer, _ word: StaticString) -> (matches: Bool, complete: Bool) {
        word.withUTF8Buffer { w in
            let n = min(p.count, w.count)
            for i in 0..<n where upper(p[i]) != w[i] { return (false, false) }
            return (true, p.count >= w.count)
        }
    }

    public static func parse(_ p: UnsafeRawBufferPointer) -> Parsed {
        let isPort = startsWith(p, "PORT "), isEPRT = startsWith(p, "EPRT ")
        guard isPort.matches || isEPRT.matches else { return .none }
        guard let lf = p.firstIndex(of: 10) else { return .split }
        guard isPort.complete || isEPRT.complete else { return .none }
        var end = lf
        if end > 0 && p[end - 1] == 13 { end -= 1 }
        let args = UnsafeRawBufferPointer(rebasing: p[5..<end])
        if isPort.complete { return parsePort(args, lineLength: lf + 1) }
        return parseEPRT(args, lineLength: lf + 1)
    }

    /// The first PORT/EPRT line of a payload that may carry several commands (a client that pipelines
    /// `USER`, `PASS` and `PORT` in one segment), with its offset in the payload.
    public static func find(_ p: UnsafeRawBufferPointer) -> (offset: Int, command: Parsed) {
        var start = 0
        while start < p.count {
            let r = parse(UnsafeRawBufferPointer(rebasing: p[start...]))
            if r != .none { return (start, r) }
            guard let lf = p[start...].firstIndex(of: 10) else { break }
            start = lf + 1
        }
        return (0, .none)
    }

    /// `h1,h2,h3,h4,p1,p2`, each 0-255.
    static func parsePort(_ a: UnsafeRawBufferPointer, lineLength: Int) -> Parsed {
        var values = InlineArray<6, UInt32>(repeating: 0)
        var n = 0, digits = 0, i = 0
        while i < a.count && a[i] == 32 { i += 1 }
        while i < a.count {
            let c = a[i]
            if c >= 48 && c <= 57 {
                guard n < 6, digits < 3 else { return .none }
                values[n] = values[n] * 10 + UInt32(c - 48)
                digits += 1
            } else if c == 44 {
                guard digits > 0, n < 5 else { return .none }
                n += 1
                digits = 0
            } else if c == 32 {
                break
            } else {
                return .none
            }
            i += 1
        }
        guard n == 5, digits > 0 else { return .none }
        for k in 0..<6 where values[k] > 255 { return .none }
        let address = values[0] << 24 | values[1] << 16 | values[2] << 8 | values[3]
        return .port(address: address, port: UInt16(values[4] << 8 | values[5]), lineLength: lineLength)
    }

    /// `|1|a.b.c.d|port|` with any delimiter (RFC 2428 §2); network protocol 1 (IPv4) only.
    static func parseEPRT(_ a: UnsafeRawBufferPointer, lineLength: Int) -> Parsed {
        guard a.count >= 9 else { return .none }
        let d = a[0]
        guard d >= 33 && d <= 126, a[1] == 49, a[2] == d else { return .none }
        var i = 3
        var octets = InlineArray<4, UInt32>(repeating: 0)
        var n = 0, digits = 0
        while i < a.count && a[i] != d {
            let c = a[i]
            if c >= 48 && c <= 57 {
                guard digits < 3 else { return .none }
                octets[n] = octets[n] * 10 + UInt32(c - 48)
                digits += 1
            } else if c == 46 {
                guard digits > 0, n < 3 else { return .none }
                n += 1
                digits = 0
            } else {
                return .none
            }
            i += 1
        }
        guard i < a.count, n == 3, digits > 0 else { return .none }
        for k in 0..<4 where octets[k] > 255 { return .none }
        i += 1
        var port: UInt32 = 0
        digits = 0
        while i < a.count && a[i] != d {
            let c = a[i]
            guard c >= 48 && c <= 57, digits < 5 else { return .none }
            port = port * 10 + UInt32(c - 48)
            digits += 1
            i += 1
        }
        guard i < a.count, digits > 0, port > 0, port <= 65535 else { return .none }
        return .eprt(address: octets[0] << 24 | octets[1] << 16 | octets[2] << 8 | octets[3], port: UInt16(port),
                     lineLength: lineLength, delimiter: d)
    }
}

extension NAPT44Engine {
    /// The FTP helper on an outbound payload of session `sid` (the control connection): a PORT or EPRT
    /// announcing the inside host's own address is rewritten to its outside address and a port where an
    /// expectation waits for the server's data connection. Returns where in the payload the command line
    /// starts and how many bytes of it `text` replaces (0: leave the payload alone). A command split over segments is counted and forwarded as
    /// it is (the data connection then fails as it would without the helper).
    mutating func ftpOutbound(_ payload: UnsafeRawBufferPointer, sid: UInt32, insideAddress: UInt32, now: Timestamp,
                              into text: inout HelperText) -> (offset: Int, replaced: Int) {
        let (offset, parsed) = FTPCommand.find(payload)
        let address: UInt32, port: UInt16, line: Int
        switch parsed {
        case .none: return (0, 0)
        case .split:
            counters.helperSplitCommands &+= 1
            return (0, 0)
        case .port(let a, let p, let l), .eprt(let a, let p, let l, _):
            (address, port, line) = (a, p, l)
        }
        // Only the client's own address: a third party's (an FTP bounce) is no business of the NAT's.
        guard address == insideAddress else { return (0, 0) }
        guard let outsidePort = expect(master: sid, insideAddress: insideAddress, insidePort: port, now: now) else { return (0, 0) }
        let o = table.sessions[Int(sid)].outsideAddress
        switch parsed {
        case .eprt(_, _, _, let d):
            text.append("EPRT ")
            text.append(d); text.append(49); text.append(d)
            text.append(decimal: o >> 24); text.append(46)
            text.append(decimal: o >> 16 & 0xFF); text.append(46)
            text.append(decimal: o >> 8 & 0xFF); text.append(46)
            text.append(decimal: o & 0xFF); text.append(d)
            text.append(decimal: UInt32(outsidePort)); text.append(d)
        default:
            text.append("PORT ")
            text.append(decimal: o >> 24); text.append(44)
            text.append(decimal: o >> 16 & 0xFF); text.append(44)
            text.append(decimal: o >> 8 & 0xFF); text.append(44)
            text.append(decimal: o & 0xFF); text.append(44)
            text.append(decimal: UInt32(outsidePort >> 8)); text.append(44)
            text.append(decimal: UInt32(outsidePort & 0xFF))
        }
        text.append("\r\n")
        return text.overflowed ? (0, 0) : (offset, line)
    }
}
