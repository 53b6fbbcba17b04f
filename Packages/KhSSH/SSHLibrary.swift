import CLibSSH2

/// libssh2 as a whole: whether it can be used and which version was loaded.
///
/// kh does not link libssh2; it is loaded on first use (see Packages/CKhLazy). Every
/// ``SSHConnection`` loads it before its first call; these let `kh doctor` ask up front.
public enum SSHLibrary {
    /// Why libssh2 cannot be used (not installed, too old, failed to initialise), or `nil`
    /// when it is loaded and initialised. Loads it when this is the first use.
    public static var loadProblem: String? { LibSSH2.problem }

    /// The loaded libssh2's version, such as `1.10.0`, or `unavailable`.
    public static var version: String {
        guard LibSSH2.problem == nil, let text = libssh2_version(0) else { return "unavailable" }
        return String(cString: text)
    }
}
