import Foundation
import KhCore
import KhTestSupport
import Synchronization
import Testing

@testable import KhHTTP

/// Counts the server saw for a key (every fixture path counts its `key`).
private struct ServerCount: Decodable {
    /// Calls the server saw for the key.
    var count: Int
    /// The most `/slow` calls for the key that were in the server at once.
    var peak: Int
}

private func serverCounts(_ server: FixtureServer, key: String) async throws -> ServerCount {
    let client = HTTPClient(configuration: .init(retry: .none))
    return try await client.getJSON(server.url("/count?key=\(key)"), as: ServerCount.self)
}

private func serverCount(_ server: FixtureServer, key: String) async throws -> Int {
    try await serverCounts(server, key: key).count
}

private func uniqueKey(_ label: String) -> String { "\(label)-\(UUID().uuidString.prefix(8))" }

private func elapsed(since start: ContinuousClock.Instant) -> Duration { ContinuousClock.now - start }

@Suite("KhHTTP against a real local server", .httpFixture)
struct CurlTransportTests {
    let server: FixtureServer

    init() throws {
        server = try #require(FixtureServer.current, "the fixture server trait did not run")
    }

    @Test("a GET answers with status, headers (any case) and body; timing is filled in")
    func plainGet() async throws {
        let client = HTTPClient()
        let response = try await client.send(HTTPRequest(.get, server.url("/ok")))
        #expect(response.status == 200)
        #expect(response.text == "ok\n")
        #expect(response.headers["content-type"] == "text/plain")
        #expect(response.headers["CONTENT-LENGTH"] == "3")
        #expect(response.attempts == 1)
        #expect(response.timing.total > .zero)
        #expect(response.timing.firstByte <= response.timing.total)
        let missing = try await client.send(HTTPRequest(.get, server.url("/nothing-here")))
        #expect(missing.status == 404)
        #expect(throws: HTTPError.self) { try missing.requireSuccess() }
    }

    @Test("methods and bodies reach the server as sent", arguments: [HTTPMethod.put, .delete, .patch, .options, .post])
    func methodsAndBodies(method: HTTPMethod) async throws {
        struct Echo: Decodable {
            var method: String
            var headers: [String: String]
            var body: String
        }
        let client = HTTPClient(configuration: .init(retry: .none))
        let body = method == .delete || method == .options ? nil : Data("payload-\(method)".utf8)
        let response = try await client.send(HTTPRequest(method, server.url("/echo"), headers: ["X-Kh-Test": "yes"], body: body))
        let echo = try response.requireSuccess().decode(Echo.self)
        #expect(echo.method == method.rawValue)
        #expect(echo.headers["x-kh-test"] == "yes")
        #expect(echo.headers["user-agent"]?.hasPrefix("kh/") == true)
        #expect(echo.body == (body.map { String(decoding: $0, as: UTF8.self) } ?? ""))
        if body != nil { #expect(echo.headers["content-type"] == "application/octet-stream") }
    }

    @Test("HEAD gets headers and no body")
    func head() async throws {
        let response = try await HTTPClient().send(HTTPRequest(.head, server.url("/bytes?n=1000")))
        #expect(response.status == 200)
        #expect(response.headers["Content-Length"] == "1000")
        #expect(response.body.isEmpty)
    }

    @Test("JSON round trip: an Encodable body comes back and decodes to the same value")
    func jsonRoundTrip() async throws {
        struct Cluster: Codable, Equatable, Sendable {
            var name: String
            var nodes: Int
            var labels: [String: String]
            var createdAt: Date
            var ready: Bool?
        }
        let value = Cluster(
            name: "prod-eu", nodes: 7, labels: ["team": "platform", "path": "a/b"], createdAt: Date(timeIntervalSince1970: 1_790_000_000.123),
            ready: true)
        let client = HTTPClient()
        let back: Cluster = try await client.sendJSON(.post, server.url("/json"), body: value)
        #expect(back == value)

        let request = try HTTPRequest.json(.put, server.url("/echo"), body: value)
        let echo = try await client.send(request).decode([String: JSONValue].self)
        #expect(echo["headers"]?["content-type"] == "application/json")
        #expect(echo["body"]?.stringValue?.contains("\"createdAt\":\"2026-09-21T") == true)

        let error = await #expect(throws: HTTPError.self) {
            let _: Cluster = try await client.getJSON(server.url("/ok"))
        }
        #expect(error?.kind == .decoding)
        #expect(error?.message.contains("ok") == true)
    }

