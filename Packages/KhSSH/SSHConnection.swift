import Foundation
import KhCore
import KhProcess
import Synchronization

/// One authenticated SSH connection that runs many commands, several at once.
///
/// The connection owns a thread: libssh2's session, channels and socket live there
/// and nowhere else (C handles are not Sendable). Commands are handed to that thread,
/// which opens one channel per command and drives every channel in a single
/// non-blocking `poll` loop, so stdout and stderr of all commands drain together
/// and neither stream can stall the other.
///
/// Each command:
/// - runs through the login shell as `echo $$; COMMAND`: the first stdout line (the
///   shell's process ID, which sshd made a process-group leader) is taken off the
///   output and becomes ``CommandResult/pid``; with it a deadline, the idle watchdog,
///   cancellation or SIGINT to kh kill the whole remote group (`kill -TERM -- -PID` on
///   a second channel, then `KILL` after `killGrace`);
/// - gets EOF on stdin at once;
/// - reports `exit N` or the signal that ended it (`exit-signal`) as data.
///
/// If the server never answers after the KILL, the channel is given up: the result
/// then says `exit 255` (as `ssh` does when it has no exit status).
/// `RunOptions.drainAfterExit` and `killLeftovers` do not apply over SSH.
public final class SSHConnection: Sendable {
    /// Where and as whom this connection was made.
    public let configuration: SSHConfiguration
    /// The server's host key, as verified.
    public let hostKey: SSHHostKey
    let core: ConnectionCore

    private init(configuration: SSHConfiguration, hostKey: SSHHostKey, core: ConnectionCore) {
        self.configuration = configuration
        self.hostKey = hostKey
        self.core = core
    }

    deinit { core.submit(.shutdown) }

    /// Connects, checks the host key and authenticates with the configured key, all
    /// within `configuration.connectTimeout`. Throws ``SSHError`` (or
    /// `CancellationError` when the task is cancelled).
    public static func connect(_ configuration: SSHConfiguration) async throws -> SSHConnection {
        try LibSSH2.initialize(host: configuration.host, port: configuration.port)
        let core = try ConnectionCore(configuration: configuration)
        let hostKey = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<SSHHostKey, any Error>) in
                let thread = Thread { core.threadMain { continuation.resume(with: $0) } }
                thread.name = "kh.ssh.\(configuration.host):\(configuration.port)"
                thread.start()
            }
        } onCancel: {
            core.cancelConnect()
        }
        return SSHConnection(configuration: configuration, hostKey: hostKey, core: core)
    }

    /// Whether the connection can still run commands (not closed, not lost).
    public var isOpen: Bool { core.isOpen }

    /// Runs a ``Command`` on the host: `cd DIR && exec env K=V executable args…`, every
    /// word quoted for a POSIX shell, so arguments arrive unchanged.
    public func run(_ command: Command, options: RunOptions = RunOptions()) async throws -> CommandResult {
        try await execute(line: Shell.commandLine(for: command, exec: true), command: command, options: options)
    }

    /// Runs a command line as is through the user's login shell on the host.
    /// The result's `command` is `sh -c LINE`.
    public func execute(_ commandLine: String, options: RunOptions = RunOptions()) async throws -> CommandResult {
        try await execute(line: commandLine, command: Command("sh", ["-c", commandLine]), options: options)
    }

    private func execute(line: String, command: Command, options: RunOptions) async throws -> CommandResult {
        let id = core.nextID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<CommandResult, any Error>) in
                core.submit(.exec(ExecRequest(id: id, line: line, command: command, options: options, continuation: continuation)))
            }
        } onCancel: {
            core.submit(.cancel(id))
        }
    }

    /// Kills what still runs (TERM, then KILL after each command's grace), disconnects
    /// and waits for the connection's thread to finish.
    public func close() async {
        core.submit(.shutdown)
        await core.waitClosed()
    }
}

