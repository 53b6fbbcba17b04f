import CLibGit2
import Foundation
import KhCore

/// An open git repository (libgit2 `git_repository`), freed when the value is released.
///
/// Not `Sendable`: use one `Repository` from one task at a time (libgit2 objects of one
/// repository must not be used from two threads at once). Open another `Repository` on
/// the same path for work in another task.
public final class Repository {
    let pointer: OpaquePointer

    /// Opens the repository that contains `path`: the path itself, or the first parent
    /// folder that is a repository (like `git -C path`), unless `search` is false.
    ///
    /// Throws ``GitError`` with reason ``GitError/Reason/notARepository(path:)`` when no
    /// repository is found and ``GitError/Reason/notOwnedByCurrentUser(path:)`` when the
    /// one found belongs to another user.
    public init(at path: String, search: Bool = true) throws {
        try GitLibrary.ensureInitialized()
        let operation = "open repository at \(path)"
        guard FileManager.default.fileExists(atPath: path) else {
            throw GitError(reason: .notARepository(path: path), operation: operation, libraryMessage: "no such file or folder")
        }
        var raw: OpaquePointer?
        let flags = search ? 0 : GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue
        let code = call { git_repository_open_ext(&raw, path, flags, nil) }
        guard code >= 0, let raw else {
            var reason: GitError.Reason? = nil
            if code == GIT_EOWNER.rawValue {
                reason = .notOwnedByCurrentUser(path: path)
            } else if code == GIT_ENOTFOUND.rawValue {
                // libgit2 1.5.1 reports a repository owned by another user as "config value
                // 'safe.directory' was not found" (GIT_ENOTFOUND): look for that case on disk.
                reason =
                    Self.repositoryOwnedByAnotherUser(around: path, search: search).map { .notOwnedByCurrentUser(path: $0) }
                    ?? .notARepository(path: path)
            }
            throw GitError.fromLibrary(call: "git_repository_open_ext", code: code, context: operation, reason: reason)
        }
        pointer = raw
    }

    /// The folder of the repository that `path` is in when another user owns it (what
    /// libgit2's owner validation refuses), else nil.
    static func repositoryOwnedByAnotherUser(around path: String, search: Bool) -> String? {
        var folder = URL(fileURLWithPath: absolute(path)).standardizedFileURL
        let me = geteuid()
        func owner(_ candidate: String) -> uid_t? {
            var info = stat()
            return stat(candidate, &info) == 0 ? info.st_uid : nil
        }
        while true {
            let dotGit = folder.path == "/" ? "/.git" : folder.path + "/.git"
            let looksBare = owner(folder.path + "/HEAD") != nil && owner(folder.path + "/objects") != nil && owner(folder.path + "/refs") != nil
            if let uid = owner(dotGit) ?? (looksBare ? owner(folder.path) : nil) {
                return uid != me && GitLibrary.ownerValidation ? folder.path : nil
            }
            guard search, folder.path != "/" else { return nil }
            folder.deleteLastPathComponent()
        }
    }

