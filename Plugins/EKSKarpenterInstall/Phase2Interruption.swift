import Foundation
import KhCore

/// What makes the interruption queue useful: the queue policy letting EventBridge send
/// to it, the EventBridge rules feeding it, and the controller's Pod Identity association.
extension Phase2Evidence {
    public struct QueuePolicy: Codable, Sendable, Equatable {
        /// The policy lets `events.amazonaws.com` and `sqs.amazonaws.com` send to the queue (as read back).
        public var allowsEventBridge = false
        public var alreadyAllowed = false
        /// kh wrote the policy (SetQueueAttributes), keeping statements of others.
        public var set = false
    }
    public struct Rule: Codable, Sendable, Equatable {
        public var name: String
        public var source: String
        public var detailType: String
        public var arn: String?
        public var existed = false
        public var created = false
        /// An existing rule's pattern or state was wrong and PutRule fixed it.
        public var updated = false
        public var patternMatches = false
        public var enabled = false
        /// A target of the rule is the interruption queue (as read back).
        public var targetsQueue = false
        public var targetAdded = false
    }
    public struct PodIdentity: Codable, Sendable, Equatable {
        public var enabled = true
        public var namespace = ""
        public var serviceAccount = ""
        /// The controller role it must bind.
        public var roleArn: String?
        /// The role the association found or created binds.
        public var boundRoleArn: String?
        public var associationId: String?
        public var existed = false
        public var created = false
        /// false when the endpoint does not serve the Pod Identity API (an emulator):
        /// nothing was checked or created, and a warning says so.
        public var verifiable: Bool?
        public var note: String?
    }
}

/// One EventBridge rule Karpenter's interruption handling needs.
public struct InterruptionRuleSpec: Sendable, Equatable {
    /// The name's suffix (`<prefix>-<kind>`).
    public var kind: String
    public var source: String
    public var detailType: String

    /// The four rules of Karpenter's interruption handling (its getting-started CloudFormation).
    public static let karpenter: [InterruptionRuleSpec] = [
        .init(kind: "HealthEvent", source: "aws.health", detailType: "AWS Health Event"),
        .init(kind: "SpotInterruption", source: "aws.ec2", detailType: "EC2 Spot Instance Interruption Warning"),
        .init(kind: "Rebalance", source: "aws.ec2", detailType: "EC2 Instance Rebalance Recommendation"),
        .init(kind: "InstanceStateChange", source: "aws.ec2", detailType: "EC2 Instance State-change Notification"),
    ]

    /// `{"detail-type":[…],"source":[…]}` (sorted keys).
    public var eventPattern: String {
        let value: JSONValue = ["source": .array([.string(source)]), "detail-type": .array([.string(detailType)])]
        return (try? String(decoding: KhJSON.encoder().encode(value), as: UTF8.self)) ?? ""
    }

    /// Whether an event pattern read back means the same as ours (key order and spacing aside).
    public func matches(_ pattern: String?) -> Bool {
        guard let pattern, let found = try? JSONDecoder().decode(JSONValue.self, from: Data(pattern.utf8)),
            let wanted = try? JSONDecoder().decode(JSONValue.self, from: Data(eventPattern.utf8))
        else { return false }
        return found == wanted
    }

    /// `<prefix>-<kind>`, at most 64 characters (EventBridge's limit): a longer prefix is
    /// cut and given a stable hash of itself, so names stay unique per cluster.
    public func ruleName(prefix: String) -> String {
        let full = "\(prefix)-\(kind)"
        guard full.count > 64 else { return full }
        var hash: UInt32 = 2_166_136_261  // FNV-1a
        for byte in prefix.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 16_777_619
        }
        let tag = String(hash, radix: 16)
        let keep = 64 - kind.count - tag.count - 2
        return "\(prefix.prefix(keep))-\(tag)-\(kind)"
    }
}

/// The interruption queue's resource policy.
public enum InterruptionQueuePolicy {
    /// The statement id kh writes (and replaces on a rewrite).
    public static let sid = "KarpenterInterruptionQueueSend"
    public static let services = ["events.amazonaws.com", "sqs.amazonaws.com"]

    /// Whether `policy` lets both services SendMessage to `queueARN` through an Allow
    /// statement without conditions.
    public static func allows(_ policy: String?, queueARN: String) -> Bool {
        guard let policy, let statements = statements(policy) else { return false }
        var allowed = Set<String>()
        for statement in statements {
            guard statement["Effect"]?.stringValue == "Allow", statement["Condition"] == nil else { continue }
            let actions = strings(statement["Action"]).map { $0.lowercased() }
            guard actions.contains(where: { ["sqs:sendmessage", "sqs:*", "*"].contains($0) }) else { continue }
            let resources = strings(statement["Resource"])
            guard resources.contains(queueARN) || resources.contains("*") else { continue }
            allowed.formUnion(strings(statement["Principal"]?["Service"]))
        }
        return services.allSatisfy(allowed.contains)
    }

