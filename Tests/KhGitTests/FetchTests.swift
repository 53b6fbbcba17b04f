import Foundation
import KhCore
import KhProcess
import Testing

@testable import KhGit

@Suite("Fetch and fast-forward from a local bare remote, cross-checked with the git CLI")
struct FetchTests {
    /// remote.git (bare), seed (pushes to it) and work (a clone that KhGit updates), all on main.
    func remoteAndClones(_ sandbox: GitSandbox) async throws {
        try await sandbox.git("init", "-q", "--bare", "remote.git")
        try await sandbox.git("clone", "-q", sandbox.path("remote.git"), "seed")
        try sandbox.write("seed/app.txt", "one\n")
        try sandbox.write("seed/other.txt", "stable\n")
        try await sandbox.commitAll("one", in: "seed")
        try await sandbox.git("push", "-q", "origin", "main", in: "seed")
        try await sandbox.git("clone", "-q", sandbox.path("remote.git"), "work")
    }

    /// Two new commits and a tag on the remote.
    @discardableResult
    func advanceRemote(_ sandbox: GitSandbox, _ text: String = "two") async throws -> String {
        try sandbox.write("seed/app.txt", "\(text)\n")
        try await sandbox.commitAll("\(text) a", in: "seed")
        try sandbox.write("seed/new-\(text).txt", "\(text)\n")
        let head = try await sandbox.commitAll("\(text) b", in: "seed")
        try await sandbox.git("tag", "-a", "-m", "release", "v-\(text)", in: "seed")
        try await sandbox.git("push", "-q", "--follow-tags", "origin", "main", in: "seed")
        return head
    }

    @Test("fast-forwards branch and working tree to the remote; tags follow; then already up to date, also when ahead")
    func fastForward() async throws {
        let sandbox = GitSandbox()
        try await remoteAndClones(sandbox)
        let before = try await sandbox.line("rev-parse", "HEAD", in: "work")
        let remoteHead = try await advanceRemote(sandbox)
        try sandbox.write("work/untracked-note.txt", "mine\n")

        let repository = try Repository(at: sandbox.path("work"))
        let result = try repository.fetchAndFastForward()
        #expect(result.outcome == .fastForwarded)
        #expect(result.branch == "main" && result.upstream == "refs/remotes/origin/main")
        #expect(result.from.hex == before && result.to.hex == remoteHead)
        #expect(result.fetch.remote == "origin")
        #expect(result.fetch.receivedObjects > 0)
        let tracking = try #require(result.fetch.updatedReferences.first { $0.name == "refs/remotes/origin/main" })
        #expect(tracking.old?.hex == before && tracking.new?.hex == remoteHead)

        // git sees the branch, index and files at the remote's commit; the untracked file stays.
        #expect(try await sandbox.line("rev-parse", "HEAD", in: "work") == remoteHead)
        #expect(try await sandbox.line("rev-parse", "main", in: "remote.git") == remoteHead)
        #expect(try await sandbox.line("rev-parse", "--abbrev-ref", "HEAD", in: "work") == "main")
        #expect(try await sandbox.git("status", "--porcelain=v1", in: "work") == "?? untracked-note.txt\n")
        #expect(try sandbox.read("work/app.txt") == "two\n" && sandbox.read("work/new-two.txt") == "two\n")
        #expect(try await sandbox.git("tag", "--list", in: "work") == "v-two\n")
        #expect(try repository.head().commit?.hex == remoteHead)

        let again = try repository.fetchAndFastForward()
        #expect(again.isAlreadyUpToDate && again.from == again.to && again.to.hex == remoteHead)
        #expect(again.fetch.updatedReferences.isEmpty)

        try sandbox.write("work/local.txt", "local commit\n")
        let local = try await sandbox.commitAll("local work", in: "work")
        let ahead = try repository.fetchAndFastForward()
        #expect(ahead.outcome == .alreadyUpToDate && ahead.from.hex == local && ahead.to.hex == local)
        #expect(try await sandbox.line("rev-parse", "HEAD", in: "work") == local)
    }

