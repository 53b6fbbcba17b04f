// gitops: `kh gitops diagnose` on a pipeline of 5 stages and 30 Argo CD applications (plus a
// running Kargo controller with a log, an Argo CD repo-server and warning events) in the
// testbed's kube emulator: kh's wall time (D1 groups in parallel, then the decision tree)
// against the runbook's kubectl calls for the same data run one after another, and against the
// slowest of those single calls. kh reads D1 with its own API client from the kubeconfig
// (KubeAPI, APIDirect.swift); report rows show kh through one `kubectl proxy` (APIProxy.swift)
// and with one kubectl process per group instead.
import Foundation
import GitOpsMaster
import KhCore
import KhKube
import KhProcess

let gitopsBenchmark = RuntimeBenchmark(name: "gitops: diagnose, 5 stages + 30 apps, vs kubectl calls in a row") {
    await GitOpsBench.run()
}

enum GitOpsBench {
    static let rounds = 7
    static let name = gitopsBenchmark.name

    static func rows(_ note: String) -> [Row] {
        [Row(name: name, kh: "-", baseline: note, ratio: "-", goal: ">= 3x", met: nil)]
    }

    /// The testbed's variables, when it is up with a kube emulator.
    static func testbed() -> [String: String]? {
        testbedEnvironment().flatMap { $0["KUBECONFIG"] == nil ? nil : $0 }
    }

