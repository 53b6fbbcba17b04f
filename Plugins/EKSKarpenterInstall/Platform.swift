import Foundation
import KhCore
import KhKube

/// The runbook's platform health result: nodes and CoreDNS.
public struct PlatformHealth: Codable, Sendable, Equatable {
    public struct Nodes: Codable, Sendable, Equatable {
        public var total: Int
        public var ready: Int
        public var notReady: Int
    }
    public struct Replicas: Codable, Sendable, Equatable {
        public var ready: Int
        public var desired: Int
    }
    public struct CoreDNS: Codable, Sendable, Equatable {
        public var found: Bool
        public var ready: Bool
        public var replicas: Replicas
    }
    public var healthy: Bool
    public var nodes: Nodes
    public var coredns: CoreDNS
    public var blockers: [Blocker]
}

/// A controller pod stuck Pending and the events that say why.
public struct PendingPod: Codable, Sendable, Equatable {
    public var name: String
    public var events: String
}

/// Cluster checks through kubectl.
public struct ClusterProbe: Sendable {
    public var kubectl: Kubectl

    public init(kubectl: Kubectl) { self.kubectl = kubectl }

    /// Node counts and readiness.
    public func nodes() async throws -> PlatformHealth.Nodes {
        let nodes = try await kubectl.list(Node.self)
        let ready = nodes.filter(\.isReady).count
        return PlatformHealth.Nodes(total: nodes.count, ready: ready, notReady: nodes.count - ready)
    }

    /// Step 1 of phase 3: nodes exist and are Ready, CoreDNS is Ready.
    public func platformHealth() async throws -> PlatformHealth {
        let nodes = try await nodes()
        let coredns = try await kubectl.getIfPresent(Deployment.self, name: "coredns", namespace: "kube-system")
        let desired = coredns?.spec?.replicas ?? 0
        let readyReplicas = coredns?.status?.readyReplicas ?? 0
        let corednsReady = coredns != nil && readyReplicas >= max(1, desired)
        var blockers: [Blocker] = []
        let fix = "run `kh install phase1` (foundation) and check the node group: `kubectl get nodes`"
        if nodes.total == 0 {
            blockers.append(Blocker(.noNodesAvailable, "the cluster has no nodes: Karpenter's controller pods cannot be scheduled", remediation: fix))
        } else if nodes.ready == 0 {
            blockers.append(
                Blocker(.noReadyNodes, "none of the cluster's \(nodes.total) node(s) is Ready: pods cannot be scheduled", remediation: fix))
        }
        if coredns == nil {
            blockers.append(
                Blocker(
                    .phase1Incomplete, "CoreDNS (deployment kube-system/coredns) is missing: the cluster is not ready for workloads",
                    remediation: "finish phase 1 (foundation): the EKS coredns add-on must be installed and Ready"))
        } else if !corednsReady {
            blockers.append(
                Blocker(
                    .phase1Incomplete, "CoreDNS has \(readyReplicas)/\(desired) ready replicas: the cluster is not ready for workloads",
                    remediation: "fix phase 1 (foundation): `kubectl -n kube-system describe deployment coredns`"))
        }
        return PlatformHealth(
            healthy: blockers.isEmpty, nodes: nodes,
            coredns: .init(found: coredns != nil, ready: corednsReady, replicas: .init(ready: readyReplicas, desired: desired)), blockers: blockers)
    }

    /// The controller deployment, if present.
    public func controller(name: String, namespace: String) async throws -> Deployment? {
        try await kubectl.getIfPresent(Deployment.self, name: name, namespace: namespace)
    }

    /// Polls the controller deployment until Ready or the deadline.
    public func waitForController(name: String, namespace: String, timeout: Duration, interval: Duration, clock: KhClock) async throws -> Bool {
        let start = clock.now()
        while true {
            if let deployment = try await controller(name: name, namespace: namespace), deployment.isReady { return true }
            let elapsed = clock.now().timeIntervalSince(start)
            if elapsed >= timeout.seconds { return false }
            try await clock.sleep(min(interval, .milliseconds(Int64(max(0, timeout.seconds - elapsed) * 1000))))
        }
    }

    /// Step 5 of phase 3: Pending pods matching the selector, each with the Events
    /// section of `kubectl describe pod` (its last 15 lines).
    public func pendingPods(selector: String, namespace: String) async throws -> [PendingPod] {
        let pods = try await kubectl.list(Pod.self, in: .named(namespace), labelSelector: selector)
        var pending: [PendingPod] = []
        for pod in pods where (pod.status?.phase ?? "Pending") == "Pending" {
            let events = try await podEvents(pod.metadata.name, namespace: namespace)
            pending.append(PendingPod(name: pod.metadata.name, events: events))
        }
        return pending
    }

    /// The Events section of `kubectl describe pod`, last 15 lines.
    public func podEvents(_ pod: String, namespace: String) async throws -> String {
        let text = String(decoding: try await kubectl.run(["describe", "pod", pod, "-n", namespace]), as: UTF8.self)
        return Self.eventsSection(text)
    }

    /// The lines after `Events:` (at most the last 15), trimmed.
    public static func eventsSection(_ describe: String) -> String {
        let lines = describe.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = lines.firstIndex(where: { $0.hasPrefix("Events:") }) else { return "" }
        let header = lines[start].dropFirst("Events:".count).trimmingCharacters(in: .whitespaces)
        let body = lines[(start + 1)...].filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        let kept = body.suffix(15).map { $0.trimmingCharacters(in: .whitespaces) }
        if kept.isEmpty { return header }
        return kept.joined(separator: "\n")
    }
}
