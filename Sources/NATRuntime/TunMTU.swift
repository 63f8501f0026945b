import Foundation
import Logging

extension DaemonConfiguration {
    /// The TUN device's MTU: the outside interface's when ``TunSettings/sizeMTUFromOutsideInterface``
    /// holds and `nat44.outside_interface` is set and readable (within `[tun] mtu`'s bounds), else
    /// ``TunSettings/mtu``.
    func resolvedTunMTU(logger: Logger) -> Int {
        guard tun.sizeMTUFromOutsideInterface, let out = outsideInterface else { return tun.mtu }
        let file = "/sys/class/net/\(out)/mtu"
        guard let text = try? String(contentsOfFile: file, encoding: .utf8),
              let m = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), (576...65535).contains(m) else {
            logger.warning("cannot read the MTU of \(out) (\(file)); the TUN device gets \(tun.mtu) (set [tun] mtu to choose)")
            return tun.mtu
        }
        if m != tun.mtu { logger.info("TUN MTU \(m), from \(out) (set [tun] mtu to choose another)") }
        return m
    }
}
