// swift-tools-version: 6.2
import PackageDescription

let package = Package(
    name: "swiftnat",
    products: [
        .library(name: "NATWire", targets: ["NATWire"]),
        .library(name: "NATCore", targets: ["NATCore"]),
        .library(name: "NAPT44", targets: ["NAPT44"]),
        .library(name: "NAT64", targets: ["NAT64"]),
        .library(name: "NPTv6", targets: ["NPTv6"]),
        .library(name: "NATRuntime", targets: ["NATRuntime"]),
        .library(name: "STUN", targets: ["STUN"]),
        .library(name: "PortControl", targets: ["PortControl"]),
        .executable(name: "swiftnat", targets: ["swiftnat"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        // The control socket and the metrics endpoint (NIOHTTP1); Prometheus' text format.
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        // UPnP IGD: the SOAP requests are parsed with a library, never by string search.
        .package(url: "https://github.com/drmohundro/SWXMLHash", from: "8.1.0"),
    ],
    targets: [
        // Layer 0: views over packet bytes, checksums, addresses, builders.
        .target(name: "NATWire"),
        // Layer 1: tuples, verdicts, tables, port allocation, timers, limits.
        .target(name: "NATCore", dependencies: ["NATWire", "CNATIntrinsics"]),
        // Layer 1 support: CPU hints (prefetch) that Swift cannot spell, and the huge-page table allocator.
        .target(name: "CNATIntrinsics"),
        // Layer 2: the NAPT44 engine (bytes + now in, bytes + verdict out).
        .target(name: "NAPT44", dependencies: ["NATWire", "NATCore"]),
        // Layer 2: NAT64 (RFC 7915 translation, RFC 6052 addresses, SIIT/EAM, stateful NAPT64, address pools).
        .target(name: "NAT64", dependencies: ["NATWire", "NATCore"]),
        // Layer 2: NPTv6 (RFC 6296): stateless, checksum-neutral IPv6 prefix translation.
        .target(name: "NPTv6", dependencies: ["NATWire", "NATCore"]),
        // Layer 2: STUN messages (RFC 8489, RFC 5780, RFC 3489 attributes), retransmission, IP4P, NAT behaviour.
        .target(name: "STUN", dependencies: ["NATWire"]),
        // Layer 2: port control (NAT-PMP, PCP, UPnP IGD actions, the policy): pure message logic.
        .target(name: "PortControl", dependencies: ["NATWire", "NATCore"]),
        // Layer 3: ioctl/ifreq for TUN devices.
        .target(name: "CTun"),
        // Layer 3: TUN I/O, packet threads, clock, configuration, routes, lifecycle.
        .target(name: "NATRuntime", dependencies: [
            "NATWire", "NATCore", "NAPT44", "NAT64", "NPTv6", "CTun", "PortControl",
            .product(name: "SWXMLHash", package: "SWXMLHash"),
            .product(name: "TOMLKit", package: "TOMLKit"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // Layer 3: the lab (namespaces, the daemon run as a process, the lab tools' sockets). It uses
        // NATRuntime's Shell only, to run `ip`; not a library product.
        .target(name: "NATLab", dependencies: ["NATRuntime", "NATWire", "NAPT44"]),
        // Layer 3: NAT traversal over real sockets: STUN client, RFC 5780 probe, NATMap-style port mapping.
        .target(name: "NATTraversal", dependencies: ["STUN", "NATWire"]),
        // Layer 4: the binary.
        .executableTarget(name: "swiftnat", dependencies: [
            "NATCore", "NATRuntime", "NATLab", "NAPT44", "NATTraversal",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "NATWireTests", dependencies: ["NATWire"]),
        .testTarget(name: "NATCoreTests", dependencies: ["NATCore"]),
        .testTarget(name: "NAPT44Tests", dependencies: ["NAPT44", "NATCore", "NATWire"]),
        .testTarget(name: "NAT64Tests", dependencies: ["NAT64", "NATCore", "NATWire"]),
        .testTarget(name: "NPTv6Tests", dependencies: ["NPTv6", "NATCore", "NATWire"]),
        .testTarget(name: "STUNTests", dependencies: ["STUN", "NATWire"]),
        .testTarget(name: "NATTraversalTests", dependencies: ["NATTraversal", "STUN", "NATWire"]),
        .testTarget(name: "PortControlTests", dependencies: ["PortControl", "NATWire"]),
        .testTarget(name: "NATRuntimeTests", dependencies: ["NATRuntime", "NAPT44", "NAT64", "NPTv6", "NATCore", "NATWire", "PortControl"]),
        // Real namespaces, the real daemon, real clients: needs root and /dev/net/tun (skipped otherwise).
        .testTarget(name: "EndToEndTests", dependencies: ["NATLab", "NATRuntime", "swiftnat", "PortControl", "NATWire"]),
    ],
    swiftLanguageModes: [.v6]
)