    /// The policy to write: the existing statements (but an earlier one of kh's), kh's
    /// Allow statement, and a Deny of non-TLS access unless one with that id is there.
    public static func merged(existing: String?, queueARN: String) -> String {
        var kept = existing.flatMap(statements) ?? []
        kept.removeAll { $0["Sid"]?.stringValue == sid }
        kept.append([
            "Sid": .string(sid), "Effect": "Allow", "Principal": ["Service": .array(services.map { .string($0) })],
            "Action": "sqs:SendMessage", "Resource": .string(queueARN),
        ])
        if !kept.contains(where: { $0["Sid"]?.stringValue == "DenyHTTP" }) {
            kept.append([
                "Sid": "DenyHTTP", "Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": .string(queueARN),
                "Condition": ["Bool": ["aws:SecureTransport": .bool(false)]],
            ])
        }
        let document: JSONValue = ["Version": "2012-10-17", "Statement": .array(kept)]
        return (try? String(decoding: KhJSON.encoder().encode(document), as: UTF8.self)) ?? ""
    }

    static func statements(_ policy: String) -> [JSONValue]? {
        guard let document = try? JSONDecoder().decode(JSONValue.self, from: Data(policy.utf8)) else { return nil }
        switch document["Statement"] {
        case .array(let items)?: return items
        case .object?: return document["Statement"].map { [$0] }
        default: return nil
        }
    }

    static func strings(_ value: JSONValue?) -> [String] {
        switch value {
        case .string(let text)?: return [text]
        case .array(let items)?: return items.compactMap(\.stringValue)
        default: return []
        }
    }
}

extension InstallPhases {
    static func missingBlocker(_ what: String) -> Blocker {
        Blocker(.prerequisiteMissing, "\(what) is missing; dry run: not created", remediation: "run `kh install phase2 --yes`")
    }

    /// The queue policy: verified, written when it does not let EventBridge send (not with `verifyOnly`).
    static func interruptionQueuePolicy(
        aws: any AWSAPI, url: String, queueARN: String, current: String?, verifyOnly: Bool, blockers: inout [Blocker]
    ) async -> Phase2Evidence.QueuePolicy {
        var evidence = Phase2Evidence.QueuePolicy()
        if InterruptionQueuePolicy.allows(current, queueARN: queueARN) {
            evidence.alreadyAllowed = true
            evidence.allowsEventBridge = true
            return evidence
        }
        if verifyOnly {
            blockers.append(missingBlocker("a queue policy letting events.amazonaws.com and sqs.amazonaws.com send to \(queueARN)"))
            return evidence
        }
        do {
            try await aws.setQueueAttributes(url, attributes: ["Policy": InterruptionQueuePolicy.merged(existing: current, queueARN: queueARN)])
            evidence.set = true
            let after = try await aws.queueAttributes(url)["Policy"]
            evidence.allowsEventBridge = InterruptionQueuePolicy.allows(after, queueARN: queueARN)
            if !evidence.allowsEventBridge {
                blockers.append(
                    Blocker(.interruptionQueuePolicyFailed, "the policy of \(queueARN) still does not let EventBridge send after SetQueueAttributes"))
            }
        } catch {
            blockers.append(
                Blocker(
                    .interruptionQueuePolicyFailed, "SetQueueAttributes Policy on \(queueARN): \(error)",
                    remediation: "without it EventBridge cannot deliver interruption events to the queue"))
        }
        return evidence
    }

