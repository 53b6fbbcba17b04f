import Foundation
import KhCore
import KhProcess
import KhTestSupport
import Testing

/// The built `kh` binary: bad input is refused with a clear error before any change.
@Suite("kh install: bad input (the built binary)")
struct InstallBinaryTests {
    let directory = TemporaryDirectory("kh-eks-bin")

    func kh(_ args: [String], env extra: [String: String] = [:]) async throws -> CommandResult {
        var env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": directory.path, "NO_COLOR": "1"]
        env.merge(extra) { $1 }
        return try await LocalRunner().run(
            Command(BuiltProducts.kh, args, environment: env, inheritEnvironment: false, workingDirectory: directory.path),
            options: RunOptions(timeout: .seconds(60)))
    }

    var noRuns: Bool { !FileManager.default.fileExists(atPath: directory.path + "/.kh/runs") }

    @Test("no cluster name anywhere: exit 2 naming install.cluster_name and --cluster, no evidence folder")
    func missingCluster() async throws {
        let result = try await kh(["install", "phase3", "--yes"])
        #expect(result.exitCode == 2)
        #expect(result.stderrText.contains("install.cluster_name") && result.stderrText.contains("--cluster"))
        #expect(noRuns)
    }

    @Test("phase 1 without a region: exit 2 before any AWS call")
    func missingRegion() async throws {
        let result = try await kh(
            ["install", "phase1", "--cluster", "demo", "--yes"], env: ["AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret-value-x"])
        #expect(result.exitCode == 2)
        #expect(result.stderrText.contains("no AWS region"))
        #expect(noRuns)
    }

    @Test("phase 2 without credentials (no keys, no shared file): exit 2 naming the profile and the file; an unknown profile lists the known ones")
    func missingCredentials() async throws {
        let result = try await kh(["install", "phase2", "--cluster", "demo", "--region", "eu-west-1", "--yes"])
        #expect(result.exitCode == 2)
        #expect(result.stderrText.contains("no AWS credentials"))
        #expect(result.stderrText.contains("profile default"))
        #expect(noRuns)
        try directory.write(".aws/credentials", "[work]\naws_access_key_id = AKIAWORK\naws_secret_access_key = work-secret-123\n")
        let wrong = try await kh(["install", "all", "--cluster", "demo", "--region", "eu-west-1", "--yes"], env: ["AWS_PROFILE": "prod"])
        #expect(wrong.exitCode == 2)
        #expect(wrong.stderrText.contains("profile \"prod\"") && wrong.stderrText.contains("work"), "\(wrong.stderrText)")
        #expect(!wrong.stderrText.contains("work-secret-123"))
    }

    @Test("a config typo is an error with file, line and a suggestion; a bad flag value is a usage error")
    func badConfig() async throws {
        try directory.write("kh.yaml", "install:\n  cluster_name: demo\n  karpenter:\n    verison: 1.8.3\n")
        let result = try await kh(["install", "phase3", "--yes"])
        #expect(result.exitCode == 2)
        #expect(result.stderrText.contains("kh.yaml:4") && result.stderrText.contains("install.karpenter.verison"))
        #expect(result.stderrText.contains("did you mean \"version\""))
        let flag = try await kh(["install", "phase3", "--cluster", "demo", "--karpenter-version", "latest", "--yes"])
        #expect(flag.exitCode == 2)
        #expect(flag.stderrText.contains("--karpenter-version latest"))
    }

    @Test("without --yes and without a terminal kh refuses to change anything (exit 2)")
    func refusesWithoutYes() async throws {
        let result = try await kh(["install", "phase3", "--cluster", "demo"])
        #expect(result.exitCode == 2)
        #expect(result.stderrText.contains("--yes"))
        #expect(noRuns)
    }
}
