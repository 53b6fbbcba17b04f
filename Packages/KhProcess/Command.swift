import Foundation
import KhCore

/// A command to run: an executable (a name looked up on PATH, or a path), its
/// arguments, environment additions and working directory.
public struct Command: Sendable, Hashable, Codable {
    public var executable: String
    public var arguments: [String]
    /// Added to (or, with `inheritEnvironment == false`, replacing) the runner's environment.
    public var environment: [String: String]
    /// Whether the runner's environment is passed on.
    public var inheritEnvironment: Bool
    /// The child's working directory; nil keeps the current one.
    public var workingDirectory: String?

    public init(
        _ executable: String, _ arguments: [String] = [], environment: [String: String] = [:], inheritEnvironment: Bool = true,
        workingDirectory: String? = nil
    ) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.inheritEnvironment = inheritEnvironment
        self.workingDirectory = workingDirectory
    }

    /// The command as a person would type it in a POSIX shell.
    public var displayString: String { Shell.join([executable] + arguments) }
}

/// Which output stream a line came from.
public enum OutputStream: String, Sendable, Codable { case stdout, stderr }

/// One line of a child's output, as it arrived.
public struct OutputLine: Sendable {
    public var stream: OutputStream
    /// The line without its newline (invalid UTF-8 repaired).
    public var text: String
    public var at: Date

    public init(stream: OutputStream, text: String, at: Date) {
        self.stream = stream
        self.text = text
        self.at = at
    }
}

/// The idle watchdog fired: nothing arrived on stdout or stderr for `silentSeconds`.
public struct StallEvent: Sendable, Codable, Equatable {
    public var at: Date
    public var silentSeconds: Double
    /// The last line seen before the silence, if any (redacted).
    public var lastLine: String?
    /// Whether the runner killed the group for it (`RunOptions.killOnIdle`).
    public var killed: Bool

    public init(at: Date, silentSeconds: Double, lastLine: String?, killed: Bool) {
        self.at = at
        self.silentSeconds = silentSeconds
        self.lastLine = lastLine
        self.killed = killed
    }
}

/// Which part of a long output the in-memory capture keeps.
public enum CaptureKeep: String, Sendable, Codable { case head, tail }

/// How a command is run: deadlines, watchdog, logging, capture.
public struct RunOptions: Sendable {
    /// Kill the whole process group after this long (TERM, then KILL after ``killGrace``).
    public var timeout: Duration?
    /// How long after TERM before KILL.
    public var killGrace: Duration
    /// Report a stall when no output arrived for this long.
    public var idleTimeout: Duration?
    /// Kill the group (TERM, then KILL) when the idle watchdog fires.
    public var killOnIdle: Bool
    /// Stream every line, timestamped and redacted, to this file (appended).
    public var logPath: String?
    /// Bytes kept in memory per stream; the rest is counted, not kept.
    public var captureLimit: Int
    /// Keep the first or the last ``captureLimit`` bytes.
    public var keep: CaptureKeep
    /// Called for every complete line, on the runner's I/O thread.
    public var onLine: (@Sendable (OutputLine) -> Void)?
    /// Called when the idle watchdog fires.
    public var onStall: (@Sendable (StallEvent) -> Void)?
    /// Secrets to remove from the log file and from `OutputLine`s.
    public var redactor: Redactor?
    /// After the child exits, how long to keep reading while a grandchild still holds
    /// its stdout or stderr open; then the group is killed.
    public var drainAfterExit: Duration
    /// Kill what is left of the process group when the child has exited.
    public var killLeftovers: Bool

    public init(
        timeout: Duration? = nil, killGrace: Duration = .seconds(5), idleTimeout: Duration? = nil, killOnIdle: Bool = false,
        logPath: String? = nil, captureLimit: Int = 8 << 20, keep: CaptureKeep = .head, onLine: (@Sendable (OutputLine) -> Void)? = nil,
        onStall: (@Sendable (StallEvent) -> Void)? = nil, redactor: Redactor? = nil, drainAfterExit: Duration = .seconds(2),
        killLeftovers: Bool = true
    ) {
        self.timeout = timeout
        self.killGrace = killGrace
        self.idleTimeout = idleTimeout
        self.killOnIdle = killOnIdle
        self.logPath = logPath
        self.captureLimit = captureLimit
        self.keep = keep
        self.onLine = onLine
        self.onStall = onStall
        self.redactor = redactor
        self.drainAfterExit = drainAfterExit
        self.killLeftovers = killLeftovers
    }
}

/// How the child ended: an exit status, or the signal that terminated it.
public enum Termination: Sendable, Hashable, Codable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    public var description: String {
        switch self {
        case .exited(let code): "exit \(code)"
        case .signaled(let signal): "killed by \(Signals.name(signal))"
        }
    }
}

