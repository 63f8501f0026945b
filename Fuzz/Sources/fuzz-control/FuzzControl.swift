import Foundation
import FuzzSupport
import Logging
import NAPT44
import NATCore
import NATRuntime

// The control socket's request handling: DaemonController.handle(line:) over an arbitrary line, with a
// NAT44 configuration and no packet threads (so no command waits, and forwards.add stops before it
// writes a state file); reload gets a loader that refuses. The answer is always one JSON object with
// "ok" (and "error" when false). The request's address and port fields also go through PortForward's
// parser, as forwards.add and forwards.remove do.

let configuration: DaemonConfiguration = {
    let text = """
        [tun]
        name = "fuzz0"
        [nat44]
        inside = ["100.64.0.0/10"]
        pool = ["198.51.100.0/28"]
        [[nat44.forward]]
        protocol = "tcp"
        outside = "198.51.100.1:8080"
        inside = "100.64.0.10:80"
        [nat44.ports]
        ranges = ["1024-65535"]
        """
    do { return try ConfigLoader.parse(text, file: "fuzz.toml") } catch { fatalError("fuzz configuration refused: \(error)") }
}()

let controller = DaemonController(
    configuration: configuration, commands: [], tunName: "fuzz0",
    logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }),
    loader: { file throws(ConfigurationError) in throw ConfigurationError(file: file, key: "", problem: "no reload while fuzzing") })

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let line = String(decoding: input(data, size), as: UTF8.self)
    let answer = controller.handle(line: line)
    check(!answer.contains("\n"), "answer spans lines: \(answer)")
    let object = try? JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any]
    guard let object, let ok = object["ok"] as? Bool else {
        check(false, "answer is not a JSON object with ok: \(answer)")
        return 0
    }
    if !ok { check((object["error"] as? String).map { !$0.isEmpty } ?? false, "a refusal without an error: \(answer)") }
    if let r = try? JSONDecoder().decode(ControlRequest.self, from: Data(line.utf8)) {
        _ = try? PortForward(protocol: r.protocol ?? "tcp", outside: r.outside ?? "", inside: r.inside ?? "")
    }
    return 0
}
