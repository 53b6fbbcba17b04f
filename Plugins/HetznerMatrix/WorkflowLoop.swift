import Foundation
import KhCore
import KhGit
import KhProcess

extension StabilizeWorkflow {
    /// Options of the whole loop.
    public struct LoopOptions: Sendable {
        public var concurrency: Int
        public var keepGoing: Bool
        public var buildSnapshots: Bool
        public var distros: [String]

        public init(concurrency: Int, keepGoing: Bool, buildSnapshots: Bool, distros: [String] = ["k3s", "rke2"]) {
            self.concurrency = concurrency
            self.keepGoing = keepGoing
            self.buildSnapshots = buildSnapshots
            self.distros = distros
        }
    }

    /// The module's HEAD commit now (nil when it cannot be read).
    func moduleHead() -> String? {
        (try? Repository(at: paths.module, search: false).head().commit?.hex) ?? nil
    }

    /// Files changed from `start` to HEAD, then uncommitted changes.
    func filesChanged(since start: String) -> FilesChanged? {
        guard let repository = try? Repository(at: paths.module, search: false), let head = try? repository.head().commit else { return nil }
        var files: [String] = []
        if head.hex != start, let stat = try? repository.diffStat(from: start, to: head.hex) {
            files += stat.files.map { "\($0.change.letter) \($0.path)" }
        }
        if let status = try? repository.status() {
            files += status.entries.map { "\($0.porcelain.trimmingCharacters(in: .whitespaces)) \($0.path) (uncommitted)" }
        }
        return FilesChanged(from: String(start.prefix(12)), to: head.short, files: files)
    }

    /// The whole runbook: gates, clean, snapshots, the matrix with triage, one targeted
    /// rerun of failures, the full regression rerun, upgrades, final cleanup with proof.
    public func loop(run: EvidenceRun, options: LoopOptions) async throws -> (StabilizeSummary, KhExitCode) {
        var summary = StabilizeSummary(
            runID: run.runID, command: run.manifest.command.joined(separator: " "), startedAt: run.manifest.startedAt, evidence: run.directory)
        let start = moduleHead()
        var problems: [KhExitCode] = []
        func stop(_ code: KhExitCode, _ note: String) -> (StabilizeSummary, KhExitCode) {
            summary.notes.append(note)
            return (summary, code)
        }

        console.progress("== 1. sync branch + terraform gates")
        let gates = try await gates(run: run, fix: false)
        summary.gates = gates
        if gates.contains(where: { $0.status == .fail }) {
            if !options.keepGoing { return stop(.checkFailed, "stopped after the gates failed (--keep-going continues)") }
            problems.append(.checkFailed)
        }

        console.progress("== 2. clean state")
        let firstClean = try await clean(run: run, dryRun: false)
        if !firstClean.isClean {
            summary.notes.append("initial cleanup left: \((firstClean.failures + firstClean.remaining.map(\.display)).joined(separator: "; "))")
            if !options.keepGoing { return stop(.checkFailed, "stopped: the state is not clean before the matrix") }
        }

        console.progress("== 3. snapshots")
        let snapshots = try await snapshots(run: run, build: options.buildSnapshots)
        summary.snapshots = snapshots
        let missing = snapshots.filter { $0.required && $0.found.isEmpty }.map(\.name)
        if !missing.isEmpty {
            if !options.keepGoing {
                return stop(.blocked, "stopped: required snapshots missing: \(missing.joined(separator: ", ")) (`--build-snapshots` builds them)")
            }
            summary.notes.append("required snapshots missing: \(missing.joined(separator: ", "))")
        }

        console.progress("== 4-5. matrix, simple to complex, with triage")
        let all = config.scenarioNames
        let first = await runMatrix(
            run: run, names: all, concurrency: options.concurrency, keepGoing: options.keepGoing, label: "full run", attempt: 1)
        summary.passes.append(first)
        if !first.failed.isEmpty {
            console.progress("== 6. targeted rerun of \(first.failed.map(\.name).joined(separator: ", "))")
            let targeted = await runMatrix(
                run: run, names: first.failed.map(\.name), concurrency: options.concurrency, keepGoing: true, label: "targeted rerun of failures",
                attempt: 2)
            summary.passes.append(targeted)
            if targeted.failed.isEmpty {
                console.progress("== 7. full regression rerun")
                summary.passes.append(
                    await runMatrix(
                        run: run, names: all, concurrency: options.concurrency, keepGoing: options.keepGoing, label: "full regression rerun",
                        attempt: 3))
            } else {
                summary.notes.append(
                    "full regression rerun not started: the targeted rerun still fails (\(targeted.failed.map(\.name).joined(separator: ", "))); fix the root cause and run `kh stabilize` again"
                )
            }
        }
        if !summary.failedScenarios.isEmpty { problems.append(.checkFailed) }

        console.progress("== 8. upgrade path: latest tag → working tree")
        do {
            let upgrades = try await upgrade(run: run, distros: options.distros)
            summary.upgrades = upgrades
            if upgrades.contains(where: { $0.status == .fail }) { problems.append(.checkFailed) }
        } catch let error as any KhReportableError {
            summary.notes.append("upgrade not run: \(error.message)")
            problems.append(error.exitCode)
        }

        console.progress("== 9. final cleanup")
        let finalClean = try await clean(run: run, dryRun: false)
        summary.cleanup = finalClean
        if !finalClean.isClean { problems.append(.checkFailed) }
        if let start { summary.filesChanged = filesChanged(since: start) }
        return (summary, worstExitCode(problems))
    }

    // MARK: abort

    /// Stops a live run by its recorded process groups (TERM, grace, KILL) and its own
    /// PID (checked by start time), destroys every scenario, clears stale locks.
    public func abort(run: EvidenceRun, grace: Duration = .seconds(5)) async throws -> (stopped: String, cleanup: CleanupReport) {
        let inspector = services.inspector
        var stopped = "no live kh stabilize run"
        if let record = lock.read() {
            if lock.isLive(record) && record.pid != getpid() {
                let groups = record.groups.filter { inspector.groupIsAlive($0) }
                for group in groups { inspector.signal(-group, SIGTERM) }
                inspector.signal(record.pid, SIGTERM)
                let deadline = ContinuousClock.now + grace
                while ContinuousClock.now < deadline, groups.contains(where: inspector.groupIsAlive) || lock.isLive(record) {
                    try await Task.sleep(for: .milliseconds(100))
                }
                for group in groups where inspector.groupIsAlive(group) { inspector.signal(-group, SIGKILL) }
                if lock.isLive(record) { inspector.signal(record.pid, SIGKILL) }
                stopped = "stopped run \(record.runID) (pid \(record.pid)) and process group(s) \(groups.map(String.init).joined(separator: ", "))"
            } else {
                stopped = "lock of run \(record.runID) was stale (pid \(record.pid) is gone)"
            }
            try? fs.remove(paths.lock)
        }
        console.progress("abort: \(stopped)")
        try run.record(EvidenceRecord(kind: "abort", name: "stop", status: .info, message: stopped))
        let report = try await clean(run: run, dryRun: false, reap: false)
        return (stopped, report)
    }
}
