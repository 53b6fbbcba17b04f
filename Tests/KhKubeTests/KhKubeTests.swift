import Foundation
import KhCore
import KhProcess
import KhTestSupport
import Testing

@testable import KhKube

/// Objects shaped like the controllers write them (trimmed, with fields kh does not model).
enum Fixtures {
    static let stage = """
        {"apiVersion":"kargo.akuity.io/v1alpha1","kind":"Stage",
         "metadata":{"name":"prod","namespace":"demo","uid":"u1","resourceVersion":"42","generation":3,
                     "creationTimestamp":"2026-11-20T10:00:00Z","annotations":{"kargo.akuity.io/refresh":"x"}},
         "spec":{"requestedFreight":[{"origin":{"kind":"Warehouse","name":"app"},"sources":{"stages":["staging"],"verifiedFor":"1h"}}],
                 "promotionTemplate":{"spec":{"steps":[{"uses":"git-clone","retry":{"timeout":"10m"}},{"uses":"argocd-update"}]}},
                 "verification":{"analysisTemplates":[{"name":"smoke"}]}},
         "status":{"conditions":[
             {"type":"Ready","status":"False","reason":"LastPromotionErrored","message":"step 2 failed","lastTransitionTime":"2026-11-21T09:00:00Z","observedGeneration":3},
             {"type":"Healthy","status":"True","reason":"Healthy","lastTransitionTime":"2026-11-21T08:00:00Z"},
             {"type":"Verified","status":"False","reason":"VerificationFailed","lastTransitionTime":"2026-11-21T08:30:00.123456Z"}],
           "freightSummary":"abc123",
           "freightHistory":[{"id":"f1","items":{"Warehouse/app":{"name":"abc123","origin":{"kind":"Warehouse","name":"app"},
                 "commits":[{"repoURL":"https://git.example/app","id":"deadbeef"}]}},
               "verificationHistory":[{"id":"v1","phase":"Failed","message":"forbidden","analysisRun":{"namespace":"demo","name":"prod.01","phase":"Failed"}}]}],
           "health":{"status":"Healthy","output":{"anything":1}},
           "lastPromotion":{"name":"prod.01hx.abc","freight":{"name":"abc123"},"status":{"phase":"Errored","message":"step 2 failed"},"finishedAt":"2026-11-21T09:00:00Z"},
           "observedGeneration":3}}
        """

    static let application = """
        {"apiVersion":"argoproj.io/v1alpha1","kind":"Application","metadata":{"name":"app-prod","namespace":"argocd"},
         "spec":{"project":"default","source":{"repoURL":"https://git.example/app","path":"env/prod","targetRevision":"HEAD"},
                 "destination":{"server":"https://kubernetes.default.svc","namespace":"app"},
                 "syncPolicy":{"automated":{"prune":true,"selfHeal":true},"syncOptions":["CreateNamespace=true"]}},
         "status":{"sync":{"status":"Synced","revision":"deadbeef"},"health":{"status":"Healthy"},
                   "operationState":{"phase":"Succeeded","startedAt":"2026-11-21T09:00:00Z","finishedAt":"2026-11-21T09:00:30Z","syncResult":{}},
                   "reconciledAt":"2026-11-21T09:00:10Z","resources":[]}}
        """

    static let secretList = """
        {"apiVersion":"v1","kind":"SecretList","items":[
          {"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"app"},"type":"Opaque",
           "data":{"password":"c3VwZXItc2VjcmV0LXZhbHVl","user":"YWRtaW4="}}]}
        """

    static let podList = """
        {"apiVersion":"v1","kind":"List","items":[
          {"metadata":{"name":"karpenter-1","namespace":"kube-system"},"spec":{"nodeName":"n1","containers":[{"name":"controller","image":"k:1.8.3"}]},
           "status":{"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable"}],
                     "containerStatuses":[{"name":"controller","ready":false,"restartCount":4,
                        "state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off"}}}]}}]}
        """

    static let workflowTemplate = """
        {"metadata":{"name":"agent"},"spec":{"entrypoint":"main","templates":[
           {"name":"main","retryStrategy":{"limit":"3","backoff":{"duration":"10s","factor":2,"maxDuration":"5m"}}},
           {"name":"step","retryStrategy":{"limit":5}},{"name":"noretry"}]}}
        """

    static let nodeClaim = """
        {"metadata":{"name":"default-abcde"},"spec":{"nodeClassRef":{"group":"karpenter.k8s.aws","kind":"EC2NodeClass","name":"default"}},
         "status":{"nodeName":"ip-10-0-1-2","providerID":"aws:///eu-west-1a/i-0123","conditions":[
            {"type":"Launched","status":"True"},{"type":"Registered","status":"True"},{"type":"Initialized","status":"True"}]}}
        """
}

