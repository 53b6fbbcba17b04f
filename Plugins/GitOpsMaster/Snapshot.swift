import Foundation
import KhCore
import KhKube
import KhProcess
import Synchronization

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
    /// How D1 was read, and why the faster ways were not used.
    public var readPath = ReadPath(used: .kubectl, notUsed: [])
    public var takenAt: Date

    public init(takenAt: Date) { self.takenAt = takenAt }

    /// The evidence of the gathering: how D1 was read (`gather-path`), then one `gather`
    /// record per group.
    public var evidenceRecords: [EvidenceRecord] {
        [EvidenceRecord(kind: "gather-path", name: readPath.used.rawValue, status: .pass, message: readPath.summary)]
            + groups.map {
                EvidenceRecord(
                    kind: "gather", name: $0.name, status: $0.ok ? .pass : .fail, message: $0.error ?? $0.commands.joined(separator: "; "),
                    durationSeconds: $0.seconds)
            }
    }

    /// Whether a group answered.
    public func answered(_ group: String) -> Bool { groups.first { $0.name == group }?.ok ?? false }
}

/// How D1 was read: kh's own client straight to the API server, through one `kubectl
/// proxy`, or one kubectl call per group; and why each faster way was not used.
public struct ReadPath: Codable, Sendable, Equatable {
    public enum Way: String, Codable, Sendable {
        case apiDirect = "api-direct"
        case kubectlProxy = "kubectl-proxy"
        case kubectl = "kubectl-per-group"
    }
    public var used: Way
    /// `api-direct: why`, `kubectl-proxy: why`, fastest first.
    public var notUsed: [String]

    /// One line for evidence.
    public var summary: String {
        "D1 read by \(used.rawValue)" + (notUsed.isEmpty ? "" : "; not used: " + notUsed.joined(separator: "; "))
    }
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
    /// The D1 commands and the decision tree's inputs as the runbook writes them, one
    /// kubectl call each (what a person following the runbook runs, one after another).
    public static func runbookCommands(_ env: GitOpsEnvironment) -> [[String]] {
        let ns = env.kargoNamespace
        return [
            ["get", "stages", "-n", ns, "-o", "wide"],
            ["get", "promotions", "-n", ns, "--sort-by=.metadata.creationTimestamp"],
            ["get", "applications", "-n", env.argocdNamespace],
            ["get", "pods", "-n", env.kargoControllerNamespace, "-l", "app.kubernetes.io/name=kargo"],
            ["get", "pods", "-n", env.argocdControllerNamespace, "-l", "app.kubernetes.io/name=argocd-repo-server"],
            ["get", "events", "-n", ns, "--sort-by=.lastTimestamp", "--field-selector=type!=Normal"],
            ["get", "freight", "-n", ns, "--sort-by=.metadata.creationTimestamp"],
            ["get", "warehouses", "-n", ns],
            ["get", "analysisruns", "-n", ns, "--sort-by=.metadata.creationTimestamp"],
            ["get", "analysistemplates", "-n", ns],
            ["get", "jobs", "-n", ns],
            ["logs", "-n", env.kargoControllerNamespace, "deploy/kargo-controller", "--tail=200"],
        ]
    }

    /// The kubectl calls kh makes for the same data: every kind of the Kargo project
    /// namespace in one call, both controllers' pods in one, so that on a small machine
    /// five processes run at once instead of twelve.
    public static func commands(_ env: GitOpsEnvironment) -> [String: [[String]]] {
        let ns = env.kargoNamespace
        let kinds = [
            Stage.resource, Promotion.resource, Freight.resource, Warehouse.resource, AnalysisRun.resource, AnalysisTemplate.resource, Job.resource,
        ]
        return [
            "1-kargo-state": [["get", kinds.joined(separator: ","), "-n", ns, "-o", "json"]],
            "2-argocd-state": [["get", ArgoApplication.resource, "-n", env.argocdNamespace, "-o", "json"]],
            "3-controller-health": [["get", "pods", "-A", "-l", "app.kubernetes.io/name in (kargo,argocd-repo-server)", "-o", "json"]],
            "4-recent-events": [["get", "events", "-n", ns, "--sort-by=.lastTimestamp", "--field-selector=type!=Normal", "-o", "json"]],
            "5-controller-logs": [["logs", "-n", env.kargoControllerNamespace, "deploy/kargo-controller", "--tail=200"]],
        ]
    }

