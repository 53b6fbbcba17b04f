// swift-tools-version:6.0
//
// kh — one root manifest. Every target names its path (see docs/architecture.md).
// Runtime modules live in Packages/, plugins in Plugins/, executables in Tools/,
// tests in Tests/. Plugins depend on the runtime, never on each other or the host.
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "kh",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kh", targets: ["kh"]),
        .library(name: "KhPluginAPI", targets: ["KhPluginAPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // MARK: C shims (each imported by its one wrapper only)
        .target(
            name: "CKhPosix",
            path: "Packages/CKhPosix"
        ),

        // MARK: Runtime
        .target(
            name: "KhCore",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Packages/KhCore",
            swiftSettings: strict
        ),
        .target(
            name: "KhProcess",
            dependencies: ["KhCore", "CKhPosix"],
            path: "Packages/KhProcess",
            swiftSettings: strict
        ),
        .target(
            name: "KhPluginAPI",
            dependencies: [
                "KhCore", "KhProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Packages/KhPluginAPI",
            swiftSettings: strict
        ),
        .target(
            name: "KhHost",
            dependencies: [
                "KhCore", "KhProcess", "KhPluginAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Packages/KhHost",
            swiftSettings: strict
        ),

        // MARK: Executables
        .executableTarget(
            name: "kh",
            dependencies: ["KhHost", "KhPluginAPI"],
            path: "Tools/kh",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "kh-bench",
            dependencies: ["KhCore", "KhProcess"],
            path: "Tools/kh-bench",
            swiftSettings: strict
        ),

        // MARK: Tests
        .target(
            name: "KhTestSupport",
            dependencies: ["KhCore", "KhProcess", "KhPluginAPI"],
            path: "Tests/KhTestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "KhCoreTests",
            dependencies: ["KhCore", "KhTestSupport"],
            path: "Tests/KhCoreTests",
            swiftSettings: strict
        ),
        .testTarget(
            name: "KhProcessTests",
            dependencies: ["KhProcess", "KhCore", "KhTestSupport"],
            path: "Tests/KhProcessTests",
            swiftSettings: strict
        ),
        .testTarget(
            name: "KhHostTests",
            dependencies: ["KhHost", "KhPluginAPI", "KhCore", "KhTestSupport"],
            path: "Tests/KhHostTests",
            exclude: ["Golden"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
