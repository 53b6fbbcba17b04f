import Foundation
import KhCore
import KhGit
import KhPluginAPI
import KhProcess

/// The world the stabilize commands touch, injectable: the Hetzner inventory, SSH to
/// nodes, /proc.
public struct StabilizeServices: Sendable {
    public var inventory: InventoryFactory
    public var nodeAccess: @Sendable (SSHSettings, _ key: String, _ knownHosts: String, Console) -> NodeAccess
    public var inspector: ProcessInspector

    public init(
        inventory: InventoryFactory, nodeAccess: @escaping @Sendable (SSHSettings, String, String, Console) -> NodeAccess,
        inspector: ProcessInspector
    ) {
        self.inventory = inventory
        self.nodeAccess = nodeAccess
        self.inspector = inspector
    }

    /// The real API client, SSH and /proc.
    public static var live: StabilizeServices {
        StabilizeServices(
            inventory: .live,
            nodeAccess: { settings, key, knownHosts, console in
                NodeAccess.ssh(settings: settings, keyPath: key, knownHosts: knownHosts, onWarning: { console.verbose($0) })
            }, inspector: .live)
    }
}

/// What a command needs checked before it touches anything.
public struct Requirements: Sendable, OptionSet {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let module = Requirements(rawValue: 1)
    public static let scenarios = Requirements(rawValue: 2)
    public static let terraform = Requirements(rawValue: 4)
    public static let sshKey = Requirements(rawValue: 8)
    public static let api = Requirements(rawValue: 16)
    public static let harness = Requirements(rawValue: 32)
}

/// The stabilization loop's steps over one config: gates, clean, snapshots, the
/// matrix with triage, upgrade, the whole loop and abort. The commands are thin
/// wrappers around it.
public struct StabilizeWorkflow: Sendable {
    public var context: CommandContext
    public var config: StabilizeConfig
    public var paths: ResolvedPaths
    public var services: StabilizeServices
    /// Set by ``preflight(_:scenarios:)`` when the API is needed.
    public var inventory: (any HetznerInventory)?

    public init(context: CommandContext, config: StabilizeConfig, services: StabilizeServices = .live) {
        self.context = context
        self.config = config
        self.services = services
        self.paths = ResolvedPaths(
            config: config, configFile: context.config.path, workingDirectory: context.workingDirectory,
            home: context.environment["HOME"] ?? NSHomeDirectory())
    }

    var console: Console { context.console }
    var fs: any FileSystem { context.fileSystem }

    /// The run lock.
    public var lock: RunLock { RunLock(path: paths.lock, inspector: services.inspector, fileSystem: fs) }

    /// The terraform wrapper over the context's runner.
    public var terraform: Terraform { Terraform(executable: config.terraform, runner: context.runner, redactor: context.redactor) }

    /// The Hetzner token: `stabilize.hcloud.token`, else `HCLOUD_TOKEN`.
    public var token: String? {
        if let secret = config.hcloud.token, !secret.value.isEmpty { return secret.value }
        if let value = context.environment["HCLOUD_TOKEN"], !value.isEmpty { return value }
        return nil
    }

    /// Scenario names from `--scenarios a,b` (each must be configured), or all in order.
    public func selectScenarios(_ flag: String?) throws -> [String] {
        guard let flag, !flag.isEmpty else { return config.scenarioNames }
        let wanted = flag.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for name in wanted where config.scenario(named: name) == nil {
            throw KhError.usage(
                "--scenarios: \"\(name)\" is not a configured scenario" + suggestion(for: name, among: config.scenarioNames),
                hint: "configured: \(config.scenarioNames.joined(separator: ", "))")
        }
        // Configured order (simple to complex), whatever the flag's order.
        return config.scenarioNames.filter { wanted.contains($0) }
    }

