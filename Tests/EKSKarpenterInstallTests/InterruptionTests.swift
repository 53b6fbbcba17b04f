import EKSKarpenterInstall
import Foundation
import KhCore
import KhTestSupport
import Synchronization
import Testing

/// awscli against moto with its endpoint named (awscli 1.x does not apply AWS_ENDPOINT_URL to every service).
func awsAt(_ bed: Bed, _ args: [String]) async throws -> JSONValue {
    let endpoint = try bed.testbed.require("AWS_ENDPOINT_URL")
    let out = try await awsCLI(bed.testbed, args + ["--endpoint-url", endpoint])
    if out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return .null }
    return try JSONDecoder().decode(JSONValue.self, from: Data(out.utf8))
}

extension InstallTests {
    func ruleNames(_ bed: Bed) -> [String] {
        InterruptionRuleSpec.karpenter.map { $0.ruleName(prefix: "Karpenter-\(bed.cluster)") }
    }

    @Test(
        "phase 2 against moto: the queue policy, the four EventBridge rules targeting the queue; dry run creates none, a rerun changes nothing, Pod Identity is reported not verifiable"
    )
    func phase2InterruptionMoto() async throws {
        let bed = try await Bed()
        let world = try await MotoWorld.make(bed)
        let config = bed.config { world.configure(&$0) }
        let names = ruleNames(bed)

        let (dry, _, _) = try await bed.run([.prerequisites], config: config, dryRun: true)
        #expect(dry.status == .blockedPhase)
        for name in names {
            #expect(dry.blockers.contains { $0.code == "PREREQUISITE_MISSING" && $0.message.contains("EventBridge rule \(name)") }, "\(name)")
        }
        let none = try await awsAt(bed, ["events", "list-rules", "--name-prefix", "Karpenter-\(bed.cluster)"])
        #expect(none.at("Rules")?.array?.isEmpty == true, "a dry run creates no rule")

        let (result, run, _) = try await bed.run([.prerequisites], config: config)
        #expect(result.status == .ok, "\(result.text)")
        let doc = try bed.document(run, .prerequisites)
        let queueARN = try #require(doc.at("evidence.interruptionQueue.arn")?.stringValue)
        #expect(queueARN.hasSuffix(":\(bed.cluster)"))
        #expect(doc.at("evidence.interruptionQueue.policy.set")?.bool == true)
        #expect(doc.at("evidence.interruptionQueue.policy.allowsEventBridge")?.bool == true)
        let rules = doc.at("evidence.interruptionRules")?.array ?? []
        #expect(rules.count == 4)
        for rule in rules {
            #expect(rule["created"]?.bool == true && rule["targetsQueue"]?.bool == true && rule["enabled"]?.bool == true, "\(rule)")
        }

        // Checked with awscli, not kh.
        let expected: [(String, String)] = [
            ("aws.health", "AWS Health Event"), ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
            ("aws.ec2", "EC2 Instance Rebalance Recommendation"), ("aws.ec2", "EC2 Instance State-change Notification"),
        ]
        for (name, (source, detailType)) in zip(names, expected) {
            let rule = try await awsAt(bed, ["events", "describe-rule", "--name", name])
            #expect(rule.at("State")?.stringValue == "ENABLED")
            let pattern = try JSONDecoder().decode(JSONValue.self, from: Data((rule.at("EventPattern")?.stringValue ?? "").utf8))
            #expect(pattern.at("source")?.array == [.string(source)], "\(name)")
            #expect(pattern["detail-type"]?.array == [.string(detailType)], "\(name)")
            let targets = try await awsAt(bed, ["events", "list-targets-by-rule", "--rule", name])
            #expect(targets.at("Targets")?.array?.map { $0["Arn"]?.stringValue } == [queueARN], "\(name)")
        }
        let url = try #require(doc.at("evidence.interruptionQueue.url")?.stringValue)
        let attributes = try await awsAt(bed, ["sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "Policy"])
        let policy = try #require(attributes.at("Attributes.Policy")?.stringValue)
        let statements = try JSONDecoder().decode(JSONValue.self, from: Data(policy.utf8)).at("Statement")?.array ?? []
        let allow = try #require(statements.first { $0["Effect"]?.stringValue == "Allow" })
        #expect(allow.at("Principal.Service")?.array == ["events.amazonaws.com", "sqs.amazonaws.com"])
        #expect(allow["Action"]?.stringValue == "sqs:SendMessage")
        #expect(allow["Resource"]?.stringValue == queueARN)

        // moto 5.2.1 has no EKS Pod Identity API: said so, nothing claimed.
        #expect(doc.at("evidence.podIdentityAssociation.verifiable")?.bool == false)
        #expect(doc.at("evidence.podIdentityAssociation.created")?.bool == false)
        #expect(doc.at("evidence.podIdentityAssociation.existed")?.bool == false)
        #expect(result.warnings.contains { $0.hasPrefix("POD_IDENTITY_NOT_VERIFIABLE") && $0.contains("kube-system/karpenter") })
        let commands = (doc.at("commands")?.array ?? []).compactMap { $0["command"]?.stringValue }
        #expect(commands.contains { $0.hasPrefix("aws eks ListPodIdentityAssociations") })
        #expect(!commands.contains { $0.hasPrefix("aws eks CreatePodIdentityAssociation") })

        // A rerun finds everything and changes nothing.
        let (again, run2, _) = try await bed.run([.prerequisites], config: config)
        #expect(again.status == .ok, "\(again.text)")
        let doc2 = try bed.document(run2, .prerequisites)
        #expect(doc2.at("evidence.interruptionQueue.policy.alreadyAllowed")?.bool == true)
        for rule in doc2.at("evidence.interruptionRules")?.array ?? [] {
            #expect(rule["existed"]?.bool == true && rule["created"]?.bool == false && rule["targetAdded"]?.bool == false, "\(rule)")
        }
        let changes = (doc2.at("commands")?.array ?? []).compactMap { $0["command"]?.stringValue }.filter {
            $0.contains(" PutRule") || $0.contains(" PutTargets") || $0.contains(" SetQueueAttributes") || $0.contains(" Create")
        }
        #expect(changes.isEmpty, "a second run changes nothing: \(changes)")
    }

    @Test(
        "phase 2 against moto: a disabled rule and a lost target are reported by a dry run and fixed by a run; another queue policy statement is kept"
    )
    func phase2InterruptionDrift() async throws {
        let bed = try await Bed()
        let world = try await MotoWorld.make(bed)
        let config = bed.config { world.configure(&$0) }
        let names = ruleNames(bed)
        // The queue exists beforehand with someone else's policy statement.
        let created = try await awsAt(bed, ["sqs", "create-queue", "--queue-name", bed.cluster])
        let url = try #require(created.at("QueueUrl")?.stringValue)
        let arn = try #require(
            try await awsAt(bed, ["sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "QueueArn"]).at("Attributes.QueueArn")?
                .stringValue)
        let theirs =
            #"{"Version":"2012-10-17","Statement":[{"Sid":"Theirs","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sqs:ReceiveMessage","Resource":"\#(arn)"}]}"#
        let attributes = try String(decoding: JSONEncoder().encode(["Policy": theirs]), as: UTF8.self)
        _ = try await awsAt(bed, ["sqs", "set-queue-attributes", "--queue-url", url, "--attributes", attributes])

        let (first, run, _) = try await bed.run([.prerequisites], config: config)
        #expect(first.status == .ok, "\(first.text)")
        #expect(try bed.document(run, .prerequisites).at("evidence.interruptionQueue.existed")?.bool == true)
        let policy = try #require(
            try await awsAt(bed, ["sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "Policy"]).at("Attributes.Policy")?
                .stringValue)
        let sids = (try JSONDecoder().decode(JSONValue.self, from: Data(policy.utf8)).at("Statement")?.array ?? []).compactMap {
            $0["Sid"]?.stringValue
        }
        #expect(sids.contains("Theirs") && sids.contains(InterruptionQueuePolicy.sid), "\(sids)")

        // Drift: one rule disabled, another loses its target.
        _ = try await awsAt(bed, ["events", "disable-rule", "--name", names[1]])
        _ = try await awsAt(bed, ["events", "remove-targets", "--rule", names[2], "--ids", "KarpenterInterruptionQueueTarget"])
        let (dry, _, _) = try await bed.run([.prerequisites], config: config, dryRun: true)
        #expect(dry.status == .blockedPhase)
        let missing = dry.blockers.filter { $0.code == "PREREQUISITE_MISSING" }.map(\.message)
        #expect(missing.count == 2, "\(missing)")
        #expect(missing.contains { $0.contains("(ENABLED) of EventBridge rule \(names[1])") })
        #expect(missing.contains { $0.contains("target \(arn) of EventBridge rule \(names[2])") })
        #expect(try await awsAt(bed, ["events", "describe-rule", "--name", names[1]]).at("State")?.stringValue == "DISABLED", "dry run")

        let (fixed, run2, _) = try await bed.run([.prerequisites], config: config)
        #expect(fixed.status == .ok, "\(fixed.text)")
        let rules = try bed.document(run2, .prerequisites).at("evidence.interruptionRules")?.array ?? []
        #expect(rules[1]["updated"]?.bool == true && rules[1]["enabled"]?.bool == true)
        #expect(rules[2]["targetAdded"]?.bool == true && rules[2]["targetsQueue"]?.bool == true)
        #expect(rules[0]["updated"]?.bool == false && rules[0]["targetAdded"]?.bool == false)
        #expect(try await awsAt(bed, ["events", "describe-rule", "--name", names[1]]).at("State")?.stringValue == "ENABLED")
        let targets = try await awsAt(bed, ["events", "list-targets-by-rule", "--rule", names[2]])
        #expect(targets.at("Targets")?.array?.map { $0["Arn"]?.stringValue } == [arn])
    }
}

@Suite("Interruption queue policy and EventBridge rule names (no peers)")
struct InterruptionLogicTests {
    let arn = "arn:aws:sqs:us-east-1:123456789012:demo"

    @Test("a policy allows only when both services may SendMessage to the queue without conditions")
    func policyAllows() {
        #expect(!InterruptionQueuePolicy.allows(nil, queueARN: arn))
        #expect(!InterruptionQueuePolicy.allows("not json", queueARN: arn))
        let merged = InterruptionQueuePolicy.merged(existing: nil, queueARN: arn)
        #expect(InterruptionQueuePolicy.allows(merged, queueARN: arn))
        #expect(!InterruptionQueuePolicy.allows(merged, queueARN: arn + "-other"))
        let onlyEvents =
            #"{"Statement":{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"\#(arn)"}}"#
        #expect(!InterruptionQueuePolicy.allows(onlyEvents, queueARN: arn))
        let both =
            #"{"Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":["sqs:*"],"Resource":"*"},{"Effect":"Allow","Principal":{"Service":["sqs.amazonaws.com"]},"Action":"SQS:SendMessage","Resource":["\#(arn)"]}]}"#
        #expect(InterruptionQueuePolicy.allows(both, queueARN: arn))
        let conditional =
            #"{"Statement":[{"Effect":"Allow","Principal":{"Service":["events.amazonaws.com","sqs.amazonaws.com"]},"Action":"sqs:SendMessage","Resource":"\#(arn)","Condition":{"ArnEquals":{"aws:SourceArn":"x"}}}]}"#
        #expect(!InterruptionQueuePolicy.allows(conditional, queueARN: arn))
    }

    @Test("merging keeps others' statements, replaces kh's own, adds one DenyHTTP")
    func policyMerge() throws {
        let theirs =
            #"{"Version":"2012-10-17","Statement":{"Sid":"Theirs","Effect":"Allow","Principal":"*","Action":"sqs:GetQueueUrl","Resource":"*"}}"#
        let once = InterruptionQueuePolicy.merged(existing: theirs, queueARN: arn)
        let twice = InterruptionQueuePolicy.merged(existing: once, queueARN: arn)
        let sids = try JSONDecoder().decode(JSONValue.self, from: Data(twice.utf8))["Statement"]?.array?.compactMap { $0["Sid"]?.stringValue }
        #expect(sids == ["Theirs", InterruptionQueuePolicy.sid, "DenyHTTP"] || sids == ["Theirs", "DenyHTTP", InterruptionQueuePolicy.sid])
        #expect(sids?.count == 3)
    }

    @Test("rule names are <prefix>-<kind>, at most 64 characters, distinct per long prefix; patterns compare as JSON")
    func ruleNames() {
        let spec = InterruptionRuleSpec.karpenter[1]
        #expect(spec.ruleName(prefix: "Karpenter-demo") == "Karpenter-demo-SpotInterruption")
        let long = "Karpenter-" + String(repeating: "a", count: 90)
        let a = spec.ruleName(prefix: long)
        let b = spec.ruleName(prefix: long + "b")
        #expect(a.count <= 64 && b.count <= 64 && a != b && a.hasSuffix("-SpotInterruption"))
        #expect(a.range(of: #"^[.\-_A-Za-z0-9]+$"#, options: .regularExpression) != nil)
        #expect(spec.matches(#"{ "source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"] }"#))
        #expect(!spec.matches(#"{"source":["aws.ec2"],"detail-type":["EC2 Instance Rebalance Recommendation"]}"#))
        #expect(!spec.matches(nil))
    }
}

/// An ``AWSAPI`` that serves only the Pod Identity calls, from memory (moto has none of
/// them); every other call fails the test.
final class PodIdentityOnlyAWS: AWSAPI {
    struct Unexpected: Error { var call: String }
    let state: Mutex<(associations: [PodIdentityAssociation], creates: Int)>
    init(_ associations: [PodIdentityAssociation] = []) { state = Mutex((associations, 0)) }
    var creates: Int { state.withLock { $0.creates } }

    func listPodIdentityAssociations(cluster: String, namespace: String, serviceAccount: String) async throws -> [PodIdentityAssociation] {
        state.withLock { $0.associations }.map {
            var summary = $0
            summary.roleArn = nil  // as ListPodIdentityAssociations answers
            return summary
        }
    }
    func describePodIdentityAssociation(cluster: String, id: String) async throws -> PodIdentityAssociation? {
        state.withLock { $0.associations }.first { $0.associationId == id }
    }
    func createPodIdentityAssociation(cluster: String, namespace: String, serviceAccount: String, roleARN: String) async throws
        -> PodIdentityAssociation
    {
        let made = PodIdentityAssociation(namespace: namespace, serviceAccount: serviceAccount, associationId: "a-1", roleArn: roleARN)
        state.withLock {
            $0.associations.append(made)
            $0.creates += 1
        }
        return made
    }

    func describeCluster(_ name: String) async throws -> EKSCluster? { throw Unexpected(call: #function) }
    func createCluster(name: String, version: String, roleARN: String, subnetIDs: [String], securityGroupIDs: [String]) async throws -> EKSCluster {
        throw Unexpected(call: #function)
    }
    func listNodegroups(cluster: String) async throws -> [String] { throw Unexpected(call: #function) }
    func describeNodegroup(cluster: String, name: String) async throws -> EKSNodegroup? { throw Unexpected(call: #function) }
    func createNodegroup(cluster: String, spec: InstallConfig.NodegroupSpec, nodeRole: String, subnetIDs: [String]) async throws -> EKSNodegroup {
        throw Unexpected(call: #function)
    }
    func getRole(_ name: String) async throws -> IAMRole? { throw Unexpected(call: #function) }
    func createRole(_ name: String, trustPolicy: String) async throws -> IAMRole { throw Unexpected(call: #function) }
    func attachedRolePolicies(_ role: String) async throws -> [String] { throw Unexpected(call: #function) }
    func attachRolePolicy(role: String, policyARN: String) async throws { throw Unexpected(call: #function) }
    func getInstanceProfile(_ name: String) async throws -> IAMInstanceProfile? { throw Unexpected(call: #function) }
    func createInstanceProfile(_ name: String) async throws -> IAMInstanceProfile { throw Unexpected(call: #function) }
    func addRoleToInstanceProfile(profile: String, role: String) async throws { throw Unexpected(call: #function) }
    func getQueueURL(_ name: String) async throws -> String? { throw Unexpected(call: #function) }
    func createQueue(_ name: String, attributes: [String: String]) async throws -> String { throw Unexpected(call: #function) }
    func queueAttributes(_ url: String) async throws -> [String: String] { throw Unexpected(call: #function) }
    func describeSubnets(_ ids: [String]) async throws -> [TaggedResource] { throw Unexpected(call: #function) }
    func describeSecurityGroups(_ ids: [String]) async throws -> [TaggedResource] { throw Unexpected(call: #function) }
    func createTags(resources: [String], key: String, value: String) async throws { throw Unexpected(call: #function) }
    func setQueueAttributes(_ url: String, attributes: [String: String]) async throws { throw Unexpected(call: #function) }
    func describeRule(_ name: String) async throws -> EventRule? { throw Unexpected(call: #function) }
    func putRule(_ name: String, eventPattern: String, description: String) async throws -> String { throw Unexpected(call: #function) }
    func listTargetsByRule(_ rule: String) async throws -> [EventTarget] { throw Unexpected(call: #function) }
    func putTargets(rule: String, targets: [EventTarget]) async throws { throw Unexpected(call: #function) }
}

@Suite("Pod Identity association logic, against an in-memory AWSAPI (moto has no Pod Identity API)")
struct PodIdentityLogicTests {
    let role = "arn:aws:iam::123456789012:role/KarpenterControllerRole-demo"

    func settings() throws -> InstallSettings {
        var config = InstallConfig()
        config.clusterName = "demo"
        return try InstallSettings.resolve(config: config, options: try InstallOptions.parse([]), environment: [:], configPath: nil)
    }

    @Test("missing: a dry run reports PREREQUISITE_MISSING and creates nothing; a run creates it bound to the controller role; then it is found")
    func createThenFind() async throws {
        let aws = PodIdentityOnlyAWS()
        var blockers: [Blocker] = []
        var warnings: [String] = []
        let dry = await InstallPhases.podIdentityAssociation(
            aws: aws, settings: try settings(), roleARN: role, verifyOnly: true, blockers: &blockers, warnings: &warnings)
        #expect(blockers.map(\.code) == ["PREREQUISITE_MISSING"] && !dry.created && aws.creates == 0)
        #expect(dry.verifiable == true)
        blockers = []
        let made = await InstallPhases.podIdentityAssociation(
            aws: aws, settings: try settings(), roleARN: role, verifyOnly: false, blockers: &blockers, warnings: &warnings)
        #expect(
            blockers.isEmpty && made.created && made.boundRoleArn == role && made.namespace == "kube-system" && made.serviceAccount == "karpenter")
        let again = await InstallPhases.podIdentityAssociation(
            aws: aws, settings: try settings(), roleARN: role, verifyOnly: false, blockers: &blockers, warnings: &warnings)
        #expect(blockers.isEmpty && again.existed && !again.created && again.boundRoleArn == role && aws.creates == 1)
        #expect(warnings.isEmpty)
    }

    @Test("an association bound to another role is POD_IDENTITY_ASSOCIATION_FAILED with the update command, never re-pointed silently")
    func otherRole() async throws {
        let other = "arn:aws:iam::123456789012:role/someone-else"
        let aws = PodIdentityOnlyAWS([
            PodIdentityAssociation(namespace: "kube-system", serviceAccount: "karpenter", associationId: "a-9", roleArn: other)
        ])
        var blockers: [Blocker] = []
        var warnings: [String] = []
        let found = await InstallPhases.podIdentityAssociation(
            aws: aws, settings: try settings(), roleARN: role, verifyOnly: false, blockers: &blockers, warnings: &warnings)
        #expect(found.existed && found.boundRoleArn == other && aws.creates == 0)
        #expect(blockers.map(\.code) == ["POD_IDENTITY_ASSOCIATION_FAILED"])
        #expect(blockers.first?.remediation?.contains("update-pod-identity-association") == true)
    }
}
