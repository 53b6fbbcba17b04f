import KhCore

/// A kubectl failure, classified from its exit status and stderr.
public struct KubeError: KhReportableError, Equatable {
    /// What kind of failure.
    public enum Kind: Sendable, Equatable {
        /// The object does not exist (`Error from server (NotFound)`).
        case notFound
        /// RBAC said no; ``KubeError/detail`` keeps the server's message (user, verb, resource).
        case forbidden
        /// A stale resourceVersion or a concurrent change (`Conflict`).
        case conflict
        /// Create of an object that exists (`AlreadyExists`).
        case alreadyExists
        /// The object was rejected (`Invalid`, `BadRequest`, a validation error).
        case invalid
        /// Credentials rejected (`Unauthorized`).
        case unauthorized
        /// The API server could not be reached (refused, DNS, TLS, timeout).
        case unreachable
        /// The server does not know the resource type (a CRD is not installed).
        case unknownResourceType
        /// kubectl is not installed or not on PATH.
        case kubectlMissing
        /// kubectl did not finish within its deadline.
        case timedOut
        /// kubectl's output could not be decoded.
        case decoding
        /// Anything else: see the exit status and detail.
        case other
    }

    public var kind: Kind
    /// The command, as a person would type it (secrets redacted by the caller's redactor).
    public var command: String
    /// The server's or kubectl's message.
    public var detail: String

    public init(kind: Kind, command: String, detail: String) {
        self.kind = kind
        self.command = command
        self.detail = detail
    }

    public var exitCode: KhExitCode { kind == .kubectlMissing ? .blocked : .external }

    public var message: String {
        let what: String
        switch kind {
        case .notFound: what = "not found"
        case .forbidden: what = "forbidden"
        case .conflict: what = "conflict"
        case .alreadyExists: what = "already exists"
        case .invalid: what = "rejected as invalid"
        case .unauthorized: what = "unauthorized"
        case .unreachable: what = "API server unreachable"
        case .unknownResourceType: what = "unknown resource type"
        case .kubectlMissing: what = "kubectl not found"
        case .timedOut: what = "timed out"
        case .decoding: what = "unreadable output"
        case .other: what = "failed"
        }
        return "`\(command)`: \(what): \(detail)"
    }

    public var hint: String? {
        switch kind {
        case .forbidden: "the service account or user lacks RBAC permission for this verb and resource"
        case .unreachable: "check --kubeconfig/--context, or the ssh_command prefix, and that the API server is up"
        case .unknownResourceType: "the CRD for this kind is not installed on the cluster"
        case .kubectlMissing: "install kubectl or put it on PATH"
        case .conflict: "the object changed since it was read: read it again and retry"
        default: nil
        }
    }

    /// Classifies a failed kubectl run from its stderr.
    public static func classify(stderr: String, command: String) -> KubeError {
        let text = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        let line = text.split(separator: "\n").first { $0.contains("Error from server") || $0.hasPrefix("error:") }.map(String.init) ?? text
        func has(_ s: String) -> Bool { text.contains(s) }
        let kind: Kind
        if has("(NotFound)") || has("NotFound") && has("not found") {
            kind = .notFound
        } else if has("(Forbidden)") || has(" is forbidden: ") {
            kind = .forbidden
        } else if has("(Conflict)") || has("the object has been modified") {
            kind = .conflict
        } else if has("(AlreadyExists)") {
            kind = .alreadyExists
        } else if has("(Invalid)") || has("(BadRequest)") || has("error validating") {
            kind = .invalid
        } else if has("Unauthorized") || has("You must be logged in") {
            kind = .unauthorized
        } else if has("doesn't have a resource type") || has("no matches for kind") {
            kind = .unknownResourceType
        } else if has("Unable to connect to the server") || has("connection refused") || has("was refused")
            || has("no such host") || has("i/o timeout") || has("TLS handshake")
        {
            kind = .unreachable
        } else {
            kind = .other
        }
        return KubeError(kind: kind, command: command, detail: line.isEmpty ? "no message" : line)
    }
}
