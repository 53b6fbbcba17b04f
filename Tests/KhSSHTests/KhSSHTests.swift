import Foundation
import KhCore
import KhProcess
import KhTestSupport
import Synchronization
import Testing

@testable import KhSSH

/// Every test runs against a real sshd on 127.0.0.1 (see `SSHServer`); a missing sshd
/// fails the test with the reason.
@Suite("SSHConnection against a real sshd")
struct SSHConnectionTests {
    @Test("exit status, stdout and stderr arrive separately")
    func success() async throws {
        let server = try await SSHServer.start()
        let connection = try await SSHConnection.connect(server.configuration())
        let result = try await connection.run(Command("sh", ["-c", "echo out; echo err >&2"]), options: RunOptions(timeout: .seconds(20)))
        #expect(result.termination == .exited(0))
        #expect(result.succeeded)
        #expect(result.stdoutText == "out\n")
        #expect(result.stderrText == "err\n")
        #expect(result.pid > 1)
        #expect(connection.hostKey.type == "ssh-ed25519")
    }

    @Test("a non-zero exit is data, not an error")
    func nonZeroExit() async throws {
        let server = try await SSHServer.start()
        let connection = try await SSHConnection.connect(server.configuration())
        let result = try await connection.execute("echo partial; exit 7", options: RunOptions(timeout: .seconds(20)))
        #expect(result.termination == .exited(7))
        #expect(result.exitCode == 7)
        #expect(!result.succeeded)
        #expect(result.stdoutText == "partial\n")
    }

    @Test("a command ended by a signal reports the signal")
    func exitBySignal() async throws {
        let server = try await SSHServer.start()
        let connection = try await SSHConnection.connect(server.configuration())
        let term = try await connection.run(Command("sh", ["-c", "echo before; kill -TERM $$"]), options: RunOptions(timeout: .seconds(20)))
        #expect(term.termination == .signaled(SIGTERM))
        #expect(term.stdoutText == "before\n")
        let killed = try await connection.run(Command("sh", ["-c", "kill -KILL $$"]), options: RunOptions(timeout: .seconds(20)))
        #expect(killed.termination == .signaled(SIGKILL))
        #expect(killed.summary.contains("SIGKILL"))
    }

    @Test("stdin gets EOF at once: cat returns, read fails")
    func stdinClosed() async throws {
        let server = try await SSHServer.start()
        let connection = try await SSHConnection.connect(server.configuration())
        let cat = try await connection.run(Command("cat"), options: RunOptions(timeout: .seconds(20)))
        #expect(cat.termination == .exited(0))
        #expect(!cat.timedOut)
        let read = try await connection.execute("read line", options: RunOptions(timeout: .seconds(20)))
        #expect(read.termination == .exited(1))
    }

    @Test("5 MB on stdout and 5 MB on stderr at once: no stall, every byte in its stream")
    func bigBothStreams() async throws {
        let server = try await SSHServer.start()
        let connection = try await SSHConnection.connect(server.configuration())
        let size = 5 << 20
        let result = try await connection.execute(
            "yes out-line | head -c \(size) & yes err-line | head -c \(size) >&2; wait",
            options: RunOptions(timeout: .seconds(60)))
        #expect(!result.timedOut)
        #expect(result.termination == .exited(0))
        #expect(result.stdoutBytes == size)
        #expect(result.stderrBytes == size)
        #expect(result.stdout.count == size)
        #expect(result.stderr.count == size)
        let expectedOut = String(repeating: "out-line\n", count: size / 9 + 1).utf8.prefix(size)
        let expectedErr = String(repeating: "err-line\n", count: size / 9 + 1).utf8.prefix(size)
        #expect(result.stdout == Data(expectedOut))
        #expect(result.stderr == Data(expectedErr))
    }

