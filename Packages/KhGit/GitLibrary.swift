import CLibGit2
import KhCore

/// Process-wide libgit2 state: one-time initialisation and the few global options kh uses.
///
/// libgit2 is initialised once per process, on first use of any KhGit API (a Swift
/// `static let`, so concurrent first uses are safe); it is never shut down.
public enum GitLibrary {
    /// Loading libgit2 (it is not linked: see Packages/CKhLazy) and `git_libgit2_init`, once.
    private static let initResult: Result<Void, GitError> = {
        if let why = kh_git2_load() {
            return .failure(GitError(reason: .libraryUnavailable, operation: "load libgit2", call: "dlopen", libraryMessage: String(cString: why)))
        }
        let code = git_libgit2_init()
        if code < 0 { return .failure(GitError.fromLibrary(call: "git_libgit2_init", code: code, context: "initialise libgit2")) }
        // Read objects the way git does: trust an object's id instead of hashing its
        // content again on every read (libgit2's default; git checks only in fsck).
        _ = kh_git_set_strict_hash_verification(0)
        return .success(())
    }()

    /// Loads and initialises libgit2 when this is the first call in the process. Every KhGit entry point calls it.
    static func ensureInitialized() throws {
        try initResult.get()
    }

    /// Why libgit2 cannot be used (not installed, too old, failed to initialise), or
    /// `nil` when it is loaded and initialised. Loads it when this is the first use.
    public static var loadProblem: String? {
        switch initResult {
        case .success: nil
        case .failure(let error): error.message
        }
    }

    /// The version of the loaded libgit2, such as `1.5.1`, or `unavailable` when it cannot be loaded.
    public static var version: String {
        guard (try? ensureInitialized()) != nil else { return "unavailable" }
        var major: Int32 = 0
        var minor: Int32 = 0
        var revision: Int32 = 0
        _ = git_libgit2_version(&major, &minor, &revision)
        return "\(major).\(minor).\(revision)"
    }

    /// Whether libgit2 refuses repositories owned by another user (the default; `git`'s
    /// `safe.directory` rule). Process-wide: changing it affects every repository opened
    /// afterwards, in every task. Turn it off only for a repository kh was told to trust
    /// (for example a checkout mounted into a container under another uid).
    public static var ownerValidation: Bool {
        get {
            guard (try? ensureInitialized()) != nil else { return true }
            var enabled: Int32 = 1
            _ = kh_git_get_owner_validation(&enabled)
            return enabled != 0
        }
        set {
            guard (try? ensureInitialized()) != nil else { return }
            _ = kh_git_set_owner_validation(newValue ? 1 : 0)
        }
    }

    /// The configuration levels whose file location can be redirected.
    public enum ConfigLevel: Sendable, CaseIterable {
        /// `/etc/gitconfig`.
        case system
        /// `$XDG_CONFIG_HOME/git/config`.
        case xdg
        /// `~/.gitconfig`.
        case global

        var level: git_config_level_t {
            switch self {
            case .system: GIT_CONFIG_LEVEL_SYSTEM
            case .xdg: GIT_CONFIG_LEVEL_XDG
            case .global: GIT_CONFIG_LEVEL_GLOBAL
            }
        }
    }

    /// Makes libgit2 look for the configuration file of `level` in `directory` instead of
    /// its default place (`nil` restores the default). Process-wide. Tests point every level
    /// at an empty folder so that a developer's `~/.gitconfig` cannot change results
    /// (libgit2 ignores `GIT_CONFIG_GLOBAL`).
    public static func setConfigSearchPath(_ level: ConfigLevel, to directory: String?) throws {
        try ensureInitialized()
        let code = kh_git_set_config_search_path(level.level, directory)
        if code < 0 {
            throw GitError.fromLibrary(call: "git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH)", code: code, context: "set the \(level) config search path")
        }
    }
}
