// NAT64: IPv6-only networks reaching IPv4 (RFC 7915 translation, RFC 6052 addresses, SIIT with EAM
// (RFC 7757), stateful NAPT64 (RFC 6146), and protomask's 1:1 address-pool mode).
// Layer 2: pure logic over packet bytes; imports NATWire and NATCore only.
//
// Files, one concern each:
//   NAT64Prefix             RFC 6052 address embedding/extraction, RFC 6890 special-purpose blocks
//   AddressMapping          the NAT64Mapping protocol (SIIT, pool mode and NAPT64 implement it)
//   SIITMapping             stateless addressing: EAM, then RFC 6052, RFC 6791 for ICMP error sources
//   ExplicitAddressMapping  RFC 7757 EAM rows and the longest-match table
//   Configuration           MTUs, error sources, traffic class, UDP zero checksum, rate limit
//   Translator              NAT64Translator<Mapping>: process / process(into:) / nextOutput, counters
//   Translate6to4           RFC 7915 §5.1, §5.1.1, §5.5 (and hairpin hand-off, RFC 7757 §4.3)
//   Translate4to6           RFC 7915 §4.1, §4.5
//   ICMPTables              RFC 7915 §4.2/§5.2 type, code and pointer tables; RFC 1191 plateaus
//   ICMPErrorTranslation    RFC 7915 §4.3/§5.3: errors and the packets inside them
//   GeneratedErrors         RFC 7915 §4.4/§5.4: the translator's own ICMP errors
//   Fragmentation           RFC 7915 §4.1 IPv6 fragments, RFC 791 §2.3 IPv4 fragments
//   HeaderParsing, Bytes    the extension-header walk, header writers, big-endian helpers

/// A translator that uses stateless SIIT addressing.
public typealias SIITTranslator = NAT64Translator<SIITMapping>
