import CLibGit2
import KhCore

/// A failed git operation: what kh was doing, the libgit2 call that failed with its
/// return code, error class and message (from `git_error_last()`), or the reason kh
/// refused on its own (a non-fast-forward, uncommitted changes …).
public struct GitError: KhReportableError, Equatable {
    /// Why the operation failed, for callers that branch on it.
    public enum Reason: Sendable, Equatable {
        /// The path is not inside a git repository.
        case notARepository(path: String)
        /// The repository is owned by another user and owner validation is on (see ``GitLibrary/ownerValidation``).
        case notOwnedByCurrentUser(path: String)
        /// A revision, reference, remote, tag or worktree does not exist.
        case notFound(String)
        /// The local branch cannot be fast-forwarded: its commit is not an ancestor of the upstream commit.
        case nonFastForward(branch: String, local: GitObjectID, upstream: GitObjectID, upstreamName: String)
        /// The operation needs a branch checked out but HEAD is detached.
        case detachedHead
        /// The branch has no commit yet.
        case unbornBranch(String)
        /// Uncommitted changes or untracked files would be lost.
        case uncommittedChanges(paths: [String])
        /// The worktree is locked; pass `force` to remove it anyway.
        case locked(name: String, reason: String)
        /// A path that must not exist (or must be an empty folder) is taken.
        case alreadyExists(String)
        /// Checking out would overwrite local changes.
        case checkoutConflict
        /// The remote refused the credentials, or none fitted.
        case authentication
        /// The remote's host key or certificate was refused.
        case hostKeyRejected(host: String)
        /// The operation's deadline passed.
        case deadlineExceeded(seconds: Double)
        /// A caller-supplied value was invalid.
        case invalidArgument(String)
        /// libgit2 itself could not be loaded (see ``GitError/libraryMessage`` for why).
        case libraryUnavailable
        /// Any other libgit2 failure; see ``GitError/call``, ``GitError/code`` and ``GitError/libraryMessage``.
        case library
    }

    /// Why it failed.
    public var reason: Reason
    /// What kh was doing, such as `open repository at /srv/repo`.
    public var operation: String
    /// The libgit2 function that failed, or `nil` when kh refused by itself.
    public var call: String?
    /// libgit2's return code (negative), or 0 when kh refused by itself.
    public var code: Int32
    /// libgit2's error class, such as `repository` or `reference` (`none` when there is none).
    public var errorClass: String
    /// libgit2's message for the failure (`git_error_last()`), empty when kh refused by itself.
    public var libraryMessage: String

    public init(
        reason: Reason, operation: String, call: String? = nil, code: Int32 = 0, errorClass: String = "none", libraryMessage: String = ""
    ) {
        self.reason = reason
        self.operation = operation
        self.call = call
        self.code = code
        self.errorClass = errorClass
        self.libraryMessage = libraryMessage
    }

    public var exitCode: KhExitCode {
        switch reason {
        case .notARepository, .invalidArgument, .notFound, .detachedHead, .unbornBranch: .usage
        case .nonFastForward, .uncommittedChanges, .locked, .alreadyExists, .checkoutConflict: .checkFailed
        case .notOwnedByCurrentUser, .libraryUnavailable: .blocked
        case .authentication, .hostKeyRejected, .deadlineExceeded, .library: .external
        }
    }

    public var message: String {
        let head: String
        switch reason {
        case .notARepository(let path):
            head = "\(path) is not in a git repository (nor is any of its parent folders)"
        case .notOwnedByCurrentUser(let path):
            head = "\(operation): the repository at \(path) is owned by another user, so libgit2 refuses it"
        case .nonFastForward(let branch, let local, let upstream, let upstreamName):
            head =
                "cannot fast-forward branch \(branch): its commit \(local.short) is not an ancestor of \(upstreamName) at \(upstream.short) (the histories diverged)"
        case .detachedHead:
            head = "\(operation): HEAD is detached; check out a branch first"
        case .unbornBranch(let branch):
            head = "\(operation): branch \(branch) has no commits yet"
        case .uncommittedChanges(let paths):
            let shown = paths.prefix(5).joined(separator: ", ") + (paths.count > 5 ? " and \(paths.count - 5) more" : "")
            head = "\(operation): uncommitted changes or untracked files would be lost: \(shown)"
        case .locked(let name, let why):
            head = "\(operation): worktree \(name) is locked" + (why.isEmpty ? "" : " (\(why))")
        case .alreadyExists(let what):
            head = "\(operation): \(what) already exists"
        case .deadlineExceeded(let seconds):
            head = "\(operation): deadline of \(Self.format(seconds)) passed"
        case .invalidArgument(let problem):
            head = "\(operation): \(problem)"
        case .hostKeyRejected(let host):
            head = "\(operation): the host key of \(host) was not accepted"
        case .notFound, .checkoutConflict, .authentication, .library, .libraryUnavailable:
            head = operation
        }
        guard let call else { return libraryMessage.isEmpty ? head : "\(head): \(libraryMessage)" }
        let detail = libraryMessage.isEmpty ? "no message" : libraryMessage
        return "\(head): \(call) failed: \(detail) (libgit2 \(errorClass) error, code \(code))"
    }