@Suite("KhKube models decode what controllers write")
struct ModelTests {
    func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
        try KhJSON.decoder().decode(type, from: Data(json.utf8))
    }

    @Test("a Kargo ≥ 1.5 Stage: conditions, no phase, freight history, last promotion")
    func stage() throws {
        let stage = try decode(Stage.self, Fixtures.stage)
        #expect(stage.status?.phase == nil)
        #expect(stage.conditions.first("Ready")?.reason == "LastPromotionErrored")
        #expect(stage.conditions.isTrue("Healthy"))
        #expect(!stage.conditions.isTrue("Verified"))
        #expect(stage.conditions.first("Verified")?.lastTransitionTime != nil)
        #expect(stage.currentFreight.map(\.name) == ["abc123"])
        #expect(stage.currentVerification?.analysisRun?.name == "prod.01")
        #expect(stage.status?.lastPromotion?.status?.phase == "Errored")
        #expect(stage.spec?.requestedFreight?.first?.sources?.stages == ["staging"])
        #expect(stage.spec?.promotionTemplate?.spec?.steps?.first?.retry?.timeout == "10m")
        #expect(stage.metadata.creationTimestamp == Timestamp.parse("2026-11-20T10:00:00Z"))
    }

    @Test("the legacy status.phase is still read")
    func legacyPhase() throws {
        let stage = try decode(Stage.self, #"{"metadata":{"name":"old"},"status":{"phase":"Failed"}}"#)
        #expect(stage.status?.phase == "Failed")
        #expect(stage.conditions.isEmpty)
    }

    @Test("an Argo CD Application: stale operationState is detected")
    func application() throws {
        let app = try decode(ArgoApplication.self, Fixtures.application)
        #expect(app.status?.sync?.status == "Synced")
        #expect(app.spec?.syncPolicy?.automated?.selfHeal == true)
        // reconciledAt (09:00:10) is before finishedAt (09:00:30): health not yet trustworthy.
        #expect(!app.healthIsFresh)
    }

    @Test("Secrets decode metadata and key names only, never values")
    func secrets() throws {
        let list = try decode(KubeList<SecretMetadata>.self, Fixtures.secretList)
        #expect(list.items.first?.keys == ["password", "user"])
        let encoded = String(decoding: try JSONEncoder().encode(list.items[0]), as: UTF8.self)
        #expect(!encoded.contains("c3VwZXItc2VjcmV0"))
    }

    @Test("Pods, workflow retry strategies written as numbers or strings, NodeClaims")
    func others() throws {
        let pods = try decode(KubeList<Pod>.self, Fixtures.podList).items
        #expect(pods.first?.status?.containerStatuses?.first?.state?.waiting?.reason == "CrashLoopBackOff")
        #expect(pods.first?.isReady == false)
        let template = try decode(WorkflowTemplate.self, Fixtures.workflowTemplate)
        #expect(template.spec?.templates?.map { $0.retryStrategy?.limit?.value } == ["3", "5", nil])
        #expect(template.spec?.templates?.first?.retryStrategy?.backoff?.maxDuration == "5m")
        let claim = try decode(NodeClaim.self, Fixtures.nodeClaim)
        #expect(claim.isInitialized && claim.status?.nodeName == "ip-10-0-1-2")
    }
}

