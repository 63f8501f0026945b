import NATCore
import NATWire

/// An NPTv6 translator's two prefixes (RFC 6296 §3): addresses under `insidePrefix` leave with
/// `outsidePrefix` in their place, and the other way round. 1:1, no state.
///
/// Both prefixes have the same length, at most /64 (RFC 6296 §3.1 describes /48 and the general case;
/// the prefix and the adjustment word must fit the routing part of the address and its first IID word).
public struct NPTv6Configuration: Sendable, Hashable {
    /// The prefix the inside network numbers its hosts from (for example a ULA, RFC 4193).
    public var insidePrefix: IPv6Prefix
    /// The prefix the hosts appear under outside (the provider's prefix).
    public var outsidePrefix: IPv6Prefix

    public init(insidePrefix: IPv6Prefix, outsidePrefix: IPv6Prefix) {
        self.insidePrefix = insidePrefix
        self.outsidePrefix = outsidePrefix
    }

    /// The longest prefix accepted: the adjustment word must lie outside the prefix (RFC 6296 §3.4, §3.5).
    public static let maximumPrefixLength = 64

    /// Checks the rules of RFC 6296 §3: equal lengths, 1 to 64 bits, two different prefixes.
    public func validate() throws(ConfigurationError) {
        for (key, p) in [("inside_prefix", insidePrefix), ("outside_prefix", outsidePrefix)] {
            guard p.length >= 1, Int(p.length) <= Self.maximumPrefixLength else {
                throw ConfigurationError(key: key, problem: "is \(p); NPTv6 (RFC 6296 §3) takes prefixes of /1 to /64",
                                         hint: "use the /48 or /56 the provider delegates, or a /64")
            }
        }
        guard insidePrefix.length == outsidePrefix.length else {
            throw ConfigurationError(key: "outside_prefix",
                                     problem: "is \(outsidePrefix) but inside_prefix is \(insidePrefix); RFC 6296 §3.1 maps prefixes of equal length",
                                     hint: "give both prefixes the same length")
        }
        guard insidePrefix.address != outsidePrefix.address else {
            throw ConfigurationError(key: "outside_prefix", problem: "is the inside prefix \(insidePrefix); there is nothing to translate")
        }
    }
}
