import Foundation
import KhCore
import KhTestSupport
import Synchronization
import Testing

@testable import KhHTTP

/// A transport that answers from a script and records what it was sent.
final class FakeTransport: HTTPTransport {
    typealias Responder = @Sendable (_ request: HTTPRequest, _ call: Int) throws -> HTTPResponse
    private let responder: Responder
    private let sent = Mutex<[HTTPRequest]>([])

    init(_ responder: @escaping Responder) { self.responder = responder }

    /// Answers `statuses` in turn (the last one repeats), each with `headers`.
    convenience init(statuses: [Int], headers: @escaping @Sendable (Int) -> HTTPHeaders = { _ in [:] }) {
        self.init { request, call in
            HTTPResponse(request: request, status: statuses[min(call, statuses.count - 1)], headers: headers(call))
        }
    }

    var requests: [HTTPRequest] { sent.withLock { $0 } }

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let call = sent.withLock { list in
            list.append(request)
            return list.count - 1
        }
        return try responder(request, call)
    }
}

/// Retry events a client reported, in order.
final class RetryLog: Sendable {
    private let list = Mutex<[HTTPClient.RetryEvent]>([])
    init() {}
    func append(_ event: HTTPClient.RetryEvent) { list.withLock { $0.append(event) } }
    var events: [HTTPClient.RetryEvent] { list.withLock { $0 } }
    var delays: [Duration] { events.map(\.delay) }
    var reasons: [String] { events.map(\.reason) }
}

private let url = URL(string: "https://api.example.test/v1/things")!

private func failure(_ kind: HTTPError.Kind, _ request: HTTPRequest) -> HTTPError {
    HTTPError(kind: kind, method: request.method, url: request.url.absoluteString, call: "curl transfer", curlCode: 7, detail: "scripted")
}

@Suite("HTTPClient retry logic with a fake transport and a test clock")
struct RetryLogicTests {
    let clock = TestClock()

    func client(_ transport: FakeTransport, policy: RetryPolicy = .default, log: RetryLog? = nil) -> HTTPClient {
        HTTPClient(configuration: .init(retry: policy), transport: transport, clock: clock.clock, random: { 0 }, onRetry: { log?.append($0) })
    }

    @Test("backoff doubles from the initial delay, is capped, and jitter only shortens it")
    func backoffShape() {
        let policy = RetryPolicy(initialDelay: .milliseconds(250), multiplier: 2, maxDelay: .seconds(8), jitter: 0.5)
        let plain = (1...7).map { policy.backoff(afterAttempt: $0, random: 0) }
        #expect(plain == [.milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(8)])
        for attempt in 1...7 {
            let most = policy.backoff(afterAttempt: attempt, random: 0)
            let least = policy.backoff(afterAttempt: attempt, random: 0.9999)
            #expect(least <= most)
            #expect(least >= most / 2 - .milliseconds(1))
        }
        #expect(RetryPolicy(jitter: 0).backoff(afterAttempt: 3, random: 0.7) == .seconds(1))
    }

    @Test("503s are retried with backoff through the clock until a 200")
    func retriesThrough503() async throws {
        let transport = FakeTransport(statuses: [503, 502, 200])
        let events = RetryLog()
        let start = clock.clock.now()
        let response = try await client(transport, log: events).send(HTTPRequest(.get, url))
        #expect(response.status == 200)
        #expect(response.attempts == 3)
        #expect(transport.requests.count == 3)
        #expect(events.delays == [.milliseconds(250), .milliseconds(500)])
        #expect(events.reasons == ["HTTP 503", "HTTP 502"])
        #expect(abs(clock.clock.now().timeIntervalSince(start) - 0.75) < 0.001)
    }

    @Test("the attempt cap returns the last response; 501 and 4xx are not retried", arguments: [(503, 4), (501, 1), (404, 1), (400, 1)])
    func attemptCap(status: Int, attempts: Int) async throws {
        let transport = FakeTransport(statuses: [status])
        let response = try await client(transport).send(HTTPRequest(.get, url))
        #expect(response.status == status)
        #expect(response.attempts == attempts)
        #expect(transport.requests.count == attempts)
    }