    @Test("the capture keeps at most captureLimit bytes and counts the rest")
    func captureLimit() async throws {
        let server = try await SSHServer.start()
        let connection = try await SSHConnection.connect(server.configuration())
        let head = try await connection.execute(
            "yes 0123456789 | head -c 1000000", options: RunOptions(timeout: .seconds(30), captureLimit: 1000))
        #expect(head.stdoutBytes == 1_000_000)
        #expect(head.stdout.count == 1000)
        #expect(head.stdoutTruncated)
        #expect(head.stdoutText.hasPrefix("0123456789\n0123456789\n"))
        let tail = try await connection.execute(
            "seq 1 100000", options: RunOptions(timeout: .seconds(30), captureLimit: 12, keep: .tail))
        #expect(tail.stdoutText == "99999\n100000\n".suffix(12).description)
        #expect(tail.stdoutTruncated)
    }

    @Test("a deadline kills the remote process group: sleep 60 returns within deadline + margin")
    func deadline() async throws {
        let server = try await SSHServer.start()
        let connection = try await SSHConnection.connect(server.configuration())
        let marker = "kh-ssh-deadline-\(UUID().uuidString.prefix(8))"
        let started = ContinuousClock.now
        let result = try await connection.run(
            Command("sh", ["-c", "sleep 60; echo \(marker)"]), options: RunOptions(timeout: .seconds(1), killGrace: .seconds(3)))
        let elapsed = ContinuousClock.now - started
        #expect(result.timedOut)
        #expect(result.termination == .signaled(SIGTERM))
        #expect(elapsed < .seconds(4), "returned after \(elapsed)")
        try #require(result.pid > 1)
        // sshd runs on this machine, so its processes are visible: nothing of the group is left.
        try await waitUntil(.seconds(5)) { ProcTable.members(ofGroup: result.pid).isEmpty && ProcTable.matching(marker).isEmpty }
        #expect(ProcTable.members(ofGroup: result.pid).isEmpty)
        #expect(ProcTable.matching(marker).isEmpty)
    }

