// control-bench: what the control plane costs a packet thread. One PacketThread over the in-memory
// device holds N established NAT44 sessions; it then runs rounds of 32 established packets (a burst
// per step), with and without a control-plane command in every round, and times the packet thread's
// CPU (CLOCK_THREAD_CPUTIME_ID: time stolen by other processes is not counted):
//   - a metrics scrape's snapshot (counters only, what every 100 ms scrape asks),
//   - a snapshot with the outside-port walk (what a scrape asks at most every 10 s),
//   - a sessions listing (`swiftnat sessions`),
// and reports each command's cost and what a scrape every 100 ms costs a core. Mallocs per packet in
// rounds without commands are counted too (the command path may allocate; the packet path may not).
//
//   swift build -c release --package-path Benchmarks && taskset -c 1 Benchmarks/.build/release/control-bench
import CMallocCounter
import Foundation
import Logging
import NAPT44
import NATCore
import NATRuntime
import NATWire


func threadCPU() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func bench() throws {
    let sessions = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 100_000
    let inside = IPv4Address("100.64.0.0")!.rawValue
    let remote = IPv4Address("203.0.113.2")!
    var c = NAPT44Configuration(pool: [IPv4Prefix("198.51.100.0/28")!])
    c.insidePrefixes = [IPv4Prefix("100.64.0.0/10")!]
    c.maxSessions = sessions + sessions / 4
    c.hashSeed = 11
    let memory = MemoryPacketQueue()
    let commands = CommandQueue()
    let setup = PacketThreadSetup(queue: 0, configuration: c, nat64: nil, rings: nil, commands: commands, control: LoopControl(),
                                  logger: Logger(label: "bench"))
    var thread = try PacketThread(device: MemoryPacketDevice(queue: memory), setup: setup,
                                  now: Timestamp(nanoseconds: 1_000_000_000))
    var now = Timestamp(nanoseconds: 1_000_000_000)

    // N sessions: hosts 100.64.x.y, one UDP flow each.
    var flows: [[UInt8]] = []
    flows.reserveCapacity(sessions)
    for i in 0..<sessions {
        let a = IPv4Address(inside &+ UInt32(i / 16) &+ 1)
        flows.append(PacketBuilder.udp4(source: a, sourcePort: UInt16(10_000 + i % 16), destination: remote, destinationPort: 53,
                                        payload: Array(repeating: 0, count: 36)))
    }
    for chunk in stride(from: 0, to: sessions, by: 256) {
        memory.inject(Array(flows[chunk..<min(sessions, chunk + 256)]))
        thread.step(now: now)
        _ = memory.takeWritten()
    }
    let check = Reply<QueueSnapshot>()
    commands.send(.snapshot(SnapshotRequest(), check))
    thread.step(now: now)
    print("control-bench: \(check.wait()?.nat44Sessions ?? -1) NAT44 sessions on one packet thread (in-memory device)")

    /// Thread CPU ns for `rounds` rounds of 32 established packets, each round with `command()` sent first.
    func measure(rounds: Int, _ command: (() -> Void)?) -> (ns: Double, mallocs: UInt64) {
        var k = 0
        var total: UInt64 = 0
        var mallocs: UInt64 = 0
        for _ in 0..<rounds {
            var burst: [[UInt8]] = []
            for _ in 0..<32 {
                burst.append(flows[k])
                k = (k + 7919) % sessions
            }
            memory.inject(burst)
            command?()
            let m0 = mc_allocations()
            let t0 = threadCPU()
            thread.step(now: now)
            total += threadCPU() - t0
            mallocs += mc_allocations() - m0
            _ = memory.takeWritten()
        }
        return (Double(total) / Double(rounds), mallocs)
    }

    let rounds = 20_000
    var results: [(String, Double, UInt64)] = []
    for (name, request) in [("no command", nil), ("scrape snapshot", SnapshotRequest()),
                            ("scrape snapshot asking a census", SnapshotRequest(ports: true))] as [(String, SnapshotRequest?)] {
        let r = measure(rounds: rounds, request.map { req in { commands.send(.snapshot(req, Reply())); return } })
        results.append((name, r.ns, r.mallocs))
    }
    let listing = measure(rounds: 20) { commands.send(.snapshot(SnapshotRequest(sessions: true), Reply())) }
    results.append(("sessions listing (one slice per round)", listing.ns, listing.mallocs))

    let base = results[0].1
    print(String(repeating: "-", count: 100))
    print("round = one step: apply waiting commands, read and translate 32 established packets (memory device)")
    for (name, ns, m) in results {
        let extra = ns - base
        print(String(format: "%-32@ %10.0f ns/round   command cost %10.0f ns   mallocs/round %.2f", name as NSString, ns, max(0, extra),
                     Double(m) / Double(name.hasPrefix("sessions") ? 20 : rounds)))
    }
    let scrape = max(0, results[1].1 - base)
    print(String(format: "a scrape every 100 ms costs the packet thread %.1f µs per second = %.4f %% of a core", scrape * 10 / 1000, scrape * 10 / 1e9 * 100))
    // Timer rounds (every 100 ms) with and without a census slice: the census is the table walk behind
    // the by-protocol and per-address gauges, one slice per round.
    func timerRounds(census: Bool) -> (mean: Double, worst: Double, rounds: Int) {
        var worst: UInt64 = 0, total: UInt64 = 0, n = 0
        if census {
            commands.send(.snapshot(SnapshotRequest(ports: true), Reply()))
            thread.step(now: now)
        }
        for _ in 0..<(census ? 20 : 40) {
            now = Timestamp(nanoseconds: now.nanoseconds + 100_000_000)
            let t0 = threadCPU()
            thread.tick(now: now)
            let d = threadCPU() - t0
            total += d; worst = max(worst, d); n += 1
        }
        return (Double(total) / Double(n), Double(worst), n)
    }
    let plain = timerRounds(census: false)
    let counted = timerRounds(census: true)
    print(String(format: "timer round without a census: %.0f µs mean, %.0f µs worst", plain.mean / 1000, plain.worst / 1000))
    print(String(format: "timer round with a census slice: %.0f µs mean, %.0f µs worst (a pass = 20 rounds = 2 s; asked at most every 10 s: %.4f %% of a core)",
                 counted.mean / 1000, counted.worst / 1000, (counted.mean - plain.mean) * 20 / 10 / 1e9 * 100))
    print(String(format: "packet rounds without commands: %.2f mallocs per packet (memory device included)", Double(results[0].2) / Double(rounds * 32)))

}

try bench()