    @Test("an explicit second remote: its REMOTE/BRANCH is the upstream, not the configured origin/main")
    func explicitRemote() async throws {
        let sandbox = GitSandbox()
        try await remoteAndClones(sandbox)
        try await sandbox.git("clone", "-q", "--bare", sandbox.path("remote.git"), "mirror.git")
        try sandbox.write("seed/mirror-only.txt", "m\n")
        let mirrorHead = try await sandbox.commitAll("only on the mirror", in: "seed")
        try await sandbox.git("push", "-q", sandbox.path("mirror.git"), "main", in: "seed")
        try await sandbox.git("remote", "add", "mirror", sandbox.path("mirror.git"), in: "work")

        let repository = try Repository(at: sandbox.path("work"))
        let result = try repository.fetchAndFastForward(GitFetchOptions(remote: "mirror"))
        #expect(result.outcome == .fastForwarded && result.upstream == "refs/remotes/mirror/main" && result.fetch.remote == "mirror")
        #expect(result.to.hex == mirrorHead)
        #expect(try await sandbox.line("rev-parse", "HEAD", in: "work") == mirrorHead)
        #expect(try await sandbox.line("rev-parse", "origin/main", in: "work") != mirrorHead)  // origin untouched
        #expect(try repository.fetchAndFastForward().isAlreadyUpToDate)  // origin/main is behind: nothing to do
    }

    @Test("diverged histories: a typed refusal naming branch and both commits; nothing moves; git agrees it is no fast-forward")
    func refusesDiverged() async throws {
        let sandbox = GitSandbox()
        try await remoteAndClones(sandbox)
        try sandbox.write("work/local.txt", "local\n")
        let local = try await sandbox.commitAll("local", in: "work")
        let remoteHead = try await advanceRemote(sandbox)

        let repository = try Repository(at: sandbox.path("work"))
        let error = #expect(throws: GitError.self) { try repository.fetchAndFastForward() }
        let expected = GitError.Reason.nonFastForward(
            branch: "main", local: GitObjectID(hex: local)!, upstream: GitObjectID(hex: remoteHead)!, upstreamName: "refs/remotes/origin/main")
        #expect(error?.reason == expected)
        #expect(error?.message.contains("cannot fast-forward branch main") == true)
        #expect(error?.message.contains(String(local.prefix(7))) == true)
        #expect(error?.message.contains(String(remoteHead.prefix(7))) == true)
        #expect(error?.exitCode == .checkFailed)
        #expect(error?.hint != nil)

        // The fetch happened, the branch did not move, and git refuses the same merge.
        #expect(try await sandbox.line("rev-parse", "origin/main", in: "work") == remoteHead)
        #expect(try await sandbox.line("rev-parse", "HEAD", in: "work") == local)
        #expect(try await sandbox.run(["merge-base", "--is-ancestor", "HEAD", "origin/main"], in: "work").exitCode == 1)
        #expect(try await sandbox.run(["merge", "--ff-only", "origin/main"], in: "work").succeeded == false)
        #expect(try sandbox.read("work/app.txt") == "one\n")
    }

    @Test("a local edit the fast-forward would overwrite: checkout conflict, branch and edit untouched")
    func refusesToOverwriteLocalChanges() async throws {
        let sandbox = GitSandbox()
        try await remoteAndClones(sandbox)
        let before = try await sandbox.line("rev-parse", "HEAD", in: "work")
        try await advanceRemote(sandbox)
        try sandbox.write("work/app.txt", "my uncommitted edit\n")

        let repository = try Repository(at: sandbox.path("work"))
        let error = #expect(throws: GitError.self) { try repository.fetchAndFastForward() }
        #expect(error?.reason == .checkoutConflict)
        #expect(error?.call == "git_checkout_tree")
        #expect(try await sandbox.line("rev-parse", "HEAD", in: "work") == before)
        #expect(try sandbox.read("work/app.txt") == "my uncommitted edit\n")
        #expect(try await sandbox.run(["merge", "--ff-only", "origin/main"], in: "work").succeeded == false)  // git refuses too
    }

