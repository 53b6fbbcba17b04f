import Foundation
import KhCore

/// The `install:` section of the config file. Every key is optional; defaults follow
/// the runbook (Karpenter 1.8.3 in `kube-system`, a 10-minute Helm timeout).
public struct InstallConfig: Decodable, Sendable, Equatable {
    /// AWS profile; when absent, `AWS_PROFILE` applies as the AWS CLI reads it.
    public var profile: String?
    /// AWS region (`AWS_REGION`, then `AWS_DEFAULT_REGION` when absent).
    public var region: String?
    /// The EKS cluster name (required by every phase).
    public var clusterName: String?
    /// kubeconfig file kubectl and helm use (their default when absent).
    public var kubeconfig: String?
    /// kubeconfig context (the current context when absent).
    public var context: String?
    public var karpenter: KarpenterSettings
    public var thresholds: Thresholds
    public var cluster: ClusterSettings
    public var prerequisites: Prerequisites
    public var nodePool: NodePoolSpec
    public var ec2NodeClass: EC2NodeClassSpec
    public var testDeployment: TestDeploymentSpec

    enum CodingKeys: String, CodingKey {
        case profile, region, kubeconfig, context, karpenter, thresholds, cluster, prerequisites
        case clusterName = "cluster_name"
        case nodePool = "nodepool"
        case ec2NodeClass = "ec2nodeclass"
        case testDeployment = "test_deployment"
    }

    public init() {
        karpenter = KarpenterSettings()
        thresholds = Thresholds()
        cluster = ClusterSettings()
        prerequisites = Prerequisites()
        nodePool = NodePoolSpec()
        ec2NodeClass = EC2NodeClassSpec()
        testDeployment = TestDeploymentSpec()
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        profile = try c.decodeIfPresent(String.self, forKey: .profile)
        region = try c.decodeIfPresent(String.self, forKey: .region)
        clusterName = try c.decodeIfPresent(String.self, forKey: .clusterName)
        kubeconfig = try c.decodeIfPresent(String.self, forKey: .kubeconfig)
        context = try c.decodeIfPresent(String.self, forKey: .context)
        karpenter = try c.decodeIfPresent(KarpenterSettings.self, forKey: .karpenter) ?? KarpenterSettings()
        thresholds = try c.decodeIfPresent(Thresholds.self, forKey: .thresholds) ?? Thresholds()
        cluster = try c.decodeIfPresent(ClusterSettings.self, forKey: .cluster) ?? ClusterSettings()
        prerequisites = try c.decodeIfPresent(Prerequisites.self, forKey: .prerequisites) ?? Prerequisites()
        nodePool = try c.decodeIfPresent(NodePoolSpec.self, forKey: .nodePool) ?? NodePoolSpec()
        ec2NodeClass = try c.decodeIfPresent(EC2NodeClassSpec.self, forKey: .ec2NodeClass) ?? EC2NodeClassSpec()
        testDeployment = try c.decodeIfPresent(TestDeploymentSpec.self, forKey: .testDeployment) ?? TestDeploymentSpec()
    }

    /// The Karpenter chart and controller.
    public struct KarpenterSettings: Decodable, Sendable, Equatable {
        public var version = "1.8.3"
        public var namespace = "kube-system"
        public var release = "karpenter"
        public var chart = "oci://public.ecr.aws/karpenter/karpenter"
        public var controllerDeployment = "karpenter"
        public var podSelector = "app.kubernetes.io/name=karpenter"
        public var helmTimeout = KhDuration(.seconds(600))
        /// Extra `--set key=value` pairs for the chart.
        public var values: [String: String] = [:]

