// stabilize: (1) the matrix scheduler's overhead: 20 synthetic scenarios of known durations at
// concurrency 4, wall time over the ideal schedule (goal <= 1.02); (2) stall detection: a silent
// apply (a fake terraform that prints a line, then sleeps) is triaged within the idle threshold + 1 s.
import Foundation
import HetznerMatrix
import KhCore
import KhProcess
import Synchronization

let stabilizeBenchmark = RuntimeBenchmark(name: "stabilize: scheduler overhead, stall triage delay") {
    await StabilizeBench.run()
}

enum StabilizeBench {
    /// Records when triage asked for the scenario's servers.
    final class Probe: HetznerInventory {
        let asked = Mutex<ContinuousClock.Instant?>(nil)
        func checkAccess() async throws {}
        func servers(labelSelector: String) async throws -> [HetznerServer] {
            asked.withLock { $0 = $0 ?? ContinuousClock.now }
            return []
        }
        func snapshots(labelSelector: String, architecture: String?) async throws -> [HetznerImage] { [] }
        func planReap(labelSelectors: [String], namePrefix: String) async throws -> ReapPlan { ReapPlan(resources: []) }
        func executeReap(_ plan: ReapPlan) async throws -> ReapOutcome { ReapOutcome(deleted: [], failed: []) }
    }

    static func run() async -> [Row] {
        await [scheduler(), stall()]
    }

    static func scheduler() async -> Row {
        let scenarios = (1...20).map { ScheduledScenario(name: "s\($0)") }
        // Known durations: 200-800 ms in a fixed pattern.
        let durations = Dictionary(uniqueKeysWithValues: scenarios.enumerated().map { ($1.name, 0.2 + Double(($0 * 7) % 13) * 0.05) })
        let ideal = MatrixScheduler.idealMakespan(scenarios, durations: durations, concurrency: 4)
        let wall = await time {
            _ = await MatrixScheduler(concurrency: 4, keepGoing: true).run(scenarios) { scenario in
                try? await Task.sleep(for: .milliseconds(Int64(durations[scenario.name]! * 1000)))
                return ScenarioResult(name: scenario.name, tier: 1, status: .passed, message: "")
            }
        }
        let ratio = wall / ideal
        return Row(
            name: "stabilize: 20 scenarios at concurrency 4 (wall / ideal schedule)", kh: String(format: "%.3f s", wall),
            baseline: String(format: "%.3f s ideal", ideal), ratio: String(format: "%.3f", ratio), goal: "<= 1.02", met: ratio <= 1.02)
    }

    static func stall() async -> Row {
        let name = "stabilize: silent apply triaged (delay / idle + 1 s)"
        let folder = NSTemporaryDirectory() + "/kh-bench-stall-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let fake = folder + "/terraform"
        do {
            try FileManager.default.createDirectory(atPath: folder + "/harness/scenarios_v3/s1", withIntermediateDirectories: true)
            try AtomicFile.write(
                Data("#!/bin/sh\ncase \"$2\" in init) exit 0;; esac\necho 'null_resource.node: Creating...'\nexec sleep 30\n".utf8), to: fake,
                mode: 0o755)
        } catch {
            return Row(name: name, kh: "-", baseline: "cannot write \(folder): \(error)", ratio: "-", goal: "<= 1", met: nil)
        }
        var config = StabilizeConfig()
        config.harnessDir = folder + "/harness"
        config.terraform = fake
        config.scenarios = [ScenarioConfig(name: "s1")]
        config.timeouts.apply = KhDuration(.seconds(5))
        let idle = 1.0
        config.timeouts.idle = KhDuration(.seconds(1))
        let paths = ResolvedPaths(config: config, configFile: nil, workingDirectory: folder, home: folder)
        let probe = Probe()
        let triage = Triage(
            inventory: probe, access: NodeAccess(connect: { _ in throw KhError.external("no nodes") }, probe: { _, _, _ in false }),
            settings: config.triage, commandTimeout: .seconds(5), prefix: config.prefix, redactor: nil, clock: .live)
        let applyStarted = Mutex<ContinuousClock.Instant?>(nil)
        let executor = ScenarioExecutor(
            terraform: Terraform(executable: fake, runner: LocalRunner(), redactor: nil), config: config, paths: paths, triage: triage,
            scenarioLog: { _ in folder + "/s1.log" }, checkLog: { (folder + "/" + $0, $0) }, clock: .live,
            progress: { line in if line.contains("apply") { applyStarted.withLock { $0 = $0 ?? ContinuousClock.now } } })
        let result = await executor.execute(ScheduledScenario(name: "s1"))
        guard let start = applyStarted.withLock({ $0 }), let asked = probe.asked.withLock({ $0 }), result.triage.first?.trigger == "stall" else {
            return Row(name: name, kh: "-", baseline: "no stall triage: \(result.message)", ratio: "-", goal: "<= 1", met: false)
        }
        let delay = (asked - start).seconds
        let bound = idle + 1
        return Row(
            name: name, kh: String(format: "%.3f s", delay), baseline: String(format: "%.1f s (idle %.0f s + 1 s)", bound, idle),
            ratio: String(format: "%.3f", delay / bound), goal: "<= 1", met: delay <= bound)
    }
}