    @Test("POST and PATCH are never retried, neither on 503 nor on a connection error", arguments: [HTTPMethod.post, .patch])
    func nonIdempotent(method: HTTPMethod) async throws {
        let statuses = FakeTransport(statuses: [503, 200])
        let response = try await client(statuses).send(HTTPRequest(method, url, body: Data("{}".utf8)))
        #expect(response.status == 503)
        #expect(statuses.requests.count == 1)

        let refusing = FakeTransport { request, _ in throw failure(.connect, request) }
        let error = await #expect(throws: HTTPError.self) { _ = try await self.client(refusing).send(HTTPRequest(method, url)) }
        #expect(error?.kind == .connect)
        #expect(refusing.requests.count == 1)
        let decision = RetryPolicy.default.decide(
            method: method, attempt: 1, elapsed: .zero, outcome: .success(HTTPResponse(request: HTTPRequest(method, url), status: 503)), now: Date(),
            random: 0)
        #expect(decision == .stop(reason: "HTTP 503: \(method) is not idempotent, not retried"))
    }

    @Test("idempotent methods are retried", arguments: [HTTPMethod.get, .head, .put, .delete, .options])
    func idempotent(method: HTTPMethod) async throws {
        let transport = FakeTransport(statuses: [500, 200])
        let response = try await client(transport).send(HTTPRequest(method, url))
        #expect(response.status == 200)
        #expect(transport.requests.count == 2)
    }

    @Test(
        "connection failures are retried, DNS failures and total timeouts are not",
        arguments: [
            (HTTPError.Kind.connect, 4), (.connectTimeout, 4), (.connectionLost, 4), (.dns, 1), (.timeout, 1), (.tls, 1),
        ])
    func errorKinds(kind: HTTPError.Kind, attempts: Int) async throws {
        let transport = FakeTransport { request, _ in throw failure(kind, request) }
        let error = await #expect(throws: HTTPError.self) { _ = try await self.client(transport).send(HTTPRequest(.get, url)) }
        #expect(error?.kind == kind)
        #expect(error?.attempts == attempts)
        #expect(transport.requests.count == attempts)
    }

    @Test("a connection error, then a 200: the answer comes from the second attempt")
    func errorThenSuccess() async throws {
        let transport = FakeTransport { request, call in
            if call == 0 { throw failure(.connectionLost, request) }
            return HTTPResponse(request: request, status: 200)
        }
        let response = try await client(transport).send(HTTPRequest(.get, url))
        #expect(response.status == 200)
        #expect(response.attempts == 2)
    }

    @Test("Retry-After in seconds and as an HTTP date is waited, measured on the client's clock")
    func retryAfter() async throws {
        let now = clock.clock.now()
        for value in ["7", HTTPDate.format(now.addingTimeInterval(30))] {
            let transport = FakeTransport(statuses: [429, 200]) { call in call == 0 ? ["Retry-After": value] : [:] }
            let events = RetryLog()
            let response = try await client(transport, log: events).send(HTTPRequest(.get, url))
            #expect(response.status == 200)
            let waited = try #require(events.delays.first)
            if value == "7" {
                #expect(waited == .seconds(7))
            } else {
                // The clock moved by 7 s in the first round.
                #expect(waited >= .seconds(22) && waited <= .seconds(23))
            }
        }
    }

    @Test("503 with Retry-After is honoured too; 429 with only RateLimit-Reset waits for the reset")
    func serverDelays() async throws {
        let unavailable = FakeTransport(statuses: [503, 200]) { call in call == 0 ? ["Retry-After": "3"] : [:] }
        let events = RetryLog()
        _ = try await client(unavailable, log: events).send(HTTPRequest(.get, url))
        #expect(events.delays == [.seconds(3)])

        let limited = FakeTransport(statuses: [429, 200]) { call in
            call == 0 ? ["RateLimit-Limit": "60", "RateLimit-Remaining": "0", "RateLimit-Reset": "12"] : [:]
        }
        let limitedEvents = RetryLog()
        let response = try await client(limited, log: limitedEvents).send(HTTPRequest(.get, url))
        #expect(response.status == 200)
        #expect(limitedEvents.delays == [.seconds(12)])
        #expect(limitedEvents.reasons.first == "HTTP 429, server asked to wait 12.0s")
    }

