import KhCore
import KhProcess
import Synchronization

/// Runs commands on a host over SSH, through the same ``CommandRunner`` protocol as
/// `LocalRunner` and `PrefixRunner`, so any kh code can run a ``Command`` locally,
/// through a prefix or over SSH.
///
/// The runner connects on first use and keeps the one connection for every later
/// command (several may run at once, each on its own channel). A command line is
/// `cd DIR && exec env K=V executable args…`, every word quoted with `Shell.quote`,
/// so arguments with spaces, quotes or `$` arrive unchanged. Deadlines, the idle
/// watchdog, logs, capture limits and redaction follow ``RunOptions`` as for local
/// commands (see ``SSHConnection`` for how remote process groups are killed).
///
/// If the connection was lost before a command started, the runner connects again
/// once and runs it; a command that had started is never run twice.
public final class SSHRunner: CommandRunner {
    /// Where and as whom commands run.
    public let configuration: SSHConfiguration
    private let current: Mutex<Task<SSHConnection, any Error>?>

    /// A runner that connects with `configuration` when it first runs a command.
    public init(configuration: SSHConfiguration) {
        self.configuration = configuration
        current = Mutex(nil)
    }

    /// A runner over an existing connection (reconnecting with its configuration if lost).
    public init(connection: SSHConnection) {
        configuration = connection.configuration
        current = Mutex(Task { connection })
    }

    /// `ssh user@host:port`.
    public var location: String { "ssh \(configuration.destination)" }

    /// The open connection, made now if there is none (or the last one was lost).
    public func connection() async throws -> SSHConnection {
        let configuration = configuration
        let task = current.withLock { task in
            if let task { return task }
            let made = Task { try await SSHConnection.connect(configuration) }
            task = made
            return made
        }
        do {
            let connection = try await task.value
            if connection.isOpen { return connection }
            forget(task)
            return try await self.connection()
        } catch {
            // A failed connect is not cached: the next command tries again.
            forget(task)
            throw error
        }
    }

    private func forget(_ task: Task<SSHConnection, any Error>) {
        current.withLock { if $0 == task { $0 = nil } }
    }

    /// Runs `command` on the host (see the type's documentation).
    public func run(_ command: Command, options: RunOptions) async throws -> CommandResult {
        let connection = try await connection()
        do {
            return try await connection.run(command, options: options)
        } catch let error as SSHError where error.kind == .connectionLost && error.commandStarted == false {
            return try await self.connection().run(command, options: options)
        }
    }

    /// Closes the connection (killing what still runs on it).
    public func close() async {
        let task = current.withLock { task in
            defer { task = nil }
            return task
        }
        if let connection = try? await task?.value { await connection.close() }
    }
}
