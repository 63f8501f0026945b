// swift-tools-version: 6.2
// Release-mode benchmark harness for the swiftnat engines. A separate package so that the main
// package's build and tests never pull it in. Run (see README.md):
//   swift build -c release --package-path Benchmarks
//   taskset -c 1 Benchmarks/.build/release/napt44-bench
import PackageDescription

// The main package is the parent directory; its package identity is that directory's name ("main" in
// the main checkout, the worktree's name elsewhere), so products are looked up under it.
let mainPackage = String(Context.packageDirectory.split(separator: "/").dropLast().last ?? "main").lowercased()

let package = Package(
    name: "swiftnat-benchmarks",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // Counts every heap allocation of the process: interposes malloc/calloc/realloc/posix_memalign/
        // aligned_alloc/memalign/valloc/free and forwards them to glibc's __libc_* entry points.
        .target(name: "CMallocCounter"),
        .executableTarget(
            name: "napt44-bench",
            dependencies: [
                "CMallocCounter",
                .product(name: "NAPT44", package: mainPackage),
                .product(name: "NATCore", package: mainPackage),
                .product(name: "NATWire", package: mainPackage),
            ]
        ),
        .executableTarget(
            name: "nat64-pool-bench",
            dependencies: [
                "CMallocCounter",
                .product(name: "NAT64", package: mainPackage),
                .product(name: "NATCore", package: mainPackage),
                .product(name: "NATWire", package: mainPackage),
            ]
        ),
        .executableTarget(
            name: "nat64-bench",
            dependencies: [
                "CMallocCounter",
                .product(name: "NAT64", package: mainPackage),
                .product(name: "NATCore", package: mainPackage),
                .product(name: "NATWire", package: mainPackage),
            ]
        ),
        .executableTarget(
            name: "nptv6-bench",
            dependencies: [
                "CMallocCounter",
                .product(name: "NPTv6", package: mainPackage),
                .product(name: "NATCore", package: mainPackage),
                .product(name: "NATWire", package: mainPackage),
            ]
        ),
        .executableTarget(
            name: "control-bench",
            dependencies: [
                "CMallocCounter",
                .product(name: "NATRuntime", package: mainPackage),
                .product(name: "NAPT44", package: mainPackage),
                .product(name: "NATCore", package: mainPackage),
                .product(name: "NATWire", package: mainPackage),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
