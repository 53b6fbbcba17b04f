import Foundation
import KhCore
import KhHTTP

/// An EKS cluster as DescribeCluster answers.
public struct EKSCluster: Codable, Sendable, Equatable {
    public var name: String
    public var arn: String?
    public var status: String?
    public var endpoint: String?
    public var version: String?
    public var roleArn: String?
    public var resourcesVpcConfig: VpcConfig?
    public struct VpcConfig: Codable, Sendable, Equatable {
        public var subnetIds: [String]?
        public var securityGroupIds: [String]?
        public var clusterSecurityGroupId: String?
        public var vpcId: String?
    }
}

/// A managed node group as DescribeNodegroup answers.
public struct EKSNodegroup: Codable, Sendable, Equatable {
    public var nodegroupName: String
    public var status: String?
    public var scalingConfig: Scaling?
    public var instanceTypes: [String]?
    public struct Scaling: Codable, Sendable, Equatable {
        public var minSize: Int?
        public var maxSize: Int?
        public var desiredSize: Int?
    }
}

/// An IAM role.
public struct IAMRole: Codable, Sendable, Equatable {
    public var name: String
    public var arn: String
}

/// An IAM instance profile and the roles in it.
public struct IAMInstanceProfile: Codable, Sendable, Equatable {
    public var name: String
    public var arn: String
    public var roles: [String]
}

/// A subnet or security group and its tags.
public struct TaggedResource: Codable, Sendable, Equatable {
    public var id: String
    public var tags: [String: String]
}

/// An AWS API answered with an error (or could not be reached).
public struct AWSError: KhReportableError, Equatable {
    public var service: String
    public var action: String
    public var status: Int
    public var code: String
    public var detail: String
    public var exitCode: KhExitCode { .external }
    public var message: String { "AWS \(service) \(action): \(status == 0 ? "" : "HTTP \(status) ")\(code): \(detail)" }
    public var hint: String? {
        switch code {
        case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation": "the credentials lack permission for \(service):\(action)"
        case "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException": "check AWS_PROFILE / the access key"
        default: nil
        }
    }
}

/// The AWS calls the install makes. ``LiveAWS`` signs them with SigV4 through KhHTTP;
/// tests run it against moto.
public protocol AWSAPI: Sendable {
    func describeCluster(_ name: String) async throws -> EKSCluster?
    func createCluster(name: String, version: String, roleARN: String, subnetIDs: [String], securityGroupIDs: [String]) async throws -> EKSCluster
    func listNodegroups(cluster: String) async throws -> [String]
    func describeNodegroup(cluster: String, name: String) async throws -> EKSNodegroup?
    func createNodegroup(cluster: String, spec: InstallConfig.NodegroupSpec, nodeRole: String, subnetIDs: [String]) async throws -> EKSNodegroup
    func getRole(_ name: String) async throws -> IAMRole?
    func createRole(_ name: String, trustPolicy: String) async throws -> IAMRole
    func attachedRolePolicies(_ role: String) async throws -> [String]
    func attachRolePolicy(role: String, policyARN: String) async throws
    func getInstanceProfile(_ name: String) async throws -> IAMInstanceProfile?
    func createInstanceProfile(_ name: String) async throws -> IAMInstanceProfile
    func addRoleToInstanceProfile(profile: String, role: String) async throws
    func getQueueURL(_ name: String) async throws -> String?
    func createQueue(_ name: String, attributes: [String: String]) async throws -> String
    func queueAttributes(_ url: String) async throws -> [String: String]
    func describeSubnets(_ ids: [String]) async throws -> [TaggedResource]
    func describeSecurityGroups(_ ids: [String]) async throws -> [TaggedResource]
    func createTags(resources: [String], key: String, value: String) async throws
    func setQueueAttributes(_ url: String, attributes: [String: String]) async throws
    func describeRule(_ name: String) async throws -> EventRule?
    func putRule(_ name: String, eventPattern: String, description: String) async throws -> String
    func listTargetsByRule(_ rule: String) async throws -> [EventTarget]
    func putTargets(rule: String, targets: [EventTarget]) async throws
    /// Throws ``AWSError`` with code ``AWSError/unsupportedOperation`` when the endpoint
    /// does not serve the Pod Identity API (an emulator), so callers can say so.
    func listPodIdentityAssociations(cluster: String, namespace: String, serviceAccount: String) async throws -> [PodIdentityAssociation]
    func describePodIdentityAssociation(cluster: String, id: String) async throws -> PodIdentityAssociation?
    func createPodIdentityAssociation(cluster: String, namespace: String, serviceAccount: String, roleARN: String) async throws
        -> PodIdentityAssociation
}

