// swift-tools-version:6.0
//
// kh — one root manifest. Every target names its path (see docs/architecture.md).
// Runtime modules live in Packages/, plugins in Plugins/, executables in Tools/,
// tests in Tests/. Plugins depend on the runtime, never on each other or the host.
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

/// The executables export no symbols (Tools/kh/exports.map): with the static Swift runtime's
/// -export-dynamic, kh's dynamic symbol table held ~17,500 symbols that only cost start-up
/// time (the loader and the runtime's dladdr walk them), and let libgit2 bind its calls to its
/// own public functions to kh's forwarding functions instead of to itself.
///
/// Release builds are linked as position-dependent executables (`-no-pie`), as Go links
/// hcloud and kubectl: a PIE kh had ~93,000 relative relocations that the loader applied at
/// every start, each first write to a page of .data.rel.ro a copy-on-write fault (~300 of
/// kh's ~740 page faults at `kh --version`). The cost: the executable's own image is not
/// placed at a random address (shared libraries, heap and stack still are).
let noExports: [LinkerSetting] = [
    .unsafeFlags(["-Xlinker", "--version-script=\(Context.packageDirectory)/Tools/kh/exports.map"], .when(platforms: [.linux])),
    .unsafeFlags(["-Xclang-linker", "-no-pie"], .when(platforms: [.linux], configuration: .release)),
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

        // libgit2, libssh2 and libcurl are not linked: each module defines the functions kh
        // calls as forwarding functions that load the library on first use (Packages/CKhLazy,
        // docs/architecture.md "C libraries"), so `kh --help` does not pay ~8 ms for mapping
        // them and the ~34 libraries they need. A `.systemLibrary(pkgConfig:)` would put
        // `-lgit2` on the link line ahead of any flag a target can set, which loads the library
        // at every start. Build-time headers: the Debian packages libgit2-dev, libssh2-1-dev,
        // libcurl4-openssl-dev (`make deps`); run time: libgit2-1.5, libssh2-1, libcurl4.
        .target(
            name: "CKhLazy",
            path: "Packages/CKhLazy",
            linkerSettings: [.linkedLibrary("dl")]
        ),
        .target(
            name: "CLibGit2",
            dependencies: ["CKhLazy"],
            path: "Packages/CLibGit2",
            exclude: ["symbols.txt"]
        ),
        .target(
            name: "CLibSSH2",
            dependencies: ["CKhLazy"],
            path: "Packages/CLibSSH2",
            exclude: ["symbols.txt"]
        ),
        .target(
            name: "CCurl",
            dependencies: ["CKhLazy"],
            path: "Packages/CCurl",
            exclude: ["symbols.txt"]
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
            name: "KhGit",
            dependencies: ["KhCore", "CLibGit2"],
            path: "Packages/KhGit",
            swiftSettings: strict
        ),
        .target(
            name: "KhSSH",
            dependencies: ["KhCore", "KhProcess", "CLibSSH2"],
            path: "Packages/KhSSH",
            swiftSettings: strict
        ),
        .target(
            name: "KhHTTP",
            dependencies: ["KhCore", "CCurl"],
            path: "Packages/KhHTTP",
            swiftSettings: strict
        ),
        .target(
            name: "KhKube",
            dependencies: ["KhCore", "KhProcess", "KhHTTP", .product(name: "Yams", package: "Yams")],
            path: "Packages/KhKube",
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
                "KhCore", "KhProcess", "KhPluginAPI", "KhGit", "KhSSH", "KhHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Packages/KhHost",
            swiftSettings: strict
        ),

        // MARK: plugin hetzner-matrix (part A: Hetzner Cloud API client)
        .target(
            name: "KhHCloud",
            dependencies: ["KhCore", "KhHTTP"],
            path: "Packages/KhHCloud",
            swiftSettings: strict
        ),

        // MARK: Executables
        .executableTarget(
            name: "kh",
            dependencies: ["KhHost", "KhPluginAPI", "HetznerMatrix", "GitOpsMaster", "EKSKarpenterInstall", "AgentReliability"],
            path: "Tools/kh",
            exclude: ["exports.map"],
            swiftSettings: strict,
            linkerSettings: noExports
        ),
        .executableTarget(
            name: "kh-bench",
            dependencies: [
                "KhCore", "KhProcess", "KhGit", "KhSSH", "KhHTTP", "KhKube", "KhHCloud",
                "HetznerMatrix", "GitOpsMaster", "AgentReliability",
            ],
            path: "Tools/kh-bench",
            swiftSettings: strict,
            linkerSettings: noExports
        ),

        // MARK: plugin gitops-master
        .target(
            name: "GitOpsMaster",
            dependencies: [
                "KhPluginAPI", "KhCore", "KhProcess", "KhKube", "KhHTTP", "KhSSH",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Plugins/GitOpsMaster",
            swiftSettings: strict
        ),
        .testTarget(
            name: "GitOpsMasterTests",
            dependencies: ["GitOpsMaster", "KhPluginAPI", "KhKube", "KhCore", "KhProcess", "KhHTTP", "KhTestSupport"],
            path: "Tests/GitOpsMasterTests",
            swiftSettings: strict
        ),

        // MARK: Tests
        .target(
            name: "KhTestSupport",
            dependencies: ["KhCore", "KhProcess", "KhPluginAPI", "KhSSH"],
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
            name: "KhGitTests",
            dependencies: ["KhGit", "KhCore", "KhProcess", "KhSSH", "KhTestSupport"],
            path: "Tests/KhGitTests",
            swiftSettings: strict
        ),
        .testTarget(
            name: "KhSSHTests",
            dependencies: ["KhSSH", "KhCore", "KhProcess", "KhTestSupport"],
            path: "Tests/KhSSHTests",
            swiftSettings: strict
        ),
        .testTarget(
            name: "KhHTTPTests",
            dependencies: ["KhHTTP", "KhCore", "KhProcess", "KhTestSupport"],
            path: "Tests/KhHTTPTests",
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "KhKubeTests",
            dependencies: ["KhKube", "KhCore", "KhProcess", "KhSSH", "KhHTTP", "KhTestSupport"],
            path: "Tests/KhKubeTests",
            swiftSettings: strict
        ),
        .testTarget(
            name: "KhHostTests",
            dependencies: ["KhHost", "KhPluginAPI", "KhCore", "KhTestSupport", "CKhLazy"],
            path: "Tests/KhHostTests",
            exclude: ["Golden"],
            swiftSettings: strict
        ),
        // MARK: plugin hetzner-matrix (part A) tests
        .testTarget(
            name: "KhHCloudTests",
            dependencies: ["KhHCloud", "KhHTTP", "KhCore", "KhProcess", "KhTestSupport"],
            path: "Tests/KhHCloudTests",
            swiftSettings: strict
        ),

        // MARK: plugin eks-karpenter-install
        .target(
            name: "EKSKarpenterInstall",
            dependencies: [
                "KhCore", "KhProcess", "KhPluginAPI", "KhKube", "KhHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Plugins/EKSKarpenterInstall",
            swiftSettings: strict
        ),
        .testTarget(
            name: "EKSKarpenterInstallTests",
            dependencies: ["EKSKarpenterInstall", "KhCore", "KhProcess", "KhPluginAPI", "KhKube", "KhHTTP", "KhTestSupport"],
            path: "Tests/EKSKarpenterInstallTests",
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),

        // MARK: plugin hetzner-matrix
        .target(
            name: "HetznerMatrix",
            dependencies: [
                "KhCore", "KhProcess", "KhPluginAPI", "KhGit", "KhSSH", "KhHTTP", "KhHCloud",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Plugins/HetznerMatrix",
            swiftSettings: strict
        ),
        .testTarget(
            name: "HetznerMatrixTests",
            dependencies: ["HetznerMatrix", "KhCore", "KhProcess", "KhPluginAPI", "KhGit", "KhSSH", "KhHTTP", "KhTestSupport"],
            path: "Tests/HetznerMatrixTests",
            swiftSettings: strict
        ),

        // MARK: plugin agent-reliability
        .target(
            name: "AgentReliability",
            dependencies: [
                "KhPluginAPI", "KhCore", "KhProcess", "KhKube", "KhHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Plugins/AgentReliability",
            swiftSettings: strict
        ),
        .testTarget(
            name: "AgentReliabilityTests",
            dependencies: [
                "AgentReliability", "KhPluginAPI", "KhCore", "KhProcess", "KhKube", "KhHTTP", "KhTestSupport",
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Tests/AgentReliabilityTests",
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
