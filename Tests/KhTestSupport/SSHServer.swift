import Foundation
import KhCore
import KhSSH

/// A real OpenSSH server on 127.0.0.1 for a test: its own temporary folder, an
/// ed25519 host key and client key, authorized_keys, known_hosts, a free port; the
/// current user logs in with the client key only. Stopped by PID when released (or
/// with ``stop()``).
///
/// A thin wrapper of `KhSSH.SSHTestServer` (which kh-bench uses too). A missing
/// sshd makes ``start(extraConfig:)`` throw, so the test FAILS with the reason:
/// SSH tests are never skipped.
///
/// For a git fetch over ssh: `GIT_SSH_COMMAND=server.gitSSHCommand` and the remote
/// `server.url(path: "/abs/path/repo.git")`; for libssh2 clients `server.configuration()`.
public final class SSHServer: Sendable {
    /// The server itself (keys, paths, restart, extra keys).
    public let server: SSHTestServer

    private init(server: SSHTestServer) { self.server = server }

    /// Starts sshd and waits (bounded) until it listens. `shellStartupFiles: false`
    /// (the default) keeps the user's `~/.bashrc` out of remote commands.
    public static func start(extraConfig: [String] = [], shellStartupFiles: Bool = false) async throws -> SSHServer {
        SSHServer(server: try await SSHTestServer.start(extraConfig: extraConfig, shellStartupFiles: shellStartupFiles))
    }

    public var host: String { server.host }
    public var port: Int { server.port }
    /// The current user.
    public var user: String { server.user }
    /// The client's private key (ed25519, no passphrase).
    public var clientKeyPath: String { server.clientKeyPath }
    /// `[127.0.0.1]:PORT ssh-ed25519 AAAA…`
    public var knownHostsLine: String { server.knownHostsLine }
    /// A known_hosts file holding ``knownHostsLine``.
    public var knownHostsPath: String { server.knownHostsPath }
    /// The listener's process ID.
    public var pid: pid_t { server.pid }
    /// sshd's log, for failure messages.
    public var logPath: String { server.logPath }
    /// `ssh` options reaching this server with the client key and strict host-key checking.
    public var sshOptions: [String] { server.sshOptions }
    /// A `GIT_SSH_COMMAND` for this server.
    public var gitSSHCommand: String { server.gitSSHCommand }
    /// `ssh://user@127.0.0.1:PORT/path`.
    public func url(path: String) -> String { server.url(path: path) }

    /// A KhSSH client configuration for this server.
    public func configuration(
        hostKeyPolicy: HostKeyPolicy = .strict, knownHostsPath: String? = nil, privateKeyPath: String? = nil, passphrase: String? = nil,
        connectTimeout: Duration = .seconds(10), maxChannels: Int = 64, onWarning: (@Sendable (String) -> Void)? = nil
    ) -> SSHConfiguration {
        server.configuration(
            hostKeyPolicy: hostKeyPolicy, knownHostsPath: knownHostsPath, privateKeyPath: privateKeyPath, passphrase: passphrase,
            connectTimeout: connectTimeout, maxChannels: maxChannels, onWarning: onWarning)
    }

    /// Ends sshd by its PID.
    public func stop() { server.stop() }
}
