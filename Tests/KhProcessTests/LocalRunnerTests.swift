import Foundation
import KhCore
import KhTestSupport
import Synchronization
import Testing

@testable import KhProcess

@Suite("LocalRunner against real processes")
struct LocalRunnerTests {
    let runner = LocalRunner()

    @Test("exit status and output are data, not errors")
    func exitStatusIsData() async throws {
        let result = try await runner.run(Command("sh", ["-c", "echo out; echo err >&2; exit 7"]))
        #expect(result.termination == .exited(7))
        #expect(result.stdoutText == "out\n")
        #expect(result.stderrText == "err\n")
        #expect(!result.succeeded)
    }

    @Test("a missing executable throws a typed error naming it")
    func missingExecutable() async throws {
        let error = await #expect(throws: ProcessError.self) {
            _ = try await runner.run(Command("kh-no-such-tool-\(getpid())"))
        }
        #expect(error?.kind == .notFound)
        #expect(error?.exitCode == .blocked)
        #expect(error?.message.contains("kh-no-such-tool") == true)
    }

    @Test("deadline kills the child and its grandchild; no process of the group is left")
    func deadlineKillsGroup() async throws {
        let marker = "kh-deadline-\(UUID().uuidString.prefix(8))"
        let started = ContinuousClock.now
        let result = try await runner.run(
            Command("sh", ["-c", "sleep 100 & sleep 100; : \(marker)"]),
            options: RunOptions(timeout: .milliseconds(500), killGrace: .seconds(2)))
        let elapsed = ContinuousClock.now - started
        #expect(result.timedOut)
        #expect(result.termination == .signaled(SIGTERM))
        // Far before the sleeps would end (100 s): the deadline ended it. The bound leaves room for
        // a loaded machine; how fast is for `make bench`.
        #expect(elapsed < .seconds(30))
        // /proc: nothing of the group survives.
        #expect(ProcTable.members(ofGroup: result.pid).isEmpty)
        #expect(ProcTable.matching(marker).isEmpty)
    }

    @Test("a child ignoring SIGTERM gets SIGKILL after the grace period")
    func killAfterGrace() async throws {
        let result = try await runner.run(
            Command("sh", ["-c", "trap '' TERM; sleep 100 & trap '' TERM; while :; do sleep 1; done"]),
            options: RunOptions(timeout: .milliseconds(300), killGrace: .milliseconds(500)))
        #expect(result.timedOut)
        #expect(result.termination == .signaled(SIGKILL))
        #expect(ProcTable.members(ofGroup: result.pid).isEmpty)
    }

    @Test("idle watchdog fires within threshold + 1 s for a child that prints once then goes silent")
    func idleWatchdog() async throws {
        let fired = Mutex<ContinuousClock.Instant?>(nil)
        let started = ContinuousClock.now
        let result = try await runner.run(
            Command("sh", ["-c", "echo hello; sleep 30"]),
            options: RunOptions(
                timeout: .seconds(20), killGrace: .seconds(1), idleTimeout: .seconds(1), killOnIdle: true,
                onStall: { _ in fired.withLock { $0 = .now } }))
        let firedAt = try #require(fired.withLock { $0 })
        #expect(firedAt - started < .seconds(2))
        #expect(result.killedForIdle)
        #expect(result.stalls.count == 1)
        #expect(result.stalls.first?.lastLine == "hello")
        #expect(result.stalls.first?.silentSeconds ?? 0 >= 1)
        #expect(ProcTable.members(ofGroup: result.pid).isEmpty)
    }

    @Test("idle watchdog can report without killing, once per silence")
    func idleReportOnly() async throws {
        let result = try await runner.run(
            Command("sh", ["-c", "echo a; sleep 1.2; echo b; sleep 1.2; echo c"]),
            options: RunOptions(timeout: .seconds(20), idleTimeout: .milliseconds(700)))
        #expect(result.succeeded)
        #expect(result.stalls.count == 2)
        #expect(result.stdoutText == "a\nb\nc\n")
    }

    @Test("a child reading stdin sees EOF at once")
    func stdinIsClosed() async throws {
        let result = try await runner.run(
            Command("sh", ["-c", "cat; echo done-reading; read line; echo \"read-exit=$?\""]),
            options: RunOptions(timeout: .seconds(5)))
        #expect(!result.timedOut)
        #expect(result.stdoutText == "done-reading\nread-exit=1\n")
        #expect(result.duration < .seconds(2))
    }

    @Test("100 MB on stdout and stderr together: no deadlock, capture within its cap")
    func largeOutputBothStreams() async throws {
        let dir = TemporaryDirectory()
        let cap = 1 << 20
        let script = "head -c 52428800 /dev/zero | tr '\\0' 'o' & head -c 52428800 /dev/zero | tr '\\0' 'e' >&2; wait"
        let result = try await runner.run(
            Command("sh", ["-c", script]),
            options: RunOptions(timeout: .seconds(120), logPath: dir.path + "/big.log", captureLimit: cap))
        #expect(result.succeeded)
        #expect(result.stdoutBytes == 52_428_800)
        #expect(result.stderrBytes == 52_428_800)
        #expect(result.stdout.count == cap)
        #expect(result.stderr.count == cap)
        #expect(result.stdoutTruncated && result.stderrTruncated)
        let attributes = try FileManager.default.attributesOfItem(atPath: dir.path + "/big.log")
        #expect((attributes[.size] as? Int ?? 0) > 100_000_000)
    }

    @Test("tail capture keeps the last bytes")
    func tailCapture() async throws {
        let result = try await runner.run(
            Command("sh", ["-c", "seq 1 100000"]), options: RunOptions(captureLimit: 100, keep: .tail))
        #expect(result.stdout.count == 100)
        #expect(result.stdoutText.hasSuffix("99999\n100000\n"))
        #expect(result.stdoutTruncated)
    }

    @Test("lines stream to the callback and to a timestamped, redacted log")
    func streamingAndLog() async throws {
        let dir = TemporaryDirectory()
        let redactor = Redactor()
        redactor.register(name: "HCLOUD_TOKEN", value: "tok-abcdef-123456")
        let lines = Mutex<[String]>([])
        let result = try await runner.run(
            Command("sh", ["-c", "echo one; echo 'token=tok-abcdef-123456' >&2; printf 'partial'"]),
            options: RunOptions(
                logPath: dir.path + "/logs/step.log", onLine: { line in lines.withLock { $0.append("\(line.stream.rawValue):\(line.text)") } },
                redactor: redactor))
        #expect(result.succeeded)
        let seen = lines.withLock { $0 }
        #expect(seen.contains("stdout:one"))
        #expect(seen.contains("stderr:token=[redacted:HCLOUD_TOKEN]"))
        #expect(seen.contains("stdout:partial"))
        let log = try dir.read("logs/step.log")
        #expect(!log.contains("tok-abcdef-123456"))
        #expect(log.contains("err| token=[redacted:HCLOUD_TOKEN]"))
        let outLine = try #require(log.split(separator: "\n").first { $0.hasSuffix(" out| one") })
        // 19:41:03.123 out| one, under 2026-11-21T19:41:03.120Z kh | started: … (the first line
        // after a note always has its time)
        #expect(outLine.range(of: #"^\d\d:\d\d:\d\d\.\d{3} out\| one$"#, options: .regularExpression) != nil)
        let started = try #require(log.split(separator: "\n").first { $0.contains(" kh | started: sh -c") })
        #expect(started.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z kh \| started: "#, options: .regularExpression) != nil)
        #expect(log.contains(" kh | exit 0 after"))
    }

    @Test("leftover grandchildren holding the pipes are killed after the drain period")
    func leftoversKilled() async throws {
        let marker = "kh-leftover-\(UUID().uuidString.prefix(8))"
        let result = try await runner.run(
            Command("sh", ["-c", "(sleep 60; : \(marker)) & echo started"]),
            options: RunOptions(timeout: .seconds(20), killGrace: .seconds(1), drainAfterExit: .milliseconds(300)))
        #expect(result.termination == .exited(0))
        #expect(result.leftoversKilled)
        #expect(result.duration < .seconds(5))
        #expect(ProcTable.matching(marker).isEmpty)
    }

    @Test("cancelling the task kills the group and throws CancellationError")
    func cancellation() async throws {
        let marker = "kh-cancel-\(UUID().uuidString.prefix(8))"
        let task = Task {
            try await runner.run(Command("sh", ["-c", "sleep 60 & sleep 60; : \(marker)"]), options: RunOptions(killGrace: .seconds(1)))
        }
        try await Task.sleep(for: .milliseconds(300))
        task.cancel()
        await #expect(throws: CancellationError.self) { _ = try await task.value }
        #expect(ProcTable.matching(marker).isEmpty)
    }

    @Test("working directory and environment reach the child")
    func cwdAndEnv() async throws {
        let dir = TemporaryDirectory()
        let result = try await runner.run(
            Command("sh", ["-c", "pwd; echo $KH_TEST_VALUE"], environment: ["KH_TEST_VALUE": "v 1"], workingDirectory: dir.path))
        let lines = result.stdoutText.split(separator: "\n").map(String.init)
        #expect(URL(fileURLWithPath: lines[0]).resolvingSymlinksInPath() == URL(fileURLWithPath: dir.path).resolvingSymlinksInPath())
        #expect(lines[1] == "v 1")
    }

    @Test("a missing working directory is a clear error")
    func missingCwd() async throws {
        let error = await #expect(throws: ProcessError.self) {
            _ = try await runner.run(Command("true", workingDirectory: "/nonexistent-\(getpid())"))
        }
        #expect(error?.message.contains("no such directory") == true)
    }

    @Test("signals the child sent itself are reported")
    func signaled() async throws {
        let result = try await runner.run(Command("sh", ["-c", "kill -USR1 $$"]))
        #expect(result.termination == .signaled(SIGUSR1))
    }
}