    @Test("a server wait longer than maxServerDelay ends the retries at once")
    func serverDelayTooLong() async throws {
        let transport = FakeTransport(statuses: [429, 200]) { _ in ["Retry-After": "600"] }
        let start = clock.clock.now()
        let response = try await client(transport, policy: RetryPolicy(maxServerDelay: .seconds(60))).send(HTTPRequest(.get, url))
        #expect(response.status == 429)
        #expect(response.attempts == 1)
        #expect(clock.clock.now() == start)
    }

    @Test("the total budget stops retrying before a wait would pass it")
    func totalBudget() async throws {
        let transport = FakeTransport(statuses: [503])
        let policy = RetryPolicy(maxAttempts: 10, initialDelay: .milliseconds(400), jitter: 0, maxTotal: .seconds(1))
        let start = clock.clock.now()
        let response = try await client(transport, policy: policy).send(HTTPRequest(.get, url))
        #expect(response.status == 503)
        // 400 ms, then 800 ms would end at 1.2 s > 1 s.
        #expect(response.attempts == 2)
        #expect(abs(clock.clock.now().timeIntervalSince(start) - 0.4) < 0.001)
        let decision = policy.decide(
            method: .get, attempt: 2, elapsed: .milliseconds(400), outcome: .success(HTTPResponse(request: HTTPRequest(.get, url), status: 503)),
            now: Date(), random: 0)
        #expect(decision == .stop(reason: "HTTP 503: waiting 800ms more would pass the 1.0s budget"))
    }

    @Test("cancelling the task during a backoff wait throws CancellationError and stops retrying")
    func cancelledDuringBackoff() async throws {
        let transport = FakeTransport(statuses: [503])
        let client = HTTPClient(
            configuration: .init(retry: RetryPolicy(initialDelay: .seconds(30), jitter: 0)), transport: transport, clock: .live, random: { 0 })
        let task = Task { try await client.send(HTTPRequest(.get, url)) }
        let until = ContinuousClock.now + .seconds(5)
        while transport.requests.isEmpty && ContinuousClock.now < until { try await Task.sleep(for: .milliseconds(10)) }
        task.cancel()
        let result = await task.result
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(transport.requests.count == 1)
    }

    @Test("the client fills in its defaults; a request's own settings win")
    func defaults() async throws {
        let transport = FakeTransport(statuses: [200])
        let client = HTTPClient(
            configuration: .init(
                connectTimeout: .seconds(3), timeout: .seconds(9), headers: ["User-Agent": "kh-test", "X-Team": "platform"],
                authentication: .bearer("default-token-value"), maxResponseBytes: 1000),
            transport: transport, clock: clock.clock)
        _ = try await client.send(HTTPRequest(.get, url))
        _ = try await client.send(
            HTTPRequest(.get, url, headers: ["x-team": "sre"], timeout: .seconds(1), authentication: .bearer("own-token-value")))
        let first = transport.requests[0]
        let second = transport.requests[1]
        #expect(first.connectTimeout == .seconds(3))
        #expect(first.timeout == .seconds(9))
        #expect(first.maxResponseBytes == 1000)
        #expect(first.headers["user-agent"] == "kh-test")
        #expect(first.headers["X-Team"] == "platform")
        #expect(first.authentication == .bearer("default-token-value"))
        #expect(second.timeout == .seconds(1))
        #expect(second.headers.values(for: "X-Team") == ["sre"])
        #expect(second.authentication == .bearer("own-token-value"))
    }

    @Test("the client keeps the newest rate-limit budget it saw")
    func budgetTracking() async throws {
        let transport = FakeTransport(statuses: [200]) { call in ["X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": String(4999 - call)] }
        let client = client(transport)
        for _ in 0..<3 { _ = try await client.send(HTTPRequest(.get, url)) }
        #expect(client.rateLimit?.limit == 5000)
        #expect(client.rateLimit?.remaining == 4997)
    }

