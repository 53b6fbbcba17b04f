import Foundation
import KhCore
import Testing

@testable import KhGit

/// One record of `git diff --numstat -z` joined with `--name-status -z`.
struct CLIFileStat: Equatable, CustomStringConvertible {
    var path: String
    var originalPath: String?
    var status: Character
    var insertions: Int?
    var deletions: Int?
    var description: String { "\(status) \(originalPath.map { "\($0) => " } ?? "")\(path) +\(insertions ?? -1) -\(deletions ?? -1)" }

    init(path: String, originalPath: String?, status: Character, insertions: Int?, deletions: Int?) {
        self.path = path
        self.originalPath = originalPath
        self.status = status
        self.insertions = insertions
        self.deletions = deletions
    }

    init(_ stat: GitFileStat) {
        self.init(
            path: stat.path, originalPath: stat.originalPath, status: stat.change.letter, insertions: stat.isBinary ? nil : stat.insertions,
            deletions: stat.isBinary ? nil : stat.deletions)
    }

    static func parse(numstat: String, nameStatus: String) -> [CLIFileStat] {
        var statuses: [String: Character] = [:]
        var fields = nameStatus.split(separator: "\0", omittingEmptySubsequences: false).map(String.init)[...]
        while let code = fields.popFirst(), let first = code.first {
            let path = fields.popFirst() ?? ""
            if first == "R" || first == "C" {
                statuses[fields.popFirst() ?? ""] = first
            } else {
                statuses[path] = first
            }
        }
        var records: [CLIFileStat] = []
        var numbers = numstat.split(separator: "\0", omittingEmptySubsequences: false).map(String.init)[...]
        while let head = numbers.popFirst(), !head.isEmpty {
            let parts = head.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            var path = parts[2]
            var original: String?
            if path.isEmpty {  // a rename: the two paths follow
                original = numbers.popFirst()
                path = numbers.popFirst() ?? ""
            }
            records.append(
                CLIFileStat(path: path, originalPath: original, status: statuses[path] ?? "?", insertions: Int(parts[0]), deletions: Int(parts[1])))
        }
        return records
    }
}

