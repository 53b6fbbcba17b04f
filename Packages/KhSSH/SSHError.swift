import KhCore

/// Why an SSH connection or command failed.
///
/// Carries the call that failed, libssh2's error code and message (from
/// `libssh2_session_last_error`) or the system `errno`, and the host and port, so
/// one line tells a person what broke where. A command that ran and exited non-zero
/// is not an error: that is data in its `CommandResult`.
public struct SSHError: KhReportableError, Equatable {
    /// What kind of failure it is.
    public enum Kind: String, Sendable, Equatable, Codable {
        /// Name resolution or the TCP connection failed (refused, unreachable).
        case connect
        /// A deadline passed: connect, handshake, authentication, or a command that
        /// could not start in time.
        case timeout
        /// The SSH handshake (banner, key exchange) failed.
        case handshake
        /// The server's host key is not in known_hosts (strict policy).
        case hostKeyUnknown
        /// The server's host key differs from the one in known_hosts.
        case hostKeyChanged
        /// known_hosts could not be read or written.
        case knownHosts
        /// The server refused the key (or the key file could not be used).
        case authentication
        /// A channel could not be opened or the command could not be started.
        case channel
        /// The connection was lost or closed while in use.
        case connectionLost
        /// The configuration cannot work (a key file missing, a bad port).
        case configuration
        /// libssh2 itself could not be loaded (see ``SSHError/detail``).
        case libraryUnavailable
    }

    /// What kind of failure it is.
    public var kind: Kind
    /// The failing call: `connect`, `libssh2_session_handshake`, `libssh2_channel_exec`, …
    public var call: String
    /// libssh2's error code (`LIBSSH2_ERROR_*`, negative), when libssh2 reported it.
    public var libssh2Code: Int32?
    /// The system error number, when a system call failed.
    public var systemErrno: Int32?
    /// libssh2's or the system's message, or kh's own explanation.
    public var detail: String
    /// The host that was being reached.
    public var host: String
    /// Its port.
    public var port: Int
    /// For a command that failed with the connection: whether it had been started on
    /// the host. `false` means a retry on a new connection cannot run it twice.
    public var commandStarted: Bool?

    /// An error; `detail` is libssh2's or the system's message (never a secret).
    public init(
        kind: Kind, call: String, libssh2Code: Int32? = nil, systemErrno: Int32? = nil, detail: String, host: String, port: Int,
        commandStarted: Bool? = nil
    ) {
        self.commandStarted = commandStarted
        self.kind = kind
        self.call = call
        self.libssh2Code = libssh2Code
        self.systemErrno = systemErrno
        self.detail = detail
        self.host = host
        self.port = port
    }

    /// `usage` for a configuration that cannot work, `external` otherwise.
    public var exitCode: KhExitCode {
        switch kind {
        case .configuration: .usage
        case .libraryUnavailable: .blocked
        default: .external
        }
    }

    /// `ssh HOST:PORT: CALL failed: DETAIL (libssh2 error N)`.
    public var message: String {
        if kind == .libraryUnavailable { return "ssh: \(detail)" }
        var text = "ssh \(host):\(port): \(call) failed: \(detail)"
        if let libssh2Code { text += " (libssh2 error \(libssh2Code))" }
        if let systemErrno { text += " (errno \(systemErrno))" }
        return text
    }

    /// The next step for the reader, where there is an obvious one.
    public var hint: String? {
        switch kind {
        case .hostKeyUnknown:
            "check the fingerprint with the host's owner, then add the key to known_hosts "
                + "(ssh-keyscan -p \(port) \(host)), or use the host-key policy accept-new"
        case .hostKeyChanged:
            "if the host was rebuilt, remove the old entry (ssh-keygen -R '[\(host)]:\(port)'); "
                + "otherwise treat this as a possible man-in-the-middle"
        case .authentication:
            "check that the public key is in the user's authorized_keys on the host; kh offers only the configured key"
        case .connect:
            "check the host, the port and that sshd runs there"
        case .timeout:
            "the host did not answer in time: check the network path or raise the timeout"
        default:
            nil
        }
    }
}
