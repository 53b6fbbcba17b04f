import EKSKarpenterInstall
import Foundation
import KhCore
import KhKube
import KhPluginAPI
import KhProcess
import KhTestSupport
import Synchronization
import Testing

/// The fixtures folder (helm stand-in, emulator script).
let fixtures = BuiltProducts.repositoryRoot + "/Tests/EKSKarpenterInstallTests/Fixtures"
let standinHelm = fixtures + "/helm-standin/helm"

/// A private instance of the testbed's Kubernetes API emulator, started once for the
/// suite and reset before every test (phase 3 counts every node of the cluster).
final class KubeEmulator: Sendable {
    @TaskLocal static var current: KubeEmulator?
    let directory = TemporaryDirectory("kh-eks-kube")
    let port: String
    var kubeconfig: String { directory.path + "/kubeconfig" }
    var cacheDir: String { directory.path + "/cache" }

    init() async throws {
        let result = try await LocalRunner().run(
            Command(fixtures + "/kube-emulator.sh", ["start", directory.path]), options: RunOptions(timeout: .seconds(60)))
        guard result.succeeded else { throw SetupError("the kube emulator did not start: \(result.stderrText)") }
        port = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func reset() async throws {
        let result = try await LocalRunner().run(
            Command(fixtures + "/kube-emulator.sh", ["reset", directory.path]), options: RunOptions(timeout: .seconds(30)))
        guard result.succeeded else { throw SetupError("emulator reset failed: \(result.stderrText)") }
    }

    func stop() async {
        _ = try? await LocalRunner().run(
            Command(fixtures + "/kube-emulator.sh", ["stop", directory.path]), options: RunOptions(timeout: .seconds(30)))
    }
}

struct KubeEmulatorTrait: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let emulator = try await KubeEmulator()
        do {
            try await KubeEmulator.$current.withValue(emulator) { try await function() }
        } catch {
            await emulator.stop()
            throw error
        }
        await emulator.stop()
    }
}

extension Trait where Self == KubeEmulatorTrait {
    /// A private kube emulator for the suite (``KubeEmulator/current``).
    static var kubeEmulator: Self { KubeEmulatorTrait() }
}

/// Captures what a command prints.
final class Output: Sendable {
    private let lines = Mutex<[(Console.Stream, String)]>([])
    func append(_ stream: Console.Stream, _ text: String) { lines.withLock { $0.append((stream, text)) } }
    var stdout: String { lines.withLock { $0.filter { $0.0 == .stdout }.map(\.1).joined() } }
    var stderr: String { lines.withLock { $0.filter { $0.0 == .stderr }.map(\.1).joined() } }
}

/// One test's world: the emulator (reset), moto from the testbed, a helm stand-in
/// state, an evidence folder, and helpers to shape the cluster with real kubectl.
final class Bed: Sendable {
    let emulator: KubeEmulator
    let testbed: Testbed
    let directory = TemporaryDirectory("kh-eks")
    let kubectl: Kubectl
    let cluster: String

    var evidenceRoot: String { directory.path + "/runs" }
    var helmState: String { directory.path + "/helm-state.json" }
    var helmCalls: String { directory.path + "/helm-calls.jsonl" }

    init(cluster: String = "kh-\(UUID().uuidString.prefix(8).lowercased())") async throws {
        emulator = try #require(KubeEmulator.current, "the kubeEmulator trait did not run")
        testbed = try Testbed.load()
        try await emulator.reset()
        self.cluster = cluster
        kubectl = Kubectl(
            runner: LocalRunner(environment: ["KUBECACHEDIR": emulator.cacheDir, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? ""]),
            kubeconfig: emulator.kubeconfig, timeout: .seconds(30))
        try await kubectl.apply(
            yaml: """
                apiVersion: v1
                kind: Namespace
                metadata: {name: kube-system}
                ---
                apiVersion: v1
                kind: Namespace
                metadata: {name: default}
                """)
        try writeHelmState(HelmState())
    }

    /// The process environment for kh: the testbed's (moto credentials and endpoint),
    /// the private emulator, and the helm stand-in.
    var environment: [String: String] {
        var env = testbed.processEnvironment
        env["KUBECONFIG"] = emulator.kubeconfig
        env["KUBECACHEDIR"] = emulator.cacheDir
        env["KH_HELM_STANDIN_STATE"] = helmState
        env["KH_HELM_STANDIN_CALLS"] = helmCalls
        env["KH_HELM"] = standinHelm
        env.removeValue(forKey: "KH_CONFIG")
        env.removeValue(forKey: "KH_OUTPUT")
        return env
    }

