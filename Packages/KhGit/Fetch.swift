import CLibGit2
import Foundation

/// An SSH private key for fetching over `ssh://` (libgit2's `git_credential_ssh_key_new`).
public struct GitSSHKey: Sendable, Equatable {
    /// The user to log in as; `nil` takes the user from the URL (`ssh://deploy@host/…`), else `git`.
    public var username: String?
    /// The private key file (OpenSSH or PEM format; ed25519 works with libssh2's OpenSSL backend).
    public var privateKeyPath: String
    /// The public key file; `nil` lets libssh2 derive it from the private key.
    public var publicKeyPath: String?
    /// The key's passphrase, if it has one. Never logged.
    public var passphrase: String?

    public init(username: String? = nil, privateKeyPath: String, publicKeyPath: String? = nil, passphrase: String? = nil) {
        self.username = username
        self.privateKeyPath = privateKeyPath
        self.publicKeyPath = publicKeyPath
        self.passphrase = passphrase
    }
}

extension GitSSHKey: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The key without its passphrase, safe to log.
    public var description: String {
        "GitSSHKey(username: \(username ?? "from URL"), privateKeyPath: \(privateKeyPath), publicKeyPath: \(publicKeyPath ?? "derived"), passphrase: \(passphrase == nil ? "none" : "<redacted>"))"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "username": username as Any, "privateKeyPath": privateKeyPath, "publicKeyPath": publicKeyPath as Any,
                "passphrase": passphrase == nil ? "none" : "<redacted>",
            ])
    }
}

/// How an SSH server's host key is checked.
public enum GitHostKeyPolicy: Sendable, Equatable {
    /// libgit2's own check against `~/.ssh/known_hosts` (the default).
    case knownHosts
    /// Accept only the key with this SHA-256 fingerprint, written as `ssh-keygen -lf` prints
    /// it (`SHA256:` and unpadded base64). For a server whose key the caller made or pinned.
    case fingerprint(String)
    /// Accept any host key. Insecure: for throwaway test servers only.
    case acceptAny

    /// A SHA-256 digest of a host key written as OpenSSH prints it: `SHA256:` and the
    /// base64 of the 32 bytes without `=` padding.
    public static func fingerprint(sha256 digest: some Collection<UInt8>) -> String {
        "SHA256:" + Data(digest).base64EncodedString().replacingOccurrences(of: "=", with: "")
    }
}

/// How to fetch (see ``Repository/fetch(_:)`` and ``Repository/fetchAndFastForward(_:)``).
public struct GitFetchOptions: Sendable {
    /// The remote's name; `nil` takes the current branch's upstream remote, else `origin`.
    public var remote: String?
    /// The SSH key to offer when the remote asks for one.
    public var sshKey: GitSSHKey?
    /// How to check an SSH server's host key.
    public var hostKeyPolicy: GitHostKeyPolicy
    /// How long the fetch may take. libgit2 1.5 has no socket timeouts, so the deadline is
    /// checked whenever libgit2 calls back (credentials, host key, progress, each updated
    /// reference); a server that stops answering mid-transfer is not interrupted until its
    /// next packet.
    public var timeout: Duration?

    public init(remote: String? = nil, sshKey: GitSSHKey? = nil, hostKeyPolicy: GitHostKeyPolicy = .knownHosts, timeout: Duration? = .seconds(300)) {
        self.remote = remote
        self.sshKey = sshKey
        self.hostKeyPolicy = hostKeyPolicy
        self.timeout = timeout
    }
}

/// One reference a fetch changed.
public struct GitReferenceUpdate: Sendable, Equatable, Codable {
    /// The full name, such as `refs/remotes/origin/main`.
    public var name: String
    /// Its commit before; `nil` when the fetch created it.
    public var old: GitObjectID?
    /// Its commit after; `nil` when the fetch deleted it.
    public var new: GitObjectID?
}

/// What a fetch did.
public struct GitFetchResult: Sendable, Equatable, Codable {
    /// The remote fetched from.
    public var remote: String
    /// The references it created, moved or deleted.
    public var updatedReferences: [GitReferenceUpdate]
    /// Objects received from the remote.
    public var receivedObjects: Int
    /// Bytes received from the remote.
    public var receivedBytes: Int
}

