import EKSKarpenterInstall
import Foundation
import KhCore
import KhKube
import KhTestSupport
import Testing

/// The moto side: a VPC with subnets and a security group, an EKS cluster, customer
/// policies (moto does not carry AWS-managed policies).
struct MotoWorld {
    var subnets: [String]
    var securityGroup: String
    var roleARN: String
    var policies: [String]

    static func make(_ bed: Bed, cluster: Bool = true) async throws -> MotoWorld {
        let tb = bed.testbed
        func field(_ json: String, _ path: String) throws -> String {
            let value = try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8)).at(path)?.stringValue
            return try #require(value, "\(path) in \(json)")
        }
        let vpc = try field(try await awsCLI(tb, ["ec2", "create-vpc", "--cidr-block", "10.42.0.0/16"]), "Vpc.VpcId")
        var subnets: [String] = []
        for (i, zone) in ["us-east-1a", "us-east-1b"].enumerated() {
            let out = try await awsCLI(
                tb, ["ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", "10.42.\(i).0/24", "--availability-zone", zone])
            subnets.append(try field(out, "Subnet.SubnetId"))
        }
        let sg = try field(
            try await awsCLI(tb, ["ec2", "create-security-group", "--group-name", "\(bed.cluster)-sg", "--description", "kh", "--vpc-id", vpc]),
            "GroupId")
        let trust =
            #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#
        let role = try field(
            try await awsCLI(tb, ["iam", "create-role", "--role-name", "\(bed.cluster)-eks", "--assume-role-policy-document", trust]), "Role.Arn")
        var policies: [String] = []
        for name in ["worker", "cni"] {
            let doc = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}]}"#
            policies.append(
                try field(
                    try await awsCLI(tb, ["iam", "create-policy", "--policy-name", "\(bed.cluster)-\(name)", "--policy-document", doc]), "Policy.Arn")
            )
        }
        if cluster {
            _ = try await awsCLI(
                tb,
                [
                    "eks", "create-cluster", "--name", bed.cluster, "--role-arn", role, "--resources-vpc-config",
                    "subnetIds=\(subnets.joined(separator: ",")),securityGroupIds=\(sg)",
                ])
        }
        return MotoWorld(subnets: subnets, securityGroup: sg, roleARN: role, policies: policies)
    }

    func configure(_ config: inout InstallConfig) {
        config.prerequisites.nodePolicyARNs = policies
        config.prerequisites.controllerPolicyARNs = [policies[0]]
        config.cluster.roleARN = roleARN
        config.cluster.subnetIDs = subnets
        config.cluster.nodegroup.nodeRoleARN = roleARN
    }
}

extension InstallTests {
    @Test(
        "phase 2 against moto: dry run creates nothing; then roles, policies, instance profile, queue and discovery tags are created; a rerun finds them all"
    )
    func phase2Moto() async throws {
        let bed = try await Bed()
        let world = try await MotoWorld.make(bed)
        let config = bed.config { world.configure(&$0) }

        let (dry, _, _) = try await bed.run([.prerequisites], config: config, dryRun: true)
        #expect(dry.status == .blockedPhase)
        #expect(dry.next == .init(action: .fix, phase: .prerequisites))
        #expect(dry.blockers.allSatisfy { $0.code == "PREREQUISITE_MISSING" })
        #expect(dry.blockers.contains { $0.message.contains("KarpenterNodeRole-\(bed.cluster)") })
        await #expect(throws: (any Error).self) {
            _ = try await awsCLI(bed.testbed, ["iam", "get-role", "--role-name", "KarpenterNodeRole-\(bed.cluster)"])
        }

