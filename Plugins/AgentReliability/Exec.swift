import ArgumentParser
import Foundation
import KhCore
import KhPluginAPI
import KhProcess
import Synchronization

extension Reliability {
    /// `kh reliability exec`: the deadlock-proof entrypoint wrapper.
    struct Exec: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "exec",
            abstract: "Run a command with stdin closed, in its own process group, killed whole at a deadline; write a sentinel on every way out.",
            discussion: """
                Meant as a container entrypoint: `kh reliability exec --deadline 1h --idle-timeout 15m --sentinel /shared/done.json -- agent.sh`. \
                The child's stdout and stderr are passed through line by line. Exit codes: the child's own; 124 when the deadline \
                passed, 123 when it was killed for printing nothing for --idle-timeout, 128+N when a signal N ended it, 126 not \
                executable, 127 not found, 130 when kh itself got SIGINT/SIGTERM. The sentinel JSON says which.
                """)

        @OptionGroup var global: GlobalOptions

        @Option(name: .long, help: ArgumentHelp("Kill the whole process group after this long (90s, 45m, 1h).", valueName: "duration"))
        var deadline: KhDuration

        @Option(
            name: .customLong("idle-timeout"), help: ArgumentHelp("Kill the group when nothing was printed for this long.", valueName: "duration"))
        var idleTimeout: KhDuration?

        @Option(name: .customLong("kill-grace"), help: ArgumentHelp("Time between SIGTERM and SIGKILL.", valueName: "duration"))
        var killGrace: KhDuration = KhDuration(.seconds(10))

        @Option(name: .long, help: ArgumentHelp("Write this JSON file (atomically) on every way out.", valueName: "file"))
        var sentinel: String?

        @Argument(parsing: .postTerminator, help: ArgumentHelp("The command and its arguments, after `--`.", valueName: "command"))
        var command: [String] = []

        func validate() throws {
            guard !command.isEmpty else { throw ValidationError("a command is required after `--`: kh reliability exec --deadline 1h -- CMD ARGS") }
            guard deadline.duration > .zero else { throw ValidationError("--deadline: expected a duration above zero such as 90s or 1h") }
            if let idleTimeout, idleTimeout.duration <= .zero {
                throw ValidationError("--idle-timeout: expected a duration above zero such as 5m")
            }
            if let sentinel, sentinel.isEmpty { throw ValidationError("--sentinel: expected a file path, got an empty string") }
        }

        func run() async throws {
            let context = try global.makeContext()
            let supervisor = ExecSupervisor(
                command: command, deadline: deadline.duration, idleTimeout: idleTimeout?.duration, killGrace: killGrace.duration,
                sentinelPath: sentinel)
            let code = try await supervisor.run(context: context)
            if code != 0 { throw ExitCode(code) }
        }
    }
}

/// Why `kh reliability exec` ended, as the sentinel says it.
public enum ExecReason: String, Codable, Sendable {
    /// The child exited 0.
    case succeeded
    /// The child exited non-zero.
    case failed
    /// The deadline passed; the group was killed.
    case timeout
    /// Nothing was printed for the idle timeout; the group was killed.
    case idle
    /// A signal from elsewhere ended the child.
    case signaled
    /// kh got SIGINT or SIGTERM; the group was killed.
    case interrupted
    /// The command was not found or could not be executed.
    case notStarted = "not-started"
}

/// The sentinel file's body (schemaVersion 1).
public struct ExecSentinel: Codable, Sendable, Equatable {
    public var schemaVersion = 1
    public var reason: ExecReason
    /// What kh exits with.
    public var exitCode: Int32
    /// The child's own exit status, when it exited by itself.
    public var childExitCode: Int32?
    /// The signal that ended the child (`SIGKILL`), when one did.
    public var signal: String?
    public var command: [String]
    /// The child's pid, which is also its process group id.
    public var pid: Int32?
    public var startedAt: Date
    public var endedAt: Date
    public var durationSeconds: Double
    public var deadlineSeconds: Double
    public var idleTimeoutSeconds: Double?
    /// Processes of the group outlived the child and were killed.
    public var leftoversKilled: Bool
    public var message: String
}

/// The documented exit codes of `kh reliability exec`.
public enum ExecExitCode {
    /// The deadline passed (as coreutils `timeout`).
    public static let timeout: Int32 = 124
    /// Killed by the idle watchdog.
    public static let idle: Int32 = 123
    /// Found but not executable (as shells).
    public static let notExecutable: Int32 = 126
    /// Not found (as shells).
    public static let notFound: Int32 = 127

    /// The exit code and reason for a finished run.
    public static func outcome(of result: CommandResult) -> (code: Int32, reason: ExecReason) {
        if result.timedOut { return (timeout, .timeout) }
        if result.killedForIdle { return (idle, .idle) }
        switch result.termination {
        case .exited(let code): return (code, code == 0 ? .succeeded : .failed)
        case .signaled(let signal): return (128 + signal, .signaled)
        }
    }
}

/// Runs one command for `exec` and writes its sentinel exactly once, whichever way
/// the run ends (normal end, start failure, or kh's own SIGINT/SIGTERM).
public final class ExecSupervisor: Sendable {
    let command: [String]
    let deadline: Duration
    let idleTimeout: Duration?
    let killGrace: Duration
    let sentinelPath: String?
    private let written = Mutex(false)