/// Finds credentials the way the AWS CLI does, for the cases kh supports: an explicit
/// profile (flag or config) reads the shared credentials file; else the environment's
/// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`; else `AWS_PROFILE` (or `default`) from the file.
public struct AWSCredentialResolver: Sendable {
    public var environment: [String: String]
    public var redactor: Redactor?

    public init(environment: [String: String], redactor: Redactor?) {
        self.environment = environment
        self.redactor = redactor
    }

    var credentialsFile: String {
        if let file = environment["AWS_SHARED_CREDENTIALS_FILE"], !file.isEmpty { return file }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.aws/credentials"
    }

    public func resolve(profile explicit: String?) throws -> AWSCredentials {
        if explicit == nil, let credentials = AWSCredentials.fromEnvironment(environment, redactor: redactor) { return credentials }
        let profile = explicit ?? environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        let file = credentialsFile
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw KhError.usage(
                "no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set and \(file) cannot be read (profile \(profile))",
                hint: "nothing was changed: set AWS_PROFILE to a profile of the shared credentials file, or export the access key")
        }
        let sections = Self.parseINI(text)
        guard let section = sections[profile] else {
            throw KhError.usage(
                "no AWS credentials: profile \"\(profile)\" is not in \(file) (profiles there: \(sections.keys.sorted().joined(separator: ", ")))",
                hint: "nothing was changed")
        }
        guard let id = section["aws_access_key_id"], let secret = section["aws_secret_access_key"], !id.isEmpty, !secret.isEmpty else {
            throw KhError.usage("no AWS credentials: profile \"\(profile)\" in \(file) lacks aws_access_key_id or aws_secret_access_key")
        }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: section["aws_session_token"], redactor: redactor)
    }

    /// `[name]` sections of `key = value` lines.
    public static func parseINI(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                var name = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                if name.hasPrefix("profile ") { name = String(name.dropFirst(8)).trimmingCharacters(in: .whitespaces) }
                current = name
                sections[name, default: [:]] = sections[name] ?? [:]
                continue
            }
            guard let current, let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            sections[current]?[key] = value
        }
        return sections
    }
}

/// AWS over HTTPS with SigV4 (libcurl's `CURLOPT_AWS_SIGV4` through KhHTTP): EKS (REST
/// JSON), IAM and EC2 (query API, XML answers), SQS (JSON protocol). Endpoints honour
/// `AWS_ENDPOINT_URL_<SERVICE>` and `AWS_ENDPOINT_URL`. Every call goes to the ledger.
public struct LiveAWS: AWSAPI {
    public var region: String
    public var credentials: AWSCredentials
    public var environment: [String: String]
    public var ledger: CommandLedger
    public var redactor: Redactor?
    public var clock: KhClock
    let client: HTTPClient

    public init(
        region: String, credentials: AWSCredentials, environment: [String: String], ledger: CommandLedger, redactor: Redactor?,
        clock: KhClock = .live
    ) {
        self.region = region
        self.credentials = credentials
        self.environment = environment
        self.ledger = ledger
        self.redactor = redactor
        self.clock = clock
        self.client = HTTPClient(configuration: .init(timeout: .seconds(60)), clock: clock, redactor: redactor)
    }

    func endpoint(_ service: String) -> URL {
        let specific = environment["AWS_ENDPOINT_URL_" + service.uppercased()].flatMap { $0.isEmpty ? nil : $0 }
        if let text = specific ?? environment["AWS_ENDPOINT_URL"].flatMap({ $0.isEmpty ? nil : $0 }), let url = URL(string: text) { return url }
        switch service {
        case "iam": return URL(string: "https://iam.amazonaws.com/")!
        default: return URL(string: "https://\(service).\(region).amazonaws.com/")!
        }
    }

    func auth(_ service: String) -> HTTPAuthentication {
        .awsSigV4(credentials, region: service == "iam" ? "us-east-1" : region, service: service)
    }

