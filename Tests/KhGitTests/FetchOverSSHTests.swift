import Foundation
import KhCore
import KhProcess
import KhTestSupport
import Testing

@testable import KhGit

/// Fetch over ssh from a real sshd on 127.0.0.1 (the shared fixture), cross-checked
/// with the git CLI: the key is the only credential, the host key is pinned by its
/// SHA256 fingerprint.
@Suite("Fetch over ssh from the test sshd")
struct FetchOverSSHTests {
    /// `SHA256:…` of the server's host key, as `ssh-keygen -lf` prints it.
    static func fingerprint(of server: SSHServer, in sandbox: GitSandbox) async throws -> String {
        try sandbox.write("hostkey.pub", server.server.hostPublicKey + "\n")
        let result = try await LocalRunner().run(Command("ssh-keygen", ["-lf", sandbox.path("hostkey.pub"), "-E", "sha256"]))
        let fields = result.stdoutText.split(separator: " ")
        try #require(result.succeeded && fields.count > 1, "ssh-keygen -lf failed: \(result.stderrText)")
        return String(fields[1])
    }

    /// A bare remote with one commit, a clone whose origin is the remote over ssh, and a
    /// second commit pushed to the remote afterwards.
    static func setUp(_ sandbox: GitSandbox, server: SSHServer) async throws -> (work: Repository, remoteHead: String, before: String) {
        try await sandbox.git("init", "-q", "--bare", "remote.git")
        try await sandbox.git("clone", "-q", sandbox.path("remote.git"), "seed")
        try sandbox.write("seed/app.txt", "one\n")
        try await sandbox.commitAll("one", in: "seed")
        try await sandbox.git("push", "-q", "origin", "main", in: "seed")
        try await sandbox.git("clone", "-q", sandbox.path("remote.git"), "work")
        try await sandbox.git("remote", "set-url", "origin", server.url(path: sandbox.path("remote.git")), in: "work")
        let before = try await sandbox.line("rev-parse", "HEAD", in: "work")
        try sandbox.write("seed/app.txt", "two\n")
        let remoteHead = try await sandbox.commitAll("two", in: "seed")
        try await sandbox.git("push", "-q", "origin", "main", in: "seed")
        return (try Repository(at: sandbox.path("work")), remoteHead, before)
    }

    @Test("fast-forward over ssh with the given key and a pinned host key; git agrees")
    func fetchOverSSH() async throws {
        let server = try await SSHServer.start()
        defer { server.stop() }
        let sandbox = GitSandbox()
        let (work, remoteHead, before) = try await Self.setUp(sandbox, server: server)
        let key = GitSSHKey(username: server.user, privateKeyPath: server.clientKeyPath, publicKeyPath: server.clientKeyPath + ".pub")
        let pinned = try await Self.fingerprint(of: server, in: sandbox)
        let result = try work.fetchAndFastForward(GitFetchOptions(sshKey: key, hostKeyPolicy: .fingerprint(pinned), timeout: .seconds(60)))
        #expect(result.outcome == .fastForwarded)
        #expect(result.from.hex == before && result.to.hex == remoteHead)
        #expect(try await sandbox.line("rev-parse", "HEAD", in: "work") == remoteHead)
        #expect(try sandbox.read("work/app.txt") == "two\n")
        // The git CLI over the same sshd and key sees the same remote head.
        let lsRemote = try await LocalRunner(
            environment: ProcessInfo.processInfo.environment.merging(["GIT_SSH_COMMAND": server.gitSSHCommand]) { $1 }
        )
        .run(
            Command("git", ["ls-remote", server.url(path: sandbox.path("remote.git")), "refs/heads/main"]), options: RunOptions(timeout: .seconds(60))
        )
        #expect(lsRemote.stdoutText.hasPrefix(remoteHead), "\(lsRemote.stderrText)")
    }

    @Test("a key the server does not know is an authentication error, not a retry loop")
    func wrongKey() async throws {
        let server = try await SSHServer.start()
        defer { server.stop() }
        let sandbox = GitSandbox()
        let (work, _, before) = try await Self.setUp(sandbox, server: server)
        let keygen = try await LocalRunner().run(
            Command("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", sandbox.path("stranger"), "-C", "stranger"]))
        try #require(keygen.succeeded)
        let pinned = try await Self.fingerprint(of: server, in: sandbox)
        let key = GitSSHKey(username: server.user, privateKeyPath: sandbox.path("stranger"), publicKeyPath: sandbox.path("stranger.pub"))
        let error = #expect(throws: GitError.self) {
            _ = try work.fetchAndFastForward(GitFetchOptions(sshKey: key, hostKeyPolicy: .fingerprint(pinned), timeout: .seconds(60)))
        }
        #expect(error?.reason == .authentication, "\(String(describing: error))")
        #expect(try await sandbox.line("rev-parse", "HEAD", in: "work") == before)
    }

    @Test("a host key that does not match the pinned fingerprint is rejected")
    func wrongHostKey() async throws {
        let server = try await SSHServer.start()
        defer { server.stop() }
        let sandbox = GitSandbox()
        let (work, _, _) = try await Self.setUp(sandbox, server: server)
        let key = GitSSHKey(username: server.user, privateKeyPath: server.clientKeyPath, publicKeyPath: server.clientKeyPath + ".pub")
        let wrong = "SHA256:" + String(repeating: "A", count: 43)
        let error = #expect(throws: GitError.self) {
            _ = try work.fetchAndFastForward(GitFetchOptions(sshKey: key, hostKeyPolicy: .fingerprint(wrong), timeout: .seconds(60)))
        }
        guard case .hostKeyRejected? = error?.reason else {
            Issue.record("expected hostKeyRejected, got \(String(describing: error))")
            return
        }
    }
}