    public var hint: String? {
        switch reason {
        case .notARepository: "run it inside a git checkout, or pass the path of one"
        case .notOwnedByCurrentUser:
            "run as the repository's owner, or turn owner validation off for a path you trust (GitLibrary.ownerValidation)"
        case .nonFastForward: "rebase or merge by hand; kh only fast-forwards"
        case .uncommittedChanges: "commit, stash or remove them, or pass force"
        case .locked: "unlock it (`git worktree unlock`) or pass force"
        case .authentication: "check the key file, its passphrase and the user name in the URL"
        case .hostKeyRejected: "add the host to ~/.ssh/known_hosts or pin its SHA256 fingerprint"
        default: nil
        }
    }

    private static func format(_ seconds: Double) -> String {
        seconds < 1 ? "\(Int((seconds * 1000).rounded())) ms" : "\((seconds * 10).rounded() / 10) s"
    }

    /// The error for a failed libgit2 call, reading `git_error_last()` on this thread.
    static func fromLibrary(call: String, code: Int32, context: String, reason: Reason? = nil, fallbackMessage: String = "") -> GitError {
        var errorClass = "none"
        var text = fallbackMessage
        if let last = git_error_last() {
            errorClass = className(last.pointee.klass)
            if let message = last.pointee.message { text = String(cString: message) }
        }
        let inferred: Reason
        if let reason {
            inferred = reason
        } else {
            switch git_error_code(rawValue: code) {
            case GIT_ENOTFOUND: inferred = .notFound(context)
            case GIT_EAUTH: inferred = .authentication
            case GIT_ECONFLICT: inferred = .checkoutConflict
            case GIT_EUNBORNBRANCH: inferred = .unbornBranch("HEAD")
            default: inferred = .library
            }
        }
        return GitError(reason: inferred, operation: context, call: call, code: code, errorClass: errorClass, libraryMessage: text)
    }

    /// libgit2's error classes by value (errors.h, 1.5).
    private static let classNames = [
        "none", "nomemory", "os", "invalid", "reference", "zlib", "repository", "config", "regex", "odb", "index", "object", "net", "tag",
        "tree", "indexer", "ssl", "submodule", "thread", "stash", "checkout", "fetchhead", "merge", "ssh", "filter", "revert",
        "callback", "cherrypick", "describe", "rebase", "filesystem", "patch", "worktree", "sha", "http", "internal",
    ]

    static func className(_ klass: Int32) -> String {
        klass >= 0 && Int(klass) < classNames.count ? classNames[Int(klass)] : "class \(klass)"
    }
}

/// Makes a libgit2 call with the thread's last error cleared (some calls fail without
/// setting one, and a stale message would mislead); throws a ``GitError`` when it returns
/// a negative code, returns the code otherwise.
@discardableResult
func check(_ body: @autoclosure () -> Int32, _ call: String, _ context: @autoclosure () -> String) throws -> Int32 {
    git_error_clear()
    let code = body()
    if code < 0 { throw GitError.fromLibrary(call: call, code: code, context: context()) }
    return code
}

/// Throws a ``GitError`` for a code a libgit2 call already returned (made with ``call(_:)``):
/// the thread's last error is read as it is.
@discardableResult
func checkResult(_ code: Int32, _ call: String, _ context: @autoclosure () -> String) throws -> Int32 {
    if code < 0 { throw GitError.fromLibrary(call: call, code: code, context: context()) }
    return code
}

/// Makes a libgit2 call with the thread's last error cleared and returns its code, for
/// callers that branch on particular codes before ``checkResult(_:_:_:)``.
func call(_ body: () -> Int32) -> Int32 {
    git_error_clear()
    return body()
}
