import Foundation
import KhCore

/// A secret value: shown as `[redacted:NAME]` by `description`, `debugDescription`
/// and `dump`, and registered with a ``Redactor`` when one is given so it is
/// replaced wherever kh writes text.
public struct SecretValue: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The name it is redacted under (`GITHUB_TOKEN`, `AWS_SECRET_ACCESS_KEY`).
    public let name: String
    private let value: String

    /// A secret named `name`, registered with `redactor` when given.
    public init(name: String, value: String, redactor: Redactor? = nil) {
        self.name = name
        self.value = value
        redactor?.register(name: name, value: value)
    }

    /// Hands the value to `body`, for the transport that must send it. Nothing else should call this.
    public func withValue<R>(_ body: (String) throws -> R) rethrows -> R { try body(value) }

    public var description: String { "[redacted:\(name)]" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["name": name], displayStyle: .struct) }
}

/// AWS credentials: an access key id, its secret, and a session token for temporary credentials.
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible {
    /// The access key id (not a secret: it appears in every signed request).
    public var accessKeyID: String
    /// The secret access key (redacted as `AWS_SECRET_ACCESS_KEY`).
    public var secretAccessKey: SecretValue
    /// The session token of temporary credentials (redacted as `AWS_SESSION_TOKEN`).
    public var sessionToken: SecretValue?

    /// Registers the secret and the token with `redactor` under `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, redactor: Redactor? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = SecretValue(name: "AWS_SECRET_ACCESS_KEY", value: secretAccessKey, redactor: redactor)
        self.sessionToken = sessionToken.map { SecretValue(name: "AWS_SESSION_TOKEN", value: $0, redactor: redactor) }
    }

    /// Reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`; nil when the first two are not set.
    public static func fromEnvironment(_ environment: [String: String], redactor: Redactor? = nil) -> AWSCredentials? {
        guard let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty, let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else {
            return nil
        }
        let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token, redactor: redactor)
    }

    public var description: String {
        "access key \(accessKeyID), secret \(secretAccessKey)" + (sessionToken.map { ", session token \($0)" } ?? "")
    }
}

/// How a request proves who sends it.
public enum HTTPAuthentication: Sendable, Equatable, CustomStringConvertible {
    /// `Authorization: Bearer TOKEN`.
    case bearer(SecretValue)
    /// AWS Signature Version 4, computed by libcurl (`CURLOPT_AWS_SIGV4`) for `region`
    /// and `service` (`sts`, `eks`, `sqs`, …); a session token is sent as `X-Amz-Security-Token`.
    case awsSigV4(AWSCredentials, region: String, service: String)
    /// `Authorization: Basic base64(USER:PASSWORD)` (kubeconfig's `username`/`password`).
    case basic(username: String, password: SecretValue)

    /// A bearer token, registered with `redactor` under `name`.
    public static func bearer(_ token: String, name: String = "HTTP_BEARER_TOKEN", redactor: Redactor? = nil) -> HTTPAuthentication {
        .bearer(SecretValue(name: name, value: token, redactor: redactor))
    }

    /// Every secret this carries, so messages built without a redactor can still hide them.
    var secrets: [SecretValue] {
        switch self {
        case .bearer(let token): [token]
        case .awsSigV4(let credentials, _, _): [credentials.secretAccessKey] + (credentials.sessionToken.map { [$0] } ?? [])
        case .basic(_, let password): [password]
        }
    }

    public var description: String {
        switch self {
        case .bearer(let token): "Bearer \(token)"
        case .awsSigV4(let credentials, let region, let service): "AWS SigV4 \(region)/\(service) (\(credentials))"
        case .basic(let username, let password): "Basic \(username):\(password)"
        }
    }
}
