import CKhPosix
import Foundation
import KhCore

/// Runs commands on this machine.
///
/// Each child runs in a process group of its own with stdin on /dev/null, every
/// signal at its default and an empty signal mask. Its stdout and stderr are read
/// together on a dedicated thread (so neither can fill and block the other), cut
/// into lines, streamed to callbacks and to a timestamped log file, and kept in
/// memory up to a cap. A deadline or the idle watchdog kills the whole group: TERM,
/// then KILL after a grace period, so grandchildren do not survive. SIGINT or
/// SIGTERM to kh kills every group it started (see ``ChildProcesses``).
public struct LocalRunner: CommandRunner {
    /// The environment children inherit (PATH lookups use its PATH).
    public var environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    public var location: String { "local" }

    public func run(_ command: Command, options: RunOptions) async throws -> CommandResult {
        var env = command.inheritEnvironment ? environment : [:]
        env.merge(command.environment) { $1 }
        let path = try Self.resolve(command.executable, path: env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin")
        let session = try ProcessSession(command: command, executablePath: path, environment: env, options: options)
        return try await withTaskCancellationHandler {
            let result = await withCheckedContinuation { (continuation: CheckedContinuation<CommandResult, Never>) in
                let thread = Thread {
                    continuation.resume(returning: session.loop())
                }
                thread.name = "kh.process.\(session.pid)"
                thread.start()
            }
            if session.wasCancelled { throw CancellationError() }
            return result
        } onCancel: {
            session.cancel()
        }
    }

    /// Finds an executable: a path with a slash is used as is; a name is looked up
    /// in `path` (colon-separated), like execvp.
    public static func resolve(_ executable: String, path: String) throws -> String {
        if executable.contains("/") {
            guard access(executable, F_OK) == 0 else {
                throw ProcessError(kind: .notFound, executable: executable, detail: "no such file")
            }
            guard access(executable, X_OK) == 0 else {
                throw ProcessError(kind: .notExecutable, executable: executable, detail: "permission denied")
            }
            return executable
        }
        guard !executable.isEmpty else { throw ProcessError(kind: .notFound, executable: "''", detail: "empty command") }
        var sawNonExecutable: String?
        for dir in path.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (dir.isEmpty ? "." : String(dir)) + "/" + executable
            var info = stat()
            guard stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            if access(candidate, X_OK) == 0 { return candidate }
            sawNonExecutable = candidate
        }
        if let sawNonExecutable {
            throw ProcessError(kind: .notExecutable, executable: executable, detail: "\(sawNonExecutable): permission denied")
        }
        throw ProcessError(kind: .notFound, executable: executable, detail: "searched PATH=\(path)")
    }
}

/// One running child and its I/O loop.
final class ProcessSession: @unchecked Sendable {
    /// Pipe and read sizes: 128 KiB keeps the pipe, the read buffer and the log
    /// buffer in cache together; 1 MiB pipes measured slower (make bench).
    static let pipeSize: Int32 = 128 << 10
    static let readSize = 128 << 10
    let command: Command
    let options: RunOptions
    let pid: pid_t
    private let stdoutFD: Int32
    private let stderrFD: Int32
    private let pidFD: Int32
    private let watcher: InputWatcher
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let startedAt: Date
    private let startInstant: ContinuousClock.Instant
    private let log: LogWriter?
    private let cancelled = AtomicFlag()
    private let finished = DispatchSemaphore(value: 0)
    private var registryToken: UInt64 = 0

    var wasCancelled: Bool { cancelled.isSet }