    @Test("a deadline that passes before the remote shell has started: the kill follows as soon as it reports its process ID")
    func deadlineBeforeShellStarts() async throws {
        // ForceCommand delays the whole command line (and with it the process-ID line) by 0.7 s.
        let server = try await SSHServer.start(extraConfig: [#"ForceCommand sleep 0.7; eval "$SSH_ORIGINAL_COMMAND""#])
        let connection = try await SSHConnection.connect(server.configuration())
        let marker = "kh-ssh-late-\(UUID().uuidString.prefix(8))"
        let result = try await connection.run(
            Command("sh", ["-c", "sleep 60; echo \(marker)"]), options: RunOptions(timeout: .milliseconds(200), killGrace: .seconds(3)))
        #expect(result.timedOut)
        #expect(result.termination == .signaled(SIGTERM))
        #expect(result.duration < .seconds(4))
        try #require(result.pid > 1)
        try await waitUntil(.seconds(5)) { ProcTable.members(ofGroup: result.pid).isEmpty }
        #expect(ProcTable.members(ofGroup: result.pid).isEmpty)
        #expect(ProcTable.matching(marker).isEmpty)
    }

    @Test("a remote command ignoring SIGTERM gets SIGKILL after the grace period")
    func killAfterGrace() async throws {
        let server = try await SSHServer.start()
        let connection = try await SSHConnection.connect(server.configuration())
        let result = try await connection.run(
            Command("sh", ["-c", "trap '' TERM; while :; do sleep 1; done"]),
            options: RunOptions(timeout: .milliseconds(500), killGrace: .seconds(1)))
        #expect(result.timedOut)
        #expect(result.termination == .signaled(SIGKILL))
        #expect(result.duration < .seconds(6))
        try #require(result.pid > 1)
        try await waitUntil(.seconds(5)) { ProcTable.members(ofGroup: result.pid).isEmpty }
        #expect(ProcTable.members(ofGroup: result.pid).isEmpty)
    }

    @Test("idle watchdog: a command that prints once then goes silent is reported and killed")
    func idleWatchdog() async throws {
        let server = try await SSHServer.start()
        let connection = try await SSHConnection.connect(server.configuration())
        let fired = Mutex(0)
        let result = try await connection.execute(
            "echo hello; sleep 30",
            options: RunOptions(
                timeout: .seconds(25), killGrace: .seconds(2), idleTimeout: .seconds(1), killOnIdle: true,
                onStall: { _ in fired.withLock { $0 += 1 } }))
        #expect(result.killedForIdle)
        #expect(!result.timedOut)
        #expect(result.stalls.count == 1)
        #expect(result.stalls.first?.lastLine == "hello")
        #expect(result.stalls.first?.killed == true)
        #expect(fired.withLock { $0 } == 1)
        #expect(result.termination == .signaled(SIGTERM))
        #expect(result.duration < .seconds(10))
    }

    @Test("lines stream to the callback and to a timestamped, redacted log in the local runner's format")
    func logAndLines() async throws {
        let server = try await SSHServer.start()
        let connection = try await SSHConnection.connect(server.configuration())
        let dir = TemporaryDirectory()
        let redactor = Redactor()
        redactor.register(name: "HCLOUD_TOKEN", value: "tok-abcdef-123456")
        let lines = Mutex<[String]>([])
        let result = try await connection.execute(
            "echo one; echo 'token=tok-abcdef-123456' >&2; printf partial",
            options: RunOptions(
                timeout: .seconds(20), logPath: dir.path + "/logs/remote.log",
                onLine: { line in lines.withLock { $0.append("\(line.stream.rawValue):\(line.text)") } }, redactor: redactor))
        #expect(result.succeeded)
        let seen = lines.withLock { $0 }
        #expect(seen.contains("stdout:one"))
        #expect(seen.contains("stderr:token=[redacted:HCLOUD_TOKEN]"))
        #expect(seen.contains("stdout:partial"))
        #expect(!seen.contains { $0.contains("\(result.pid)") }, "the process-ID line is framing, not output")
        let log = try dir.read("logs/remote.log")
        #expect(!log.contains("tok-abcdef-123456"))
        #expect(log.contains("err| token=[redacted:HCLOUD_TOKEN]"))
        let outLine = try #require(log.split(separator: "\n").first { $0.hasSuffix(" out| one") })
        #expect(outLine.range(of: #"^\d\d:\d\d:\d\d\.\d{3} out\| one$"#, options: .regularExpression) != nil)
        let started = try #require(log.split(separator: "\n").first { $0.contains(" kh | started: sh -c") })
        #expect(started.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z kh \| started: "#, options: .regularExpression) != nil)
        #expect(log.contains(" kh | remote process group \(result.pid)"))
        #expect(log.contains(" kh | exit 0 after"))
    }

    @Test("cancelling the task kills the remote group and throws CancellationError")
    func cancellation() async throws {
        let server = try await SSHServer.start()
        let connection = try await SSHConnection.connect(server.configuration())
        let marker = "kh-ssh-cancel-\(UUID().uuidString.prefix(8))"
        let task = Task {
            try await connection.run(Command("sh", ["-c", "sleep 60; echo \(marker)"]), options: RunOptions(killGrace: .seconds(2)))
        }
        try await waitUntil(.seconds(10)) { !ProcTable.matching(marker).isEmpty }
        task.cancel()
        await #expect(throws: CancellationError.self) { _ = try await task.value }
        try await waitUntil(.seconds(5)) { ProcTable.matching(marker).isEmpty }
        #expect(ProcTable.matching(marker).isEmpty)
    }

    @Test("SIGINT to kh (the interrupt handler) kills every remote command and waits for it")
    func interruptKillsRemoteCommands() async throws {
        let server = try await SSHServer.start()
        let connection = try await SSHConnection.connect(server.configuration())
        let marker = "kh-ssh-interrupt-\(UUID().uuidString.prefix(8))"
        let task = Task {
            try await connection.run(Command("sh", ["-c", "sleep 60; echo \(marker)"]), options: RunOptions(killGrace: .seconds(2)))
        }
        try await waitUntil(.seconds(10)) { !ProcTable.matching(marker).isEmpty }
        try #require(!ProcTable.matching(marker).isEmpty)
        let started = ContinuousClock.now
        // What the Interrupts handler registered by the connection runs, on its own thread.
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                connection.core.killAllBlocking()
                done.resume()
            }
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        let result = try await task.value
        #expect(result.termination == .signaled(SIGTERM))
        #expect(!result.timedOut)
        #expect(ProcTable.matching(marker).isEmpty)
    }

    @Test("several channels at once on one session: 8 commands that each wait for all the others")
    func parallelChannels() async throws {
        let server = try await SSHServer.start()
        let connection = try await SSHConnection.connect(server.configuration())
        let dir = TemporaryDirectory()
        let count = 8
        // Each command marks itself present, then waits until all 8 are: only commands
        // running at the same time can finish (one at a time, the first would time out).
        let results = try await withThrowingTaskGroup(of: CommandResult.self) { group in
            for index in 0..<count {
                group.addTask {
                    try await connection.execute(
                        "touch \(dir.path)/\(index); while [ $(ls \(dir.path) | wc -l) -lt \(count) ]; do sleep 0.05; done; echo \(index)",
                        options: RunOptions(timeout: .seconds(30)))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == count)
        #expect(results.allSatisfy { $0.succeeded })
        #expect(Set(results.map { $0.stdoutText }) == Set((0..<count).map { "\($0)\n" }))
        #expect(Set(results.map(\.pid)).count == count)
    }

    @Test("more commands than channels: the rest wait for a free channel and all complete")
    func channelLimit() async throws {
        let server = try await SSHServer.start()
        let connection = try await SSHConnection.connect(server.configuration(maxChannels: 3))
        let results = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<10 {
                group.addTask {
                    try await connection.execute("echo \(index)", options: RunOptions(timeout: .seconds(30))).stdoutText
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(results) == Set((0..<10).map { "\($0)\n" }))
    }

    @Test("a server with a lower MaxSessions than configured: kh waits for a free channel instead of failing")
    func serverMaxSessions() async throws {
        let server = try await SSHServer.start(extraConfig: ["MaxSessions 2"])
        let connection = try await SSHConnection.connect(server.configuration(maxChannels: 10))
        let results = try await withThrowingTaskGroup(of: CommandResult.self) { group in
            for index in 0..<6 {
                group.addTask { try await connection.execute("sleep 0.2; echo \(index)", options: RunOptions(timeout: .seconds(60))) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0.succeeded })
        #expect(Set(results.map(\.stdoutText)) == Set((0..<6).map { "\($0)\n" }))
    }

    @Test("a closed connection refuses commands with a clear error")
    func closed() async throws {
        let server = try await SSHServer.start()
        let connection = try await SSHConnection.connect(server.configuration())
        await connection.close()
        #expect(!connection.isOpen)
        let error = await #expect(throws: SSHError.self) {
            _ = try await connection.execute("true", options: RunOptions(timeout: .seconds(5)))
        }
        #expect(error?.kind == .connectionLost)
        #expect(error?.message.contains("127.0.0.1:\(server.port)") == true)
    }
}

@Suite("SSH connect: deadlines, keys, host keys")
struct SSHConnectTests {
    @Test("a closed port fails fast with a connect error naming host and port")
    func refusedPort() async throws {
        let holder = try SilentListener(listen: false)  // bound, not listening: connections are refused
        let port = holder.port
        let server = try await SSHServer.start()
        var configuration = server.configuration(connectTimeout: .seconds(3))
        configuration.port = port
        let started = ContinuousClock.now
        let error = await #expect(throws: SSHError.self) { _ = try await SSHConnection.connect(configuration) }
        #expect(ContinuousClock.now - started < .seconds(3))
        #expect(error?.kind == .connect)
        #expect(error?.systemErrno == ECONNREFUSED)
        #expect(error?.message.contains("127.0.0.1:\(port)") == true)
    }

    @Test("a port that accepts but never speaks SSH fails within the connect deadline")
    func silentPort() async throws {
        let listener = try SilentListener()
        let server = try await SSHServer.start()
        var configuration = server.configuration(connectTimeout: .seconds(1))
        configuration.port = listener.port
        let started = ContinuousClock.now
        let error = await #expect(throws: SSHError.self) { _ = try await SSHConnection.connect(configuration) }
        let elapsed = ContinuousClock.now - started
        #expect(error?.kind == .timeout)
        #expect(error?.call == "libssh2_session_handshake")
        #expect(elapsed >= .milliseconds(900))
        #expect(elapsed < .seconds(3), "took \(elapsed)")
    }

    @Test("a key the server does not know is rejected; only that key is offered")
    func wrongKey() async throws {
        let server = try await SSHServer.start()
        let stranger = try await server.server.makeKey(name: "stranger")
        let error = await #expect(throws: SSHError.self) {
            _ = try await SSHConnection.connect(server.configuration(privateKeyPath: stranger))
        }
        #expect(error?.kind == .authentication)
        #expect(error?.libssh2Code != nil)
        #expect(error?.message.contains(stranger) == true)
        #expect(error?.message.contains(server.user) == true)
    }

    @Test("a passphrase-protected key works with its passphrase; a wrong one fails without showing it")
    func passphrase() async throws {
        let server = try await SSHServer.start()
        let secret = "correct horse \(UUID().uuidString.prefix(6))"
        let key = try await server.server.makeKey(name: "locked", passphrase: secret)
        try server.server.authorize(publicKey: try String(contentsOfFile: key + ".pub", encoding: .utf8))
        let connection = try await SSHConnection.connect(server.configuration(privateKeyPath: key, passphrase: secret))
        let result = try await connection.execute("echo ok", options: RunOptions(timeout: .seconds(20)))
        #expect(result.stdoutText == "ok\n")
        #expect(!connection.configuration.description.contains(secret))

        let wrong = "wrong-\(UUID().uuidString.prefix(6))"
        let error = await #expect(throws: SSHError.self) {
            _ = try await SSHConnection.connect(server.configuration(privateKeyPath: key, passphrase: wrong))
        }
        #expect(error?.kind == .authentication)
        #expect(error?.message.contains(wrong) == false)
        #expect(error?.message.contains(secret) == false)
    }

    @Test("strict: an unknown host key is rejected with host, key type and SHA256 fingerprint")
    func strictUnknown() async throws {
        let server = try await SSHServer.start()
        let dir = TemporaryDirectory()
        let error = await #expect(throws: SSHError.self) {
            _ = try await SSHConnection.connect(server.configuration(hostKeyPolicy: .strict, knownHostsPath: dir.path + "/known_hosts"))
        }
        let fingerprint = try await openSSHFingerprint(server)
        #expect(error?.kind == .hostKeyUnknown)
        #expect(error?.message.contains("[127.0.0.1]:\(server.port)") == true)
        #expect(error?.message.contains("ssh-ed25519") == true)
        #expect(error?.message.contains(fingerprint) == true, "\(error?.message ?? "") should name \(fingerprint)")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/known_hosts"))
    }

    @Test("strict: a key in known_hosts is accepted")
    func strictKnown() async throws {
        let server = try await SSHServer.start()
        let connection = try await SSHConnection.connect(server.configuration(hostKeyPolicy: .strict))
        #expect(connection.hostKey.fingerprint == (try await openSSHFingerprint(server)))
    }

    @Test("accept-new: an unknown key is accepted and recorded; after the host key changes it is rejected")
    func acceptNew() async throws {
        let server = try await SSHServer.start()
        let dir = TemporaryDirectory()
        let file = dir.path + "/ssh/known_hosts"
        let warnings = Mutex<[String]>([])
        let configuration = server.configuration(
            hostKeyPolicy: .acceptNew, knownHostsPath: file, onWarning: { text in warnings.withLock { $0.append(text) } })
        let first = try await SSHConnection.connect(configuration)
        #expect(try await first.execute("echo hi", options: RunOptions(timeout: .seconds(20))).stdoutText == "hi\n")
        let recorded = try String(contentsOfFile: file, encoding: .utf8)
        #expect(recorded == server.knownHostsLine + "\n")
        #expect(warnings.withLock { $0.contains { $0.contains("added") && $0.contains(first.hostKey.fingerprint) } })
        var info = stat()
        #expect(stat(file, &info) == 0 && info.st_mode & 0o777 == 0o600)

        // The recorded key now satisfies strict checking.
        _ = try await SSHConnection.connect(server.configuration(hostKeyPolicy: .strict, knownHostsPath: file))

        // The host is "rebuilt": same address, new host key.
        try await server.server.restart(newHostKey: true)
        let error = await #expect(throws: SSHError.self) { _ = try await SSHConnection.connect(configuration) }
        let newFingerprint = try await openSSHFingerprint(server)
        #expect(error?.kind == .hostKeyChanged)
        #expect(error?.message.contains("CHANGED") == true)
        #expect(error?.message.contains(newFingerprint) == true)
        #expect(error?.hint?.contains("ssh-keygen -R") == true)
        #expect(try String(contentsOfFile: file, encoding: .utf8) == recorded, "a changed key is never written")
    }

    @Test("off: an unknown or changed key is accepted with a warning naming it")
    func off() async throws {
        let server = try await SSHServer.start()
        let dir = TemporaryDirectory()
        let stale = try await server.server.makeKey(name: "stale-host")
        let staleLine = try String(contentsOfFile: stale + ".pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
        try dir.write("known_hosts", "[127.0.0.1]:\(server.port) \(staleLine)\n")
        let warnings = Mutex<[String]>([])
        let connection = try await SSHConnection.connect(
            server.configuration(
                hostKeyPolicy: .off, knownHostsPath: dir.path + "/known_hosts", onWarning: { text in warnings.withLock { $0.append(text) } }))
        #expect(try await connection.execute("echo hi", options: RunOptions(timeout: .seconds(20))).stdoutText == "hi\n")
        let seen = warnings.withLock { $0 }
        #expect(seen.count == 1)
        #expect(seen.first?.contains("off") == true)
        #expect(seen.first?.contains(connection.hostKey.fingerprint) == true)
        #expect(seen.first?.contains("ssh-ed25519") == true)
        // And strict checking with that stale file rejects the same server as changed.
        let error = await #expect(throws: SSHError.self) {
            _ = try await SSHConnection.connect(server.configuration(hostKeyPolicy: .strict, knownHostsPath: dir.path + "/known_hosts"))
        }
        #expect(error?.kind == .hostKeyChanged)
    }

    @Test("a missing private key is a configuration error")
    func missingKey() async throws {
        let server = try await SSHServer.start()
        let error = await #expect(throws: SSHError.self) {
            _ = try await SSHConnection.connect(server.configuration(privateKeyPath: "/nonexistent/kh-key"))
        }
        #expect(error?.kind == .configuration)
        #expect(error?.exitCode == .usage)
        #expect(error?.message.contains("/nonexistent/kh-key") == true)
    }
}

