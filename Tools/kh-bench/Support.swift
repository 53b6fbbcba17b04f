// Measuring helpers shared by every benchmark in kh-bench.
import Foundation
import KhProcess

/// One wall-clock measurement of a child process.
struct Sample {
    var seconds: Double
    var maxRSSKiB: Int
    var status: Int32
    /// User + system CPU of the child and the children it waited for.
    var cpuSeconds: Double = 0
}

/// User + system CPU time of an rusage.
func cpuSeconds(_ usage: rusage) -> Double {
    Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// Spawns a command with stdin, stdout and stderr on /dev/null, waits, and returns
/// wall time, the child's peak RSS and CPU time (wait4's rusage).
func measure(_ argv: [String]) -> Sample {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    for fd: Int32 in [0, 1, 2] { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0) }
    var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    defer { for p in cArgs { free(p) } }
    var pid: pid_t = 0
    let start = ContinuousClock.now
    let rc = posix_spawn(&pid, argv[0], &actions, nil, &cArgs, environ)
    guard rc == 0 else { return Sample(seconds: .nan, maxRSSKiB: 0, status: -1) }
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
    let elapsed = (ContinuousClock.now - start).seconds
    return Sample(seconds: elapsed, maxRSSKiB: usage.ru_maxrss, status: status, cpuSeconds: cpuSeconds(usage))
}

/// Wall time of an async block.
func time(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    return (ContinuousClock.now - start).seconds
}

func which(_ name: String) -> String? { try? LocalRunner.resolve(name, path: ProcessInfo.processInfo.environment["PATH"] ?? "") }

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// One line of the result table.
struct Row: Sendable {
    var name: String
    var kh: String
    var baseline: String
    var ratio: String
    var goal: String
    var met: Bool?
}

func ms(_ s: Double) -> String { String(format: "%.2f ms", s * 1000) }

/// The variables of `.testbed/env` in the working directory (the repository root under
/// `make bench`, which brings the testbed up), or nil when the testbed is not up.
func testbedEnvironment() -> [String: String]? {
    let path = FileManager.default.currentDirectoryPath + "/.testbed/env"
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
    var env: [String: String] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        let entry = line.hasPrefix("export ") ? line.dropFirst(7) : line[...]
        if let eq = entry.firstIndex(of: "=") { env[String(entry[..<eq])] = String(entry[entry.index(after: eq)...]) }
    }
    return env
}