    /// The API reads of each group (straight to the API server, ``APIDirect``, or through the
    /// proxy, ``APIProxy``): the same data as ``commands(_:)``, one GET per kind, all at once.
    public static func requests(_ env: GitOpsEnvironment) -> [String: [String]] {
        let ns = env.kargoNamespace
        let kargo = "/apis/kargo.akuity.io/v1alpha1/namespaces/\(ns)/"
        let rollouts = "/apis/argoproj.io/v1alpha1/namespaces/\(ns)/"
        return [
            "1-kargo-state": [
                kargo + "stages", kargo + "promotions", kargo + "freights", kargo + "warehouses", rollouts + "analysisruns",
                rollouts + "analysistemplates", "/apis/batch/v1/namespaces/\(ns)/jobs",
            ],
            "2-argocd-state": ["/apis/argoproj.io/v1alpha1/namespaces/\(env.argocdNamespace)/applications"],
            "3-controller-health": [
                "/api/v1/namespaces/\(env.kargoControllerNamespace)/pods?labelSelector=app.kubernetes.io/name=kargo",
                "/api/v1/namespaces/\(env.argocdControllerNamespace)/pods?labelSelector=app.kubernetes.io/name=argocd-repo-server",
            ],
            "4-recent-events": ["/api/v1/namespaces/\(ns)/events?fieldSelector=type!=Normal"],
            "5-controller-logs": [
                "/apis/apps/v1/namespaces/\(env.kargoControllerNamespace)/deployments/kargo-controller",
                "/api/v1/namespaces/\(env.kargoControllerNamespace)/pods?labelSelector=<its selector>",
                "/api/v1/namespaces/\(env.kargoControllerNamespace)/pods/<the pod kubectl picks>/log?tailLines=200",
            ],
        ]
    }

    /// What the D1 groups read, before it is sorted into a snapshot.
    struct Gathered: Sendable {
        var kargo: [KargoItem]?
        var apps: [ArgoApplication]?
        var pods: [Pod]?
        var events: [Event]?
        var log: String?
        var groups: [GroupOutcome]
        /// Groups whose reads could not reach the API server at all (connect, DNS, TLS).
        var unreachableGroups = 0
    }

    /// Counts the groups whose reads failed to reach the API server (``KubeError/Kind/unreachable``).
    final class ConnectFailures: Sendable {
        private let count = Mutex(0)

        var value: Int { count.withLock { $0 } }

