import ArgumentParser
import Foundation
import NATRuntime

/// Options every control command takes.
struct ControlOptions: ParsableArguments {
    @Option(name: .long, help: "The daemon's control socket ([control] socket).")
    var socket = ControlSettings().socket

    /// Sends `request`; returns the `result` JSON value, or exits with the daemon's error.
    func call(_ request: ControlRequest) -> Data {
        let line: String
        do {
            let e = JSONEncoder()
            e.outputFormatting = .sortedKeys
            line = String(decoding: try e.encode(request), as: UTF8.self)
        } catch {
            fail("cannot encode the request: \(error)")
        }
        let answer: String
        do {
            answer = try ControlClient.request(line, socket: socket)
        } catch {
            fail(error.description)
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any] else {
            fail("the daemon's answer is not JSON: \(answer)")
        }
        guard object["ok"] as? Bool == true else { fail(object["error"] as? String ?? "the daemon refused: \(answer)") }
        guard let result = object["result"], let data = try? JSONSerialization.data(withJSONObject: result, options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes]) else {
            return Data("null".utf8)
        }
        return data
    }

    func decode<T: Decodable>(_ type: T.Type, _ data: Data) -> T {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try d.decode(T.self, from: data)
        } catch {
            fail("the daemon's answer has an unexpected shape (\(error)); is it another swiftnat version?")
        }
    }
}

func printJSON(_ data: Data) {
    print(String(decoding: data, as: UTF8.self))
}

func duration(_ s: Double) -> String {
    let t = Int(s)
    if t >= 86400 { return "\(t / 86400)d\(t % 86400 / 3600)h" }
    if t >= 3600 { return "\(t / 3600)h\(t % 3600 / 60)m" }
    if t >= 60 { return "\(t / 60)m\(t % 60)s" }
    return "\(t)s"
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the running daemon: version, uptime, configuration, engines, queues, offloads, sessions.")
    @OptionGroup var control: ControlOptions
    @Flag(help: "Print the daemon's JSON answer.") var json = false

    func run() {
        let data = control.call(ControlRequest(command: "status"))
        if json { printJSON(data); return }
        let s = control.decode(StatusResult.self, data)
        print("swiftnat \(s.version), pid \(s.pid), up \(duration(s.uptimeSeconds))")
        print("config:   \(s.configFile)\(s.reloads > 0 ? " (reloaded \(s.reloads)×)" : "")")
        print("engines:  \(s.engines.joined(separator: ", "))")
        print("tun:      \(s.tun), \(s.queues) queue\(s.queues == 1 ? "" : "s"), offload \(s.offload)")
        print("sessions: \(s.sessions)")
        print("forwards: \(s.forwards)")
    }
}

struct Sessions: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List NAT44 and NAT64 sessions of every queue, as conntrack -L does.")
    @OptionGroup var control: ControlOptions
    @Flag(help: "One JSON array of sessions.") var json = false
    @Option(name: .customLong("protocol"), help: "tcp, udp or icmp.") var proto: String?
    @Option(help: "Inside endpoint: ADDR or ADDR:PORT ([V6]:PORT for NAT64).") var inside: String?
    @Option(help: "Outside endpoint (the NAT's): ADDR or ADDR:PORT.") var outside: String?
    @Option(help: "Remote endpoint: ADDR or ADDR:PORT.") var remote: String?
    @Option(help: "Most sessions per queue.") var limit: Int?

    func validate() throws {
        if let p = proto, !["tcp", "udp", "icmp"].contains(p.lowercased()) { throw ValidationError("--protocol must be tcp, udp or icmp") }
    }

    func run() {
        var r = ControlRequest(command: "sessions")
        r.protocol = proto
        r.inside = inside
        r.outside = outside
        r.remote = remote
        r.limit = limit
        let data = control.call(r)
        if json { printJSON(data); return }
        let rows = control.decode([SessionRow].self, data)
        for s in rows {
            var line = "\(s.engine) \(s.protocol.padding(toLength: 4, withPad: " ", startingAt: 0)) "
            if !s.state.isEmpty { line += s.state.padding(toLength: 12, withPad: " ", startingAt: 0) + " " }
            line += "inside=\(s.inside) outside=\(s.outside) remote=\(s.remote)"
            if s.remoteOutside != s.remote && s.engine == "nat44" { line += " via=\(s.remoteOutside)" }
            line += " idle=\(s.idleSeconds)s left=\(s.expiresInSeconds)s"
            if s.isStatic { line += " [forward]" }
            if let h = s.helper { line += " [helper \(h)]" }
            if let m = s.master { line += " master=\(m)" }
            if s.tenant != 0 { line += " tenant=\(s.tenant)" }
            line += " queue=\(s.queue)"
            print(line)
        }
        FileHandle.standardError.write(Data("\(rows.count) session\(rows.count == 1 ? "" : "s")\n".utf8))
    }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Counters summed over every queue: packets, sessions, drops by reason, the runtime's I/O.")
    @OptionGroup var control: ControlOptions
    @Flag(help: "Print the daemon's JSON answer.") var json = false

    func run() {
        let data = control.call(ControlRequest(command: "stats"))
        if json { printJSON(data); return }
        let s = control.decode(StatsResult.self, data)
        for (name, d) in [("nat44", s.nat44), ("nat64", s.nat64), ("nptv6", s.nptv6), ("runtime", s.runtime), ("dropped", s.dropped)] {
            guard let d, !d.isEmpty else { continue }
            print("\(name):")
            for (k, v) in d.sorted(by: { $0.key < $1.key }) { print("  \(k.padding(toLength: 28, withPad: " ", startingAt: 0)) \(v)") }
        }
    }
}

