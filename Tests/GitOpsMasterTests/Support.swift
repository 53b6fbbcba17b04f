import Foundation
import KhCore
import KhHTTP
import KhKube
import KhProcess
import KhTestSupport
import Synchronization
import Testing

@testable import GitOpsMaster

/// A pipeline of objects in namespaces of its own on the testbed's kube emulator,
/// shaped as the Kargo and Argo CD controllers write them (status included, upserted
/// through the emulator's admin endpoint, as a controller would write it).
final class Pipeline: Sendable {
    let testbed: Testbed
    let kubectl: Kubectl
    let id: String
    let env: GitOpsEnvironment
    let http: HTTPClient
    let server: String
    let logsDir: String

    static let crdsReady = Mutex<Bool>(false)

    init(kubectl executable: String = "kubectl", _ label: String = #function) async throws {
        testbed = try Testbed.load()
        kubectl = Kubectl(
            runner: LocalRunner(environment: testbed.processEnvironment), executable: executable, kubeconfig: try testbed.require("KUBECONFIG"),
            timeout: .seconds(30))
        let suffix = String(UUID().uuidString.lowercased().prefix(8))
        id = suffix
        env = GitOpsEnvironment(
            kargoNamespace: "k-\(suffix)", kargoControllerNamespace: "kc-\(suffix)", argocdNamespace: "a-\(suffix)",
            argocdControllerNamespace: "ac-\(suffix)", monitoringNamespace: "m-\(suffix)", appNamespace: "app-\(suffix)",
            domain: "\(suffix).example.invalid",
            kargoProject: "k-\(suffix)", warehouse: "platform")
        server = try testbed.require("KH_TESTBED_KUBE_SERVER")
        logsDir = try testbed.require("KH_TESTBED_KUBE_LOGS_DIR")
        let token = try String(contentsOfFile: try testbed.require("KH_TESTBED_DIR") + "/kube/token", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        http = HTTPClient(
            configuration: .init(timeout: .seconds(20), authentication: .bearer(token)),
            transport: CurlTransport(options: .init(caBundlePath: try testbed.require("KH_TESTBED_KUBE_CA"))))
        try await installCRDs()
        try await upsert(
            [
                env.kargoNamespace, env.kargoControllerNamespace, env.argocdNamespace, env.argocdControllerNamespace, env.monitoringNamespace,
                env.appNamespace!,
            ]
            .map { ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string($0)]] })
    }

    /// The test's namespaces go when it ends (deleting a namespace deletes everything in it),
    /// so other suites sharing the emulator never see this test's stages.
    deinit {
        let namespaces =
            [env.kargoNamespace, env.kargoControllerNamespace, env.argocdNamespace, env.argocdControllerNamespace, env.monitoringNamespace]
            + [env.appNamespace].compactMap { $0 }
        let argv =
            [kubectl.executable, "--kubeconfig", kubectl.kubeconfig ?? "", "delete", "namespace", "--wait=false", "--ignore-not-found"] + namespaces
        var pid: pid_t = 0
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for arg in cArgs { free(arg) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in [0, 1, 2] { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0) }
        guard posix_spawnp(&pid, argv[0], &actions, nil, &cArgs, environ) == 0 else { return }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    func installCRDs() async throws {
        if Self.crdsReady.withLock({ $0 }) { return }
        let crds = try testbed.require("KH_TESTBED_KUBE_CRDS")
        for file in try FileManager.default.contentsOfDirectory(atPath: crds).sorted() where file.hasSuffix(".yaml") {
            let yaml = try String(contentsOfFile: crds + "/" + file, encoding: .utf8)
            try await kubectl.apply(yaml: yaml)
        }
        for name in ["stages.kargo.akuity.io", "applications.argoproj.io", "analysisruns.argoproj.io"] {
            _ = try await kubectl.wait(for: CustomResourceDefinition.self, name: name, timeout: .seconds(20), interval: .milliseconds(200)) {
                $0.isEstablished
            }
        }
        Self.crdsReady.withLock { $0 = true }
    }

    /// Upserts objects with their status as given.
    func upsert(_ objects: [JSONValue]) async throws {
        let list: JSONValue = ["apiVersion": "v1", "kind": "List", "items": .array(objects)]
        let response = try await http.send(try HTTPRequest.json(.post, URL(string: server + "/_emulator/objects")!, body: list))
        guard response.isSuccess else { throw KhError.external("upsert failed: \(response.status) \(response.text)") }
    }

    func cluster(_ configure: (inout GitOpsConfig) -> Void = { _ in }) -> Cluster {
        var config = GitOpsConfig()
        config.gatherTimeout = KhDuration(.seconds(30))
        configure(&config)
        return Cluster(kubectl: kubectl, environment: env, config: config)
    }

    /// Gathers and diagnoses one stage (the library path `kh gitops diagnose` takes).
    func diagnose(_ stage: String, now: Date = Date(), _ configure: (inout GitOpsConfig) -> Void = { _ in }) async throws -> Diagnosis {
        let cluster = cluster(configure)
        let snapshot = await Gatherer.gather(cluster)
        let failed = snapshot.groups.filter { !$0.ok && !$0.name.contains("controller-logs") }
        #expect(failed.isEmpty, "groups failed: \(failed)")
        return try #require(try Diagnoser(cluster: cluster, snapshot: snapshot, now: now).diagnoseAll(only: stage).first)
    }

    // MARK: object builders

    var ns: String { env.kargoNamespace }

    static func condition(_ type: String, _ status: String, _ reason: String, _ message: String = "", at: String = "2024-05-01T10:00:00Z")
        -> JSONValue
    {
        [
            "type": .string(type), "status": .string(status), "reason": .string(reason), "message": .string(message), "observedGeneration": 1,
            "lastTransitionTime": .string(at),
        ]
    }

    func stage(
        _ name: String, upstream: [String] = [], apps: [String] = [], retry: Bool = true, verification: [String] = [], conditions: [JSONValue],
        lastPromotion: JSONValue? = nil, currentPromotion: JSONValue? = nil, freightHistory: JSONValue? = nil, phase: String? = nil
    ) -> JSONValue {
        let sources: JSONValue = upstream.isEmpty ? ["direct": true] : ["stages": .array(upstream.map { .string($0) })]
        var step: [String: JSONValue] = [
            "uses": "argocd-update",
            "config": ["apps": .array(apps.map { ["name": .string($0), "namespace": .string(env.argocdNamespace)] })],
        ]
        if retry { step["retry"] = ["timeout": "10m", "errorThreshold": 3] }
        var spec: [String: JSONValue] = [
            "requestedFreight": [["origin": ["kind": "Warehouse", "name": "platform"], "sources": sources]],
            "promotionTemplate": ["spec": ["steps": apps.isEmpty ? [] : [.object(step)]]],
        ]
        if !verification.isEmpty { spec["verification"] = ["analysisTemplates": .array(verification.map { ["name": .string($0)] })] }
        var status: [String: JSONValue] = ["observedGeneration": 1, "conditions": .array(conditions)]
        if let lastPromotion { status["lastPromotion"] = lastPromotion }
        if let currentPromotion { status["currentPromotion"] = currentPromotion }
        if let freightHistory { status["freightHistory"] = freightHistory }
        if let phase { status["phase"] = .string(phase) }
        return [
            "apiVersion": "kargo.akuity.io/v1alpha1", "kind": "Stage", "metadata": ["name": .string(name), "namespace": .string(ns)],
            "spec": .object(spec), "status": .object(status),
        ]
    }

    static let verified: [JSONValue] = [
        condition("Ready", "True", "Verified", "Stage is ready"), condition("Healthy", "True", "Healthy"), condition("Verified", "True", "Verified"),
    ]

    func history(_ freight: String) -> JSONValue {
        [["items": ["Warehouse/platform": ["name": .string(freight), "origin": ["kind": "Warehouse", "name": "platform"]]]]]
    }

    func promotion(_ name: String, stage: String, freight: String, phase: String?, message: String? = nil, created: String? = nil) -> JSONValue {
        var meta: [String: JSONValue] = [
            "name": .string(name), "namespace": .string(ns),
            "labels": ["kargo.akuity.io/stage": .string(stage), "kargo.akuity.io/freight": .string(freight)],
        ]
        if let created { meta["creationTimestamp"] = .string(created) }
        var status: [String: JSONValue] = [:]
        if let phase { status["phase"] = .string(phase) }
        if let message { status["message"] = .string(message) }
        return [
            "apiVersion": "kargo.akuity.io/v1alpha1", "kind": "Promotion", "metadata": .object(meta),
            "spec": ["stage": .string(stage), "freight": .string(freight)], "status": .object(status),
        ]
    }

    func app(
        _ name: String, sync: String = "Synced", health: String = "Healthy", opPhase: String? = nil, opMessage: String = "",
        finishedAt: String? = nil,
        reconciledAt: String? = nil, selfHeal: Bool = false
    ) -> JSONValue {
        var status: [String: JSONValue] = ["sync": ["status": .string(sync)], "health": ["status": .string(health)]]
        if let opPhase {
            var op: [String: JSONValue] = ["phase": .string(opPhase), "message": .string(opMessage), "startedAt": "2024-05-01T10:00:00Z"]
            if let finishedAt { op["finishedAt"] = .string(finishedAt) }
            status["operationState"] = .object(op)
        }
        if let reconciledAt { status["reconciledAt"] = .string(reconciledAt) }
        var spec: [String: JSONValue] = ["project": "default", "destination": ["namespace": .string(env.appNamespace!)]]
        if selfHeal { spec["syncPolicy"] = ["automated": ["prune": true, "selfHeal": true]] }
        return [
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": ["name": .string(name), "namespace": .string(env.argocdNamespace)],
            "spec": .object(spec), "status": .object(status),
        ]
    }

    func freight(_ name: String, alias: String, verifiedIn: [String] = [], created: String? = nil) -> JSONValue {
        var meta: [String: JSONValue] = ["name": .string(name), "namespace": .string(ns), "labels": ["kargo.akuity.io/alias": .string(alias)]]
        if let created { meta["creationTimestamp"] = .string(created) }
        var verified: [String: JSONValue] = [:]
        for s in verifiedIn { verified[s] = ["verifiedAt": "2024-05-01T11:00:00Z"] }
        return [
            "apiVersion": "kargo.akuity.io/v1alpha1", "kind": "Freight", "metadata": .object(meta), "alias": .string(alias),
            "origin": ["kind": "Warehouse", "name": "platform"],
            "commits": [["repoURL": "https://git.example.invalid/gitops.git", "id": .string(String(repeating: "1", count: 40))]],
            "status": ["verifiedIn": .object(verified)],
        ]
    }

    func warehouse(refresh: String? = nil, handled: String? = nil) -> JSONValue {
        var meta: [String: JSONValue] = ["name": "platform", "namespace": .string(ns)]
        if let refresh { meta["annotations"] = ["kargo.akuity.io/refresh": .string(refresh)] }
        var status: [String: JSONValue] = [:]
        if let handled { status["lastHandledRefresh"] = .string(handled) }
        return [
            "apiVersion": "kargo.akuity.io/v1alpha1", "kind": "Warehouse", "metadata": .object(meta),
            "spec": ["subscriptions": [["git": ["repoURL": "https://git.example.invalid/gitops.git", "branch": "main"]]]], "status": .object(status),
        ]
    }

    /// An AnalysisRun for a stage whose measurement names its verification job.
    func analysisRun(_ name: String, stage: String, phase: String, job: String?) -> JSONValue {
        var metric: [String: JSONValue] = ["name": "health", "phase": .string(phase)]
        if let job { metric["measurements"] = [["phase": .string(phase), "metadata": ["job-name": .string(job)]]] }
        return [
            "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
            "metadata": ["name": .string(name), "namespace": .string(ns), "labels": ["kargo.akuity.io/stage": .string(stage)]],
            "spec": ["metrics": [["name": "health"]]],
            "status": [
                "phase": .string(phase), "message": "metric \"health\" assessed Failed due to failed (1) > failureLimit (0)",
                "metricResults": [.object(metric)],
            ],
        ]
    }

    /// A finished verification Job, its pod and the pod's log (served by the emulator from a file).
    func verificationJob(_ name: String, log: String) async throws {
        try await upsert([
            [
                "apiVersion": "batch/v1", "kind": "Job", "metadata": ["name": .string(name), "namespace": .string(ns)],
                "spec": ["template": ["spec": ["restartPolicy": "Never", "containers": [["name": "verify", "image": "alpine/k8s:1.30.0"]]]]],
                "status": ["failed": 1],
            ]
        ])
        let job = try await kubectl.get(Job.self, name: name, namespace: ns)
        let pod = "\(name)-x1"
        try await upsert([
            [
                "apiVersion": "v1", "kind": "Pod",
                "metadata": [
                    "name": .string(pod), "namespace": .string(ns),
                    "labels": [
                        "batch.kubernetes.io/controller-uid": .string(job.metadata.uid ?? ""), "batch.kubernetes.io/job-name": .string(name),
                        "controller-uid": .string(job.metadata.uid ?? ""), "job-name": .string(name),
                    ],
                ],
                "spec": ["restartPolicy": "Never", "containers": [["name": "verify", "image": "alpine/k8s:1.30.0"]]],
                "status": ["phase": "Failed", "containerStatuses": [["name": "verify", "ready": false, "state": ["terminated": ["exitCode": 1]]]]],
            ]
        ])
        try writeLog(namespace: ns, pod: pod, container: "verify", log)
    }

    /// The Kargo controller (a Deployment and its running pod) with a log.
    func controller(log: String) async throws {
        let ns = env.kargoControllerNamespace
        try await upsert([
            [
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "kargo-controller", "namespace": .string(ns)],
                "spec": [
                    "replicas": 1, "selector": ["matchLabels": ["app.kubernetes.io/name": "kargo"]],
                    "template": [
                        "metadata": ["labels": ["app.kubernetes.io/name": "kargo"]],
                        "spec": ["containers": [["name": "controller", "image": "ghcr.io/akuity/kargo:v1.5.0"]]],
                    ],
                ],
            ],
            [
                "apiVersion": "v1", "kind": "Pod",
                "metadata": ["name": "kargo-controller-5d4f8-x2x7q", "namespace": .string(ns), "labels": ["app.kubernetes.io/name": "kargo"]],
                "spec": ["containers": [["name": "controller", "image": "ghcr.io/akuity/kargo:v1.5.0"]]],
                "status": [
                    "phase": "Running", "conditions": [["type": "Ready", "status": "True"]],
                    "containerStatuses": [
                        ["name": "controller", "ready": true, "restartCount": 0, "state": ["running": ["startedAt": "2024-05-01T09:00:00Z"]]]
                    ],
                ],
            ],
        ])
        try writeLog(namespace: ns, pod: "kargo-controller-5d4f8-x2x7q", container: "controller", log)
    }

    func writeLog(namespace: String, pod: String, container: String, _ text: String) throws {
        let dir = "\(logsDir)/\(namespace)/\(pod)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try AtomicFile.write(Data(text.utf8), to: "\(dir)/\(container).log")
    }

    /// An ISO 8601 time `seconds` before now.
    static func ago(_ seconds: Double, from now: Date = Date()) -> String { Timestamp.iso8601(now.addingTimeInterval(-seconds)) }

    /// A Kargo-shaped promotion name.
    static func generated(_ stage: String, _ freight: String) -> String { "\(stage).01j9z3k4m5n6p7q8r9s0t1v2w3.\(freight.prefix(7))" }
}

