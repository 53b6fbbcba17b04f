import Foundation
import KhCore
import KhTestSupport
import Synchronization
import Testing

/// A server child process for the tests: its own process group, stdin on a pipe
/// (closing it tells a fixture to exit), stdout on a pipe for its ready line or a
/// file, stderr to a file. ``stop()`` (and deinit) closes stdin, sends SIGTERM to the
/// group, waits up to 3 s, then SIGKILL, and reaps it.
final class ServerProcess: Sendable {
    let pid: pid_t
    let logPath: String
    private let stdinFD: Int32
    private let stdoutFD: Int32
    private let stopped = Mutex(false)

    init(_ argv: [String], environment: [String: String] = [:], logPath: String, captureStdout: Bool) throws {
        var input: [Int32] = [-1, -1]
        var output: [Int32] = [-1, -1]
        guard pipe(&input) == 0, pipe(&output) == 0 else { throw KhError.internalError("pipe: \(String(cString: strerror(errno)))") }
        // Our ends must not leak into children other tests spawn meanwhile.
        for fd in [input[1], output[0]] { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        if captureStdout {
            posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        }
        posix_spawn_file_actions_addopen(&actions, 2, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        for fd in input + output { posix_spawn_file_actions_addclose(&actions, fd) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)

        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        let envp = env.map { "\($0.key)=\($0.value)" }
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cEnv: [UnsafeMutablePointer<CChar>?] = envp.map { strdup($0) } + [nil]
        defer { for p in cArgs + cEnv { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, argv[0], &actions, &attributes, &cArgs, &cEnv)
        close(input[0])
        close(output[1])
        guard rc == 0 else {
            close(input[1])
            close(output[0])
            throw KhError.blocked("could not start \(argv[0]): \(String(cString: strerror(rc)))")
        }
        pid = child
        stdinFD = input[1]
        stdoutFD = output[0]
        self.logPath = logPath
    }

    deinit { stop() }

    /// One line of stdout, waiting at most `deadline`.
    func readLine(deadline: Duration) throws -> String {
        let until = ContinuousClock.now + deadline
        var bytes: [UInt8] = []
        while true {
            let left = until - ContinuousClock.now
            guard left > .zero else { throw KhError.external("no line from server pid \(pid) within \(deadline.humanDescription); log: \(log)") }
            var entry = pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32(max(1, left.seconds * 1000)))
            if ready <= 0 { continue }
            var byte: UInt8 = 0
            let n = read(stdoutFD, &byte, 1)
            if n <= 0 { throw KhError.external("server pid \(pid) closed stdout before its ready line; log: \(log)") }
            if byte == 0x0A { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
    }

    /// The start of the server's log, for failure messages.
    var log: String { String((try? String(contentsOfFile: logPath, encoding: .utf8))?.suffix(2000) ?? "") }

    var isAlive: Bool { kill(pid, 0) == 0 && waitpid(pid, nil, WNOHANG) == 0 }

    /// Ends the server and its group, and reaps it. Idempotent.
    func stop() {
        let first = stopped.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        close(stdinFD)
        close(stdoutFD)
        _ = kill(-pid, SIGTERM)
        let until = ContinuousClock.now + .seconds(3)
        var status: Int32 = 0
        while ContinuousClock.now < until {
            if waitpid(pid, &status, WNOHANG) == pid {
                _ = kill(-pid, SIGKILL)
                return
            }
            usleep(10_000)
        }
        _ = kill(-pid, SIGKILL)
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }
}

/// The Python fixture server (Fixtures/http_fixture.py) on 127.0.0.1.
final class FixtureServer: Sendable {
    @TaskLocal static var current: FixtureServer?

    let process: ServerProcess
    let port: Int
    /// A port whose listener never accepts: connects to it hang.
    let blackholePort: Int
    private let directory: TemporaryDirectory

    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures/http_fixture.py"
    }

    init() throws {
        directory = TemporaryDirectory("kh-http-fixture")
        process = try ServerProcess(["python3", "-u", Self.script], logPath: directory.path + "/server.log", captureStdout: true)
        let line = try process.readLine(deadline: .seconds(15))
        let parts = line.split(separator: " ")
        guard parts.count == 3, parts[0] == "READY", let port = Int(parts[1]), let blackhole = Int(parts[2]) else {
            process.stop()
            throw KhError.external("unexpected ready line from the fixture server: \(line)")
        }
        self.port = port
        blackholePort = blackhole
    }

    func stop() { process.stop() }

    /// `http://127.0.0.1:PORT` + path (with query).
    func url(_ path: String) -> URL { URL(string: "http://127.0.0.1:\(port)\(path)")! }
}

/// Starts one fixture server for the suite it is attached to, and kills it after.
struct FixtureServerTrait: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let server = try FixtureServer()
        defer { server.stop() }
        try await FixtureServer.$current.withValue(server) { try await function() }
    }
}

extension Trait where Self == FixtureServerTrait {
    /// A Python fixture server on 127.0.0.1 for the suite (``FixtureServer/current``).
    static var httpFixture: Self { FixtureServerTrait() }
}

/// A TCP port on 127.0.0.1 with nothing listening (bound, then released).
func closedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}
