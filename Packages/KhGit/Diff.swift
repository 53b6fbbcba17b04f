import CLibGit2

/// One changed file of a ``GitDiffStat``.
public struct GitFileStat: Sendable, Equatable, Codable {
    /// The path in the newer revision (for a deletion, the removed path).
    public var path: String
    /// The path in the older revision when the file was renamed.
    public var originalPath: String?
    /// How the file changed.
    public var change: GitChange
    /// Lines added (0 for a binary file).
    public var insertions: Int
    /// Lines removed (0 for a binary file).
    public var deletions: Int
    /// Whether git treats the file as binary (`git diff --numstat` shows `-` for its counts).
    public var isBinary: Bool

    public init(path: String, originalPath: String? = nil, change: GitChange, insertions: Int, deletions: Int, isBinary: Bool = false) {
        self.path = path
        self.originalPath = originalPath
        self.change = change
        self.insertions = insertions
        self.deletions = deletions
        self.isBinary = isBinary
    }
}

/// The files changed between two revisions, like `git diff --stat A B`.
public struct GitDiffStat: Sendable, Equatable, Codable {
    /// The changed files in the order git lists them (by path).
    public var files: [GitFileStat]

    public init(files: [GitFileStat]) { self.files = files }

    /// How many files changed.
    public var filesChanged: Int { files.count }
    /// Lines added in all files.
    public var insertions: Int { files.reduce(0) { $0 + $1.insertions } }
    /// Lines removed in all files.
    public var deletions: Int { files.reduce(0) { $0 + $1.deletions } }
    /// The summary line of `git diff --stat`: `3 files changed, 10 insertions(+), 2 deletions(-)`.
    public var summary: String {
        var parts = ["\(filesChanged) file\(filesChanged == 1 ? "" : "s") changed"]
        if insertions > 0 || deletions == 0 { parts.append("\(insertions) insertion\(insertions == 1 ? "" : "s")(+)") }
        if deletions > 0 || insertions == 0 { parts.append("\(deletions) deletion\(deletions == 1 ? "" : "s")(-)") }
        return parts.joined(separator: ", ")
    }
}

extension Repository {
    /// The files changed from revision `from` to revision `to` (tags, branches, ids …),
    /// with line counts and renames detected (50% similarity, as git's default), like
    /// `git diff --numstat --find-renames from to`.
    public func diffStat(from: String, to: String) throws -> GitDiffStat {
        let operation = "diff \(from)..\(to)"
        let old = try tree(of: commit(from))
        let new = try tree(of: commit(to))
        var options = git_diff_options()
        try check(git_diff_options_init(&options, UInt32(GIT_DIFF_OPTIONS_VERSION)), "git_diff_options_init", operation)
        // A file that became a symbolic link is one "T" record, as git shows it, not a deletion and an addition.
        options.flags = GIT_DIFF_INCLUDE_TYPECHANGE.rawValue
        var raw: OpaquePointer?
        try check(git_diff_tree_to_tree(&raw, pointer, old.pointer, new.pointer, &options), "git_diff_tree_to_tree", operation)
        let diff = DiffHandle(raw!, owner: self)
        var find = git_diff_find_options()
        try check(git_diff_find_options_init(&find, UInt32(GIT_DIFF_FIND_OPTIONS_VERSION)), "git_diff_find_options_init", operation)
        find.flags = GIT_DIFF_FIND_RENAMES.rawValue
        try check(git_diff_find_similar(diff.pointer, &find), "git_diff_find_similar", operation)

        var files: [GitFileStat] = []
        let count = git_diff_num_deltas(diff.pointer)
        files.reserveCapacity(count)
        for index in 0..<count {
            var rawPatch: OpaquePointer?
            try check(git_patch_from_diff(&rawPatch, diff.pointer, index), "git_patch_from_diff", operation)
            guard let rawPatch else { continue }  // an unchanged delta has no patch
            let patch = PatchHandle(rawPatch, keeping: [diff])
            guard let delta = git_patch_get_delta(patch.pointer)?.pointee else { continue }
            let change: GitChange
            switch delta.status {
            case GIT_DELTA_ADDED: change = .added
            case GIT_DELTA_DELETED: change = .deleted
            case GIT_DELTA_RENAMED: change = .renamed
            case GIT_DELTA_COPIED: change = .copied
            case GIT_DELTA_TYPECHANGE: change = .typeChanged
            case GIT_DELTA_MODIFIED: change = .modified
            default: continue
            }
            var context = 0
            var insertions = 0
            var deletions = 0
            var binary = delta.flags & GIT_DIFF_FLAG_BINARY.rawValue != 0
            if change == .typeChanged {
                // libgit2 gives a type change no lines; git counts the old content removed and the new added.
                (insertions, deletions, binary) = try typeChangeLines(delta, operation: operation)
            } else {
                try check(git_patch_line_stats(&context, &insertions, &deletions, patch.pointer), "git_patch_line_stats", operation)
            }
            let newPath = delta.new_file.path.map { String(cString: $0) } ?? ""
            let oldPath = delta.old_file.path.map { String(cString: $0) } ?? newPath
            files.append(
                GitFileStat(
                    path: change == .deleted ? oldPath : newPath, originalPath: change == .renamed || change == .copied ? oldPath : nil,
                    change: change, insertions: insertions, deletions: deletions, isBinary: binary))
        }
        return GitDiffStat(files: files)
    }

    /// Lines removed and added when a file changes type (file ⇄ symbolic link): the whole old
    /// content against the whole new one, as git counts it.
    private func typeChangeLines(_ delta: git_diff_delta, operation: String) throws -> (Int, Int, Bool) {
        func blob(_ file: git_diff_file) throws -> BlobHandle? {
            guard file.mode != GIT_FILEMODE_COMMIT.rawValue, git_oid_is_zero([file.id]) == 0 else { return nil }
            var id = file.id
            var raw: OpaquePointer?
            try check(git_blob_lookup(&raw, pointer, &id), "git_blob_lookup", operation)
            return BlobHandle(raw!, owner: self)
        }
        let old = try blob(delta.old_file)
        let new = try blob(delta.new_file)
        var rawPatch: OpaquePointer?
        try check(
            git_patch_from_blobs(&rawPatch, old?.pointer, delta.old_file.path, new?.pointer, delta.new_file.path, nil), "git_patch_from_blobs",
            operation)
        guard let rawPatch else { return (0, 0, false) }
        let patch = PatchHandle(rawPatch, keeping: [old, new].compactMap { $0 })
        let binary = (git_patch_get_delta(patch.pointer)?.pointee.flags ?? 0) & GIT_DIFF_FLAG_BINARY.rawValue != 0
        var context = 0
        var insertions = 0
        var deletions = 0
        try check(git_patch_line_stats(&context, &insertions, &deletions, patch.pointer), "git_patch_line_stats", operation)
        return (insertions, deletions, binary)
    }
}
