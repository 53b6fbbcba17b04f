import CLibSSH2
import Foundation
import KhCore
import KhProcess

/// The connection's thread: every libssh2 call of a session happens here.
///
/// Each pass steps every command's channel as far as it goes without blocking
/// (open → exec → EOF on stdin → read stdout and stderr → wait for close → free),
/// then checks deadlines and watchdogs. Passes repeat while anything moved or
/// libssh2 took bytes off the socket (they may be queued for another channel);
/// otherwise the thread sleeps in `poll` on the socket, the wake pipe and the next
/// timer. Two libssh2 rules shape the order:
/// - only one channel open can be in flight per session (libssh2 keeps its state in
///   the session), so opens go one at a time;
/// - when a call returns EAGAIN with a half-sent packet, the same call must be made
///   again before any other, so that channel is stepped first in the next pass.
final class EventLoop {
    let core: ConnectionCore
    let configuration: SSHConfiguration
    let session: SessionHandle
    let hostKey: SSHHostKey
    private var jobs: [ExecJob] = []
    /// The job whose channel open is in flight.
    private var opening: ExecJob?
    /// The job whose last call left a packet half sent.
    private var outboundOwner: ExecJob?
    private var openChannels = 0
    private var channelLimit: Int
    private var cancelledEarly: Set<UInt64> = []
    private var shuttingDown = false
    private var killAllWaiters: [@Sendable () -> Void] = []
    private var fatal: SSHError?
    /// Timers changed something (a kill request queued, a job given up): pass again before sleeping.
    private var dirty = false
    /// After the server refused a channel, no open before this instant.
    private var openBackoffUntil: ContinuousClock.Instant?
    static let readSize = 128 << 10
    private let buffer = UnsafeMutableRawPointer.allocate(byteCount: EventLoop.readSize, alignment: 16)

    private init(core: ConnectionCore, session: SessionHandle, hostKey: SSHHostKey) {
        self.core = core
        self.configuration = core.configuration
        self.session = session
        self.hostKey = hostKey
        self.channelLimit = max(2, core.configuration.maxChannels)
    }

    deinit { buffer.deallocate() }

    static func connect(core: ConnectionCore) throws -> EventLoop {
        let configuration = core.configuration
        let connector = Connector(
            configuration: configuration, deadline: .now + configuration.connectTimeout, wakeFD: core.wakeRead,
            isCancelled: { core.connectCancelled })
        let socket = try connector.connectSocket()
        let (session, hostKey) = try connector.establish(socket)
        return EventLoop(core: core, session: session, hostKey: hostKey)
    }

    private var host: String { configuration.host }
    private var port: Int { configuration.port }
    private var location: String { "ssh \(configuration.destination)" }

    func sshError(_ kind: SSHError.Kind, _ call: String, code: Int32? = nil, _ detail: String) -> SSHError {
        SSHError(kind: kind, call: call, libssh2Code: code, detail: detail, host: host, port: port)
    }

    // MARK: the loop

    func run() {
        while true {
            takeRequests()
            if fatal != nil { break }
            if shuttingDown && jobs.isEmpty { break }
            let before = session.received
            let (moved, blockedOutbound) = pass()
            if fatal != nil { break }
            dirty = false
            let nextTimer = timers()
            for job in jobs where job.phase == .done {
                if job.channel != nil { openChannels -= 1 }
                job.channel = nil
                job.resolve()
            }
            jobs.removeAll { $0.phase == .done }
            notifyKillAllWaiters()
            if moved || dirty || session.received != before { continue }
            sleep(until: nextTimer, outbound: blockedOutbound)
        }
        teardown()
    }

    private func takeRequests() {
        var byte = [UInt8](repeating: 0, count: 64)
        while read(core.wakeRead, &byte, 64) > 0 {}
        for request in core.takeInbox() {
            switch request {
            case .exec(let exec):
                if shuttingDown {
                    exec.continuation.resume(throwing: sshError(.connectionLost, "exec", "the connection is closing"))
                } else if cancelledEarly.remove(exec.id) != nil {
                    exec.continuation.resume(throwing: CancellationError())
                } else {
                    jobs.append(ExecJob(request: exec, location: location))
                }
            case .cancel(let id):
                if let job = jobs.first(where: { $0.id == id && !$0.isHelper }) {
                    job.cancelled = true
                    requestKill(job, reason: "cancelled")
                } else {
                    // Cancelled before its exec request arrived (or after it finished: the
                    // set is bounded for that case).
                    if cancelledEarly.count >= 1024 { cancelledEarly.removeAll() }
                    cancelledEarly.insert(id)
                }
            case .killAll(let done):
                killAllWaiters.append(done)
                for job in jobs where !job.isHelper { requestKill(job, reason: "kh interrupted") }
            case .shutdown:
                shuttingDown = true
                for job in jobs where !job.isHelper { requestKill(job, reason: "connection closing") }
            }
        }
    }

