// The benchmarks of the runtime and the plugins, after start-up and streaming (main.swift).
// Each lives in its own file (<Name>Bench.swift) and is listed here, in the order they run.

struct RuntimeBenchmark: Sendable {
    var name: String
    var run: @Sendable () async -> [Row]
}

let runtimeBenchmarks: [RuntimeBenchmark] = [
    gitBenchmark, sshBenchmark, httpBenchmark, hcloudBenchmark, stabilizeBenchmark, gitopsBenchmark, reliabilityBenchmark,
]