        enum CodingKeys: String, CodingKey {
            case version, namespace, release, chart, values
            case controllerDeployment = "controller_deployment"
            case podSelector = "pod_selector"
            case helmTimeout = "helm_timeout"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = KarpenterSettings()
            version = try c.decodeIfPresent(String.self, forKey: .version) ?? d.version
            namespace = try c.decodeIfPresent(String.self, forKey: .namespace) ?? d.namespace
            release = try c.decodeIfPresent(String.self, forKey: .release) ?? d.release
            chart = try c.decodeIfPresent(String.self, forKey: .chart) ?? d.chart
            controllerDeployment = try c.decodeIfPresent(String.self, forKey: .controllerDeployment) ?? d.controllerDeployment
            podSelector = try c.decodeIfPresent(String.self, forKey: .podSelector) ?? d.podSelector
            helmTimeout = try c.decodeIfPresent(KhDuration.self, forKey: .helmTimeout) ?? d.helmTimeout
            values = try c.decodeIfPresent([String: String].self, forKey: .values) ?? [:]
        }
    }

    /// Deadlines, poll intervals and the gates' numbers.
    public struct Thresholds: Decodable, Sendable, Equatable {
        /// Phase 1: how long to wait for nodes to register and become Ready.
        public var nodeWait = KhDuration(.seconds(600))
        /// Every poll's interval.
        public var pollInterval = KhDuration(.seconds(10))
        /// A Helm release pending longer than this is stuck.
        public var pendingStuckAfter = KhDuration(.seconds(600))
        /// Phase 3: how long to wait for the controller after Helm returns.
        public var controllerWait = KhDuration(.seconds(120))
        /// Phase 4: how long to wait for a NodeClaim.
        public var nodeClaimWait = KhDuration(.seconds(300))
        /// Ready nodes phase 1 needs.
        public var minReadyNodes = 1

        enum CodingKeys: String, CodingKey {
            case nodeWait = "node_wait"
            case pollInterval = "poll_interval"
            case pendingStuckAfter = "pending_stuck_after"
            case controllerWait = "controller_wait"
            case nodeClaimWait = "nodeclaim_wait"
            case minReadyNodes = "min_ready_nodes"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Thresholds()
            nodeWait = try c.decodeIfPresent(KhDuration.self, forKey: .nodeWait) ?? d.nodeWait
            pollInterval = try c.decodeIfPresent(KhDuration.self, forKey: .pollInterval) ?? d.pollInterval
            pendingStuckAfter = try c.decodeIfPresent(KhDuration.self, forKey: .pendingStuckAfter) ?? d.pendingStuckAfter
            controllerWait = try c.decodeIfPresent(KhDuration.self, forKey: .controllerWait) ?? d.controllerWait
            nodeClaimWait = try c.decodeIfPresent(KhDuration.self, forKey: .nodeClaimWait) ?? d.nodeClaimWait
            minReadyNodes = try c.decodeIfPresent(Int.self, forKey: .minReadyNodes) ?? d.minReadyNodes
        }
    }

    /// Phase 1: how a missing cluster is created.
    public struct ClusterSettings: Decodable, Sendable, Equatable {
        /// Create the cluster when it does not exist (else a blocker).
        public var create = true
        public var kubernetesVersion = "1.31"
        /// The EKS cluster service role (EKS API creation only; eksctl makes its own).
        public var roleARN: String?
        public var subnetIDs: [String] = []
        public var securityGroupIDs: [String] = []
        /// Run `aws eks update-kubeconfig` after the cluster is there.
        public var updateKubeconfig = true
        /// Use eksctl when it is on PATH (else the EKS API).
        public var useEksctl = true
        public var nodegroup = NodegroupSpec()

        enum CodingKeys: String, CodingKey {
            case create, nodegroup
            case kubernetesVersion = "kubernetes_version"
            case roleARN = "role_arn"
            case subnetIDs = "subnet_ids"
            case securityGroupIDs = "security_group_ids"
            case updateKubeconfig = "update_kubeconfig"
            case useEksctl = "use_eksctl"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = ClusterSettings()
            create = try c.decodeIfPresent(Bool.self, forKey: .create) ?? d.create
            kubernetesVersion = try c.decodeIfPresent(String.self, forKey: .kubernetesVersion) ?? d.kubernetesVersion
            roleARN = try c.decodeIfPresent(String.self, forKey: .roleARN)
            subnetIDs = try c.decodeIfPresent([String].self, forKey: .subnetIDs) ?? []
            securityGroupIDs = try c.decodeIfPresent([String].self, forKey: .securityGroupIDs) ?? []
            updateKubeconfig = try c.decodeIfPresent(Bool.self, forKey: .updateKubeconfig) ?? d.updateKubeconfig
            useEksctl = try c.decodeIfPresent(Bool.self, forKey: .useEksctl) ?? d.useEksctl
            nodegroup = try c.decodeIfPresent(NodegroupSpec.self, forKey: .nodegroup) ?? d.nodegroup
        }
    }

