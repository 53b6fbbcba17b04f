import Foundation
import KhCore
import KhKube

/// One D1 group: its commands, whether it answered within its deadline, how long it took.
public struct GroupOutcome: Codable, Sendable, Equatable {
    public var name: String
    public var commands: [String]
    public var ok: Bool
    public var error: String?
    public var seconds: Double
}

/// Everything the D1 groups (and the decision tree's inputs) gathered, at one moment.
public struct PipelineSnapshot: Sendable {
    public var stages: [Stage] = []
    public var promotions: [Promotion] = []
    public var apps: [ArgoApplication] = []
    public var kargoPods: [Pod] = []
    public var repoServerPods: [Pod] = []
    public var events: [Event] = []
    public var freight: [Freight] = []
    public var warehouses: [Warehouse] = []
    public var analysisRuns: [AnalysisRun] = []
    public var analysisTemplates: [AnalysisTemplate] = []
    public var jobs: [Job] = []
    /// `kubectl logs deploy/kargo-controller --tail=200`, nil when it failed.
    public var controllerLog: String?
    /// Job name → its logs (verification jobs of failed AnalysisRuns).
    public var jobLogs: [String: String] = [:]
    public var groups: [GroupOutcome] = []
    public var takenAt: Date

    public init(takenAt: Date) { self.takenAt = takenAt }

    /// Whether a group answered.
    public func answered(_ group: String) -> Bool { groups.first { $0.name == group }?.ok ?? false }
}

/// A deadline passed.
struct DeadlineExceeded: Error, CustomStringConvertible {
    var what: String
    var deadline: Duration
    var description: String { "\(what): no answer within \(deadline.humanDescription)" }
}

/// Runs `body` with a deadline; the loser of the race is cancelled (kubectl children are killed with their group).
func withDeadline<T: Sendable>(_ what: String, _ deadline: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: deadline)
            throw DeadlineExceeded(what: what, deadline: deadline)
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw CancellationError() }
        return first
    }
}

/// The D1 gathering: every group at once, each under the same deadline.
public enum Gatherer {
    /// The D1 commands (and the decision tree's inputs) in the runbook's words, for this environment.
    public static func commands(_ env: GitOpsEnvironment) -> [String: [[String]]] {
        let ns = env.kargoNamespace
        return [
            "1-kargo-state": [
                ["get", Stage.resource, "-n", ns, "-o", "json"],
                ["get", Promotion.resource, "-n", ns, "--sort-by=.metadata.creationTimestamp", "-o", "json"],
            ],
            "2-argocd-state": [["get", ArgoApplication.resource, "-n", env.argocdNamespace, "-o", "json"]],
            "3-controller-health": [
                ["get", "pods", "-n", env.kargoControllerNamespace, "-l", "app.kubernetes.io/name=kargo", "-o", "json"],
                ["get", "pods", "-n", env.argocdControllerNamespace, "-l", "app.kubernetes.io/name=argocd-repo-server", "-o", "json"],
            ],
            "4-recent-events": [["get", "events", "-n", ns, "--sort-by=.lastTimestamp", "--field-selector=type!=Normal", "-o", "json"]],
            "5-freight-and-verification": [
                ["get", Freight.resource, "-n", ns, "--sort-by=.metadata.creationTimestamp", "-o", "json"],
                ["get", Warehouse.resource, "-n", ns, "-o", "json"],
                ["get", AnalysisRun.resource, "-n", ns, "--sort-by=.metadata.creationTimestamp", "-o", "json"],
                ["get", AnalysisTemplate.resource, "-n", ns, "-o", "json"],
                ["get", Job.resource, "-n", ns, "-o", "json"],
            ],
            "6-controller-logs": [["logs", "-n", env.kargoControllerNamespace, "deploy/kargo-controller", "--tail=200"]],
        ]
    }

