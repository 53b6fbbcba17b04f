import CLibGit2
import Foundation
import KhCore

extension Repository {
    /// Checks out a local branch, like `git checkout BRANCH`: when only
    /// `refs/remotes/REMOTE/BRANCH` exists, a local branch at its commit is made first.
    /// Local changes that the switch would overwrite stop it before HEAD moves
    /// (``GitError/Reason/checkoutConflict``). Returns whether HEAD moved.
    @discardableResult
    public func checkoutBranch(_ branch: String, remote: String = "origin") throws -> Bool {
        let operation = "check out branch \(branch)"
        if try head().branch == branch { return false }
        let localName = "refs/heads/\(branch)"
        var raw: OpaquePointer?
        var code = call { git_reference_lookup(&raw, pointer, localName) }
        if code == GIT_ENOTFOUND.rawValue {
            let remoteName = "refs/remotes/\(remote)/\(branch)"
            let remoteRef: ReferenceHandle
            do {
                remoteRef = try reference(named: remoteName)
            } catch {
                throw GitError(reason: .notFound("branch \(branch) (neither \(localName) nor \(remoteName))"), operation: operation)
            }
            guard let target = remoteRef.target else { throw GitError(reason: .notFound(remoteName), operation: operation) }
            let commit = try self.commit(target)
            var made: OpaquePointer?
            try check(git_branch_create(&made, pointer, branch, commit.pointer, 0), "git_branch_create", operation)
            // No upstream is configured: fetchAndFastForward uses refs/remotes/REMOTE/BRANCH then.
            _ = ReferenceHandle(made!, owner: self)
            code = call { git_reference_lookup(&raw, pointer, localName) }
        }
        try checkResult(code, "git_reference_lookup", operation)
        let local = ReferenceHandle(raw!, owner: self)
        guard let target = local.target else { throw GitError(reason: .notFound(localName), operation: operation) }
        let commit = try self.commit(target)
        var options = git_checkout_options()
        try check(git_checkout_options_init(&options, UInt32(GIT_CHECKOUT_OPTIONS_VERSION)), "git_checkout_options_init", operation)
        options.checkout_strategy = GIT_CHECKOUT_SAFE.rawValue
        let checkoutCode = call { git_checkout_tree(pointer, commit.pointer, &options) }
        if checkoutCode == GIT_ECONFLICT.rawValue {
            throw GitError.fromLibrary(call: "git_checkout_tree", code: checkoutCode, context: operation, reason: .checkoutConflict)
        }
        try checkResult(checkoutCode, "git_checkout_tree", operation)
        try check(git_repository_set_head(pointer, localName), "git_repository_set_head", operation)
        return true
    }
}