    /// The managed node group phase 1 creates with a new cluster.
    public struct NodegroupSpec: Decodable, Sendable, Equatable {
        public var name = "kh-system"
        public var nodeRoleARN: String?
        public var instanceTypes = ["m5.large"]
        public var desiredSize = 2
        public var minSize = 1
        public var maxSize = 3

        enum CodingKeys: String, CodingKey {
            case name
            case nodeRoleARN = "node_role_arn"
            case instanceTypes = "instance_types"
            case desiredSize = "desired_size"
            case minSize = "min_size"
            case maxSize = "max_size"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = NodegroupSpec()
            name = try c.decodeIfPresent(String.self, forKey: .name) ?? d.name
            nodeRoleARN = try c.decodeIfPresent(String.self, forKey: .nodeRoleARN)
            instanceTypes = try c.decodeIfPresent([String].self, forKey: .instanceTypes) ?? d.instanceTypes
            desiredSize = try c.decodeIfPresent(Int.self, forKey: .desiredSize) ?? d.desiredSize
            minSize = try c.decodeIfPresent(Int.self, forKey: .minSize) ?? d.minSize
            maxSize = try c.decodeIfPresent(Int.self, forKey: .maxSize) ?? d.maxSize
        }
    }

    /// Phase 2: names of what Karpenter needs before its chart. `{cluster}` is replaced
    /// by the cluster name.
    public struct Prerequisites: Decodable, Sendable, Equatable {
        public var nodeRole = "KarpenterNodeRole-{cluster}"
        public var controllerRole = "KarpenterControllerRole-{cluster}"
        public var instanceProfile = "KarpenterNodeInstanceProfile-{cluster}"
        public var nodePolicyARNs = [
            "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy", "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
            "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly", "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
        ]
        public var controllerPolicyARNs: [String] = []
        public var interruptionQueue = "{cluster}"
        /// Subnets to tag; the cluster's when empty.
        public var subnetIDs: [String] = []
        /// Security groups to tag; the cluster's when empty.
        public var securityGroupIDs: [String] = []
        /// The EventBridge rules feeding the interruption queue are named `<prefix>-<kind>`.
        public var eventRulePrefix = "Karpenter-{cluster}"
        /// Whether phase 2 verifies/creates the controller role's EKS Pod Identity association.
        public var podIdentityAssociation = true
        /// The controller's service account (in the Karpenter namespace) the association binds.
        public var serviceAccount = "karpenter"

        enum CodingKeys: String, CodingKey {
            case nodeRole = "node_role"
            case controllerRole = "controller_role"
            case instanceProfile = "instance_profile"
            case nodePolicyARNs = "node_policy_arns"
            case controllerPolicyARNs = "controller_policy_arns"
            case interruptionQueue = "interruption_queue"
            case subnetIDs = "subnet_ids"
            case securityGroupIDs = "security_group_ids"
            case eventRulePrefix = "event_rule_prefix"
            case podIdentityAssociation = "pod_identity_association"
            case serviceAccount = "service_account"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Prerequisites()
            nodeRole = try c.decodeIfPresent(String.self, forKey: .nodeRole) ?? d.nodeRole
            controllerRole = try c.decodeIfPresent(String.self, forKey: .controllerRole) ?? d.controllerRole
            instanceProfile = try c.decodeIfPresent(String.self, forKey: .instanceProfile) ?? d.instanceProfile
            nodePolicyARNs = try c.decodeIfPresent([String].self, forKey: .nodePolicyARNs) ?? d.nodePolicyARNs
            controllerPolicyARNs = try c.decodeIfPresent([String].self, forKey: .controllerPolicyARNs) ?? []
            interruptionQueue = try c.decodeIfPresent(String.self, forKey: .interruptionQueue) ?? d.interruptionQueue
            subnetIDs = try c.decodeIfPresent([String].self, forKey: .subnetIDs) ?? []
            securityGroupIDs = try c.decodeIfPresent([String].self, forKey: .securityGroupIDs) ?? []
            eventRulePrefix = try c.decodeIfPresent(String.self, forKey: .eventRulePrefix) ?? d.eventRulePrefix
            podIdentityAssociation = try c.decodeIfPresent(Bool.self, forKey: .podIdentityAssociation) ?? d.podIdentityAssociation
            serviceAccount = try c.decodeIfPresent(String.self, forKey: .serviceAccount) ?? d.serviceAccount
        }
    }