    /// Takes ownership of an open `git_repository`.
    init(owning pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit { git_repository_free(pointer) }

    /// The `.git` folder (for a linked worktree, its folder under the main `.git/worktrees/`), with a trailing slash.
    public var gitDirectory: String { String(cString: git_repository_path(pointer)) }

    /// The folder shared by all worktrees (the main `.git` folder), with a trailing slash.
    public var commonDirectory: String { String(cString: git_repository_commondir(pointer)) }

    /// The working tree's root folder with a trailing slash; `nil` for a bare repository.
    public var workingDirectory: String? { git_repository_workdir(pointer).map { String(cString: $0) } }

    /// Whether the repository has no working tree.
    public var isBare: Bool { git_repository_is_bare(pointer) != 0 }

    /// Whether this repository is a linked worktree of another.
    public var isLinkedWorktree: Bool { git_repository_is_worktree(pointer) != 0 }

    // MARK: revisions

    /// The commit a revision names (`main`, `v1.2.0`, `HEAD~2`, an id or a prefix of one);
    /// annotated tags are peeled to their commit.
    public func commitID(_ revision: String) throws -> GitObjectID {
        try commit(revision).id
    }

    func commit(_ revision: String) throws -> CommitHandle {
        let operation = "resolve revision \(revision)"
        var object: OpaquePointer?
        let code = call { git_revparse_single(&object, pointer, revision) }
        guard code >= 0, let object else {
            let reason: GitError.Reason? =
                code == GIT_ENOTFOUND.rawValue ? .notFound(revision) : code == GIT_EAMBIGUOUS.rawValue ? .invalidArgument("ambiguous") : nil
            throw GitError.fromLibrary(call: "git_revparse_single", code: code, context: operation, reason: reason)
        }
        let owned = ObjectHandle(object, owner: self)
        var peeled: OpaquePointer?
        try check(git_object_peel(&peeled, owned.pointer, GIT_OBJECT_COMMIT), "git_object_peel", operation)
        return CommitHandle(peeled!, owner: self)
    }

    func commit(_ id: GitObjectID) throws -> CommitHandle {
        var oid = id.oid
        var raw: OpaquePointer?
        try check(git_commit_lookup(&raw, pointer, &oid), "git_commit_lookup", "look up commit \(id.short)")
        return CommitHandle(raw!, owner: self)
    }

    func tree(of commit: CommitHandle) throws -> TreeHandle {
        var raw: OpaquePointer?
        try check(git_commit_tree(&raw, commit.pointer), "git_commit_tree", "read the tree of \(commit.id.short)")
        return TreeHandle(raw!, owner: self)
    }

    func reference(named name: String) throws -> ReferenceHandle {
        var raw: OpaquePointer?
        try check(git_reference_lookup(&raw, pointer, name), "git_reference_lookup", "look up reference \(name)")
        return ReferenceHandle(raw!, owner: self)
    }

    // MARK: HEAD

    /// What HEAD points at: a branch and its commit, a detached commit, or an unborn branch.
    public func head() throws -> GitHead {
        let operation = "read HEAD"
        var raw: OpaquePointer?
        let code = call { git_repository_head(&raw, pointer) }
        if code == GIT_EUNBORNBRANCH.rawValue {
            let symbolic = try reference(named: "HEAD")
            let target = git_reference_symbolic_target(symbolic.pointer).map { String(cString: $0) } ?? ""
            let prefix = "refs/heads/"
            let short = target.hasPrefix(prefix) ? String(target.dropFirst(prefix.count)) : target
            return GitHead(branch: short, reference: target, commit: nil)
        }
        try checkResult(code, "git_repository_head", operation)
        let head = ReferenceHandle(raw!, owner: self)
        let detached = try check(git_repository_head_detached(pointer), "git_repository_head_detached", operation) == 1
        if detached { return GitHead(branch: nil, reference: nil, commit: head.target) }
        return GitHead(branch: head.shorthand, reference: head.name, commit: head.target)
    }

    // MARK: status

    /// The changes in the working tree and the index against HEAD, like `git status`
    /// (ignored files left out; renames between HEAD and the index detected), in git's order:
    /// changes to tracked files first, then untracked files, each sorted by path.
    ///
    /// - Parameters:
    ///   - includeUntracked: list untracked files (`??`).
    ///   - recurseUntrackedDirectories: list each untracked file inside an untracked folder
    ///     (like `git status -uall`) instead of the folder alone (`dir/`).
    public func status(includeUntracked: Bool = true, recurseUntrackedDirectories: Bool = false) throws -> GitStatus {
        let operation = "read the status of \(workingDirectory ?? gitDirectory)"
        guard !isBare else {
            throw GitError(reason: .invalidArgument("a bare repository has no working tree"), operation: operation)
        }
        var options = git_status_options()
        try check(git_status_options_init(&options, UInt32(GIT_STATUS_OPTIONS_VERSION)), "git_status_options_init", operation)
        options.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR
        var flags = GIT_STATUS_OPT_RENAMES_HEAD_TO_INDEX.rawValue | GIT_STATUS_OPT_SORT_CASE_SENSITIVELY.rawValue
        if includeUntracked { flags |= GIT_STATUS_OPT_INCLUDE_UNTRACKED.rawValue }
        if includeUntracked && recurseUntrackedDirectories { flags |= GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS.rawValue }
        options.flags = flags
        var raw: OpaquePointer?
        try check(git_status_list_new(&raw, pointer, &options), "git_status_list_new", operation)
        let list = StatusListHandle(raw!, owner: self)
        var entries: [GitStatusEntry] = []
        let count = git_status_list_entrycount(list.pointer)
        entries.reserveCapacity(count)
        for index in 0..<count {
            guard let entry = git_status_byindex(list.pointer, index)?.pointee else { continue }
            if let parsed = GitStatusEntry(entry) { entries.append(parsed) }
        }
        // git's order: changes to tracked files, then untracked files, each by path.
        entries.sort { a, b in
            let (aUntracked, bUntracked) = (a.unstaged == .untracked, b.unstaged == .untracked)
            return aUntracked != bUntracked ? bUntracked : a.path.utf8.lexicographicallyPrecedes(b.path.utf8)
        }
        return GitStatus(entries: entries)
    }
}

@available(*, unavailable)
extension Repository: Sendable {}

/// Where HEAD points.
public struct GitHead: Sendable, Equatable, Codable {
    /// The branch's short name (`main`), or `nil` when HEAD is detached.
    public var branch: String?
    /// The branch's full name (`refs/heads/main`), or `nil` when HEAD is detached.
    public var reference: String?
    /// The commit HEAD resolves to; `nil` on a branch with no commits yet.
    public var commit: GitObjectID?