    private func notifyKillAllWaiters() {
        guard !killAllWaiters.isEmpty, !jobs.contains(where: { !$0.isHelper && !$0.isResolved }) else { return }
        let waiters = killAllWaiters
        killAllWaiters.removeAll()
        for waiter in waiters { waiter() }
    }

    /// One pass over the jobs. Returns whether anything moved and whether the pass
    /// stopped on a half-sent packet.
    private func pass() -> (moved: Bool, blockedOutbound: Bool) {
        var order = jobs.filter(\.isHelper) + jobs.filter { !$0.isHelper }
        if let owner = outboundOwner, let index = order.firstIndex(where: { $0 === owner }) {
            order.remove(at: index)
            order.insert(owner, at: 0)
        }
        outboundOwner = nil
        var moved = false
        for job in order {
            let result = step(job)
            if fatal != nil { return (true, false) }
            moved = moved || result.moved
            if result.blockedOutbound {
                outboundOwner = job
                return (moved, true)
            }
        }
        return (moved, false)
    }

    private func sleep(until nextTimer: ContinuousClock.Instant?, outbound: Bool) {
        var fds = [pollfd(fd: core.wakeRead, events: Int16(POLLIN), revents: 0)]
        if jobs.contains(where: { $0.phase.usesSocket }) {
            fds.append(pollfd(fd: session.socket.fd, events: Int16(outbound ? POLLOUT : POLLIN), revents: 0))
        }
        var milliseconds: Int32 = 3_600_000
        if let nextTimer {
            let left = nextTimer - .now
            milliseconds = left <= .zero ? 0 : Int32(min((left.seconds * 1000).rounded(.up), 3_600_000))
        }
        if jobs.contains(where: { $0.log?.hasPending == true }) { milliseconds = min(milliseconds, 200) }
        let ready = poll(&fds, nfds_t(fds.count), milliseconds)
        if ready == 0 { for job in jobs { job.log?.flush() } }
    }

    // MARK: one job

    private struct StepResult {
        var moved = false
        var blockedOutbound = false
    }

    /// Whether `job` may open a channel now: one open at a time; commands leave one
    /// channel free for kill requests.
    private func mayOpen(_ job: ExecJob) -> Bool {
        guard opening == nil, openChannels < (job.isHelper ? channelLimit : channelLimit - 1) else { return false }
        if let until = openBackoffUntil {
            guard ContinuousClock.now >= until else { return false }
            openBackoffUntil = nil
        }
        return true
    }

    /// The last libssh2 call returned EAGAIN: was it waiting to send?
    private func blocked(_ result: inout StepResult) -> StepResult {
        result.blockedOutbound = session.blockedOutbound
        return result
    }

    /// A libssh2 error on a channel: fatal ones end the session, others the job.
    private func channelFailed(_ job: ExecJob, _ call: String, code rawCode: Int32? = nil) {
        let (lastCode, message) = session.lastError
        let code = rawCode ?? lastCode
        if LibSSH2.isFatal(code) {
            fatal = sshError(.connectionLost, call, code: code, message)
            return
        }
        job.fail(sshError(.channel, call, code: code, message))
    }

