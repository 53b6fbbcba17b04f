import Foundation
import KhCore
import KhKube
import KhProcess

/// Phase 1 (foundation) evidence: the runbook's `Phase1Evidence` (`eks.nodeCount`,
/// `eks.nodesReady`) with how the cluster came to be and the kubeconfig step.
public struct Phase1Evidence: Codable, Sendable, Equatable {
    public struct Nodegroup: Codable, Sendable, Equatable {
        public var name: String
        public var status: String
        public var desiredSize: Int
    }
    public struct EKS: Codable, Sendable, Equatable {
        public var clusterName = ""
        public var region = ""
        public var existed = false
        public var created = false
        /// eksctl | eks-api, when created.
        public var createdWith: String?
        public var status = ""
        public var endpoint: String?
        public var version: String?
        public var nodegroups: [Nodegroup] = []
        public var nodegroupCreated = false
        public var kubeconfigUpdated = false
        public var kubeconfigContext: String?
        public var nodeCount = 0
        public var nodesReady = 0
        public var nodeWaitSeconds = 0.0
    }
    public var eks = EKS()
}

extension InstallPhases {
    /// Phase 1: the cluster exists (or is created), is ACTIVE, kubeconfig is updated,
    /// and nodes register and turn Ready within the deadline.
    public static func foundation(settings: InstallSettings, deps: InstallDependencies, verifyOnly: Bool) async -> PhaseOutcome {
        var ev = Phase1Evidence()
        ev.eks.clusterName = settings.clusterName
        ev.eks.region = settings.region ?? ""
        var blockers: [Blocker] = []
        var warnings: [String] = []
        func done() -> PhaseOutcome {
            PhaseOutcome(
                phase: .foundation, ok: blockers.isEmpty, evidence: (try? JSONValue(encoding: ev)) ?? .null, blockers: blockers, warnings: warnings,
                commands: deps.ledger.drain(), verifiedOnly: verifyOnly)
        }
        let name = settings.clusterName
        let console = deps.console
        do {
            let aws = try deps.aws()
            let region = try settings.requireRegion()
            var cluster = try await aws.describeCluster(name)
            ev.eks.existed = cluster != nil
            if cluster == nil {
                guard !verifyOnly, settings.config.cluster.create else {
                    blockers.append(
                        Blocker(
                            .clusterNotFound, "EKS cluster \(name) does not exist in \(region)" + (verifyOnly ? "; dry run: not created" : ""),
                            remediation: verifyOnly ? "run `kh install phase1 --yes`" : "set install.cluster.create: true, or create it"))
                    return done()
                }
                cluster = try await createCluster(settings: settings, deps: deps, aws: aws, region: region, ev: &ev, blockers: &blockers)
                guard cluster != nil, blockers.isEmpty else { return done() }
            }
            // The cluster must be ACTIVE (poll while CREATING, with a deadline).
            let deadline = deps.clock.now().addingTimeInterval(settings.thresholds.nodeWait.duration.seconds)
            while let current = cluster, current.status == "CREATING", deps.clock.now() < deadline {
                console.progress("phase1: cluster \(name) is CREATING; polling")
                try await deps.clock.sleep(settings.thresholds.pollInterval.duration)
                cluster = try await aws.describeCluster(name)
            }
            ev.eks.status = cluster?.status ?? "absent"
            ev.eks.endpoint = cluster?.endpoint
            ev.eks.version = cluster?.version
            guard cluster?.status == "ACTIVE" else {
                blockers.append(
                    Blocker(
                        .clusterNotActive, "EKS cluster \(name) is \(ev.eks.status), not ACTIVE",
                        remediation: "`aws eks describe-cluster --name \(name)`; wait for ACTIVE or fix the failure it shows"))
                return done()
            }
            for group in try await aws.listNodegroups(cluster: name) {
                if let described = try await aws.describeNodegroup(cluster: name, name: group) {
                    ev.eks.nodegroups.append(
                        .init(name: group, status: described.status ?? "", desiredSize: described.scalingConfig?.desiredSize ?? 0))
                }
            }
        } catch let error as KhError {
            blockers.append(Blocker(error.exitCode == .usage ? .missingCredentials : .awsAPIFailed, error.message, remediation: error.hint))
            return done()
        } catch {
            blockers.append(Blocker(.awsAPIFailed, "\(error)"))
            return done()
        }

        // kubeconfig: `aws eks update-kubeconfig` adds the cluster's context and makes it current.
        if settings.config.cluster.updateKubeconfig && !verifyOnly {
            var args = ["eks", "update-kubeconfig", "--name", name, "--region", ev.eks.region]
            if let kubeconfig = settings.config.kubeconfig { args += ["--kubeconfig", kubeconfig] }
            if let profile = settings.profile { args += ["--profile", profile] }
            do {
                let result = try await deps.runner.run(Command("aws", args), options: RunOptions(timeout: .seconds(60), redactor: deps.redactor))
                if result.succeeded {
                    ev.eks.kubeconfigUpdated = true
                    ev.eks.kubeconfigContext =
                        result.stdoutText.components(separatedBy: "context ").dropFirst().first?
                        .components(separatedBy: " ").first
                } else {
                    blockers.append(
                        Blocker(.kubeconfigUpdateFailed, "aws eks update-kubeconfig failed (\(result.termination)): \(result.stderrText.suffix(400))")
                    )
                    return done()
                }
            } catch {
                blockers.append(
                    Blocker(.kubeconfigUpdateFailed, "aws eks update-kubeconfig could not run: \(error)", remediation: "install the AWS CLI"))
                return done()
            }
        }

        // Node initialization: poll with a deadline (not a fixed sleep).
        let probe = ClusterProbe(kubectl: deps.kubectl)
        let wait = verifyOnly ? 0 : settings.thresholds.nodeWait.duration.seconds
        let started = deps.clock.now()
        var nodes = PlatformHealth.Nodes(total: 0, ready: 0, notReady: 0)
        do {
            while true {
                nodes = try await probe.nodes()
                if nodes.ready >= settings.thresholds.minReadyNodes { break }
                let elapsed = deps.clock.now().timeIntervalSince(started)
                if elapsed >= wait { break }
                console.progress("phase1: \(nodes.ready)/\(nodes.total) nodes Ready; polling (\(Int(wait - elapsed))s left)")
                try await deps.clock.sleep(min(settings.thresholds.pollInterval.duration, .seconds(max(0.001, wait - elapsed))))
            }
        } catch {
            blockers.append(
                Blocker(.kubernetesUnreachable, "could not list nodes: \(error)", remediation: "check install.kubeconfig / install.context"))
            return done()
        }
        ev.eks.nodeWaitSeconds = (deps.clock.now().timeIntervalSince(started) * 10).rounded() / 10
        ev.eks.nodeCount = nodes.total
        ev.eks.nodesReady = nodes.ready
        if nodes.total == 0 {
            let how = ev.eks.created ? "EKS cluster created but no worker nodes found" : "EKS cluster \(name) has no worker nodes"
            blockers.append(
                Blocker(
                    .noNodesCreated, "\(how) after waiting \(Int(ev.eks.nodeWaitSeconds))s",
                    remediation: ev.eks.nodegroups.isEmpty
                        ? "the cluster has no node group: set install.cluster.nodegroup and re-run, or add one"
                        : "check the node groups (\(ev.eks.nodegroups.map { "\($0.name) \($0.status)" }.joined(separator: ", "))) and eksctl's log"))
        } else if nodes.ready < settings.thresholds.minReadyNodes {
            blockers.append(
                Blocker(
                    .nodesNotReady, "\(nodes.ready)/\(nodes.total) nodes Ready, \(settings.thresholds.minReadyNodes) needed",
                    remediation: "`kubectl describe nodes`"))
        }
        if ev.eks.nodegroups.isEmpty && nodes.total > 0 { warnings.append("no managed node group: nodes come from elsewhere") }
        return done()
    }

