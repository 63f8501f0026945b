import NAPT44
import NAT64
import NATCore
import NATRuntime
import NATWire
import Testing

private let minimal = """
[nat44]
pool = ["198.51.100.1/32"]

"""

private func parseError(_ text: String) -> ConfigurationError? {
    do {
        _ = try ConfigLoader.parse(text, file: "tables.toml")
        return nil
    } catch {
        return error
    }
}

private let pool64 = """
[nat64]
mode = "pool"
prefix = "2001:db8:64::/96"
pool = ["192.0.2.0/28"]

"""

private let stateful64 = """
[nat64]
mode = "stateful"
prefix = "2001:db8:64::/96"
pool = ["198.51.100.64/30"]

"""

private let siit64 = """
[nat64]
mode = "siit"
prefix = "2001:db8:64::/96"
eam = [{ v4 = "198.51.100.8/29", v6 = "2001:db8:1::8/125" }]

"""

/// `[control]`, `[metrics]`, `[logging]`: every key read, good and bad values.
@Suite struct ConfigTablesTests {
    @Test func defaultsWithoutTheTables() throws {
        let c = try ConfigLoader.parse(minimal, file: "t.toml")
        #expect(c.control == ControlSettings())
        #expect(c.control.enabled && c.control.socket == "/run/swiftnat/control.sock" && c.control.stateFile == "/var/lib/swiftnat/forwards.json")
        #expect(c.metrics.listen == nil)
        #expect(c.logging == LoggingSettings())
        #expect(!c.logging.mappings && !c.logging.destinations && c.logging.ratePerSecond == 100)
    }

    @Test func controlTable() throws {
        let c = try ConfigLoader.parse("[control]\nenabled = false\nsocket = \"/run/nat/ctl.sock\"\nstate_file = \"/var/lib/nat/f.json\"\n" + minimal, file: "t.toml")
        #expect(!c.control.enabled && c.control.socket == "/run/nat/ctl.sock" && c.control.stateFile == "/var/lib/nat/f.json")
        let none = try ConfigLoader.parse("[control]\nstate_file = \"\"\n" + minimal, file: "t.toml")
        #expect(none.control.stateFile == nil, "an empty state_file keeps no state")
        #expect(parseError("[control]\nenabled = \"yes\"\n" + minimal)?.key == "control.enabled")
        #expect(parseError("[control]\nsocket = \"control.sock\"\n" + minimal)?.key == "control.socket")
        #expect(parseError("[control]\nsocket = \"/run/swiftnat/\"\n" + minimal)?.key == "control.socket")
        let long = "/" + String(repeating: "s", count: 107)
        let e = parseError("[control]\nsocket = \"\(long)\"\n" + minimal)
        #expect(e?.key == "control.socket" && e?.problem.contains("107") == true)
        #expect(parseError("[control]\nsocket = 1\n" + minimal)?.key == "control.socket")
        #expect(parseError("[control]\nstate_file = \"forwards.json\"\n" + minimal)?.key == "control.state_file")
        #expect(parseError("[control]\nstate_file = false\n" + minimal)?.key == "control.state_file")
        #expect(parseError("[control]\nsockett = \"/run/x.sock\"\n" + minimal)?.key == "control.sockett")
    }

    @Test(arguments: ["127.0.0.1:9100", "0.0.0.0:80", "[::]:8080", "[2001:db8::1]:65535"])
    func metricsListenGood(listen: String) throws {
        let c = try ConfigLoader.parse("[metrics]\nlisten = \"\(listen)\"\n" + minimal, file: "t.toml")
        #expect(c.metrics.listen == listen)
    }

    @Test(arguments: ["localhost:9100", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "::1:80", "[::1]", "[::zz]:80", "[127.0.0.1]:80", ":9100", ""])
    func metricsListenBad(listen: String) {
        let e = parseError("[metrics]\nlisten = \"\(listen)\"\n" + minimal)
        #expect(e?.key == "metrics.listen")
        #expect(e?.hint?.contains("[::]:9100") == true)
        #expect(e?.description.hasPrefix("tables.toml: key 'metrics.listen': ") == true)
    }

    @Test func metricsTableErrors() {
        #expect(parseError("[metrics]\nlisten = 9100\n" + minimal)?.key == "metrics.listen")
        #expect(parseError("[metrics]\nport = 9100\n" + minimal)?.key == "metrics.port")
    }

