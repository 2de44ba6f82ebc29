// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "UMPTUI",
    products: [
        .executable(name: "umptui", targets: ["UMPTUI"]),
        .library(name: "Engine", targets: ["Engine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // ncurses for Swift: macros wrapped as static inline functions in shim.h.
        .systemLibrary(name: "CNcurses", providers: [.apt(["libncurses-dev"])]),
        // zlib: traces may be gzip-compressed (read as they stream, never whole).
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // Real-kernel probe: performs a script's actions with mmap/fork/madvise and reads /proc/self/pagemap.
        .target(name: "CProbe"),
        // The model: pure, deterministic, no terminal, no clock.
        .target(name: "Engine"),
        .executableTarget(
            name: "UMPTUI",
            dependencies: [
                "Engine", "CNcurses", "CProbe", "CZlib",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "EngineTests", dependencies: ["Engine"]),
        .testTarget(name: "UMPTUITests", dependencies: ["UMPTUI", "Engine", "CProbe"],
                    // Screen snapshots are read from the source tree, not bundled.
                    exclude: ["Snapshots"]),
    ]
)