    init(command: Command, executablePath: String, environment: [String: String], options: RunOptions) throws {
        self.command = command
        self.options = options
        func fail(_ call: String, _ code: Int32 = errno) -> ProcessError {
            ProcessError(kind: .systemCall(call), executable: command.executable, detail: String(cString: strerror(code)))
        }
        var out: [Int32] = [-1, -1]
        var err: [Int32] = [-1, -1]
        var wake: [Int32] = [-1, -1]
        guard kh_pipe_cloexec(&out) == 0 else { throw fail("pipe") }
        guard kh_pipe_cloexec(&err) == 0 else {
            close(out[0]); close(out[1])
            throw fail("pipe")
        }
        guard kh_pipe_cloexec(&wake) == 0 else {
            for fd in out + err { close(fd) }
            throw fail("pipe")
        }
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard devNull >= 0 else {
            for fd in out + err + wake { close(fd) }
            throw fail("open /dev/null")
        }
        _ = kh_set_pipe_size(out[0], Self.pipeSize)
        _ = kh_set_pipe_size(err[0], Self.pipeSize)
        guard let watcher = InputWatcher(), watcher.add(out[0]), watcher.add(err[0]), watcher.add(wake[0]) else {
            let failure = fail("epoll")
            for fd in out + err + wake + [devNull] { close(fd) }
            throw failure
        }

        let log: LogWriter?
        do {
            log = try options.logPath.map { try LogWriter(path: $0, redactor: options.redactor) }
        } catch {
            for fd in out + err + wake + [devNull] { close(fd) }
            throw error
        }

        let argv = [executablePath] + command.arguments
        let envp = environment.map { "\($0.key)=\($0.value)" }.sorted()
        var childPID: pid_t = 0
        let rc = CStringArray.with(argv) { argvPtr in
            CStringArray.with(envp) { envPtr in
                if let cwd = command.workingDirectory {
                    return kh_spawn(&childPID, executablePath, argvPtr, envPtr, cwd, devNull, out[1], err[1])
                }
                return kh_spawn(&childPID, executablePath, argvPtr, envPtr, nil, devNull, out[1], err[1])
            }
        }
        close(devNull)
        close(out[1])
        close(err[1])
        guard rc == 0 else {
            for fd in [out[0], err[0]] + wake { close(fd) }
            if let cwd = command.workingDirectory, rc == ENOENT, access(cwd, F_OK) != 0 {
                throw ProcessError(kind: .systemCall("chdir"), executable: command.executable, detail: "\(cwd): no such directory")
            }
            throw fail("posix_spawn", rc)
        }
        self.pid = childPID
        self.stdoutFD = out[0]
        self.stderrFD = err[0]
        self.wakeRead = wake[0]
        self.wakeWrite = wake[1]
        var pidFD = kh_pidfd_open(childPID)
        if pidFD >= 0 && !watcher.add(pidFD) {
            close(pidFD)
            pidFD = -1  // the loop then polls waitpid
        }
        self.pidFD = pidFD
        self.watcher = watcher
        self.log = log
        self.startedAt = Date()
        self.startInstant = .now
        _ = kh_set_nonblocking(stdoutFD)
        _ = kh_set_nonblocking(stderrFD)
        _ = kh_set_nonblocking(wakeRead)
        log?.header("started: \(command.displayString) (pid \(childPID), process group \(childPID))")
        registryToken = ChildProcesses.shared.add(pgid: childPID, done: finished)
    }

