import Foundation
import KhCore

/// An HTTP method. Only the idempotent ones (GET, HEAD, PUT, DELETE, OPTIONS) are
/// ever retried by ``HTTPClient``.
public struct HTTPMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The method name, upper case.
    public var rawValue: String

    /// A method by name (any case).
    public init(rawValue: String) { self.rawValue = rawValue.uppercased() }
    public init(stringLiteral value: String) { self.init(rawValue: value) }

    /// GET (idempotent).
    public static let get = HTTPMethod(rawValue: "GET")
    /// HEAD (idempotent; no body is read).
    public static let head = HTTPMethod(rawValue: "HEAD")
    /// POST (never retried).
    public static let post = HTTPMethod(rawValue: "POST")
    /// PUT (idempotent).
    public static let put = HTTPMethod(rawValue: "PUT")
    /// PATCH (never retried).
    public static let patch = HTTPMethod(rawValue: "PATCH")
    /// DELETE (idempotent).
    public static let delete = HTTPMethod(rawValue: "DELETE")
    /// OPTIONS (idempotent).
    public static let options = HTTPMethod(rawValue: "OPTIONS")

    /// True for GET, HEAD, PUT, DELETE and OPTIONS: sending them twice has the effect
    /// of sending them once, so a retry cannot do harm. POST and PATCH are not.
    public var isIdempotent: Bool { ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"].contains(rawValue) }

    public var description: String { rawValue }
}

/// Header fields in order, with case-insensitive lookup.
///
/// `description` masks the values of fields that carry credentials
/// (`Authorization`, `Cookie`, `X-Amz-Security-Token`, …).
public struct HTTPHeaders: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral, CustomStringConvertible, CustomReflectable {
    /// The fields as sent or received, in order; names keep their case.
    public private(set) var fields: [(name: String, value: String)]

    /// Field names whose values ``description`` never shows.
    public static let sensitiveNames: Set<String> = [
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-amz-security-token", "x-api-key", "x-auth-token",
    ]

    /// Headers from fields in order.
    public init(_ fields: [(name: String, value: String)] = []) { self.fields = fields }

    public init(dictionaryLiteral elements: (String, String)...) {
        fields = elements.map { (name: $0.0, value: $0.1) }
    }

    /// The first value of the field `name` (any case), or nil.
    public subscript(name: String) -> String? {
        let lower = name.lowercased()
        return fields.first { $0.name.lowercased() == lower }?.value
    }

    /// Every value of the field `name` (any case), in order.
    public func values(for name: String) -> [String] {
        let lower = name.lowercased()
        return fields.filter { $0.name.lowercased() == lower }.map(\.value)
    }

    /// True when a field named `name` (any case) is present.
    public func contains(_ name: String) -> Bool { self[name] != nil }

    /// Appends a field (a name may appear more than once).
    public mutating func add(_ name: String, _ value: String) { fields.append((name: name, value: value)) }