    @Test("errors and retry events never show the token, even when it is in the URL")
    func retryEventsRedacted() async throws {
        let token = "ghp_0123456789abcdefSECRET"
        let redactor = Redactor()
        let auth = HTTPAuthentication.bearer(token, name: "GITHUB_TOKEN", redactor: redactor)
        let transport = FakeTransport { request, _ in throw failure(.connect, request) }
        let events = RetryLog()
        let client = HTTPClient(
            configuration: .init(authentication: auth), transport: transport, clock: clock.clock, redactor: redactor,
            onRetry: { events.append($0) })
        let tokenURL = URL(string: "https://api.example.test/x?token=\(token)")!
        let error = await #expect(throws: HTTPError.self) { _ = try await client.send(HTTPRequest(.get, tokenURL)) }
        #expect(error.map { "\($0)".contains(token) } == false)
        #expect(error?.url.contains("[redacted:GITHUB_TOKEN]") == true)
        #expect(events.events.count == 3)
        #expect(events.events.allSatisfy { !$0.request.contains(token) })
    }
}

@Suite("KhHTTP value types and parsing")
struct HTTPParsingTests {
    let now = Date(timeIntervalSince1970: 1_790_000_000)

    @Test("rate-limit headers: draft names, X- names, list values, epoch resets, none")
    func rateLimitParsing() throws {
        let draft = try #require(
            RateLimit(headers: ["RateLimit-Limit": "100, 100;w=60", "RateLimit-Remaining": "0", "RateLimit-Reset": "42"], at: now))
        #expect(draft.limit == 100)
        #expect(draft.remaining == 0)
        #expect(draft.isExhausted)
        #expect(draft.resetIn(now: now) == .seconds(42))
        #expect(draft.resetIn(now: now.addingTimeInterval(100)) == .zero)
        #expect(draft.description == "0/100 requests left, resets in 42.0s")

