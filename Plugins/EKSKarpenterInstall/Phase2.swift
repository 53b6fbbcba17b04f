import Foundation
import KhCore

/// Phase 2 (prerequisites) evidence: each IAM object, the interruption queue with its
/// policy and EventBridge rules, the controller's Pod Identity association and the
/// discovery tags, verified and (unless a dry run) created when missing.
public struct Phase2Evidence: Codable, Sendable, Equatable {
    public struct Policy: Codable, Sendable, Equatable {
        public var arn: String
        public var attached: Bool
        public var alreadyAttached: Bool
    }
    public struct Role: Codable, Sendable, Equatable {
        public var name = ""
        public var arn: String?
        public var existed = false
        public var created = false
        public var policies: [Policy] = []
    }
    public struct InstanceProfile: Codable, Sendable, Equatable {
        public var name = ""
        public var existed = false
        public var created = false
        public var roleAttached = false
    }
    public struct Queue: Codable, Sendable, Equatable {
        public var name = ""
        public var url: String?
        public var existed = false
        public var created = false
        public var messageRetentionPeriod: String?
        public var arn: String?
        /// Whether EventBridge may send to the queue (SetQueueAttributes Policy).
        public var policy = QueuePolicy()
    }
    public struct Tagged: Codable, Sendable, Equatable {
        public var id: String
        public var alreadyTagged: Bool
        public var tagged: Bool
    }
    public struct Discovery: Codable, Sendable, Equatable {
        public var tagKey = "karpenter.sh/discovery"
        public var tagValue = ""
        public var subnets: [Tagged] = []
        public var securityGroups: [Tagged] = []
    }
    public var nodeRole = Role()
    public var controllerRole = Role()
    public var instanceProfile = InstanceProfile()
    public var interruptionQueue = Queue()
    /// The EventBridge rules feeding the queue (Health, Spot interruption, rebalance, state change).
    public var interruptionRules: [Rule] = []
    public var podIdentityAssociation = PodIdentity()
    public var discovery = Discovery()
}

extension InstallPhases {
    static let ec2Trust =
        #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#
    static let podIdentityTrust =
        #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#