    /// The config section used by most tests: short deadlines, this emulator.
    func config(_ extra: (inout InstallConfig) -> Void = { _ in }) -> InstallConfig {
        var config = InstallConfig()
        config.clusterName = cluster
        config.region = "us-east-1"
        config.kubeconfig = emulator.kubeconfig
        config.thresholds.pollInterval = KhDuration(.milliseconds(200))
        config.thresholds.controllerWait = KhDuration(.seconds(1))
        config.thresholds.nodeWait = KhDuration(.seconds(1))
        config.thresholds.nodeClaimWait = KhDuration(.seconds(2))
        config.cluster.updateKubeconfig = false
        config.karpenter.helmTimeout = KhDuration(.seconds(600))
        extra(&config)
        return config
    }

    func context(format: OutputFormat = .json, output: Output, environment extra: [String: String] = [:]) -> CommandContext {
        let redactor = Redactor()
        let env = environment.merging(extra) { $1 }
        redactor.registerEnvironment(Redactor.wellKnownSecretEnvironment, from: env)
        let console = Console(format: format, redactor: redactor) { output.append($0, $1) }
        return CommandContext(
            console: console, config: .empty(redactor: redactor), redactor: redactor, runner: LocalRunner(environment: env), environment: env,
            evidenceRoot: evidenceRoot, commandLine: ["kh", "install"], workingDirectory: directory.path)
    }

    /// Runs phases in-process as the commands do (evidence folder, phase documents).
    func run(
        _ phases: [InstallPhase], config: InstallConfig, dryRun: Bool = false, resume: Bool = false, force: Bool = false,
        environment extra: [String: String] = [:]
    ) async throws -> (InstallResult, EvidenceRun, Output) {
        let output = Output()
        let context = context(output: output, environment: extra)
        var settings = try InstallSettings.resolve(
            config: config, options: try InstallOptions.parse([]), environment: context.environment, configPath: nil)
        settings.force = force
        let run = try context.startEvidence()
        let deps = InstallDependencies.live(context: context, settings: settings)
        let result = try await InstallOrchestrator.execute(
            phases: phases, settings: settings, deps: deps, run: run, evidenceRoot: evidenceRoot, fileSystem: LocalFileSystem(), dryRun: dryRun,
            resume: resume)
        try run.finish(exitCode: result.exitCode, result: result.status.rawValue)
        return (result, run, output)
    }

    /// A phase document of a run, as JSON.
    func document(_ run: EvidenceRun, _ phase: InstallPhase) throws -> JSONValue {
        let data = try Data(contentsOf: URL(fileURLWithPath: run.directory + "/" + phase.evidenceFile))
        return try JSONDecoder().decode(JSONValue.self, from: data)
    }

    // MARK: the helm stand-in

    struct HelmState: Codable {
        struct Release: Codable {
            var status: String
            var revision: Int
            var chart = "karpenter"
            var chart_version = "1.8.3"
            var app_version = "1.8.3"
            var last_deployed: String
        }
        struct Plan: Codable {
            var outcome = "succeed"
            var ready = true
            var deployment = "karpenter"
            var label = "karpenter"
            var replicas = 2
            var message = "context deadline exceeded"
            var rollback_to: String?
        }
        var version = "v3.14.4+g81c902a"
        var releases: [String: Release] = [:]
        var upgrade = Plan()
    }

    func writeHelmState(_ state: HelmState) throws {
        try AtomicFile.write(try JSONEncoder().encode(state), to: helmState)
    }

    func helmRelease(_ status: String, revision: Int = 2, age: TimeInterval = 3600, plan: HelmState.Plan = .init(), version: String? = nil) throws {
        var state = HelmState()
        state.releases["kube-system/karpenter"] = .init(
            status: status, revision: revision, last_deployed: Timestamp.iso8601(Date().addingTimeInterval(-age)))
        state.upgrade = plan
        if let version { state.version = version }
        try writeHelmState(state)
    }

    func helmPlan(_ plan: HelmState.Plan, version: String? = nil) throws {
        var state = try JSONDecoder().decode(HelmState.self, from: Data(contentsOf: URL(fileURLWithPath: helmState)))
        state.upgrade = plan
        if let version { state.version = version }
        try writeHelmState(state)
    }