    public init(branch: String?, reference: String?, commit: GitObjectID?) {
        self.branch = branch
        self.reference = reference
        self.commit = commit
    }

    /// Whether HEAD points at a commit directly instead of a branch.
    public var isDetached: Bool { branch == nil }
    /// Whether HEAD's branch has no commits yet.
    public var isUnborn: Bool { commit == nil }
}

/// One kind of change of a path.
public enum GitChange: String, Sendable, Codable, CaseIterable {
    case added, modified, deleted, renamed, copied, typeChanged, untracked, conflicted

    /// The letter `git status --porcelain` and `git diff --name-status` use.
    public var letter: Character {
        switch self {
        case .added: "A"
        case .modified: "M"
        case .deleted: "D"
        case .renamed: "R"
        case .copied: "C"
        case .typeChanged: "T"
        case .untracked: "?"
        case .conflicted: "U"
        }
    }
}

/// One changed path of ``GitStatus``.
public struct GitStatusEntry: Sendable, Equatable, Codable {
    /// The path relative to the working tree root (the new path of a rename). An untracked folder ends with `/`.
    public var path: String
    /// The path before a rename staged in the index.
    public var originalPath: String?
    /// The change between HEAD and the index (staged), if any.
    public var staged: GitChange?
    /// The change between the index and the working tree (unstaged or untracked), if any.
    public var unstaged: GitChange?

    public init(path: String, originalPath: String? = nil, staged: GitChange?, unstaged: GitChange?) {
        self.path = path
        self.originalPath = originalPath
        self.staged = staged
        self.unstaged = unstaged
    }

    /// The two status letters of `git status --porcelain=v1` (`M `, ` M`, `AM`, `R `, `??` …).
    public var porcelain: String {
        switch (staged, unstaged) {
        case (_, .untracked?): return "??"
        case (.conflicted?, _), (_, .conflicted?): return "UU"
        default: return String(staged?.letter ?? " ") + String(unstaged?.letter ?? " ")
        }
    }

    /// The change a person would name first: the staged one, else the unstaged one.
    public var change: GitChange { staged ?? unstaged ?? .modified }

    init?(_ entry: git_status_entry) {
        let flags = entry.status.rawValue
        func has(_ flag: git_status_t) -> Bool { flags & flag.rawValue != 0 }
        if has(GIT_STATUS_IGNORED) || flags == 0 { return nil }
        let headToIndex = entry.head_to_index?.pointee
        let indexToWorkdir = entry.index_to_workdir?.pointee
        func path(_ file: git_diff_file) -> String? { file.path.map { String(cString: $0) } }

        if has(GIT_STATUS_CONFLICTED) {
            staged = .conflicted
            unstaged = .conflicted
        } else {
            staged =
                has(GIT_STATUS_INDEX_NEW)
                ? .added
                : has(GIT_STATUS_INDEX_RENAMED)
                    ? .renamed
                    : has(GIT_STATUS_INDEX_DELETED)
                        ? .deleted : has(GIT_STATUS_INDEX_TYPECHANGE) ? .typeChanged : has(GIT_STATUS_INDEX_MODIFIED) ? .modified : nil
            unstaged =
                has(GIT_STATUS_WT_NEW)
                ? .untracked
                : has(GIT_STATUS_WT_DELETED)
                    ? .deleted
                    : has(GIT_STATUS_WT_TYPECHANGE)
                        ? .typeChanged : has(GIT_STATUS_WT_MODIFIED) || has(GIT_STATUS_WT_UNREADABLE) ? .modified : nil
        }
        if staged == .renamed, let headToIndex {
            self.path = path(headToIndex.new_file) ?? ""
            self.originalPath = path(headToIndex.old_file)
        } else {
            let file = indexToWorkdir?.new_file ?? headToIndex?.new_file
            guard let file, let name = path(file) else { return nil }
            self.path = name
            self.originalPath = nil
        }
    }
}

/// The changed paths of a working tree (see ``Repository/status(includeUntracked:recurseUntrackedDirectories:)``).
public struct GitStatus: Sendable, Equatable, Codable {
    /// The changed paths in `git status` order: tracked files' changes, then untracked files, each by path (byte order).
    public var entries: [GitStatusEntry]

    public init(entries: [GitStatusEntry]) { self.entries = entries }

    /// Whether nothing is staged, modified, deleted or untracked.
    public var isClean: Bool { entries.isEmpty }
    /// Every changed path (the new path of a rename).
    public var paths: [String] { entries.map(\.path) }
}