/// What ``Repository/fetchAndFastForward(_:)`` did to the current branch.
public struct GitFastForwardResult: Sendable, Equatable, Codable {
    /// Whether the branch moved.
    public enum Outcome: String, Sendable, Codable {
        /// The branch already had every upstream commit (equal, or ahead of it).
        case alreadyUpToDate
        /// The branch and the working tree moved to the upstream commit.
        case fastForwarded
    }

    public var outcome: Outcome
    /// The branch's short name.
    public var branch: String
    /// The upstream reference, such as `refs/remotes/origin/main`.
    public var upstream: String
    /// The branch's commit before.
    public var from: GitObjectID
    /// The branch's commit after.
    public var to: GitObjectID
    /// What the fetch did.
    public var fetch: GitFetchResult

    /// Whether nothing had to change.
    public var isAlreadyUpToDate: Bool { outcome == .alreadyUpToDate }
}

/// State shared with libgit2's callbacks during one fetch (passed as their payload).
private final class FetchSession {
    let options: GitFetchOptions
    let deadline: ContinuousClock.Instant?
    var credentialAttempts = 0
    var deadlinePassed = false
    var rejectedHost: String?
    var updates: [GitReferenceUpdate] = []

    init(options: GitFetchOptions) {
        self.options = options
        deadline = options.timeout.map { ContinuousClock.now + $0 }
    }

    /// GIT_EUSER (and a message) once the deadline has passed, else 0.
    func checkDeadline() -> Int32 {
        guard let deadline, ContinuousClock.now >= deadline else { return 0 }
        deadlinePassed = true
        git_error_set_str(Int32(GIT_ERROR_CALLBACK.rawValue), "kh: the fetch deadline passed")
        return GIT_EUSER.rawValue
    }

    static func from(_ payload: UnsafeMutableRawPointer?) -> FetchSession {
        Unmanaged<FetchSession>.fromOpaque(payload!).takeUnretainedValue()
    }
}

extension Repository {
    /// Fetches a remote (its configured refspecs; tags that point into fetched history
    /// follow), updating its remote-tracking branches, like `git fetch REMOTE`.
    public func fetch(_ options: GitFetchOptions = GitFetchOptions()) throws -> GitFetchResult {
        let remoteName = try options.remote ?? defaultRemoteName()
        return try fetch(remoteName: remoteName, options: options)
    }