    @Test("typed errors: detached HEAD, unknown remote, a deadline that passed, an ssh remote that refuses connections")
    func errors() async throws {
        let sandbox = GitSandbox()
        try await remoteAndClones(sandbox)
        try await advanceRemote(sandbox)
        let repository = try Repository(at: sandbox.path("work"))

        let missing = #expect(throws: GitError.self) { try repository.fetchAndFastForward(GitFetchOptions(remote: "nope")) }
        #expect(missing?.reason == .notFound("remote nope"))
        #expect(missing?.call == "git_remote_lookup")

        let late = #expect(throws: GitError.self) { try repository.fetch(GitFetchOptions(timeout: .zero)) }
        #expect(late?.reason == .deadlineExceeded(seconds: 0))
        #expect(late?.message.hasPrefix("fetch origin: deadline of 0 ms passed") == true)
        #expect(late?.exitCode == .external)

        try await sandbox.git("remote", "add", "closed", "ssh://git@127.0.0.1:1/srv/repo.git", in: "work")
        let started = ContinuousClock.now
        let refused = #expect(throws: GitError.self) {
            try repository.fetch(
                GitFetchOptions(remote: "closed", sshKey: GitSSHKey(privateKeyPath: "/nonexistent/id_ed25519"), timeout: .seconds(10)))
        }
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(refused?.reason == .library)
        #expect(refused?.call == "git_remote_fetch")
        #expect(refused?.message.contains("127.0.0.1") == true, "\(String(describing: refused))")

        try await sandbox.git("checkout", "-q", "--detach", "HEAD", in: "work")
        let detached = #expect(throws: GitError.self) { try repository.fetchAndFastForward() }
        #expect(detached?.reason == .detachedHead)
        // A plain fetch works on a detached HEAD.
        let fetched = try repository.fetch()
        #expect(fetched.remote == "origin")
        #expect(try await sandbox.line("rev-parse", "origin/main", in: "work") == (try await sandbox.line("rev-parse", "main", in: "remote.git")))
    }
}

@Suite("SSH credentials: host key fingerprints and secrets")
struct SSHCredentialTests {
    @Test("a pinned fingerprint is written exactly as ssh-keygen -lf prints it")
    func fingerprintMatchesSSHKeygen() async throws {
        let sandbox = GitSandbox()
        let key = sandbox.path("host_ed25519")
        let options = RunOptions(timeout: .seconds(30))
        let made = try await sandbox.runner.run(Command("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", key]), options: options)
        try #require(made.succeeded, "\(made.stderrText)")
        let printed = try await sandbox.runner.run(Command("ssh-keygen", ["-l", "-E", "sha256", "-f", key + ".pub"]), options: options)
        let expected = try #require(printed.stdoutText.split(separator: " ").dropFirst().first.map(String.init))
        #expect(expected.hasPrefix("SHA256:"))
        // libgit2 hands the callback the SHA-256 of the raw key blob: the base64 field of the .pub line.
        let blob = try #require(Data(base64Encoded: String(try sandbox.read("host_ed25519.pub").split(separator: " ")[1])))
        try blob.write(to: URL(fileURLWithPath: key + ".blob"))
        let sum = try await sandbox.runner.run(Command("sha256sum", [key + ".blob"]), options: options)
        let hex = Array(sum.stdoutText.prefix(64).utf8)
        let digest = stride(from: 0, to: hex.count, by: 2).map { UInt8(String(decoding: hex[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
        #expect(digest.count == 32)
        #expect(GitHostKeyPolicy.fingerprint(sha256: digest) == expected)
    }

    @Test("a key's passphrase never shows in its description, debug description or mirror")
    func passphraseRedacted() {
        let key = GitSSHKey(username: "deploy", privateKeyPath: "/keys/id_ed25519", passphrase: "hunter2-secret")
        let texts = [
            String(describing: key), String(reflecting: key), "\(key)",
            {
                var out = ""; dump(key, to: &out); return out
            }(),
        ]
        for text in texts {
            #expect(!text.contains("hunter2-secret"), "\(text)")
            #expect(text.contains("/keys/id_ed25519"))
        }
        #expect(String(describing: key).contains("<redacted>"))
        let options = GitFetchOptions(sshKey: key)
        #expect(!String(describing: options).contains("hunter2-secret"))
    }
}
