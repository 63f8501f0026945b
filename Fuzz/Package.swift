// swift-tools-version: 6.2
// libFuzzer targets for every parser a stranger can reach (issue 12, "Bad input"). A separate package, as
// Benchmarks/ is, so the main package's build and tests never pull it in. Build and run (see README.md,
// "Fuzzing and sanitizers"; scripts/fuzz.sh does both):
//   swift build -c release --package-path Fuzz -Xswiftc -sanitize=fuzzer,address
//   Fuzz/.build/release/fuzz-napt44 Fuzz/corpus/fuzz-napt44 -max_total_time=60
// Each executable's main.swift hands its LLVMFuzzerTestOneInput to libFuzzer's driver (LLVMFuzzerRunDriver):
// SwiftPM links executables with their own main (--defsym main=<module>_main), so libFuzzer's main, and
// with it -parse-as-library, cannot be used.
import PackageDescription

// The main package is the parent directory; its package identity is that directory's name ("main" in
// the main checkout, the worktree's name elsewhere), so products are looked up under it.
let mainPackage = String(Context.packageDirectory.split(separator: "/").dropLast().last ?? "main").lowercased()

func fuzzer(_ name: String, _ products: [String]) -> Target {
    .executableTarget(name: name, dependencies: ["FuzzSupport"] + products.map { $0 == "FuzzNAT64" ? .target(name: $0) : .product(name: $0, package: mainPackage) })
}

let package = Package(
    name: "swiftnat-fuzz",
    dependencies: [
        .package(path: ".."),
        // The control plane takes a Logger (the main package's own dependency, same version).
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // Input splitting, invariant checks, shared configurations.
        // libFuzzer's driver entry point, declared for Swift.
        .target(name: "CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: [
            "CLibFuzzer",
            .product(name: "NATWire", package: mainPackage),
            .product(name: "NATCore", package: mainPackage),
        ]),
        // The NAT64 runner shared by the three mappings' targets.
        .target(name: "FuzzNAT64", dependencies: [
            "FuzzSupport",
            .product(name: "NAT64", package: mainPackage),
            .product(name: "NATWire", package: mainPackage),
            .product(name: "NATCore", package: mainPackage),
        ]),
        fuzzer("fuzz-wire", ["NATWire"]),
        fuzzer("fuzz-virtio", ["NATWire"]),
        fuzzer("fuzz-napt44", ["NAPT44", "NATCore", "NATWire"]),
        fuzzer("fuzz-nat64-siit", ["FuzzNAT64", "NAT64", "NATCore", "NATWire"]),
        fuzzer("fuzz-nat64-pool", ["FuzzNAT64", "NAT64", "NATCore", "NATWire"]),
        fuzzer("fuzz-nat64-stateful", ["FuzzNAT64", "NAT64", "NATCore", "NATWire"]),
        fuzzer("fuzz-nat64-superpacket", ["FuzzNAT64", "NAT64", "NATCore", "NATWire"]),
        fuzzer("fuzz-config", ["NATRuntime", "NATCore"]),
        .executableTarget(name: "fuzz-control", dependencies: [
            "FuzzSupport",
            .product(name: "NATRuntime", package: mainPackage),
            .product(name: "NAPT44", package: mainPackage),
            .product(name: "NATCore", package: mainPackage),
            .product(name: "Logging", package: "swift-log"),
        ]),
        fuzzer("fuzz-stun", ["STUN", "NATWire"]),
        fuzzer("fuzz-portcontrol", ["PortControl", "NATRuntime", "NATWire"]),
    ],
    swiftLanguageModes: [.v6]
)