    private func step(_ job: ExecJob) -> StepResult {
        var result = StepResult()
        while true {
            if job.isResolved, [.starting, .sendingEOF, .running, .closing].contains(job.phase) {
                // Given up (or failed): only the channel's cleanup is left.
                job.phase = .freeing
            }
            if job.isResolved, job.phase == .queued { job.phase = .done }
            switch job.phase {
            case .queued:
                guard mayOpen(job) else { return result }
                job.phase = .opening
                opening = job
                result.moved = true
            case .opening:
                guard let pointer = kh_ssh2_channel_open_session(session.pointer) else {
                    let code = libssh2_session_last_errno(session.pointer)
                    if code == LIBSSH2_ERROR_EAGAIN { return blocked(&result) }
                    opening = nil
                    if code == LIBSSH2_ERROR_CHANNEL_FAILURE && openChannels > 0 && channelLimit > openChannels {
                        // The server's MaxSessions is lower than configured: wait for a free channel.
                        channelLimit = max(2, openChannels)
                        openBackoffUntil = .now + .milliseconds(100)
                        job.phase = .queued
                        return result
                    }
                    job.phase = .done
                    channelFailed(job, "libssh2_channel_open_session", code: code)
                    return result
                }
                opening = nil
                openChannels += 1
                job.channel = ChannelHandle(pointer: pointer, session: session)
                job.phase = job.isResolved ? .freeing : .starting
                result.moved = true
            case .starting:
                let line = job.wireLine
                let rc = line.withCString { kh_ssh2_channel_exec(job.channel!.pointer!, $0, UInt32(line.utf8.count)) }
                if rc == LIBSSH2_ERROR_EAGAIN { return blocked(&result) }
                result.moved = true
                if rc != 0 {
                    channelFailed(job, "libssh2_channel_exec", code: rc)
                    if fatal != nil { return result }
                    job.phase = .freeing
                    continue
                }
                job.started()
                job.phase = .sendingEOF
            case .sendingEOF:
                let rc = libssh2_channel_send_eof(job.channel!.pointer!)
                if rc == LIBSSH2_ERROR_EAGAIN { return blocked(&result) }
                if rc != 0 && LibSSH2.isFatal(rc) {
                    channelFailed(job, "libssh2_channel_send_eof", code: rc)
                    return result
                }
                job.phase = .running
                result.moved = true
            case .running:
                let channel = job.channel!.pointer!
                for stream in [KhProcess.OutputStream.stdout, .stderr] {
                    var budget = 4 << 20
                    while budget > 0 {
                        let n =
                            stream == .stdout
                            ? kh_ssh2_channel_read(channel, buffer.assumingMemoryBound(to: CChar.self), Self.readSize)
                            : kh_ssh2_channel_read_stderr(channel, buffer.assumingMemoryBound(to: CChar.self), Self.readSize)
                        if n > 0 {
                            job.consume(UnsafeRawBufferPointer(start: buffer, count: n), stream: stream)
                            budget -= n
                            result.moved = true
                            continue
                        }
                        if n == Int(LIBSSH2_ERROR_EAGAIN) {
                            if session.blockedOutbound { return blocked(&result) }
                            break
                        }
                        if n < 0 {
                            channelFailed(job, stream == .stdout ? "libssh2_channel_read" : "libssh2_channel_read_stderr", code: Int32(n))
                            if fatal != nil { return result }
                            job.phase = .freeing
                            result.moved = true
                        }
                        break
                    }
                    if job.phase != .running { break }
                }
                guard job.phase == .running else { continue }
                guard libssh2_channel_eof(channel) == 1 else { return result }
                job.phase = .closing
                result.moved = true
            case .closing:
                let channel = job.channel!.pointer!
                let rc = libssh2_channel_wait_closed(channel)
                if rc == LIBSSH2_ERROR_EAGAIN { return blocked(&result) }
                if rc != 0 && LibSSH2.isFatal(rc) {
                    channelFailed(job, "libssh2_channel_wait_closed", code: rc)
                    return result
                }
                job.collectExit(channel: channel, session: session.pointer)
                job.resolve()
                job.phase = .freeing
                result.moved = true
            case .freeing:
                let rc = job.channel?.free() ?? 0
                if rc == LIBSSH2_ERROR_EAGAIN { return blocked(&result) }
                job.phase = .done
                result.moved = true
            case .done:
                return result
            }
        }
    }

    // MARK: deadlines, watchdog, kills

    /// Starts killing a job's remote process group (or drops it if it has not started).
    private func requestKill(_ job: ExecJob, reason: String) {
        guard job.killRequestedAt == nil, !job.isResolved else { return }
        job.killRequestedAt = .now
        dirty = true
        switch job.phase {
        case .queued:
            job.note("\(reason) before the command started")
            if job.cancelled {
                job.phase = .done
                job.resolve()
            } else {
                job.fail(
                    sshError(.timeout, "libssh2_channel_open_session", "\(reason): no channel became free before the command could start"))
                job.phase = .done
            }
        case .opening, .starting, .sendingEOF, .running:
            job.note("\(reason): killing remote process group \(job.remotePID.map(String.init) ?? "(pid not yet known)")")
            sendSignalIfPossible(job)
        case .closing, .freeing, .done:
            break
        }
    }

    private func sendSignalIfPossible(_ job: ExecJob) {
        guard let pid = job.remotePID, job.killRequestedAt != nil, job.termSentAt == nil else { return }
        job.termSentAt = .now
        spawnKill(pid: pid, signal: "TERM")
    }

