import CLibSSH2
import Foundation
import KhCore
import KhProcess

/// One command on one channel, owned by the connection's thread: its phase, output
/// streams, log, timers and the caller waiting for its result.
final class ExecJob {
    enum Phase {
        case queued, opening, starting, sendingEOF, running, closing, freeing, done

        /// Whether the phase waits on the socket.
        var usesSocket: Bool { self != .queued && self != .done }
    }

    /// How long after SIGKILL to wait for the server's exit status before giving up.
    static let abandonAfter: Duration = .seconds(2)
    /// How long a kill request may take.
    static let helperDeadline: Duration = .seconds(10)
    /// How long to wait for the server to confirm a channel's close.
    static let freeingDeadline: Duration = .seconds(5)

    let id: UInt64
    /// A kill request of kh's own (no caller, no output kept).
    let isHelper: Bool
    /// What is sent to the server: `echo $$; LINE` (helpers: their line).
    let wireLine: String
    let command: Command
    let options: RunOptions
    let location: String
    private var continuation: CheckedContinuation<CommandResult, any Error>?
    private(set) var isResolved = false

    var phase: Phase = .queued { didSet { phaseSince = .now } }
    private(set) var phaseSince = ContinuousClock.now
    var channel: ChannelHandle?

    let startedAt = Date()
    let startInstant = ContinuousClock.now
    let deadline: ContinuousClock.Instant?
    private(set) var hasStarted = false

    var lastOutput = ContinuousClock.now
    var stallReported = false
    private var lastLine: String?
    private var stalls: [StallEvent] = []
    var timedOut = false
    var killedForIdle = false
    var cancelled = false
    var killRequestedAt: ContinuousClock.Instant?
    var termSentAt: ContinuousClock.Instant?
    var killSentAt: ContinuousClock.Instant?

    private(set) var remotePID: Int32?
    /// The first stdout line (the shell's `$$`) has not been seen yet.
    private var pidPending: Bool
    private var pidLine: [UInt8] = []
    private var out: StreamState
    private var err: StreamState
    private(set) var log: LogWriter?
    private var termination: Termination?
    private var error: (any Error)?

    init(request: ExecRequest, location: String) {
        id = request.id
        isHelper = false
        wireLine = "echo $$; " + request.line
        command = request.command
        options = request.options
        self.location = location
        continuation = request.continuation
        deadline = request.options.timeout.map { ContinuousClock.now + $0 }
        pidPending = true
        out = StreamState(stream: .stdout, fd: -1, limit: request.options.captureLimit, keep: request.options.keep)
        err = StreamState(stream: .stderr, fd: -1, limit: request.options.captureLimit, keep: request.options.keep)
        do {
            log = try request.options.logPath.map { try LogWriter(path: $0, redactor: request.options.redactor) }
        } catch {
            self.error = error
            phase = .done
        }
    }

    init(helperLine: String, location: String) {
        id = 0
        isHelper = true
        wireLine = helperLine
        command = Command("sh", ["-c", helperLine])
        options = RunOptions(captureLimit: 4096)
        self.location = location
        deadline = nil
        pidPending = false
        out = StreamState(stream: .stdout, fd: -1, limit: 4096, keep: .head)
        err = StreamState(stream: .stderr, fd: -1, limit: 4096, keep: .head)
    }

    /// A note of kh's own in the command's log.
    func note(_ text: String) { log?.header(text) }

    /// The exec request was accepted: the command runs now.
    func started() {
        hasStarted = true
        lastOutput = .now
        note("started: \(command.displayString) on \(location)")
    }

    /// Records the first error; the job ends with it.
    func fail(_ error: any Error) {
        if self.error == nil { self.error = error }
    }

    // MARK: output

    func consume(_ bytes: UnsafeRawBufferPointer, stream: KhProcess.OutputStream) {
        var chunk = bytes
        if stream == .stdout && pidPending {
            guard let newline = chunk.firstIndex(of: 0x0A) else {
                pidLine.append(contentsOf: chunk)
                if pidLine.count > 20 { givePIDLineBack() }
                return
            }
            pidLine.append(contentsOf: chunk[chunk.startIndex..<newline])
            pidPending = false
            if let text = String(bytes: pidLine, encoding: .utf8), let pid = Int32(text), pid > 1 {
                remotePID = pid
                // The shell runs now: the idle clock starts here, not at the exec request.
                lastOutput = .now
                note("remote process group \(pid)")
                pidLine.removeAll()
            } else {
                pidLine.append(0x0A)
                givePIDLineBack()
            }
            chunk = UnsafeRawBufferPointer(rebasing: chunk[(newline + 1)...])
            if chunk.isEmpty { return }
        }
        deliver(chunk, stream: stream)
    }

    /// The first line was not a process ID (a shell without `$$`?): it is output.
    private func givePIDLineBack() {
        pidPending = false
        let line = pidLine
        pidLine.removeAll()
        line.withUnsafeBytes { deliver($0, stream: .stdout) }
    }

