import Foundation
import KhCore
import Testing

@testable import KhGit

@Suite("Tags: semver order and latest match, cross-checked with git tag --sort=v:refname")
struct TagTests {
    /// A repository with one commit per tag; annotated and lightweight tags mixed, plus names that are not semver.
    func tagged(_ sandbox: GitSandbox, _ names: [String]) async throws -> [String: String] {
        try await sandbox.makeRepository()
        var commits: [String: String] = [:]
        for (index, name) in names.enumerated() {
            try sandbox.write("repo/version.txt", "\(name)\n")
            commits[name] = try await sandbox.commitAll("release \(name)")
            if index % 2 == 0 {
                try await sandbox.git("tag", name, in: "repo")
            } else {
                try await sandbox.git("tag", "-a", "-m", "annotated \(name)", name, in: "repo")
            }
        }
        return commits
    }

    @Test("v* tags in semver order equal git's version sort (pre-releases before releases), commits equal rev-parse TAG^{commit}")
    func orderMatchesGit() async throws {
        let sandbox = GitSandbox()
        let names = [
            "v1.10.0", "v1.2.0", "v1.10.0-rc.1", "v0.1.0", "v1.9.3", "v2.0.0-beta", "v1.2.10", "v1.2.9", "v10.0.0", "v2.0.0", "1.5.0",
            "latest", "release-2024", "v1.2", "vnext",
        ]
        let commits = try await tagged(sandbox, names)
        let repository = try Repository(at: sandbox.path("repo"))

        let cliAll = try await sandbox.git("tag", "--list", in: "repo").split(separator: "\n").map(String.init)
        #expect(try repository.tagNames() == cliAll)
        #expect(
            try repository.tagNames(matching: "v1.*")
                == (try await sandbox.git("tag", "--list", "v1.*", in: "repo")).split(separator: "\n").map(String.init))

        let ours = try repository.versionTags(matching: "v*")
        let gitSorted = try await sandbox.git("-c", "versionsort.suffix=-", "tag", "--sort=v:refname", "--list", "v*", in: "repo")
            .split(separator: "\n").map(String.init).filter { SemanticVersion($0) != nil }
        #expect(ours.map(\.name) == gitSorted)
        #expect(
            ours.map(\.name) == ["v0.1.0", "v1.2.0", "v1.2.9", "v1.2.10", "v1.9.3", "v1.10.0-rc.1", "v1.10.0", "v2.0.0-beta", "v2.0.0", "v10.0.0"])
        for tag in ours {
            #expect(tag.commit.hex == commits[tag.name])
            #expect(tag.commit.hex == (try await sandbox.line("rev-parse", "\(tag.name)^{commit}", in: "repo")))
        }
        // Without a glob the tag without a v joins; names that are not versions never do.
        let every = try repository.versionTags().map(\.name)
        #expect(every.contains("1.5.0") && !every.contains("latest") && !every.contains("v1.2") && !every.contains("vnext"))
        #expect(every.firstIndex(of: "1.5.0")! > every.firstIndex(of: "v1.2.10")! && every.firstIndex(of: "1.5.0")! < every.firstIndex(of: "v1.9.3")!)

        let latest = try #require(try repository.latestVersionTag(matching: "v*"))
        #expect(latest.name == gitSorted.last && latest.name == "v10.0.0")
        #expect(try repository.latestVersionTag(matching: "v2.*")?.name == "v2.0.0")
        #expect(try repository.latestVersionTag(matching: "v1.10*")?.name == "v1.10.0")
        #expect(try repository.latestVersionTag(matching: "v1.10.0-*")?.name == "v1.10.0-rc.1")
        #expect(try repository.latestVersionTag(matching: "v1.10.0-*", includePrereleases: false) == nil)
        #expect(try repository.latestVersionTag(matching: "nothing*") == nil)
    }

    @Test("semver cases git's version sort gets differently: numeric pre-release parts and the rules of §11")
    func semverWhereGitDiffers() async throws {
        let sandbox = GitSandbox()
        let names = ["v1.0.0", "v1.0.0-rc.10", "v1.0.0-rc.2", "v1.0.0-alpha", "v1.0.0-alpha.1", "v1.0.0-beta.11", "v1.0.0-beta.2", "v1.0.0-1"]
        _ = try await tagged(sandbox, names)
        let repository = try Repository(at: sandbox.path("repo"))
        #expect(
            try repository.versionTags(matching: "v*").map(\.name) == [
                "v1.0.0-1", "v1.0.0-alpha", "v1.0.0-alpha.1", "v1.0.0-beta.2", "v1.0.0-beta.11", "v1.0.0-rc.2", "v1.0.0-rc.10", "v1.0.0",
            ])
        #expect(try repository.latestVersionTag(matching: "v*", includePrereleases: true)?.name == "v1.0.0")
        try await sandbox.git("tag", "-d", "v1.0.0", in: "repo")
        #expect(try repository.latestVersionTag(matching: "v*")?.name == "v1.0.0-rc.10")
        #expect(try repository.latestVersionTag(matching: "v*", includePrereleases: false) == nil)
    }

    @Test("equal precedence is ordered by name; a version tag on a tree is left out")
    func tiesAndNonCommits() async throws {
        let sandbox = GitSandbox()
        _ = try await tagged(sandbox, ["v1.0.0", "1.0.0+build.2", "v0.9.0"])
        try await sandbox.git("tag", "v9.9.9", "HEAD^{tree}", in: "repo")
        let repository = try Repository(at: sandbox.path("repo"))
        #expect(try repository.tagNames().contains("v9.9.9"))
        #expect(try repository.versionTags().map(\.name) == ["v0.9.0", "1.0.0+build.2", "v1.0.0"])
        #expect(try repository.latestVersionTag()?.name == "v1.0.0")
    }
}
