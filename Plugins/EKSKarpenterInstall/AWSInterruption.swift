import Foundation
import KhCore
import KhHTTP

/// An EventBridge rule as DescribeRule answers.
public struct EventRule: Codable, Sendable, Equatable {
    public var name: String
    public var arn: String?
    /// The event pattern, a JSON document in a string.
    public var eventPattern: String?
    /// `ENABLED` or `DISABLED`.
    public var state: String?

    public init(name: String, arn: String? = nil, eventPattern: String? = nil, state: String? = nil) {
        self.name = name
        self.arn = arn
        self.eventPattern = eventPattern
        self.state = state
    }
}

/// One target of an EventBridge rule.
public struct EventTarget: Codable, Sendable, Equatable {
    public var id: String
    public var arn: String

    public init(id: String, arn: String) {
        self.id = id
        self.arn = arn
    }
}

/// An EKS Pod Identity association (ListPodIdentityAssociations gives no role ARN;
/// DescribePodIdentityAssociation does).
public struct PodIdentityAssociation: Codable, Sendable, Equatable {
    public var namespace: String
    public var serviceAccount: String
    public var associationId: String?
    public var associationArn: String?
    public var roleArn: String?

    public init(namespace: String, serviceAccount: String, associationId: String? = nil, associationArn: String? = nil, roleArn: String? = nil) {
        self.namespace = namespace
        self.serviceAccount = serviceAccount
        self.associationId = associationId
        self.associationArn = associationArn
        self.roleArn = roleArn
    }
}

extension AWSError {
    /// The code kh gives an answer meaning "this endpoint does not serve that API at all"
    /// (an emulator without it), as opposed to an AWS error about the request.
    public static let unsupportedOperation = "UnsupportedOperation"
}

/// SQS SetQueueAttributes, EventBridge (JSON 1.1, `AWSEvents.*`) and the EKS Pod Identity API.
extension LiveAWS {
    public func setQueueAttributes(_ url: String, attributes: [String: String]) async throws {
        let response = try await sqs(
            "SetQueueAttributes", subject: url, ["QueueUrl": .string(url), "Attributes": .object(attributes.mapValues { .string($0) })])
        guard response.isSuccess else { throw jsonError("sqs", "SetQueueAttributes", response) }
    }

    // MARK: EventBridge (JSON 1.1)

    func events(_ action: String, subject: String, _ body: [String: JSONValue]) async throws -> HTTPResponse {
        let request = try HTTPRequest.json(
            .post, endpoint("events"), body: JSONValue.object(body),
            headers: ["Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AWSEvents.\(action)"])
        return try await call("events", action, subject, request)
    }

    public func describeRule(_ name: String) async throws -> EventRule? {
        struct Answer: Decodable {
            var Name: String?
            var Arn: String?
            var EventPattern: String?
            var State: String?
        }
        let response = try await events("DescribeRule", subject: name, ["Name": .string(name)])
        guard response.isSuccess else {
            let error = jsonError("events", "DescribeRule", response)
            if error.code == "ResourceNotFoundException" { return nil }
            throw error
        }
        let answer = try decode(Answer.self, response, "events", "DescribeRule")
        return EventRule(name: answer.Name ?? name, arn: answer.Arn, eventPattern: answer.EventPattern, state: answer.State)
    }

    public func putRule(_ name: String, eventPattern: String, description: String) async throws -> String {
        struct Answer: Decodable { var RuleArn: String? }
        let response = try await events(
            "PutRule", subject: name,
            ["Name": .string(name), "EventPattern": .string(eventPattern), "State": "ENABLED", "Description": .string(description)])
        guard response.isSuccess else { throw jsonError("events", "PutRule", response) }
        return try decode(Answer.self, response, "events", "PutRule").RuleArn ?? ""
    }

    public func listTargetsByRule(_ rule: String) async throws -> [EventTarget] {
        struct Answer: Decodable {
            struct Target: Decodable {
                var Id: String
                var Arn: String
            }
            var Targets: [Target]?
            var NextToken: String?
        }
        var targets: [EventTarget] = []
        var token: String?
        for _ in 0..<20 {  // 20 pages of 100: far more than EventBridge's 5 targets per rule
            var body: [String: JSONValue] = ["Rule": .string(rule)]
            if let token { body["NextToken"] = .string(token) }
            let response = try await events("ListTargetsByRule", subject: rule, body)
            guard response.isSuccess else { throw jsonError("events", "ListTargetsByRule", response) }
            let answer = try decode(Answer.self, response, "events", "ListTargetsByRule")
            targets += (answer.Targets ?? []).map { EventTarget(id: $0.Id, arn: $0.Arn) }
            guard let next = answer.NextToken, !next.isEmpty else { return targets }
            token = next
        }
        return targets
    }

