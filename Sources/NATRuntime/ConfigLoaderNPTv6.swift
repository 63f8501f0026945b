import NATCore
import NATWire
import NPTv6

/// `[nptv6]` (one translation) or `[[nptv6]]` (several): decoded into ``NPTv6Settings``; the rules are
/// ``NPTv6Settings/validate()``'s (and ``NPTv6Configuration/validate()``'s, RFC 6296 §3).
extension ConfigLoader {
    static func readNPTv6(_ r: TableReader) throws(ConfigurationError) -> NPTv6Settings? {
        guard let (tables, isArray) = try r.tableOrTables("nptv6") else { return nil }
        var out: [NPTv6Translation] = []
        for t in tables {
            guard let i = try t.string("inside_interface") else {
                throw t.error("inside_interface", "is missing", hint: "the interface the inside hosts are on, e.g. inside_interface = \"eth1\"")
            }
            guard let ip = try t.string("inside_prefix") else {
                throw t.error("inside_prefix", "is missing", hint: "the prefix the inside hosts are numbered from, e.g. \"fd01:203:405::/48\"")
            }
            guard let op = try t.string("outside_prefix") else {
                throw t.error("outside_prefix", "is missing", hint: "the prefix they appear under outside, of the same length, e.g. \"2001:db8:1::/48\"")
            }
            let c = NPTv6Configuration(insidePrefix: try t.ipv6Prefix(ip, key: "inside_prefix"),
                                       outsidePrefix: try t.ipv6Prefix(op, key: "outside_prefix"))
            out.append(NPTv6Translation(configuration: c, insideInterface: i, outsideInterface: try t.string("outside_interface")))
            try t.finish()
        }
        return NPTv6Settings(translations: out, isArray: isArray)
    }
}