    /// A NodePool requirement (`karpenter.sh/capacity-type In [on-demand]`).
    public struct Requirement: Codable, Sendable, Equatable {
        public var key: String
        public var `operator`: String
        public var values: [String]
    }

    /// Phase 4: the NodePool applied.
    public struct NodePoolSpec: Decodable, Sendable, Equatable {
        public var name = "default"
        public var requirements = [
            Requirement(key: "karpenter.sh/capacity-type", operator: "In", values: ["on-demand"]),
            Requirement(key: "kubernetes.io/arch", operator: "In", values: ["amd64"]),
        ]
        public var limits: [String: String] = ["cpu": "100"]
        public var consolidationPolicy = "WhenEmptyOrUnderutilized"
        public var consolidateAfter = "1m"

        enum CodingKeys: String, CodingKey {
            case name, requirements, limits
            case consolidationPolicy = "consolidation_policy"
            case consolidateAfter = "consolidate_after"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = NodePoolSpec()
            name = try c.decodeIfPresent(String.self, forKey: .name) ?? d.name
            requirements = try c.decodeIfPresent([Requirement].self, forKey: .requirements) ?? d.requirements
            limits = try c.decodeIfPresent([String: String].self, forKey: .limits) ?? d.limits
            consolidationPolicy = try c.decodeIfPresent(String.self, forKey: .consolidationPolicy) ?? d.consolidationPolicy
            consolidateAfter = try c.decodeIfPresent(String.self, forKey: .consolidateAfter) ?? d.consolidateAfter
        }
    }

    /// Phase 4: the EC2NodeClass applied.
    public struct EC2NodeClassSpec: Decodable, Sendable, Equatable {
        public var name = "default"
        public var amiAlias = "al2023@latest"
        /// The node role; phase 2's node role when absent.
        public var role: String?

        enum CodingKeys: String, CodingKey {
            case name, role
            case amiAlias = "ami_alias"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = EC2NodeClassSpec()
            name = try c.decodeIfPresent(String.self, forKey: .name) ?? d.name
            amiAlias = try c.decodeIfPresent(String.self, forKey: .amiAlias) ?? d.amiAlias
            role = try c.decodeIfPresent(String.self, forKey: .role)
        }
    }

    /// Phase 4: the deployment scaled up to make Karpenter launch a node.
    public struct TestDeploymentSpec: Decodable, Sendable, Equatable {
        public var name = "kh-karpenter-inflate"
        public var namespace = "default"
        public var replicas = 2
        public var image = "public.ecr.aws/eks-distro/kubernetes/pause:3.7"
        public var cpu = "1"

        enum CodingKeys: String, CodingKey { case name, namespace, replicas, image, cpu }

        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = TestDeploymentSpec()
            name = try c.decodeIfPresent(String.self, forKey: .name) ?? d.name
            namespace = try c.decodeIfPresent(String.self, forKey: .namespace) ?? d.namespace
            replicas = try c.decodeIfPresent(Int.self, forKey: .replicas) ?? d.replicas
            image = try c.decodeIfPresent(String.self, forKey: .image) ?? d.image
            cpu = try c.decodeIfPresent(String.self, forKey: .cpu) ?? d.cpu
        }
    }
}
