import Foundation
import KhCore
import KhGit
import KhProcess
import KhTestSupport
import Testing

/// libgit2 reads ~/.gitconfig (it ignores GIT_CONFIG_GLOBAL): point every level at a
/// folder that does not exist, once per process, so a developer's config cannot change results.
let hermeticLibgit2: Void = {
    for level in GitLibrary.ConfigLevel.allCases {
        try! GitLibrary.setConfigSearchPath(level, to: "/nonexistent/kh-git-tests")
    }
}()

/// A `git` CLI failure in a test fixture step.
struct GitCLIError: Error, CustomStringConvertible {
    var command: String
    var result: CommandResult
    var description: String { "\(command): \(result.summary)\nstdout: \(result.stdoutText)\nstderr: \(result.stderrText)" }
}

/// A temporary folder for repositories made with the `git` CLI, isolated from the
/// user's and the system's git configuration.
final class GitSandbox: Sendable {
    let directory: TemporaryDirectory
    /// The folder's real path (symbolic links resolved), as git and libgit2 print it.
    let root: String
    let runner = LocalRunner()

    static let environment: [String: String] = [
        "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "Kh Test", "GIT_AUTHOR_EMAIL": "kh@example.invalid",
        "GIT_COMMITTER_NAME": "Kh Test", "GIT_COMMITTER_EMAIL": "kh@example.invalid", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C",
    ]

    init(_ label: String = "kh-git") {
        _ = hermeticLibgit2
        directory = TemporaryDirectory(label)
        root = URL(fileURLWithPath: directory.path).resolvingSymlinksInPath().path
    }

    /// `root/relative`.
    func path(_ relative: String) -> String { root + "/" + relative }

    /// Runs git (with `-c init.defaultBranch=main`) in `directory` (relative to root, or absolute); returns the result, whatever its status.
    func run(_ arguments: [String], in folder: String? = nil) async throws -> CommandResult {
        let cwd = folder.map { $0.hasPrefix("/") ? $0 : path($0) } ?? root
        return try await runner.run(
            Command("git", ["-c", "init.defaultBranch=main"] + arguments, environment: Self.environment, workingDirectory: cwd),
            options: RunOptions(timeout: .seconds(60)))
    }

    /// Runs git and requires success; returns stdout.
    @discardableResult
    func git(_ arguments: String..., in folder: String? = nil) async throws -> String {
        try await git(arguments, in: folder)
    }

    @discardableResult
    func git(_ arguments: [String], in folder: String? = nil) async throws -> String {
        let result = try await run(arguments, in: folder)
        guard result.succeeded else { throw GitCLIError(command: "git " + arguments.joined(separator: " "), result: result) }
        return result.stdoutText
    }

    /// stdout of a git command, trimmed.
    func line(_ arguments: String..., in folder: String? = nil) async throws -> String {
        try await git(arguments, in: folder).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Writes a file (creating folders), relative to root.
    func write(_ relative: String, _ text: String) throws {
        try directory.write(relative, text)
    }

    func read(_ relative: String) throws -> String {
        try String(contentsOfFile: path(relative), encoding: .utf8)
    }

    /// `git init` of a new repository folder named `name`; returns its absolute path.
    @discardableResult
    func makeRepository(_ name: String = "repo") async throws -> String {
        try await git("init", "-q", name)
        return path(name)
    }

    /// Stages everything and commits in `folder`; returns the new commit id.
    @discardableResult
    func commitAll(_ message: String, in folder: String = "repo") async throws -> String {
        try await git("add", "-A", in: folder)
        try await git("commit", "-q", "--allow-empty", "-m", message, in: folder)
        return try await line("rev-parse", "HEAD", in: folder)
    }
}