        let github = try #require(
            RateLimit(headers: ["x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4321", "x-ratelimit-reset": "1790000600"], at: now))
        #expect(github.limit == 5000)
        #expect(github.remaining == 4321)
        #expect(!github.isExhausted)
        #expect(github.resetAt == Date(timeIntervalSince1970: 1_790_000_600))
        #expect(github.resetIn(now: now) == .seconds(600))

        #expect(RateLimit(headers: ["Content-Type": "text/plain"], at: now) == nil)
        #expect(RateLimit(headers: ["RateLimit-Remaining": "7"], at: now)?.limit == nil)
    }

    @Test("Retry-After: seconds, the three HTTP date forms, a past date, garbage")
    func retryAfterParsing() {
        #expect(RetryPolicy.retryAfter("120", now: now) == .seconds(120))
        #expect(RetryPolicy.retryAfter(" 5 ", now: now) == .seconds(5))
        #expect(RetryPolicy.retryAfter("0", now: now) == .zero)
        let target = now.addingTimeInterval(90)
        let imf = HTTPDate.format(target)
        #expect(imf.hasSuffix(" GMT"))
        #expect(RetryPolicy.retryAfter(imf, now: now) == .seconds(90))
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == Date(timeIntervalSince1970: 784_111_777))
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == Date(timeIntervalSince1970: 784_111_777))
        #expect(HTTPDate.parse("Sun Nov  6 08:49:37 1994") == Date(timeIntervalSince1970: 784_111_777))
        #expect(RetryPolicy.retryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now: now) == .zero)
        #expect(RetryPolicy.retryAfter("soon", now: now) == nil)
        #expect(RetryPolicy.retryAfter("-3", now: now) == nil)
    }

    @Test("headers: case-insensitive lookup, set, remove, merge; credentials masked in descriptions")
    func headers() {
        var headers: HTTPHeaders = ["Content-Type": "text/plain", "Authorization": "Bearer abcdefgh"]
        headers.add("Set-Cookie", "a=1")
        headers.add("set-cookie", "b=2")
        #expect(headers["content-type"] == "text/plain")
        #expect(headers.values(for: "SET-COOKIE") == ["a=1", "b=2"])
        headers.set("CONTENT-TYPE", "application/json")
        #expect(headers.values(for: "Content-Type") == ["application/json"])
        let merged = headers.merging(["authorization": "Basic xyz", "X-New": "1"])
        #expect(merged.values(for: "Authorization") == ["Basic xyz"])
        #expect(merged["x-new"] == "1")
        headers.remove("set-cookie")
        #expect(!headers.contains("Set-Cookie"))
        #expect(!"\(merged)".contains("xyz"))
        var dumped = ""
        dump(merged, to: &dumped)
        #expect(!dumped.contains("xyz"))
        #expect("\(merged)".contains("X-New: 1"))
    }

    @Test("methods: only GET, HEAD, PUT, DELETE and OPTIONS are idempotent")
    func methods() {
        #expect([HTTPMethod.get, .head, .put, .delete, .options].filter(\.isIdempotent).count == 5)
        #expect([HTTPMethod.post, .patch, "CONNECT"].filter(\.isIdempotent).isEmpty)
        #expect(HTTPMethod(rawValue: "get") == .get)
    }

    @Test("form encoding escapes everything but unreserved characters")
    func formEncoding() throws {
        #expect(HTTPRequest.formEncode("arn:aws:iam::1:role/x y+z~._-") == "arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx%20y%2Bz~._-")
        #expect(HTTPRequest.formEncode("é") == "%C3%A9")
        let request = HTTPRequest.form(url, fields: ["Action": "Get Thing", "Version": "1"])
        #expect(request.method == .post)
        #expect(request.body == Data("Action=Get%20Thing&Version=1".utf8))
        #expect(request.headers["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8")
    }

    @Test("HTTPError: one line naming the request, the call, the curl code and message; exit code external")
    func errorMessage() {
        let error = HTTPError(
            kind: .connect, method: .get, url: "http://127.0.0.1:9/x", call: "curl transfer", curlCode: 7,
            detail: "Failed to connect to 127.0.0.1 port 9 after 0 ms: Couldn't connect to server", attempts: 3)
        #expect(
            error.message
                == "GET http://127.0.0.1:9/x: could not connect after 3 attempts (curl transfer: CURLE_COULDNT_CONNECT (7)): Failed to connect to 127.0.0.1 port 9 after 0 ms: Couldn't connect to server"
        )
        #expect(error.exitCode == .external)
        #expect("\(error)" == error.message)
        #expect(HTTPError.curlCodeName(28) == "CURLE_OPERATION_TIMEDOUT")
        let status = HTTPError(kind: .status(429), method: .get, url: "u", call: "HTTP status", detail: "slow down")
        #expect(status.message == "GET u: HTTP 429 (HTTP status): slow down")
        #expect(status.hint?.contains("rate limited") == true)
    }

    @Test("secrets: descriptions, reflection and dump show the name, never the value")
    func secrets() {
        let redactor = Redactor()
        let credentials = AWSCredentials(
            accessKeyID: "AKIAEXAMPLE", secretAccessKey: "secret-access-key-value", sessionToken: "session-token-value", redactor: redactor)
        var dumped = ""
        dump(credentials, to: &dumped)
        for text in [
            "\(credentials)", String(reflecting: credentials), dumped,
            "\(HTTPAuthentication.awsSigV4(credentials, region: "eu-west-1", service: "eks"))",
        ] {
            #expect(!text.contains("secret-access-key-value"))
            #expect(!text.contains("session-token-value"))
        }
        #expect("\(credentials)".contains("AKIAEXAMPLE"))
        #expect(redactor.registeredNames == ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"])
        #expect(redactor.redact("x secret-access-key-value y") == "x [redacted:AWS_SECRET_ACCESS_KEY] y")
        let env = ["AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env-secret-value", "AWS_SESSION_TOKEN": ""]
        let fromEnv = AWSCredentials.fromEnvironment(env)
        #expect(fromEnv?.accessKeyID == "AKIAENV")
        #expect(fromEnv?.sessionToken == nil)
        #expect(AWSCredentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "x"]) == nil)
    }
}
