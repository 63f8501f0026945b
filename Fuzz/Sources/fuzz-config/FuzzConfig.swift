import FuzzSupport
import NATCore
import NATRuntime

// ConfigLoader.parse over arbitrary text (the bytes as UTF-8, invalid sequences repaired): a TOML file of
// swiftnat's or protomask's shape, or anything else. It either gives a configuration that validates
// again, or a ConfigurationError that names the file and says what is wrong; nothing traps.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: input(data, size), as: UTF8.self)
    do {
        let c = try ConfigLoader.parse(text, file: "fuzz.toml")
        do {
            try c.validate()
        } catch {
            check(false, "parse() accepted a configuration that validate() refuses: \(error)")
        }
    } catch {
        check(error.file == "fuzz.toml", "error names file '\(error.file)'")
        check(!error.problem.isEmpty && !error.description.isEmpty, "error without a problem: \(error)")
    }
    return 0
}