    /// Asks the loop to kill the group and stop (task cancellation).
    func cancel() {
        cancelled.set()
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func elapsed(_ since: ContinuousClock.Instant) -> Duration { ContinuousClock.now - since }

    /// Runs until the child is reaped and its pipes are closed (or abandoned).
    func loop() -> CommandResult {
        var out = StreamState(stream: .stdout, fd: stdoutFD, limit: options.captureLimit, keep: options.keep)
        var err = StreamState(stream: .stderr, fd: stderrFD, limit: options.captureLimit, keep: options.keep)
        var status: Int32? = nil
        var leaderExitAt: ContinuousClock.Instant?
        var termSentAt: ContinuousClock.Instant?
        var killSent = false
        var timedOut = false
        var killedForIdle = false
        var stalls: [StallEvent] = []
        var lastOutput = startInstant
        var stallReported = false
        var lastLine: String?
        var pidFDOpen = pidFD >= 0
        let deadline = options.timeout.map { startInstant + $0 }
        let bufferSize = Self.readSize
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 16)
        defer { buffer.deallocate() }

        func signalGroup(_ sig: Int32) { _ = kill(-pid, sig) }
        func startKill() {
            guard termSentAt == nil else { return }
            termSentAt = .now
            signalGroup(SIGTERM)
        }
        func reap() {
            guard status == nil else { return }
            var raw: Int32 = 0
            let r = waitpid(pid, &raw, WNOHANG)
            if r == pid {
                status = raw
                leaderExitAt = .now
            }
        }

        /// Stops watching a stream, then closes it (a closed descriptor could be reused).
        func close(_ stream: inout StreamState) {
            guard stream.open else { return }
            watcher.remove(stream.fd)
            stream.close()
        }

        while true {
            let now = ContinuousClock.now
            if out.open == false && err.open == false { reap() }
            // An exited child's pidfd stays readable: stop watching it once reaped.
            if pidFDOpen && status != nil {
                watcher.remove(pidFD)
                pidFDOpen = false
            }
            if status != nil && !out.open && !err.open { break }

            // Timers.
            var waitFor: Duration = .seconds(3600)
            if let deadline, termSentAt == nil {
                if now >= deadline {
                    timedOut = true
                    log?.header("deadline of \(options.timeout!.humanDescription) passed: sending SIGTERM to process group \(pid)")
                    startKill()
                } else {
                    waitFor = min(waitFor, deadline - now)
                }
            }
            if let sent = termSentAt, !killSent {
                if now - sent >= options.killGrace {
                    log?.header("still running \(options.killGrace.humanDescription) after SIGTERM: sending SIGKILL to process group \(pid)")
                    signalGroup(SIGKILL)
                    killSent = true
                } else {
                    waitFor = min(waitFor, options.killGrace - (now - sent))
                }
            }
            if let idle = options.idleTimeout, !stallReported, status == nil, termSentAt == nil {
                let silent = now - lastOutput
                if silent >= idle {
                    stallReported = true
                    let event = StallEvent(
                        at: Date(), silentSeconds: silent.seconds, lastLine: lastLine ?? Self.lastLine(of: [out, err], redactor: options.redactor),
                        killed: options.killOnIdle)
                    stalls.append(event)
                    log?.header(
                        "no output for \(silent.humanDescription) (idle threshold \(idle.humanDescription))"
                            + (options.killOnIdle ? ": killing process group \(pid)" : ""))
                    options.onStall?(event)
                    if options.killOnIdle {
                        killedForIdle = true
                        startKill()
                    }
                } else {
                    waitFor = min(waitFor, idle - silent)
                }
            }
            if let exitAt = leaderExitAt, out.open || err.open {
                let drained = now - exitAt
                if drained >= options.drainAfterExit {
                    // A grandchild holds the pipes: stop waiting for it.
                    log?.header(
                        "child exited but its output stays open after \(options.drainAfterExit.humanDescription): a leftover process holds it")
                    close(&out)
                    close(&err)
                    continue
                }
                waitFor = min(waitFor, options.drainAfterExit - drained)
            }
            if status == nil && !pidFDOpen { waitFor = min(waitFor, .milliseconds(50)) }
            if let log, log.hasPending { waitFor = min(waitFor, .milliseconds(200)) }

            let ms = Int32(min(max(waitFor.seconds * 1000, 0).rounded(.up), 3_600_000))
            let ready = watcher.wait(timeoutMilliseconds: ms)
            if ready < 0 && errno != EINTR { break }
            if ready <= 0 {
                log?.flush()
                if status == nil && !pidFDOpen { reap() }
                continue
            }
            for index in 0..<Int(ready) {
                let fd = watcher.ready[index]
                if fd == wakeRead {
                    var sink = [UInt8](repeating: 0, count: 64)
                    _ = read(wakeRead, &sink, 64)
                    if cancelled.isSet {
                        log?.header("cancelled: killing process group \(pid)")
                        startKill()
                    }
                } else if fd == pidFD {
                    reap()
                } else if (fd == out.fd && out.open) || (fd == err.fd && err.open) {
                    let isOut = fd == out.fd
                    let got = isOut ? out.read(into: buffer, size: bufferSize) : err.read(into: buffer, size: bufferSize)
                    if got == 0 {
                        if isOut { close(&out) } else { close(&err) }
                    } else if got > 0 {
                        lastOutput = .now
                        stallReported = false
                        let chunk = UnsafeRawBufferPointer(start: buffer, count: got)
                        let redaction = options.redactor?.snapshot
                        let wantLines = options.onLine != nil
                        let stamp = Date()
                        if isOut {
                            out.consume(chunk, log: log, redaction: redaction, wantLines: wantLines) { text in
                                lastLine = text
                                options.onLine?(OutputLine(stream: .stdout, text: text, at: stamp))
                            }
                        } else {
                            err.consume(chunk, log: log, redaction: redaction, wantLines: wantLines) { text in
                                lastLine = text
                                options.onLine?(OutputLine(stream: .stderr, text: text, at: stamp))
                            }
                        }
                    }
                }
            }
        }
        // Partial last lines.
        for state in [out, err] { state.flushPartial(log: log, redaction: options.redactor?.snapshot, onLine: options.onLine) }
        if status == nil {
            // Pipes abandoned or poll failed: make sure the child is gone and reaped.
            if kill(pid, 0) == 0 && waitpid(pid, nil, WNOHANG) == 0 {
                signalGroup(SIGKILL)
            }
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
            status = raw
        }
        let leftovers = options.killLeftovers ? killLeftovers() : false
        let raw = status ?? 0
        let termination: Termination = kh_wifsignaled(raw) != 0 ? .signaled(kh_wtermsig(raw)) : .exited(kh_wexitstatus(raw))
        let duration = elapsed(startInstant)
        var footer = "\(termination) after \(duration.humanDescription)"
        if timedOut { footer += " (deadline \(options.timeout!.humanDescription) passed)" }
        if killedForIdle { footer += " (idle watchdog)" }
        if leftovers { footer += "; leftover processes of the group killed" }
        log?.header(footer)
        log?.close()
        if pidFD >= 0 { Glibc.close(pidFD) }
        Glibc.close(wakeRead)
        Glibc.close(wakeWrite)
        ChildProcesses.shared.remove(registryToken)
        finished.signal()
        return CommandResult(
            command: command, pid: pid, termination: termination, stdout: out.capture.data, stderr: err.capture.data,
            stdoutBytes: out.total, stderrBytes: err.total, stdoutTruncated: out.capture.truncated, stderrTruncated: err.capture.truncated,
            startedAt: startedAt, duration: duration, timedOut: timedOut, killedForIdle: killedForIdle, stalls: stalls,
            leftoversKilled: leftovers)
    }

