import Foundation
import KhGit
import KhProcess
import KhTestSupport
import Testing

@Suite("KhGit checkoutBranch (used by gates)")
struct GitCheckoutTests {
    static func git(_ dir: String, _ args: [String]) async throws -> String {
        let result = try await LocalRunner().run(
            Command("git", ["-C", dir, "-c", "user.name=t", "-c", "user.email=t@x.invalid"] + args, environment: ["GIT_CONFIG_GLOBAL": "/dev/null"]),
            options: RunOptions(timeout: .seconds(30)))
        #expect(result.succeeded, "git \(args): \(result.stderrText)")
        return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("switches to a local branch, makes one from origin/<branch>, refuses an unknown one")
    func checkout() async throws {
        let dir = TemporaryDirectory("kh-checkout")
        let upstream = dir.path + "/up"
        try FileManager.default.createDirectory(atPath: upstream, withIntermediateDirectories: true)
        _ = try await Self.git(upstream, ["init", "-q", "-b", "main"])
        try dir.write("up/a.tf", "a\n")
        _ = try await Self.git(upstream, ["add", "-A"])
        _ = try await Self.git(upstream, ["commit", "-qm", "a"])
        _ = try await Self.git(upstream, ["checkout", "-q", "-b", "staging"])
        try dir.write("up/b.tf", "b\n")
        _ = try await Self.git(upstream, ["add", "-A"])
        _ = try await Self.git(upstream, ["commit", "-qm", "b"])
        _ = try await Self.git(upstream, ["checkout", "-q", "main"])
        _ = try await Self.git(dir.path, ["clone", "-q", upstream, "clone"])
        let clone = dir.path + "/clone"
        let repository = try Repository(at: clone, search: false)
        #expect(try repository.head().branch == "main")
        #expect(try repository.checkoutBranch("staging"))
        #expect(try repository.head().branch == "staging")
        #expect(FileManager.default.fileExists(atPath: clone + "/b.tf"))
        #expect(try !repository.checkoutBranch("staging"))
        #expect(try repository.checkoutBranch("main"))
        #expect(!FileManager.default.fileExists(atPath: clone + "/b.tf"))
        #expect(throws: GitError.self) { try repository.checkoutBranch("nope") }
    }
}
