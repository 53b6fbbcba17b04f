import Foundation
import KhCore
import KhProcess
import Synchronization

/// `terraform -chdir=DIR …` through a ``CommandRunner``: stdin closed, own process
/// group, deadline and idle watchdog from the caller, output to an evidence log.
public struct Terraform: Sendable {
    public var executable: String
    public var runner: any CommandRunner
    public var redactor: Redactor?

    public init(executable: String, runner: any CommandRunner, redactor: Redactor?) {
        self.executable = executable
        self.runner = runner
        self.redactor = redactor
    }

    /// The command for `terraform -chdir=DIR ARGS` (non-interactive, no color).
    public func command(_ directory: String, _ arguments: [String]) -> Command {
        Command(executable, ["-chdir=\(directory)"] + arguments, environment: ["TF_IN_AUTOMATION": "1", "TF_INPUT": "0"])
    }

    /// Runs one terraform command.
    public func run(
        _ directory: String, _ arguments: [String], timeout: Duration, idleTimeout: Duration? = nil, log: String?,
        onStall: (@Sendable (StallEvent) -> Void)? = nil, captureLimit: Int = 1 << 20
    ) async throws -> CommandResult {
        try await runner.run(
            command(directory, arguments),
            options: RunOptions(
                timeout: timeout, idleTimeout: idleTimeout, logPath: log, captureLimit: captureLimit, keep: .tail, onStall: onStall,
                redactor: redactor))
    }

    /// `init -input=false -no-color` (with `-upgrade` when asked).
    public func initialize(_ directory: String, upgrade: Bool = false, timeout: Duration, log: String?) async throws -> CommandResult {
        try await run(directory, ["init", "-input=false", "-no-color"] + (upgrade ? ["-upgrade"] : []), timeout: timeout, log: log)
    }

    /// `destroy -auto-approve -input=false -no-color`.
    public func destroy(_ directory: String, timeout: Duration, log: String?) async throws -> CommandResult {
        try await run(directory, ["destroy", "-auto-approve", "-input=false", "-no-color"], timeout: timeout, log: log)
    }

    /// The first `Error: …` line of a result's output and, when the command's own
    /// output has a later one (a provisioner's), that one too: one line for people.
    public static func firstError(_ result: CommandResult) -> String? {
        for text in [result.stderrText, result.stdoutText] {
            let lines = text.split(separator: "\n").map {
                String($0).replacingOccurrences(of: "│", with: "").trimmingCharacters(in: .whitespaces)
            }
            let errors = lines.filter { $0.contains("Error:") || $0.contains("error:") }
            guard let first = errors.first else { continue }
            if let last = errors.last, last != first { return first + " — " + last }
            return first
        }
        return nil
    }
}

/// Runs one scenario: `init`, then `apply` under a deadline and an idle watchdog;
/// triage when the apply goes silent past the threshold or fails.
public struct ScenarioExecutor: Sendable {
    public var terraform: Terraform
    public var config: StabilizeConfig
    public var paths: ResolvedPaths
    public var triage: Triage?
    /// The scenario's log (absolute).
    public var scenarioLog: @Sendable (String) -> String
    /// A triage check's log (absolute, relative to the run folder).
    public var checkLog: @Sendable (String) -> (absolute: String, relative: String)
    public var clock: KhClock
    public var progress: @Sendable (String) -> Void
    /// Runs of the same scenario in one loop are told apart in triage log names.
    public var attempt: Int

    public init(
        terraform: Terraform, config: StabilizeConfig, paths: ResolvedPaths, triage: Triage?, scenarioLog: @escaping @Sendable (String) -> String,
        checkLog: @escaping @Sendable (String) -> (absolute: String, relative: String), clock: KhClock,
        progress: @escaping @Sendable (String) -> Void,
        attempt: Int = 1
    ) {
        self.terraform = terraform
        self.config = config
        self.paths = paths
        self.triage = triage
        self.scenarioLog = scenarioLog
        self.checkLog = checkLog
        self.clock = clock
        self.progress = progress
        self.attempt = attempt
    }

    final class Pending: Sendable {
        let tasks = Mutex<[Task<TriageReport, Never>]>([])
        let stalls = Mutex<[StallRecord]>([])
    }

