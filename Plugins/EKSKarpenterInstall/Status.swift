import Foundation
import KhCore
import KhKube

/// What `kh install status` reports.
public struct InstallStatusReport: Codable, Sendable, Equatable {
    public struct Karpenter: Codable, Sendable, Equatable {
        public var version: String
        public var namespace: String
        public var controllerFound: Bool
        public var controllerReady: Bool
        public var controllerReplicas: PlatformHealth.Replicas
    }
    public struct Release: Codable, Sendable, Equatable {
        public var name: String
        public var exists: Bool
        public var status: String
        public var revision: Int
        public var chartVersion: String?
        public var appVersion: String?
        public var lastDeployed: Date?
    }
    public var cluster: String
    public var karpenter: Karpenter
    public var nodes: PlatformHealth.Nodes
    public var helm: Release
    /// Helm `deployed`, controller Ready and at least one Ready node.
    public var healthy: Bool
    /// What could not be read (helm missing, …).
    public var problems: [String]

    public var text: String {
        var lines = [
            "cluster: \(cluster)",
            "karpenter: \(karpenter.version) in \(karpenter.namespace)",
            "controller: "
                + (karpenter.controllerFound
                    ? "\(karpenter.controllerReady ? "Ready" : "not Ready") (\(karpenter.controllerReplicas.ready)/\(karpenter.controllerReplicas.desired) replicas)"
                    : "not found"),
            "nodes: \(nodes.ready)/\(nodes.total) Ready",
            "helm release \(helm.name): " + (helm.exists ? "\(helm.status), revision \(helm.revision)" : "not installed"),
            "healthy: \(healthy ? "yes" : "no")",
        ]
        lines += problems.map { "problem: \($0)" }
        return lines.joined(separator: "\n")
    }

    /// Reads the state: nodes and the controller through kubectl, the release through helm.
    public static func gather(settings: InstallSettings, deps: InstallDependencies) async throws -> InstallStatusReport {
        let probe = ClusterProbe(kubectl: deps.kubectl)
        let nodes = try await probe.nodes()
        let namespace = settings.karpenter.namespace
        let controller = try await probe.controller(name: settings.karpenter.controllerDeployment, namespace: namespace)
        var problems: [String] = []
        var release: HelmRelease?
        do {
            release = try await deps.helm.status(release: settings.karpenter.release, namespace: namespace)
        } catch {
            problems.append("helm: \(error)")
        }
        let helm = Release(
            name: settings.karpenter.release, exists: release != nil, status: release?.statusText ?? "absent", revision: release?.revision ?? 0,
            chartVersion: release?.chartVersion, appVersion: release?.appVersion, lastDeployed: release?.lastDeployed)
        let karpenter = Karpenter(
            version: release?.chartVersion ?? settings.karpenter.version, namespace: namespace, controllerFound: controller != nil,
            controllerReady: controller?.isReady ?? false,
            controllerReplicas: .init(ready: controller?.status?.readyReplicas ?? 0, desired: controller?.spec?.replicas ?? 0))
        return InstallStatusReport(
            cluster: settings.clusterName, karpenter: karpenter, nodes: nodes, helm: helm,
            healthy: release?.status == .deployed && karpenter.controllerReady && nodes.ready > 0, problems: problems)
    }
}
