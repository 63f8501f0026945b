import ArgumentParser
import Foundation
import NATTraversal
import STUN

struct Map: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep a public port open through the NATs upstream and report it (NATMap's options, TCP and UDP).",
        discussion: """
        Bind mode: your service listens on the bind port (with SO_REUSEPORT); swiftnat keeps the NAT mapping \
        alive from the same port and reports the public address. Forward mode (-t): swiftnat listens on the bind \
        port and relays to the target. On the first mapping and on every change the script (-e) runs with: \
        public address, public port, IP4P, bind port, tcp|udp, private address; without -e these six fields \
        are printed on stdout. SIGTERM or SIGINT stop it.
        """,
        helpNames: [.long])

    @Flag(name: .customShort("4"), help: "Use IPv4 (the default).")
    var ipv4 = false
    @Flag(name: .customShort("6"), help: "Use IPv6.")
    var ipv6 = false
    @Flag(name: .customShort("u"), help: "UDP instead of TCP.")
    var udp = false
    @Flag(name: .customShort("d"), help: "Run in the background (a new session, output to /dev/null; under systemd use the unit in Examples/ instead).")
    var daemon = false
    @Option(name: .customShort("i"), help: ArgumentHelp("Network interface (SO_BINDTODEVICE) or local IP address to bind.", valueName: "iface|address"))
    var interface: String?
    @Option(name: .customShort("k"), help: ArgumentHelp("Seconds between keep-alives.", valueName: "seconds"))
    var keepAlive = 10
    @Option(name: .customShort("c"), help: ArgumentHelp("A full STUN check every this many keep-alive intervals (UDP keep-alives in between are single requests).", valueName: "n"))
    var checkCycle = 10
    @Option(name: .customShort("s"), help: ArgumentHelp("STUN server ADDRESS[:PORT] (3478); repeat for failover, tried in order.", valueName: "address[:port]"))
    var stun: [String] = []
    @Option(name: .customShort("h"), help: ArgumentHelp("HTTP server ADDRESS[:PORT] (80) for TCP keep-alives.", valueName: "address[:port]"))
    var http: String?
    @Option(name: .customShort("e"), help: ArgumentHelp("Script to run with the mapping (six arguments, as NATMap).", valueName: "path"))
    var script: String?
    @Option(name: .customShort("f"), help: ArgumentHelp("Firewall mark (SO_MARK): hexadecimal 0x.., octal 0.. or decimal.", valueName: "mark"))
    var fwmark: String?
    @Option(name: .customShort("b"), help: ArgumentHelp("Bind port: P, 0 (any), P~Q (random in range) or P-Q (first free in range).", valueName: "port"))
    var bind = "0"
    @Option(name: .customShort("C"), help: ArgumentHelp("TCP congestion control for forwarded connections.", valueName: "name"))
    var congestion: String?
    @Option(name: .customShort("T"), help: ArgumentHelp("Forwarding idle timeout in seconds.", valueName: "seconds"))
    var idleTimeout = 300
    @Option(name: .customShort("t"), help: ArgumentHelp("Forward mode: target address.", valueName: "address"))
    var target: String?
    @Option(name: .customShort("p"), help: ArgumentHelp("Forward mode: target port (0: the public port).", valueName: "port"))
    var targetPort: UInt16 = 0
    @Flag(help: "Print events as JSON lines on stdout.")
    var json = false

    func configuration() throws -> MapConfiguration {
        var c = MapConfiguration()
        if ipv4 && ipv6 { throw ValidationError("-4 and -6 exclude each other") }
        c.ipv6 = ipv6
        c.udp = udp
        c.interface = interface
        c.keepAlive = keepAlive
        c.checkCycle = checkCycle
        c.stunServers = stun
        c.httpServer = http
        c.script = script
        if let fwmark {
            guard let m = MapConfiguration.parseMark(fwmark) else { throw ValidationError("-f \(fwmark): expected a number (0x.. hexadecimal, 0.. octal, or decimal)") }
            c.fwmark = m
        }
        guard let b = BindPort(bind) else { throw ValidationError("-b \(bind): expected P, 0, P~Q or P-Q (ports 1-65535)") }
        c.bindPort = b
        c.congestion = congestion
        c.idleTimeout = idleTimeout
        if let target { c.mode = .forward(target: target, port: targetPort) }
        c.json = json
        if let p = c.problem() { throw ValidationError(p) }
        return c
    }

    func run() throws {
        let config = try configuration()
        if daemon && ProcessInfo.processInfo.environment["SWIFTNAT_MAP_DAEMON"] == nil {
            daemonize()
        }
        StopFlag.installSignalHandlers()
        let out = MapOutput(json: json, script: script)
        let mapper = Mapper(config: config) { out.handle($0) }
        do { try mapper.run() } catch { fail(error.description) }
    }

    /// -d: start this same command again in a new session with stdio on /dev/null, then leave.
    func daemonize() -> Never {
        // Only 0-2 (on /dev/null) go to the background process: an inherited pipe would keep whoever
        // started us waiting for its end.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            if let fd = Int32(name), fd > 2 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        posix_spawnattr_setflags(&attr, 0x80)  // POSIX_SPAWN_SETSID (glibc ≥ 2.26), not imported into Swift
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        for fd in Int32(0)...2 { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0) }
        let args = [selfPath()] + CommandLine.arguments.dropFirst()
        let env = ProcessInfo.processInfo.environment.map { "\($0)=\($1)" } + ["SWIFTNAT_MAP_DAEMON=1"]
        var cargs = args.map { strdup($0) } + [nil]
        var cenv = env.map { strdup($0) } + [nil]
        var pid: pid_t = 0
        let r = posix_spawn(&pid, selfPath(), &actions, &attr, &cargs, &cenv)
        guard r == 0 else { fail("-d: cannot start in the background: \(String(cString: strerror(r)))") }
        print("swiftnat map running in the background, pid \(pid) (stop it with: kill \(pid))")
        Foundation.exit(0)
    }
}