@Suite("PrefixRunner quoting")
struct PrefixRunnerTests {
    static let tricky = ["plain", "two words", "it's", "$HOME", "a\"b", "back\\slash", "", "*", "semi;colon", "new\nline"]

    @Test("remote-shell mode: the prefix gets one string that a shell parses back to the same arguments")
    func remoteShell() async throws {
        // `sh -c` parses its one argument the way sshd's login shell does.
        let runner = PrefixRunner(prefix: "sh -c", mode: .remoteShell)
        let result = try await runner.run(Command("printf", ["[%s]\\n"] + Self.tricky))
        #expect(result.succeeded)
        #expect(result.stdoutText == Self.tricky.map { "[\($0)]\n" }.joined())
    }

    @Test("remote-shell mode carries environment and working directory in the string")
    func remoteShellEnv() async throws {
        let dir = TemporaryDirectory()
        let runner = PrefixRunner(prefix: "X=1 sh -c", mode: .remoteShell)
        let result = try await runner.run(
            Command("sh", ["-c", "pwd; echo \"$GREETING\""], environment: ["GREETING": "hi there"], workingDirectory: dir.path))
        let lines = result.stdoutText.split(separator: "\n").map(String.init)
        #expect(URL(fileURLWithPath: lines[0]).resolvingSymlinksInPath() == URL(fileURLWithPath: dir.path).resolvingSymlinksInPath())
        #expect(lines[1] == "hi there")
    }

    @Test("arguments mode: each argument is one word for a local wrapper")
    func argumentsMode() async throws {
        let runner = PrefixRunner(prefix: "env KH_PREFIXED=yes", mode: .arguments)
        let result = try await runner.run(Command("sh", ["-c", "printf '[%s]' \"$KH_PREFIXED\" \"$@\"", "sh"] + Self.tricky))
        #expect(result.stdoutText == "[yes]" + Self.tricky.map { "[\($0)]" }.joined())
    }

    @Test("quote round-trips through a real shell")
    func quoteRoundTrip() async throws {
        for word in Self.tricky + ["'", "''", "a'b'c", "ü", "--flag=value"] {
            let result = try await LocalRunner().run(Command("sh", ["-c", "printf %s " + Shell.quote(word)]))
            #expect(result.stdoutText == word, "\(word)")
        }
    }
}