    private func deliver(_ chunk: UnsafeRawBufferPointer, stream: KhProcess.OutputStream) {
        guard !chunk.isEmpty else { return }
        lastOutput = .now
        stallReported = false
        let redaction = options.redactor?.snapshot
        let wantLines = options.onLine != nil
        let onLine = options.onLine
        let stamp = Date()
        if stream == .stdout {
            out.consume(chunk, log: log, redaction: redaction, wantLines: wantLines) { text in
                lastLine = text
                onLine?(OutputLine(stream: .stdout, text: text, at: stamp))
            }
        } else {
            err.consume(chunk, log: log, redaction: redaction, wantLines: wantLines) { text in
                lastLine = text
                onLine?(OutputLine(stream: .stderr, text: text, at: stamp))
            }
        }
    }

    // MARK: watchdog

    /// The idle watchdog fired.
    func stall(silent: Duration) {
        stallReported = true
        let event = StallEvent(
            at: Date(), silentSeconds: silent.seconds, lastLine: lastLine ?? capturedLastLine(), killed: options.killOnIdle)
        stalls.append(event)
        note("no output for \(silent.humanDescription) (idle threshold \(options.idleTimeout?.humanDescription ?? "-"))")
        options.onStall?(event)
    }

    /// The last line in the capture of the stream written last (when the capture has it).
    private func capturedLastLine() -> String? {
        let candidates = [out, err].filter { $0.total > 0 && !($0.capture.truncated && $0.capture.keep == .head) }
        guard let stream = candidates.max(by: { $0.lastWrite < $1.lastWrite }) else { return nil }
        let text = String(decoding: stream.capture.data.suffix(4096), as: UTF8.self)
        guard let line = text.split(separator: "\n").last.map(String.init) else { return nil }
        return options.redactor?.redact(line) ?? line
    }

    // MARK: the end

    /// Reads `exit-signal` or `exit-status` from a closed channel.
    func collectExit(channel: OpaquePointer, session: OpaquePointer) {
        var name: UnsafeMutablePointer<CChar>?
        var length = 0
        _ = libssh2_channel_get_exit_signal(channel, &name, &length, nil, nil, nil, nil)
        if let name {
            let text = String(decoding: UnsafeRawBufferPointer(start: name, count: length), as: UTF8.self)
            libssh2_free(session, name)
            termination = .signaled(Self.signalNumber(text))
        } else {
            termination = .exited(libssh2_channel_get_exit_status(channel))
        }
    }

    /// `TERM` → SIGTERM (the names SSH uses, RFC 4254 §6.10).
    static func signalNumber(_ name: String) -> Int32 {
        let table: [String: Int32] = [
            "ABRT": SIGABRT, "ALRM": SIGALRM, "FPE": SIGFPE, "HUP": SIGHUP, "ILL": SIGILL, "INT": SIGINT, "KILL": SIGKILL,
            "PIPE": SIGPIPE, "QUIT": SIGQUIT, "SEGV": SIGSEGV, "TERM": SIGTERM, "USR1": SIGUSR1, "USR2": SIGUSR2, "BUS": SIGBUS,
            "TRAP": SIGTRAP, "XCPU": SIGXCPU, "XFSZ": SIGXFSZ, "SYS": SIGSYS,
        ]
        let bare = name.hasPrefix("SIG") ? String(name.dropFirst(3)) : name
        return table[bare] ?? Int32(bare) ?? 0
    }

    /// No exit status will come (the server stayed silent after SIGKILL, or the shell
    /// never reported its process ID): end now, reported as exit 255 (as ssh does).
    func abandon() {
        guard !isResolved else { return }
        let why =
            killSentAt != nil
            ? "no exit status from the server \(Self.abandonAfter.humanDescription) after SIGKILL"
            : "the remote shell never reported its process ID, so it cannot be signalled"
        note("\(why): giving up the channel (reported as exit 255, as ssh does)")
        resolve()
    }

    /// Hands the result (or error) to the caller, once.
    func resolve() {
        guard !isResolved else { return }
        isResolved = true
        if pidPending && !pidLine.isEmpty { givePIDLineBack() }
        let redaction = options.redactor?.snapshot
        for state in [out, err] { state.flushPartial(log: log, redaction: redaction, onLine: options.onLine) }
        let termination = self.termination ?? .exited(255)
        let duration = ContinuousClock.now - startInstant
        if let log {
            var footer = "\(termination) after \(duration.humanDescription)"
            if timedOut, let timeout = options.timeout { footer += " (deadline \(timeout.humanDescription) passed)" }
            if killedForIdle { footer += " (idle watchdog)" }
            if let error { footer = "failed after \(duration.humanDescription): \(error)" }
            log.header(footer)
            log.close()
            self.log = nil
        }
        guard let continuation else { return }
        self.continuation = nil
        if cancelled {
            continuation.resume(throwing: CancellationError())
        } else if let error {
            continuation.resume(throwing: error)
        } else {
            continuation.resume(
                returning: CommandResult(
                    command: command, pid: remotePID ?? 0, termination: termination, stdout: out.capture.data, stderr: err.capture.data,
                    stdoutBytes: out.total, stderrBytes: err.total, stdoutTruncated: out.capture.truncated,
                    stderrTruncated: err.capture.truncated, startedAt: startedAt, duration: duration, timedOut: timedOut,
                    killedForIdle: killedForIdle, stalls: stalls))
        }
    }
}