    private func spawnKill(pid: Int32, signal: String) {
        let line = "kill -s \(signal) -- -\(pid) 2>/dev/null || kill -s \(signal) \(pid) 2>/dev/null; exit 0"
        jobs.append(ExecJob(helperLine: line, location: location))
        dirty = true
    }

    /// Checks every job's timers; returns the next instant a timer is due.
    private func timers() -> ContinuousClock.Instant? {
        let now = ContinuousClock.now
        var next: ContinuousClock.Instant?
        func due(_ instant: ContinuousClock.Instant) { next = min(next ?? instant, instant) }
        if let openBackoffUntil { due(openBackoffUntil) }
        for job in jobs where !job.isResolved {
            let options = job.options
            if let deadline = job.deadline, job.killRequestedAt == nil {
                if now >= deadline {
                    job.timedOut = true
                    requestKill(job, reason: "deadline of \(options.timeout!.humanDescription) passed")
                } else {
                    due(deadline)
                }
            }
            if let idle = options.idleTimeout, job.phase == .running, !job.stallReported, job.killRequestedAt == nil {
                let silent = now - job.lastOutput
                if silent >= idle {
                    job.stall(silent: silent)
                    if options.killOnIdle {
                        job.killedForIdle = true
                        requestKill(job, reason: "no output for \(silent.humanDescription)")
                    }
                } else {
                    due(job.lastOutput + idle)
                }
            }
            guard let killAt = job.killRequestedAt, !job.isResolved else { continue }
            sendSignalIfPossible(job)
            if let termAt = job.termSentAt, job.killSentAt == nil, let pid = job.remotePID {
                if now - termAt >= options.killGrace {
                    job.killSentAt = now
                    job.note("still running \(options.killGrace.humanDescription) after SIGTERM: sending SIGKILL to remote process group \(pid)")
                    spawnKill(pid: pid, signal: "KILL")
                } else {
                    due(termAt + options.killGrace)
                }
            }
            // Give up when the server stays silent after SIGKILL, or when the shell never
            // reported its process ID (nothing to signal) within the grace period.
            let giveUp =
                job.killSentAt.map { $0 + ExecJob.abandonAfter } ?? (job.remotePID == nil ? killAt + options.killGrace + ExecJob.abandonAfter : nil)
            if let giveUp {
                if now >= giveUp {
                    job.abandon()
                    dirty = true
                } else {
                    due(giveUp)
                }
            }
        }
        for job in jobs where job.isHelper && !job.isResolved {
            if now - job.startInstant >= ExecJob.helperDeadline {
                job.abandon()
                dirty = true
            } else {
                due(job.startInstant + ExecJob.helperDeadline)
            }
        }
        // A channel whose close the server never confirms is dropped after a while;
        // libssh2_session_free releases it.
        for job in jobs where job.phase == .freeing && job !== outboundOwner {
            if now - job.phaseSince >= ExecJob.freeingDeadline {
                job.phase = .done
                dirty = true
            } else {
                due(job.phaseSince + ExecJob.freeingDeadline)
            }
        }
        return next
    }

    // MARK: teardown

    private func teardown() {
        let error = fatal ?? sshError(.connectionLost, "exec", "the connection was closed")
        for request in core.markClosed(error) {
            switch request {
            case .exec(let exec): exec.continuation.resume(throwing: error)
            case .killAll(let done): done()
            case .cancel, .shutdown: break
            }
        }
        for job in jobs where !job.isResolved {
            var failure = error
            failure.commandStarted = job.hasStarted
            if failure.kind == .connectionLost {
                failure.detail += job.hasStarted ? " while the command ran" : " before the command started"
            }
            job.fail(failure)
            job.resolve()
        }
        let waiters = killAllWaiters
        killAllWaiters.removeAll()
        for waiter in waiters { waiter() }
        if fatal == nil {
            // A polite goodbye, bounded: the server may be gone.
            let until = ContinuousClock.now + .milliseconds(500)
            while kh_ssh2_session_disconnect(session.pointer, "kh: closing") == LIBSSH2_ERROR_EAGAIN && ContinuousClock.now < until {
                var fds = [pollfd(fd: session.socket.fd, events: Int16(POLLOUT), revents: 0)]
                _ = poll(&fds, 1, 50)
            }
        }
        shutdown(session.socket.fd, Int32(SHUT_RDWR))
        jobs.removeAll()
        opening = nil
        outboundOwner = nil
    }
}
