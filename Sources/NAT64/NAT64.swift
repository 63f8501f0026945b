// NAT64: IPv6-only networks reaching IPv4 (RFC 7915 translation, RFC 6052 addresses, SIIT with EAM
// (RFC 7757), stateful NAPT64 (RFC 6146), and protomask's 1:1 address-pool mode).
// Layer 2: pure logic over packet bytes; imports NATWire and NATCore only.
import NATCore
import NATWire
