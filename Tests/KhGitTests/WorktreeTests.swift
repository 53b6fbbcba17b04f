import Foundation
import KhCore
import Testing

@testable import KhGit

/// One record of `git worktree list --porcelain`.
struct CLIWorktree: Equatable {
    var path = ""
    var head: String?
    var branch: String?
    var detached = false
    var locked: String?
    var prunable = false

    static func parse(_ output: String) -> [CLIWorktree] {
        output.components(separatedBy: "\n\n").filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }.map { block in
            var record = CLIWorktree()
            for line in block.split(separator: "\n").map(String.init) {
                let (key, value) = line.firstIndex(of: " ").map { (String(line[..<$0]), String(line[line.index(after: $0)...])) } ?? (line, "")
                switch key {
                case "worktree": record.path = value
                case "HEAD": record.head = value
                case "branch": record.branch = value
                case "detached": record.detached = true
                case "locked": record.locked = value
                case "prunable": record.prunable = true
                default: break
                }
            }
            return record
        }
    }

    init() {}

    init(_ worktree: GitWorktree) {
        path = worktree.path
        head = worktree.head?.commit?.hex
        branch = worktree.head?.reference
        detached = worktree.head?.isDetached ?? false
        locked = worktree.lockReason
        prunable = worktree.isPrunable
    }
}

@Suite("Worktrees: add detached at a tag, list, remove, prune; cross-checked with git worktree list --porcelain")
struct WorktreeTests {
    /// main has three commits; v1.0.0 (annotated) on the first, v2.0.0 (lightweight) on the second.
    func repositoryWithTags(_ sandbox: GitSandbox) async throws {
        try await sandbox.makeRepository()
        try sandbox.write("repo/app.txt", "version one\n")
        try sandbox.write("repo/only-in-v1.txt", "gone later\n")
        try sandbox.write("repo/sub/dir/deep.txt", "deep one\n")
        try await sandbox.commitAll("one")
        try await sandbox.git("tag", "-a", "-m", "first release", "v1.0.0", in: "repo")
        try sandbox.write("repo/app.txt", "version two\n")
        try FileManager.default.removeItem(atPath: sandbox.path("repo/only-in-v1.txt"))
        try sandbox.write("repo/added-in-v2.txt", "new\n")
        try await sandbox.commitAll("two")
        try await sandbox.git("tag", "v2.0.0", in: "repo")
        try sandbox.write("repo/app.txt", "version three\n")
        try await sandbox.commitAll("three")
    }

    func cliList(_ sandbox: GitSandbox) async throws -> [CLIWorktree] {
        CLIWorktree.parse(try await sandbox.git("worktree", "list", "--porcelain", in: "repo"))
    }

    @Test("a worktree detached at an annotated tag has the tag's files, a clean index, no leftover branch; git lists it the same")
    func addAtTag() async throws {
        let sandbox = GitSandbox()
        try await repositoryWithTags(sandbox)
        let repository = try Repository(at: sandbox.path("repo"))
        let path = sandbox.path("wt-v1")

        let added = try repository.addWorktree(at: path, detachedAt: "v1.0.0")
        let tagCommit = try await sandbox.line("rev-parse", "v1.0.0^{commit}", in: "repo")
        #expect(added.name == "wt-v1")
        #expect(added.path == path)
        #expect(added.head?.commit?.hex == tagCommit && added.head?.isDetached == true)

        // Content: exactly the tag's tree, and git sees a clean working tree and a detached HEAD.
        #expect(try sandbox.read("wt-v1/app.txt") == (try await sandbox.git("show", "v1.0.0:app.txt", in: "repo")))
        #expect(try sandbox.read("wt-v1/sub/dir/deep.txt") == "deep one\n")
        #expect(FileManager.default.fileExists(atPath: path + "/only-in-v1.txt"))
        #expect(!FileManager.default.fileExists(atPath: path + "/added-in-v2.txt"))
        #expect(try await sandbox.git("status", "--porcelain=v1", in: path).isEmpty)
        #expect(try await sandbox.line("rev-parse", "HEAD", in: path) == tagCommit)
        let symbolic = try await sandbox.run(["symbolic-ref", "-q", "HEAD"], in: path)
        #expect(symbolic.exitCode == 1)  // detached
        #expect(try await sandbox.git("branch", "--list", "kh-worktree-*", in: "repo").isEmpty)
        #expect(try await sandbox.line("rev-parse", "--abbrev-ref", "HEAD", in: "repo") == "main")

        // The list: git's, minus the main working tree, equals ours.
        let cli = try await cliList(sandbox)
        #expect(cli.first?.path == sandbox.path("repo"))
        let ours = try repository.worktrees()
        #expect(ours.map(CLIWorktree.init) == Array(cli.dropFirst()))  // one linked worktree: no order question
        #expect(ours.map(\.name) == ["wt-v1"])
        #expect(cli.last?.detached == true && cli.last?.head == tagCommit)

        // The worktree opens as a repository of its own, and KhGit's status agrees it is clean.
        let linked = try Repository(at: path)
        #expect(linked.isLinkedWorktree)
        #expect(try linked.head() == GitHead(branch: nil, reference: nil, commit: GitObjectID(hex: tagCommit)))
        #expect(try linked.status().isClean)
    }