    /// Sends and records one call; transport failures become ``AWSError``.
    func call(_ service: String, _ action: String, _ subject: String, _ request: HTTPRequest) async throws -> HTTPResponse {
        var request = request
        request.authentication = auth(service)
        let started = clock.now()
        let label = "aws \(service) \(action)" + (subject.isEmpty ? "" : " \(subject)")
        do {
            let response = try await client.send(request, retry: request.method.isIdempotent ? nil : RetryPolicy.none)
            ledger.add(
                CommandRecord(
                    command: label, outcome: "HTTP \(response.status)", ok: response.isSuccess,
                    durationSeconds: clock.now().timeIntervalSince(started)))
            return response
        } catch let error as HTTPError {
            ledger.add(CommandRecord(command: label, outcome: "\(error.kind)", ok: false, durationSeconds: clock.now().timeIntervalSince(started)))
            throw AWSError(service: service, action: action, status: 0, code: "\(error.kind)", detail: error.message)
        }
    }

    // MARK: EKS (REST JSON)

    func eks(_ method: HTTPMethod, _ path: String, action: String, subject: String, body: (any Encodable & Sendable)? = nil) async throws
        -> HTTPResponse?
    {
        let url = URL(string: endpoint("eks").absoluteString.trimmingSuffix("/") + path)!
        let request: HTTPRequest
        if let body {
            request = try HTTPRequest.json(method, url, body: AnyEncodable(body))
        } else {
            request = HTTPRequest(method, url, headers: ["Accept": "application/json"])
        }
        let response = try await call("eks", action, subject, request)
        if response.status == 404 { return nil }
        guard response.isSuccess else { throw jsonError("eks", action, response) }
        return response
    }

    func jsonError(_ service: String, _ action: String, _ response: HTTPResponse) -> AWSError {
        struct Body: Decodable {
            var __type: String?
            var message: String?
            var Message: String?
        }
        let body = try? JSONDecoder().decode(Body.self, from: response.body)
        let code =
            response.headers["x-amzn-ErrorType"]?.split(separator: ":").first.map(String.init)
            ?? body?.__type?.split(separator: "#").last.map(String.init) ?? "HTTP\(response.status)"
        return AWSError(
            service: service, action: action, status: response.status, code: code,
            detail: body?.message ?? body?.Message ?? String(response.text.prefix(300)))
    }