    /// The stand-in's recorded calls (argv lists).
    var helmCallArgs: [[String]] {
        guard let text = try? String(contentsOfFile: helmCalls, encoding: .utf8) else { return [] }
        struct Call: Decodable { var argv: [String] }
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Call.self, from: Data($0.utf8)).argv }
    }

    var helmUpgrades: [[String]] { helmCallArgs.filter { $0.first == "upgrade" } }

    // MARK: the cluster

    func node(_ name: String, ready: Bool) async throws {
        try await kubectl.apply(yaml: "apiVersion: v1\nkind: Node\nmetadata: {name: \(name)}\n")
        let status = #"{"status":{"conditions":[{"type":"Ready","status":"\#(ready ? "True" : "False")","reason":"KubeletReady"}]}}"#
        try await kubectl.patch("nodes", name: name, status, subresource: "status")
    }

    func deployment(_ name: String, namespace: String, replicas: Int, ready: Int, label: String? = nil) async throws {
        let label = label ?? name
        try await kubectl.apply(
            yaml: """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: \(name), namespace: \(namespace), labels: {app.kubernetes.io/name: \(label)}}
                spec:
                  replicas: \(replicas)
                  selector: {matchLabels: {app.kubernetes.io/name: \(label)}}
                  template:
                    metadata: {labels: {app.kubernetes.io/name: \(label)}}
                    spec: {containers: [{name: main, image: example.invalid/x:1}]}
                """)
        let deployment = try await kubectl.get(Deployment.self, name: name, namespace: namespace)
        let status =
            #"{"status":{"replicas":\#(replicas),"readyReplicas":\#(ready),"updatedReplicas":\#(replicas),"availableReplicas":\#(ready),"observedGeneration":\#(deployment.metadata.generation ?? 1)}}"#
        try await kubectl.patch("deployments.apps", name: name, namespace: namespace, status, subresource: "status")
    }

    /// A healthy platform: `count` Ready nodes and CoreDNS 2/2.
    func healthyPlatform(nodes count: Int = 2) async throws {
        for i in 0..<count { try await node("ip-10-0-1-\(i + 10).ec2.internal", ready: true) }
        try await deployment("coredns", namespace: "kube-system", replicas: 2, ready: 2, label: "kube-dns")
    }

    /// A Pending controller pod with a scheduling event tied to its uid (as the scheduler writes it).
    func pendingControllerPod(_ name: String, event message: String) async throws {
        try await kubectl.apply(
            yaml: """
                apiVersion: v1
                kind: Pod
                metadata: {name: \(name), namespace: kube-system, labels: {app.kubernetes.io/name: karpenter}}
                spec: {containers: [{name: controller, image: public.ecr.aws/karpenter/controller:1.8.3}]}
                """)
        let pod = try await kubectl.get(Pod.self, name: name, namespace: "kube-system")
        let uid = try #require(pod.metadata.uid)
        try await kubectl.apply(
            yaml: """
                apiVersion: v1
                kind: Event
                metadata: {name: \(name).1, namespace: kube-system}
                involvedObject: {kind: Pod, name: \(name), namespace: kube-system, uid: "\(uid)", apiVersion: v1}
                reason: FailedScheduling
                type: Warning
                message: "\(message)"
                source: {component: default-scheduler}
                count: 3
                firstTimestamp: "2026-01-24T10:00:00Z"
                lastTimestamp: "2026-01-24T10:05:00Z"
                """)
    }

    /// The Karpenter CRDs of the testbed.
    func karpenterCRDs() async throws {
        let crds = BuiltProducts.repositoryRoot + "/Tools/testbed/kube-emulator/crds/karpenter.yaml"
        try await kubectl.apply(yaml: try String(contentsOfFile: crds, encoding: .utf8))
        _ = try await kubectl.wait(
            for: CustomResourceDefinition.self, name: "nodepools.karpenter.sh", timeout: .seconds(20), interval: .milliseconds(200)
        ) {
            $0.isEstablished
        }
    }
}

/// `aws` (awscli) against the testbed's moto, for test setup.
func awsCLI(_ testbed: Testbed, _ args: [String]) async throws -> String {
    let result = try await LocalRunner(environment: testbed.processEnvironment).run(
        Command("aws", args + ["--output", "json"]), options: RunOptions(timeout: .seconds(60)))
    guard result.succeeded else { throw SetupError("aws \(args.joined(separator: " ")): \(result.stderrText)") }
    return result.stdoutText
}

extension JSONValue {
    /// `a.b.c` lookup.
    func at(_ path: String) -> JSONValue? {
        var value: JSONValue? = self
        for key in path.split(separator: ".") {
            if case .array(let items)? = value, let index = Int(key) {
                value = index < items.count ? items[index] : nil
            } else {
                value = value?[String(key)]
            }
        }
        return value
    }
    var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    var number: Double? { if case .number(let n) = self { return n } else { return nil } }
    var array: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
}
