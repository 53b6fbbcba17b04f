import Foundation
import KhCore

/// How one scenario ended.
public enum ScenarioStatus: String, Sendable, Codable, Equatable {
    case passed, failed, timedOut = "timed-out", skipped, error

    /// Passed, or skipped (not a failure of its own).
    public var isFailure: Bool { self == .failed || self == .timedOut || self == .error }
}

/// One scenario of the matrix as scheduled: its name, tier and position.
public struct ScheduledScenario: Sendable, Equatable {
    public var name: String
    public var tier: Int
    public var distro: String

    public init(name: String, tier: Int = 1, distro: String = "k3s") {
        self.name = name
        self.tier = tier
        self.distro = distro
    }
}

/// The outcome of one scenario: status, timing, log, stalls, triage and diagnoses.
public struct ScenarioResult: Sendable, Codable, Equatable {
    public var name: String
    public var tier: Int
    public var status: ScenarioStatus
    /// The step that ended it: `init`, `apply`, or nil.
    public var phase: String?
    public var startedAt: Date?
    public var durationSeconds: Double
    /// The scenario's log (absolute path).
    public var log: String?
    public var exitCode: Int32?
    public var message: String
    /// Every time the apply went silent past the idle threshold.
    public var stalls: [StallRecord]
    /// What triage found on the scenario's nodes.
    public var triage: [TriageReport]

    public init(
        name: String, tier: Int, status: ScenarioStatus, phase: String? = nil, startedAt: Date? = nil, durationSeconds: Double = 0,
        log: String? = nil, exitCode: Int32? = nil, message: String, stalls: [StallRecord] = [], triage: [TriageReport] = []
    ) {
        self.name = name
        self.tier = tier
        self.status = status
        self.phase = phase
        self.startedAt = startedAt
        self.durationSeconds = durationSeconds
        self.log = log
        self.exitCode = exitCode
        self.message = message
        self.stalls = stalls
        self.triage = triage
    }

    /// Every known failure recognised for this scenario, once each.
    public var diagnoses: [Diagnosis] {
        var seen = Set<String>()
        return triage.flatMap(\.diagnoses).filter { seen.insert($0.id).inserted }
    }
}

/// A stall: when it happened and how long the apply had been silent.
public struct StallRecord: Sendable, Codable, Equatable {
    public var at: Date
    public var silentSeconds: Double
    public var lastLine: String?

    public init(at: Date, silentSeconds: Double, lastLine: String?) {
        self.at = at
        self.silentSeconds = silentSeconds
        self.lastLine = lastLine
    }
}

/// Runs scenarios in configured order, tier by tier, at most `concurrency` at once.
///
/// Pure scheduling: the work is the injected `execute`, so tests and benchmarks run it
/// with fakes. Within a tier scenarios start in order as slots free up; when a tier
/// has a failure the later tiers are skipped unless `keepGoing`.
public struct MatrixScheduler: Sendable {
    public var concurrency: Int
    public var keepGoing: Bool

    public init(concurrency: Int, keepGoing: Bool) {
        self.concurrency = max(1, concurrency)
        self.keepGoing = keepGoing
    }

    /// The tiers in ascending order, each with its scenarios in configured order.
    public static func tiers(_ scenarios: [ScheduledScenario]) -> [(tier: Int, scenarios: [ScheduledScenario])] {
        let numbers = Array(Set(scenarios.map(\.tier))).sorted()
        return numbers.map { tier in (tier, scenarios.filter { $0.tier == tier }) }
    }

    /// Runs everything; results come back in the scenarios' order. `onResult` sees each as it ends.
    public func run(
        _ scenarios: [ScheduledScenario], onResult: @Sendable (ScenarioResult) -> Void = { _ in },
        execute: @escaping @Sendable (ScheduledScenario) async -> ScenarioResult
    ) async -> [ScenarioResult] {
        var results: [String: ScenarioResult] = [:]
        var stoppedBy: Int?
        for (tier, members) in Self.tiers(scenarios) {
            if let failedTier = stoppedBy {
                for scenario in members {
                    let skipped = ScenarioResult(
                        name: scenario.name, tier: tier, status: .skipped,
                        message: "not run: tier \(failedTier) failed, escalation stopped (--keep-going runs every tier)")
                    results[scenario.name] = skipped
                    onResult(skipped)
                }
                continue
            }
            let tierResults = await runTier(members, onResult: onResult, execute: execute)
            for result in tierResults { results[result.name] = result }
            if !keepGoing, tierResults.contains(where: { $0.status.isFailure }) { stoppedBy = tier }
        }
        return scenarios.compactMap { results[$0.name] }
    }

    private func runTier(
        _ members: [ScheduledScenario], onResult: @Sendable (ScenarioResult) -> Void,
        execute: @escaping @Sendable (ScheduledScenario) async -> ScenarioResult
    ) async -> [ScenarioResult] {
        await withTaskGroup(of: ScenarioResult.self) { group in
            var next = 0
            var collected: [ScenarioResult] = []
            while next < members.count && next < concurrency {
                let scenario = members[next]
                group.addTask { await execute(scenario) }
                next += 1
            }
            while let result = await group.next() {
                collected.append(result)
                onResult(result)
                if next < members.count {
                    let scenario = members[next]
                    group.addTask { await execute(scenario) }
                    next += 1
                }
            }
            return collected
        }
    }

    /// The makespan of the ideal schedule for known durations: the same order and
    /// slots as ``run(_:onResult:execute:)``, with zero overhead (tiers in sequence).
    public static func idealMakespan(_ scenarios: [ScheduledScenario], durations: [String: Double], concurrency: Int) -> Double {
        var total = 0.0
        for (_, members) in tiers(scenarios) {
            var slots = Array(repeating: 0.0, count: max(1, min(concurrency, members.count)))
            for scenario in members {
                let index = slots.indices.min { slots[$0] < slots[$1] }!
                slots[index] += durations[scenario.name] ?? 0
            }
            total += slots.max() ?? 0
        }
        return total
    }
}