    /// Gathers every group in parallel, then the logs of failed verification jobs.
    public static func gather(_ cluster: Cluster, clock: KhClock = .live) async -> PipelineSnapshot {
        let deadline = cluster.config.gatherTimeout.duration
        let commands = commands(cluster.environment)
        func run<T: Sendable>(_ name: String, _ body: @escaping @Sendable () async throws -> T) async -> (T?, GroupOutcome) {
            let start = clock.now()
            let shown = (commands[name] ?? []).map(cluster.display)
            do {
                let value = try await withDeadline(name, deadline, body)
                return (value, GroupOutcome(name: name, commands: shown, ok: true, error: nil, seconds: clock.now().timeIntervalSince(start)))
            } catch {
                let message = (error as? any KhReportableError)?.message ?? "\(error)"
                return (nil, GroupOutcome(name: name, commands: shown, ok: false, error: message, seconds: clock.now().timeIntervalSince(start)))
            }
        }
        let c = commands
        async let kargo = run("1-kargo-state") {
            async let stages = cluster.items(c["1-kargo-state"]![0], as: Stage.self)
            async let promotions = cluster.items(c["1-kargo-state"]![1], as: Promotion.self)
            return try await (stages, promotions)
        }
        async let argo = run("2-argocd-state") { try await cluster.items(c["2-argocd-state"]![0], as: ArgoApplication.self) }
        async let controllers = run("3-controller-health") {
            async let kargoPods = cluster.items(c["3-controller-health"]![0], as: Pod.self)
            async let repoPods = cluster.items(c["3-controller-health"]![1], as: Pod.self)
            return try await (kargoPods, repoPods)
        }
        async let events = run("4-recent-events") { try await cluster.items(c["4-recent-events"]![0], as: Event.self) }
        async let inputs = run("5-freight-and-verification") {
            let g = c["5-freight-and-verification"]!
            async let freight = cluster.items(g[0], as: Freight.self)
            async let warehouses = cluster.items(g[1], as: Warehouse.self)
            async let runs = cluster.items(g[2], as: AnalysisRun.self)
            async let templates = cluster.items(g[3], as: AnalysisTemplate.self)
            async let jobs = cluster.items(g[4], as: Job.self)
            return try await (freight, warehouses, runs, templates, jobs)
        }
        async let logs = run("6-controller-logs") { try await cluster.text(c["6-controller-logs"]![0]) }

        var snapshot = PipelineSnapshot(takenAt: clock.now())
        let (k, kOutcome) = await kargo
        let (a, aOutcome) = await argo
        let (p, pOutcome) = await controllers
        let (e, eOutcome) = await events
        let (i, iOutcome) = await inputs
        let (l, lOutcome) = await logs
        snapshot.groups = [kOutcome, aOutcome, pOutcome, eOutcome, iOutcome, lOutcome]
        if let k { (snapshot.stages, snapshot.promotions) = k }
        snapshot.apps = a ?? []
        if let p { (snapshot.kargoPods, snapshot.repoServerPods) = p }
        snapshot.events = e ?? []
        if let i { (snapshot.freight, snapshot.warehouses, snapshot.analysisRuns, snapshot.analysisTemplates, snapshot.jobs) = i }
        snapshot.controllerLog = l

        // Wave 2: logs of the jobs of failed AnalysisRuns (Gotcha 4: the error is only there).
        let failedJobs = snapshot.analysisRuns.filter { ["Failed", "Error"].contains($0.status?.phase ?? "") }
            .flatMap { Verification.jobs(of: $0, in: snapshot.jobs) }
        if !failedJobs.isEmpty {
            let ns = cluster.environment.kargoNamespace
            let logsByJob = await withTaskGroup(of: (String, String?, GroupOutcome).self) { group in
                for job in failedJobs {
                    group.addTask {
                        let args = ["logs", "job/\(job)", "-n", ns]
                        let (text, outcome) = await run("7-job-logs") { try await cluster.text(args) }
                        var shown = outcome
                        shown.name = "7-job-logs:\(job)"
                        shown.commands = [cluster.display(args)]
                        return (job, text, shown)
                    }
                }
                var out: [(String, String?, GroupOutcome)] = []
                for await item in group { out.append(item) }
                return out.sorted { $0.0 < $1.0 }
            }
            for (job, text, outcome) in logsByJob {
                snapshot.groups.append(outcome)
                if let text { snapshot.jobLogs[job] = text }
            }
        }
        return snapshot
    }
}

/// How verification objects relate: AnalysisRuns to stages, Jobs to AnalysisRuns.
public enum Verification {
    /// The label Argo Rollouts' job provider puts on a verification Job.
    public static let runUIDLabel = "analysisrun.argoproj.io/uid"

    /// The jobs an AnalysisRun started: by the run's uid label, by the `job-name` its
    /// measurements record, or by the `<uid>.<metric>.<n>` name the job provider gives.
    public static func jobs(of run: AnalysisRun, in jobs: [Job]) -> [String] {
        let recorded = Set((run.status?.metricResults ?? []).flatMap { ($0.measurements ?? []).compactMap { $0.metadata?["job-name"] } })
        let uid = run.metadata.uid ?? "\u{0}"
        return jobs.filter {
            recorded.contains($0.metadata.name) || $0.metadata.labels?[runUIDLabel] == uid || $0.metadata.name.hasPrefix(uid + ".")
        }.map(\.metadata.name).sorted()
    }

    /// The AnalysisRuns of a stage, oldest first: labelled with the stage, or named by its verification history.
    public static func runs(of stage: Stage, in runs: [AnalysisRun]) -> [AnalysisRun] {
        let named = Set((stage.status?.freightHistory ?? []).flatMap { ($0.verificationHistory ?? []).compactMap { $0.analysisRun?.name } })
        return runs.filter { $0.metadata.labels?["kargo.akuity.io/stage"] == stage.metadata.name || named.contains($0.metadata.name) }
            .sorted {
                ($0.metadata.creationTimestamp ?? .distantPast, $0.metadata.name) < ($1.metadata.creationTimestamp ?? .distantPast, $1.metadata.name)
            }
    }
}
