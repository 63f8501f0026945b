// NAT64: IPv6-only networks reaching IPv4 (RFC 7915 translation, RFC 6052 addresses, SIIT with EAM
// (RFC 7757), stateful NAPT64 (RFC 6146), and protomask's 1:1 address-pool mode).
// Layer 2: pure logic over packet bytes; imports NATWire and NATCore only.
//
// Files: NAT64Prefix (RFC 6052), AddressMapping (the NAT64Mapping protocol), SIITMapping and
// ExplicitAddressMapping (RFC 7757), Configuration, Translator (entry points), Translate6to4 and
// Translate4to6 (RFC 7915 §5 and §4), ICMPTables (RFC 7915 §4.2/§5.2), ICMPErrorTranslation (§4.3/§5.3),
// GeneratedErrors (§4.4/§5.4), Fragmentation (§4.1/§5.1.1).

/// A translator that uses stateless SIIT addressing.
public typealias SIITTranslator = NAT64Translator<SIITMapping>
