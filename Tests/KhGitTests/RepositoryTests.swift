import Foundation
import KhCore
import KhTestSupport
import Testing

@testable import KhGit

/// One line of `git status --porcelain=v1 -z`.
struct PorcelainEntry: Equatable, CustomStringConvertible {
    var code: String
    var path: String
    var originalPath: String?
    var description: String { "\(code) \(originalPath.map { "\($0) -> " } ?? "")\(path)" }

    static func parse(_ output: String) -> [PorcelainEntry] {
        var fields = output.split(separator: "\0", omittingEmptySubsequences: true).map(String.init)[...]
        var entries: [PorcelainEntry] = []
        while let field = fields.popFirst() {
            let code = String(field.prefix(2))
            let path = String(field.dropFirst(3))
            let original = code.first == "R" || code.first == "C" ? fields.popFirst() : nil
            entries.append(PorcelainEntry(code: code, path: path, originalPath: original))
        }
        return entries
    }

    init(code: String, path: String, originalPath: String?) {
        self.code = code
        self.path = path
        self.originalPath = originalPath
    }

    init(_ entry: GitStatusEntry) {
        self.init(code: entry.porcelain, path: entry.path, originalPath: entry.originalPath)
    }
}

@Suite("Repository: open, HEAD and status, cross-checked with the git CLI")
struct RepositoryTests {
    @Test("opens from a folder deep inside the working tree, like git rev-parse --show-toplevel")
    func discoversFromSubfolder() async throws {
        let sandbox = GitSandbox()
        try await sandbox.makeRepository()
        try sandbox.write("repo/a/b/c/file.txt", "x\n")
        let repository = try Repository(at: sandbox.path("repo/a/b/c"))
        let toplevel = try await sandbox.line("rev-parse", "--show-toplevel", in: "repo/a/b/c")
        let gitDir = try await sandbox.line("rev-parse", "--absolute-git-dir", in: "repo/a/b/c")
        #expect(repository.workingDirectory == toplevel + "/")
        #expect(repository.gitDirectory == gitDir + "/")
        #expect(!repository.isBare && !repository.isLinkedWorktree)
        // Without search, only the top folder itself opens.
        #expect(throws: GitError.self) { try Repository(at: sandbox.path("repo/a/b/c"), search: false) }
        #expect(try Repository(at: sandbox.path("repo"), search: false).workingDirectory == toplevel + "/")
    }

    @Test("a folder outside any repository: typed error naming the path, libgit2's call, class and message; git agrees")
    func notARepository() async throws {
        let sandbox = GitSandbox()
        try sandbox.write("plain/file.txt", "x\n")
        let folder = sandbox.path("plain")
        let cli = try await sandbox.run(["status"], in: folder)
        #expect(!cli.succeeded)
        #expect(cli.stderrText.contains("not a git repository"))

        let error = #expect(throws: GitError.self) { try Repository(at: folder) }
        #expect(error?.reason == .notARepository(path: folder))
        #expect(error?.call == "git_repository_open_ext")
        #expect(error?.code == -3)
        #expect(error?.errorClass == "repository")
        #expect(error?.libraryMessage.contains("could not find repository") == true)
        #expect(error?.message.hasPrefix("\(folder) is not in a git repository") == true)
        #expect(error?.message.contains("git_repository_open_ext failed: could not find repository") == true)
        #expect(error?.exitCode == .usage)
        #expect(error?.hint != nil)

        let missing = sandbox.path("does/not/exist")
        let gone = #expect(throws: GitError.self) { try Repository(at: missing) }
        #expect(gone?.reason == .notARepository(path: missing))
        #expect(gone?.message.contains("no such file or folder") == true)
    }

    @Test("HEAD on a branch and detached, commit ids as git rev-parse prints them; an unborn branch has no commit")
    func head() async throws {
        let sandbox = GitSandbox()
        try await sandbox.makeRepository()
        var repository = try Repository(at: sandbox.path("repo"))
        #expect(try repository.head() == GitHead(branch: "main", reference: "refs/heads/main", commit: nil))
        #expect(try repository.head().isUnborn)

        try sandbox.write("repo/a.txt", "one\n")
        let first = try await sandbox.commitAll("first")
        try sandbox.write("repo/a.txt", "two\n")
        let second = try await sandbox.commitAll("second")
        try await sandbox.git("checkout", "-q", "-b", "feature/x", in: "repo")
        repository = try Repository(at: sandbox.path("repo"))
        let onBranch = try repository.head()
        #expect(onBranch.branch == (try await sandbox.line("rev-parse", "--abbrev-ref", "HEAD", in: "repo")))
        #expect(onBranch.branch == "feature/x" && onBranch.reference == "refs/heads/feature/x")
        #expect(onBranch.commit?.hex == second)
        #expect(!onBranch.isDetached)

        try await sandbox.git("checkout", "-q", "--detach", first, in: "repo")
        let detached = try repository.head()
        #expect(detached.isDetached && detached.branch == nil)
        #expect(detached.commit?.hex == (try await sandbox.line("rev-parse", "HEAD", in: "repo")))
        #expect(detached.commit?.hex == first)
        #expect(try repository.commitID("main~1") == detached.commit)
        #expect(try repository.commitID(String(first.prefix(10))).hex == first)
    }