    @Test("total deadline: a slow answer fails as .timeout within the deadline and a margin")
    func totalDeadline() async throws {
        let client = HTTPClient(configuration: .init(timeout: .milliseconds(500), retry: .none))
        let start = ContinuousClock.now
        let error = await #expect(throws: HTTPError.self) {
            _ = try await client.send(HTTPRequest(.get, server.url("/slow?ms=30000")))
        }
        let took = elapsed(since: start)
        #expect(error?.kind == .timeout)
        #expect(error?.curlCode == 28)
        #expect(error?.exitCode == .external)
        #expect(error?.message.contains("CURLE_OPERATION_TIMEDOUT") == true)
        #expect(took >= .milliseconds(450))
        // The answer comes after 30 s: ending long before proves the deadline (a generous bound,
        // the whole suite shares two cores; speed is for `make bench`).
        #expect(took < .seconds(10))
    }

    @Test("connect deadline: a listener that never accepts fails as .connectTimeout")
    func connectDeadline() async throws {
        let client = HTTPClient(configuration: .init(connectTimeout: .milliseconds(300), timeout: .seconds(30), retry: .none))
        let start = ContinuousClock.now
        let error = await #expect(throws: HTTPError.self) {
            _ = try await client.send(HTTPRequest(.get, URL(string: "http://127.0.0.1:\(server.blackholePort)/")!))
        }
        let took = elapsed(since: start)
        #expect(error?.kind == .connectTimeout)
        #expect(error?.curlCode == 28)
        #expect(took >= .milliseconds(250))
        #expect(took < .seconds(10), "the total deadline (30 s), not the connect deadline, ended it")
    }

    @Test("an unreachable port fails fast with a typed error naming curl's code and message")
    func connectionRefused() async throws {
        let port = closedPort()
        let client = HTTPClient(configuration: .init(retry: .none))
        let start = ContinuousClock.now
        let error = await #expect(throws: HTTPError.self) {
            _ = try await client.send(HTTPRequest(.get, URL(string: "http://127.0.0.1:\(port)/ok")!))
        }
        #expect(elapsed(since: start) < .seconds(10))
        let failure = try #require(error)
        #expect(failure.kind == .connect)
        #expect(failure.curlCode == 7)
        #expect(failure.call == "curl transfer")
        #expect(failure.detail.contains("\(port)"))
        #expect(failure.message.contains("CURLE_COULDNT_CONNECT (7)"))
        #expect(failure.message.hasPrefix("GET http://127.0.0.1:\(port)/ok: could not connect"))
        #expect(failure.hint != nil)
    }

    @Test("a refused connection is retried up to the attempt cap, then the error says how many")
    func connectionRefusedRetried() async throws {
        let port = closedPort()
        let clock = TestClock()
        let events = RetryLog()
        let client = HTTPClient(clock: clock.clock, random: { 0 }, onRetry: { events.append($0) })
        let error = await #expect(throws: HTTPError.self) {
            _ = try await client.send(HTTPRequest(.get, URL(string: "http://127.0.0.1:\(port)/")!))
        }
        #expect(error?.attempts == 4)
        #expect(error?.message.contains("after 4 attempts") == true)
        #expect(events.delays == [.milliseconds(250), .milliseconds(500), .seconds(1)])
    }

    @Test("an unknown host fails as .dns without retries")
    func dnsFailure() async throws {
        let client = HTTPClient(clock: TestClock().clock)
        let error = await #expect(throws: HTTPError.self) {
            _ = try await client.send(HTTPRequest(.get, URL(string: "http://kh-no-such-host.invalid/")!))
        }
        #expect(error?.kind == .dns)
        #expect(error?.curlCode == 6)
        #expect(error?.attempts == 1)
    }

    @Test("503 twice, then 200: retried and answered on the third attempt")
    func retryOn503() async throws {
        let key = uniqueKey("flaky")
        let clock = TestClock()
        let client = HTTPClient(clock: clock.clock)
        let response = try await client.send(HTTPRequest(.get, server.url("/flaky?key=\(key)&fail=2&code=503")))
        #expect(response.status == 200)
        #expect(response.text == "attempt=3\n")
        #expect(response.attempts == 3)
        #expect(try await serverCount(server, key: key) == 3)
    }

    @Test("a dropped connection (empty reply) is retried for GET")
    func retryOnDroppedConnection() async throws {
        let key = uniqueKey("drop")
        let client = HTTPClient(transport: CurlTransport(), clock: TestClock().clock)
        let response = try await client.send(HTTPRequest(.get, server.url("/drop?key=\(key)&fail=2")))
        #expect(response.status == 200)
        #expect(response.attempts == 3)
    }

    @Test("the attempt cap returns the last 503 as data")
    func retriesExhausted() async throws {
        let key = uniqueKey("always")
        let client = HTTPClient(configuration: .init(retry: RetryPolicy(maxAttempts: 3)), clock: TestClock().clock)
        let response = try await client.send(HTTPRequest(.get, server.url("/flaky?key=\(key)&fail=100&code=503")))
        #expect(response.status == 503)
        #expect(response.attempts == 3)
        #expect(try await serverCount(server, key: key) == 3)
        let error = #expect(throws: HTTPError.self) { try response.requireSuccess() }
        #expect(error?.kind == .status(503))
        #expect(error?.message.contains("after 3 attempts") == true)
    }

    @Test("POST and PATCH are never retried: the server sees one call", arguments: [HTTPMethod.post, .patch])
    func noRetryOfPost(method: HTTPMethod) async throws {
        let key = uniqueKey("post")
        let client = HTTPClient(clock: TestClock().clock)
        let response = try await client.send(HTTPRequest(method, server.url("/flaky?key=\(key)&fail=5&code=503"), body: Data("x".utf8)))
        #expect(response.status == 503)
        #expect(response.attempts == 1)
        #expect(try await serverCount(server, key: key) == 1)
    }

    @Test("429 with Retry-After: 1 waits about a second, then succeeds")
    func retryAfterSeconds() async throws {
        let key = uniqueKey("429")
        let events = RetryLog()
        let client = HTTPClient(onRetry: { events.append($0) })
        let start = ContinuousClock.now
        let response = try await client.send(HTTPRequest(.get, server.url("/flaky?key=\(key)&fail=1&code=429&retry-after=1")))
        let took = elapsed(since: start)
        #expect(response.status == 200)
        #expect(response.attempts == 2)
        #expect(took >= .milliseconds(950))
        #expect(events.delays == [.seconds(1)])
        #expect(events.reasons.first?.contains("HTTP 429") == true)
    }

    @Test("429 with Retry-After as an HTTP date waits until that date")
    func retryAfterDate() async throws {
        let key = uniqueKey("429-date")
        let client = HTTPClient()
        let start = ContinuousClock.now
        let response = try await client.send(HTTPRequest(.get, server.url("/flaky?key=\(key)&fail=1&code=429&retry-after-date=2")))
        let took = elapsed(since: start)
        #expect(response.status == 200)
        #expect(response.attempts == 2)
        // The date has one-second granularity: the wait is between 1 and 2 seconds.
        #expect(took >= .milliseconds(900))
        #expect(took < .seconds(30), "a hang, not a wait of 1-2 s")
    }

    @Test("429 asking for a longer wait than the policy allows is returned at once")
    func retryAfterTooLong() async throws {
        let key = uniqueKey("429-long")
        let client = HTTPClient(configuration: .init(retry: RetryPolicy(maxServerDelay: .seconds(5))))
        let start = ContinuousClock.now
        let response = try await client.send(HTTPRequest(.get, server.url("/flaky?key=\(key)&fail=1&code=429&retry-after=3600")))
        #expect(response.status == 429)
        #expect(response.attempts == 1)
        #expect(elapsed(since: start) < .seconds(30), "it waited for the 3600 s asked")
    }

    @Test("rate-limit headers are parsed on the response and kept by the client", arguments: ["", "x"])
    func rateLimitHeaders(style: String) async throws {
        let clock = TestClock(Date())
        let client = HTTPClient(clock: clock.clock)
        #expect(client.rateLimit == nil)
        let reset = style == "x" ? String(Int(Date().timeIntervalSince1970) + 120) : "30"
        let response = try await client.send(HTTPRequest(.get, server.url("/ratelimit?limit=100&remaining=42&reset=\(reset)&style=\(style)")))
        let budget = try #require(response.rateLimit)
        #expect(budget.limit == 100)
        #expect(budget.remaining == 42)
        #expect(!budget.isExhausted)
        let resetIn = try #require(budget.resetIn(now: response.receivedAt))
        let expected: Duration = style == "x" ? .seconds(120) : .seconds(30)
        #expect(resetIn > expected - .seconds(3) && resetIn <= expected + .seconds(1))
        #expect(client.rateLimit == budget)

        _ = try await client.send(HTTPRequest(.get, server.url("/ratelimit?limit=100&remaining=0&reset=5")))
        #expect(client.rateLimit?.remaining == 0)
        #expect(client.rateLimit?.isExhausted == true)
    }

    @Test("a body over the cap fails as .responseTooLarge; one under it arrives whole")
    func responseCap() async throws {
        let client = HTTPClient(configuration: .init(retry: .none, maxResponseBytes: 1 << 20))
        let error = await #expect(throws: HTTPError.self) {
            _ = try await client.send(HTTPRequest(.get, server.url("/bytes?n=2000000")))
        }
        #expect(error?.kind == .responseTooLarge)
        let big = try await HTTPClient().send(HTTPRequest(.get, server.url("/bytes?n=5000000")))
        #expect(big.body.count == 5_000_000)
        #expect(big.body.allSatisfy { $0 == UInt8(ascii: "x") })
    }

    @Test("50 requests to a 200 ms endpoint are in the server together, not one after another")
    func manyInFlight() async throws {
        let key = uniqueKey("inflight")
        let client = HTTPClient(configuration: .init(retry: .none))
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<50 {
                group.addTask { try await client.send(HTTPRequest(.get, server.url("/slow?ms=200&key=\(key)"))).status }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.count == 50)
        #expect(statuses.allSatisfy { $0 == 200 })
        // In a row the server would never see two at once; the transport allows 64.
        let seen = try await serverCounts(server, key: key)
        #expect(seen.count == 50)
        #expect(seen.peak > 8, "at most \(seen.peak) requests were in flight at once")
    }

    @Test("a transport with 4 slots never has more than 4 in flight, and reports the wait as queued time")
    func boundedConcurrency() async throws {
        let key = uniqueKey("slots")
        let client = HTTPClient(configuration: .init(retry: .none), transport: CurlTransport(options: .init(maxConcurrent: 4)))
        let responses = try await withThrowingTaskGroup(of: HTTPResponse.self) { group in
            for _ in 0..<8 { group.addTask { try await client.send(HTTPRequest(.get, server.url("/slow?ms=300&key=\(key)"))) } }
            return try await group.reduce(into: [HTTPResponse]()) { $0.append($1) }
        }
        #expect(responses.allSatisfy { $0.status == 200 })
        let seen = try await serverCounts(server, key: key)
        #expect(seen.count == 8)
        #expect(seen.peak <= 4)
        #expect(seen.peak >= 2, "the slots were used one at a time")
        // The second wave waited in the queue for a slot: at least most of the first wave's 300 ms.
        #expect(responses.filter { $0.timing.queued >= .milliseconds(200) }.count == 4)
    }

    @Test("a released transport ends its thread and frees its handles")
    func releasedTransport() async throws {
        weak var engine: CurlEngine?
        do {
            let transport = CurlTransport()
            engine = transport.engine
            let response = try await transport.send(HTTPRequest(.get, server.url("/ok"), connectTimeout: .seconds(5), timeout: .seconds(5)))
            #expect(response.status == 200)
            #expect(engine != nil)
        }
        // The thread holds the engine until it has left its loop.
        let until = ContinuousClock.now + .seconds(5)
        while engine != nil && ContinuousClock.now < until { try await Task.sleep(for: .milliseconds(10)) }
        #expect(engine == nil)
    }

    @Test("cancelling the task aborts its transfer at once")
    func cancellation() async throws {
        let client = HTTPClient(configuration: .init(retry: .none))
        let start = ContinuousClock.now
        let task = Task { try await client.send(HTTPRequest(.get, server.url("/slow?ms=60000"))) }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        let result = await task.result
        #expect(throws: CancellationError.self) { try result.get() }
        // The endpoint answers after 60 s: finishing well before that proves the transfer
        // was aborted (generous bound: the whole suite shares two cores).
        #expect(elapsed(since: start) < .seconds(30))
        // The transport still works afterwards.
        #expect(try await client.send(HTTPRequest(.get, server.url("/ok"))).status == 200)
    }

    @Test("a bearer token is sent, yet never appears in descriptions or errors")
    func bearerTokenNeverShown() async throws {
        let token = "kh-secret-token-\(UUID().uuidString)"
        let redactor = Redactor()
        let auth = HTTPAuthentication.bearer(token, name: "KH_TEST_TOKEN", redactor: redactor)
        let client = HTTPClient(configuration: .init(retry: .none, authentication: auth), redactor: redactor)

        // Sent: the server sees it.
        let echo = try await client.send(HTTPRequest(.get, server.url("/echo")))
        #expect(echo.text.contains("Bearer \(token)"))

        // Not shown: descriptions of the request, the auth and the response.
        let request = client.prepare(HTTPRequest(.get, server.url("/echo"), headers: ["Authorization": "Bearer \(token)"]))
        var dumped = ""
        dump(request, to: &dumped)
        for text in [
            "\(request)", String(reflecting: request), dumped, "\(auth)", String(reflecting: auth), "\(echo)", String(reflecting: echo.request),
        ] {
            #expect(!text.contains(token))
        }
        #expect(String(reflecting: request).contains("[redacted"))

        // Not in errors: a failed decode quotes the body (which echoes the token) redacted.
        struct Wrong: Decodable { var missing: Int }
        let decodeError = #expect(throws: HTTPError.self) { _ = try echo.decode(Wrong.self) }
        #expect(decodeError?.message.contains(token) == false)
        #expect(decodeError?.message.contains("[redacted:KH_TEST_TOKEN]") == true)

        // Not in errors: a transport failure, even with the token in the URL's query.
        let port = closedPort()
        let transportError = await #expect(throws: HTTPError.self) {
            _ = try await client.send(HTTPRequest(.get, URL(string: "http://127.0.0.1:\(port)/x?access_token=\(token)")!))
        }
        let failure = try #require(transportError)
        for text in ["\(failure)", failure.message, String(reflecting: failure), failure.url, failure.detail] {
            #expect(!text.contains(token))
        }
        // And without a redactor, the transport still scrubs the token it was given.
        let bare = HTTPClient(configuration: .init(retry: .none, authentication: .bearer(token)))
        let bareError = await #expect(throws: HTTPError.self) {
            _ = try await bare.send(HTTPRequest(.get, URL(string: "http://127.0.0.1:\(port)/x?access_token=\(token)")!))
        }
        #expect(bareError.map { "\($0)".contains(token) } == false)
    }
}