/// The Kargo API emulation (Tools/testbed/kargo-emulator), started by the test on a free
/// port and stopped by its PID.
final class KargoEmulator: Sendable {
    let pid: Int32
    let url: URL
    let token: String
    let dir = TemporaryDirectory()

    init(version: String, testbed: Testbed) async throws {
        token = UUID().uuidString + UUID().uuidString
        let tokenFile = try dir.write("token", token)
        let portFile = dir.path + "/port"
        let args = [
            "python3", "-B", BuiltProducts.repositoryRoot + "/Tools/testbed/kargo-emulator/server.py", "--port-file", portFile, "--version", version,
            "--token-file", tokenFile, "--kube-server", try testbed.require("KH_TESTBED_KUBE_SERVER"), "--kube-ca",
            try testbed.require("KH_TESTBED_KUBE_CA"),
            "--kube-token-file", try testbed.require("KH_TESTBED_DIR") + "/kube/token", "--watch-pid", String(getpid()),
        ]
        // A session of its own (setsid), so it outlives the shell that starts it; stopped by PID in deinit.
        let script = "setsid " + Shell.join(args) + " </dev/null >" + Shell.quote(dir.path + "/server.log") + " 2>&1 & echo $!"
        let started = try await LocalRunner().run(
            Command("/bin/sh", ["-c", script]), options: RunOptions(timeout: .seconds(10), killLeftovers: false))
        guard let pid = Int32(started.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw KhError.external("cannot start the Kargo emulator: \(started.stderrText)")
        }
        self.pid = pid
        var port: String?
        for _ in 0..<300 {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8), !text.isEmpty {
                port = text
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard let port else {
            kill(pid, SIGTERM)
            throw KhError.external("the Kargo emulator did not start within 15 s: \((try? dir.read("server.log")) ?? "")")
        }
        url = URL(string: "http://127.0.0.1:\(port)")!
    }

    deinit { kill(pid, SIGTERM) }

    func api(_ configure: (inout KargoAPIConfig) -> Void = { _ in }, token: String? = nil) -> KargoAPI {
        var config = KargoAPIConfig()
        configure(&config)
        return KargoAPI(
            baseURL: url, config: config, token: token ?? self.token, http: HTTPClient(configuration: .init(timeout: .seconds(10))),
            runner: LocalRunner())
    }
}
