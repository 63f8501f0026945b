import Foundation
import NATLab
import NATRuntime
import Testing

/// Why the end-to-end tests cannot run here (nil when they can). They need root, /dev/net/tun and iproute2.
let labUnavailable: String? = LabNetwork.unavailableReason()
let canRunLab = labUnavailable == nil

/// The swiftnat binary built beside this test bundle (the test target depends on it).
let swiftnatBinary: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    // The runner may be the .xctest bundle's inner executable or a swiftpm-testing-helper.
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("swiftnat").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return root.appendingPathComponent(".build/debug/swiftnat").path
}()

/// Records an issue (a failure, not a skip) for each tool the test needs that is missing: on a machine
/// that can run namespaces, `.ci/run` installs them all.
func requireTools(_ tools: [String], sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    let missing = tools.filter { Shell.which($0) == nil }
    if !missing.isEmpty {
        Issue.record("missing tools \(missing.joined(separator: ", ")): apt-get install iputils-ping curl socat coturn python3 (see .ci/run)", sourceLocation: sourceLocation)
    }
    return missing.isEmpty
}

/// Builds the namespaces, starts the daemon with `behavior` (plus `extraTables` in its TOML), runs
/// `body`, and removes everything, whatever happens.
func withLab(_ tag: String, behavior: String = "port-restricted-cone", far: Bool = false, extraTables: String = "",
             tunKeys: String = "", _ body: (LabNetwork, Process) throws -> Void) throws {
    guard FileManager.default.isExecutableFile(atPath: swiftnatBinary) else {
        Issue.record("swiftnat binary not found at \(swiftnatBinary): run `swift build` first")
        return
    }
    let net = try LabNetwork(tag: tag, withFar: far)
    defer { net.destroy() }
    let daemon = try net.startDaemon(binary: swiftnatBinary, config: net.daemonConfig(behavior: behavior, extraTables: extraTables, tunKeys: tunKeys))
    do {
        try body(net, daemon)
    } catch {
        print("daemon log for \(tag):\n\(net.log("daemon.log"))")
        throw error
    }
    net.stop(daemon)
    let log = net.log("daemon.log")
    #expect(log.contains("stopped: routes and snat0 removed"), "daemon did not stop cleanly:\n\(log)")
}

/// A python3 script file in the lab directory.
func script(_ net: LabNetwork, _ name: String, _ text: String) throws -> String {
    let path = net.directory + "/" + name
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// The value of `key=<n>` in a daemon `stats` / `nat64 counters` log line, if there.
func statsCounter<S: StringProtocol>(_ line: S, _ key: String) -> Int? {
    line.split(separator: " ").first { $0.hasPrefix(key + "=") }.flatMap { Int($0.dropFirst(key.count + 1)) }
}