        func watch<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) -> @Sendable () async throws -> T {
            { [self] in
                do {
                    return try await body()
                } catch let error as KubeError where error.kind == .unreachable {
                    count.withLock { $0 += 1 }
                    throw error
                }
            }
        }
    }

    /// Gathers every group in parallel, then the logs of failed verification jobs.
    /// When kubectl runs on this machine: with kh's own API client from kubectl's kubeconfig
    /// (``APIDirect``), else through one `kubectl proxy` (``APIProxy``), else (or if the proxy
    /// cannot start) with one kubectl process per group. Each group under its own deadline:
    /// a group that hangs or fails does not hide the others' answers.
    public static func gather(_ cluster: Cluster, clock: KhClock = .live) async -> PipelineSnapshot {
        let deadline = cluster.config.gatherTimeout.duration
        let env = cluster.environment
        var first: GroupOutcome?
        var gathered: Gathered?
        var path = ReadPath(used: .kubectl, notUsed: [])
        if let reason = APIDirect.unusable(cluster) {
            path.notUsed.append("api-direct: \(reason)")
        } else {
            let start = clock.now()
            do {
                let connection = try APIDirect.connection(cluster)
                let api = KubeAPI(connection: connection, timeout: deadline, redactor: cluster.kubectl.redactor)
                let resolved = clock.now().timeIntervalSince(start)
                let direct = await throughAPI(api, env: env, deadline: deadline, clock: clock)
                if direct.unreachableGroups == direct.groups.count {
                    // Not one read reached the server: something kh's client does not do as
                    // kubectl does (a CA bundle OpenSSL rejects and Go skips, a proxy): kubectl next.
                    let error = direct.groups.first?.error ?? "no answer"
                    path.notUsed.append("api-direct: every D1 group failed to reach the server, e.g. \(error)")
                } else {
                    first = GroupOutcome(name: "0-api-direct", commands: [connection.summary], ok: true, error: nil, seconds: resolved)
                    gathered = direct
                    path.used = .apiDirect
                }
            } catch {
                path.notUsed.append("api-direct: " + ((error as? any KhReportableError)?.message ?? "\(error)"))
            }
        }
        if gathered == nil, let reason = APIProxy.unusable(cluster) {
            path.notUsed.append("kubectl-proxy: \(reason)")
        } else if gathered == nil {
            let start = clock.now()
            let shown = Shell.join([cluster.kubectl.executable, "proxy", "--unix-socket", "<private dir>/api.sock"])
            do {
                let proxy = try await APIProxy.start(
                    cluster.kubectl, startDeadline: min(deadline, .seconds(5)), lifetime: deadline * 2 + .seconds(10), requestTimeout: deadline)
                first = GroupOutcome(name: "0-api-proxy", commands: [shown], ok: true, error: nil, seconds: clock.now().timeIntervalSince(start))
                gathered = await throughAPI(proxy.api, env: env, deadline: deadline, clock: clock)
                path.used = .kubectlProxy
                await proxy.stop()
            } catch {
                let message = (error as? any KhReportableError)?.message ?? "\(error)"
                first = GroupOutcome(
                    name: "0-api-proxy", commands: [shown], ok: false, error: message + " (gathering with one kubectl call per group)",
                    seconds: clock.now().timeIntervalSince(start))
                path.notUsed.append("kubectl-proxy: \(message)")
            }
        }
        var g: Gathered
        if let gathered { g = gathered } else { g = await withKubectl(cluster, clock: clock) }
        if let first { g.groups.insert(first, at: 0) }

        var snapshot = PipelineSnapshot(takenAt: clock.now())
        snapshot.groups = g.groups
        snapshot.readPath = path
        func byCreation<T: KubeResource>(_ items: [T]) -> [T] {
            items.sorted {
                ($0.metadata.creationTimestamp ?? .distantPast, $0.metadata.name) < ($1.metadata.creationTimestamp ?? .distantPast, $1.metadata.name)
            }
        }
        for item in g.kargo ?? [] {
            switch item {
            case .stage(let x): snapshot.stages.append(x)
            case .promotion(let x): snapshot.promotions.append(x)
            case .freight(let x): snapshot.freight.append(x)
            case .warehouse(let x): snapshot.warehouses.append(x)
            case .analysisRun(let x): snapshot.analysisRuns.append(x)
            case .analysisTemplate(let x): snapshot.analysisTemplates.append(x)
            case .job(let x): snapshot.jobs.append(x)
            case .other: break
            }
        }
        snapshot.promotions = byCreation(snapshot.promotions)
        snapshot.freight = byCreation(snapshot.freight)
        snapshot.analysisRuns = byCreation(snapshot.analysisRuns)
        snapshot.apps = g.apps ?? []
        snapshot.kargoPods = (g.pods ?? []).filter {
            $0.metadata.namespace == env.kargoControllerNamespace && $0.metadata.labels?["app.kubernetes.io/name"] == "kargo"
        }
        snapshot.repoServerPods = (g.pods ?? []).filter {
            $0.metadata.namespace == env.argocdControllerNamespace && $0.metadata.labels?["app.kubernetes.io/name"] == "argocd-repo-server"
        }
        // `--sort-by=.lastTimestamp`: oldest first.
        snapshot.events = (g.events ?? []).sorted { ($0.lastSeen ?? .distantPast) < ($1.lastSeen ?? .distantPast) }
        snapshot.controllerLog = g.log

        // Wave 2: logs of the jobs of failed AnalysisRuns (Gotcha 4: the error is only there).
        let failedJobs = snapshot.analysisRuns.filter { ["Failed", "Error"].contains($0.status?.phase ?? "") }
            .flatMap { Verification.jobs(of: $0, in: snapshot.jobs) }
        if !failedJobs.isEmpty {
            let ns = cluster.environment.kargoNamespace
            let logsByJob = await withTaskGroup(of: (String, String?, GroupOutcome).self) { group in
                for job in failedJobs {
                    group.addTask {
                        let args = ["logs", "job/\(job)", "-n", ns]
                        let (text, outcome) = await timed("7-job-logs:\(job)", [cluster.display(args)], deadline, clock) {
                            try await cluster.text(args)
                        }
                        return (job, text, outcome)
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

    /// Runs one group's work under its deadline and says how it went.
    static func timed<T: Sendable>(
        _ name: String, _ shown: [String], _ deadline: Duration, _ clock: KhClock, _ failures: ConnectFailures? = nil,
        _ body: @escaping @Sendable () async throws -> T
    ) async -> (T?, GroupOutcome) {
        let start = clock.now()
        do {
            let value = try await withDeadline(name, deadline, failures?.watch(body) ?? body)
            return (value, GroupOutcome(name: name, commands: shown, ok: true, error: nil, seconds: clock.now().timeIntervalSince(start)))
        } catch {
            let message = (error as? any KhReportableError)?.message ?? "\(error)"
            return (nil, GroupOutcome(name: name, commands: shown, ok: false, error: message, seconds: clock.now().timeIntervalSince(start)))
        }
    }

    /// D1 with one kubectl process per group (``commands(_:)``).
    static func withKubectl(_ cluster: Cluster, clock: KhClock) async -> Gathered {
        let deadline = cluster.config.gatherTimeout.duration
        let c = commands(cluster.environment)
        func shown(_ name: String) -> [String] { (c[name] ?? []).map(cluster.display) }
        async let kargo = timed("1-kargo-state", shown("1-kargo-state"), deadline, clock) {
            try await cluster.items(c["1-kargo-state"]![0], as: KargoItem.self)
        }
        async let argo = timed("2-argocd-state", shown("2-argocd-state"), deadline, clock) {
            try await cluster.items(c["2-argocd-state"]![0], as: ArgoApplication.self)
        }
        async let pods = timed("3-controller-health", shown("3-controller-health"), deadline, clock) {
            try await cluster.items(c["3-controller-health"]![0], as: Pod.self)
        }
        async let events = timed("4-recent-events", shown("4-recent-events"), deadline, clock) {
            try await cluster.items(c["4-recent-events"]![0], as: Event.self)
        }
        async let logs = timed("5-controller-logs", shown("5-controller-logs"), deadline, clock) {
            try await cluster.text(c["5-controller-logs"]![0])
        }
        let (k, kOutcome) = await kargo
        let (a, aOutcome) = await argo
        let (p, pOutcome) = await pods
        let (e, eOutcome) = await events
        let (l, lOutcome) = await logs
        return Gathered(kargo: k, apps: a, pods: p, events: e, log: l, groups: [kOutcome, aOutcome, pOutcome, eOutcome, lOutcome])
    }

    /// D1 over the API (direct or through the proxy): every GET of every group at once, each
    /// group under its own deadline.
    static func throughAPI(_ api: KubeAPI, env: GitOpsEnvironment, deadline: Duration, clock: KhClock) async -> Gathered {
        let r = requests(env)
        let failures = ConnectFailures()
        func shown(_ name: String) -> [String] { (r[name] ?? []).map { "GET \($0)" + api.via } }
        let ns = env.kargoNamespace
        let kargoPath = "/apis/kargo.akuity.io/v1alpha1/namespaces/\(ns)/"
        let rolloutsPath = "/apis/argoproj.io/v1alpha1/namespaces/\(ns)/"
        async let kargo = timed("1-kargo-state", shown("1-kargo-state"), deadline, clock, failures) {
            async let stages = api.items(kargoPath + "stages", as: Stage.self)
            async let promotions = api.items(kargoPath + "promotions", as: Promotion.self)
            async let freight = api.items(kargoPath + "freights", as: Freight.self)
            async let warehouses = api.items(kargoPath + "warehouses", as: Warehouse.self)
            async let runs = api.items(rolloutsPath + "analysisruns", as: AnalysisRun.self)
            async let templates = api.items(rolloutsPath + "analysistemplates", as: AnalysisTemplate.self)
            async let jobs = api.items("/apis/batch/v1/namespaces/\(ns)/jobs", as: Job.self)
            var items: [KargoItem] = try await stages.map(KargoItem.stage)
            items += try await promotions.map(KargoItem.promotion)
            items += try await freight.map(KargoItem.freight)
            items += try await warehouses.map(KargoItem.warehouse)
            items += try await runs.map(KargoItem.analysisRun)
            items += try await templates.map(KargoItem.analysisTemplate)
            items += try await jobs.map(KargoItem.job)
            return items
        }
        async let argo = timed("2-argocd-state", shown("2-argocd-state"), deadline, clock, failures) {
            try await api.items("/apis/argoproj.io/v1alpha1/namespaces/\(env.argocdNamespace)/applications", as: ArgoApplication.self)
        }
        async let pods = timed("3-controller-health", shown("3-controller-health"), deadline, clock, failures) {
            async let kargoPods = api.items(
                "/api/v1/namespaces/\(env.kargoControllerNamespace)/pods", query: [("labelSelector", "app.kubernetes.io/name=kargo")],
                as: Pod.self)
            async let repoServers = api.items(
                "/api/v1/namespaces/\(env.argocdControllerNamespace)/pods",
                query: [("labelSelector", "app.kubernetes.io/name=argocd-repo-server")],
                as: Pod.self)
            return try await kargoPods + repoServers
        }
        async let events = timed("4-recent-events", shown("4-recent-events"), deadline, clock, failures) {
            try await api.items("/api/v1/namespaces/\(ns)/events", query: [("fieldSelector", "type!=Normal")], as: Event.self)
        }
        async let logs = timed("5-controller-logs", shown("5-controller-logs"), deadline, clock, failures) {
            try await api.deploymentLogs(namespace: env.kargoControllerNamespace, deployment: "kargo-controller", tail: 200)
        }
        let (k, kOutcome) = await kargo
        let (a, aOutcome) = await argo
        let (p, pOutcome) = await pods
        let (e, eOutcome) = await events
        let (l, lOutcome) = await logs
        return Gathered(
            kargo: k, apps: a, pods: p, events: e, log: l, groups: [kOutcome, aOutcome, pOutcome, eOutcome, lOutcome],
            unreachableGroups: failures.value)
    }
}

/// One item of the mixed list `kubectl get a,b,c -o json` prints, by its kind.
enum KargoItem: Decodable, Sendable {
    case stage(Stage), promotion(Promotion), freight(Freight), warehouse(Warehouse)
    case analysisRun(AnalysisRun), analysisTemplate(AnalysisTemplate), job(Job), other

    enum Keys: String, CodingKey { case kind }

    init(from decoder: any Decoder) throws {
        switch try decoder.container(keyedBy: Keys.self).decodeIfPresent(String.self, forKey: .kind) {
        case "Stage": self = .stage(try Stage(from: decoder))
        case "Promotion": self = .promotion(try Promotion(from: decoder))
        case "Freight": self = .freight(try Freight(from: decoder))
        case "Warehouse": self = .warehouse(try Warehouse(from: decoder))
        case "AnalysisRun": self = .analysisRun(try AnalysisRun(from: decoder))
        case "AnalysisTemplate": self = .analysisTemplate(try AnalysisTemplate(from: decoder))
        case "Job": self = .job(try Job(from: decoder))
        default: self = .other
        }
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
