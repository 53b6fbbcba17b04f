import Foundation
import KhCore
import KhKube

/// Phase 4 (verify provisioning) evidence.
public struct Phase4Evidence: Codable, Sendable, Equatable {
    public struct Applied: Codable, Sendable, Equatable {
        public var name = ""
        public var present = false
        public var applied = false
    }
    public struct TestDeployment: Codable, Sendable, Equatable {
        public var name = ""
        public var namespace = ""
        public var replicas = 0
        public var scaled = false
    }
    public struct Claim: Codable, Sendable, Equatable {
        public var appeared = false
        public var name: String?
        public var launched = false
        public var nodeName: String?
        public var waitedSeconds = 0.0
    }
    public var controllerReady = false
    public var nodePool = Applied()
    public var ec2NodeClass = Applied()
    public var testDeployment = TestDeployment()
    public var nodeClaim = Claim()
    public var cleanedUp = false
}

extension InstallPhases {
    /// The NodePool manifest from config.
    public static func nodePoolYAML(_ settings: InstallSettings) -> String {
        let spec = settings.config.nodePool
        let requirements = spec.requirements.map { r in
            "{key: \(quoted(r.key)), operator: \(r.operator), values: [\(r.values.map(quoted).joined(separator: ", "))]}"
        }.joined(separator: ", ")
        let limits = spec.limits.sorted { $0.key < $1.key }.map { "\($0.key): \(quoted($0.value))" }.joined(separator: ", ")
        return """
            apiVersion: karpenter.sh/v1
            kind: NodePool
            metadata:
              name: \(quoted(spec.name))
              labels: {app.kubernetes.io/managed-by: kh}
            spec:
              template:
                spec:
                  nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: \(quoted(settings.config.ec2NodeClass.name))}
                  requirements: [\(requirements)]
              limits: {\(limits)}
              disruption:
                consolidationPolicy: \(spec.consolidationPolicy)
                consolidateAfter: \(quoted(spec.consolidateAfter))

            """
    }

    /// The EC2NodeClass manifest from config: subnets and security groups by the discovery tag.
    public static func ec2NodeClassYAML(_ settings: InstallSettings) -> String {
        let spec = settings.config.ec2NodeClass
        let tag = "{karpenter.sh/discovery: \(quoted(settings.clusterName))}"
        return """
            apiVersion: karpenter.k8s.aws/v1
            kind: EC2NodeClass
            metadata:
              name: \(quoted(spec.name))
              labels: {app.kubernetes.io/managed-by: kh}
            spec:
              role: \(quoted(spec.role ?? settings.nodeRoleName))
              amiSelectorTerms: [{alias: \(quoted(spec.amiAlias))}]
              subnetSelectorTerms: [{tags: \(tag)}]
              securityGroupSelectorTerms: [{tags: \(tag)}]

            """
    }

    /// The test deployment: pause pods that only fit on a node of the NodePool.
    public static func testDeploymentYAML(_ settings: InstallSettings, replicas: Int) -> String {
        let spec = settings.config.testDeployment
        return """
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: \(quoted(spec.name))
              namespace: \(quoted(spec.namespace))
              labels: {app.kubernetes.io/managed-by: kh, app: \(quoted(spec.name))}
            spec:
              replicas: \(replicas)
              selector: {matchLabels: {app: \(quoted(spec.name))}}
              template:
                metadata: {labels: {app: \(quoted(spec.name))}}
                spec:
                  terminationGracePeriodSeconds: 0
                  nodeSelector: {karpenter.sh/nodepool: \(quoted(settings.config.nodePool.name))}
                  containers:
                  - name: pause
                    image: \(quoted(spec.image))
                    resources: {requests: {cpu: \(quoted(spec.cpu))}}

            """
    }