@Suite("Diff stat between two revisions, cross-checked with git diff --numstat")
struct DiffTests {
    @Test("every kind of change: counts, statuses, renames, binary, mode and type changes, totals equal git's")
    func matchesNumstat() async throws {
        let sandbox = GitSandbox()
        try await sandbox.makeRepository()
        let lines = (1...40).map { "line \($0) of a file with enough text to be similar\n" }.joined()
        try sandbox.write("repo/modified.txt", lines)
        try sandbox.write("repo/deleted.txt", "bye\nbye\n")
        try sandbox.write("repo/old-name.txt", lines)
        try sandbox.write("repo/src/moved.swift", "let a = 1\nlet b = 2\nlet c = 3\nlet d = 4\n")
        try sandbox.write("repo/unchanged.txt", "same\n")
        try sandbox.write("repo/script.sh", "echo hi\n")
        try sandbox.write("repo/becomes-link.txt", "target text\n")
        try Data([0, 1, 2, 3, 255, 0, 7]).write(to: URL(fileURLWithPath: sandbox.path("repo/blob.bin")))
        try await sandbox.commitAll("before")
        try await sandbox.git("tag", "before", in: "repo")

        var edited = lines.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        edited[3] = "changed line 4"
        edited.insert("inserted A", at: 10)
        edited.insert("inserted B", at: 11)
        edited.remove(at: 30)
        try sandbox.write("repo/modified.txt", edited.joined(separator: "\n"))
        try FileManager.default.removeItem(atPath: sandbox.path("repo/deleted.txt"))
        try FileManager.default.removeItem(atPath: sandbox.path("repo/old-name.txt"))
        try sandbox.write("repo/new-name.txt", lines.replacingOccurrences(of: "line 7 of", with: "line seven of"))
        try FileManager.default.createDirectory(atPath: sandbox.path("repo/lib"), withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: sandbox.path("repo/src/moved.swift"), toPath: sandbox.path("repo/lib/moved.swift"))
        try sandbox.write("repo/added.txt", "one\ntwo\nthree\n")
        try sandbox.write("repo/no-newline.txt", "no newline at end")
        #expect(chmod(sandbox.path("repo/script.sh"), 0o755) == 0)
        try FileManager.default.removeItem(atPath: sandbox.path("repo/becomes-link.txt"))
        try FileManager.default.createSymbolicLink(atPath: sandbox.path("repo/becomes-link.txt"), withDestinationPath: "unchanged.txt")
        try Data([0, 1, 2, 4, 255, 0, 7, 9]).write(to: URL(fileURLWithPath: sandbox.path("repo/blob.bin")))
        try await sandbox.commitAll("after")

        let repository = try Repository(at: sandbox.path("repo"))
        let stat = try repository.diffStat(from: "before", to: "HEAD")
        let cli = CLIFileStat.parse(
            numstat: try await sandbox.git("diff", "--numstat", "-z", "before", "HEAD", in: "repo"),
            nameStatus: try await sandbox.git("diff", "--name-status", "-z", "before", "HEAD", in: "repo"))
        #expect(stat.files.map(CLIFileStat.init) == cli)
        #expect(Set(stat.files.map(\.change)) == [.added, .deleted, .modified, .renamed, .typeChanged])

        let byPath = Dictionary(uniqueKeysWithValues: stat.files.map { ($0.path, $0) })
        #expect(byPath["modified.txt"].map { ($0.insertions, $0.deletions) }! == (3, 2))
        #expect(byPath["new-name.txt"]?.originalPath == "old-name.txt")
        #expect(byPath["lib/moved.swift"]?.originalPath == "src/moved.swift")
        #expect(byPath["blob.bin"]?.isBinary == true)
        #expect(byPath["script.sh"].map { ($0.change, $0.insertions, $0.deletions) }! == (.modified, 0, 0))
        #expect(byPath["deleted.txt"]?.change == .deleted)
        #expect(byPath["unchanged.txt"] == nil)

        let shortstat = try await sandbox.line("diff", "--shortstat", "before", "HEAD", in: "repo")
        #expect(stat.summary == shortstat)
        #expect(stat.filesChanged == cli.count)
        #expect(stat.insertions == cli.compactMap(\.insertions).reduce(0, +))
        #expect(stat.deletions == cli.compactMap(\.deletions).reduce(0, +))
    }

    @Test("the same revision twice: no files; reversed: insertions and deletions swap")
    func emptyAndReversed() async throws {
        let sandbox = GitSandbox()
        try await sandbox.makeRepository()
        try sandbox.write("repo/a.txt", "1\n2\n3\n")
        try await sandbox.commitAll("one")
        try sandbox.write("repo/a.txt", "1\nTWO\n3\n4\n")
        try await sandbox.commitAll("two")
        let repository = try Repository(at: sandbox.path("repo"))
        let none = try repository.diffStat(from: "HEAD", to: "HEAD")
        #expect(none.files.isEmpty && none.summary == "0 files changed, 0 insertions(+), 0 deletions(-)")
        let forward = try repository.diffStat(from: "HEAD~1", to: "HEAD")
        let backward = try repository.diffStat(from: "HEAD", to: "HEAD~1")
        #expect(forward.insertions == 2 && forward.deletions == 1)
        #expect(backward.insertions == 1 && backward.deletions == 2)
        #expect(forward.summary == (try await sandbox.line("diff", "--shortstat", "HEAD~1", "HEAD", in: "repo")))
        #expect(backward.summary == (try await sandbox.line("diff", "--shortstat", "HEAD", "HEAD~1", in: "repo")))
        let error = #expect(throws: GitError.self) { try repository.diffStat(from: "HEAD", to: "nope") }
        #expect(error?.reason == .notFound("nope"))
    }
}