    @Test func loggingTable() throws {
        let c = try ConfigLoader.parse("[logging]\nmappings = true\ndestinations = true\nrate_per_second = 100000\n" + minimal, file: "t.toml")
        #expect(c.logging.mappings && c.logging.destinations && c.logging.ratePerSecond == 100_000)
        #expect(try ConfigLoader.parse("[logging]\nrate_per_second = 1\n" + minimal, file: "t.toml").logging.ratePerSecond == 1)
        #expect(parseError("[logging]\nrate_per_second = 0\n" + minimal)?.key == "logging.rate_per_second")
        #expect(parseError("[logging]\nrate_per_second = 100001\n" + minimal)?.problem.contains("between 1 and 100000") == true)
        #expect(parseError("[logging]\nrate_per_second = 1.5\n" + minimal)?.key == "logging.rate_per_second")
        #expect(parseError("[logging]\nmappings = 1\n" + minimal)?.key == "logging.mappings")
        #expect(parseError("[logging]\ndestinations = \"no\"\n" + minimal)?.key == "logging.destinations")
        #expect(parseError("[logging]\nlevel = \"debug\"\n" + minimal)?.key == "logging.level")
    }

    @Test func protomaskFileTakesTheNewTablesAndPrometheusIsMetricsListen() throws {
        let c = try ConfigLoader.parse(protomaskREADME + "\n[control]\nenabled = false\n[logging]\nmappings = true\n", file: "p.toml")
        #expect(c.metrics.listen == "[::]:8080" && !c.control.enabled && c.logging.mappings)
        let m = try ConfigLoader.parse("[metrics]\nlisten = \"127.0.0.1:9100\"\n[Pool]\nPrefixes = [\"192.0.2.0/24\"]\n", file: "p.toml")
        #expect(m.metrics.listen == "127.0.0.1:9100" && m.nat64?.fromProtomask == true)
        let both = try ConfigLoader.parse(protomaskREADME + "\n[metrics]\nlisten = \"127.0.0.1:9100\"\n", file: "p.toml")
        #expect(both.metrics.listen == "127.0.0.1:9100", "a [metrics] table wins over Prometheus")
        #expect(parseError(protomaskREADME.replacingOccurrences(of: "[::]:8080", with: "[::]") + "\n[metrics]\nlisten = \"127.0.0.1:9100\"\n")?.key == "Prometheus",
                "Prometheus is checked all the same")
        #expect(parseError("Prometheus = \"[::]:0\"\n[Pool]\nPrefixes = [\"192.0.2.0/24\"]\n")?.key == "Prometheus")
        #expect(parseError("Prometheus = 8080\n[Pool]\nPrefixes = [\"192.0.2.0/24\"]\n")?.key == "Prometheus")
    }

    // MARK: tun.queues with NAT64 (the bug: one NAT64 table per queue)

    @Test(arguments: ["", "[nat44]\npool = [\"203.0.113.1/32\"]\n"])
    func nat64PoolOrStatefulRefusesSeveralQueues(nat44: String) {
        for nat64 in [pool64, stateful64] {
            let e = parseError("[tun]\nqueues = 2\n" + nat44 + nat64)
            #expect(e?.key == "tun.queues", "\(nat64)")
            #expect(e?.problem.contains("one packet thread") == true)
            #expect(e?.hint?.contains("queues = 1") == true)
        }
        let p = parseError(protomaskREADME + "\n[tun]\nqueues = 4\n" + nat44)
        #expect(p?.key == "tun.queues")
    }

    @Test func siitTakesSeveralQueues() throws {
        let c = try ConfigLoader.parse("[tun]\nqueues = 2\n" + siit64, file: "t.toml")
        #expect(c.tun.queues == 2)
        let both = try ConfigLoader.parse("[tun]\nqueues = 2\n[nat44]\npool = [\"203.0.113.0/24\"]\n" + siit64, file: "t.toml")
        #expect(both.tun.queues == 2)
        #expect(try ConfigLoader.parse("[tun]\nqueues = 1\n" + pool64, file: "t.toml").tun.queues == 1)
    }

    @Test func nat44QueuesNeedPortsForEveryQueue() {
        let e = parseError("[tun]\nqueues = 2\n" + minimal + "[nat44.ports]\nranges = [\"5000\"]\n")
        #expect(e?.key == "tun.queues" && e?.problem.contains("nat44.ports") == true)
    }

    // MARK: The rules are the types' own: a configuration built in code gets them without a file

    @Test func daemonConfigurationBuiltInCodeIsValidated() throws {
        var c = DaemonConfiguration(file: "", nat64: NAT64Settings(mode: .pool(NAT64PoolSettings(pool: AddressPoolConfiguration(prefixes: [IPv4Prefix("192.0.2.0/28")!]))),
                                                                     prefix: IPv6Prefix("2001:db8:64::/96")!))
        try c.validate()
        c.tun.queues = 2
        do {
            try c.validate()
        } catch {
            #expect(error.key == "tun.queues" && error.file.isEmpty)
            #expect(error.description.hasPrefix("key 'tun.queues': is 2; "))
        }
        c.tun.queues = 1
        c.metrics.listen = "localhost:80"
        do {
            try c.validate()
            Issue.record("metrics.listen accepted")
        } catch {
            #expect(error.key == "metrics.listen")
        }
        #expect(throws: ConfigurationError.self) { try DaemonConfiguration(file: "x.toml").validate() }
    }

    @Test func siitChecksAreTheSettingsOwn() {
        func problem(_ s: SIITSettings, prefix: String = "2001:db8:64::/96", checkNonGlobal: Bool = true) -> ConfigurationError? {
            var n = NAT64Settings(mode: .siit(s), prefix: IPv6Prefix(prefix)!)
            n.checkNonGlobal = checkNonGlobal
            do { try n.validate(); return nil } catch { return error }
        }
        let eam = EAMSetting(ipv4: IPv4Prefix("198.51.100.8/29")!, ipv6: IPv6Prefix("2001:db8:1::8/125")!)
        #expect(problem(SIITSettings(eam: [eam])) == nil)
        #expect(problem(SIITSettings())?.key == "eam")
        #expect(problem(SIITSettings(eam: [EAMSetting(ipv4: IPv4Prefix("198.51.100.8/29")!, ipv6: IPv6Prefix("2001:db8:1::/120")!)]))?.key == "eam[0].v6")
        #expect(problem(SIITSettings(eam: [eam], translatable: [IPv4Prefix("198.51.100.0/24")!]))?.key == "eam")
        #expect(problem(SIITSettings(eam: [EAMSetting(ipv4: IPv4Prefix("198.51.100.8/32")!, ipv6: IPv6Prefix("2001:db8:64::1/128")!)]))?.key == "eam[0].v6")
        #expect(problem(SIITSettings(translatable: [IPv4Prefix("198.51.100.0/24")!]), prefix: "64:ff9b::/96")?.key == "translatable[0]")
        #expect(problem(SIITSettings(translatable: [IPv4Prefix("198.51.100.0/24")!]), prefix: "64:ff9b::/96", checkNonGlobal: false) == nil)
        var r = SIITSettings(eam: [eam])
        r.rfc6791Pool = [IPv4Prefix("198.51.100.12/30")!]
        #expect(problem(r)?.key == "rfc6791_pool[0]")
        #expect(problem(SIITSettings(eam: [eam]), prefix: "2001:db8:64::/80")?.key == "prefix")
        // The translator's own rule (SIITConfiguration.validate) is run too: RFC 6791 prefixes of at most a /16.
        var big = SIITSettings(eam: [eam])
        big.rfc6791Pool = [IPv4Prefix("10.0.0.0/15")!]
        #expect(problem(big)?.key == "rfc6791_pool[0]")
    }

    @Test func poolModeRFC6791PoolHoldsAtMost65536Addresses() {
        var p = NAT64PoolSettings(pool: AddressPoolConfiguration(prefixes: [IPv4Prefix("192.0.2.0/24")!]))
        p.rfc6791Pool = [IPv4Prefix("10.0.0.0/16")!, IPv4Prefix("10.1.0.0/32")!]
        do {
            try NAT64Settings(mode: .pool(p)).validate()
            Issue.record("accepted")
        } catch {
            #expect(error.key == "rfc6791_pool[1]")
        }
    }

    @Test func protomaskSettingsNameProtomaskKeys() {
        var n = NAT64Settings(mode: .pool(NAT64PoolSettings(pool: AddressPoolConfiguration(prefixes: [IPv4Prefix("192.0.2.0/24")!], maxIdleSeconds: 0))))
        n.fromProtomask = true
        #expect((try? n.validate()) == nil)
        do { try n.validate() } catch { #expect(error.key == "Pool.MaxIdleDuration") }
        n.fromProtomask = false
        do { try n.validate() } catch { #expect(error.key == "max_idle") }
    }
}

@Suite struct ConfigurationErrorTests {
    @Test func descriptionSaysFileKeyProblemAndHint() {
        let e = ConfigurationError(key: "timeouts.udp", problem: "is 30 s; RFC 4787 REQ-5 needs at least 120 s", hint: "use 120 or more")
        #expect(e.description == "key 'timeouts.udp': is 30 s; RFC 4787 REQ-5 needs at least 120 s (use 120 or more)")
        #expect(e.under("nat44").in(file: "a.toml").description == "a.toml: key 'nat44.timeouts.udp': is 30 s; RFC 4787 REQ-5 needs at least 120 s (use 120 or more)")
        #expect(ConfigurationError(file: "a.toml", key: "", problem: "no such file").description == "a.toml: no such file")
        #expect(ConfigurationError(key: "", problem: "x").under("nat64").key == "nat64")
        #expect(ConfigurationError.outside(1...64, key: "queues", value: 65)?.problem == "is 65; it must be between 1 and 64")
        #expect(ConfigurationError.outside(1...64, key: "queues", value: 64) == nil)
    }
}