struct Forwards: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, add and remove port forwards of the running daemon (added ones survive a restart).",
        subcommands: [List.self, Add.self, Remove.self], defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The forwards: from the file and added at run time.")
        @OptionGroup var control: ControlOptions
        @Flag(help: "Print the daemon's JSON answer.") var json = false

        func run() {
            let data = control.call(ControlRequest(command: "forwards.list"))
            if json { printJSON(data); return }
            let rows = control.decode([ForwardEntry].self, data)
            for f in rows {
                var line = "\(f.protocol) \(f.outside) -> \(f.inside) origin=\(f.origin)"
                if f.enabled == false { line += " disabled" }
                if let e = f.expiresAt { line += " expires_in=\(duration(e - Date().timeIntervalSince1970))" }
                if let d = f.description { line += " \"\(d)\"" }
                print(line)
            }
            FileHandle.standardError.write(Data("\(rows.count) forward\(rows.count == 1 ? "" : "s")\n".utf8))
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Forward an outside port (or range) to an inside host.")
        @OptionGroup var control: ControlOptions
        @Argument(help: "tcp or udp.") var proto: String
        @Argument(help: "Outside address and port or range: 198.51.100.1:8080 or 198.51.100.1:5000-5009.") var outside: String
        @Argument(help: "Inside address and port: 100.64.0.2:80.") var inside: String
        @Option(help: "Seconds until it is removed by itself (default: never).") var lifetime: Int?
        @Option(help: "A note shown in the list.") var description: String?
        @Flag(help: "Print the daemon's JSON answer.") var json = false

        func run() {
            var r = ControlRequest(command: "forwards.add")
            r.protocol = proto
            r.outside = outside
            r.inside = inside
            r.lifetime = lifetime
            r.description = description
            let data = control.call(r)
            if json { printJSON(data); return }
            let f = control.decode(ForwardEntry.self, data)
            print("added: \(f.protocol) \(f.outside) -> \(f.inside)\(lifetime.map { " for \($0) s" } ?? "")")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a forward added at run time (and its sessions).")
        @OptionGroup var control: ControlOptions
        @Argument(help: "tcp or udp.") var proto: String
        @Argument(help: "Outside address and port: 198.51.100.1:8080.") var outside: String

        func run() {
            var r = ControlRequest(command: "forwards.remove")
            r.protocol = proto
            r.outside = outside
            let f = control.decode(ForwardEntry.self, control.call(r))
            print("removed: \(f.protocol) \(f.outside) -> \(f.inside)")
        }
    }
}

struct Reservations: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "NAT64 pool mode: which IPv6 host holds which IPv4 address.")
    @OptionGroup var control: ControlOptions
    @Flag(help: "Print the daemon's JSON answer.") var json = false

    func run() {
        let data = control.call(ControlRequest(command: "reservations"))
        if json { printJSON(data); return }
        let rows = control.decode([AddressReservationRow].self, data)
        for r in rows { print("\(r.ipv6) -> \(r.ipv4) idle=\(r.idleSeconds)s\(r.isStatic ? " static" : "")") }
        FileHandle.standardError.write(Data("\(rows.count) reservation\(rows.count == 1 ? "" : "s")\n".utf8))
    }
}

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read the configuration file again and apply it without dropping sessions (as SIGHUP does); a broken file is refused.")
    @OptionGroup var control: ControlOptions

    func run() {
        let changes = control.decode([String].self, control.call(ControlRequest(command: "reload")))
        print(changes.isEmpty ? "reloaded: nothing changed" : "reloaded:")
        for c in changes { print("  \(c)") }
    }
}