    /// Replaces every field named `name` (any case) with one field.
    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        fields.append((name: name, value: value))
    }

    /// Removes every field named `name` (any case).
    public mutating func remove(_ name: String) {
        let lower = name.lowercased()
        fields.removeAll { $0.name.lowercased() == lower }
    }

    /// Fields of `other` replace fields of the same name in `self`.
    public func merging(_ other: HTTPHeaders) -> HTTPHeaders {
        var result = self
        for name in Set(other.fields.map { $0.name.lowercased() }) { result.remove(name) }
        result.fields += other.fields
        return result
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.count == rhs.fields.count && zip(lhs.fields, rhs.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    public var description: String {
        "[" + shown.map { "\($0.name): \($0.value)" }.joined(separator: ", ") + "]"
    }

    /// `dump` and debuggers see the masked fields too.
    public var customMirror: Mirror {
        Mirror(self, children: shown.map { (label: $0.name, value: $0.value as Any) }, displayStyle: .dictionary)
    }

    /// The fields with the values of sensitive ones replaced by `[redacted]`.
    private var shown: [(name: String, value: String)] {
        fields.map { field in (field.name, Self.sensitiveNames.contains(field.name.lowercased()) ? "[redacted]" : field.value) }
    }
}

/// One HTTP request: what to send and, optionally, per-request deadlines and credentials.
///
/// Unset deadlines and credentials come from ``HTTPClient/Configuration``.
/// `description` never shows credentials or the body.
public struct HTTPRequest: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The method.
    public var method: HTTPMethod
    /// The URL (http or https).
    public var url: URL
    /// Headers to send; credentials belong in ``authentication``, not here.
    public var headers: HTTPHeaders
    /// The body, or nil for none. POST, PUT and PATCH without a body send an empty one.
    public var body: Data?
    /// Deadline for the TCP (and TLS) connection; nil: the client's.
    public var connectTimeout: Duration?
    /// Deadline for the whole attempt, connection included; nil: the client's.
    public var timeout: Duration?
    /// Credentials for this request; nil: the client's.
    public var authentication: HTTPAuthentication?
    /// Largest body accepted; a longer one fails with ``HTTPError/Kind/responseTooLarge``. nil: the client's.
    public var maxResponseBytes: Int?

    public init(
        _ method: HTTPMethod, _ url: URL, headers: HTTPHeaders = [:], body: Data? = nil, connectTimeout: Duration? = nil, timeout: Duration? = nil,
        authentication: HTTPAuthentication? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.authentication = authentication
    }

    /// A request whose body is `value` as JSON (kh's conventions: sorted keys, ISO 8601
    /// dates), with `Content-Type` and `Accept` set to `application/json`.
    public static func json(
        _ method: HTTPMethod, _ url: URL, body value: some Encodable & Sendable, headers: HTTPHeaders = [:]
    ) throws -> HTTPRequest {
        let data: Data
        do {
            data = try KhJSON.encoder().encode(value)
        } catch {
            throw HTTPError(kind: .encoding, method: method, url: url.absoluteString, call: "JSONEncoder.encode", detail: "\(error)")
        }
        var all: HTTPHeaders = ["Content-Type": "application/json", "Accept": "application/json"]
        all = all.merging(headers)
        return HTTPRequest(method, url, headers: all, body: data)
    }

    /// A request whose body is `fields` as `application/x-www-form-urlencoded`, every
    /// byte but `A-Z a-z 0-9 - _ . ~` percent-encoded (what AWS query APIs such as STS
    /// and IAM expect, and what their SigV4 check hashes).
    public static func form(_ url: URL, method: HTTPMethod = .post, fields: KeyValuePairs<String, String>, headers: HTTPHeaders = [:]) -> HTTPRequest
    {
        let body = fields.map { formEncode($0.key) + "=" + formEncode($0.value) }.joined(separator: "&")
        var all: HTTPHeaders = ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"]
        all = all.merging(headers)
        return HTTPRequest(method, url, headers: all, body: Data(body.utf8))
    }

    /// Percent-encodes all but the unreserved characters of RFC 3986.
    public static func formEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(UnicodeScalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    public var description: String {
        var text = "\(method) \(url.absoluteString)"
        if let body { text += " (\(body.count) bytes)" }
        return text
    }

    public var debugDescription: String {
        var parts = ["\(method) \(url.absoluteString)", "headers: \(headers)"]
        if let body { parts.append("body: \(body.count) bytes") }
        if let authentication { parts.append("auth: \(authentication)") }
        if let connectTimeout { parts.append("connect timeout: \(connectTimeout.humanDescription)") }
        if let timeout { parts.append("timeout: \(timeout.humanDescription)") }
        return parts.joined(separator: "; ")
    }
}

/// Where the time of one attempt went, as libcurl measured it (each from the start
/// of the attempt), plus how long it waited for a free slot before it started.
public struct HTTPTiming: Sendable, Equatable {
    /// Waiting in the transport's queue for a free transfer slot.
    public var queued: Duration = .zero
    /// Name resolution done.
    public var nameLookup: Duration = .zero
    /// TCP connection established (zero when a kept-alive connection was reused).
    public var connect: Duration = .zero
    /// First response byte received.
    public var firstByte: Duration = .zero
    /// The whole attempt.
    public var total: Duration = .zero

    public init(
        queued: Duration = .zero, nameLookup: Duration = .zero, connect: Duration = .zero, firstByte: Duration = .zero, total: Duration = .zero
    ) {
        self.queued = queued
        self.nameLookup = nameLookup
        self.connect = connect
        self.firstByte = firstByte
        self.total = total
    }
}

/// An HTTP response. Any status is data: ``requireSuccess()`` turns a non-2xx status
/// into an ``HTTPError``.
public struct HTTPResponse: Sendable, CustomStringConvertible {
    /// The request this answers (as sent on the last attempt).
    public var request: HTTPRequest
    /// The HTTP status code.
    public var status: Int
    /// The header fields of the final response (not of a 100 Continue).
    public var headers: HTTPHeaders
    /// The body, decoded if the server compressed it.
    public var body: Data
    /// The timing of the last attempt.
    public var timing: HTTPTiming
    /// How many attempts it took (1 when the first one answered).
    public var attempts: Int
    /// When the response was received (the client's clock).
    public var receivedAt: Date
    /// Secrets to hide from error messages built from this response (set by ``HTTPClient``).
    var redactor: Redactor?

    public init(
        request: HTTPRequest, status: Int, headers: HTTPHeaders = [:], body: Data = Data(), timing: HTTPTiming = HTTPTiming(), attempts: Int = 1,
        receivedAt: Date = Date()
    ) {
        self.request = request
        self.status = status
        self.headers = headers
        self.body = body
        self.timing = timing
        self.attempts = attempts
        self.receivedAt = receivedAt
    }

    /// True for 2xx.
    public var isSuccess: Bool { (200..<300).contains(status) }

    /// The body as UTF-8 text (invalid bytes replaced).
    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The rate-limit budget the server announced in this response, if any.
    public var rateLimit: RateLimit? { RateLimit(headers: headers, at: receivedAt) }

    /// Returns self for a 2xx status; throws ``HTTPError/Kind/status(_:)`` otherwise,
    /// with the start of the body (secrets the client knows of redacted).
    @discardableResult
    public func requireSuccess() throws -> HTTPResponse {
        guard isSuccess else {
            throw HTTPError(
                kind: .status(status), method: request.method, url: request.url.absoluteString, call: "HTTP status",
                detail: HTTPError.excerpt(body), attempts: attempts
            ).redacted(by: redactor)
        }
        return self
    }

    /// Decodes the body as JSON with kh's conventions (``KhJSON``); a failure is an
    /// ``HTTPError/Kind/decoding`` naming the path and showing the start of the body.
    public func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        do {
            return try KhJSON.decoder().decode(type, from: body)
        } catch {
            throw HTTPError(
                kind: .decoding, method: request.method, url: request.url.absoluteString, call: "JSONDecoder.decode(\(T.self))",
                detail: "\(Self.describe(error)); body starts: \(HTTPError.excerpt(body))", attempts: attempts
            ).redacted(by: redactor)
        }
    }

    public var description: String {
        "\(request.method) \(request.url.absoluteString) -> \(status), \(body.count) bytes in \(timing.total.humanDescription)"
            + (attempts > 1 ? " after \(attempts) attempts" : "")
    }

    static func describe(_ error: any Error) -> String {
        guard let decoding = error as? DecodingError else { return "\(error)" }
        switch decoding {
        case .typeMismatch(let type, let context): return "type mismatch for \(type) at \(path(context.codingPath)): \(context.debugDescription)"
        case .valueNotFound(let type, let context): return "missing \(type) at \(path(context.codingPath))"
        case .keyNotFound(let key, let context): return "missing key \(path(context.codingPath + [key]))"
        case .dataCorrupted(let context): return "invalid JSON at \(path(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "\(decoding)"
        }
    }

    static func path(_ keys: [any CodingKey]) -> String {
        keys.isEmpty ? "top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
    }
}