    /// Checks everything the command needs before any resource is touched: folders,
    /// scenario folders, terraform, the SSH key, the token and the API.
    public mutating func preflight(_ needs: Requirements, scenarios: [String] = []) async throws {
        func folder(_ path: String, _ field: String) throws {
            guard fs.isDirectory(path) else {
                throw KhError.usage(
                    "\(field): folder \(path) does not exist", hint: "fix the `stabilize:` section of \(context.config.path ?? "the config")")
            }
        }
        if needs.contains(.module) { try folder(paths.module, "stabilize.module_dir") }
        if needs.contains(.harness) { try folder(paths.harness, "stabilize.harness_dir") }
        if needs.contains(.scenarios) {
            try folder(paths.scenarios, "stabilize.scenarios_dir")
            for name in scenarios where !fs.isDirectory(paths.scenario(name)) {
                throw KhError.usage(
                    "stabilize.scenarios: scenario \(name): folder \(paths.scenario(name)) does not exist",
                    hint: "create it, or remove it from stabilize.scenarios")
            }
        }
        if needs.contains(.terraform) {
            do {
                _ = try LocalRunner.resolve(config.terraform, path: context.environment["PATH"] ?? "/usr/bin:/bin")
            } catch {
                throw KhError.blocked("stabilize.terraform: \(config.terraform) not found on PATH", hint: "install terraform (>= 1.5)")
            }
        }
        if needs.contains(.sshKey) && config.triage.enabled {
            guard fs.exists(paths.sshKey) else {
                throw KhError.usage(
                    "stabilize.ssh.key: \(paths.sshKey) does not exist",
                    hint: "triage logs in with this key only (IdentitiesOnly); set the right path")
            }
        }
        if needs.contains(.api) {
            guard let token else {
                throw KhError.blocked(
                    "no Hetzner Cloud token: HCLOUD_TOKEN is not set and stabilize.hcloud.token is not configured",
                    hint: "export HCLOUD_TOKEN=… (it is never logged)")
            }
            context.redactor.register(name: "HCLOUD_TOKEN", value: token)
            let inventory = try services.inventory.make(config.hcloud.endpoint, token, config.hcloud.timeout.duration)
            do {
                try await inventory.checkAccess()
            } catch let error as any KhReportableError {
                throw KhError.external("Hetzner Cloud API at \(config.hcloud.endpoint): \(error.message)", hint: error.hint)
            } catch {
                throw KhError.external("Hetzner Cloud API at \(config.hcloud.endpoint) unreachable: \(error)")
            }
            self.inventory = inventory
        }
    }

    // MARK: the matrix

    /// The scheduled form of configured scenarios.
    public func scheduled(_ names: [String]) -> [ScheduledScenario] {
        names.compactMap { config.scenario(named: $0) }.map { ScheduledScenario(name: $0.name, tier: $0.tier, distro: $0.distro) }
    }

    /// The triage component, when enabled and the API is known.
    public func makeTriage() -> Triage? {
        guard config.triage.enabled, let inventory else { return nil }
        let access = services.nodeAccess(config.ssh, paths.sshKey, paths.knownHosts, console)
        return Triage(
            inventory: inventory, access: access, settings: config.triage, commandTimeout: config.ssh.commandTimeout.duration, prefix: config.prefix,
            redactor: context.redactor, clock: context.clock)
    }

    /// Runs one pass of the matrix into the run's evidence.
    public func runMatrix(run: EvidenceRun, names: [String], concurrency: Int, keepGoing: Bool, label: String, attempt: Int) async -> MatrixPass {
        let suffix = attempt > 1 ? ".pass\(attempt)" : ""
        let executor = ScenarioExecutor(
            terraform: terraform, config: config, paths: paths, triage: makeTriage(),
            scenarioLog: { run.logPath(for: $0 + suffix) },
            checkLog: { step in (run.logPath(for: step), run.relativeLogPath(for: step)) }, clock: context.clock,
            progress: { [console] in console.progress($0) }, attempt: attempt)
        let scheduler = MatrixScheduler(concurrency: concurrency, keepGoing: keepGoing)
        console.progress("matrix (\(label)): \(names.joined(separator: ", ")) at concurrency \(concurrency)")
        let results = await scheduler.run(
            scheduled(names),
            onResult: { [console] result in
                console.progress("\(result.name): \(SummaryRenderer.icon(result.status)) \(result.message)")
                let status: CheckStatus = result.status == .passed ? .pass : result.status == .skipped ? .skip : .fail
                _ = try? run.record(
                    EvidenceRecord(
                        kind: "scenario", name: result.name, status: status, message: result.message, durationSeconds: result.durationSeconds,
                        log: result.log.map { $0.hasPrefix(run.directory + "/") ? String($0.dropFirst(run.directory.count + 1)) : $0 },
                        data: try? JSONValue(encoding: result)))
            }, execute: { await executor.execute($0) })
        return MatrixPass(label: label, results: results)
    }