    static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// Phase 4: apply the NodePool and EC2NodeClass, scale a test deployment up (apply
    /// at 0, then patch the replicas), wait with a deadline for a NodeClaim of the
    /// NodePool, then scale down and delete the deployment.
    public static func verifyProvisioning(settings: InstallSettings, deps: InstallDependencies, verifyOnly: Bool) async -> PhaseOutcome {
        var ev = Phase4Evidence()
        var blockers: [Blocker] = []
        var warnings: [String] = []
        func done() -> PhaseOutcome {
            PhaseOutcome(
                phase: .verify, ok: blockers.isEmpty, evidence: (try? JSONValue(encoding: ev)) ?? .null, blockers: blockers, warnings: warnings,
                commands: deps.ledger.drain(), verifiedOnly: verifyOnly)
        }
        let kubectl = deps.kubectl
        let poolName = settings.config.nodePool.name
        let className = settings.config.ec2NodeClass.name
        ev.nodePool.name = poolName
        ev.ec2NodeClass.name = className
        let test = settings.config.testDeployment
        ev.testDeployment = .init(name: test.name, namespace: test.namespace, replicas: test.replicas, scaled: false)

        // Karpenter must be installed: controller Ready and its CRDs served.
        do {
            let controller = try await ClusterProbe(kubectl: kubectl).controller(
                name: settings.karpenter.controllerDeployment, namespace: settings.karpenter.namespace)
            ev.controllerReady = controller?.isReady ?? false
            let crd = try await kubectl.getIfPresent(CustomResourceDefinition.self, name: "nodepools.karpenter.sh")
            guard ev.controllerReady, crd?.isEstablished == true else {
                blockers.append(
                    Blocker(
                        .karpenterNotInstalled,
                        "Karpenter is not ready: controller \(ev.controllerReady ? "Ready" : "not Ready"), NodePool CRD \(crd == nil ? "missing" : "present")",
                        remediation: "run `kh install phase3`"))
                return done()
            }
            ev.nodePool.present = try await kubectl.getIfPresent(NodePool.self, name: poolName) != nil
            ev.ec2NodeClass.present = try await kubectl.getIfPresent(EC2NodeClass.self, name: className) != nil
        } catch {
            blockers.append(Blocker(.kubernetesUnreachable, "\(error)"))
            return done()
        }
        if verifyOnly {
            if !ev.nodePool.present || !ev.ec2NodeClass.present {
                blockers.append(
                    Blocker(
                        .noNodeClaim, "NodePool \(poolName) or EC2NodeClass \(className) is missing; dry run: not applied",
                        remediation: "run `kh install phase4 --yes`"))
            }
            return done()
        }
        do {
            try await kubectl.apply(yaml: ec2NodeClassYAML(settings))
            ev.ec2NodeClass.applied = true
            try await kubectl.apply(yaml: nodePoolYAML(settings))
            ev.nodePool.applied = true
        } catch {
            blockers.append(Blocker(.nodeClassApplyFailed, "applying the EC2NodeClass/NodePool failed: \(error)"))
            return done()
        }

        let started = deps.clock.now()
        let before: Set<String>
        do {
            before = Set(try await kubectl.list(NodeClaim.self, labelSelector: "karpenter.sh/nodepool=\(poolName)").map(\.metadata.name))
            deps.console.progress("phase4: scaling \(test.namespace)/\(test.name) to \(test.replicas) replicas")
            try await kubectl.apply(yaml: testDeploymentYAML(settings, replicas: 0))
            try await kubectl.patch("deployments.apps", name: test.name, namespace: test.namespace, #"{"spec":{"replicas":\#(test.replicas)}}"#)
            ev.testDeployment.scaled = true
        } catch {
            blockers.append(Blocker(.kubernetesUnreachable, "could not create the test deployment: \(error)"))
            await cleanUp(settings: settings, deps: deps, ev: &ev, warnings: &warnings)
            return done()
        }

        // Wait, with a deadline, for Karpenter to launch a NodeClaim for the pending pods.
        let wait = settings.thresholds.nodeClaimWait.duration.seconds
        do {
            while true {
                let claims = try await kubectl.list(NodeClaim.self, labelSelector: "karpenter.sh/nodepool=\(poolName)")
                if let claim = claims.first(where: { !before.contains($0.metadata.name) }) {
                    ev.nodeClaim.appeared = true
                    ev.nodeClaim.name = claim.metadata.name
                    ev.nodeClaim.launched = claim.status?.conditions?.isTrue("Launched") ?? false
                    ev.nodeClaim.nodeName = claim.status?.nodeName
                    break
                }
                let elapsed = deps.clock.now().timeIntervalSince(started)
                if elapsed >= wait { break }
                try await deps.clock.sleep(min(settings.thresholds.pollInterval.duration, .seconds(max(0.001, wait - elapsed))))
            }
        } catch {
            warnings.append("polling NodeClaims failed: \(error)")
        }
        ev.nodeClaim.waitedSeconds = (deps.clock.now().timeIntervalSince(started) * 10).rounded() / 10
        if !ev.nodeClaim.appeared {
            blockers.append(
                Blocker(
                    .noNodeClaim,
                    "no NodeClaim for NodePool \(poolName) appeared within \(settings.thresholds.nodeClaimWait) after scaling \(test.name) to \(test.replicas)",
                    remediation:
                        "`kubectl -n \(settings.karpenter.namespace) logs deploy/\(settings.karpenter.controllerDeployment)`; check the EC2NodeClass status and the discovery tags"
                ))
        }
        await cleanUp(settings: settings, deps: deps, ev: &ev, warnings: &warnings)
        return done()
    }

    static func cleanUp(settings: InstallSettings, deps: InstallDependencies, ev: inout Phase4Evidence, warnings: inout [String]) async {
        let test = settings.config.testDeployment
        do {
            try? await deps.kubectl.patch("deployments.apps", name: test.name, namespace: test.namespace, #"{"spec":{"replicas":0}}"#)
            try await deps.kubectl.delete("deployments.apps", name: test.name, namespace: test.namespace, ignoreNotFound: true)
            ev.cleanedUp = true
        } catch {
            warnings.append("could not delete the test deployment \(test.namespace)/\(test.name): \(error)")
        }
    }
}