/// Prints map events: text on stderr for people; the mapping's six fields (no -e) or JSON lines on stdout.
final class MapOutput: @unchecked Sendable {
    let json: Bool
    let script: String?

    init(json: Bool, script: String?) {
        self.json = json
        self.script = script
    }

    func say(_ text: String) {
        FileHandle.standardError.write(Data("swiftnat map: \(text)\n".utf8))
    }

    func emitJSON(_ object: [String: Any]) {
        guard json, let d = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        line(String(decoding: d, as: UTF8.self))
    }

    /// One line on stdout, written at once (stdout may be a file or a pipe: no buffering).
    func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    func handle(_ e: MapEvent) {
        switch e {
        case .info(let s):
            say(s)
            emitJSON(["event": "info", "message": s])
        case .mapping(let m, let previous):
            say("\(previous == nil ? "mapped" : "mapping changed:") \(m.protocol) \(m.privateAddress):\(m.bindPort) → \(m.publicAddress):\(m.publicPort) (IP4P \(m.ip4p), via \(m.stunServer))")
            emitJSON(["event": previous == nil ? "mapping" : "mapping_changed", "public_address": m.publicAddress, "public_port": Int(m.publicPort),
                      "ip4p": m.ip4p, "bind_port": Int(m.bindPort), "protocol": m.protocol, "private_address": m.privateAddress,
                      "stun_server": m.stunServer])
            if let script {
                if let problem = Notifier.run(script: script, arguments: m.scriptArguments) {
                    say("script failed: \(problem) (it runs again at the next change)")
                    emitJSON(["event": "script_failed", "message": problem])
                } else {
                    emitJSON(["event": "script_done", "script": script])
                }
            } else if !json {
                line(m.scriptArguments.joined(separator: " "))
            }
        case .failover(let from, let to, let reason):
            say("STUN server \(from) failed (\(reason)); trying \(to)")
            emitJSON(["event": "failover", "from": from, "to": to, "reason": reason])
        case .refused(let server, let reason, let detail):
            say("refused an answer from \(server): \(reason): \(detail)")
            emitJSON(["event": "refused", "server": server, "reason": reason, "detail": detail])
        case .error(let s, let retry):
            let r = retry.map { Int($0.components.seconds) }
            say("\(s)\(r.map { "; retrying in \($0) s" } ?? "")")
            var o: [String: Any] = ["event": "error", "message": s]
            if let r { o["retry_in"] = r }
            emitJSON(o)
        case .stopped:
            say("stopped")
            emitJSON(["event": "stopped"])
        }
    }
}
