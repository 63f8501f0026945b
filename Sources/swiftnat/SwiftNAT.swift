import ArgumentParser
import Foundation
import Logging
import NATRuntime

@main
struct SwiftNAT: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftnat",
        abstract: "NAT44 and NAT64 in user space on a Linux TUN device.",
        subcommands: [Run.self, Lab.self, Probe.self, Map.self]
        // Later: sessions, stats, map, probe.
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

    @Option(name: .shortAndLong, help: "The TOML configuration file.")
    var config: String

    @Flag(name: .shortAndLong, help: "Log every route change and more.")
    var verbose = false

    @Flag(name: .customLong("no-routes"), help: "Create the TUN device only; leave routes, rules and forwarding to you.")
    var noRoutes = false

    @Flag(name: .customLong("check"), help: "Only load and validate the configuration, then exit.")
    var check = false

    @Option(name: .customLong("nat64-state"), help: "Keep the NAT64 pool's reservations in this file across restarts (overrides nat64.state_file; protomask files have no key for it).")
    var nat64State: String?

    func run() throws {
        let logger = makeLogger(verbose: verbose)
        var cfg: DaemonConfiguration
        do {
            cfg = try ConfigLoader.load(file: config)
        } catch {
            fail(error.description)
        }
        if noRoutes { cfg.routing.enabled = false }
        if let nat64State {
            guard cfg.nat64?.mode == .pool else { fail("--nat64-state needs a NAT64 in pool mode in \(config)") }
            guard !nat64State.isEmpty else { fail("--nat64-state needs a file path") }
            cfg.nat64?.stateFile = nat64State
        }
        if check {
            print("\(config): configuration is valid")
            return
        }
        do {
            try Daemon.run(cfg, logger: logger)
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

    func run() throws {
        do {
            try LabRunner.run(behavior: behavior, keep: keep, verbose: verbose, binary: selfPath(), nat64: nat64 ? nat64Mode : nil)
        } catch {
            fail(error.description)
        }
    }
}

func selfPath() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}
