import NATCore
import NATWire
import NPTv6

/// One NPTv6 translation of `[nptv6]` (or one entry of `[[nptv6]]`): the translator's two prefixes
/// (``NPTv6Configuration``, whose `validate()` holds RFC 6296 §3's rules) and the two interfaces the
/// routes need.
public struct NPTv6Translation: Sendable, Equatable {
    public var configuration: NPTv6Configuration
    /// Where the inside hosts are: traffic from the inside prefix arriving here is steered into the TUN device.
    public var insideInterface: String
    /// Where the outside prefix is routed to this host (the upstream router's route, or DHCPv6-PD):
    /// packets arriving here for the inside prefix are refused (`block_outside_to_inside`).
    public var outsideInterface: String?

    public init(configuration: NPTv6Configuration, insideInterface: String, outsideInterface: String? = nil) {
        self.configuration = configuration
        self.insideInterface = insideInterface
        self.outsideInterface = outsideInterface
    }

    public var insidePrefix: IPv6Prefix { configuration.insidePrefix }
    public var outsidePrefix: IPv6Prefix { configuration.outsidePrefix }

    /// Checks every value; keys as in `[nptv6]`.
    public func validate() throws(ConfigurationError) {
        for (key, name) in [("inside_interface", insideInterface), ("outside_interface", outsideInterface ?? "x")]
        where name.isEmpty || name.utf8.count > 15 || name.contains("/") || name.contains(" ") {
            throw ConfigurationError(key: key, problem: "'\(name)' is not a valid interface name", hint: "1 to 15 characters, no '/' or spaces")
        }
        try configuration.validate()
        let i = insidePrefix, o = outsidePrefix
        if i.overlaps(o) {
            throw ConfigurationError(key: "outside_prefix", problem: "\(o) overlaps inside_prefix \(i)",
                                     hint: "NPTv6 maps between two separate prefixes (RFC 6296 §3.1)")
        }
    }
}

extension IPv6Prefix {
    /// Whether one prefix holds the other's network address (two prefixes either nest or do not meet).
    func overlaps(_ other: IPv6Prefix) -> Bool { contains(other.address) || other.contains(address) }
}

/// `[nptv6]`: one or more stateless prefix translations (RFC 6296).
public struct NPTv6Settings: Sendable, Equatable {
    public var translations: [NPTv6Translation]
    /// Whether the file had `[[nptv6]]` (key paths `nptv6[i].…`) rather than one `[nptv6]` table.
    public var isArray: Bool

    public init(translations: [NPTv6Translation], isArray: Bool = false) {
        self.translations = translations
        self.isArray = isArray
    }

    func keyPath(_ i: Int) -> String { isArray ? "nptv6[\(i)]" : "nptv6" }

    /// Each translation's own rules, then the translations against each other: no prefix of one may
    /// overlap a prefix of another (a packet must belong to one translation).
    public func validate() throws(ConfigurationError) {
        guard !translations.isEmpty else {
            throw ConfigurationError(key: "nptv6", problem: "has no translation",
                                     hint: "give inside_interface, inside_prefix and outside_prefix (Examples/nptv6.toml)")
        }
        for (i, t) in translations.enumerated() {
            do { try t.validate() } catch { throw error.under(keyPath(i)) }
        }
        for (i, a) in translations.enumerated() {
            for (j, b) in translations.enumerated() where j < i {
                for (ka, pa) in [("inside_prefix", a.insidePrefix), ("outside_prefix", a.outsidePrefix)] {
                    for pb in [b.insidePrefix, b.outsidePrefix] where pa.overlaps(pb) {
                        throw ConfigurationError(key: "\(keyPath(i)).\(ka)", problem: "\(pa) overlaps \(pb) of \(keyPath(j))",
                                                 hint: "every translation needs prefixes of its own")
                    }
                }
            }
        }
    }

    /// Every prefix with the key that names it, for the checks against the other tables.
    var prefixesWithKeys: [(String, IPv6Prefix)] {
        translations.enumerated().flatMap { (i, t) in
            [("\(keyPath(i)).inside_prefix", t.insidePrefix), ("\(keyPath(i)).outside_prefix", t.outsidePrefix)]
        }
    }

    public var insideInterfaces: [String] {
        var seen: [String] = []
        for t in translations where !seen.contains(t.insideInterface) { seen.append(t.insideInterface) }
        return seen
    }

    public var summary: String {
        "nptv6=" + translations.map { "\($0.insidePrefix)<->\($0.outsidePrefix)" }.joined(separator: ",")
    }
}