    /// Writes the summary files and the run's summary.md, prints the matrix; returns the Markdown path.
    @discardableResult
    public func publish(_ summary: StabilizeSummary, run: EvidenceRun, code: KhExitCode) throws -> String {
        var final = summary
        final.endedAt = context.clock.now()
        final.exitCode = code.rawValue
        let folder = ResultsFolder(directory: paths.results, fileSystem: fs, redactor: context.redactor)
        let path = try folder.write(final)
        let failed = final.failedScenarios
        try run.finish(
            exitCode: code, result: failed.isEmpty ? "summary \(path)" : "failed: \(failed.joined(separator: ", ")); summary \(path)",
            summary: SummaryRenderer.markdown(final))
        if console.format == .json {
            try console.json(final)
        } else {
            for result in final.finalResults {
                console.result(
                    "\(SummaryRenderer.icon(result.status).padding(toLength: 8, withPad: " ", startingAt: 0)) \(result.name)  \(result.message)"
                        + (result.log.map { "  log: \($0)" } ?? ""))
                for d in result.diagnoses { console.result("         diagnosis: \(d.title); fix path: \(d.fixPath)") }
            }
            console.result("summary: \(path)")
        }
        return path
    }

    // MARK: clean

    /// Scenario folders that hold terraform state: the configured ones and `upgrade-*`.
    public func scenarioFoldersWithState() -> [String] {
        var names = config.scenarioNames
        if let entries = try? fs.list(paths.scenarios) {
            names += entries.filter { $0.hasPrefix("upgrade-") && !names.contains($0) }
        }
        return names.filter { fs.exists(paths.scenario($0) + "/terraform.tfstate") }
    }

    /// Every `.terraform.tfstate.lock.info` under the scenarios folder (one level of scenario folders).
    public func stateLocks() -> [String] {
        let entries = (try? fs.list(paths.scenarios)) ?? []
        return entries.map { paths.scenario($0) + "/.terraform.tfstate.lock.info" }.filter { fs.exists($0) }
    }

    /// Removes state locks no live process holds; returns (removed, kept).
    public func clearStaleLocks(dryRun: Bool) -> (removed: [String], kept: [String]) {
        var removed: [String] = []
        var kept: [String] = []
        for lockFile in stateLocks() {
            let folder = (lockFile as NSString).deletingLastPathComponent
            let holders = services.inspector.stateHolders(folder)
            if holders.isEmpty {
                if !dryRun { try? fs.remove(lockFile) }
                removed.append(lockFile)
            } else {
                kept.append(lockFile + " (pid \(holders.map(String.init).joined(separator: ", ")))")
            }
        }
        return (removed, kept)
    }

    /// The label selectors of everything kh's scenarios may leave behind.
    public var reapSelectors: [String] {
        var selectors = config.reapSelectors
        for scenario in config.scenarios { selectors.append(Triage.selector(cluster: scenario.cluster ?? config.prefix + scenario.name)) }
        var seen = Set<String>()
        return selectors.filter { seen.insert($0).inserted }
    }

