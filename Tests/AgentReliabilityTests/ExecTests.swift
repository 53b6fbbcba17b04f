import AgentReliability
import Foundation
import KhCore
import KhProcess
import KhTestSupport
import Testing

/// `kh reliability exec`, the BUILT binary, on the post-mortem's deadlocks: a child
/// waiting for EOF on a FIFO whose writer never closes, and one waiting on a stdin
/// that never closes. Each must end at its deadline with the sentinel written and
/// nothing of its process group left in /proc.
@Suite("kh reliability exec (built binary)")
struct ExecTests {
    static func sentinel(_ path: String) throws -> ExecSentinel {
        try KhJSON.decoder().decode(ExecSentinel.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func assertGroupGone(_ sentinel: ExecSentinel, marker: String) {
        #expect(ProcTable.matching(marker).isEmpty, "processes with marker \(marker) survived")
        if let pid = sentinel.pid { #expect(ProcTable.members(ofGroup: pid).isEmpty, "process group \(pid) still has members") }
    }

    @Test("a child blocked on a FIFO (writer held open) is killed whole at the deadline")
    func fifoDeadlock() async throws {
        let dir = TemporaryDirectory("kh-exec-fifo")
        let marker = uniqueMarker()
        let script = """
            mkfifo fifo
            (exec 3>fifo; exec sleep \(marker)) &
            echo waiting for EOF
            exec cat fifo
            """
        let outcome = try await KhBinary.run(
            ["reliability", "exec", "--deadline", "2s", "--kill-grace", "1s", "--sentinel", "done.json", "--", "sh", "-c", script], in: dir.path)
        #expect(outcome.code == 124)
        #expect(outcome.stdout.contains("waiting for EOF"))
        let sentinel = try Self.sentinel(dir.path + "/done.json")
        #expect(sentinel.reason == .timeout)
        #expect(sentinel.exitCode == 124)
        #expect(sentinel.deadlineSeconds == 2)
        #expect(sentinel.pid != nil)
        Self.assertGroupGone(sentinel, marker: marker)
    }

    @Test("stdin is closed for the child even when kh's own stdin stays open; a child blocked on a pipe of its own is killed")
    func stdinDeadlock() async throws {
        let dir = TemporaryDirectory("kh-exec-stdin")
        let held = Pipe()
        let held2 = Pipe()
        defer {
            try? held.fileHandleForWriting.close()
            try? held2.fileHandleForWriting.close()
        }
        // `cat` reads stdin: it must see EOF at once although kh's stdin never closes.
        let reader = try KhBinary.start(
            ["reliability", "exec", "--deadline", "60s", "--sentinel", "cat.json", "--", "cat"], in: dir.path, stdin: held)
        #expect(try await KhBinary.wait(reader) == 0)
        #expect(try Self.sentinel(dir.path + "/cat.json").reason == .succeeded)

        // A reader whose stdin is a pipe from a writer that never ends: killed at the deadline.
        let marker = uniqueMarker()
        let blocked = try KhBinary.start(
            [
                "reliability", "exec", "--deadline", "2s", "--kill-grace", "1s", "--sentinel", "blocked.json", "--", "sh", "-c",
                "sleep \(marker) | cat",
            ],
            in: dir.path, stdin: held2)
        #expect(try await KhBinary.wait(blocked) == 124)
        let sentinel = try Self.sentinel(dir.path + "/blocked.json")
        #expect(sentinel.reason == .timeout)
        Self.assertGroupGone(sentinel, marker: marker)
    }

    @Test("the child's exit code is passed on and the sentinel says failed")
    func exitCodePropagates() async throws {
        let dir = TemporaryDirectory("kh-exec-code")
        let outcome = try await KhBinary.run(
            ["reliability", "exec", "--deadline", "30s", "--sentinel", "s.json", "--", "sh", "-c", "echo out; echo err >&2; exit 7"], in: dir.path)
        #expect(outcome.code == 7)
        #expect(outcome.stdout == "out\n")
        #expect(outcome.stderr.contains("err\n"))
        let sentinel = try Self.sentinel(dir.path + "/s.json")
        #expect(sentinel.reason == .failed && sentinel.childExitCode == 7 && sentinel.exitCode == 7)

        let ok = try await KhBinary.run(["reliability", "exec", "--deadline", "30s", "--sentinel", "ok.json", "--", "true"], in: dir.path)
        #expect(ok.code == 0)
        #expect(try Self.sentinel(dir.path + "/ok.json").reason == .succeeded)
    }

    @Test("a child killed by a signal from elsewhere exits 128+N")
    func signalledChild() async throws {
        let dir = TemporaryDirectory("kh-exec-signal")
        let outcome = try await KhBinary.run(
            ["reliability", "exec", "--deadline", "30s", "--sentinel", "s.json", "--", "sh", "-c", "kill -USR1 $$"], in: dir.path)
        #expect(outcome.code == 128 + SIGUSR1)
        let sentinel = try Self.sentinel(dir.path + "/s.json")
        #expect(sentinel.reason == .signaled && sentinel.exitCode == 128 + SIGUSR1)
    }

    @Test("silence longer than --idle-timeout kills the group with exit 123")
    func idleKill() async throws {
        let dir = TemporaryDirectory("kh-exec-idle")
        let marker = uniqueMarker()
        let outcome = try await KhBinary.run(
            [
                "reliability", "exec", "--deadline", "60s", "--idle-timeout", "1s", "--kill-grace", "1s", "--sentinel", "s.json", "--", "sh", "-c",
                "echo working; sleep \(marker)",
            ], in: dir.path)
        #expect(outcome.code == 123)
        let sentinel = try Self.sentinel(dir.path + "/s.json")
        #expect(sentinel.reason == .idle && sentinel.idleTimeoutSeconds == 1)
        Self.assertGroupGone(sentinel, marker: marker)
    }

    @Test("a command that does not exist exits 127 with the sentinel written")
    func notFound() async throws {
        let dir = TemporaryDirectory("kh-exec-missing")
        let outcome = try await KhBinary.run(
            ["reliability", "exec", "--deadline", "5s", "--sentinel", "s.json", "--", "kh-no-such-command-\(uniqueMarker())"], in: dir.path)
        #expect(outcome.code == 127)
        #expect(outcome.stderr.contains("command not found"))
        #expect(try Self.sentinel(dir.path + "/s.json").reason == .notStarted)
    }

    @Test("SIGTERM to kh kills the child's group, writes the sentinel and exits 130")
    func interrupted() async throws {
        let dir = TemporaryDirectory("kh-exec-term")
        let marker = uniqueMarker()
        let held = Pipe()
        defer { try? held.fileHandleForWriting.close() }
        let kh = try KhBinary.start(
            ["reliability", "exec", "--deadline", "10m", "--sentinel", "s.json", "--", "sh", "-c", "touch started; sleep \(marker)"], in: dir.path,
            stdin: held)
        try await eventually("the child to start") { FileManager.default.fileExists(atPath: dir.path + "/started") }
        try await eventually("the child's sleep") { !ProcTable.matching(marker).isEmpty }
        kill(kh.processIdentifier, SIGTERM)
        #expect(try await KhBinary.wait(kh) == 130)
        let sentinel = try Self.sentinel(dir.path + "/s.json")
        #expect(sentinel.reason == .interrupted && sentinel.exitCode == 130)
        #expect(ProcTable.matching(marker).isEmpty)
    }

    @Test("output is streamed: a line reaches kh's stdout while the child is still running")
    func streamed() async throws {
        let dir = TemporaryDirectory("kh-exec-stream")
        let marker = uniqueMarker()
        let (lines, continuation) = AsyncStream.makeStream(of: String.self)
        let run = Task {
            defer { continuation.finish() }
            return try await LocalRunner().run(
                Command(
                    BuiltProducts.kh,
                    [
                        "reliability", "exec", "--deadline", "20s", "--kill-grace", "1s", "--sentinel", "s.json", "--", "sh", "-c",
                        "echo ready; exec sleep \(marker)",
                    ],
                    workingDirectory: dir.path),
                options: RunOptions(timeout: .seconds(60), onLine: { if $0.stream == .stdout { continuation.yield($0.text) } }))
        }
        // The child (sh, then the sleep it execs); kh's own command line carries the marker too.
        func comm(_ pid: pid_t) -> String { (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "" }
        func child() -> [pid_t] { ProcTable.matching(marker).filter { !comm($0).hasPrefix("kh") } }
        func sleeps() -> [pid_t] { child().filter { comm($0).hasPrefix("sleep") } }
        var sawWhileRunning = false
        for await line in lines where line == "ready" {
            sawWhileRunning = !child().isEmpty
            break
        }
        try await eventually("the child's sleep") { !sleeps().isEmpty }
        #expect(sawWhileRunning, "the line arrived only after the child had ended")
        // End the child early: kill its sleep; kh reports the signal.
        for pid in sleeps() { kill(pid, SIGKILL) }
        let result = try await run.value
        #expect(result.exitCode == 128 + SIGKILL)
        #expect(try Self.sentinel(dir.path + "/s.json").reason == .signaled)
    }

    @Test("usage errors: no command, a zero deadline")
    func usage() async throws {
        let dir = TemporaryDirectory("kh-exec-usage")
        #expect(try await KhBinary.run(["reliability", "exec", "--deadline", "5s"], in: dir.path).code == 2)
        let zero = try await KhBinary.run(["reliability", "exec", "--deadline", "0s", "--", "true"], in: dir.path)
        #expect(zero.code == 2)
        #expect(zero.stderr.contains("--deadline"))
    }
}