/// A command handed to the connection's thread.
struct ExecRequest: Sendable {
    let id: UInt64
    let line: String
    let command: Command
    let options: RunOptions
    let continuation: CheckedContinuation<CommandResult, any Error>
}

/// What the connection's thread is asked to do.
enum Request: Sendable {
    case exec(ExecRequest)
    case cancel(UInt64)
    /// SIGINT/SIGTERM to kh: kill every remote command, then call back.
    case killAll(@Sendable () -> Void)
    case shutdown
}

/// The part of a connection shared between callers and its thread: an inbox of
/// requests and a pipe that wakes the thread's `poll`.
final class ConnectionCore: Sendable {
    let configuration: SSHConfiguration
    let wakeRead: Int32
    let wakeWrite: Int32
    private struct State {
        var inbox: [Request] = []
        var closedError: SSHError?
        var connectCancelled = false
        var ids: UInt64 = 0
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
        var finished = false
    }
    private let state = Mutex(State())

    init(configuration: SSHConfiguration) throws {
        self.configuration = configuration
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            throw SSHError(
                kind: .connect, call: "pipe2", systemErrno: errno, detail: String(cString: strerror(errno)), host: configuration.host,
                port: configuration.port)
        }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    func nextID() -> UInt64 {
        state.withLock {
            $0.ids += 1
            return $0.ids
        }
    }

    var isOpen: Bool { state.withLock { $0.closedError == nil } }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    /// Queues a request; on a closed connection an exec fails at once.
    func submit(_ request: Request) {
        let refused: SSHError? = state.withLock { state in
            if let error = state.closedError {
                return error
            }
            state.inbox.append(request)
            return nil
        }
        if let refused {
            switch request {
            case .exec(let exec): exec.continuation.resume(throwing: refused)
            case .killAll(let done): done()
            case .cancel, .shutdown: break
            }
            return
        }
        wake()
    }

    func cancelConnect() {
        state.withLock { $0.connectCancelled = true }
        wake()
    }

    var connectCancelled: Bool { state.withLock { $0.connectCancelled } }

    /// Takes the queued requests (the thread's side).
    func takeInbox() -> [Request] {
        state.withLock { state in
            defer { state.inbox.removeAll() }
            return state.inbox
        }
    }

    /// Marks the connection unusable; later requests are refused with `error`.
    /// Returns the requests still queued, for the thread to answer.
    func markClosed(_ error: SSHError) -> [Request] {
        state.withLock { state in
            if state.closedError == nil { state.closedError = error }
            defer { state.inbox.removeAll() }
            return state.inbox
        }
    }

    func markFinished() {
        let waiters = state.withLock { state in
            state.finished = true
            defer { state.closeWaiters.removeAll() }
            return state.closeWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func waitClosed() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state in
                if !state.finished { state.closeWaiters.append(continuation) }
                return state.finished
            }
            if done { continuation.resume() }
        }
    }

    /// The thread: connect, report, then serve commands until shut down or lost.
    func threadMain(onConnected: (Result<SSHHostKey, any Error>) -> Void) {
        let loop: EventLoop
        do {
            loop = try EventLoop.connect(core: self)
        } catch {
            let reported =
                error as? SSHError
                ?? SSHError(kind: .connect, call: "connect", detail: "\(error)", host: configuration.host, port: configuration.port)
            for request in markClosed(reported) {
                if case .exec(let exec) = request { exec.continuation.resume(throwing: reported) }
            }
            onConnected(.failure(error))
            markFinished()
            return
        }
        onConnected(.success(loop.hostKey))
        let token = Interrupts.register(stage: .killChildren) { [weak self] _ in self?.killAllBlocking() }
        loop.run()
        Interrupts.unregister(token)
        markFinished()
    }

    /// Kills every remote command and waits (bounded) until they have ended.
    func killAllBlocking() {
        let done = DispatchSemaphore(value: 0)
        submit(.killAll({ done.signal() }))
        _ = done.wait(timeout: .now() + .seconds(Int(ChildProcesses.interruptGrace.seconds) + 3))
    }
}