    public init(command: [String], deadline: Duration, idleTimeout: Duration?, killGrace: Duration, sentinelPath: String?) {
        self.command = command
        self.deadline = deadline
        self.idleTimeout = idleTimeout
        self.killGrace = killGrace
        self.sentinelPath = sentinelPath
    }

    /// Runs the command and returns the exit code kh should exit with.
    public func run(context: CommandContext) async throws -> Int32 {
        let console = context.console
        let started = context.clock.now()
        let displayCommand = context.redactor.redactArguments(command)
        let evidence: EvidenceRun?
        do {
            evidence = try context.startEvidence()
        } catch {
            console.warning("no evidence for this run: \(error)")
            evidence = nil
        }
        let deadline = self.deadline
        let idleTimeout = self.idleTimeout
        let interruptedSentinel: @Sendable (Int32?) -> ExecSentinel = { signal in
            let now = context.clock.now()
            return ExecSentinel(
                reason: .interrupted, exitCode: KhExitCode.interrupted.rawValue, childExitCode: nil, signal: nil, command: displayCommand,
                pid: nil, startedAt: started, endedAt: now, durationSeconds: now.timeIntervalSince(started), deadlineSeconds: deadline.seconds,
                idleTimeoutSeconds: idleTimeout?.seconds, leftoversKilled: false,
                message: "kh received \(signal.map(Signals.name) ?? "SIGINT or SIGTERM"): the process group was killed")
        }
        let interruptToken = Interrupts.register(stage: .flushEvidence) { [self] signal in
            self.writeSentinel(interruptedSentinel(signal), console: console)
        }
        defer { Interrupts.unregister(interruptToken) }

        let options = RunOptions(
            timeout: deadline, killGrace: killGrace, idleTimeout: idleTimeout, killOnIdle: idleTimeout != nil,
            logPath: evidence?.logPath(for: "exec"), captureLimit: 16 << 10, keep: .tail,
            onLine: { line in console.write(line.text + "\n", to: line.stream == .stdout ? .stdout : .stderr) },
            redactor: context.redactor)
        let result: CommandResult
        do {
            result = try await context.runner.run(Command(command[0], Array(command.dropFirst())), options: options)
        } catch let error as ProcessError {
            let code = error.kind == .notFound ? ExecExitCode.notFound : ExecExitCode.notExecutable
            let now = context.clock.now()
            console.error(error.message)
            finish(
                ExecSentinel(
                    reason: .notStarted, exitCode: code, childExitCode: nil, signal: nil, command: displayCommand, pid: nil, startedAt: started,
                    endedAt: now, durationSeconds: now.timeIntervalSince(started), deadlineSeconds: deadline.seconds,
                    idleTimeoutSeconds: idleTimeout?.seconds, leftoversKilled: false, message: error.message),
                evidence: evidence, console: console)
            return code
        }
        let (code, reason) = ExecExitCode.outcome(of: result)
        let now = context.clock.now()
        var signalName: String?
        if case .signaled(let signal) = result.termination { signalName = Signals.name(signal) }
        let sentinel = ExecSentinel(
            reason: reason, exitCode: code, childExitCode: result.exitCode, signal: signalName, command: displayCommand, pid: result.pid,
            startedAt: started, endedAt: now, durationSeconds: result.duration.seconds, deadlineSeconds: deadline.seconds,
            idleTimeoutSeconds: idleTimeout?.seconds, leftoversKilled: result.leftoversKilled, message: result.summary)
        if reason == .timeout || reason == .idle {
            console.warning("\(command[0]): \(result.summary); exit \(code)")
        }
        // kh got SIGINT/SIGTERM: its handler writes the same sentinel; whichever comes first wins.
        if Interrupts.isStopping {
            writeSentinel(interruptedSentinel(nil), console: console)
            return KhExitCode.interrupted.rawValue
        }
        finish(sentinel, evidence: evidence, console: console)
        return code
    }

    private func finish(_ sentinel: ExecSentinel, evidence: EvidenceRun?, console: Console) {
        writeSentinel(sentinel, console: console)
        guard let evidence else { return }
        let status: CheckStatus = sentinel.reason == .succeeded ? .pass : .fail
        let data = try? JSONValue(encoding: sentinel)
        _ = try? evidence.record(
            EvidenceRecord(
                kind: "exec", name: "exec", status: status, message: "\(sentinel.reason.rawValue): \(sentinel.message)",
                durationSeconds: sentinel.durationSeconds, log: evidence.relativeLogPath(for: "exec"), data: data))
        let khCode: KhExitCode = sentinel.reason == .succeeded ? .success : sentinel.reason == .notStarted ? .blocked : .checkFailed
        try? evidence.finish(exitCode: khCode, result: "\(sentinel.reason.rawValue), exit \(sentinel.exitCode)")
    }

    /// Writes the sentinel once: later calls do nothing, and a call made while the first
    /// is writing returns only once the file is in place (so kh cannot exit before it is).
    func writeSentinel(_ sentinel: ExecSentinel, console: Console) {
        guard let sentinelPath else { return }
        written.withLock { done in
            guard !done else { return }
            done = true
            do {
                let data = try KhJSON.encoder(pretty: true).encode(sentinel)
                try AtomicFile.write(data + Data("\n".utf8), to: sentinelPath)
            } catch {
                console.error("--sentinel \(sentinelPath): could not write: \(error)")
            }
        }
    }
}