    public func putTargets(rule: String, targets: [EventTarget]) async throws {
        struct Answer: Decodable {
            struct Failed: Decodable {
                var TargetId: String?
                var ErrorCode: String?
                var ErrorMessage: String?
            }
            var FailedEntryCount: Int?
            var FailedEntries: [Failed]?
        }
        let list: [JSONValue] = targets.map { ["Id": .string($0.id), "Arn": .string($0.arn)] }
        let response = try await events("PutTargets", subject: rule, ["Rule": .string(rule), "Targets": .array(list)])
        guard response.isSuccess else { throw jsonError("events", "PutTargets", response) }
        let answer = try decode(Answer.self, response, "events", "PutTargets")
        if let failed = answer.FailedEntries?.first, (answer.FailedEntryCount ?? 1) > 0 {
            throw AWSError(
                service: "events", action: "PutTargets", status: response.status, code: failed.ErrorCode ?? "FailedEntry",
                detail: "target \(failed.TargetId ?? "?"): \(failed.ErrorMessage ?? "rejected")")
        }
    }

    // MARK: EKS Pod Identity (REST JSON)

    /// An EKS call whose 404 may mean "no such route here" rather than an AWS answer:
    /// AWS always names its error (`x-amzn-ErrorType` or a JSON `__type`/`code`).
    func eksPodIdentity(_ method: HTTPMethod, _ path: String, query: [URLQueryItem] = [], action: String, subject: String, body: JSONValue? = nil)
        async throws -> HTTPResponse
    {
        var components = URLComponents(string: endpoint("eks").absoluteString.trimmingSuffix("/") + path)!
        if !query.isEmpty { components.queryItems = query }
        let url = components.url!
        let request =
            if let body {
                try HTTPRequest.json(method, url, body: body)
            } else {
                HTTPRequest(method, url, headers: ["Accept": "application/json"])
            }
        let response = try await call("eks", action, subject, request)
        if response.isSuccess { return response }
        let error = jsonError("eks", action, response)
        if Self.isUnsupported(response, error) {
            throw AWSError(
                service: "eks", action: action, status: response.status, code: AWSError.unsupportedOperation,
                detail:
                    "the endpoint \(endpoint("eks").absoluteString) does not serve EKS \(action) (HTTP \(response.status) without an AWS error code)")
        }
        throw error
    }

    /// A 404/405/501 that carries no AWS error type, or an unknown-operation code.
    static func isUnsupported(_ response: HTTPResponse, _ error: AWSError) -> Bool {
        if ["UnknownOperationException", "InvalidAction", "NotImplemented", "NotImplementedException"].contains(error.code) { return true }
        guard [404, 405, 501].contains(response.status) else { return false }
        if response.headers["x-amzn-ErrorType"] != nil { return false }
        struct Body: Decodable {
            var __type: String?
            var code: String?
        }
        let body = try? JSONDecoder().decode(Body.self, from: response.body)
        return body?.__type == nil && body?.code == nil
    }

    public func listPodIdentityAssociations(cluster: String, namespace: String, serviceAccount: String) async throws -> [PodIdentityAssociation] {
        struct Answer: Decodable {
            var associations: [PodIdentityAssociation]?
            var nextToken: String?
        }
        var found: [PodIdentityAssociation] = []
        var token: String?
        for _ in 0..<20 {
            var query = [URLQueryItem(name: "namespace", value: namespace), URLQueryItem(name: "serviceAccount", value: serviceAccount)]
            if let token { query.append(URLQueryItem(name: "nextToken", value: token)) }
            let response = try await eksPodIdentity(
                .get, "/clusters/\(cluster)/pod-identity-associations", query: query, action: "ListPodIdentityAssociations",
                subject: "\(cluster) \(namespace)/\(serviceAccount)")
            let answer = try decode(Answer.self, response, "eks", "ListPodIdentityAssociations")
            found += answer.associations ?? []
            guard let next = answer.nextToken, !next.isEmpty else { break }
            token = next
        }
        return found.filter { $0.namespace == namespace && $0.serviceAccount == serviceAccount }
    }

    public func describePodIdentityAssociation(cluster: String, id: String) async throws -> PodIdentityAssociation? {
        struct Answer: Decodable { var association: PodIdentityAssociation }
        do {
            let response = try await eksPodIdentity(
                .get, "/clusters/\(cluster)/pod-identity-associations/\(id)", action: "DescribePodIdentityAssociation", subject: id)
            return try decode(Answer.self, response, "eks", "DescribePodIdentityAssociation").association
        } catch let error as AWSError where error.code == "ResourceNotFoundException" {
            return nil
        }
    }

    public func createPodIdentityAssociation(cluster: String, namespace: String, serviceAccount: String, roleARN: String) async throws
        -> PodIdentityAssociation
    {
        struct Answer: Decodable { var association: PodIdentityAssociation }
        let body: JSONValue = ["namespace": .string(namespace), "serviceAccount": .string(serviceAccount), "roleArn": .string(roleARN)]
        let response = try await eksPodIdentity(
            .post, "/clusters/\(cluster)/pod-identity-associations", action: "CreatePodIdentityAssociation",
            subject: "\(cluster) \(namespace)/\(serviceAccount)", body: body)
        return try decode(Answer.self, response, "eks", "CreatePodIdentityAssociation").association
    }
}
