/// A configuration problem, for every configuration of the package (NAPT44, NAT64 and its pool, the
/// daemon's file): which file (empty when the configuration was built in code), which key, what is wrong,
/// and what to do about it.
///
/// Engines' `validate()` name keys as in swiftnat's TOML tables (`timeouts.udp`, `pool[0]`, `static_bib[1].ipv4`);
/// the daemon's loader puts its table's path in front (``under(_:)``) and names the file (``in(file:)``).
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file the configuration came from; empty when it was built in code.
    public var file: String
    /// The key path, e.g. `nat44.timeouts.udp` or `nat44.forward[1].outside`; empty for the file as a whole.
    public var key: String
    /// What is wrong, e.g. `is 30 s; RFC 4787 REQ-5 needs at least 120 s`.
    public var problem: String
    /// What to do about it, when there is more to say than the problem says.
    public var hint: String?

    public init(file: String = "", key: String, problem: String, hint: String? = nil) {
        self.file = file
        self.key = key
        self.problem = problem
        self.hint = hint
    }

    /// `FILE: key 'KEY': PROBLEM (HINT)`, leaving out what is not known.
    public var description: String {
        var s = key.isEmpty ? problem : "key '\(key)': \(problem)"
        if !file.isEmpty { s = "\(file): \(s)" }
        if let hint { s += " (\(hint))" }
        return s
    }

    /// The same problem with `prefix` in front of its key: `pool[0]` under `nat44` is `nat44.pool[0]`.
    public func under(_ prefix: String) -> ConfigurationError {
        guard !prefix.isEmpty else { return self }
        var e = self
        e.key = key.isEmpty ? prefix : key.hasPrefix("[") ? prefix + key : "\(prefix).\(key)"
        return e
    }

    /// The same problem, found in `file`.
    public func `in`(file: String) -> ConfigurationError {
        var e = self
        e.file = file
        return e
    }

    /// `is V; it must be between LO and HI` for `key`, or nil when `value` is in `range`.
    public static func outside<T: BinaryInteger>(_ range: ClosedRange<T>, key: String, value: T, hint: String? = nil) -> ConfigurationError? {
        range.contains(value) ? nil
            : ConfigurationError(key: key, problem: "is \(value); it must be between \(range.lowerBound) and \(range.upperBound)", hint: hint)
    }
}
