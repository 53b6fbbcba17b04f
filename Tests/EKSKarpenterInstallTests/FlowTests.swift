import EKSKarpenterInstall
import Foundation
import KhCore
import KhKube
import KhProcess
import KhTestSupport
import Testing

extension InstallTests {
    /// Plays Karpenter for phase 4: once the test deployment is scaled up, a NodeClaim of the NodePool appears.
    func simulateKarpenter(_ bed: Bed, nodePool: String = "default") -> Task<Void, any Error> {
        Task {
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if let deployment = try await bed.kubectl.getIfPresent(Deployment.self, name: "kh-karpenter-inflate", namespace: "default"),
                    (deployment.spec?.replicas ?? 0) > 0
                {
                    try await bed.kubectl.apply(
                        yaml: """
                            apiVersion: karpenter.sh/v1
                            kind: NodeClaim
                            metadata: {name: \(nodePool)-x7k2p, labels: {karpenter.sh/nodepool: \(nodePool)}}
                            spec: {nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}}
                            """)
                    try await bed.kubectl.patch(
                        "nodeclaims.karpenter.sh", name: "\(nodePool)-x7k2p",
                        #"{"status":{"nodeName":"ip-10-0-9-9.ec2.internal","conditions":[{"type":"Launched","status":"True","reason":"Launched"}]}}"#,
                        subresource: "status")
                    return
                }
                try await Task.sleep(for: .milliseconds(150))
            }
        }
    }

    @Test("phase 4: NodePool and EC2NodeClass applied from config, the test deployment scaled by patch, a NodeClaim seen, then cleaned up")
    func phase4NodeClaim() async throws {
        let bed = try await Bed()
        try await bed.healthyPlatform()
        try await bed.karpenterCRDs()
        try await bed.deployment("karpenter", namespace: "kube-system", replicas: 2, ready: 2)
        let karpenter = simulateKarpenter(bed)
        let config = bed.config { $0.thresholds.nodeClaimWait = KhDuration(.seconds(20)) }
        let (result, run, _) = try await bed.run([.verify], config: config)
        try await karpenter.value
        #expect(result.status == .ok, "\(result.text)")
        let doc = try bed.document(run, .verify)
        #expect(doc.at("evidence.nodeClaim.appeared")?.bool == true)
        #expect(doc.at("evidence.nodeClaim.name")?.stringValue == "default-x7k2p")
        #expect(doc.at("evidence.nodeClaim.launched")?.bool != nil, "Launched as first seen (the claim may appear before its status)")
        #expect(doc.at("evidence.testDeployment.scaled")?.bool == true)
        #expect(doc.at("evidence.cleanedUp")?.bool == true)
        let pool = try await bed.kubectl.get(NodePool.self, name: "default")
        #expect(pool.spec?.template?.spec?.nodeClassRef?.name == "default")
        #expect(pool.spec?.template?.spec?.requirements?.contains { $0.key == "karpenter.sh/capacity-type" } == true)
        let nodeClass = try await bed.kubectl.get(EC2NodeClass.self, name: "default")
        #expect(nodeClass.spec?.role == "KarpenterNodeRole-\(bed.cluster)")
        #expect(nodeClass.spec?.subnetSelectorTerms?.first?.tags?["karpenter.sh/discovery"] == bed.cluster)
        #expect(try await bed.kubectl.getIfPresent(Deployment.self, name: "kh-karpenter-inflate", namespace: "default") == nil)
        let commands = (doc.at("commands")?.array ?? []).compactMap { $0["command"]?.stringValue }
        #expect(commands.contains { $0.contains("patch deployments.apps kh-karpenter-inflate") })
        #expect(!commands.contains { $0.contains(" scale ") }, "scale is protobuf-only on the emulator; kh patches")
    }

    @Test("phase 4: no NodeClaim within the deadline is NO_NODECLAIM (exit 1); the test deployment is still removed")
    func phase4NoNodeClaim() async throws {
        let bed = try await Bed()
        try await bed.healthyPlatform()
        try await bed.karpenterCRDs()
        try await bed.deployment("karpenter", namespace: "kube-system", replicas: 1, ready: 1)
        let (result, run, _) = try await bed.run([.verify], config: bed.config())
        #expect(result.blockers.map(\.code) == ["NO_NODECLAIM"])
        #expect(result.exitCode == .checkFailed)
        #expect(try bed.document(run, .verify).at("evidence.cleanedUp")?.bool == true)
        #expect(try await bed.kubectl.getIfPresent(Deployment.self, name: "kh-karpenter-inflate", namespace: "default") == nil)
    }

    @Test("phase 4 before Karpenter is installed: blocked_phase KARPENTER_NOT_INSTALLED, next fix compute")
    func phase4Blocked() async throws {
        let bed = try await Bed()
        try await bed.healthyPlatform()
        let (result, _, _) = try await bed.run([.verify], config: bed.config())
        #expect(result.status == .blockedPhase)
        #expect(result.next == .init(action: .fix, phase: .compute))
    }

    @Test("all: every phase in order against moto, the emulator and the stand-in; a second run re-verifies each phase and redoes none")
    func allResumable() async throws {
        let bed = try await Bed()
        let world = try await MotoWorld.make(bed)
        try await bed.healthyPlatform()
        try await bed.karpenterCRDs()
        let config = bed.config {
            world.configure(&$0)
            $0.thresholds.nodeClaimWait = KhDuration(.seconds(20))
            $0.thresholds.controllerWait = KhDuration(.seconds(5))
        }
        let karpenter = simulateKarpenter(bed)
        let (first, run, output) = try await bed.run(InstallPhase.allCases, config: config, resume: true)
        try await karpenter.value
        #expect(first.status == .ok, "\(first.text)\n\(output.stderr)")
        #expect(first.phase == .verify)
        #expect(first.next == .init(action: .continue, phase: nil))
        #expect(first.resumed.isEmpty)
        #expect(Set(first.evidence.keys) == ["foundation", "prerequisites", "compute", "verify"])
        for phase in InstallPhase.allCases {
            #expect(FileManager.default.fileExists(atPath: run.directory + "/" + phase.evidenceFile), "\(phase.evidenceFile)")
        }
        let resultFile = try Data(contentsOf: URL(fileURLWithPath: run.directory + "/install-result.json"))
        let json = try JSONDecoder().decode(JSONValue.self, from: resultFile)
        #expect(json.at("status")?.stringValue == "ok")
        #expect(json.at("next.action")?.stringValue == "continue")
        #expect(bed.helmUpgrades.count == 1)

        // Second run: everything re-verified from the first run's evidence, nothing redone.
        let (second, run2, _) = try await bed.run(InstallPhase.allCases, config: config, resume: true)
        #expect(second.status == .ok, "\(second.text)")
        #expect(second.resumed == InstallPhase.allCases)
        #expect(bed.helmUpgrades.count == 1, "phase 3 was not redone")
        let doc = try bed.document(run2, .prerequisites)
        #expect(doc.at("verifiedOnly")?.bool == true)
        #expect(doc.at("warnings.0")?.stringValue?.contains(run.runID) == true)
        let commands = (doc.at("commands")?.array ?? []).compactMap { $0["command"]?.stringValue }
        #expect(!commands.contains { $0.contains(" Create") })

        // The controller breaks: phase 3 fails re-verification and is redone (repaired), the rest stays verified.
        try bed.helmRelease("failed", revision: 9)
        let (third, run3, _) = try await bed.run(InstallPhase.allCases, config: config, resume: true)
        #expect(third.resumed.contains(.foundation) && third.resumed.contains(.prerequisites) && !third.resumed.contains(.compute))
        #expect(bed.helmUpgrades.count == 2)
        #expect(try bed.document(run3, .compute).at("evidence.karpenter.repairSucceeded")?.bool == true)
        #expect(third.status == .ok, "\(third.text)")
    }

    @Test("all stops at the first phase not done: a cluster without nodes stops at foundation with NO_NODES_CREATED")
    func allStopsEarly() async throws {
        let bed = try await Bed()
        let world = try await MotoWorld.make(bed)
        let (result, run, _) = try await bed.run(InstallPhase.allCases, config: bed.config { world.configure(&$0) }, resume: true)
        #expect(result.phase == .foundation)
        #expect(result.blockers.first?.code == "NO_NODES_CREATED")
        #expect(!FileManager.default.fileExists(atPath: run.directory + "/" + InstallPhase.prerequisites.evidenceFile))
    }

    @Test("status: version, namespace, controller readiness, nodes, Helm status and revision")
    func status() async throws {
        let bed = try await Bed()
        try await bed.healthyPlatform(nodes: 2)
        try await bed.node("ip-10-0-3-3.ec2.internal", ready: false)
        try bed.helmRelease("deployed", revision: 6)
        try await bed.deployment("karpenter", namespace: "kube-system", replicas: 2, ready: 2)
        let output = Output()
        let context = bed.context(output: output)
        let settings = try InstallSettings.resolve(
            config: bed.config(), options: try InstallOptions.parse([]), environment: context.environment, configPath: nil)
        let report = try await InstallStatusReport.gather(settings: settings, deps: .live(context: context, settings: settings))
        #expect(report.karpenter.version == "1.8.3")
        #expect(report.karpenter.namespace == "kube-system")
        #expect(report.karpenter.controllerReady)
        #expect(report.karpenter.controllerReplicas.ready == 2 && report.karpenter.controllerReplicas.desired == 2)
        #expect(report.nodes.total == 3 && report.nodes.ready == 2 && report.nodes.notReady == 1)
        #expect(report.helm.status == "deployed" && report.helm.revision == 6)
        #expect(report.healthy)
        #expect(report.text.contains("helm release karpenter: deployed, revision 6"))
    }
}
