import NATCore
import NATRuntime
import Testing

/// Arbitrary text as a configuration file gives a ConfigurationError, never a crash (issue 12; the
/// inputs here are what Fuzz/fuzz-config found).
@Suite struct ConfigBadInputTests {
    func problem(_ text: String) -> ConfigurationError? {
        do {
            _ = try ConfigLoader.parse(text, file: "bad.toml")
            return nil
        } catch {
            return error
        }
    }

    /// TOML 1.0 allows no control character but tab and newline. A vertical tab in a table header made
    /// toml++ (inside TOMLKit) fail an assertion and abort the whole process; it is refused before the
    /// parser now, with where it is.
    @Test func toml1_0_controlCharactersAreRefusedNotAborted() {
        let e = problem("[\u{0B}\n;")
        #expect(e?.file == "bad.toml" && e?.key == "")
        #expect(e?.problem == "is not valid TOML: control character U+000B at line 1, column 2")
        #expect(problem("[nat44]\npool = [\"198.51.100.1/32\"]\n# a comment\u{00}\n")?.problem.contains("U+0000 at line 3, column 12") == true)
        #expect(problem("[nat44]\u{7F}\n")?.problem.contains("U+007F at line 1, column 8") == true)
        #expect(problem("[nat44]\npool = [\"198.51.100.1/32\"]\nx = \"\u{1B}\"\n")?.problem.contains("U+001B at line 3") == true)
    }

    /// Tabs, CRLF line ends and escaped control characters are TOML and still load.
    @Test func toml1_0_tabsAndCRLFStillLoad() throws {
        let c = try ConfigLoader.parse("[nat44]\r\n\tpool = [\"198.51.100.1/32\"]\t# pool\r\n[tun]\r\nname = \"nat\\u0041\"\r\n", file: "ok.toml")
        #expect(c.tun.name == "natA")
        #expect(c.nat44 != nil)
    }
}

extension ConfigBadInputTests {
    /// A table header with no key (`[` alone on its line, or followed by `=`, `#` …) made toml++ fail an
    /// assertion and abort; it is refused with the line now. Headers, arrays and strings that hold
    /// brackets still load.
    @Test func toml1_0_tableHeaderWithoutAKeyIsRefusedNotAborted() throws {
        #expect(problem("# comment\n[\nnat64]\n")?.problem == "is not valid TOML: a table header without a key at line 2")
        #expect(problem("[[ =x]]\n")?.problem.contains("without a key at line 1") == true)
        #expect(problem("[ # no key\n")?.problem.contains("without a key") == true)
        let ok = """
            [ nat44 ]
            pool = [
              "198.51.100.1/32",
            ]
            inside = [ "100.64.0.0/10" ]  # [not a header]
            [[nat44.forward]]
            protocol = "tcp"
            outside = "198.51.100.1:8080"
            inside = "100.64.0.10:80"
            [tun]
            name = "[x"
            """
        let c = try ConfigLoader.decode(ok, file: "ok.toml")  // decoded only: "[x" is no interface name
        #expect(c.nat44?.forwards.count == 1 && c.tun.name == "[x")
    }
}
