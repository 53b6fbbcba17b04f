// http: 200 GETs through KhHTTP with 8 in flight (one client, kept-alive connections)
// against 200 `curl -s -o /dev/null URL` runs in a row, both to a local Python server.
import Foundation
import KhCore
import KhHTTP

let httpBenchmark = RuntimeBenchmark(name: "http: 200 GETs, 8 in flight vs curl CLI in a row") {
    await HTTPBench.run()
}

enum HTTPBench {
    static let requests = 200
    static let inFlight = 8
    static let rounds = 3
    static let name = httpBenchmark.name

    /// A keep-alive HTTP/1.1 server on 127.0.0.1 answering `ok` to any GET; prints
    /// `READY <port>` and exits when its stdin closes. Each answer leaves in one write
    /// with Nagle off: headers and body in two small writes would stall every reused
    /// connection on the client's delayed ACK (40 ms), measuring TCP, not the client.
    static let serverScript = """
        import sys, threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True
            wbufsize = 65536
            def log_message(self, *a): pass
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "3")
                self.end_headers()
                self.wfile.write(b"ok\\n")
        class S(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128
        s = S(("127.0.0.1", 0), H)
        threading.Thread(target=s.serve_forever, daemon=True).start()
        print("READY", s.server_address[1], flush=True)
        sys.stdin.read()
        """

    static func row(_ note: String) -> [Row] { [Row(name: name, kh: "-", baseline: note, ratio: "-", goal: ">= 5x", met: nil)] }

    static func run() async -> [Row] {
        guard let python = which("python3") else { return row("python3 not installed") }
        guard let curl = which("curl") else { return row("curl not installed") }
        guard let server = BenchServer(argv: [python, "-c", serverScript]) else { return row("local server did not start") }
        defer { server.stop() }
        let url = URL(string: "http://127.0.0.1:\(server.port)/ok")!
        let client = HTTPClient(configuration: .init(connectTimeout: .seconds(5), timeout: .seconds(10), retry: .none))

        var khTimes: [Double] = []
        var curlTimes: [Double] = []
        do {
            _ = try await batch(client, url, count: 16)  // warm-up: connections, code paths
            for _ in 0..<rounds {
                khTimes.append(try await time { _ = try await batch(client, url, count: requests) })
                let start = ContinuousClock.now
                for _ in 0..<requests {
                    let sample = measure([curl, "-s", "-o", "/dev/null", url.absoluteString])
                    guard sample.status == 0 else { return row("curl failed (status \(sample.status))") }
                }
                curlTimes.append((ContinuousClock.now - start).seconds)
            }
        } catch {
            return row("KhHTTP failed: \(error)")
        }
        let kh = median(khTimes)
        let base = median(curlTimes)
        let speedUp = base / kh
        return [
            Row(
                name: name, kh: ms(kh), baseline: "curl CLI " + ms(base), ratio: String(format: "%.1fx faster", speedUp), goal: ">= 5x",
                met: speedUp >= 5)
        ]
    }

    /// `count` GETs, `inFlight` at a time; throws unless every one answers 200.
    static func batch(_ client: HTTPClient, _ url: URL, count: Int) async throws -> Int {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<inFlight {
                group.addTask {
                    var done = 0
                    for _ in stride(from: worker, to: count, by: inFlight) {
                        let response = try await client.send(HTTPRequest(.get, url))
                        guard response.status == 200 else { throw KhError.external("GET \(url) answered \(response.status)") }
                        done += 1
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
    }
}

/// A server child: stdin on a pipe (closing it ends the server), stdout read for
/// `READY <port>` within 10 s, its own process group, killed by ``stop()``.
final class BenchServer: Sendable {
    let pid: pid_t
    let port: Int
    private let stdinFD: Int32

    init?(argv: [String]) {
        var input: [Int32] = [-1, -1]
        var output: [Int32] = [-1, -1]
        guard pipe(&input) == 0 else { return nil }
        guard pipe(&output) == 0 else {
            for fd in input { close(fd) }
            return nil
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        for fd in input + output { posix_spawn_file_actions_addclose(&actions, fd) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, argv[0], &actions, &attributes, &cArgs, environ)
        close(input[0])
        close(output[1])
        defer { close(output[0]) }
        guard rc == 0 else {
            close(input[1])
            return nil
        }
        pid = child
        stdinFD = input[1]
        // The ready line, with a deadline.
        var line: [UInt8] = []
        let until = ContinuousClock.now + .seconds(10)
        var ready: Int?
        while ready == nil, ContinuousClock.now < until {
            var entry = pollfd(fd: output[0], events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 100) > 0 else { continue }
            var byte: UInt8 = 0
            guard read(output[0], &byte, 1) == 1 else { break }
            if byte == 0x0A {
                let parts = String(decoding: line, as: UTF8.self).split(separator: " ")
                if parts.count == 2, parts[0] == "READY" { ready = Int(parts[1]) }
                line.removeAll()
            } else {
                line.append(byte)
            }
        }
        port = ready ?? 0
        if ready == nil {
            stop()
            return nil
        }
    }

    func stop() {
        close(stdinFD)
        _ = kill(-pid, SIGTERM)
        var status: Int32 = 0
        let until = ContinuousClock.now + .seconds(3)
        while ContinuousClock.now < until {
            if waitpid(pid, &status, WNOHANG) == pid { return }
            usleep(10_000)
        }
        _ = kill(-pid, SIGKILL)
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }
}
