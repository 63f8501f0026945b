import ArgumentParser
import Foundation
import Logging
import NATLab
import NATCore
import NATRuntime

@main
struct SwiftNAT: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftnat",
        abstract: "NAT44 and NAT64 in user space on a Linux TUN device.",
        version: SwiftNATVersion.string,
        subcommands: [Run.self, Lab.self, Status.self, Sessions.self, Stats.self, Forwards.self, Reservations.self, Reload.self,
                      Probe.self, Map.self, LabTool.self]
    )
}

func makeLogger(verbose: Bool) -> Logger {
    LoggingSystem.bootstrap { label in
        var h = StreamLogHandler.standardError(label: label)
        h.logLevel = verbose ? .debug : .info
        return h
    }
    return Logger(label: "swiftnat")
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("swiftnat: error: \(message)\n".utf8))
    exit(1)
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the NAT daemon: TUN device, routes, packet threads (SIGUSR1 logs sessions; SIGINT/SIGTERM stop and clean up).")

    @Option(name: .shortAndLong, help: "The TOML configuration file (swiftnat's, or protomask's).")
    var config: String?

    @Argument(help: "The configuration file, as protomask takes it (instead of --config).")
    var file: String?

    @Flag(name: .shortAndLong, help: "Log every route change and more.")
    var verbose = false

    @Flag(name: .customLong("no-routes"), help: "Create the TUN device only; leave routes, rules and forwarding to you.")
    var noRoutes = false

    @Flag(name: .customLong("check"), help: "Only load and validate the configuration, then exit.")
    var check = false

    @Option(name: .customLong("nat64-state"), help: "Keep the NAT64 pool's reservations in this file across restarts (overrides nat64.state_file; protomask files have no key for it).")
    var nat64State: String?

    func validate() throws {
        if config != nil && file != nil { throw ValidationError("give the configuration file once: --config FILE or FILE") }
        if config == nil && file == nil { throw ValidationError("which configuration file? swiftnat run FILE (or --config FILE)") }
        if let nat64State, nat64State.isEmpty { throw ValidationError("--nat64-state needs a file path") }
    }

    /// Reads the file and applies the command line's overrides (also what a reload does).
    func load(_ config: String) throws(ConfigurationError) -> DaemonConfiguration {
        var cfg = try ConfigLoader.load(file: config)
        if noRoutes { cfg.routing.enabled = false }
        if let nat64State {
            guard case .pool(var p)? = cfg.nat64?.mode else {
                throw ConfigurationError(file: config, key: "nat64.mode", problem: "--nat64-state needs a NAT64 in pool mode")
            }
            p.stateFile = nat64State
            cfg.nat64?.mode = .pool(p)
        }
        return cfg
    }

    func run() throws {
        let logger = makeLogger(verbose: verbose)
        let config = config ?? file!
        let cfg: DaemonConfiguration
        do {
            cfg = try load(config)
        } catch {
            fail(error.description)
        }
        if check {
            print("\(config): configuration is valid")
            return
        }
        do {
            let command = self
            try Daemon.run(cfg, logger: logger, reloadLoader: { f throws(ConfigurationError) in try command.load(f) })
        } catch {
            fail(error.description)
        }
    }
}

struct Lab: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build client/nat/server network namespaces, run the daemon between them, show traffic crossing it, clean up.")

    @Option(help: "NAT behaviour preset: full-cone, restricted-cone, port-restricted-cone, symmetric.")
    var behavior = "port-restricted-cone"

    @Flag(help: "Leave the namespaces and the daemon running, and print how to enter them.")
    var keep = false

    @Flag(name: .shortAndLong, help: "Show every command the lab runs.")
    var verbose = false

    @Flag(help: "NAT64 instead of NAT44: an IPv6-only client reaches the IPv4 server through the NAT64 prefix 2001:db8:64::/96.")
    var nat64 = false

    @Option(name: .customLong("nat64-mode"), help: "With --nat64: pool (protomask's 1:1 pool) or siit (stateless, EAM).")
    var nat64Mode = "pool"

    @Flag(help: "NPTv6 too: the dual-stack client's IPv6 (2001:db8:1::/48) crosses NPTv6 to the server (2001:db8:100::2) as 2001:db8:2::/48, its IPv4 NAT44.")
    var nptv6 = false

    func run() throws {
        do {
            try LabRunner.run(behavior: behavior, keep: keep, verbose: verbose, binary: selfPath(), nat64: nat64 ? nat64Mode : nil, nptv6: nptv6)
        } catch {
            fail(error.description)
        }
    }
}

func selfPath() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}