        let (result, run, _) = try await bed.run([.prerequisites], config: config)
        #expect(result.status == .ok, "\(result.text)")
        let doc = try bed.document(run, .prerequisites)
        #expect(doc.at("evidence.nodeRole.created")?.bool == true)
        #expect(doc.at("evidence.nodeRole.arn")?.stringValue?.hasSuffix("role/KarpenterNodeRole-\(bed.cluster)") == true)
        #expect(doc.at("evidence.nodeRole.policies")?.array?.count == 2)
        #expect(doc.at("evidence.controllerRole.created")?.bool == true)
        #expect(doc.at("evidence.instanceProfile.created")?.bool == true)
        #expect(doc.at("evidence.instanceProfile.roleAttached")?.bool == true)
        #expect(doc.at("evidence.interruptionQueue.created")?.bool == true)
        #expect(doc.at("evidence.interruptionQueue.messageRetentionPeriod")?.stringValue == "300")
        #expect(doc.at("evidence.discovery.subnets")?.array?.count == 2)
        #expect(doc.at("evidence.discovery.securityGroups.0.tagged")?.bool == true)
        #expect((doc.at("commands")?.array ?? []).contains { $0["command"]?.stringValue?.hasPrefix("aws ec2 CreateTags") == true })

        // Checked with awscli, not kh: the objects exist in moto.
        let attached = try await awsCLI(bed.testbed, ["iam", "list-attached-role-policies", "--role-name", "KarpenterNodeRole-\(bed.cluster)"])
        #expect(world.policies.allSatisfy { attached.contains($0) })
        let profile = try await awsCLI(
            bed.testbed, ["iam", "get-instance-profile", "--instance-profile-name", "KarpenterNodeInstanceProfile-\(bed.cluster)"])
        #expect(profile.contains("KarpenterNodeRole-\(bed.cluster)"))
        let subnets = try await awsCLI(bed.testbed, ["ec2", "describe-subnets", "--subnet-ids"] + world.subnets)
        let tagged = try JSONDecoder().decode(JSONValue.self, from: Data(subnets.utf8)).at("Subnets")?.array ?? []
        #expect(tagged.count == 2)
        for subnet in tagged {
            let tags = subnet["Tags"]?.array ?? []
            #expect(tags.contains { $0["Key"]?.stringValue == "karpenter.sh/discovery" && $0["Value"]?.stringValue == bed.cluster })
        }
        // awscli 1.x ignores AWS_ENDPOINT_URL for SQS: name moto's endpoint.
        let endpoint = try bed.testbed.require("AWS_ENDPOINT_URL")
        let queue = try await awsCLI(bed.testbed, ["sqs", "get-queue-url", "--queue-name", bed.cluster, "--endpoint-url", endpoint])
        #expect(queue.contains("/\(bed.cluster)"))