    /// Destroys every scenario with state (deadline each), clears stale state locks,
    /// reaps prefixed leftovers by label; a dry run only lists. Needs ``inventory`` for the reap.
    public func clean(run: EvidenceRun, dryRun: Bool, reap: Bool = true) async throws -> CleanupReport {
        var report = CleanupReport(dryRun: dryRun)
        let before = clearStaleLocks(dryRun: dryRun)
        report.locksRemoved = before.removed
        let folders = scenarioFoldersWithState()
        for name in folders {
            if dryRun {
                report.destroyed.append(StepOutcome(name: "destroy \(name)", status: .info, message: "would run terraform destroy"))
                continue
            }
            console.progress("clean: terraform destroy \(name)")
            let step = "destroy-\(name)"
            let result = try await terraform.destroy(paths.scenario(name), timeout: config.timeouts.destroy.duration, log: run.logPath(for: step))
            let outcome = StepOutcome(
                name: "destroy \(name)", status: result.succeeded ? .pass : .fail,
                message: result.summary + (Terraform.firstError(result).map { ": \($0)" } ?? ""), log: run.relativeLogPath(for: step))
            if !result.succeeded { report.failures.append("terraform destroy \(name): \(outcome.message)") }
            report.destroyed.append(outcome)
            try run.record(EvidenceRecord(kind: "destroy", name: name, status: outcome.status, message: outcome.message, log: outcome.log))
        }
        if !dryRun {
            let after = clearStaleLocks(dryRun: false)
            report.locksRemoved += after.removed.filter { !report.locksRemoved.contains($0) }
            report.locksKept = after.kept
        } else {
            report.locksKept = before.kept
        }
        guard reap, let inventory else { return report }
        let selectors = reapSelectors
        let plan = try await inventory.planReap(labelSelectors: selectors, namePrefix: config.prefix)
        if dryRun {
            report.reaped = plan.resources
            return report
        }
        if !plan.resources.isEmpty {
            console.progress(
                "clean: reaping \(plan.resources.count) resource(s) labelled \(selectors.joined(separator: " | ")) named \(config.prefix)*")
            let outcome = try await inventory.executeReap(plan)
            report.reaped = outcome.deleted
            report.failures += outcome.failed
        }
        report.remaining = try await inventory.remaining(labelSelectors: selectors, namePrefix: config.prefix)
        try run.record(
            EvidenceRecord(
                kind: "cleanup", name: "remaining", status: report.remaining.isEmpty ? .pass : .fail,
                message: report.remaining.isEmpty ? "no \(config.prefix)* resource left" : report.remaining.map(\.display).joined(separator: ", "),
                data: try? JSONValue(encoding: report)))
        return report
    }

    // MARK: snapshots

    /// Lists the expected snapshots; with `build`, runs the configured packer commands
    /// for the missing ones (each distinct command once) and lists again.
    public func snapshots(run: EvidenceRun, build: Bool) async throws -> [SnapshotStatus] {
        guard let inventory else { throw KhError.internalError("snapshots without an inventory") }
        func list() async throws -> [SnapshotStatus] {
            var out: [SnapshotStatus] = []
            for spec in config.snapshots {
                let found = try await inventory.snapshots(labelSelector: spec.labelSelector, architecture: spec.architecture)
                out.append(SnapshotStatus(name: spec.name, architecture: spec.architecture, required: spec.required, found: found))
            }
            return out
        }
        var statuses = try await list()
        let missing = statuses.filter { $0.found.isEmpty }.map(\.name)
        guard build, !missing.isEmpty else { return statuses }
        var commands: [[String]] = []
        var owners: [String: [String]] = [:]
        for spec in config.snapshots where missing.contains(spec.name) {
            for command in spec.build {
                let key = command.joined(separator: "\u{0}")
                if owners[key] == nil { commands.append(command) }
                owners[key, default: []].append(spec.name)
            }
        }
        var outcomes: [String: StepOutcome] = [:]
        for (index, argv) in commands.enumerated() where !argv.isEmpty {
            let step = "packer-\(index + 1)"
            console.progress("snapshots: \(Shell.join(argv))")
            let command = Command(
                argv[0], Array(argv.dropFirst()), environment: token.map { ["HCLOUD_TOKEN": $0] } ?? [:], workingDirectory: paths.harness)
            let result = try await context.runner.run(
                command,
                options: RunOptions(
                    timeout: config.timeouts.packer.duration, idleTimeout: config.timeouts.idle.duration, logPath: run.logPath(for: step),
                    redactor: context.redactor))
            let outcome = StepOutcome(
                name: Shell.join(argv), status: result.succeeded ? .pass : .fail, message: result.summary, log: run.relativeLogPath(for: step))
            try run.record(EvidenceRecord(kind: "packer", name: outcome.name, status: outcome.status, message: outcome.message, log: outcome.log))
            for name in owners[argv.joined(separator: "\u{0}")] ?? [] where outcomes[name]?.status != .fail { outcomes[name] = outcome }
            if !result.succeeded { break }
        }
        statuses = try await list()
        for index in statuses.indices { statuses[index].built = outcomes[statuses[index].name] }
        return statuses
    }
}

extension InventoryFactory {
    /// The real Hetzner Cloud API.
    public static var live: InventoryFactory {
        InventoryFactory { endpoint, token, timeout in try LiveInventory.make(endpoint: endpoint, token: token, timeout: timeout) }
    }
}