    /// The EventBridge rules, each verified (pattern, ENABLED, a target on the queue),
    /// created or fixed when not (not with `verifyOnly`). No queue ARN: targets are not
    /// checked (the queue's own blocker says why).
    static func interruptionRules(
        aws: any AWSAPI, prefix: String, queueARN: String?, verifyOnly: Bool, console: Console, blockers: inout [Blocker]
    ) async -> [Phase2Evidence.Rule] {
        var rules: [Phase2Evidence.Rule] = []
        for spec in InterruptionRuleSpec.karpenter {
            let name = spec.ruleName(prefix: prefix)
            var rule = Phase2Evidence.Rule(name: name, source: spec.source, detailType: spec.detailType)
            do {
                let existing = try await aws.describeRule(name)
                rule.existed = existing != nil
                rule.arn = existing?.arn
                rule.patternMatches = spec.matches(existing?.eventPattern)
                rule.enabled = existing?.state == "ENABLED"
                if existing == nil && verifyOnly {
                    blockers.append(missingBlocker("EventBridge rule \(name) (\(spec.source) \"\(spec.detailType)\")"))
                    rules.append(rule)
                    continue
                }
                if !(rule.patternMatches && rule.enabled) {
                    if verifyOnly {
                        blockers.append(missingBlocker("the pattern \(spec.eventPattern) (ENABLED) of EventBridge rule \(name)"))
                    } else {
                        console.progress("phase2: \(existing == nil ? "creating" : "fixing") EventBridge rule \(name)")
                        rule.arn = try await aws.putRule(
                            name, eventPattern: spec.eventPattern, description: "Karpenter interruption handling: \(spec.detailType)")
                        rule.created = existing == nil
                        rule.updated = existing != nil
                        let after = try await aws.describeRule(name)
                        rule.patternMatches = spec.matches(after?.eventPattern)
                        rule.enabled = after?.state == "ENABLED"
                        if !(rule.patternMatches && rule.enabled) {
                            blockers.append(
                                Blocker(
                                    .interruptionRuleFailed,
                                    "EventBridge rule \(name) reads back \(after?.eventPattern ?? "absent") (\(after?.state ?? "no state")) after PutRule"
                                ))
                        }
                    }
                }
                guard let queueARN else {
                    rules.append(rule)
                    continue
                }
                rule.targetsQueue = try await aws.listTargetsByRule(name).contains { $0.arn == queueARN }
                if !rule.targetsQueue {
                    if verifyOnly {
                        blockers.append(missingBlocker("the target \(queueARN) of EventBridge rule \(name)"))
                    } else {
                        try await aws.putTargets(rule: name, targets: [EventTarget(id: "KarpenterInterruptionQueueTarget", arn: queueARN)])
                        rule.targetAdded = true
                        rule.targetsQueue = try await aws.listTargetsByRule(name).contains { $0.arn == queueARN }
                        if !rule.targetsQueue {
                            blockers.append(Blocker(.interruptionRuleFailed, "EventBridge rule \(name) has no target \(queueARN) after PutTargets"))
                        }
                    }
                }
            } catch {
                blockers.append(
                    Blocker(
                        .interruptionRuleFailed, "EventBridge rule \(name): \(error)",
                        remediation: "without it Karpenter gets no \(spec.detailType) events"))
            }
            rules.append(rule)
        }
        return rules
    }

    /// The controller role's Pod Identity association: verified (bound to the controller
    /// role), created when missing (not with `verifyOnly`). An endpoint without the Pod
    /// Identity API makes it "not verifiable": a warning, never a claimed success.
    public static func podIdentityAssociation(
        aws: any AWSAPI, settings: InstallSettings, roleARN: String?, verifyOnly: Bool, blockers: inout [Blocker], warnings: inout [String]
    ) async -> Phase2Evidence.PodIdentity {
        var evidence = Phase2Evidence.PodIdentity()
        evidence.enabled = settings.config.prerequisites.podIdentityAssociation
        evidence.namespace = settings.karpenter.namespace
        evidence.serviceAccount = settings.config.prerequisites.serviceAccount
        evidence.roleArn = roleARN
        guard evidence.enabled else { return evidence }
        let cluster = settings.clusterName
        let subject = "EKS Pod Identity association \(evidence.namespace)/\(evidence.serviceAccount) on \(cluster)"
        do {
            let found = try await aws.listPodIdentityAssociations(
                cluster: cluster, namespace: evidence.namespace, serviceAccount: evidence.serviceAccount)
            evidence.verifiable = true
            if let association = found.first {
                evidence.existed = true
                evidence.associationId = association.associationId
                if let id = association.associationId {
                    evidence.boundRoleArn = try await aws.describePodIdentityAssociation(cluster: cluster, id: id)?.roleArn
                }
                if let roleARN, let bound = evidence.boundRoleArn, bound != roleARN {
                    blockers.append(
                        Blocker(
                            .podIdentityAssociationFailed, "\(subject) binds \(bound), not the controller role \(roleARN)",
                            remediation:
                                "aws eks update-pod-identity-association --cluster-name \(cluster) --association-id \(association.associationId ?? "ID") --role-arn \(roleARN)"
                        ))
                }
            } else if verifyOnly {
                blockers.append(missingBlocker(subject))
            } else if let roleARN {
                let created = try await aws.createPodIdentityAssociation(
                    cluster: cluster, namespace: evidence.namespace, serviceAccount: evidence.serviceAccount, roleARN: roleARN)
                evidence.created = true
                evidence.associationId = created.associationId
                evidence.boundRoleArn = created.roleArn
            } else {
                blockers.append(
                    Blocker(.podIdentityAssociationFailed, "\(subject) not created: the controller role has no ARN (see its own blocker)"))
            }
        } catch let error as AWSError where error.code == AWSError.unsupportedOperation {
            evidence.verifiable = false
            evidence.note = error.detail
            warnings.append(
                "POD_IDENTITY_NOT_VERIFIABLE: \(subject) was neither verified nor created: \(error.detail); "
                    + "check it with `aws eks list-pod-identity-associations --cluster-name \(cluster)` against EKS")
        } catch {
            blockers.append(
                Blocker(
                    .podIdentityAssociationFailed, "\(subject): \(error)",
                    remediation: "without it the controller has no AWS credentials (the EKS Pod Identity Agent add-on must run too)"))
        }
        return evidence
    }
}
