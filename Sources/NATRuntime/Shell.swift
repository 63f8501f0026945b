import Foundation

/// Runs helper programs (`ip`, `sysctl` …) with a time limit and collects their output.
public enum Shell {
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var timedOut: Bool
        public var ok: Bool { status == 0 && !timedOut }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var command: [String]
        public var output: Output
        public init(command: [String], output: Output) {
            self.command = command
            self.output = output
        }
        public var description: String {
            let what = output.timedOut ? "timed out" : "exited with status \(output.status)"
            let err = output.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            return "`\(command.joined(separator: " "))` \(what)\(err.isEmpty ? "" : ": \(err)")"
        }
    }

    /// Finds a program in PATH (and the usual sbin folders).
    public static func which(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for dir in path.split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Runs `args` (program first), waiting at most `timeout` seconds (then SIGKILL).
    @discardableResult
    public static func run(_ args: [String], timeout: Double = 10, input: String? = nil) -> Output {
        guard let exe = which(args[0]) else {
            return Output(status: 127, stdout: "", stderr: "\(args[0]): command not found", timedOut: false)
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = Array(args.dropFirst())
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let inPipe = Pipe()
        p.standardInput = input == nil ? FileHandle.nullDevice : inPipe
        do {
            try p.run()
        } catch {
            return Output(status: 127, stdout: "", stderr: "\(exe): \(error)", timedOut: false)
        }
        if let input {
            inPipe.fileHandleForWriting.write(input.data(using: .utf8)!)
            try? inPipe.fileHandleForWriting.close()
        }
        let box = OutputBox()
        let g = DispatchGroup()
        g.enter()
        DispatchQueue.global().async { box.setOut(out.fileHandleForReading.readDataToEndOfFile()); g.leave() }
        g.enter()
        DispatchQueue.global().async { box.setErr(err.fileHandleForReading.readDataToEndOfFile()); g.leave() }
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while p.isRunning {
            if Date() > deadline {
                timedOut = true
                kill(p.processIdentifier, SIGKILL)
                break
            }
            usleep(2000)
        }
        p.waitUntilExit()
        _ = g.wait(timeout: .now() + 2)
        let (o, e) = box.get()
        return Output(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                      stderr: String(decoding: e, as: UTF8.self), timedOut: timedOut)
    }

    /// Runs `args` and throws unless it succeeded.
    @discardableResult
    public static func check(_ args: [String], timeout: Double = 10) throws(Failure) -> String {
        let o = run(args, timeout: timeout)
        guard o.ok else { throw Failure(command: args, output: o) }
        return o.stdout
    }
}

private final class OutputBox: @unchecked Sendable {
    private let lock = NSLock()
    private var out = Data(), err = Data()
    func setOut(_ d: Data) { lock.lock(); out = d; lock.unlock() }
    func setErr(_ d: Data) { lock.lock(); err = d; lock.unlock() }
    func get() -> (Data, Data) { lock.lock(); defer { lock.unlock() }; return (out, err) }
}
