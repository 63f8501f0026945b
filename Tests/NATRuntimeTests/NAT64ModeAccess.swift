import NAT64
import NATRuntime

/// The mode's payload, for expectations (the daemon itself switches over ``NAT64Mode``).
extension NAT64Settings {
    var poolMode: NAT64PoolSettings? { if case .pool(let p) = mode { p } else { nil } }
    var siitMode: SIITSettings? { if case .siit(let s) = mode { s } else { nil } }
    var statefulMode: NAPT64Configuration? { if case .stateful(let c) = mode { c } else { nil } }
}