        let (again, run2, _) = try await bed.run([.prerequisites], config: config)
        #expect(again.status == .ok)
        let doc2 = try bed.document(run2, .prerequisites)
        #expect(doc2.at("evidence.nodeRole.existed")?.bool == true)
        #expect(doc2.at("evidence.nodeRole.created")?.bool == false)
        #expect(doc2.at("evidence.interruptionQueue.existed")?.bool == true)
        #expect(doc2.at("evidence.discovery.subnets.0.alreadyTagged")?.bool == true)
        let creates = (doc2.at("commands")?.array ?? []).compactMap { $0["command"]?.stringValue }.filter {
            $0.contains(" Create") || $0.contains(" AttachRolePolicy") || $0.contains(" AddRole")
        }
        #expect(creates.isEmpty, "a second run changes nothing: \(creates)")
    }

    @Test("phase 2: the default AWS-managed policy ARNs cannot be attached in moto: IAM_POLICY_ATTACH_FAILED per policy")
    func phase2PolicyAttachFails() async throws {
        let bed = try await Bed()
        _ = try await MotoWorld.make(bed)
        let (result, _, _) = try await bed.run([.prerequisites], config: bed.config())
        #expect(result.status == .error)
        #expect(result.exitCode == .external)
        let attach = result.blockers.filter { $0.code == "IAM_POLICY_ATTACH_FAILED" }
        #expect(attach.count == 4)
        #expect(attach.first?.message.contains("arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy") == true)
    }

    @Test("phase 2 without the cluster: blocked_phase CLUSTER_NOT_FOUND, next fix foundation")
    func phase2NoCluster() async throws {
        let bed = try await Bed()
        let (result, _, _) = try await bed.run([.prerequisites], config: bed.config())
        #expect(result.status == .blockedPhase)
        #expect(result.blockers.map(\.code) == ["CLUSTER_NOT_FOUND"])
        #expect(result.next == .init(action: .fix, phase: .foundation))
    }

    @Test("phase 1 against moto: creates the cluster and node group through the EKS API, updates kubeconfig, NO_NODES_CREATED until nodes register")
    func phase1Moto() async throws {
        let bed = try await Bed()
        let world = try await MotoWorld.make(bed, cluster: false)
        let kubeconfig = bed.directory.path + "/kubeconfig"
        try FileManager.default.copyItem(atPath: bed.emulator.kubeconfig, toPath: kubeconfig)
        let config = bed.config {
            world.configure(&$0)
            $0.kubeconfig = kubeconfig
            $0.context = "kh-testbed"
            $0.cluster.updateKubeconfig = true
        }
        let (first, run, _) = try await bed.run([.foundation], config: config)
        #expect(first.status == .error)
        #expect(first.exitCode == .checkFailed)
        let blocker = try #require(first.blockers.first)
        #expect(blocker.code == "NO_NODES_CREATED")
        #expect(blocker.message.contains("EKS cluster created but no worker nodes found"))
        let doc = try bed.document(run, .foundation)
        #expect(doc.at("evidence.eks.created")?.bool == true)
        #expect(doc.at("evidence.eks.createdWith")?.stringValue == "eks-api")
        #expect(doc.at("evidence.eks.status")?.stringValue == "ACTIVE")
        #expect(doc.at("evidence.eks.nodegroupCreated")?.bool == true)
        #expect(doc.at("evidence.eks.nodegroups.0.name")?.stringValue == "kh-system")
        #expect(doc.at("evidence.eks.kubeconfigUpdated")?.bool == true)
        #expect(doc.at("evidence.eks.nodeCount")?.number == 0)
        #expect((doc.at("evidence.eks.nodeWaitSeconds")?.number ?? 0) >= 1, "nodes were polled for the whole node_wait")
        let commands = (doc.at("commands")?.array ?? []).compactMap { $0["command"]?.stringValue }
        #expect(commands.contains { $0.hasPrefix("aws eks CreateCluster") })
        #expect(commands.contains { $0.hasPrefix("aws eks update-kubeconfig") })
        let written = try String(contentsOfFile: kubeconfig, encoding: .utf8)
        #expect(written.contains("arn:aws:eks:us-east-1:123456789012:cluster/\(bed.cluster)"))

        try await bed.node("ip-10-42-0-10.ec2.internal", ready: true)
        try await bed.node("ip-10-42-1-10.ec2.internal", ready: false)
        let (second, run2, _) = try await bed.run([.foundation], config: config)
        #expect(second.status == .ok, "\(second.text)")
        let doc2 = try bed.document(run2, .foundation)
        #expect(doc2.at("evidence.eks.existed")?.bool == true)
        #expect(doc2.at("evidence.eks.created")?.bool == false)
        #expect(doc2.at("evidence.eks.nodeCount")?.number == 2)
        #expect(doc2.at("evidence.eks.nodesReady")?.number == 1)
    }

    @Test("phase 1 with cluster creation off and no cluster: blocked_phase CLUSTER_NOT_FOUND, nothing created")
    func phase1NoCreate() async throws {
        let bed = try await Bed()
        let (result, _, _) = try await bed.run([.foundation], config: bed.config { $0.cluster.create = false })
        #expect(result.status == .blockedPhase)
        #expect(result.blockers.first?.code == "CLUSTER_NOT_FOUND")
        await #expect(throws: (any Error).self) { _ = try await awsCLI(bed.testbed, ["eks", "describe-cluster", "--name", bed.cluster]) }
    }
}
