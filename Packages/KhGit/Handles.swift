import CLibGit2

/// A git object id (SHA-1), as 40 lowercase hexadecimal digits.
public struct GitObjectID: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    /// The 40 hexadecimal digits.
    public let hex: String

    /// An id from its 40 hexadecimal digits; `nil` when `hex` is not one.
    public init?(hex: String) {
        let lower = hex.lowercased()
        guard lower.utf8.count == 40, lower.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else { return nil }
        self.hex = lower
    }

    init(_ oid: UnsafePointer<git_oid>) {
        var buffer = [CChar](repeating: 0, count: 41)
        git_oid_tostr(&buffer, 41, oid)
        hex = String(decoding: buffer.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    init(_ oid: git_oid) {
        var copy = oid
        self.init(&copy)
    }

    /// The first 7 digits, as `git log --oneline` shows them.
    public var short: String { String(hex.prefix(7)) }
    public var description: String { hex }
    public static func < (lhs: GitObjectID, rhs: GitObjectID) -> Bool { lhs.hex < rhs.hex }

    var oid: git_oid {
        var oid = git_oid()
        _ = git_oid_fromstrn(&oid, hex, hex.utf8.count)
        return oid
    }
}

// One class owns every libgit2 handle and frees it in deinit with its kind's free
// function. Handles that belong to a repository keep the owning `Repository` alive, so
// it is freed last. None is Sendable: libgit2 objects of one repository must be used
// from one thread at a time.

/// A kind of libgit2 handle: the function that frees it.
protocol GitHandleKind {
    static func free(_ pointer: OpaquePointer)
}

/// An owned libgit2 handle of one kind.
final class GitHandle<Kind: GitHandleKind> {
    let pointer: OpaquePointer
    /// What must outlive the handle: its repository, or a patch's diff or blobs.
    let sources: [AnyObject]

    init(_ pointer: OpaquePointer, owner: Repository) {
        self.pointer = pointer
        self.sources = [owner]
    }

    init(_ pointer: OpaquePointer, keeping sources: [AnyObject]) {
        self.pointer = pointer
        self.sources = sources
    }

    deinit { Kind.free(pointer) }
}

enum ReferenceKind: GitHandleKind { static func free(_ p: OpaquePointer) { git_reference_free(p) } }
enum ObjectKind: GitHandleKind { static func free(_ p: OpaquePointer) { git_object_free(p) } }
enum CommitKind: GitHandleKind { static func free(_ p: OpaquePointer) { git_commit_free(p) } }
enum TreeKind: GitHandleKind { static func free(_ p: OpaquePointer) { git_tree_free(p) } }
enum BlobKind: GitHandleKind { static func free(_ p: OpaquePointer) { git_blob_free(p) } }
enum DiffKind: GitHandleKind { static func free(_ p: OpaquePointer) { git_diff_free(p) } }
enum PatchKind: GitHandleKind { static func free(_ p: OpaquePointer) { git_patch_free(p) } }
enum StatusListKind: GitHandleKind { static func free(_ p: OpaquePointer) { git_status_list_free(p) } }
enum RemoteKind: GitHandleKind { static func free(_ p: OpaquePointer) { git_remote_free(p) } }
enum WorktreeKind: GitHandleKind { static func free(_ p: OpaquePointer) { git_worktree_free(p) } }
enum ConfigKind: GitHandleKind { static func free(_ p: OpaquePointer) { git_config_free(p) } }

/// An owned `git_reference`.
typealias ReferenceHandle = GitHandle<ReferenceKind>
/// An owned `git_object` (any type).
typealias ObjectHandle = GitHandle<ObjectKind>
/// An owned `git_commit`.
typealias CommitHandle = GitHandle<CommitKind>
/// An owned `git_tree`.
typealias TreeHandle = GitHandle<TreeKind>
/// An owned `git_blob`.
typealias BlobHandle = GitHandle<BlobKind>
/// An owned `git_diff`.
typealias DiffHandle = GitHandle<DiffKind>
/// An owned `git_patch`; keeps its diff (or blobs) alive.
typealias PatchHandle = GitHandle<PatchKind>
/// An owned `git_status_list`.
typealias StatusListHandle = GitHandle<StatusListKind>
/// An owned `git_remote`.
typealias RemoteHandle = GitHandle<RemoteKind>
/// An owned `git_worktree`.
typealias WorktreeHandle = GitHandle<WorktreeKind>
/// An owned `git_config` (a snapshot of a repository's configuration).
typealias ConfigHandle = GitHandle<ConfigKind>

extension GitHandle where Kind == ReferenceKind {
    /// The full name, such as `refs/heads/main`.
    var name: String { String(cString: git_reference_name(pointer)) }
    /// The short name, such as `main`.
    var shorthand: String { String(cString: git_reference_shorthand(pointer)) }
    var isBranch: Bool { git_reference_is_branch(pointer) != 0 }
    /// The direct target, or nil for a symbolic reference.
    var target: GitObjectID? { git_reference_target(pointer).map { GitObjectID($0) } }
}

extension GitHandle where Kind == ObjectKind {
    var id: GitObjectID { GitObjectID(git_object_id(pointer)) }
}

extension GitHandle where Kind == CommitKind {
    var id: GitObjectID { GitObjectID(git_commit_id(pointer)) }
}

extension GitHandle where Kind == WorktreeKind {
    var name: String { String(cString: git_worktree_name(pointer)) }
    var path: String { String(cString: git_worktree_path(pointer)) }
}

extension GitHandle where Kind == ConfigKind {
    /// The value of a variable, or nil when it is not set.
    func string(_ name: String) -> String? {
        var raw: UnsafeMutablePointer<git_config_entry>?
        git_error_clear()
        guard git_config_get_entry(&raw, pointer, name) == 0, let entry = raw else {
            git_error_clear()
            return nil
        }
        defer { git_config_entry_free(entry) }
        return entry.pointee.value.map { String(cString: $0) }
    }
}

/// An owned `git_strarray` filled by libgit2, disposed in deinit.
final class StringArray {
    var raw = git_strarray()
    init() {}
    deinit { git_strarray_dispose(&raw) }
    var strings: [String] {
        (0..<raw.count).compactMap { raw.strings[$0].map { String(cString: $0) } }
    }
}

/// An owned `git_buf` filled by libgit2, disposed in deinit.
final class Buffer {
    var raw = git_buf()
    init() {}
    deinit { git_buf_dispose(&raw) }
    var string: String { raw.ptr.map { String(cString: $0) } ?? "" }
}