    /// Phase 2: node and controller IAM roles, the node instance profile, the
    /// interruption queue and the `karpenter.sh/discovery` tags. Each item is verified,
    /// created when missing (not with `verifyOnly`), and gets a blocker when it cannot be.
    public static func prerequisites(settings: InstallSettings, deps: InstallDependencies, verifyOnly: Bool) async -> PhaseOutcome {
        var ev = Phase2Evidence()
        var blockers: [Blocker] = []
        var warnings: [String] = []
        func done() -> PhaseOutcome {
            PhaseOutcome(
                phase: .prerequisites, ok: blockers.isEmpty, evidence: (try? JSONValue(encoding: ev)) ?? .null, blockers: blockers,
                warnings: warnings, commands: deps.ledger.drain(), verifiedOnly: verifyOnly)
        }
        func missing(_ what: String) { blockers.append(missingBlocker(what)) }
        let aws: any AWSAPI
        let cluster: EKSCluster
        do {
            aws = try deps.aws()
            guard let found = try await aws.describeCluster(settings.clusterName) else {
                blockers.append(
                    Blocker(
                        .clusterNotFound, "EKS cluster \(settings.clusterName) does not exist: phase 1 (foundation) is not done",
                        remediation: "run `kh install phase1`"))
                return done()
            }
            cluster = found
        } catch let error as KhError {
            blockers.append(Blocker(.missingCredentials, error.message, remediation: error.hint))
            return done()
        } catch {
            blockers.append(Blocker(.awsAPIFailed, "DescribeCluster \(settings.clusterName): \(error)"))
            return done()
        }

        // IAM roles and their policies.
        func role(_ name: String, trust: String, policies: [String]) async -> Phase2Evidence.Role {
            var evidence = Phase2Evidence.Role(name: name)
            do {
                if let existing = try await aws.getRole(name) {
                    evidence.existed = true
                    evidence.arn = existing.arn
                } else if verifyOnly {
                    missing("IAM role \(name)")
                    return evidence
                } else {
                    deps.console.progress("phase2: creating IAM role \(name)")
                    evidence.arn = try await aws.createRole(name, trustPolicy: trust).arn
                    evidence.created = true
                }
            } catch {
                blockers.append(Blocker(.iamRoleFailed, "IAM role \(name): \(error)"))
                return evidence
            }
            let attached: [String]
            do {
                attached = try await aws.attachedRolePolicies(name)
            } catch {
                blockers.append(Blocker(.iamPolicyAttachFailed, "ListAttachedRolePolicies \(name): \(error)"))
                return evidence
            }
            for arn in policies {
                if attached.contains(arn) {
                    evidence.policies.append(.init(arn: arn, attached: true, alreadyAttached: true))
                } else if verifyOnly {
                    evidence.policies.append(.init(arn: arn, attached: false, alreadyAttached: false))
                    missing("policy \(arn) on role \(name)")
                } else {
                    do {
                        try await aws.attachRolePolicy(role: name, policyARN: arn)
                        evidence.policies.append(.init(arn: arn, attached: true, alreadyAttached: false))
                    } catch {
                        evidence.policies.append(.init(arn: arn, attached: false, alreadyAttached: false))
                        blockers.append(
                            Blocker(
                                .iamPolicyAttachFailed, "attach \(arn) to \(name): \(error)",
                                remediation: "check the policy ARN in install.prerequisites; the role needs it for nodes to join"))
                    }
                }
            }
            return evidence
        }
        ev.nodeRole = await role(settings.nodeRoleName, trust: ec2Trust, policies: settings.config.prerequisites.nodePolicyARNs)
        ev.controllerRole = await role(
            settings.controllerRoleName, trust: podIdentityTrust, policies: settings.config.prerequisites.controllerPolicyARNs)

        // The node instance profile, holding the node role.
        let profileName = settings.instanceProfileName
        ev.instanceProfile.name = profileName
        do {
            var profile = try await aws.getInstanceProfile(profileName)
            ev.instanceProfile.existed = profile != nil
            if profile == nil {
                if verifyOnly {
                    missing("instance profile \(profileName)")
                } else {
                    profile = try await aws.createInstanceProfile(profileName)
                    ev.instanceProfile.created = true
                }
            }
            if let current = profile {
                if current.roles.contains(settings.nodeRoleName) {
                    ev.instanceProfile.roleAttached = true
                } else if verifyOnly {
                    missing("role \(settings.nodeRoleName) in instance profile \(profileName)")
                } else if ev.nodeRole.arn != nil {
                    try await aws.addRoleToInstanceProfile(profile: profileName, role: settings.nodeRoleName)
                    ev.instanceProfile.roleAttached = try await aws.getInstanceProfile(profileName)?.roles.contains(settings.nodeRoleName) ?? false
                }
            }
        } catch {
            blockers.append(Blocker(.instanceProfileFailed, "instance profile \(profileName): \(error)"))
        }

        // The interruption queue.
        let queue = settings.queueName
        ev.interruptionQueue.name = queue
        var queueAttributes: [String: String] = [:]
        do {
            var url = try await aws.getQueueURL(queue)
            ev.interruptionQueue.existed = url != nil
            if url == nil {
                if verifyOnly {
                    missing("SQS interruption queue \(queue)")
                } else {
                    url = try await aws.createQueue(queue, attributes: ["MessageRetentionPeriod": "300", "SqsManagedSseEnabled": "true"])
                    ev.interruptionQueue.created = true
                }
            }
            if let url {
                ev.interruptionQueue.url = url
                queueAttributes = try await aws.queueAttributes(url)
                ev.interruptionQueue.messageRetentionPeriod = queueAttributes["MessageRetentionPeriod"]
                ev.interruptionQueue.arn = queueAttributes["QueueArn"]
            }
        } catch {
            blockers.append(Blocker(.interruptionQueueFailed, "SQS queue \(queue): \(error)"))
        }
        if let url = ev.interruptionQueue.url, let arn = ev.interruptionQueue.arn {
            ev.interruptionQueue.policy = await interruptionQueuePolicy(
                aws: aws, url: url, queueARN: arn, current: queueAttributes["Policy"], verifyOnly: verifyOnly, blockers: &blockers)
        } else if !queueAttributes.isEmpty {
            blockers.append(Blocker(.interruptionQueueFailed, "SQS queue \(queue): GetQueueAttributes gave no QueueArn"))
        }

        // The EventBridge rules feeding the queue, and the controller's Pod Identity association.
        ev.interruptionRules = await interruptionRules(
            aws: aws, prefix: settings.eventRulePrefix, queueARN: ev.interruptionQueue.arn, verifyOnly: verifyOnly, console: deps.console,
            blockers: &blockers)
        ev.podIdentityAssociation = await podIdentityAssociation(
            aws: aws, settings: settings, roleARN: ev.controllerRole.arn, verifyOnly: verifyOnly, blockers: &blockers, warnings: &warnings)

        // Discovery tags on the cluster's subnets and security groups.
        let key = ev.discovery.tagKey
        let value = settings.clusterName
        ev.discovery.tagValue = value
        let vpc = cluster.resourcesVpcConfig
        let subnets = settings.config.prerequisites.subnetIDs.isEmpty ? vpc?.subnetIds ?? [] : settings.config.prerequisites.subnetIDs
        var groups = settings.config.prerequisites.securityGroupIDs
        if groups.isEmpty { groups = (vpc?.clusterSecurityGroupId.map { [$0] } ?? []) + (vpc?.securityGroupIds ?? []) }
        if subnets.isEmpty || groups.isEmpty {
            blockers.append(
                Blocker(
                    .noDiscoveryTargets,
                    "no \(subnets.isEmpty ? "subnets" : "security groups") to tag with \(key)=\(value): the cluster names none and install.prerequisites sets none",
                    remediation: "set install.prerequisites.subnet_ids / security_group_ids"))
        }
        func tag(_ ids: [String], kind: String, describe: ([String]) async throws -> [TaggedResource]) async -> [Phase2Evidence.Tagged] {
            guard !ids.isEmpty else { return [] }
            do {
                let before = try await describe(ids)
                let found = Set(before.map(\.id))
                for id in ids where !found.contains(id) {
                    blockers.append(Blocker(.discoveryTagsFailed, "\(kind) \(id) does not exist"))
                }
                let already = Set(before.filter { $0.tags[key] == value }.map(\.id))
                let needed = before.map(\.id).filter { !already.contains($0) }
                if !needed.isEmpty {
                    if verifyOnly {
                        missing("\(key)=\(value) on \(kind)s \(needed.joined(separator: ", "))")
                    } else {
                        try await aws.createTags(resources: needed, key: key, value: value)
                    }
                }
                let after = verifyOnly || needed.isEmpty ? before : try await describe(ids)
                let nowTagged = Set(after.filter { $0.tags[key] == value }.map(\.id))
                for id in needed where !verifyOnly && !nowTagged.contains(id) {
                    blockers.append(Blocker(.discoveryTagsFailed, "\(kind) \(id) still lacks \(key)=\(value) after CreateTags"))
                }
                return before.map { .init(id: $0.id, alreadyTagged: already.contains($0.id), tagged: nowTagged.contains($0.id)) }
            } catch {
                blockers.append(Blocker(.discoveryTagsFailed, "\(kind)s \(ids.joined(separator: ", ")): \(error)"))
                return []
            }
        }
        ev.discovery.subnets = await tag(subnets, kind: "subnet") { try await aws.describeSubnets($0) }
        ev.discovery.securityGroups = await tag(groups, kind: "security group") { try await aws.describeSecurityGroups($0) }
        return done()
    }
}
