#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Runs NATMap's notify script (-e) with its six arguments; bounded in time, never blocks the mapping
/// for longer than `timeout`. A failure is reported and not retried until the mapping changes again.
public enum Notifier {
    /// nil on success, otherwise what went wrong.
    public static func run(script: String, arguments: [String], timeout: Duration = .seconds(30)) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: script)
        p.arguments = arguments
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { return "cannot run \(script): \(error.localizedDescription)" }
        let end = monotonicNow() + timeout
        while p.isRunning && monotonicNow() < end { usleep(20_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            return "\(script) did not finish within \(timeout.components.seconds) s and was killed"
        }
        p.waitUntilExit()
        guard p.terminationReason == .exit, p.terminationStatus == 0 else {
            return "\(script) \(p.terminationReason == .exit ? "exited with status \(p.terminationStatus)" : "was killed by signal \(p.terminationStatus)")"
        }
        return nil
    }
}