    /// The last line captured, from the stream that wrote last, when the capture holds it.
    static func lastLine(of streams: [StreamState], redactor: Redactor?) -> String? {
        guard
            let stream = streams.filter({ $0.total > 0 && !($0.capture.truncated && $0.capture.keep == .head) }).max(by: {
                $0.lastWrite < $1.lastWrite
            })
        else {
            return nil
        }
        let text = String(decoding: stream.capture.data.suffix(4096), as: UTF8.self)
        guard let line = text.split(separator: "\n").last.map(String.init) else { return nil }
        return redactor?.redact(line) ?? line
    }

    /// TERM, then KILL, whatever is left of the group once the child is gone.
    private func killLeftovers() -> Bool {
        guard ProcessTable.groupIsAlive(pid) else { return false }
        _ = kill(-pid, SIGTERM)
        let until = ContinuousClock.now + options.killGrace
        while ContinuousClock.now < until {
            if !ProcessTable.groupIsAlive(pid) { return true }
            usleep(20_000)
        }
        _ = kill(-pid, SIGKILL)
        return true
    }
}

/// One output stream of a child: its descriptor, partial line, capture.
package struct StreamState {
    package let stream: OutputStream
    let fd: Int32
    var open = true
    package var total = 0
    package var capture: Capture
    var partial: [UInt8] = []
    package var lastWrite = ContinuousClock.now
    package static let maxLine = 64 * 1024

    /// `fd` is read by ``read(into:size:)`` only; other transports (SSH) pass -1 and feed ``consume``.
    package init(stream: OutputStream, fd: Int32, limit: Int, keep: CaptureKeep) {
        self.stream = stream
        self.fd = fd
        self.capture = Capture(limit: limit, keep: keep)
    }

    /// One read; 0 on EOF or a read error (the caller closes the stream), -1 when nothing was there.
    func read(into buffer: UnsafeMutableRawPointer, size: Int) -> Int {
        let n = Glibc.read(fd, buffer, size)
        if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { return 0 }
        return n < 0 ? -1 : n
    }

    mutating func close() {
        guard open else { return }
        open = false
        Glibc.close(fd)
    }

    package mutating func consume(
        _ chunk: UnsafeRawBufferPointer, log: LogWriter?, redaction: RedactionSnapshot?, wantLines: Bool, onLine: (String) -> Void
    ) {
        total += chunk.count
        lastWrite = .now
        capture.append(chunk)
        guard log != nil || wantLines else { return }
        log?.beginChunk()
        var start = 0
        let base = chunk.baseAddress!
        // The common case of a chatty child (nothing to redact, no line callback): whole
        // lines go straight into the log's buffer; the loop below takes the line a chunk
        // left open and lines over maxLine.
        let direct = !wantLines && (redaction?.isEmpty ?? true) ? log : nil
        while start < chunk.count {
            if let direct, partial.isEmpty {
                start += direct.completeLines(UnsafeRawBufferPointer(rebasing: chunk[start...]), stream: stream, maxLine: Self.maxLine)
                if start == chunk.count { break }
            }
            guard let hit = memchr(base + start, 0x0A, chunk.count - start) else {
                partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start...]))
                // A line that grows past maxLine is written in maxLine pieces as it comes.
                while partial.count >= Self.maxLine {
                    partial.withUnsafeBytes {
                        let piece = UnsafeRawBufferPointer(rebasing: $0[0..<Self.maxLine])
                        emit(piece, log: log, redaction: redaction, wantLines: wantLines, onLine: onLine)
                    }
                    partial.removeFirst(Self.maxLine)
                }
                break
            }
            let end = base.distance(to: UnsafeRawPointer(hit))
            let line = UnsafeRawBufferPointer(rebasing: chunk[start..<end])
            if partial.isEmpty {
                emit(line, log: log, redaction: redaction, wantLines: wantLines, onLine: onLine)
            } else {
                partial.append(contentsOf: line)
                partial.withUnsafeBytes { emit($0, log: log, redaction: redaction, wantLines: wantLines, onLine: onLine) }
                partial.removeAll(keepingCapacity: true)
            }
            start = end + 1
        }
    }

    /// One line to the log and the callback; a line longer than maxLine as maxLine pieces.
    private func emit(
        _ line: UnsafeRawBufferPointer, log: LogWriter?, redaction: RedactionSnapshot?, wantLines: Bool, onLine: (String) -> Void
    ) {
        guard line.count > Self.maxLine else {
            emitOne(line, log: log, redaction: redaction, wantLines: wantLines, onLine: onLine)
            return
        }
        for offset in stride(from: 0, to: line.count, by: Self.maxLine) {
            let piece = UnsafeRawBufferPointer(rebasing: line[offset..<min(offset + Self.maxLine, line.count)])
            emitOne(piece, log: log, redaction: redaction, wantLines: wantLines, onLine: onLine)
        }
    }

    @inline(__always)
    private func emitOne(
        _ line: UnsafeRawBufferPointer, log: LogWriter?, redaction: RedactionSnapshot?, wantLines: Bool, onLine: (String) -> Void
    ) {
        log?.line(line, stream: stream, redaction: redaction)
        if wantLines {
            var text = String(decoding: line, as: UTF8.self)
            if let redaction, !redaction.isEmpty {
                var bytes: [UInt8] = []
                redaction.append(line, to: &bytes)
                text = String(decoding: bytes, as: UTF8.self)
            }
            onLine(text)
        }
    }

    package func flushPartial(log: LogWriter?, redaction: RedactionSnapshot?, onLine: (@Sendable (OutputLine) -> Void)?) {
        guard !partial.isEmpty else { return }
        log?.beginChunk()
        partial.withUnsafeBytes { bytes in
            emit(bytes, log: log, redaction: redaction, wantLines: onLine != nil) { text in
                onLine?(OutputLine(stream: stream, text: text, at: Date()))
            }
        }
    }
}

