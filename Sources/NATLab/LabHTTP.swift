import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `swiftnat lab-tool http-serve`: a small HTTP/1.0 server for the lab. It serves the files of one
/// directory (GET and HEAD; no listings, nothing outside the directory), one connection at a time, and
/// prints a line per request with the peer it saw (`198.51.100.1:40312 "GET /index.html HTTP/1.1" 200 45`),
/// which is how the lab shows the address the NAT gave the client. It stops after `duration` seconds.
public struct LabHTTPServer {
    public var address: String
    public var port: UInt16
    public var directory: String
    public var duration: Double
    /// Seconds a client may take to send its request.
    public var requestTimeout = 5.0

    public init(address: String, port: UInt16, directory: String, duration: Double) {
        self.address = address
        self.port = port
        self.directory = directory
        self.duration = duration
    }

    public func run() throws(LabToolError) {
        try checkSeconds(duration, "--duration")
        try checkSeconds(requestTimeout, "the request timeout")
        let end = Date().addingTimeInterval(duration)
        let local = try LabSocketAddress(host: address, port: port)
        let listener = try LabSocket(family: local.family, type: Int32(SOCK_STREAM.rawValue))
        try listener.setOption(SOL_SOCKET, SO_REUSEADDR, Int32(1), "SO_REUSEADDR")
        try listener.bind(local)
        guard listen(listener.fd, 16) == 0 else { throw .errno("listen on \(local)") }
        say("listening on http://\(local)/ serving \(directory) for \(Int(duration)) s")
        while try listener.wait(for: Int16(POLLIN), until: end) {
            var st = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &st) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listener.fd, $0, &len) }
            }
            guard fd >= 0 else { continue }
            let peer = LabSocketAddress(storage: st)?.description ?? "?"
            let connection = LabSocket(fd: fd)
            do {
                say(try serve(connection, peer: peer, until: min(end, Date().addingTimeInterval(requestTimeout))))
            } catch {
                say("\(peer) \(error)")
            }
        }
        say("stopped after \(Int(duration)) s")
    }

    /// Reads one request and answers it; returns the log line.
    private func serve(_ c: LabSocket, peer: String, until deadline: Date) throws(LabToolError) -> String {
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !request.containsHeaderEnd && request.count < 16384 {
            guard let r = try c.receive(into: &buffer, until: deadline) else { throw LabToolError("no complete request in time") }
            if r.count == 0 { break }
            request += buffer[..<r.count]
        }
        let firstLine = String(decoding: request.prefix { $0 != 0x0D && $0 != 0x0A }, as: UTF8.self)
        let parts = firstLine.split(separator: " ")
        let (status, reason, body): (Int, String, [UInt8])
        if parts.count != 3 || !parts[2].hasPrefix("HTTP/") {
            (status, reason, body) = (400, "Bad Request", Array("bad request\n".utf8))
        } else if parts[0] != "GET" && parts[0] != "HEAD" {
            (status, reason, body) = (405, "Method Not Allowed", Array("only GET and HEAD\n".utf8))
        } else if let file = file(for: String(parts[1])), let data = FileManager.default.contents(atPath: file) {
            (status, reason, body) = (200, "OK", Array(data))
        } else {
            (status, reason, body) = (404, "Not Found", Array("not found\n".utf8))
        }
        let head = "HTTP/1.0 \(status) \(reason)\r\nServer: swiftnat-lab\r\nContent-Type: text/plain; charset=utf-8\r\n"
            + "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        try c.sendAll(Array(head.utf8) + (parts.first == "HEAD" ? [] : body), until: deadline)
        return "\(peer) \"\(firstLine)\" \(status) \(body.count)"
    }

    /// The file a request path names inside `directory` (`/` is `/index.html`), or nil when it leaves it.
    private func file(for target: String) -> String? {
        var path = String(target.prefix { $0 != "?" && $0 != "#" })
        guard path.hasPrefix("/") else { return nil }
        if path.hasSuffix("/") { path += "index.html" }
        let components = path.split(separator: "/")
        guard !components.contains(where: { $0 == ".." || $0 == "." }) else { return nil }
        let full = ([directory] + components.map(String.init)).joined(separator: "/")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue else { return nil }
        return full
    }
}

/// `swiftnat lab-tool http-get`: fetches `http://ADDRESS[:PORT]/PATH` (an IPv4 address or a bracketed
/// IPv6 one, no names) and prints the body, as `curl -sS` does; fails on a status other than 2xx.
public struct LabHTTPGet {
    public var url: String
    public var timeout: Double

    public init(url: String, timeout: Double = 5) {
        self.url = url
        self.timeout = timeout
    }

    /// The status code and the body.
    public func run() throws(LabToolError) -> (status: Int, body: [UInt8]) {
        try checkSeconds(timeout, "--timeout")
        let deadline = Date().addingTimeInterval(timeout)
        let (host, port, path) = try parse()
        let to = try LabSocketAddress(host: host, port: port)
        let s = try LabSocket(family: to.family, type: Int32(SOCK_STREAM.rawValue))
        try s.connect(to, deadline: deadline)
        let hostHeader = port == 80 ? host : "\(host):\(port)"
        let request = "GET \(path) HTTP/1.0\r\nHost: \(hostHeader)\r\nUser-Agent: swiftnat-lab\r\nConnection: close\r\n\r\n"
        try s.sendAll(Array(request.utf8), until: deadline)
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            guard let r = try s.receive(into: &buffer, until: deadline) else {
                throw LabToolError("\(url): no complete answer within \(timeout) s (\(response.count) bytes so far)")
            }
            if r.count == 0 { break }
            response += buffer[..<r.count]
            guard response.count <= 16 << 20 else { throw LabToolError("\(url): answer larger than 16 MiB") }
        }
        guard let headerEnd = response.headerEnd else { throw LabToolError("\(url): the answer is not HTTP") }
        let statusLine = String(decoding: response.prefix { $0 != 0x0D }, as: UTF8.self)
        let fields = statusLine.split(separator: " ")
        guard fields.count >= 2, fields[0].hasPrefix("HTTP/"), let status = Int(fields[1]) else {
            throw LabToolError("\(url): bad status line '\(statusLine)'")
        }
        return (status, Array(response[headerEnd...]))
    }

    private func parse() throws(LabToolError) -> (host: String, port: UInt16, path: String) {
        guard url.hasPrefix("http://") else { throw LabToolError("'\(url)': only http:// URLs") }
        let rest = url.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        var host = String(authority), port: UInt16 = 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw LabToolError("'\(url)': no ']' after the IPv6 address") }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = UInt16(after.dropFirst()) else { throw LabToolError("'\(url)': bad port") }
                port = p
            } else if !after.isEmpty { throw LabToolError("'\(url)': bad address") }
        } else if let colon = authority.firstIndex(of: ":") {
            host = String(authority[..<colon])
            guard let p = UInt16(authority[authority.index(after: colon)...]) else { throw LabToolError("'\(url)': bad port") }
            port = p
        }
        return (host, port, path.isEmpty ? "/" : String(path))
    }
}

extension [UInt8] {
    /// The index just after the first blank line (`\r\n\r\n`), if there is one.
    var headerEnd: Int? {
        guard count >= 4 else { return nil }
        for i in 0...(count - 4) where self[i] == 0x0D && self[i + 1] == 0x0A && self[i + 2] == 0x0D && self[i + 3] == 0x0A {
            return i + 4
        }
        return nil
    }

    var containsHeaderEnd: Bool { headerEnd != nil }
}