    /// Fetches the current branch's remote and fast-forwards the branch and the working tree
    /// to its upstream, like `git pull --ff-only`.
    ///
    /// The upstream is the branch's configured one (`branch.NAME.merge`) when it belongs to
    /// the remote fetched, else `refs/remotes/REMOTE/NAME`. The result says whether the branch moved or was already
    /// up to date (equal to, or ahead of, the upstream). Local changes that the move would
    /// overwrite stop it before the branch moves (``GitError/Reason/checkoutConflict``).
    ///
    /// Throws ``GitError`` with ``GitError/Reason/nonFastForward(branch:local:upstream:upstreamName:)``
    /// when the histories diverged, ``GitError/Reason/detachedHead`` when no branch is checked out.
    public func fetchAndFastForward(_ options: GitFetchOptions = GitFetchOptions()) throws -> GitFastForwardResult {
        let operation = "fast-forward the current branch"
        let head = try self.head()
        guard let branch = head.branch, let branchRef = head.reference else {
            throw GitError(reason: .detachedHead, operation: operation)
        }
        guard let local = head.commit else { throw GitError(reason: .unbornBranch(branch), operation: operation) }
        let remoteName = try options.remote ?? defaultRemoteName()
        // The configured upstream when it belongs to the remote fetched, else REMOTE/BRANCH.
        let configured = try defaultRemoteName() == remoteName ? upstreamName(ofBranch: branchRef) : nil
        let upstream = configured ?? "refs/remotes/\(remoteName)/\(branch)"
        let fetched = try fetch(remoteName: remoteName, options: options)

        var upstreamOID = git_oid()
        let code = call { git_reference_name_to_id(&upstreamOID, pointer, upstream) }
        if code == GIT_ENOTFOUND.rawValue {
            throw GitError.fromLibrary(
                call: "git_reference_name_to_id", code: code, context: "\(operation): find upstream \(upstream) of \(branch)",
                reason: .notFound(upstream))
        }
        try checkResult(code, "git_reference_name_to_id", operation)
        let target = GitObjectID(upstreamOID)
        if target == local {
            return GitFastForwardResult(outcome: .alreadyUpToDate, branch: branch, upstream: upstream, from: local, to: local, fetch: fetched)
        }
        var localOID = local.oid
        if try check(git_graph_descendant_of(pointer, &localOID, &upstreamOID), "git_graph_descendant_of", operation) == 1 {
            return GitFastForwardResult(outcome: .alreadyUpToDate, branch: branch, upstream: upstream, from: local, to: local, fetch: fetched)
        }
        guard try check(git_graph_descendant_of(pointer, &upstreamOID, &localOID), "git_graph_descendant_of", operation) == 1 else {
            throw GitError(
                reason: .nonFastForward(branch: branch, local: local, upstream: target, upstreamName: upstream),
                operation: "fast-forward \(branch) to \(upstream)")
        }

        // Working tree first (SAFE: local changes the move would overwrite stop it), then the branch.
        let commit = try self.commit(target)
        var checkout = git_checkout_options()
        try check(git_checkout_options_init(&checkout, UInt32(GIT_CHECKOUT_OPTIONS_VERSION)), "git_checkout_options_init", operation)
        checkout.checkout_strategy = GIT_CHECKOUT_SAFE.rawValue
        let checkoutCode = call { git_checkout_tree(pointer, commit.pointer, &checkout) }
        if checkoutCode == GIT_ECONFLICT.rawValue {
            throw GitError.fromLibrary(
                call: "git_checkout_tree", code: checkoutCode, context: "\(operation): update the working tree", reason: .checkoutConflict)
        }
        try checkResult(checkoutCode, "git_checkout_tree", operation)
        let reference = try self.reference(named: branchRef)
        var moved: OpaquePointer?
        try check(
            git_reference_set_target(&moved, reference.pointer, &upstreamOID, "kh: fast-forward to \(upstream)"), "git_reference_set_target",
            operation)
        _ = ReferenceHandle(moved!, owner: self)
        return GitFastForwardResult(outcome: .fastForwarded, branch: branch, upstream: upstream, from: local, to: target, fetch: fetched)
    }

    // MARK: helpers

    /// The current branch's upstream remote, else `origin`.
    private func defaultRemoteName() throws -> String {
        if let reference = try? head().reference {
            let buffer = Buffer()
            if git_branch_upstream_remote(&buffer.raw, pointer, reference) == 0, !buffer.string.isEmpty { return buffer.string }
            git_error_clear()
        }
        return "origin"
    }

    /// `refs/remotes/origin/main` for `refs/heads/main` when configured, else nil.
    private func upstreamName(ofBranch reference: String) throws -> String? {
        let buffer = Buffer()
        let code = call { git_branch_upstream_name(&buffer.raw, pointer, reference) }
        if code == GIT_ENOTFOUND.rawValue {
            git_error_clear()
            return nil
        }
        try checkResult(code, "git_branch_upstream_name", "find the upstream of \(reference)")
        return buffer.string
    }

