import CLibGit2
import Glibc

/// A tag whose name is a semantic version.
public struct GitVersionTag: Sendable, Hashable, Codable {
    /// The tag's short name (`v1.10.0`).
    public var name: String
    /// The version its name spells.
    public var version: SemanticVersion
    /// The commit it points at (annotated tags peeled).
    public var commit: GitObjectID

    public init(name: String, version: SemanticVersion, commit: GitObjectID) {
        self.name = name
        self.version = version
        self.commit = commit
    }
}

extension Repository {
    /// The names of all tags, optionally only those matching a shell glob (`fnmatch`,
    /// such as `v*`), in byte order like `git tag --list`.
    public func tagNames(matching glob: String? = nil) throws -> [String] {
        let names = StringArray()
        try check(git_tag_list(&names.raw, pointer), "git_tag_list", "list tags")
        var result = names.strings
        if let glob { result = result.filter { fnmatch(glob, $0, 0) == 0 } }
        return result.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// The tags whose names are semantic versions (a leading `v` allowed), oldest first by
    /// semver precedence; names that are not semantic versions and tags that do not point
    /// at a commit are left out. Tags of equal precedence (`v1.0.0` and `1.0.0+build.2`)
    /// are ordered by name.
    ///
    /// - Parameter glob: keep only names matching this shell glob (`fnmatch`), such as `v*`.
    public func versionTags(matching glob: String? = nil) throws -> [GitVersionTag] {
        let candidates = try tagNames(matching: glob).compactMap { name in SemanticVersion(name).map { (name, $0) } }
        let sorted = candidates.sorted { a, b in
            a.1 != b.1 ? a.1 < b.1 : a.0.utf8.lexicographicallyPrecedes(b.0.utf8)
        }
        return try sorted.compactMap { name, version in
            guard let commit = try peeledCommit(ofTag: name) else { return nil }
            return GitVersionTag(name: name, version: version, commit: commit)
        }
    }

    /// The tag with the highest semver precedence among those matching `glob`, or `nil`
    /// when none does.
    ///
    /// - Parameters:
    ///   - glob: a shell glob (`fnmatch`) such as `v*`.
    ///   - includePrereleases: when false, `v2.0.0-rc.1` cannot be the answer.
    public func latestVersionTag(matching glob: String = "*", includePrereleases: Bool = true) throws -> GitVersionTag? {
        let candidates = try tagNames(matching: glob).compactMap { name in SemanticVersion(name).map { (name, $0) } }
            .filter { includePrereleases || !$0.1.isPrerelease }
            .sorted { a, b in a.1 != b.1 ? a.1 > b.1 : b.0.utf8.lexicographicallyPrecedes(a.0.utf8) }
        for (name, version) in candidates {
            if let commit = try peeledCommit(ofTag: name) { return GitVersionTag(name: name, version: version, commit: commit) }
        }
        return nil
    }

    /// The commit a tag points at, or nil when it points at a tree or blob.
    private func peeledCommit(ofTag name: String) throws -> GitObjectID? {
        let operation = "resolve tag \(name)"
        var id = git_oid()
        try check(git_reference_name_to_id(&id, pointer, "refs/tags/" + name), "git_reference_name_to_id", operation)
        var object: OpaquePointer?
        try check(git_object_lookup(&object, pointer, &id, GIT_OBJECT_ANY), "git_object_lookup", operation)
        let owned = ObjectHandle(object!, owner: self)
        var peeled: OpaquePointer?
        let code = call { git_object_peel(&peeled, owned.pointer, GIT_OBJECT_COMMIT) }
        if code == GIT_EPEEL.rawValue || code == GIT_EINVALIDSPEC.rawValue || code == GIT_ENOTFOUND.rawValue {
            git_error_clear()
            return nil
        }
        try checkResult(code, "git_object_peel", operation)
        return ObjectHandle(peeled!, owner: self).id
    }
}