@Suite("SSHRunner as a CommandRunner")
struct SSHRunnerTests {
    static let tricky = ["plain", "two words", "it's", "$HOME", "a\"b", "back\\slash", "", "*", "semi;colon", "new\nline", "$(echo no)"]

    @Test("arguments with spaces, quotes and $ arrive unchanged")
    func quoting() async throws {
        let server = try await SSHServer.start()
        let runner: any CommandRunner = SSHRunner(configuration: server.configuration())
        #expect(runner.location == "ssh \(server.user)@127.0.0.1:\(server.port)")
        let result = try await runner.run(Command("printf", ["[%s]\\n"] + Self.tricky), options: RunOptions(timeout: .seconds(20)))
        #expect(result.succeeded)
        #expect(result.stdoutText == Self.tricky.map { "[\($0)]\n" }.joined())
    }

    @Test("environment and working directory reach the remote command")
    func environmentAndDirectory() async throws {
        let server = try await SSHServer.start()
        let dir = TemporaryDirectory("kh ssh dir")
        let runner = SSHRunner(configuration: server.configuration())
        let result = try await runner.run(
            Command("sh", ["-c", "pwd; echo \"$GREETING\""], environment: ["GREETING": "hi 'there' $USER"], workingDirectory: dir.path),
            options: RunOptions(timeout: .seconds(20)))
        let lines = result.stdoutText.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        #expect(URL(fileURLWithPath: lines.first ?? "").resolvingSymlinksInPath() == URL(fileURLWithPath: dir.path).resolvingSymlinksInPath())
        #expect(lines.last == "hi 'there' $USER")
        let clean = try await runner.run(
            Command("sh", ["-c", "echo \"[$GREETING][$ONLY]\""], environment: ["ONLY": "1"], inheritEnvironment: false),
            options: RunOptions(timeout: .seconds(20)))
        #expect(clean.stdoutText == "[][1]\n")
    }

