// gitops: `kh gitops diagnose` on a pipeline of 5 stages and 30 Argo CD applications in the
// testbed's kube emulator: kh's wall time (D1 groups in parallel, then the decision tree)
// against the runbook's kubectl calls for the same data run one after another, and against the
// slowest of those single calls. (kh fetches the project namespace's kinds in one call, so it
// starts five kubectl processes where the runbook runs twelve.)
import Foundation
import GitOpsMaster
import KhCore
import KhKube
import KhProcess

let gitopsBenchmark = RuntimeBenchmark(name: "gitops: diagnose, 5 stages + 30 apps, vs kubectl calls in a row") {
    await GitOpsBench.run()
}

enum GitOpsBench {
    static let rounds = 5
    static let name = gitopsBenchmark.name

    static func rows(_ note: String) -> [Row] {
        [Row(name: name, kh: "-", baseline: note, ratio: "-", goal: ">= 3x", met: nil)]
    }

    /// `.testbed/env` of the working directory (the repository root under `make bench`).
    static func testbed() -> [String: String]? {
        guard let text = try? String(contentsOfFile: FileManager.default.currentDirectoryPath + "/.testbed/env", encoding: .utf8) else { return nil }
        var env: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let entry = line.hasPrefix("export ") ? line.dropFirst(7) : line[...]
            if let eq = entry.firstIndex(of: "=") { env[String(entry[..<eq])] = String(entry[entry.index(after: eq)...]) }
        }
        return env["KUBECONFIG"] == nil ? nil : env
    }

    static func manifest(_ ns: String, _ argo: String) -> String {
        var docs = ["apiVersion: v1\nkind: Namespace\nmetadata: {name: \(ns)}", "apiVersion: v1\nkind: Namespace\nmetadata: {name: \(argo)}"]
        let stages = ["foundation", "operators", "monitoring", "platform", "services"]
        docs.append(
            "apiVersion: kargo.akuity.io/v1alpha1\nkind: Warehouse\nmetadata: {name: platform, namespace: \(ns)}\nspec: {subscriptions: [{git: {repoURL: https://git.example.invalid/g.git, branch: main}}]}"
        )
        for (i, stage) in stages.enumerated() {
            let apps = (0..<6).map { "{name: \(stage)-app-\($0), namespace: \(argo)}" }.joined(separator: ", ")
            let sources = i == 0 ? "{direct: true}" : "{stages: [\(stages[i - 1])]}"
            docs.append(
                "apiVersion: kargo.akuity.io/v1alpha1\nkind: Stage\nmetadata: {name: \(stage), namespace: \(ns)}\nspec:\n  requestedFreight: [{origin: {kind: Warehouse, name: platform}, sources: \(sources)}]\n  promotionTemplate: {spec: {steps: [{uses: argocd-update, config: {apps: [\(apps)]}, retry: {timeout: 10m, errorThreshold: 3}}]}}"
            )
            for a in 0..<6 {
                docs.append(
                    "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: \(stage)-app-\(a), namespace: \(argo)}\nspec: {project: default}\nstatus: {sync: {status: Synced}, health: {status: Healthy}}"
                )
            }
        }
        return docs.joined(separator: "\n---\n") + "\n"
    }

    static func run() async -> [Row] {
        guard let env = testbed() else { return rows("testbed not up (make testbed-up)") }
        guard let kubectlPath = which("kubectl") else { return rows("kubectl not installed") }
        let runner = LocalRunner(environment: ProcessInfo.processInfo.environment.merging(env) { $1 })
        let kubectl = Kubectl(runner: runner, kubeconfig: env["KUBECONFIG"], timeout: .seconds(30))
        let id = String(getpid())
        let environment = GitOpsEnvironment(kargoNamespace: "bench-k-\(id)", argocdNamespace: "bench-a-\(id)", source: "bench")
        do {
            try await kubectl.apply(yaml: manifest(environment.kargoNamespace, environment.argocdNamespace))
            for stage in ["foundation", "operators", "monitoring", "platform", "services"] {
                try await kubectl.patch(
                    Stage.resource, name: stage, namespace: environment.kargoNamespace,
                    #"{"status":{"conditions":[{"type":"Ready","status":"False","reason":"ReconcileError"}]}}"#, subresource: "status")
            }
        } catch {
            return rows("cannot seed the emulator: \(error)")
        }
        defer {
            let cleanup = ["delete", "namespace", environment.kargoNamespace, environment.argocdNamespace, "--wait=false"]
            _ = measure([kubectlPath, "--kubeconfig", env["KUBECONFIG"]!] + cleanup)
        }
        var config = GitOpsConfig()
        config.gatherTimeout = KhDuration(.seconds(30))
        let cluster = Cluster(kubectl: kubectl, environment: environment, config: config)
        // The baseline: the runbook's calls (D1 and the decision tree's inputs), one after another.
        let calls = Gatherer.runbookCommands(environment)
        let base = [kubectlPath, "--kubeconfig", env["KUBECONFIG"]!]
        var khTimes: [Double] = []
        var sequential: [Double] = []
        var slowest: [Double] = []
        for round in 0...rounds {
            let t = await time {
                let snapshot = await Gatherer.gather(cluster)
                _ = try? Diagnoser(cluster: cluster, snapshot: snapshot, now: Date()).diagnoseAll()
            }
            var each: [Double] = []
            for args in calls { each.append(measure(base + args).seconds) }
            if round == 0 { continue }  // warm-up
            khTimes.append(t)
            sequential.append(each.reduce(0, +))
            slowest.append(each.max() ?? .nan)
        }
        let kh = median(khTimes)
        let seq = median(sequential)
        let slow = median(slowest)
        return [
            Row(
                name: name, kh: ms(kh), baseline: ms(seq) + " (\(calls.count) calls)", ratio: String(format: "%.1fx", seq / kh), goal: ">= 3x",
                met: seq / kh >= 3),
            Row(
                name: "gitops: diagnose vs slowest single kubectl call", kh: ms(kh), baseline: ms(slow), ratio: String(format: "%.2fx", kh / slow),
                goal: "<= 1.5x", met: kh / slow <= 1.5),
        ]
    }
}
