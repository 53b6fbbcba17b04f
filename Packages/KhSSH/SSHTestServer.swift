import CLibSSH2  // socket constants (SOCK_STREAM, SOCK_CLOEXEC) come with <sys/socket.h>
import Foundation
import Glibc
import KhCore
import KhProcess
import Synchronization

/// Why a test sshd could not be started.
public struct SSHTestServerError: KhReportableError {
    /// What went wrong (with sshd's last log lines when it started and died).
    public var message: String
    /// What to install or check.
    public var hint: String?
    /// A missing server is an unmet dependency.
    public var exitCode: KhExitCode { .blocked }

    /// An error with a message and an optional hint.
    public init(message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }
}

/// A throwaway OpenSSH server on 127.0.0.1 for tests and benchmarks.
///
/// ``start(sshd:extraConfig:timeout:)`` makes a temporary folder with an ed25519 host
/// key, an ed25519 client key (no passphrase), `authorized_keys`, a `known_hosts`
/// file holding the host key and an `sshd_config` (127.0.0.1 only, a free port,
/// `StrictModes no`, `UsePAM no`, keys only, `MaxSessions 64`), then runs
/// `sshd -D -e -f CONFIG` as a child (log in ``logPath``) and waits for its port.
/// The user is the current user. ``stop()`` (or deinit) ends sshd by its PID and
/// removes the folder.
///
/// By default the user's login shell skips its startup files (sshd sets `SHLVL=1`, so
/// bash does not source `~/.bashrc` for ssh commands): what runs does not depend on
/// the developer's dotfiles, and a session starts in milliseconds instead of the
/// quarter second a heavy `.bashrc` costs. Pass `shellStartupFiles: true` for the
/// real thing.
///
/// A missing `sshd` is an error (install openssh-server; `make deps` does), never a
/// reason to skip.
public final class SSHTestServer: Sendable {
    /// The temporary folder with keys, config and log.
    public let directory: String
    /// Always `127.0.0.1`.
    public let host = "127.0.0.1"
    /// The port sshd listens on (free when it started).
    public let port: Int
    /// The current user, whose login the server accepts.
    public let user: String
    /// The client's private key (ed25519, no passphrase), accepted by the server.
    public let clientKeyPath: String
    /// A known_hosts file with exactly the server's host key.
    public let knownHostsPath: String
    /// sshd's own log (`-e`).
    public let logPath: String
    private let sshdPath: String
    private let configPath: String
    private struct State {
        var pid: pid_t
        var hostKeyLine: String
    }
    private let state: Mutex<State>

    /// The client's public key.
    public var clientPublicKeyPath: String { clientKeyPath + ".pub" }
    /// sshd's process ID (the listener).
    public var pid: pid_t { state.withLock { $0.pid } }
    /// `[127.0.0.1]:PORT ssh-ed25519 AAAA…`: the host key as a known_hosts line.
    public var knownHostsLine: String { state.withLock { "[\(host)]:\(port) " + $0.hostKeyLine } }
    /// The host key's type and base64 blob (`ssh-ed25519 AAAA…`).
    public var hostPublicKey: String { state.withLock { $0.hostKeyLine } }