    @Test("one connection serves every command, and a lost one is replaced")
    func reuseAndReconnect() async throws {
        let server = try await SSHServer.start()
        let runner = SSHRunner(configuration: server.configuration())
        let first = try await runner.connection()
        _ = try await runner.run(Command("true"), options: RunOptions(timeout: .seconds(20)))
        #expect(try await runner.connection() === first)
        await first.close()
        let result = try await runner.run(Command("echo", ["again"]), options: RunOptions(timeout: .seconds(20)))
        #expect(result.stdoutText == "again\n")
        #expect(try await runner.connection() !== first)
        await runner.close()
    }

    @Test("the same Command gives the same result locally, through a prefix and over SSH")
    func sameCommandEverywhere() async throws {
        let server = try await SSHServer.start()
        let command = Command("sh", ["-c", "printf '%s|' \"$@\"; echo; exit 3", "sh"] + Self.tricky)
        let runners: [any CommandRunner] = [
            LocalRunner(), PrefixRunner(prefix: Shell.join(["ssh"] + server.sshOptions + ["\(server.user)@127.0.0.1"])),
            SSHRunner(configuration: server.configuration()),
        ]
        var outputs: [String] = []
        for runner in runners {
            let result = try await runner.run(command, options: RunOptions(timeout: .seconds(30)))
            #expect(result.termination == .exited(3), "\(runner.location)")
            outputs.append(result.stdoutText)
        }
        #expect(Set(outputs).count == 1, "\(outputs)")
        #expect(outputs.first == Self.tricky.map { $0 + "|" }.joined() + "\n")
    }
}

