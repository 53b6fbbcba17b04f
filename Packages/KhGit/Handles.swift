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

// Each class below owns one libgit2 handle and frees it in deinit. Handles that belong
// to a repository keep the owning `Repository` alive, so it is freed last. None is
// Sendable: libgit2 objects of one repository must be used from one thread at a time.

/// An owned `git_reference`.
final class ReferenceHandle {
    let pointer: OpaquePointer
    let owner: Repository
    init(_ pointer: OpaquePointer, owner: Repository) {
        self.pointer = pointer
        self.owner = owner
    }
    deinit { git_reference_free(pointer) }

    /// The full name, such as `refs/heads/main`.
    var name: String { String(cString: git_reference_name(pointer)) }
    /// The short name, such as `main`.
    var shorthand: String { String(cString: git_reference_shorthand(pointer)) }
    var isBranch: Bool { git_reference_is_branch(pointer) != 0 }
    /// The direct target, or nil for a symbolic reference.
    var target: GitObjectID? { git_reference_target(pointer).map { GitObjectID($0) } }
}

/// An owned `git_object` (any type).
final class ObjectHandle {
    let pointer: OpaquePointer
    let owner: Repository
    init(_ pointer: OpaquePointer, owner: Repository) {
        self.pointer = pointer
        self.owner = owner
    }
    deinit { git_object_free(pointer) }
    var id: GitObjectID { GitObjectID(git_object_id(pointer)) }
}

/// An owned `git_commit`.
final class CommitHandle {
    let pointer: OpaquePointer
    let owner: Repository
    init(_ pointer: OpaquePointer, owner: Repository) {
        self.pointer = pointer
        self.owner = owner
    }
    deinit { git_commit_free(pointer) }
    var id: GitObjectID { GitObjectID(git_commit_id(pointer)) }
}

/// An owned `git_tree`.
final class TreeHandle {
    let pointer: OpaquePointer
    let owner: Repository
    init(_ pointer: OpaquePointer, owner: Repository) {
        self.pointer = pointer
        self.owner = owner
    }
    deinit { git_tree_free(pointer) }
}

/// An owned `git_blob`.
final class BlobHandle {
    let pointer: OpaquePointer
    let owner: Repository
    init(_ pointer: OpaquePointer, owner: Repository) {
        self.pointer = pointer
        self.owner = owner
    }
    deinit { git_blob_free(pointer) }
}

/// An owned `git_diff`.
final class DiffHandle {
    let pointer: OpaquePointer
    let owner: Repository
    init(_ pointer: OpaquePointer, owner: Repository) {
        self.pointer = pointer
        self.owner = owner
    }
    deinit { git_diff_free(pointer) }
}

/// An owned `git_patch`; keeps its diff (or blobs) alive.
final class PatchHandle {
    let pointer: OpaquePointer
    let sources: [AnyObject]
    init(_ pointer: OpaquePointer, keeping sources: [AnyObject]) {
        self.pointer = pointer
        self.sources = sources
    }
    deinit { git_patch_free(pointer) }
}

/// An owned `git_status_list`.
final class StatusListHandle {
    let pointer: OpaquePointer
    let owner: Repository
    init(_ pointer: OpaquePointer, owner: Repository) {
        self.pointer = pointer
        self.owner = owner
    }
    deinit { git_status_list_free(pointer) }
}

/// An owned `git_remote`.
final class RemoteHandle {
    let pointer: OpaquePointer
    let owner: Repository
    init(_ pointer: OpaquePointer, owner: Repository) {
        self.pointer = pointer
        self.owner = owner
    }
    deinit { git_remote_free(pointer) }
}

/// An owned `git_worktree`.
final class WorktreeHandle {
    let pointer: OpaquePointer
    let owner: Repository
    init(_ pointer: OpaquePointer, owner: Repository) {
        self.pointer = pointer
        self.owner = owner
    }
    deinit { git_worktree_free(pointer) }
    var name: String { String(cString: git_worktree_name(pointer)) }
    var path: String { String(cString: git_worktree_path(pointer)) }
}

/// An owned `git_config` (a snapshot of a repository's configuration).
final class ConfigHandle {
    let pointer: OpaquePointer
    let owner: Repository
    init(_ pointer: OpaquePointer, owner: Repository) {
        self.pointer = pointer
        self.owner = owner
    }
    deinit { git_config_free(pointer) }

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