    /// Creates the cluster (eksctl when present, else the EKS API) and its node group.
    static func createCluster(
        settings: InstallSettings, deps: InstallDependencies, aws: any AWSAPI, region: String, ev: inout Phase1Evidence, blockers: inout [Blocker]
    ) async throws -> EKSCluster? {
        let name = settings.clusterName
        let spec = settings.config.cluster
        if spec.useEksctl && deps.hasTool("eksctl") {
            deps.console.progress("phase1: creating cluster \(name) with eksctl (this takes 15-20 minutes)")
            var args = [
                "create", "cluster", "--name", name, "--region", region, "--version", spec.kubernetesVersion, "--nodegroup-name", spec.nodegroup.name,
                "--node-type", spec.nodegroup.instanceTypes.first ?? "m5.large", "--nodes", String(spec.nodegroup.desiredSize), "--nodes-min",
                String(spec.nodegroup.minSize), "--nodes-max", String(spec.nodegroup.maxSize), "--managed",
            ]
            if let profile = settings.profile { args += ["--profile", profile] }
            let result = try await deps.runner.run(
                Command("eksctl", args), options: RunOptions(timeout: .seconds(3600), idleTimeout: .seconds(900), redactor: deps.redactor))
            ev.eks.createdWith = "eksctl"
            guard result.succeeded else {
                blockers.append(
                    Blocker(.clusterCreateFailed, "eksctl create cluster failed (\(result.summary)): \(result.stderrText.suffix(400))"))
                return nil
            }
            ev.eks.created = true
            ev.eks.nodegroupCreated = true
            return try await aws.describeCluster(name)
        }
        guard let role = spec.roleARN, !spec.subnetIDs.isEmpty else {
            blockers.append(
                Blocker(
                    .clusterCreateFailed,
                    "cannot create cluster \(name) through the EKS API: install.cluster.role_arn and install.cluster.subnet_ids are required (eksctl is not on PATH)",
                    remediation: "set them in the config, or install eksctl"))
            return nil
        }
        deps.console.progress("phase1: creating cluster \(name) through the EKS API")
        ev.eks.createdWith = "eks-api"
        var cluster: EKSCluster
        do {
            cluster = try await aws.createCluster(
                name: name, version: spec.kubernetesVersion, roleARN: role, subnetIDs: spec.subnetIDs, securityGroupIDs: spec.securityGroupIDs)
        } catch {
            blockers.append(Blocker(.clusterCreateFailed, "CreateCluster \(name) failed: \(error)"))
            return nil
        }
        ev.eks.created = true
        let deadline = deps.clock.now().addingTimeInterval(settings.thresholds.nodeWait.duration.seconds)
        while cluster.status == "CREATING" && deps.clock.now() < deadline {
            try await deps.clock.sleep(settings.thresholds.pollInterval.duration)
            cluster = try await aws.describeCluster(name) ?? cluster
        }
        if let nodeRole = spec.nodegroup.nodeRoleARN {
            do {
                _ = try await aws.createNodegroup(cluster: name, spec: spec.nodegroup, nodeRole: nodeRole, subnetIDs: spec.subnetIDs)
                ev.eks.nodegroupCreated = true
            } catch {
                blockers.append(Blocker(.nodegroupCreateFailed, "CreateNodegroup \(spec.nodegroup.name) failed: \(error)"))
            }
        } else {
            blockers.append(
                Blocker(
                    .nodegroupCreateFailed, "cluster \(name) was created without a node group: install.cluster.nodegroup.node_role_arn is not set",
                    remediation: "set install.cluster.nodegroup.node_role_arn and re-run phase 1"))
        }
        return cluster
    }
}
