// swift-tools-version: 6.2
import PackageDescription

let package = Package(
    name: "swiftnat",
    products: [
        .library(name: "NATWire", targets: ["NATWire"]),
        .library(name: "NATCore", targets: ["NATCore"]),
        .library(name: "NAPT44", targets: ["NAPT44"]),
        .executable(name: "swiftnat", targets: ["swiftnat"]),
    ],
    targets: [
        // Layer 0: views over packet bytes, checksums, addresses, builders.
        .target(name: "NATWire"),
        // Layer 1: tuples, verdicts, tables, port allocation, timers, limits.
        .target(name: "NATCore", dependencies: ["NATWire"]),
        // Layer 2: the NAPT44 engine (bytes + now in, bytes + verdict out).
        .target(name: "NAPT44", dependencies: ["NATWire", "NATCore"]),
        // Layer 4: the binary.
        .executableTarget(name: "swiftnat", dependencies: ["NAPT44"]),
        .testTarget(name: "NATWireTests", dependencies: ["NATWire"]),
        .testTarget(name: "NATCoreTests", dependencies: ["NATCore"]),
        .testTarget(name: "NAPT44Tests", dependencies: ["NAPT44", "NATCore", "NATWire"]),
    ],
    swiftLanguageModes: [.v6]
)