    @Test("status matches git status --porcelain=v1 for every kind of change, and clean is clean")
    func statusMatchesPorcelain() async throws {
        let sandbox = GitSandbox()
        try await sandbox.makeRepository()
        for name in ["modified", "deleted", "staged-deleted", "staged-modified", "both-modified", "to-rename", "keep"] {
            try sandbox.write("repo/\(name).txt", "line one of \(name)\nline two\nline three\nline four\n")
        }
        try sandbox.write("repo/dir/nested.txt", "nested\n")
        try sandbox.write("repo/.gitignore", "*.log\n")
        try await sandbox.commitAll("base")
        let repository = try Repository(at: sandbox.path("repo"))
        #expect(try repository.status().isClean)
        #expect(try await sandbox.git("status", "--porcelain=v1", in: "repo").isEmpty)

        try sandbox.write("repo/modified.txt", "changed\n")
        try FileManager.default.removeItem(atPath: sandbox.path("repo/deleted.txt"))
        try await sandbox.git("rm", "-q", "staged-deleted.txt", in: "repo")
        try sandbox.write("repo/staged-modified.txt", "staged change\n")
        try await sandbox.git("add", "staged-modified.txt", in: "repo")
        try sandbox.write("repo/both-modified.txt", "staged\n")
        try await sandbox.git("add", "both-modified.txt", in: "repo")
        try sandbox.write("repo/both-modified.txt", "and again\n")
        try await sandbox.git("mv", "to-rename.txt", "renamed.txt", in: "repo")
        try sandbox.write("repo/added.txt", "new\n")
        try await sandbox.git("add", "added.txt", in: "repo")
        try sandbox.write("repo/added-then-modified.txt", "new\n")
        try await sandbox.git("add", "added-then-modified.txt", in: "repo")
        try sandbox.write("repo/added-then-modified.txt", "newer\n")
        try sandbox.write("repo/untracked.txt", "u\n")
        try sandbox.write("repo/newdir/one.txt", "1\n")
        try sandbox.write("repo/newdir/deeper/two.txt", "2\n")
        try sandbox.write("repo/ignored.log", "ignored\n")

        let status = try repository.status()
        let cli = PorcelainEntry.parse(try await sandbox.git("status", "--porcelain=v1", "-z", in: "repo"))
        #expect(status.entries.map(PorcelainEntry.init) == cli)
        #expect(!status.isClean)
        // Every kind appears, so the comparison above covered them all.
        #expect(Set(status.entries.map(\.porcelain)) == [" M", " D", "D ", "M ", "MM", "R ", "A ", "AM", "??"])
        let rename = try #require(status.entries.first { $0.staged == .renamed })
        #expect(rename.path == "renamed.txt" && rename.originalPath == "to-rename.txt")
        #expect(status.paths.contains("newdir/"))
        #expect(!status.paths.contains("ignored.log"))

        let all = try repository.status(recurseUntrackedDirectories: true)
        let cliAll = PorcelainEntry.parse(try await sandbox.git("status", "--porcelain=v1", "-z", "-uall", in: "repo"))
        #expect(all.entries.map(PorcelainEntry.init) == cliAll)
        #expect(all.paths.contains("newdir/deeper/two.txt"))

        let tracked = try repository.status(includeUntracked: false)
        let cliNo = PorcelainEntry.parse(try await sandbox.git("status", "--porcelain=v1", "-z", "-uno", in: "repo"))
        #expect(tracked.entries.map(PorcelainEntry.init) == cliNo)
        #expect(!tracked.entries.contains { $0.unstaged == .untracked })
    }

    @Test("a revision that does not exist: notFound naming it")
    func unknownRevision() async throws {
        let sandbox = GitSandbox()
        try await sandbox.makeRepository()
        try await sandbox.commitAll("empty")
        let repository = try Repository(at: sandbox.path("repo"))
        let error = #expect(throws: GitError.self) { try repository.commitID("no-such-branch") }
        #expect(error?.reason == .notFound("no-such-branch"))
        #expect(error?.call == "git_revparse_single")
        #expect(error?.message.hasPrefix("resolve revision no-such-branch: git_revparse_single failed: ") == true)
    }

    @Test(
        "a repository owned by another user: a clear ownership error (git refuses too); allowed once owner validation is off",
        .enabled(if: getuid() == 0, "chown to another user needs root"))
    func ownerValidation() async throws {
        let sandbox = GitSandbox()
        try await sandbox.makeRepository()
        try await sandbox.commitAll("base")
        let repo = sandbox.path("repo")
        #expect(chown(repo, 65534, 65534) == 0)
        #expect(chown(repo + "/.git", 65534, 65534) == 0)
        let cli = try await sandbox.run(["status"], in: "repo")
        #expect(cli.stderrText.contains("dubious ownership"))

        let error = #expect(throws: GitError.self) { try Repository(at: repo) }
        #expect(error?.reason == .notOwnedByCurrentUser(path: repo))
        #expect(error?.call == "git_repository_open_ext")  // libgit2 1.5.1 says -3 "config value 'safe.directory' was not found"
        #expect(error?.message.contains("owned by another user") == true)
        #expect(error?.hint?.contains("ownerValidation") == true)
        #expect(error?.exitCode == .blocked)

        #expect(GitLibrary.ownerValidation)
        GitLibrary.ownerValidation = false
        defer { GitLibrary.ownerValidation = true }
        #expect(!GitLibrary.ownerValidation)
        #expect(try Repository(at: repo).head().branch == "main")
    }
}