    @Test("detached at a lightweight tag, a commit id and a branch; an empty folder is accepted, a non-empty one refused")
    func addAtOtherRevisions() async throws {
        let sandbox = GitSandbox()
        try await repositoryWithTags(sandbox)
        let repository = try Repository(at: sandbox.path("repo"))
        let v2 = try await sandbox.line("rev-parse", "v2.0.0", in: "repo")
        let head = try await sandbox.line("rev-parse", "HEAD", in: "repo")

        try repository.addWorktree(at: sandbox.path("by-tag"), detachedAt: "v2.0.0")
        #expect(try sandbox.read("by-tag/added-in-v2.txt") == "new\n")
        try repository.addWorktree(at: sandbox.path("by-id"), detachedAt: String(v2.prefix(12)), name: "custom-name")
        try FileManager.default.createDirectory(atPath: sandbox.path("empty"), withIntermediateDirectories: false)
        try repository.addWorktree(at: sandbox.path("empty"), detachedAt: "main")
        #expect(try sandbox.read("empty/app.txt") == "version three\n")

        // git lists linked worktrees in directory order: compare by path.
        let cli = try await cliList(sandbox).dropFirst().sorted { $0.path < $1.path }
        #expect(cli.map(\.path) == [sandbox.path("by-id"), sandbox.path("by-tag"), sandbox.path("empty")])
        #expect(cli.map(\.head) == [v2, v2, head])
        #expect(cli.allSatisfy { $0.detached && $0.branch == nil })
        #expect(try repository.worktrees().map(\.name) == ["by-tag", "custom-name", "empty"])
        #expect(try repository.worktrees().map(CLIWorktree.init).sorted { $0.path < $1.path } == cli)

        try sandbox.write("taken/file.txt", "x\n")
        let error = #expect(throws: GitError.self) { try repository.addWorktree(at: sandbox.path("taken"), detachedAt: "v1.0.0") }
        #expect(error?.reason == .alreadyExists(sandbox.path("taken")))
        let unknown = #expect(throws: GitError.self) { try repository.addWorktree(at: sandbox.path("nope"), detachedAt: "v7.7.7") }
        #expect(unknown?.reason == .notFound("v7.7.7"))
        #expect(!FileManager.default.fileExists(atPath: sandbox.path("nope")))
        #expect(try await sandbox.git("branch", "--list", "kh-worktree-*", in: "repo").isEmpty)
    }

    @Test("the administrative files equal git's (gitdir, commondir, HEAD, the .git file; no lock left); a taken name or a bad one leaves nothing behind")
    func administrativeFiles() async throws {
        let sandbox = GitSandbox()
        try await repositoryWithTags(sandbox)
        let repository = try Repository(at: sandbox.path("repo"))
        try await sandbox.git("worktree", "add", "-q", "--detach", sandbox.path("by-git"), "v1.0.0", in: "repo")
        try repository.addWorktree(at: sandbox.path("by-kh"), detachedAt: "v1.0.0")
        func admin(_ name: String, _ file: String) throws -> String { try sandbox.read("repo/.git/worktrees/\(name)/\(file)") }
        #expect(try admin("by-kh", "HEAD") == (try admin("by-git", "HEAD")))
        #expect(try admin("by-kh", "commondir") == (try admin("by-git", "commondir")))
        #expect(try admin("by-kh", "gitdir") == (try admin("by-git", "gitdir")).replacingOccurrences(of: "by-git", with: "by-kh"))
        #expect(try sandbox.read("by-kh/.git") == (try sandbox.read("by-git/.git")).replacingOccurrences(of: "by-git", with: "by-kh"))
        #expect(!FileManager.default.fileExists(atPath: sandbox.path("repo/.git/worktrees/by-kh/locked")))
        #expect(try await sandbox.git("worktree", "list", "--porcelain", in: "repo").contains("locked") == false)
        // git's own commands work in it: status, and a commit on a new branch there.
        try await sandbox.git("switch", "-q", "-c", "from-kh", in: sandbox.path("by-kh"))
        try sandbox.write("by-kh/new.txt", "made in the linked worktree\n")
        try await sandbox.git("add", "new.txt", in: sandbox.path("by-kh"))
        try await sandbox.git("commit", "-q", "-m", "in by-kh", in: sandbox.path("by-kh"))
        #expect(try await sandbox.line("rev-parse", "from-kh~1", in: "repo") == (try await sandbox.line("rev-parse", "v1.0.0^{commit}", in: "repo")))

        // A name already used: refused; the folder it would have made is gone, the other worktree untouched.
        let taken = #expect(throws: GitError.self) { try repository.addWorktree(at: sandbox.path("other"), detachedAt: "v1.0.0", name: "by-kh") }
        #expect(taken?.reason == .alreadyExists(sandbox.path("repo/.git/worktrees/by-kh")))
        #expect(!FileManager.default.fileExists(atPath: sandbox.path("other")))
        #expect(FileManager.default.fileExists(atPath: sandbox.path("by-kh/new.txt")))
        let bad = #expect(throws: GitError.self) { try repository.addWorktree(at: sandbox.path("other"), detachedAt: "v1.0.0", name: "a/b") }
        #expect(bad?.exitCode == .usage)
        #expect(!FileManager.default.fileExists(atPath: sandbox.path("other")))
        #expect(try repository.worktrees().map(\.name) == ["by-git", "by-kh"])
    }