    private init(
        directory: String, port: Int, user: String, sshdPath: String, configPath: String, pid: pid_t, hostKeyLine: String
    ) {
        self.directory = directory
        self.port = port
        self.user = user
        self.sshdPath = sshdPath
        self.configPath = configPath
        self.clientKeyPath = directory + "/client_ed25519"
        self.knownHostsPath = directory + "/known_hosts"
        self.logPath = directory + "/sshd.log"
        self.state = Mutex(State(pid: pid, hostKeyLine: hostKeyLine))
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: start

    /// Starts a server (see the type's documentation). `extraConfig` lines are
    /// appended to sshd_config. Throws ``SSHTestServerError`` when sshd or ssh-keygen
    /// is missing or sshd does not listen within `timeout`.
    public static func start(
        sshd: String = "/usr/sbin/sshd", extraConfig: [String] = [], shellStartupFiles: Bool = false, timeout: Duration = .seconds(20)
    ) async throws -> SSHTestServer {
        guard access(sshd, X_OK) == 0 else {
            throw SSHTestServerError(
                message: "sshd not found at \(sshd): the SSH tests need a real OpenSSH server",
                hint: "install openssh-server (apt-get install openssh-server; `make deps` does it)")
        }
        let directory = try makeTemporaryDirectory()
        do {
            let hostKey = directory + "/host_ed25519"
            try await keygen(path: hostKey, comment: "kh-test-host", passphrase: "")
            try await keygen(path: directory + "/client_ed25519", comment: "kh-test-client", passphrase: "")
            try FileManager.default.copyItem(atPath: directory + "/client_ed25519.pub", toPath: directory + "/authorized_keys")
            _ = chmod(directory + "/authorized_keys", 0o600)
            // sshd running as root wants its privilege-separation folder.
            if geteuid() == 0 { _ = mkdir("/run/sshd", 0o755) }
            let user = currentUser()
            let configPath = directory + "/sshd_config"
            let deadline = ContinuousClock.now + timeout
            var lastFailure = ""
            for _ in 0..<5 {
                let port = try freePort()
                try config(directory: directory, port: port, extra: (shellStartupFiles ? [] : ["SetEnv SHLVL=1"]) + extraConfig).write(
                    toFile: configPath, atomically: true, encoding: .utf8)
                let pid = try spawn(sshd: sshd, config: configPath, log: directory + "/sshd.log")
                switch waitForPort(port, pid: pid, until: deadline) {
                case .listening:
                    let hostKeyLine = try publicKeyLine(hostKey + ".pub")
                    let server = SSHTestServer(
                        directory: directory, port: port, user: user, sshdPath: sshd, configPath: configPath, pid: pid,
                        hostKeyLine: hostKeyLine)
                    try (server.knownHostsLine + "\n").write(toFile: server.knownHostsPath, atomically: true, encoding: .utf8)
                    return server
                case .exited:
                    lastFailure = logTail(directory + "/sshd.log")
                    if lastFailure.contains("Address already in use") { continue }  // lost the race for the port
                    throw SSHTestServerError(message: "sshd exited at start: \(lastFailure)", hint: "see \(directory)/sshd_config")
                case .timedOut:
                    stopProcess(pid)
                    throw SSHTestServerError(
                        message: "sshd did not listen on 127.0.0.1:\(port) within \(timeout.humanDescription): \(logTail(directory + "/sshd.log"))"
                    )
                }
            }
            throw SSHTestServerError(message: "sshd could not get a free port: \(lastFailure)")
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// Ends sshd (SIGTERM, then SIGKILL after 5 s) by its PID. Idempotent.
    public func stop() {
        let pid = state.withLock { state in
            defer { state.pid = 0 }
            return state.pid
        }
        if pid > 0 { Self.stopProcess(pid) }
    }

    /// Stops sshd and starts it again on the same port, with a new host key when
    /// `newHostKey` (the "host was rebuilt" case: its known_hosts entry no longer matches).
    /// ``knownHostsPath`` keeps the old line; ``knownHostsLine`` has the new one.
    public func restart(newHostKey: Bool, timeout: Duration = .seconds(20)) async throws {
        stop()
        let hostKey = directory + "/host_ed25519"
        if newHostKey {
            try? FileManager.default.removeItem(atPath: hostKey)
            try? FileManager.default.removeItem(atPath: hostKey + ".pub")
            try await Self.keygen(path: hostKey, comment: "kh-test-host", passphrase: "")
        }
        let deadline = ContinuousClock.now + timeout
        while true {
            let pid = try Self.spawn(sshd: sshdPath, config: configPath, log: logPath)
            switch Self.waitForPort(port, pid: pid, until: deadline) {
            case .listening:
                let line = try Self.publicKeyLine(hostKey + ".pub")
                state.withLock {
                    $0.pid = pid
                    $0.hostKeyLine = line
                }
                return
            case .exited where ContinuousClock.now < deadline && Self.logTail(logPath).contains("Address already in use"):
                try await Task.sleep(for: .milliseconds(100))
            case .exited, .timedOut:
                Self.stopProcess(pid)
                throw SSHTestServerError(message: "sshd did not come back on port \(port): \(Self.logTail(logPath))")
            }
        }
    }

    // MARK: for clients

    /// A client configuration for this server: the client key, ``knownHostsPath``
    /// (or another file) and a policy.
    public func configuration(
        hostKeyPolicy: HostKeyPolicy = .strict, knownHostsPath: String? = nil, privateKeyPath: String? = nil, passphrase: String? = nil,
        connectTimeout: Duration = .seconds(10), maxChannels: Int = 64, onWarning: (@Sendable (String) -> Void)? = nil
    ) -> SSHConfiguration {
        SSHConfiguration(
            host: host, port: port, user: user, privateKeyPath: privateKeyPath ?? clientKeyPath, passphrase: passphrase,
            knownHostsPath: knownHostsPath ?? self.knownHostsPath, hostKeyPolicy: hostKeyPolicy, connectTimeout: connectTimeout,
            maxChannels: maxChannels, onWarning: onWarning)
    }

    /// `ssh` options for this server, without the command: `-i KEY -o IdentitiesOnly=yes
    /// -o UserKnownHostsFile=… -o StrictHostKeyChecking=yes -o BatchMode=yes -p PORT`.
    public var sshOptions: [String] {
        [
            "-i", clientKeyPath, "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=\(knownHostsPath)", "-o",
            "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-p", String(port),
        ]
    }

    /// `ssh OPTIONS user@127.0.0.1`: append the remote command.
    public var sshArguments: [String] { sshOptions + ["\(user)@\(host)"] }

    /// A `GIT_SSH_COMMAND` value that reaches this server with the client key.
    public var gitSSHCommand: String { Shell.join(["ssh"] + sshOptions) }

    /// `ssh://user@127.0.0.1:PORT/absolute/path`, for git remotes.
    public func url(path: String) -> String {
        "ssh://\(user)@\(host):\(port)" + (path.hasPrefix("/") ? path : "/" + path)
    }

    /// Adds a public key line (`ssh-ed25519 AAAA… comment`) to authorized_keys.
    public func authorize(publicKey: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/authorized_keys"))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data((publicKey.trimmingCharacters(in: .whitespacesAndNewlines) + "\n").utf8))
    }

    /// Makes another ed25519 key pair in the server's folder (not authorized unless
    /// passed to ``authorize(publicKey:)``); returns the private key's path.
    public func makeKey(name: String, passphrase: String = "") async throws -> String {
        let path = directory + "/" + name
        try await Self.keygen(path: path, comment: "kh-test-\(name)", passphrase: passphrase)
        return path
    }

    // MARK: helpers

    private static func makeTemporaryDirectory() throws -> String {
        var template = Array((NSTemporaryDirectory() + "/kh-sshd.XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SSHTestServerError(message: "mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        return String(cString: made)
    }

    private static func currentUser() -> String {
        if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name { return String(cString: name) }
        return ProcessInfo.processInfo.environment["USER"] ?? "root"
    }

    private static func keygen(path: String, comment: String, passphrase: String) async throws {
        let result: CommandResult
        do {
            result = try await LocalRunner().run(
                Command("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", path]),
                options: RunOptions(timeout: .seconds(30)))
        } catch {
            throw SSHTestServerError(message: "ssh-keygen could not run: \(error)", hint: "install openssh-client")
        }
        guard result.succeeded else {
            throw SSHTestServerError(message: "ssh-keygen failed for \(path): \(result.summary): \(result.stderrText)")
        }
    }

    private static func publicKeyLine(_ path: String) throws -> String {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let fields = text.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 2 else { throw SSHTestServerError(message: "\(path) is not a public key") }
        return "\(fields[0]) \(fields[1])".trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func config(directory: String, port: Int, extra: [String]) -> String {
        ([
            "Port \(port)",
            "ListenAddress 127.0.0.1",
            "HostKey \(directory)/host_ed25519",
            "PidFile \(directory)/sshd.pid",
            "AuthorizedKeysFile \(directory)/authorized_keys",
            "StrictModes no",
            "UsePAM no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "MaxSessions 64",
            "MaxStartups 64:30:128",
            "PrintMotd no",
            "PrintLastLog no",
            "UseDNS no",
            "LogLevel INFO",
            "Subsystem sftp internal-sftp",
        ] + extra).joined(separator: "\n") + "\n"
    }

    /// A port the kernel had free a moment ago on 127.0.0.1.
    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SSHTestServerError(message: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { throw SSHTestServerError(message: "bind 127.0.0.1:0: \(String(cString: strerror(errno)))") }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw SSHTestServerError(message: "getsockname: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// `sshd -D -e -f CONFIG`, stdin on /dev/null, output to `log`, own process group,
    /// default signal dispositions and an empty mask.
    private static func spawn(sshd: String, config: String, log: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        let argv = [sshd, "-D", "-e", "-f", config]
        var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, sshd, &actions, &attributes, &cArguments, environ)
        guard rc == 0 else { throw SSHTestServerError(message: "posix_spawn \(sshd): \(String(cString: strerror(rc)))") }
        return pid
    }

    private enum StartState { case listening, exited, timedOut }

    private static func waitForPort(_ port: Int, pid: pid_t, until deadline: ContinuousClock.Instant) -> StartState {
        while ContinuousClock.now < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { return .exited }
            if canConnect(port) { return .listening }
            usleep(20_000)
        }
        return .timedOut
    }

    private static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    private static func stopProcess(_ pid: pid_t) {
        _ = kill(pid, SIGTERM)
        let until = ContinuousClock.now + .seconds(5)
        var status: Int32 = 0
        while ContinuousClock.now < until {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid || (reaped < 0 && errno == ECHILD) { return }
            usleep(10_000)
        }
        _ = kill(pid, SIGKILL)
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    private static func logTail(_ path: String) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "(no log)" }
        return text.split(separator: "\n").suffix(5).joined(separator: " | ")
    }
}
