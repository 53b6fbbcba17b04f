import CLibGit2
import Foundation

/// A linked worktree of a repository, as `git worktree list --porcelain` describes it.
public struct GitWorktree: Sendable, Equatable, Codable {
    /// Its name: the folder under `.git/worktrees/`.
    public var name: String
    /// The working tree's root folder (no trailing slash), as recorded by git.
    public var path: String
    /// Where its HEAD points (a branch or a detached commit). `nil` when it cannot be read.
    public var head: GitHead?
    /// Whether it is locked, and why (an empty reason when none was given).
    public var lockReason: String?
    /// Whether `git worktree prune` would remove it: its working tree is gone and it is not locked.
    public var isPrunable: Bool

    public init(name: String, path: String, head: GitHead?, lockReason: String?, isPrunable: Bool) {
        self.name = name
        self.path = path
        self.head = head
        self.lockReason = lockReason
        self.isPrunable = isPrunable
    }

    /// Whether it is locked against pruning.
    public var isLocked: Bool { lockReason != nil }
}

extension Repository {
    /// Adds a linked worktree at `path` with HEAD detached at `revision` (a tag, branch,
    /// commit id …), like `git worktree add --detach PATH REVISION`.
    ///
    /// libgit2 1.5 cannot add a detached worktree (its `git_worktree_add` checks out a
    /// branch, and checks every other worktree for that branch), so this writes the
    /// administrative files the way git does (gitrepository-layout(5): `.git/worktrees/NAME/`
    /// with `gitdir`, `commondir`, `HEAD` holding the commit id, and a `locked` file saying
    /// "initializing" until the checkout is done, so a concurrent prune leaves it alone; the
    /// working tree's `.git` file points back), then opens the new worktree and checks the
    /// commit out there with a forced checkout (the folder is new, nothing can be
    /// overwritten), which writes its index. On failure it removes what it made. `path`
    /// must not exist, or be an empty folder.
    ///
    /// - Parameters:
    ///   - path: the new working tree's folder.
    ///   - revision: what to check out.
    ///   - name: the worktree's name; by default the last component of `path` (as git does),
    ///     made unique with a number when taken.
    ///   - lock: lock the new worktree (like `git worktree add --lock`).
    /// - Returns: the new worktree.
    @discardableResult
    public func addWorktree(at path: String, detachedAt revision: String, name: String? = nil, lock: Bool = false) throws -> GitWorktree {
        let operation = "add worktree at \(path) detached at \(revision)"
        let commitID = try self.commit(revision).id
        let requested = Self.absolute(path)
        if let name, name.isEmpty || name.contains("/") || name == "." || name == ".." {
            throw GitError(reason: .invalidArgument("worktree name \"\(name)\": expected one path component"), operation: operation)
        }
        var isDirectory: ObjCBool = false
        var madeFolder = false
        if FileManager.default.fileExists(atPath: requested, isDirectory: &isDirectory) {
            let empty = isDirectory.boolValue && ((try? FileManager.default.contentsOfDirectory(atPath: requested))?.isEmpty ?? false)
            guard empty else { throw GitError(reason: .alreadyExists(requested), operation: operation) }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: requested, withIntermediateDirectories: true)
            } catch {
                throw GitError(reason: .library, operation: operation, call: "mkdir", libraryMessage: "\(requested): \(error.localizedDescription)")
            }
            madeFolder = true
        }
        // git records the real path (symbolic links resolved) of both folders.
        let worktreePath = Self.realPath(requested)
        let worktreeName = try name ?? uniqueWorktreeName(for: worktreePath)
        let adminRoot = Self.realPath(commonDirectory) + "/worktrees"
        let admin = adminRoot + "/" + worktreeName
        if mkdir(adminRoot, 0o755) != 0 && errno != EEXIST {
            throw Self.systemError("mkdir", adminRoot, operation: operation)
        }
        guard mkdir(admin, 0o755) == 0 else {
            let failure = errno == EEXIST ? GitError(reason: .alreadyExists(admin), operation: operation) : Self.systemError("mkdir", admin, operation: operation)
            if madeFolder { try? FileManager.default.removeItem(atPath: requested) }
            throw failure
        }
        do {
            try Self.writeFile(admin + "/locked", "initializing\n", operation: operation)
            try Self.writeFile(admin + "/commondir", "../..\n", operation: operation)
            try Self.writeFile(admin + "/HEAD", commitID.hex + "\n", operation: operation)
            try Self.writeFile(admin + "/gitdir", worktreePath + "/.git\n", operation: operation)
            try Self.writeFile(worktreePath + "/.git", "gitdir: \(admin)\n", operation: operation)

            let linked = try Repository(at: worktreePath, search: false)
            let commit = try linked.commit(commitID)
            var options = git_checkout_options()
            try check(git_checkout_options_init(&options, UInt32(GIT_CHECKOUT_OPTIONS_VERSION)), "git_checkout_options_init", operation)
            // A new, empty folder: FORCE writes every file without comparing against a baseline.
            options.checkout_strategy = GIT_CHECKOUT_FORCE.rawValue
            // Without any attributes file or core.autocrlf no filter can change a file, so skip
            // the per-file attribute lookups (each resolves the file's real path). The search
            // runs in the new worktree's repository, whose object cache the checkout then reads.
            options.disable_filters = try linked.filtersMayApply(to: commit, operation: operation) ? 0 : 1
            try check(git_checkout_tree(linked.pointer, commit.pointer, &options), "git_checkout_tree", operation)
            if lock {
                try Self.writeFile(admin + "/locked", "", operation: operation)
            } else if unlink(admin + "/locked") != 0 {
                throw Self.systemError("unlink", admin + "/locked", operation: operation)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: admin)
            if madeFolder {
                try? FileManager.default.removeItem(atPath: requested)
            } else if let leftovers = try? FileManager.default.contentsOfDirectory(atPath: requested) {
                for entry in leftovers { try? FileManager.default.removeItem(atPath: requested + "/" + entry) }
            }
            throw error
        }
        return GitWorktree(
            name: worktreeName, path: worktreePath, head: GitHead(branch: nil, reference: nil, commit: commitID),
            lockReason: lock ? "" : nil, isPrunable: false)
    }

    /// The linked worktrees, sorted by name. The main working tree is not listed: it is
    /// ``workingDirectory`` of the main repository.
    public func worktrees() throws -> [GitWorktree] {
        let names = StringArray()
        try check(git_worktree_list(&names.raw, pointer), "git_worktree_list", "list worktrees")
        return try names.strings.sorted().map { try worktree(named: $0) }
    }

    /// One linked worktree by name.
    public func worktree(named name: String) throws -> GitWorktree {
        let handle = try lookupWorktree(name)
        let operation = "read worktree \(name)"
        let reasonBuffer = Buffer()
        let locked = try check(git_worktree_is_locked(&reasonBuffer.raw, handle.pointer), "git_worktree_is_locked", operation) > 0
        var prune = git_worktree_prune_options()
        try check(git_worktree_prune_options_init(&prune, UInt32(GIT_WORKTREE_PRUNE_OPTIONS_VERSION)), "git_worktree_prune_options_init", operation)
        let prunable = git_worktree_is_prunable(handle.pointer, &prune) > 0
        git_error_clear()
        return GitWorktree(
            name: name, path: Self.trimmed(handle.path), head: try? worktreeHead(name),
            lockReason: locked ? Self.trimmedReason(reasonBuffer.string) : nil,
            isPrunable: prunable)
    }

    /// Removes a linked worktree: its working tree folder and its administrative data, like
    /// `git worktree remove`.
    ///
    /// Refuses, unless `force`, when the worktree is locked or has uncommitted changes or
    /// untracked files (ignored files do not count). A worktree whose folder is already
    /// gone is pruned.
    public func removeWorktree(named name: String, force: Bool = false) throws {
        let operation = "remove worktree \(name)"
        let handle = try lookupWorktree(name)
        if !force {
            let reasonBuffer = Buffer()
            if try check(git_worktree_is_locked(&reasonBuffer.raw, handle.pointer), "git_worktree_is_locked", operation) > 0 {
                throw GitError(reason: .locked(name: name, reason: Self.trimmedReason(reasonBuffer.string)), operation: operation)
            }
            if git_worktree_validate(handle.pointer) == 0 {
                var rawRepository: OpaquePointer?
                try check(git_repository_open_from_worktree(&rawRepository, handle.pointer), "git_repository_open_from_worktree", operation)
                let status = try Repository(owning: rawRepository!).status()
                if !status.isClean { throw GitError(reason: .uncommittedChanges(paths: status.paths), operation: operation) }
            }
            git_error_clear()
        }
        var prune = git_worktree_prune_options()
        try check(git_worktree_prune_options_init(&prune, UInt32(GIT_WORKTREE_PRUNE_OPTIONS_VERSION)), "git_worktree_prune_options_init", operation)
        prune.flags = GIT_WORKTREE_PRUNE_VALID.rawValue | GIT_WORKTREE_PRUNE_WORKING_TREE.rawValue
        if force { prune.flags |= GIT_WORKTREE_PRUNE_LOCKED.rawValue }
        try check(git_worktree_prune(handle.pointer, &prune), "git_worktree_prune", operation)
    }

    /// Removes the administrative data of every prunable worktree (folder gone, not
    /// locked), like `git worktree prune`. Returns the names pruned.
    @discardableResult
    public func pruneWorktrees() throws -> [String] {
        var pruned: [String] = []
        for worktree in try worktrees() where worktree.isPrunable {
            let handle = try lookupWorktree(worktree.name)
            var prune = git_worktree_prune_options()
            try check(git_worktree_prune_options_init(&prune, UInt32(GIT_WORKTREE_PRUNE_OPTIONS_VERSION)), "git_worktree_prune_options_init", "prune")
            try check(git_worktree_prune(handle.pointer, &prune), "git_worktree_prune", "prune worktree \(worktree.name)")
            pruned.append(worktree.name)
        }
        return pruned
    }

    // MARK: helpers

    func lookupWorktree(_ name: String) throws -> WorktreeHandle {
        var raw: OpaquePointer?
        let code = call { git_worktree_lookup(&raw, pointer, name) }
        guard code >= 0, let raw else {
            throw GitError.fromLibrary(
                call: "git_worktree_lookup", code: code, context: "look up worktree \(name)", reason: .notFound("worktree \(name)"),
                fallbackMessage: "no worktree named \(name) in \(commonDirectory)worktrees")
        }
        return WorktreeHandle(raw, owner: self)
    }

    private func worktreeHead(_ name: String) throws -> GitHead {
        var raw: OpaquePointer?
        try check(git_repository_head_for_worktree(&raw, pointer, name), "git_repository_head_for_worktree", "read HEAD of worktree \(name)")
        let reference = ReferenceHandle(raw!, owner: self)
        let detached = git_repository_head_detached_for_worktree(pointer, name) == 1
        if detached { return GitHead(branch: nil, reference: nil, commit: reference.target) }
        return GitHead(branch: reference.shorthand, reference: reference.name, commit: reference.target)
    }

    /// Whether checking out `commit` could run a filter (crlf, ident, or one named by a
    /// `filter` attribute): true when an attributes file exists at any level libgit2 reads
    /// (system, core.attributesFile or the XDG default, info/attributes, a `.gitattributes`
    /// anywhere in the commit's tree) or core.autocrlf is set to anything but false.
    func filtersMayApply(to commit: CommitHandle, operation: String) throws -> Bool {
        var rawConfig: OpaquePointer?
        try check(git_repository_config_snapshot(&rawConfig, pointer), "git_repository_config_snapshot", operation)
        let config = ConfigHandle(rawConfig!, owner: self)
        if let autocrlf = config.string("core.autocrlf"), !["false", "no", "off", "0", ""].contains(autocrlf.lowercased()) { return true }
        if config.string("core.attributesFile") != nil { return true }
        let fileManager = FileManager.default
        if fileManager.fileExists(atPath: commonDirectory + "info/attributes") { return true }
        for (level, name) in [(GIT_CONFIG_LEVEL_SYSTEM, "gitattributes"), (GIT_CONFIG_LEVEL_XDG, "attributes")] {
            let buffer = Buffer()
            try check(kh_git_get_config_search_path(level, &buffer.raw), "git_libgit2_opts(GIT_OPT_GET_SEARCH_PATH)", operation)
            for folder in buffer.string.split(separator: ":") where fileManager.fileExists(atPath: folder + "/" + name) { return true }
        }
        return try treeHasAttributesFile(try tree(of: commit), operation: operation)
    }

    /// Whether a `.gitattributes` entry exists anywhere in the tree.
    private func treeHasAttributesFile(_ tree: TreeHandle, operation: String) throws -> Bool {
        final class Search {
            var found = false
        }
        let search = Search()
        let code = withExtendedLifetime(search) {
            call {
                git_tree_walk(
                    tree.pointer, GIT_TREEWALK_PRE,
                    { _, entry, payload in
                        guard let entry, let name = git_tree_entry_name(entry) else { return 0 }
                        guard strcmp(name, ".gitattributes") == 0 else { return 0 }
                        Unmanaged<Search>.fromOpaque(payload!).takeUnretainedValue().found = true
                        return GIT_EUSER.rawValue  // stop the walk
                    }, Unmanaged.passUnretained(search).toOpaque())
            }
        }
        if search.found {
            git_error_clear()
            return true
        }
        try checkResult(code, "git_tree_walk", operation)
        return false
    }

    private func uniqueWorktreeName(for path: String) throws -> String {
        let base = URL(fileURLWithPath: path).lastPathComponent
        let taken = Set(FileManager.default.fileExists(atPath: commonDirectory + "worktrees") ? try worktreeNames() : [])
        var valid: Int32 = 0
        let cleaned = git_branch_name_is_valid(&valid, base) == 0 && valid == 1 && !base.isEmpty ? base : "worktree"
        if !taken.contains(cleaned) { return cleaned }
        var number = 1
        while taken.contains("\(cleaned)\(number)") { number += 1 }
        return "\(cleaned)\(number)"
    }

    private func worktreeNames() throws -> [String] {
        let names = StringArray()
        try check(git_worktree_list(&names.raw, pointer), "git_worktree_list", "list worktrees")
        return names.strings
    }

    /// `path` with symbolic links resolved (itself when that fails), no trailing slash.
    static func realPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return trimmed(path) }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Writes a small administrative file the way git does (created or truncated, mode 0666 &
    /// ~umask). Not `AtomicFile`: git neither renames nor syncs these, and the `locked` file
    /// keeps a half-made worktree from being pruned; an fsync per file would add disk waits
    /// that `git worktree add` does not have.
    static func writeFile(_ path: String, _ text: String, operation: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else { throw systemError("open", path, operation: operation) }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw systemError("write", path, operation: operation) }
    }

    /// A failed system call on `path`, with errno's message.
    static func systemError(_ call: String, _ path: String, operation: String) -> GitError {
        GitError(reason: .library, operation: operation, call: call, libraryMessage: "\(path): \(String(cString: strerror(errno)))")
    }

    static func absolute(_ path: String) -> String {
        let url =
            path.hasPrefix("/")
            ? URL(fileURLWithPath: path) : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(path)
        return url.standardizedFileURL.path
    }

    /// git writes the reason with a newline and prints it without.
    static func trimmedReason(_ text: String) -> String {
        text.trimmingCharacters(in: .newlines)
    }

    static func trimmed(_ path: String) -> String {
        path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }
}
