import Foundation
import NAPT44
import NATWire

extension DaemonConfiguration {
    /// Refuses NAT44 outside addresses that are this host's own (masquerade on the outside interface's
    /// address, issue 11): the kernel delivers packets to its own addresses locally (the `local` table is
    /// looked up before any rule swiftnat adds), so replies would never reach the TUN device and nothing
    /// would be translated, while the host's own sockets would compete for the same ports. The message
    /// says what to do instead. Nil when there is nothing to refuse.
    public func hostAddressConflict(hostAddresses: [(interface: String, address: IPv4Address)]) -> String? {
        guard let n44 = nat44 else { return nil }
        var outside: [(String, IPv4Address)] = []
        for (i, p) in n44.pool.enumerated() {
            for h in hostAddresses where p.contains(h.address) { outside.append(("nat44.pool[\(i)]", h.address)) }
        }
        for (i, s) in n44.staticNAT.enumerated() where hostAddresses.contains(where: { $0.address == s.outside }) {
            outside.append(("nat44.static_nat[\(i)].outside", s.outside))
        }
        guard let (key, a) = outside.first, let owner = hostAddresses.first(where: { $0.address == a }) else { return nil }
        let subnet = Self.example(near: a)
        return "\(file): key '\(key)': \(a) is an address of this host (\(owner.interface)); swiftnat cannot masquerade on the host's own address: the kernel delivers packets for it locally, so nothing would be translated and the host's own sockets would share its ports (give swiftnat an address of its own, e.g. pool = [\"\(subnet)/32\"] on \(owner.interface)'s subnet: proxy ARP answers for it; or route an address to this host)"
    }

    /// Another address of `a`'s /24, for the message.
    static func example(near a: IPv4Address) -> IPv4Address {
        let last = a.rawValue & 0xFF
        return IPv4Address(a.rawValue & ~0xFF | (last == 10 ? 11 : 10))
    }

    /// The host's IPv4 addresses, with their interfaces (`ip -4 -o addr show`).
    public static func hostIPv4Addresses() -> [(interface: String, address: IPv4Address)] {
        let o = Shell.run(["ip", "-4", "-o", "addr", "show"], timeout: 5)
        var out: [(String, IPv4Address)] = []
        for line in o.stdout.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count > 3, let i = f.firstIndex(of: "inet"), i + 1 < f.count,
                  let a = IPv4Address(f[i + 1].split(separator: "/")[0]) else { continue }
            out.append((String(f[1]), a))
        }
        return out
    }
}