    private func fetch(remoteName: String, options: GitFetchOptions) throws -> GitFetchResult {
        let operation = "fetch \(remoteName)"
        var rawRemote: OpaquePointer?
        let lookup = call { git_remote_lookup(&rawRemote, pointer, remoteName) }
        if lookup == GIT_ENOTFOUND.rawValue {
            throw GitError.fromLibrary(call: "git_remote_lookup", code: lookup, context: operation, reason: .notFound("remote \(remoteName)"))
        }
        try checkResult(lookup, "git_remote_lookup", operation)
        let remote = RemoteHandle(rawRemote!, owner: self)

        let session = FetchSession(options: options)
        var fetchOptions = git_fetch_options()
        try check(git_fetch_options_init(&fetchOptions, UInt32(GIT_FETCH_OPTIONS_VERSION)), "git_fetch_options_init", operation)
        fetchOptions.callbacks.payload = Unmanaged.passUnretained(session).toOpaque()
        fetchOptions.callbacks.credentials = { out, _, usernameFromURL, allowed, payload in
            let session = FetchSession.from(payload)
            if case let code = session.checkDeadline(), code != 0 { return code }
            guard let key = session.options.sshKey else { return GIT_PASSTHROUGH.rawValue }
            let username = key.username ?? usernameFromURL.map { String(cString: $0) } ?? "git"
            if allowed & GIT_CREDENTIAL_USERNAME.rawValue != 0 && allowed & GIT_CREDENTIAL_SSH_KEY.rawValue == 0 {
                return git_credential_username_new(out, username)
            }
            guard allowed & GIT_CREDENTIAL_SSH_KEY.rawValue != 0 else { return GIT_PASSTHROUGH.rawValue }
            session.credentialAttempts += 1
            guard session.credentialAttempts == 1 else {
                // libgit2 asks again after the server refused the key: stop instead of looping.
                git_error_set_str(Int32(GIT_ERROR_SSH.rawValue), "the server refused the SSH key \(key.privateKeyPath) for user \(username)")
                return GIT_EAUTH.rawValue
            }
            return git_credential_ssh_key_new(out, username, key.publicKeyPath, key.privateKeyPath, key.passphrase)
        }
        fetchOptions.callbacks.certificate_check = { cert, valid, host, payload in
            let session = FetchSession.from(payload)
            if case let code = session.checkDeadline(), code != 0 { return code }
            let hostName = host.map { String(cString: $0) } ?? "?"
            guard let cert, cert.pointee.cert_type == GIT_CERT_HOSTKEY_LIBSSH2 else { return GIT_PASSTHROUGH.rawValue }
            switch session.options.hostKeyPolicy {
            case .knownHosts:
                if valid != 0 { return 0 }
            case .acceptAny:
                return 0
            case .fingerprint(let expected):
                let hostKey = UnsafeRawPointer(cert).assumingMemoryBound(to: git_cert_hostkey.self).pointee
                if hostKey.type.rawValue & GIT_CERT_SSH_SHA256.rawValue != 0 {
                    let actual = withUnsafeBytes(of: hostKey.hash_sha256) { GitHostKeyPolicy.fingerprint(sha256: $0) }
                    if actual == expected { return 0 }
                }
            }
            session.rejectedHost = hostName
            git_error_set_str(Int32(GIT_ERROR_SSH.rawValue), "host key of \(hostName) rejected")
            return GIT_ECERTIFICATE.rawValue
        }
        fetchOptions.callbacks.transfer_progress = { _, payload in FetchSession.from(payload).checkDeadline() }
        fetchOptions.callbacks.sideband_progress = { _, _, payload in FetchSession.from(payload).checkDeadline() }
        fetchOptions.callbacks.update_tips = { name, old, new, payload in
            let session = FetchSession.from(payload)
            func id(_ oid: UnsafePointer<git_oid>?) -> GitObjectID? {
                guard let oid, git_oid_is_zero(oid) == 0 else { return nil }
                return GitObjectID(oid)
            }
            session.updates.append(GitReferenceUpdate(name: name.map { String(cString: $0) } ?? "", old: id(old), new: id(new)))
            return session.checkDeadline()
        }

        let code = withExtendedLifetime(session) { call { git_remote_fetch(remote.pointer, nil, &fetchOptions, "kh: fetch \(remoteName)") } }
        if code < 0 {
            if session.deadlinePassed, let timeout = options.timeout {
                throw GitError.fromLibrary(
                    call: "git_remote_fetch", code: code, context: operation, reason: .deadlineExceeded(seconds: Self.seconds(timeout)))
            }
            if let host = session.rejectedHost {
                throw GitError.fromLibrary(call: "git_remote_fetch", code: code, context: operation, reason: .hostKeyRejected(host: host))
            }
            if code == GIT_ECERTIFICATE.rawValue {
                let url = git_remote_url(remote.pointer).map { String(cString: $0) } ?? remoteName
                throw GitError.fromLibrary(call: "git_remote_fetch", code: code, context: operation, reason: .hostKeyRejected(host: url))
            }
            try checkResult(code, "git_remote_fetch", operation)
        }
        let stats = git_remote_stats(remote.pointer)?.pointee
        return GitFetchResult(
            remote: remoteName, updatedReferences: session.updates, receivedObjects: Int(stats?.received_objects ?? 0),
            receivedBytes: stats?.received_bytes ?? 0)
    }

    private static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
