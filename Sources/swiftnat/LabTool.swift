import ArgumentParser
import Foundation
import NATLab

/// `swiftnat lab-tool …`: the lab's own traffic, run by `swiftnat lab` inside its namespaces so that the lab
/// needs nothing but iproute2 and this binary. Hidden from the help; handy for debugging a kept lab
/// (`swiftnat lab --keep`). Every tool stops by itself (timeouts, a server's --duration).
struct LabTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab-tool",
        abstract: "The lab's test traffic: ping, a small HTTP server and client, a UDP echo server and client.",
        shouldDisplay: false,
        subcommands: [LabPingCommand.self, LabHTTPServeCommand.self, LabHTTPGetCommand.self,
                      LabUDPEchoCommand.self, LabUDPSendCommand.self]
    )
}

struct LabPingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: "ICMP/ICMPv6 echo over a raw socket (root), printed as ping does; exits 0 when a reply came.")

    @Argument(help: "IPv4 or IPv6 address.")
    var destination: String

    @Option(name: [.customShort("c"), .customLong("count")], help: "Echo requests to send (1-1000).")
    var count = 3

    @Option(name: [.customShort("i"), .customLong("interval")], help: "Seconds between requests.")
    var interval = 1.0

    @Option(name: [.customShort("W"), .customLong("wait")], help: "Seconds to wait for the last reply.")
    var wait = 2.0

    @Option(name: [.customShort("I"), .customLong("source")], help: "Source address.")
    var source: String?

    @Option(name: [.customShort("t"), .customLong("ttl")], help: "TTL (hop limit) of the requests.")
    var ttl: Int?

    @Option(name: [.customShort("s"), .customLong("size")], help: "Payload bytes.")
    var size = 56

    func run() throws {
        restoreDefaultStopSignals()
        var p = LabPing(destination: destination)
        (p.count, p.interval, p.wait, p.source, p.ttl, p.size) = (count, interval, wait, source, ttl, size)
        let ok: Bool
        do { ok = try p.run() } catch { fail(error.description) }
        if !ok { throw ExitCode(1) }
    }
}

struct LabHTTPServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http-serve",
        abstract: "Serve a directory's files over HTTP/1.0 and print each request with the peer address it came from.")

    @Option(help: "Address to listen on.")
    var address: String

    @Option(help: "TCP port.")
    var port: UInt16 = 8000

    @Option(help: "Directory whose files it serves (/ is index.html).")
    var directory = "."

    @Option(help: "Seconds until it stops by itself.")
    var duration = 300.0

    func run() throws {
        restoreDefaultStopSignals()
        do {
            try LabHTTPServer(address: address, port: port, directory: directory, duration: duration).run()
        } catch {
            fail(error.description)
        }
    }
}

struct LabHTTPGetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http-get",
        abstract: "GET an http:// URL (an address, no names) and print the body; exits 1 unless the status is 2xx.")

    @Argument(help: "http://ADDRESS[:PORT]/PATH, IPv6 addresses in brackets.")
    var url: String

    @Option(help: "Seconds for the whole exchange.")
    var timeout = 5.0

    func run() throws {
        restoreDefaultStopSignals()
        do {
            let (status, body) = try LabHTTPGet(url: url, timeout: timeout).run()
            FileHandle.standardOutput.write(Data(body))
            if !(200..<300).contains(status) { fail("\(url): HTTP status \(status)") }
        } catch {
            fail(error.description)
        }
    }
}

struct LabUDPEchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "udp-echo",
        abstract: "Send every UDP datagram back to its sender and print who sent what.")

    @Option(help: "Address to listen on.")
    var address: String

    @Option(help: "UDP port.")
    var port: UInt16 = 7777

    @Option(help: "Seconds until it stops by itself.")
    var duration = 300.0

    func run() throws {
        restoreDefaultStopSignals()
        do {
            try LabUDPEcho(address: address, port: port, duration: duration).run()
        } catch {
            fail(error.description)
        }
    }
}

struct LabUDPSendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "udp-send",
        abstract: "Send one UDP datagram and print the answer; exits 1 when none comes in time.")

    @Argument(help: "IPv4 or IPv6 address.")
    var address: String

    @Argument(help: "UDP port.")
    var port: UInt16

    @Argument(help: "The datagram's text.")
    var message: String

    @Option(name: .customLong("source-port"), help: "Source port.")
    var sourcePort: UInt16?

    @Option(help: "Source address.")
    var source: String?

    @Option(help: "Seconds to wait for the answer.")
    var timeout = 2.0

    func run() throws {
        restoreDefaultStopSignals()
        do {
            let answer = try LabUDPSend(address: address, port: port, message: message, sourcePort: sourcePort,
                                        source: source, timeout: timeout).run()
            FileHandle.standardOutput.write(Data(answer))
            if answer.last != 0x0A { print() }
        } catch {
            fail(error.description)
        }
    }
}

/// The lab tools stop on SIGTERM and SIGINT like any program: their default action, unblocked. The lab
/// (or a test thread) that starts them may have them blocked, and a child inherits that mask; a kept
/// lab's removal recipe (`kill` of what runs in the namespaces) then left the servers running.
func restoreDefaultStopSignals() {
    signal(SIGTERM, SIG_DFL)
    signal(SIGINT, SIG_DFL)
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGINT)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}