@Suite("SSH test server fixture")
struct SSHServerFixtureTests {
    @Test("the fixture's ssh options and known_hosts line work with the OpenSSH client; stop ends sshd")
    func openSSHClient() async throws {
        let server = try await SSHServer.start()
        #expect(server.knownHostsLine.hasPrefix("[127.0.0.1]:\(server.port) ssh-ed25519 "))
        #expect(server.gitSSHCommand.hasPrefix("ssh -i "))
        #expect(server.url(path: "/srv/repo.git") == "ssh://\(server.user)@127.0.0.1:\(server.port)/srv/repo.git")
        let result = try await LocalRunner().run(
            Command("ssh", server.sshOptions + ["\(server.user)@127.0.0.1", "echo", "from-openssh"]), options: RunOptions(timeout: .seconds(30)))
        #expect(result.stdoutText == "from-openssh\n", "\(result.stderrText)")
        let pid = server.pid
        #expect(kill(pid, 0) == 0)
        server.stop()
        #expect(kill(pid, 0) != 0)
    }
}

// MARK: helpers

/// Polls `condition` every 50 ms until it holds or `limit` passes.
func waitUntil(_ limit: Duration, _ condition: () -> Bool) async throws {
    let until = ContinuousClock.now + limit
    while !condition() && ContinuousClock.now < until { try await Task.sleep(for: .milliseconds(50)) }
}

/// The host key's fingerprint as `ssh-keygen -l` prints it.
func openSSHFingerprint(_ server: SSHServer) async throws -> String {
    let result = try await LocalRunner().run(
        Command("ssh-keygen", ["-l", "-E", "sha256", "-f", server.server.directory + "/host_ed25519.pub"]),
        options: RunOptions(timeout: .seconds(20)))
    let field = result.stdoutText.split(separator: " ").dropFirst().first.map(String.init)
    return try #require(field.flatMap { $0.hasPrefix("SHA256:") ? $0 : nil }, "ssh-keygen -l: \(result.stdoutText) \(result.stderrText)")
}

/// A TCP socket on 127.0.0.1 that accepts connections (in the kernel's backlog) but
/// never says a word: an SSH client waits for a banner that never comes.
final class SilentListener: Sendable {
    let fd: Int32
    let port: Int

    init(listen: Bool = true) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        try #require(bound == 0)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        // Without listen() the port refuses connections while this socket holds it.
        if listen { try #require(Glibc.listen(fd, 16) == 0) }
    }

    deinit { close(fd) }
}