    func decode<T: Decodable>(_ type: T.Type, _ response: HTTPResponse, _ service: String, _ action: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: response.body)
        } catch {
            throw AWSError(service: service, action: action, status: response.status, code: "UnreadableResponse", detail: "\(error)")
        }
    }

    public func describeCluster(_ name: String) async throws -> EKSCluster? {
        struct Answer: Decodable { var cluster: EKSCluster }
        guard let response = try await eks(.get, "/clusters/\(name)", action: "DescribeCluster", subject: name) else { return nil }
        return try decode(Answer.self, response, "eks", "DescribeCluster").cluster
    }

    public func createCluster(name: String, version: String, roleARN: String, subnetIDs: [String], securityGroupIDs: [String]) async throws
        -> EKSCluster
    {
        struct Body: Encodable, Sendable {
            var name: String
            var version: String
            var roleArn: String
            var resourcesVpcConfig: [String: [String]]
        }
        struct Answer: Decodable { var cluster: EKSCluster }
        let body = Body(
            name: name, version: version, roleArn: roleARN, resourcesVpcConfig: ["subnetIds": subnetIDs, "securityGroupIds": securityGroupIDs])
        guard let response = try await eks(.post, "/clusters", action: "CreateCluster", subject: name, body: body) else {
            throw AWSError(service: "eks", action: "CreateCluster", status: 404, code: "NotFound", detail: "endpoint answered 404")
        }
        return try decode(Answer.self, response, "eks", "CreateCluster").cluster
    }

    public func listNodegroups(cluster: String) async throws -> [String] {
        struct Answer: Decodable { var nodegroups: [String]? }
        guard let response = try await eks(.get, "/clusters/\(cluster)/node-groups", action: "ListNodegroups", subject: cluster) else { return [] }
        return try decode(Answer.self, response, "eks", "ListNodegroups").nodegroups ?? []
    }

    public func describeNodegroup(cluster: String, name: String) async throws -> EKSNodegroup? {
        struct Answer: Decodable { var nodegroup: EKSNodegroup }
        guard let response = try await eks(.get, "/clusters/\(cluster)/node-groups/\(name)", action: "DescribeNodegroup", subject: name) else {
            return nil
        }
        return try decode(Answer.self, response, "eks", "DescribeNodegroup").nodegroup
    }

    public func createNodegroup(cluster: String, spec: InstallConfig.NodegroupSpec, nodeRole: String, subnetIDs: [String]) async throws
        -> EKSNodegroup
    {
        struct Body: Encodable, Sendable {
            var nodegroupName: String
            var nodeRole: String
            var subnets: [String]
            var instanceTypes: [String]
            var scalingConfig: [String: Int]
        }
        struct Answer: Decodable { var nodegroup: EKSNodegroup }
        let body = Body(
            nodegroupName: spec.name, nodeRole: nodeRole, subnets: subnetIDs, instanceTypes: spec.instanceTypes,
            scalingConfig: ["minSize": spec.minSize, "maxSize": spec.maxSize, "desiredSize": spec.desiredSize])
        guard let response = try await eks(.post, "/clusters/\(cluster)/node-groups", action: "CreateNodegroup", subject: spec.name, body: body)
        else {
            throw AWSError(service: "eks", action: "CreateNodegroup", status: 404, code: "ResourceNotFoundException", detail: "cluster \(cluster)")
        }
        return try decode(Answer.self, response, "eks", "CreateNodegroup").nodegroup
    }

    // MARK: query APIs (IAM, EC2)

    /// A query-API call; nil when the answer is one of `missing` (NoSuchEntity, …).
    func query(_ service: String, _ action: String, subject: String, _ fields: [(String, String)], missing: Set<String> = []) async throws
        -> XMLElement?
    {
        let version = service == "iam" ? "2010-05-08" : "2016-11-15"
        let pairs = [("Action", action), ("Version", version)] + fields
        let body = pairs.map { HTTPRequest.formEncode($0.0) + "=" + HTTPRequest.formEncode($0.1) }.joined(separator: "&")
        let request = HTTPRequest(
            .post, endpoint(service), headers: ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"], body: Data(body.utf8))
        let response = try await call(service, action, subject, request)
        let xml = XMLElement.parse(response.text)
        guard response.isSuccess else {
            let code = xml?.value("Code") ?? "HTTP\(response.status)"
            if missing.contains(code) { return nil }
            throw AWSError(
                service: service, action: action, status: response.status, code: code,
                detail: xml?.value("Message") ?? String(response.text.prefix(300)))
        }
        guard let xml else {
            throw AWSError(
                service: service, action: action, status: response.status, code: "UnreadableResponse", detail: String(response.text.prefix(300)))
        }
        return xml
    }

    public func getRole(_ name: String) async throws -> IAMRole? {
        guard let xml = try await query("iam", "GetRole", subject: name, [("RoleName", name)], missing: ["NoSuchEntity"]) else { return nil }
        return IAMRole(name: xml.value("RoleName") ?? name, arn: xml.value("Arn") ?? "")
    }

    public func createRole(_ name: String, trustPolicy: String) async throws -> IAMRole {
        let xml = try await query("iam", "CreateRole", subject: name, [("RoleName", name), ("AssumeRolePolicyDocument", trustPolicy)])
        return IAMRole(name: xml?.value("RoleName") ?? name, arn: xml?.value("Arn") ?? "")
    }

    public func attachedRolePolicies(_ role: String) async throws -> [String] {
        let xml = try await query("iam", "ListAttachedRolePolicies", subject: role, [("RoleName", role)])
        return xml?.first("AttachedPolicies")?.all("member").compactMap { $0.value("PolicyArn") } ?? []
    }

    public func attachRolePolicy(role: String, policyARN: String) async throws {
        _ = try await query("iam", "AttachRolePolicy", subject: "\(role) \(policyARN)", [("RoleName", role), ("PolicyArn", policyARN)])
    }

    func instanceProfile(_ xml: XMLElement?, _ name: String) -> IAMInstanceProfile {
        let profile = xml?.first("InstanceProfile")
        let roles = profile?.first("Roles")?.all("member").compactMap { $0.value("RoleName") } ?? []
        return IAMInstanceProfile(
            name: profile?.all("InstanceProfileName").first?.text ?? name, arn: profile?.all("Arn").first?.text ?? "", roles: roles)
    }

    public func getInstanceProfile(_ name: String) async throws -> IAMInstanceProfile? {
        guard let xml = try await query("iam", "GetInstanceProfile", subject: name, [("InstanceProfileName", name)], missing: ["NoSuchEntity"])
        else { return nil }
        return instanceProfile(xml, name)
    }

    public func createInstanceProfile(_ name: String) async throws -> IAMInstanceProfile {
        instanceProfile(try await query("iam", "CreateInstanceProfile", subject: name, [("InstanceProfileName", name)]), name)
    }

    public func addRoleToInstanceProfile(profile: String, role: String) async throws {
        _ = try await query("iam", "AddRoleToInstanceProfile", subject: "\(profile) \(role)", [("InstanceProfileName", profile), ("RoleName", role)])
    }

    func tagged(_ xml: XMLElement?, set: String, idField: String) -> [TaggedResource] {
        (xml?.first(set)?.all("item") ?? []).map { item in
            var tags: [String: String] = [:]
            for tag in item.all("tagSet").first?.all("item") ?? [] {
                if let key = tag.all("key").first?.text { tags[key] = tag.all("value").first?.text ?? "" }
            }
            return TaggedResource(id: item.all(idField).first?.text ?? "", tags: tags)
        }
    }

    func idFields(_ name: String, _ ids: [String]) -> [(String, String)] {
        ids.enumerated().map { ("\(name).\($0.offset + 1)", $0.element) }
    }

    public func describeSubnets(_ ids: [String]) async throws -> [TaggedResource] {
        let xml = try await query("ec2", "DescribeSubnets", subject: ids.joined(separator: ","), idFields("SubnetId", ids))
        return tagged(xml, set: "subnetSet", idField: "subnetId")
    }

    public func describeSecurityGroups(_ ids: [String]) async throws -> [TaggedResource] {
        let xml = try await query("ec2", "DescribeSecurityGroups", subject: ids.joined(separator: ","), idFields("GroupId", ids))
        return tagged(xml, set: "securityGroupInfo", idField: "groupId")
    }

    public func createTags(resources: [String], key: String, value: String) async throws {
        _ = try await query(
            "ec2", "CreateTags", subject: resources.joined(separator: ","),
            idFields("ResourceId", resources) + [("Tag.1.Key", key), ("Tag.1.Value", value)])
    }

    // MARK: SQS (JSON protocol)

    func sqs(_ action: String, subject: String, _ body: [String: JSONValue]) async throws -> HTTPResponse {
        let request = try HTTPRequest.json(
            .post, endpoint("sqs"), body: JSONValue.object(body),
            headers: ["Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.\(action)"])
        return try await call("sqs", action, subject, request)
    }

    public func getQueueURL(_ name: String) async throws -> String? {
        struct Answer: Decodable { var QueueUrl: String }
        let response = try await sqs("GetQueueUrl", subject: name, ["QueueName": .string(name)])
        if !response.isSuccess {
            let error = jsonError("sqs", "GetQueueUrl", response)
            if error.code.contains("NonExistentQueue") || error.code.contains("QueueDoesNotExist") { return nil }
            throw error
        }
        return try decode(Answer.self, response, "sqs", "GetQueueUrl").QueueUrl
    }

    public func createQueue(_ name: String, attributes: [String: String]) async throws -> String {
        struct Answer: Decodable { var QueueUrl: String }
        let response = try await sqs(
            "CreateQueue", subject: name, ["QueueName": .string(name), "Attributes": .object(attributes.mapValues { .string($0) })])
        guard response.isSuccess else { throw jsonError("sqs", "CreateQueue", response) }
        return try decode(Answer.self, response, "sqs", "CreateQueue").QueueUrl
    }

    public func queueAttributes(_ url: String) async throws -> [String: String] {
        struct Answer: Decodable { var Attributes: [String: String]? }
        let response = try await sqs("GetQueueAttributes", subject: url, ["QueueUrl": .string(url), "AttributeNames": .array(["All"])])
        guard response.isSuccess else { throw jsonError("sqs", "GetQueueAttributes", response) }
        return try decode(Answer.self, response, "sqs", "GetQueueAttributes").Attributes ?? [:]
    }
}

/// Type erasure so request bodies of different types share one call path.
struct AnyEncodable: Encodable, Sendable {
    let value: any Encodable & Sendable
    init(_ value: any Encodable & Sendable) { self.value = value }
    func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
