import Foundation
import KhCore
import Synchronization

/// An HTTP client with deadlines, retries and rate-limit bookkeeping.
///
/// Each request gets the client's connect and total deadlines unless it sets its own.
/// Idempotent requests are retried per ``RetryPolicy`` (connection failures, 429 and
/// 5xx), waiting what the server asked (`Retry-After`, `RateLimit-Reset`) or a capped
/// exponential backoff with jitter; waits go through the injected ``KhClock``. The
/// last rate-limit budget a server announced is kept in ``rateLimit``.
///
/// Credentials are values (``HTTPAuthentication``) registered with the ``Redactor``;
/// errors the client throws are redacted by it.
///
/// ```swift
/// let client = HTTPClient(configuration: .init(authentication: .bearer(token, redactor: redactor)), redactor: redactor)
/// let clusters: [Cluster] = try await client.getJSON(url)
/// ```
public final class HTTPClient: Sendable {
    /// Defaults applied to every request that does not set its own.
    public struct Configuration: Sendable {
        /// Deadline for the connection.
        public var connectTimeout: Duration
        /// Deadline for one whole attempt.
        public var timeout: Duration
        /// When to retry.
        public var retry: RetryPolicy
        /// Headers sent with every request (a request's own win).
        public var headers: HTTPHeaders
        /// Credentials for requests without their own.
        public var authentication: HTTPAuthentication?
        /// Largest response body accepted.
        public var maxResponseBytes: Int

        public init(
            connectTimeout: Duration = .seconds(10), timeout: Duration = .seconds(60), retry: RetryPolicy = .default,
            headers: HTTPHeaders = ["User-Agent": "kh/\(KhVersion.current)"], authentication: HTTPAuthentication? = nil,
            maxResponseBytes: Int = 64 << 20
        ) {
            self.connectTimeout = connectTimeout
            self.timeout = timeout
            self.retry = retry
            self.headers = headers
            self.authentication = authentication
            self.maxResponseBytes = maxResponseBytes
        }
    }

    /// One retry, for logs and evidence.
    public struct RetryEvent: Sendable, Equatable {
        /// The request, as one redacted line.
        public var request: String
        /// The attempt that failed (1-based).
        public var attempt: Int
        /// The wait before the next attempt.
        public var delay: Duration
        /// Why: the status or failure, and whether the server set the wait.
        public var reason: String
    }

    /// The defaults every request gets.
    public let configuration: Configuration
    /// What sends each attempt.
    public let transport: any HTTPTransport
    private let clock: KhClock
    private let redactor: Redactor?
    private let random: @Sendable () -> Double
    private let onRetry: (@Sendable (RetryEvent) -> Void)?
    private let budget = Mutex<RateLimit?>(nil)

    /// - Parameters:
    ///   - transport: the live libcurl transport by default.
    ///   - clock: waits between attempts go through it (a test clock makes them instant).
    ///   - redactor: secrets to hide from errors; credentials given with it are registered.
    ///   - random: jitter source in [0, 1).
    ///   - onRetry: told before each wait.
    public init(
        configuration: Configuration = Configuration(), transport: any HTTPTransport = CurlTransport(), clock: KhClock = .live,
        redactor: Redactor? = nil, random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        onRetry: (@Sendable (RetryEvent) -> Void)? = nil
    ) {
        self.configuration = configuration
        self.transport = transport
        self.clock = clock
        self.redactor = redactor
        self.random = random
        self.onRetry = onRetry
    }

    /// The latest rate-limit budget any response announced (by time received).
    public var rateLimit: RateLimit? { budget.withLock { $0 } }

    /// Sends a request, retrying per the policy (the request's method must be idempotent
    /// for any retry). Returns the last response whatever its status; throws
    /// ``HTTPError`` when no response came, `CancellationError` when cancelled.
    public func send(_ request: HTTPRequest, retry: RetryPolicy? = nil) async throws -> HTTPResponse {
        let prepared = prepare(request)
        let policy = retry ?? configuration.retry
        let secrets = prepared.authentication?.secrets ?? []
        let started = clock.now()
        var attempt = 0
        while true {
            attempt += 1
            let outcome: Result<HTTPResponse, HTTPError>
            do {
                var response = try await transport.send(prepared)
                response.attempts = attempt
                response.receivedAt = clock.now()
                response.redactor = redactor
                record(response)
                outcome = .success(response)
            } catch let error as HTTPError {
                var failed = error.scrubbing(secrets).redacted(by: redactor)
                failed.attempts = attempt
                outcome = .failure(failed)
            }
            let now = clock.now()
            let elapsed = Duration.milliseconds(Int64((now.timeIntervalSince(started) * 1000).rounded()))
            switch policy.decide(method: prepared.method, attempt: attempt, elapsed: elapsed, outcome: outcome, now: now, random: random()) {
            case .stop:
                return try outcome.get()
            case .retry(let delay, let reason):
                onRetry?(RetryEvent(request: redact(prepared.description), attempt: attempt, delay: delay, reason: reason))
                try await clock.sleep(delay)
            }
        }
    }

    /// GET (or another method) and decode a 2xx JSON body; a non-2xx status throws.
    public func getJSON<T: Decodable>(_ url: URL, as type: T.Type = T.self, headers: HTTPHeaders = [:]) async throws -> T {
        var all: HTTPHeaders = ["Accept": "application/json"]
        all = all.merging(headers)
        return try await send(HTTPRequest(.get, url, headers: all)).requireSuccess().decode(type)
    }

    /// Sends `body` as JSON and decodes a 2xx JSON answer; a non-2xx status throws.
    public func sendJSON<T: Decodable>(
        _ method: HTTPMethod, _ url: URL, body: some Encodable & Sendable, as type: T.Type = T.self, headers: HTTPHeaders = [:]
    ) async throws -> T {
        do {
            return try await send(HTTPRequest.json(method, url, body: body, headers: headers)).requireSuccess().decode(type)
        } catch let error as HTTPError {
            throw error.redacted(by: redactor)
        }
    }

    /// The request with the client's defaults filled in.
    func prepare(_ request: HTTPRequest) -> HTTPRequest {
        var prepared = request
        prepared.headers = configuration.headers.merging(request.headers)
        prepared.connectTimeout = request.connectTimeout ?? configuration.connectTimeout
        prepared.timeout = request.timeout ?? configuration.timeout
        prepared.authentication = request.authentication ?? configuration.authentication
        prepared.maxResponseBytes = request.maxResponseBytes ?? configuration.maxResponseBytes
        return prepared
    }

    private func record(_ response: HTTPResponse) {
        guard let observed = response.rateLimit else { return }
        budget.withLock { current in
            if current == nil || current!.observedAt <= observed.observedAt { current = observed }
        }
    }

    private func redact(_ text: String) -> String { redactor?.redact(text) ?? text }
}