@Suite("KhKube errors and command lines")
struct KubectlTests {
    @Test(
        "kubectl's stderr becomes a typed error",
        arguments: [
            (#"Error from server (NotFound): stages.kargo.akuity.io "prod" not found"#, KubeError.Kind.notFound),
            (
                #"Error from server (Forbidden): stages.kargo.akuity.io is forbidden: User "system:serviceaccount:x:y" cannot list resource "stages""#,
                .forbidden
            ),
            (#"Error from server (Conflict): Operation cannot be fulfilled on stages "prod": the object has been modified"#, .conflict),
            ("The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?", .unreachable),
            ("Unable to connect to the server: dial tcp: lookup k8s.example: no such host", .unreachable),
            (#"error: the server doesn't have a resource type "stages""#, .unknownResourceType),
            ("error: You must be logged in to the server (Unauthorized)", .unauthorized),
            (#"Error from server (AlreadyExists): namespaces "x" already exists"#, .alreadyExists),
            ("something else went wrong", .other),
        ])
    func classify(stderr: String, kind: KubeError.Kind) {
        let error = KubeError.classify(stderr: stderr, command: "kubectl get stages")
        #expect(error.kind == kind)
        #expect(error.detail.isEmpty == false)
        if kind == .forbidden { #expect(error.message.contains("cannot list resource")) }
    }

    @Test("list passes namespace, selectors and connection flags; errors are classified")
    func listCommand() async throws {
        let runner = FakeCommandRunner { command in
            if command.arguments.contains("stages.kargo.akuity.io") {
                return CommandResult(
                    command: command, termination: .exited(0), stdout: Data(#"{"kind":"StageList","items":[\#(Fixtures.stage)]}"#.utf8))
            }
            if command.arguments.contains("nodes") {
                return CommandResult(command: command, termination: .exited(0), stdout: Data(#"{"kind":"NodeList","items":[]}"#.utf8))
            }
            return CommandResult(
                command: command, termination: .exited(1),
                stderr: Data(#"Error from server (NotFound): applications.argoproj.io "x" not found"#.utf8))
        }
        let kubectl = Kubectl(runner: runner, kubeconfig: "/k/config", context: "prod", namespace: "demo")
        let stages = try await kubectl.list(Stage.self, labelSelector: "tier=prod", fieldSelector: "metadata.name=prod")
        #expect(stages.map(\.metadata.name) == ["prod"])
        #expect(
            runner.commands.first?.arguments == [
                "--kubeconfig", "/k/config", "--context", "prod", "get", "stages.kargo.akuity.io", "-o", "json", "-n", "demo", "-l", "tier=prod",
                "--field-selector", "metadata.name=prod",
            ])
        let error = await #expect(throws: KubeError.self) { _ = try await kubectl.get(ArgoApplication.self, name: "x", namespace: "argocd") }
        #expect(error?.kind == .notFound)
        #expect(try await kubectl.getIfPresent(ArgoApplication.self, name: "x") == nil)
        _ = try await kubectl.list(Node.self, in: .all)
        #expect(runner.commands.last?.arguments.contains("-n") == false)
    }

    @Test("a missing kubectl is 'blocked' (exit 3), not a crash")
    func missingKubectl() async throws {
        let kubectl = Kubectl(runner: LocalRunner(environment: ["PATH": "/nonexistent"]))
        let error = await #expect(throws: KubeError.self) { _ = try await kubectl.list(Pod.self) }
        #expect(error?.kind == .kubectlMissing)
        #expect(error?.exitCode == .blocked)
    }

    @Test("wait polls until the condition holds and times out with what it last saw")
    func waitPolls() async throws {
        let calls = CallCounter()
        let runner = FakeCommandRunner { command in
            let n = calls.next()
            let status = n >= 3 ? "True" : "False"
            let json = #"{"metadata":{"name":"prod"},"status":{"conditions":[{"type":"Ready","status":"\#(status)"}]}}"#
            return CommandResult(command: command, termination: .exited(0), stdout: Data(json.utf8))
        }
        let clock = TestClock()
        let kubectl = Kubectl(runner: runner, clock: clock.clock)
        let stage = try await kubectl.wait(for: Stage.self, name: "prod", timeout: .seconds(60), interval: .seconds(5)) {
            $0.conditions.isTrue("Ready")
        }
        #expect(stage.conditions.isTrue("Ready"))
        #expect(calls.value == 3)

        let never = Kubectl(
            runner: FakeCommandRunner { command in
                CommandResult(command: command, termination: .exited(0), stdout: Data(#"{"metadata":{"name":"prod"}}"#.utf8))
            }, clock: TestClock().clock)
        let error = await #expect(throws: KubeError.self) {
            _ = try await never.wait(for: Stage.self, name: "prod", timeout: .seconds(30), interval: .seconds(10), describe: { _ in "Ready=False" }) {
                $0.conditions.isTrue("Ready")
            }
        }
        #expect(error?.kind == .timedOut)
        #expect(error?.detail.contains("last seen: Ready=False") == true)
    }

    @Test("apply never uses stdin: the YAML goes through a file")
    func applyUsesFile() async throws {
        let seen = CallCounter()
        let runner = FakeCommandRunner { command in
            let file = command.arguments[command.arguments.firstIndex(of: "-f")! + 1]
            let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            if text.contains("kind: ConfigMap") { _ = seen.next() }
            return CommandResult(command: command, termination: .exited(0), stdout: Data("configmap/x created\n".utf8))
        }
        let out = try await Kubectl(runner: runner).apply(yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", namespace: "a")
        #expect(out == "configmap/x created\n")
        #expect(seen.value == 1)
        #expect(runner.commands.first?.arguments.contains("-") == false)
    }
}

final class CallCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func next() -> Int {
        lock.withLock {
            count += 1; return count
        }
    }
}
