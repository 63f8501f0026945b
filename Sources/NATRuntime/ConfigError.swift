/// A problem with the configuration file: which file, which key, what is wrong, and what to do.
public struct ConfigFileError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    /// The TOML key path, e.g. `nat44.timeouts.udp` or `nat44.forward[1].outside`.
    public var key: String
    public var problem: String
    public var hint: String?

    public init(file: String, key: String, problem: String, hint: String? = nil) {
        self.file = file
        self.key = key
        self.problem = problem
        self.hint = hint
    }

    public var description: String {
        var s = key.isEmpty ? "\(file): \(problem)" : "\(file): key '\(key)': \(problem)"
        if let hint { s += " (\(hint))" }
        return s
    }
}
