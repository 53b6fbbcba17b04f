import Foundation
import KhCore

/// An HTTP request that failed: the transfer itself (connection refused, DNS, a
/// deadline), a status the caller required to be 2xx, or a body that did not decode.
///
/// It names the request, the failing call, and for libcurl failures the curl code
/// and curl's own message. Credentials never appear in it. Exit code: `.external`.
public struct HTTPError: KhReportableError, Equatable {
    /// What went wrong, coarsely: what retry policies and callers switch on.
    public enum Kind: Sendable, Hashable, CustomStringConvertible {
        /// The host name did not resolve.
        case dns
        /// The connection was refused or the host unreachable.
        case connect
        /// The connection was not established within its deadline.
        case connectTimeout
        /// The attempt did not finish within its total deadline.
        case timeout
        /// The connection broke after it was established (reset, nothing received, short body).
        case connectionLost
        /// TLS handshake or certificate verification failed.
        case tls
        /// The body was larger than the request allows.
        case responseTooLarge
        /// Any other libcurl failure.
        case transfer
        /// libcurl could not be set up for the request (bad URL, unsupported option).
        case setup
        /// The transport was shut down while the request waited.
        case shutdown
        /// libcurl itself could not be loaded.
        case libraryUnavailable
        /// The server answered with this non-2xx status (see ``HTTPResponse/requireSuccess()``).
        case status(Int)
        /// The request body could not be encoded.
        case encoding
        /// The response body could not be decoded.
        case decoding

        public var description: String {
            switch self {
            case .dns: "DNS resolution failed"
            case .connect: "could not connect"
            case .connectTimeout: "connect deadline passed"
            case .timeout: "deadline passed"
            case .connectionLost: "connection lost"
            case .tls: "TLS failed"
            case .responseTooLarge: "response too large"
            case .transfer: "transfer failed"
            case .setup: "request setup failed"
            case .shutdown: "HTTP transport shut down"
            case .libraryUnavailable: "libcurl could not be loaded"
            case .status(let code): "HTTP \(code)"
            case .encoding: "could not encode the request body"
            case .decoding: "could not decode the response body"
            }
        }
    }

    /// What went wrong.
    public var kind: Kind
    /// The request's method.
    public var method: HTTPMethod
    /// The URL (secrets the client knows of redacted).
    public var url: String
    /// The call that failed: `curl_easy_setopt(CURLOPT_URL)`, `curl transfer`, `HTTP status`, …
    public var call: String
    /// The CURLcode (or CURLMcode for `curl_multi_*` calls) when libcurl failed.
    public var curlCode: Int32?
    /// curl's message: its error buffer when it wrote one, else `curl_easy_strerror`; or other detail.
    public var detail: String
    /// How many attempts were made before giving up.
    public var attempts: Int

    public init(
        kind: Kind, method: HTTPMethod, url: String, call: String, curlCode: Int32? = nil, detail: String, attempts: Int = 1
    ) {
        self.kind = kind
        self.method = method
        self.url = url
        self.call = call
        self.curlCode = curlCode
        self.detail = detail
        self.attempts = attempts
    }

    /// Always `.external`: an API or the network failed.
    public var exitCode: KhExitCode { kind == .libraryUnavailable ? .blocked : .external }

    /// `METHOD URL: what (call: CURLE_NAME (code)): curl's message`.
    public var message: String {
        var text = "\(method) \(url): \(kind)"
        if attempts > 1 { text += " after \(attempts) attempts" }
        text += " (\(call)"
        if let curlCode {
            text += call.hasPrefix("curl_multi") ? ": CURLMcode \(curlCode)" : ": \(Self.curlCodeName(curlCode)) (\(curlCode))"
        }
        text += ")"
        if !detail.isEmpty { text += ": \(detail)" }
        return text
    }

    /// What to check next, for the common kinds.
    public var hint: String? {
        switch kind {
        case .dns: "check the host name and the resolver (/etc/resolv.conf)"
        case .connect: "check that the service listens on that address and port, and that no firewall is in the way"
        case .connectTimeout, .timeout: "the server is slow or unreachable; raise the deadline only if it is expected to be slow"
        case .tls: "check the server certificate and the CA bundle"
        case .status(401), .status(403): "check the credentials and their permissions"
        case .status(429): "rate limited: wait for the reset time the server announced"
        default: nil
        }
    }

    /// A copy with every secret `redactor` knows replaced.
    public func redacted(by redactor: Redactor?) -> HTTPError {
        guard let redactor, !redactor.isEmpty else { return self }
        var copy = self
        copy.url = redactor.redact(url)
        copy.detail = redactor.redact(detail)
        copy.call = redactor.redact(call)
        return copy
    }

    /// A copy with the given secrets replaced (for messages built where no redactor is at hand).
    func scrubbing(_ secrets: [SecretValue]) -> HTTPError {
        var copy = self
        for secret in secrets {
            secret.withValue { value in
                guard !value.isEmpty else { return }
                copy.url = copy.url.replacingOccurrences(of: value, with: secret.description)
                copy.detail = copy.detail.replacingOccurrences(of: value, with: secret.description)
            }
        }
        return copy
    }

    /// The start of a body for a message: up to 300 bytes of text, one line.
    static func excerpt(_ body: Data, limit: Int = 300) -> String {
        if body.isEmpty { return "(empty body)" }
        var text = String(decoding: body.prefix(limit), as: UTF8.self)
        text = text.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        return body.count > limit ? text + "… (\(body.count) bytes)" : text
    }

    /// The symbolic name of common CURLcodes.
    public static func curlCodeName(_ code: Int32) -> String {
        switch code {
        case 1: "CURLE_UNSUPPORTED_PROTOCOL"
        case 2: "CURLE_FAILED_INIT"
        case 3: "CURLE_URL_MALFORMAT"
        case 5: "CURLE_COULDNT_RESOLVE_PROXY"
        case 6: "CURLE_COULDNT_RESOLVE_HOST"
        case 7: "CURLE_COULDNT_CONNECT"
        case 16: "CURLE_HTTP2"
        case 18: "CURLE_PARTIAL_FILE"
        case 23: "CURLE_WRITE_ERROR"
        case 26: "CURLE_READ_ERROR"
        case 27: "CURLE_OUT_OF_MEMORY"
        case 28: "CURLE_OPERATION_TIMEDOUT"
        case 35: "CURLE_SSL_CONNECT_ERROR"
        case 43: "CURLE_BAD_FUNCTION_ARGUMENT"
        case 47: "CURLE_TOO_MANY_REDIRECTS"
        case 48: "CURLE_UNKNOWN_OPTION"
        case 52: "CURLE_GOT_NOTHING"
        case 55: "CURLE_SEND_ERROR"
        case 56: "CURLE_RECV_ERROR"
        case 58: "CURLE_SSL_CERTPROBLEM"
        case 60: "CURLE_PEER_FAILED_VERIFICATION"
        case 63: "CURLE_FILESIZE_EXCEEDED"
        case 77: "CURLE_SSL_CACERT_BADFILE"
        case 92: "CURLE_HTTP2_STREAM"
        default: "CURLcode"
        }
    }
}