    static func manifest(_ env: GitOpsEnvironment) -> String {
        let (ns, argo) = (env.kargoNamespace, env.argocdNamespace)
        var docs = [ns, argo, env.kargoControllerNamespace, env.argocdControllerNamespace].map {
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: \($0)}"
        }
        docs.append(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: kargo-controller, namespace: \(env.kargoControllerNamespace)}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app.kubernetes.io/name: kargo}}\n  template:\n    metadata: {labels: {app.kubernetes.io/name: kargo}}\n    spec: {containers: [{name: controller, image: ghcr.io/akuity/kargo:v1.5.0}]}"
        )
        docs.append(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: \(controllerPod), namespace: \(env.kargoControllerNamespace), labels: {app.kubernetes.io/name: kargo}}\nspec: {containers: [{name: controller, image: ghcr.io/akuity/kargo:v1.5.0}]}"
        )
        docs.append(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: argocd-repo-server-7c9d-k2l4p, namespace: \(env.argocdControllerNamespace), labels: {app.kubernetes.io/name: argocd-repo-server}}\nspec: {containers: [{name: repo-server, image: quay.io/argoproj/argocd:v2.13.0}]}"
        )
        for i in 0..<5 {
            docs.append(
                "apiVersion: v1\nkind: Event\nmetadata: {name: warn-\(i), namespace: \(ns)}\ninvolvedObject: {kind: Stage, name: services, namespace: \(ns)}\nreason: ReconcileError\nmessage: error reconciling Stage\ntype: Warning\nlastTimestamp: \"2024-05-01T10:0\(i):00Z\""
            )
        }
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

    static let controllerPod = "kargo-controller-5d4f8-x2x7q"

    /// 400 lines of controller log (the calls read the last 200).
    static var controllerLog: String {
        (0..<400).map { "time=2024-05-01T10:00:\(String(format: "%02d", $0 % 60))Z level=info msg=\"reconciling Stage\" stage=services n=\($0)" }
            .joined(separator: "\n") + "\n"
    }

    static func run() async -> [Row] {
        guard let env = testbed() else { return rows("testbed not up (make testbed-up)") }
        guard let kubectlPath = which("kubectl") else { return rows("kubectl not installed") }
        let runner = LocalRunner(environment: ProcessInfo.processInfo.environment.merging(env) { $1 })
        let kubectl = Kubectl(runner: runner, kubeconfig: env["KUBECONFIG"], timeout: .seconds(30))
        let id = String(getpid())
        let environment = GitOpsEnvironment(
            kargoNamespace: "bench-k-\(id)", kargoControllerNamespace: "bench-kc-\(id)", argocdNamespace: "bench-a-\(id)",
            argocdControllerNamespace: "bench-ac-\(id)", source: "bench")
        do {
            // The Kargo and Argo CD CRDs (a fresh testbed has none until something applies them).
            if let crds = env["KH_TESTBED_KUBE_CRDS"] {
                for file in ["kargo.yaml", "argo.yaml"] {
                    try await kubectl.apply(yaml: try String(contentsOfFile: crds + "/" + file, encoding: .utf8))
                }
                for crd in ["stages.kargo.akuity.io", "warehouses.kargo.akuity.io", "applications.argoproj.io"] {
                    _ = try await kubectl.wait(
                        for: CustomResourceDefinition.self, name: crd, timeout: .seconds(20), interval: .milliseconds(200)
                    ) { $0.isEstablished }
                }
            }
            try await kubectl.apply(yaml: manifest(environment))
            if let logs = env["KH_TESTBED_KUBE_LOGS_DIR"] {
                let dir = "\(logs)/\(environment.kargoControllerNamespace)/\(controllerPod)"
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                try AtomicFile.write(Data(controllerLog.utf8), to: dir + "/controller.log")
            }
            for stage in ["foundation", "operators", "monitoring", "platform", "services"] {
                try await kubectl.patch(
                    Stage.resource, name: stage, namespace: environment.kargoNamespace,
                    #"{"status":{"conditions":[{"type":"Ready","status":"False","reason":"ReconcileError"}]}}"#, subresource: "status")
            }
        } catch {
            return rows("cannot seed the emulator: \(error)")
        }
        defer {
            let cleanup = [
                "delete", "namespace", environment.kargoNamespace, environment.argocdNamespace, environment.kargoControllerNamespace,
                environment.argocdControllerNamespace, "--wait=false",
            ]
            _ = measure([kubectlPath, "--kubeconfig", env["KUBECONFIG"]!] + cleanup)
        }
        var config = GitOpsConfig()
        config.gatherTimeout = KhDuration(.seconds(30))
        let cluster = Cluster(kubectl: kubectl, environment: environment, config: config)
        config.apiDirect = false
        let proxied = Cluster(kubectl: kubectl, environment: environment, config: config)
        config.apiProxy = false
        let perGroup = Cluster(kubectl: kubectl, environment: environment, config: config)
        // The baseline: the runbook's calls (D1 and the decision tree's inputs), one after another.
        let calls = Gatherer.runbookCommands(environment)
        let base = [kubectlPath, "--kubeconfig", env["KUBECONFIG"]!]
        var khTimes: [Double] = []
        var perGroupTimes: [Double] = []
        var proxiedTimes: [Double] = []
        var sequential: [Double] = []
        var perCall = Array(repeating: [Double](), count: Gatherer.runbookCommands(environment).count)
        var problems: Set<String> = []
        /// Gathers and diagnoses; notes what kh failed to read (the timing must be of a complete run).
        func diagnose(_ cluster: Cluster, _ way: ReadPath.Way) async -> Double {
            await time {
                let snapshot = await Gatherer.gather(cluster)
                if snapshot.readPath.used != way { problems.insert("kh read D1 by \(snapshot.readPath.summary), expected \(way.rawValue)") }
                let diagnoses = (try? Diagnoser(cluster: cluster, snapshot: snapshot, now: Date()).diagnoseAll()) ?? []
                for group in snapshot.groups where !group.ok { problems.insert("kh \(group.name): \(group.error ?? "failed")") }
                if snapshot.stages.count != 5 || snapshot.apps.count != 30 || diagnoses.count != 5 || snapshot.events.count != 5
                    || snapshot.controllerLog?.split(separator: "\n").count != 200
                {
                    problems.insert("kh read \(snapshot.stages.count) stages, \(snapshot.apps.count) apps, \(snapshot.events.count) events")
                }
            }
        }
        // The command itself, as a person runs it: `kh gitops diagnose` in a directory holding
        // the runbook's `.gitops-config.yaml`, evidence written.
        let work = NSTemporaryDirectory() + "kh-bench-gitops-\(id)"
        try? FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let file = """
            kargo_namespace: "\(environment.kargoNamespace)"
            kargo_controller_namespace: "\(environment.kargoControllerNamespace)"
            argocd_namespace: "\(environment.argocdNamespace)"
            argocd_controller_namespace: "\(environment.argocdControllerNamespace)"

            """
        try? AtomicFile.write(Data(file.utf8), to: work + "/.gitops-config.yaml")
        let khBinary = khExecutable()
        let command = [
            "/usr/bin/env", "-C", work, "KUBECONFIG=\(env["KUBECONFIG"]!)", "KH_EVIDENCE_DIR=\(work)/runs", khBinary, "gitops", "diagnose",
        ]
        var binaryTimes: [Double] = []
        for round in 0...rounds {
            let b = measure(command)
            // 1: diagnosed, the stages are not fine (ReconcileError).
            if b.status != 1 << 8 { problems.insert("kh gitops diagnose: wait status \(b.status) (kh: \(khBinary))") }
            let t = await diagnose(cluster, .apiDirect)
            let p = await diagnose(proxied, .kubectlProxy)
            let g = await diagnose(perGroup, .kubectl)
            var each: [Double] = []
            for args in calls {
                let sample = measure(base + args)
                if sample.status != 0 { problems.insert("kubectl \(args.joined(separator: " ")): status \(sample.status)") }
                each.append(sample.seconds)
            }
            if round == 0 {
                // The binary read D1 straight from the API (its evidence says so).
                let runs = (try? FileManager.default.contentsOfDirectory(atPath: work + "/runs")) ?? []
                let records = runs.compactMap { try? String(contentsOfFile: work + "/runs/\($0)/records.jsonl", encoding: .utf8) }
                if !records.contains(where: { $0.contains("\"gather-path\"") && $0.contains("\"api-direct\"") }) {
                    problems.insert("kh gitops diagnose did not record D1 read by api-direct: \(records.first?.prefix(300) ?? "no records")")
                }
                continue  // warm-up
            }
            binaryTimes.append(b.seconds)
            khTimes.append(t)
            perGroupTimes.append(g)
            proxiedTimes.append(p)
            sequential.append(each.reduce(0, +))
            for (i, seconds) in each.enumerated() { perCall[i].append(seconds) }
        }
        if !problems.isEmpty { return rows("incomplete: " + problems.sorted().joined(separator: "; ")) }
        let kh = median(binaryTimes)
        let library = median(khTimes)
        let seq = median(sequential)
        // The slowest single call: the call whose median over the rounds is highest (not the
        // median of each round's maximum, which noise on any of the 12 calls would inflate).
        let slow = perCall.map(median).max() ?? .nan
        let grouped = median(perGroupTimes)
        let throughProxy = median(proxiedTimes)
        return [
            Row(
                name: name, kh: ms(kh), baseline: ms(seq) + " (\(calls.count) calls)", ratio: String(format: "%.1fx", seq / kh), goal: ">= 3x",
                met: seq / kh >= 3),
            Row(
                name: "gitops: diagnose vs slowest single kubectl call", kh: ms(kh), baseline: ms(slow), ratio: String(format: "%.2fx", kh / slow),
                goal: "<= 1.5x", met: kh / slow <= 1.5),
            Row(
                name: "gitops: diagnose in-process (gather + decision tree, no kh start-up or evidence)", kh: ms(library), baseline: ms(slow),
                ratio: String(format: "%.2fx", library / slow), goal: "report", met: nil),
            Row(
                name: "gitops: diagnose in-process, through kubectl proxy (api_direct: false)", kh: ms(throughProxy), baseline: ms(slow),
                ratio: String(format: "%.2fx", throughProxy / slow), goal: "report", met: nil),
            Row(
                name: "gitops: diagnose in-process, one kubectl per group (api_direct, api_proxy: false)", kh: ms(grouped), baseline: ms(slow),
                ratio: String(format: "%.2fx", grouped / slow), goal: "report", met: nil),
        ]
    }
}

/// The kh binary: `--kh PATH`, else `kh` next to kh-bench.
func khExecutable() -> String {
    let arguments = CommandLine.arguments
    if let index = arguments.firstIndex(of: "--kh"), index + 1 < arguments.count {
        // Absolute: the command runs in another directory.
        return URL(fileURLWithPath: arguments[index + 1]).standardizedFileURL.path
    }
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? arguments[0]
    return URL(fileURLWithPath: exe).deletingLastPathComponent().path + "/kh"
}