/// What a run produced. A non-zero exit is data here, not an error.
public struct CommandResult: Sendable {
    public var command: Command
    public var pid: Int32
    public var termination: Termination
    public var stdout: Data
    public var stderr: Data
    /// Total bytes seen per stream (capture may hold fewer).
    public var stdoutBytes: Int
    public var stderrBytes: Int
    public var stdoutTruncated: Bool
    public var stderrTruncated: Bool
    public var startedAt: Date
    public var duration: Duration
    /// The deadline passed and the group was killed.
    public var timedOut: Bool
    /// The idle watchdog killed the group.
    public var killedForIdle: Bool
    /// Every time the idle watchdog fired.
    public var stalls: [StallEvent]
    /// Processes of the group outlived the child and were killed.
    public var leftoversKilled: Bool

    public init(
        command: Command, pid: Int32 = 0, termination: Termination, stdout: Data = Data(), stderr: Data = Data(),
        stdoutBytes: Int? = nil, stderrBytes: Int? = nil, stdoutTruncated: Bool = false, stderrTruncated: Bool = false,
        startedAt: Date = Date(), duration: Duration = .zero, timedOut: Bool = false, killedForIdle: Bool = false,
        stalls: [StallEvent] = [], leftoversKilled: Bool = false
    ) {
        self.command = command
        self.pid = pid
        self.termination = termination
        self.stdout = stdout
        self.stderr = stderr
        self.stdoutBytes = stdoutBytes ?? stdout.count
        self.stderrBytes = stderrBytes ?? stderr.count
        self.stdoutTruncated = stdoutTruncated
        self.stderrTruncated = stderrTruncated
        self.startedAt = startedAt
        self.duration = duration
        self.timedOut = timedOut
        self.killedForIdle = killedForIdle
        self.stalls = stalls
        self.leftoversKilled = leftoversKilled
    }

    /// The exit status, when the child exited by itself.
    public var exitCode: Int32? {
        if case .exited(let code) = termination { return code }
        return nil
    }

    /// Exited with 0, within its deadline.
    public var succeeded: Bool { exitCode == 0 && !timedOut && !killedForIdle }

    /// Captured stdout as text.
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    /// Captured stderr as text.
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }

    /// One line for people: `exit 0 in 1.2s`, `timed out after 10.0s (killed by SIGTERM)`.
    public var summary: String {
        var text: String
        if timedOut {
            text = "timed out after \(duration.humanDescription) (\(termination))"
        } else if killedForIdle {
            text = "killed after \(stalls.last.map { String(format: "%.0fs", $0.silentSeconds) } ?? "?") without output (\(termination))"
        } else {
            text = "\(termination) in \(duration.humanDescription)"
        }
        if leftoversKilled { text += "; leftover processes of its group were killed" }
        return text
    }
}

/// Why a command could not be run at all.
public struct ProcessError: KhReportableError, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The executable is not on PATH (or not at the given path).
        case notFound
        /// It exists but cannot be executed.
        case notExecutable
        /// pipe, spawn or another system call failed.
        case systemCall(String)
    }

    public var kind: Kind
    public var executable: String
    public var detail: String

    public var exitCode: KhExitCode {
        switch kind {
        case .notFound, .notExecutable: .blocked
        case .systemCall: .external
        }
    }

    public var message: String {
        switch kind {
        case .notFound: "\(executable): command not found (\(detail))"
        case .notExecutable: "\(executable): not executable (\(detail))"
        case .systemCall(let call): "\(executable): \(call) failed: \(detail)"
        }
    }

    public var hint: String? {
        kind == .notFound ? "install \(executable) or put it on PATH; `kh doctor` lists the tools kh uses" : nil
    }
}

/// Runs commands. Local, through a command prefix, or over SSH: the same call.
///
/// A non-zero exit status, a timeout or an idle kill is reported in the
/// ``CommandResult``; only a command that cannot be started throws
/// (``ProcessError``), and task cancellation kills the group and throws
/// `CancellationError`.
public protocol CommandRunner: Sendable {
    /// Where commands run, for logs and evidence: `local`, `prefix "ssh node1"`.
    var location: String { get }
    /// Runs a command to completion (or its deadline).
    func run(_ command: Command, options: RunOptions) async throws -> CommandResult
}

extension CommandRunner {
    /// Runs with default options.
    public func run(_ command: Command) async throws -> CommandResult {
        try await run(command, options: RunOptions())
    }
}

/// Signal names for messages.
public enum Signals {
    /// `SIGTERM`, `SIGKILL`, … or `signal N`.
    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGHUP: "SIGHUP"
        case SIGINT: "SIGINT"
        case SIGQUIT: "SIGQUIT"
        case SIGKILL: "SIGKILL"
        case SIGPIPE: "SIGPIPE"
        case SIGTERM: "SIGTERM"
        case SIGABRT: "SIGABRT"
        case SIGSEGV: "SIGSEGV"
        default: "signal \(signal)"
        }
    }
}
