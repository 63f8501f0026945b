import ArgumentParser
import Foundation
import NATTraversal
import STUN

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify the NAT in front of this host with a STUN server (RFC 5780: mapping, filtering, hairpinning, lifetime).",
        discussion: """
        The server must have two addresses (RFC 5780 OTHER-ADDRESS), e.g. coturn listening on two; a server \
        that has one still gives the mapped address. Exits 0 when the tests ran, 1 when the server did not answer.
        """)

    @Argument(help: "STUN server: ADDRESS[:PORT] or NAME[:PORT] (port 3478 by default).")
    var server: String

    @Option(name: [.customShort("L"), .customLong("local")], help: "Send from this ADDRESS[:PORT] (default: the address the route to the server uses).")
    var local: String?

    @Flag(name: .customShort("6"), help: "Use IPv6.")
    var ipv6 = false

    @Flag(help: "One JSON object on stdout instead of the text report.")
    var json = false

    @Flag(name: .customLong("no-hairpinning"), help: "Skip the hairpinning test (RFC 5780 §4.5).")
    var noHairpinning = false

    @Option(help: "Measure the UDP mapping lifetime (RFC 5780 §4.6) by binary search up to this many seconds idle.")
    var lifetime: Int?

    @Flag(help: "Also classify the TCP mapping (tests I-III over TCP from one port).")
    var tcp = false

    @Option(name: .customLong("rto"), help: "Initial retransmission timeout in milliseconds (RFC 8489 §6.2.1).")
    var rtoMilliseconds = 250

    @Option(name: .customLong("rc"), help: "Requests per test before giving up (RFC 8489 Rc).")
    var rc = 4

    @Flag(name: .shortAndLong, help: "Log every test.")
    var verbose = false

    func run() throws {
        var o = ProbeOptions(server: server)
        o.local = local
        o.ipv6 = ipv6
        o.hairpinning = !noHairpinning
        o.lifetimeMaximum = lifetime.map { .seconds($0) }
        o.tcp = tcp
        o.timing = STUNRetransmission(rto: .milliseconds(max(10, rtoMilliseconds)), rc: max(1, rc), rm: 4)
        StopFlag.installSignalHandlers()
        let verbose = verbose
        var prober = Prober(options: o) { line in if verbose { FileHandle.standardError.write(Data("probe: \(line)\n".utf8)) } }
        let report: ProbeReport
        do { report = try prober.run() } catch { fail(error.description) }
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys]
            e.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try e.encode(report), as: UTF8.self))
        } else {
            print(report.humanText)
        }
    }
}