    /// Every file under `folder` (but `.git`) with its bytes and whether it is executable or a link.
    func snapshot(_ folder: String) throws -> [String: String] {
        var result: [String: String] = [:]
        let fileManager = FileManager.default
        for relative in try fileManager.subpathsOfDirectory(atPath: folder) where relative != ".git" {
            let full = folder + "/" + relative
            let attributes = try fileManager.attributesOfItem(atPath: full)
            let type = attributes[.type] as? FileAttributeType
            if type == .typeSymbolicLink {
                result[relative] = "link -> " + (try fileManager.destinationOfSymbolicLink(atPath: full))
            } else if type == .typeRegular {
                let mode = (attributes[.posixPermissions] as? Int ?? 0) & 0o111 != 0 ? "x " : "- "
                result[relative] = mode + (try Data(contentsOf: URL(fileURLWithPath: full))).base64EncodedString()
            }
        }
        return result
    }

    @Test(
        "byte for byte what git worktree add makes: plain files, executables, links, and filters from .gitattributes, info/attributes, core.autocrlf",
        arguments: ["none", "gitattributes", "info", "autocrlf"])
    func sameBytesAsGit(attributes: String) async throws {
        let sandbox = GitSandbox()
        try await sandbox.makeRepository()
        for index in 0..<30 {
            try sandbox.write("repo/d\(index % 3)/e\(index % 2)/f\(index).txt", "file \(index)\n$Id$\nsecond line\n")
        }
        try sandbox.write("repo/tool.sh", "#!/bin/sh\necho $Id$\n")
        #expect(chmod(sandbox.path("repo/tool.sh"), 0o755) == 0)
        try FileManager.default.createSymbolicLink(atPath: sandbox.path("repo/link"), withDestinationPath: "d0/e0/f0.txt")
        switch attributes {
        case "gitattributes": try sandbox.write("repo/d1/.gitattributes", "*.txt ident\n")
        case "info": try sandbox.write("repo/.git/info/attributes", "*.sh ident\n")
        case "autocrlf": try await sandbox.git("config", "core.autocrlf", "true", in: "repo")
        default: break
        }
        try await sandbox.commitAll("content")
        try await sandbox.git("tag", "v1", in: "repo")
        try await sandbox.git("worktree", "add", "-q", "--detach", sandbox.path("by-git"), "v1", in: "repo")
        let repository = try Repository(at: sandbox.path("repo"))
        let commit = try repository.commit("v1")
        #expect(try repository.filtersMayApply(to: commit, operation: "test") == (attributes != "none"))
        try repository.addWorktree(at: sandbox.path("by-kh"), detachedAt: "v1")
        let ours = try snapshot(sandbox.path("by-kh"))
        let theirs = try snapshot(sandbox.path("by-git"))
        #expect(ours.count == 32 + (attributes == "gitattributes" ? 1 : 0))  // 30 files, tool.sh, link
        #expect(ours == theirs)
        if attributes == "gitattributes" { #expect(try sandbox.read("by-kh/d1/e1/f1.txt").contains("$Id: ")) }
        if attributes == "info" { #expect(try sandbox.read("by-kh/tool.sh").contains("$Id: ")) }
        if attributes == "autocrlf" { #expect(try sandbox.read("by-kh/d0/e0/f0.txt").contains("\r\n")) }
        #expect(try await sandbox.git("status", "--porcelain=v1", in: sandbox.path("by-kh")).isEmpty)
    }

    @Test("remove: refuses locked and dirty worktrees, then removes folder and admin data; git agrees")
    func remove() async throws {
        let sandbox = GitSandbox()
        try await repositoryWithTags(sandbox)
        let repository = try Repository(at: sandbox.path("repo"))
        let path = sandbox.path("wt")
        try repository.addWorktree(at: path, detachedAt: "v1.0.0")

        try await sandbox.git("worktree", "lock", "--reason", "on a usb disk", path, in: "repo")
        #expect(try repository.worktree(named: "wt").lockReason == "on a usb disk")
        #expect(try await cliList(sandbox).last?.locked == "on a usb disk")
        let locked = #expect(throws: GitError.self) { try repository.removeWorktree(named: "wt") }
        #expect(locked?.reason == .locked(name: "wt", reason: "on a usb disk"))
        try await sandbox.git("worktree", "unlock", path, in: "repo")
        #expect(try repository.worktree(named: "wt").isLocked == false)

        try sandbox.write("wt/app.txt", "edited\n")
        try sandbox.write("wt/scratch.txt", "untracked\n")
        let dirty = #expect(throws: GitError.self) { try repository.removeWorktree(named: "wt") }
        #expect(dirty?.reason == .uncommittedChanges(paths: ["app.txt", "scratch.txt"]))
        #expect(dirty?.message.contains("app.txt, scratch.txt") == true)
        let cliRefusal = try await sandbox.run(["worktree", "remove", path], in: "repo")
        #expect(!cliRefusal.succeeded)  // git refuses the same worktree
        #expect(FileManager.default.fileExists(atPath: path))

        try repository.removeWorktree(named: "wt", force: true)
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(!FileManager.default.fileExists(atPath: sandbox.path("repo/.git/worktrees/wt")))
        #expect(try await cliList(sandbox).map(\.path) == [sandbox.path("repo")])
        #expect(try repository.worktrees().isEmpty)

        // A clean one goes without force; a worktree git made is removed by KhGit too.
        try await sandbox.git("worktree", "add", "-q", "--detach", sandbox.path("by-git"), "v2.0.0", in: "repo")
        let listed = try repository.worktrees()
        #expect(listed.map(CLIWorktree.init) == Array(try await cliList(sandbox).dropFirst()))
        try repository.removeWorktree(named: "by-git")
        #expect(!FileManager.default.fileExists(atPath: sandbox.path("by-git")))
        #expect(try await cliList(sandbox).count == 1)
        let missing = #expect(throws: GitError.self) { try repository.removeWorktree(named: "by-git") }
        #expect(missing?.reason == .notFound("worktree by-git"))
        #expect(missing?.message.contains("git_worktree_lookup failed: no worktree named by-git") == true)
    }

    @Test("a worktree whose folder was deleted is prunable (as git says) and pruneWorktrees removes only it")
    func prune() async throws {
        let sandbox = GitSandbox()
        try await repositoryWithTags(sandbox)
        let repository = try Repository(at: sandbox.path("repo"))
        try repository.addWorktree(at: sandbox.path("stays"), detachedAt: "v1.0.0")
        try repository.addWorktree(at: sandbox.path("vanishes"), detachedAt: "v2.0.0")
        try repository.addWorktree(at: sandbox.path("locked"), detachedAt: "v2.0.0", lock: true)
        try FileManager.default.removeItem(atPath: sandbox.path("vanishes"))
        try FileManager.default.removeItem(atPath: sandbox.path("locked"))

        let cli = try await cliList(sandbox).dropFirst().sorted { $0.path < $1.path }
        #expect(cli.map(\.path) == [sandbox.path("locked"), sandbox.path("stays"), sandbox.path("vanishes")])
        #expect(cli.map(\.prunable) == [false, false, true])
        #expect(cli.map(\.locked) == ["", nil, nil])
        let ours = try repository.worktrees()
        #expect(ours.map(\.name) == ["locked", "stays", "vanishes"])
        #expect(ours.map(\.isPrunable) == [false, false, true])
        #expect(ours.first?.isLocked == true)

        #expect(try repository.pruneWorktrees() == ["vanishes"])
        #expect(try await cliList(sandbox).dropFirst().map(\.path).sorted() == [sandbox.path("locked"), sandbox.path("stays")])
        #expect(try repository.worktrees().map(\.name) == ["locked", "stays"])
    }
}