    public func execute(_ scenario: ScheduledScenario) async -> ScenarioResult {
        let directory = paths.scenario(scenario.name)
        let log = scenarioLog(scenario.name)
        let started = clock.now()
        let settings = config.scenario(named: scenario.name)
        let applyTimeout = (settings?.applyTimeout ?? config.timeouts.apply).duration
        let idle = (settings?.idleTimeout ?? config.timeouts.idle).duration
        let cluster = settings?.cluster ?? config.prefix + scenario.name
        func elapsed() -> Double { clock.now().timeIntervalSince(started) }
        func result(
            _ status: ScenarioStatus, _ phase: String?, _ exit: Int32?, _ message: String, _ stalls: [StallRecord] = [], _ triage: [TriageReport] = []
        )
            -> ScenarioResult
        {
            ScenarioResult(
                name: scenario.name, tier: scenario.tier, status: status, phase: phase, startedAt: started, durationSeconds: elapsed(), log: log,
                exitCode: exit, message: message, stalls: stalls, triage: triage)
        }
        progress("\(scenario.name): init")
        let initResult: CommandResult
        do {
            initResult = try await terraform.initialize(directory, timeout: config.timeouts.initialize.duration, log: log)
        } catch {
            return result(.error, "init", nil, "terraform init could not run: \(error)")
        }
        guard initResult.succeeded else {
            let status: ScenarioStatus = initResult.timedOut ? .timedOut : .failed
            return result(
                status, "init", initResult.exitCode, "init " + initResult.summary + (Terraform.firstError(initResult).map { ": \($0)" } ?? ""))
        }
        progress("\(scenario.name): apply (deadline \(applyTimeout.humanDescription), idle \(idle.humanDescription))")
        let pending = Pending()
        let triage = self.triage
        let files = Self.scenarioFiles(directory)
        let attempt = self.attempt
        let checkLog = self.checkLog
        let progress = self.progress
        let onStall: @Sendable (StallEvent) -> Void = { event in
            pending.stalls.withLock { $0.append(StallRecord(at: event.at, silentSeconds: event.silentSeconds, lastLine: event.lastLine)) }
            guard let triage else { return }
            progress("\(scenario.name): silent for \(Duration.seconds(event.silentSeconds).humanDescription): triage over SSH")
            let task = Task {
                await triage.run(
                    scenario: scenario, cluster: cluster, trigger: "stall", attempt: attempt, scenarioLog: log, scenarioFiles: files,
                    logPath: checkLog)
            }
            pending.tasks.withLock { $0.append(task) }
        }
        let apply: CommandResult
        do {
            apply = try await terraform.run(
                directory, ["apply", "-auto-approve", "-input=false", "-no-color"], timeout: applyTimeout, idleTimeout: idle, log: log,
                onStall: onStall)
        } catch {
            for task in pending.tasks.withLock({ $0 }) { task.cancel() }
            return result(.error, "apply", nil, "terraform apply could not run: \(error)", pending.stalls.withLock { $0 })
        }
        var reports: [TriageReport] = []
        for task in pending.tasks.withLock({ $0 }) { reports.append(await task.value) }
        let stalls = pending.stalls.withLock { $0 }
        if apply.succeeded {
            return result(.passed, nil, apply.exitCode, "apply " + apply.summary, stalls, reports)
        }
        if reports.isEmpty, let triage {
            progress("\(scenario.name): apply failed: triage over SSH")
            reports.append(
                await triage.run(
                    scenario: scenario, cluster: cluster, trigger: "failure", attempt: attempt, scenarioLog: log, scenarioFiles: files,
                    logPath: checkLog))
        }
        let status: ScenarioStatus = apply.timedOut ? .timedOut : .failed
        var message = "apply " + apply.summary
        if let line = Terraform.firstError(apply) { message += ": \(line)" }
        if !stalls.isEmpty { message += " (silent \(stalls.count)x past \(idle.humanDescription))" }
        return result(status, "apply", apply.exitCode, message, stalls, reports)
    }

    /// The texts of a scenario's `*.tf` and `*.tfvars` files (for the firewall source).
    static func scenarioFiles(_ directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.sorted().filter { $0.hasSuffix(".tf") || $0.hasSuffix(".tfvars") }.compactMap {
            try? String(contentsOfFile: directory + "/" + $0, encoding: .utf8)
        }
    }
}
