import NAPT44
import NATCore
import NATRuntime
import Testing

@Suite("[nat44.helpers] (issue 15)")
struct HelperConfigTests {
    private let base = "[nat44]\npool = [\"198.51.100.1/32\"]\n"

    /// RFC 4787 REQ-10 / RFC 5382 REQ-6: the FTP helper is on (port 21) without the table.
    @Test func rfc5382_req6_ftpOnByDefault() throws {
        let c = try ConfigLoader.parse(base, file: "t.toml")
        #expect(c.nat44?.helpers.ftpPorts == [21])
    }

    @Test func portsLimitsAndOff() throws {
        let c = try ConfigLoader.parse(base + "[nat44.helpers]\nftp = [21, 2121]\nmax_expectations = 64\nmax_expectations_per_session = 2\nexpectation_timeout = 60\n", file: "t.toml")
        #expect(c.nat44?.helpers.ftpPorts == [21, 2121])
        #expect(c.nat44?.helpers.maxExpectations == 64 && c.nat44?.helpers.maxExpectationsPerSession == 2)
        #expect(c.nat44?.helpers.expectationTimeout == 60)
        let off = try ConfigLoader.parse(base + "[nat44.helpers]\nftp = []\n", file: "t.toml")
        #expect(off.nat44?.helpers.ftpPorts == [])
    }

    @Test func badValuesNameTheirKey() {
        for (text, key) in [("ftp = [0]", "nat44.helpers.ftp[0]"), ("ftp = [\"21\"]", "nat44.helpers.ftp[0]"),
                            ("max_expectations = 0", "helpers.max_expectations"), ("expectation_timeout = 0", "helpers.expectation_timeout"),
                            ("tftp = [69]", "nat44.helpers.tftp")] {
            do {
                _ = try ConfigLoader.parse(base + "[nat44.helpers]\n" + text + "\n", file: "t.toml")
                Issue.record("accepted \(text)")
            } catch {
                #expect("\(error)".contains(key), "\(text): \(error)")
            }
        }
    }
}