/// In-memory capture with a cap: the first or last `limit` bytes.
package struct Capture {
    let limit: Int
    package let keep: CaptureKeep
    private var bytes = Data()
    package private(set) var truncated = false

    init(limit: Int, keep: CaptureKeep) {
        self.limit = max(0, limit)
        self.keep = keep
    }

    mutating func append(_ chunk: UnsafeRawBufferPointer) {
        switch keep {
        case .head:
            let room = limit - bytes.count
            if chunk.count <= room {
                bytes.append(contentsOf: chunk)
            } else {
                if room > 0 { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[..<room])) }
                truncated = true
            }
        case .tail:
            bytes.append(contentsOf: chunk)
            if bytes.count > 2 * limit || (bytes.count > limit && chunk.count >= limit) {
                bytes = bytes.suffix(limit)
                truncated = true
            }
        }
    }

    package var data: Data {
        if keep == .tail, bytes.count > limit { return bytes.suffix(limit) }
        return bytes
    }
}

/// A set-once flag readable from any thread.
final class AtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

/// NUL-terminated C string arrays for spawn.
enum CStringArray {
    static func with<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for p in pointers { free(p) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

/// The descriptors one child's loop waits on, as an epoll set: each is registered once,
/// where poll(2) adds and removes a wait-queue entry on every descriptor at every wait
/// (taking the pipe's wait-queue lock that the writing child takes to wake kh).
final class InputWatcher {
    private let descriptor: Int32
    /// The descriptors found ready by the last ``wait(timeoutMilliseconds:)``.
    let ready = UnsafeMutablePointer<Int32>.allocate(capacity: 8)

    init?() {
        descriptor = kh_epoll_create()
        guard descriptor >= 0 else {
            ready.deallocate()
            return nil
        }
    }

    deinit {
        Glibc.close(descriptor)
        ready.deallocate()
    }

    /// Watches `fd` for input (level-triggered); false with errno set when it cannot.
    func add(_ fd: Int32) -> Bool { kh_epoll_add(descriptor, fd) == 0 }

    /// Stops watching `fd` (before it is closed).
    func remove(_ fd: Int32) { _ = kh_epoll_remove(descriptor, fd) }

    /// Waits for input up to `timeoutMilliseconds`: how many descriptors are ready (in
    /// ``ready``), 0 on timeout, -1 with errno set.
    func wait(timeoutMilliseconds: Int32) -> Int32 {
        kh_epoll_wait(descriptor, ready, 8, timeoutMilliseconds)
    }
}
