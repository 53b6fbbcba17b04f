import Foundation
import KhCore
import KhHTTP

/// A failure of the Hetzner Cloud API or of kh's use of it, with a kh exit code.
///
/// API errors come in Hetzner's shape, `{"error": {"code", "message"}}`; the code and message
/// are kept. The token never appears in a message (paths and Hetzner's messages do not carry it,
/// and transport errors are redacted by ``KhHTTP/HTTPClient``).
public struct HCloudError: KhReportableError, Equatable {
    /// What went wrong, coarsely.
    public enum Kind: String, Sendable, Codable, Equatable {
        /// No token was given (exit 2).
        case missingToken = "missing_token"
        /// The endpoint is not an http(s) URL, or another setting is wrong (exit 2).
        case configuration
        /// The API could not be reached: connection refused, DNS, TLS, deadline (exit 4).
        case unreachable
        /// 401: the token was refused (exit 4).
        case unauthorized
        /// 403: forbidden, read-only token, protected resource (exit 4).
        case forbidden
        /// 404 `not_found` (exit 4).
        case notFound = "not_found"
        /// 400 `invalid_input` / `json_error`: kh sent something the API rejects, e.g. a bad label selector (exit 2).
        case invalidInput = "invalid_input"
        /// 409/422/423: uniqueness, in use, locked, conflict (exit 4).
        case conflict
        /// 429 after the retries kh allows (exit 4).
        case rateLimited = "rate_limited"
        /// 5xx (exit 4).
        case server
        /// An action ended with `status: error` (exit 4).
        case actionFailed = "action_failed"
        /// Actions still running at the deadline (exit 4).
        case deadline
        /// A response kh could not read (exit 4).
        case decoding
    }

    /// What went wrong.
    public var kind: Kind
    /// The HTTP status, when the API answered.
    public var status: Int?
    /// Hetzner's error code (`not_found`, `uniqueness_error`, …), when it sent one.
    public var code: String?
    /// What happened, in one line.
    public var detail: String
    /// The request, as `METHOD /path` (no host, no query values that could matter, never the token).
    public var request: String?

    public init(kind: Kind, status: Int? = nil, code: String? = nil, detail: String, request: String? = nil) {
        self.kind = kind
        self.status = status
        self.code = code
        self.detail = detail
        self.request = request
    }

    public var exitCode: KhExitCode {
        switch kind {
        case .missingToken, .configuration, .invalidInput: .usage
        default: .external
        }
    }

    public var message: String {
        var text = "Hetzner Cloud API"
        if let request { text += " \(request)" }
        text += ": "
        if let status { text += "HTTP \(status) " }
        if let code { text += "\(code): " }
        return text + detail
    }

    public var hint: String? {
        switch kind {
        case .missingToken:
            "set HCLOUD_TOKEN (or the config's token) to a read/write API token of the Hetzner Cloud project"
        case .unauthorized:
            "the token was refused: check HCLOUD_TOKEN (or the config's token) belongs to this project and was not revoked"
        case .forbidden: "the token may be read-only, or the resource is protected"
        case .unreachable: "check the endpoint (HCLOUD_ENDPOINT, default https://api.hetzner.cloud/v1) and the network"
        case .rateLimited: "the project's request budget is spent; wait for RateLimit-Reset or lower the concurrency"
        case .deadline: "the actions may still finish: list the resources again before retrying"
        default: nil
        }
    }

    /// Maps an API error answer (any non-2xx) to a typed error.
    static func from(response: HTTPResponse, request: String) -> HCloudError {
        struct Envelope: Decodable {
            struct Body: Decodable {
                var code: String
                var message: String
            }
            var error: Body
        }
        let envelope = try? JSONDecoder().decode(Envelope.self, from: response.body)
        let code = envelope?.error.code
        let detail = envelope?.error.message ?? String(decoding: response.body.prefix(200), as: UTF8.self)
        let kind: Kind
        switch (response.status, code) {
        case (401, _), (_, "unauthorized"): kind = .unauthorized
        case (429, _), (_, "rate_limit_exceeded"): kind = .rateLimited
        case (404, _), (_, "not_found"): kind = .notFound
        case (_, "invalid_input"), (_, "json_error"), (400, _): kind = .invalidInput
        case (403, _), (_, "forbidden"), (_, "protected"), (_, "token_readonly"): kind = .forbidden
        case (409, _), (422, _), (423, _), (_, "uniqueness_error"), (_, "conflict"), (_, "locked"), (_, "resource_in_use"): kind = .conflict
        case (500..., _): kind = .server
        default: kind = .server
        }
        return HCloudError(kind: kind, status: response.status, code: code, detail: detail.isEmpty ? "(empty body)" : detail, request: request)
    }

    /// Maps a transport failure (no answer) to `.unreachable`, or a body kh could not read to `.decoding`.
    static func from(http error: HTTPError, request: String) -> HCloudError {
        switch error.kind {
        case .decoding: HCloudError(kind: .decoding, detail: error.detail, request: request)
        case .encoding: HCloudError(kind: .configuration, detail: error.detail, request: request)
        default: HCloudError(kind: .unreachable, detail: error.message, request: request)
        }
    }
}
