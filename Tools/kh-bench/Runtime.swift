// The runtime benchmarks of issue 3. Each lives in its own file (GitBench.swift,
// SSHBench.swift, HTTPBench.swift) and is listed here.

struct RuntimeBenchmark: Sendable {
    var name: String
    var run: @Sendable () async -> [Row]
}

let runtimeBenchmarks: [RuntimeBenchmark] = [gitBenchmark, sshBenchmark, httpBenchmark, gitopsBenchmark]
