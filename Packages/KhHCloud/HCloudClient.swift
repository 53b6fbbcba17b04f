import Foundation
import KhCore
import KhHTTP
import Synchronization

/// Where and how ``HCloudClient`` talks to the Hetzner Cloud API.
public struct HCloudConfiguration: Sendable {
    /// `https://api.hetzner.cloud/v1`.
    public static let defaultEndpoint = URL(string: "https://api.hetzner.cloud/v1")!

    /// The API base (`HCLOUD_ENDPOINT` when a caller honours it).
    public var endpoint: URL
    /// The API token (redacted as its `name`).
    public var token: Secret
    /// Entries per page when listing (the API allows at most 50).
    public var perPage: Int
    /// Requests in flight at once for bulk work (the reaper, batched deletes).
    public var concurrency: Int
    /// How long ``HCloudClient/waitForActions(_:deadline:)`` waits by default.
    public var actionDeadline: Duration
    /// First pause between action polls; it grows by half each round up to ``pollMaxInterval``.
    public var pollInitialInterval: Duration
    /// Longest pause between action polls.
    public var pollMaxInterval: Duration
    /// Deadline of one HTTP attempt.
    public var requestTimeout: Duration
    /// Longest total wait for the rate-limit budget (per request) before giving up with ``HCloudError/Kind/rateLimited``.
    public var maxRateLimitWait: Duration
    /// 429 answers one request may get before giving up.
    public var maxRateLimitRetries: Int

    public init(
        endpoint: URL = HCloudConfiguration.defaultEndpoint, token: Secret, perPage: Int = 50, concurrency: Int = 16,
        actionDeadline: Duration = .seconds(300), pollInitialInterval: Duration = .milliseconds(100), pollMaxInterval: Duration = .seconds(2),
        requestTimeout: Duration = .seconds(30), maxRateLimitWait: Duration = .seconds(120), maxRateLimitRetries: Int = 8
    ) {
        self.endpoint = endpoint
        self.token = token
        self.perPage = min(50, max(1, perPage))
        self.concurrency = max(1, concurrency)
        self.actionDeadline = actionDeadline
        self.pollInitialInterval = pollInitialInterval
        self.pollMaxInterval = pollMaxInterval
        self.requestTimeout = requestTimeout
        self.maxRateLimitWait = maxRateLimitWait
        self.maxRateLimitRetries = max(0, maxRateLimitRetries)
    }

    /// The configuration from a token given in config (preferred) or `HCLOUD_TOKEN`, and the
    /// endpoint from `endpoint` or `HCLOUD_ENDPOINT` or the default. Throws
    /// ``HCloudError/Kind/missingToken`` when there is no token and ``HCloudError/Kind/configuration``
    /// for an endpoint that is not an http(s) URL — before any request.
    public static func resolve(token: Secret? = nil, endpoint: String? = nil, environment: [String: String]) throws -> HCloudConfiguration {
        let secret: Secret
        if let token, !token.value.isEmpty {
            secret = token
        } else if let value = environment["HCLOUD_TOKEN"], !value.isEmpty {
            secret = Secret(name: "HCLOUD_TOKEN", value: value)
        } else {
            throw HCloudError(kind: .missingToken, detail: "no API token: HCLOUD_TOKEN is not set and the config gives none")
        }
        let raw = endpoint ?? environment["HCLOUD_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultEndpoint.absoluteString
        guard let url = URL(string: raw), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw HCloudError(kind: .configuration, detail: "endpoint \(raw) is not an http(s) URL such as \(defaultEndpoint.absoluteString)")
        }
        return HCloudConfiguration(endpoint: url, token: secret)
    }
}

/// A Hetzner Cloud API client over ``KhHTTP/HTTPClient``.
///
/// - The token is sent as a bearer token, registered with the redactor and never logged.
/// - Lists follow `meta.pagination` at `per_page` 50, with `label_selector` and `name`.
/// - Action polling is batched: one `GET /actions?id=…&id=…` for up to 50 pending actions,
///   with a capped backoff, bounded by a deadline.
/// - The rate-limit budget (`RateLimit-Limit/Remaining/Reset`) is tracked across concurrent
///   requests: while the known budget is spent nothing is sent until the bucket has refilled
///   enough; a 429 is waited out (any method: a 429 means the request was not done) with a
///   capped backoff.
/// - Errors are ``HCloudError``s with kh exit codes.
public final class HCloudClient: Sendable {
    /// The configuration in use.
    public let configuration: HCloudConfiguration
    private let http: HTTPClient
    private let clock: KhClock
    private let budget: HCloudRateBudget
    private let sent = Mutex<Int>(0)
    private let rateLimitedAnswers = Mutex<Int>(0)

    /// - Parameters:
    ///   - transport: libcurl by default.
    ///   - clock: waits (polls, budget, backoff) go through it.
    ///   - redactor: the token is registered with it under its name.
    /// - Throws: ``HCloudError`` `.missingToken` for an empty token, `.configuration` for a bad endpoint.
    public init(
        configuration: HCloudConfiguration, transport: any HTTPTransport = CurlTransport(), clock: KhClock = .live, redactor: Redactor? = nil
    ) throws {
        guard !configuration.token.value.isEmpty else {
            throw HCloudError(kind: .missingToken, detail: "the API token \(configuration.token.name) is empty")
        }
        guard let scheme = configuration.endpoint.scheme, ["http", "https"].contains(scheme) else {
            throw HCloudError(kind: .configuration, detail: "endpoint \(configuration.endpoint.absoluteString) is not an http(s) URL")
        }
        redactor?.register(name: configuration.token.name, value: configuration.token.value)
        let authentication = HTTPAuthentication.bearer(
            SecretValue(name: configuration.token.name, value: configuration.token.value, redactor: redactor))
        var retry = RetryPolicy.default
        retry.retryableStatuses.remove(429)  // 429s are handled here, with the budget, for every method
        self.configuration = configuration
        self.clock = clock
        self.budget = HCloudRateBudget()
        self.http = HTTPClient(
            configuration: .init(
                connectTimeout: .seconds(10), timeout: configuration.requestTimeout, retry: retry,
                headers: ["User-Agent": "kh/\(KhVersion.current) (KhHCloud)", "Accept": "application/json"], authentication: authentication),
            transport: transport, clock: clock, redactor: redactor)
    }

    /// HTTP requests sent so far (retries included).
    public var requestsSent: Int { sent.withLock { $0 } }
    /// 429 answers received so far.
    public var rateLimitedCount: Int { rateLimitedAnswers.withLock { $0 } }
    /// The budget the API announced last.
    public var rateLimit: RateLimit? { http.rateLimit }

    // MARK: Generic operations

    /// Every resource of a kind, following the pagination (`per_page` from the configuration),
    /// filtered by `labelSelector` and `name` on the server, plus extra query filters (`type`,
    /// `architecture`, `status`, …) as the API names them.
    public func list<R: HCloudResource>(
        _ type: R.Type, labelSelector: String? = nil, name: String? = nil, filters: [(String, String)] = []
    ) async throws -> [R] {
        var query: [(String, String)] = []
        if let labelSelector, !labelSelector.isEmpty { query.append(("label_selector", labelSelector)) }
        if let name { query.append(("name", name)) }
        query += filters
        var all: [R] = []
        var page = 1
        var pages = 0
        while true {
            pages += 1
            guard pages <= 10_000 else { throw HCloudError(kind: .decoding, detail: "more than 10000 pages of \(R.kind.collection)") }
            let response = try await perform(
                .get, "/\(R.kind.collection)", query: query + [("page", String(page)), ("per_page", String(configuration.perPage))])
            let decoded = try decode(HCloudPage<R>.self, from: response, request: "GET /\(R.kind.collection)")
            all += decoded.items
            guard let next = decoded.pagination?.nextPage, next > page else { return all }
            page = next
        }
    }

    /// One resource by id; ``HCloudError/Kind/notFound`` when it does not exist.
    public func get<R: HCloudResource>(_ type: R.Type, id: Int) async throws -> R {
        let path = "/\(R.kind.collection)/\(id)"
        let response = try await perform(.get, path)
        return try decode(HCloudSingle<R>.self, from: response, request: "GET \(path)").item
    }

    /// Creates a resource; returns it with the action(s) the API started.
    public func create<R: HCloudResource>(_ type: R.Type, _ body: some Encodable & Sendable) async throws -> HCloudCreated<R> {
        let path = "/\(R.kind.collection)"
        let response = try await perform(.post, path, body: try encode(body, request: "POST \(path)"))
        return try decode(HCloudCreated<R>.self, from: response, request: "POST \(path)")
    }

    /// Deletes a resource. Servers answer with their `delete_server` action; the other kinds
    /// with nothing (nil).
    @discardableResult
    public func delete(_ kind: HCloudKind, id: Int) async throws -> HCloudAction? {
        let path = "/\(kind.collection)/\(id)"
        let response = try await perform(.delete, path)
        guard !response.body.isEmpty else { return nil }
        return try decode(HCloudActionEnvelope.self, from: response, request: "DELETE \(path)").action
    }

    // MARK: Typed shortcuts

    /// Servers, optionally by label selector, name and statuses.
    public func servers(labelSelector: String? = nil, name: String? = nil, status: [String] = []) async throws -> [HCloudServer] {
        try await list(HCloudServer.self, labelSelector: labelSelector, name: name, filters: status.map { ("status", $0) })
    }

    /// Images, optionally by type (`snapshot`, `system`, …), architecture (`x86`, `arm`) and label selector.
    public func images(type: String? = nil, architecture: String? = nil, labelSelector: String? = nil) async throws -> [HCloudImage] {
        var filters: [(String, String)] = []
        if let type { filters.append(("type", type)) }
        if let architecture { filters.append(("architecture", architecture)) }
        return try await list(HCloudImage.self, labelSelector: labelSelector, filters: filters)
    }

    /// Creates a server; returns it, its `create_server` action and the next actions.
    public func createServer(_ request: HCloudServerCreate) async throws -> HCloudCreated<HCloudServer> {
        try await create(HCloudServer.self, request)
    }

    /// Deletes a server; returns its `delete_server` action.
    public func deleteServer(id: Int) async throws -> HCloudAction {
        guard let action = try await delete(.server, id: id) else {
            throw HCloudError(kind: .decoding, detail: "DELETE /servers/\(id) answered without an action", request: "DELETE /servers/\(id)")
        }
        return action
    }

    /// A power action on a server.
    public func serverAction(id: Int, _ action: HCloudPowerAction) async throws -> HCloudAction {
        try await postAction("/servers/\(id)/actions/\(action.rawValue)")
    }

    /// Makes a snapshot (or backup) image of a server; returns the image (status `creating`) and the action.
    public func createImage(
        serverID: Int, description: String, labels: [String: String] = [:], type: String = "snapshot"
    ) async throws -> (image: HCloudImage, action: HCloudAction) {
        struct Body: Encodable, Sendable {
            var description: String
            var labels: [String: String]
            var type: String
        }
        struct Answer: Decodable {
            var image: HCloudImage
            var action: HCloudAction
        }
        let path = "/servers/\(serverID)/actions/create_image"
        let response = try await perform(
            .post, path, body: try encode(Body(description: description, labels: labels, type: type), request: "POST \(path)"))
        let answer = try decode(Answer.self, from: response, request: "POST \(path)")
        return (answer.image, answer.action)
    }

    /// Detaches a volume from its server; returns the `detach_volume` action.
    public func detachVolume(id: Int) async throws -> HCloudAction {
        try await postAction("/volumes/\(id)/actions/detach")
    }

    /// Attaches a volume to a server; returns the `attach_volume` action.
    public func attachVolume(id: Int, server: Int) async throws -> HCloudAction {
        struct Body: Encodable, Sendable { var server: Int }
        let path = "/volumes/\(id)/actions/attach"
        let response = try await perform(.post, path, body: try encode(Body(server: server), request: "POST \(path)"))
        return try decode(HCloudActionEnvelope.self, from: response, request: "POST \(path)").action
    }

    private func postAction(_ path: String) async throws -> HCloudAction {
        let response = try await perform(.post, path)
        return try decode(HCloudActionEnvelope.self, from: response, request: "POST \(path)").action
    }

    // MARK: Actions

    /// One action by id.
    public func action(id: Int) async throws -> HCloudAction {
        let response = try await perform(.get, "/actions/\(id)")
        return try decode(HCloudActionEnvelope.self, from: response, request: "GET /actions/{id}").action
    }

    /// Many actions in batches: one `GET /actions?id=…` per 50 ids. Unknown ids are left out.
    public func actions(ids: [Int]) async throws -> [HCloudAction] {
        struct Answer: Decodable { var actions: [HCloudAction] }
        var out: [HCloudAction] = []
        for start in stride(from: 0, to: ids.count, by: 50) {
            let chunk = ids[start..<min(ids.count, start + 50)]
            let response = try await perform(.get, "/actions", query: chunk.map { ("id", String($0)) })
            out += try decode(Answer.self, from: response, request: "GET /actions").actions
        }
        return out
    }

    /// Polls the actions in batches until none is running, with a growing pause (from
    /// ``HCloudConfiguration/pollInitialInterval`` by 1.5× to ``HCloudConfiguration/pollMaxInterval``),
    /// and returns them finished, in the order of `ids` (failed ones have `status: error`).
    /// An id the API does not know counts as failed. Throws ``HCloudError/Kind/deadline`` naming the
    /// actions still running when `deadline` (default ``HCloudConfiguration/actionDeadline``) passes.
    public func waitForActions(_ ids: [Int], deadline: Duration? = nil) async throws -> [HCloudAction] {
        var seen = Set<Int>()
        let unique = ids.filter { seen.insert($0).inserted }
        let limit = clock.now().addingTimeInterval((deadline ?? configuration.actionDeadline).seconds)
        var finished: [Int: HCloudAction] = [:]
        var pending = unique
        var pause = configuration.pollInitialInterval
        var first = true
        while !pending.isEmpty {
            if !first {
                let left = limit.timeIntervalSince(clock.now())
                guard left > 0 else {
                    throw HCloudError(
                        kind: .deadline,
                        detail: "\(pending.count) action(s) still running after \((deadline ?? configuration.actionDeadline).humanDescription): "
                            + pending.prefix(10).map(String.init).joined(separator: ", "))
                }
                try await clock.sleep(min(pause, .milliseconds(Int64(left * 1000) + 1)))
                pause = min(configuration.pollMaxInterval, pause * 1.5)
            } else {
                try await clock.sleep(configuration.pollInitialInterval)
            }
            first = false
            let answered = try await actions(ids: pending)
            let byID = Dictionary(answered.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
            var still: [Int] = []
            for id in pending {
                if let action = byID[id] {
                    if action.isRunning { still.append(id) } else { finished[id] = action }
                } else {
                    finished[id] = HCloudAction(
                        id: id, command: "unknown", status: "error", progress: nil, started: nil, finished: nil, resources: [],
                        error: .init(code: "not_found", message: "the API does not know action \(id)"))
                }
            }
            pending = still
        }
        return unique.compactMap { finished[$0] }
    }

    // MARK: Plumbing

    /// Sends one request within the budget; returns a 2xx response or throws ``HCloudError``.
    func perform(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: Data? = nil) async throws -> HTTPResponse {
        let label = "\(method) \(path)"
        let url = try url(path, query: query)
        var request = HTTPRequest(method, url, body: body)
        if body != nil { request.headers.set("Content-Type", "application/json") }
        let started = clock.now()
        var limited = 0
        while true {
            try await reserve(started: started, request: label)
            let response: HTTPResponse
            do {
                response = try await http.send(request)
            } catch let error as HTTPError {
                sent.withLock { $0 += error.attempts }
                await budget.cancel()
                throw HCloudError.from(http: error, request: label)
            } catch {
                await budget.cancel()
                throw error
            }
            sent.withLock { $0 += response.attempts }
            await budget.complete(response.rateLimit, status: response.status, now: clock.now())
            if response.status == 429 {
                rateLimitedAnswers.withLock { $0 += 1 }
                limited += 1
                let waited = clock.now().timeIntervalSince(started)
                guard limited <= configuration.maxRateLimitRetries, waited < configuration.maxRateLimitWait.seconds else {
                    throw HCloudError.from(response: response, request: label)
                }
                let server = RetryPolicy.serverDelay(status: 429, headers: response.headers, now: clock.now())
                let backoff = Duration.milliseconds(Int64(min(8000, 250 * (1 << min(limited - 1, 5)))))
                // Wait what the budget needs for one request (the bucket refills gradually), at least the backoff.
                let needed = await budget.delayForNext(now: clock.now()) ?? server ?? backoff
                try await clock.sleep(max(min(needed, configuration.maxRateLimitWait), backoff))
                continue
            }
            guard response.isSuccess else { throw HCloudError.from(response: response, request: label) }
            return response
        }
    }

    private func reserve(started: Date, request: String) async throws {
        while let wait = await budget.reserve(now: clock.now()) {
            guard clock.now().timeIntervalSince(started) + wait.seconds <= configuration.maxRateLimitWait.seconds else {
                throw HCloudError(
                    kind: .rateLimited,
                    detail: "the rate-limit budget would not allow a request within \(configuration.maxRateLimitWait.humanDescription)",
                    request: request)
            }
            try await clock.sleep(wait)
        }
    }

    private func url(_ path: String, query: [(String, String)]) throws -> URL {
        var text = configuration.endpoint.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        text += path
        if !query.isEmpty {
            text += "?" + query.map { HTTPRequest.formEncode($0.0) + "=" + HTTPRequest.formEncode($0.1) }.joined(separator: "&")
        }
        guard let url = URL(string: text) else {
            throw HCloudError(kind: .configuration, detail: "could not build a URL for \(path)")
        }
        return url
    }

    private func encode(_ body: some Encodable, request: String) throws -> Data {
        do {
            return try KhJSON.encoder().encode(body)
        } catch {
            throw HCloudError(kind: .configuration, detail: "could not encode the request body: \(error)", request: request)
        }
    }

    private func decode<T: Decodable>(_ type: T.Type, from response: HTTPResponse, request: String) throws -> T {
        do {
            return try response.decode(T.self)
        } catch let error as HTTPError {
            throw HCloudError.from(http: error, request: request)
        }
    }
}

/// Power actions on a server.
public enum HCloudPowerAction: String, Sendable, CaseIterable {
    case poweron, poweroff, shutdown, reboot, reset
}

/// What a create request answers: the resource, its action and the actions that follow.
public struct HCloudCreated<R: HCloudResource>: Decodable, Sendable {
    /// The new resource.
    public var resource: R
    /// The action creating it, when there is one.
    public var action: HCloudAction?
    /// Actions started after it (`start_server`, `attach_volume`, firewall `actions`).
    public var nextActions: [HCloudAction]

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: HCloudDynamicKey.self)
        resource = try c.decode(R.self, forKey: HCloudDynamicKey(R.kind.rawValue))
        action = try c.decodeIfPresent(HCloudAction.self, forKey: HCloudDynamicKey("action"))
        nextActions =
            try c.decodeIfPresent([HCloudAction].self, forKey: HCloudDynamicKey("next_actions"))
            ?? c.decodeIfPresent([HCloudAction].self, forKey: HCloudDynamicKey("actions")) ?? []
    }
}

struct HCloudDynamicKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ value: String) { stringValue = value }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

struct HCloudPage<R: HCloudResource>: Decodable {
    var items: [R]
    var pagination: HCloudPagination?

    struct Meta: Decodable { var pagination: HCloudPagination? }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: HCloudDynamicKey.self)
        items = try c.decode([R].self, forKey: HCloudDynamicKey(R.kind.collection))
        pagination = try c.decodeIfPresent(Meta.self, forKey: HCloudDynamicKey("meta"))?.pagination
    }
}

struct HCloudSingle<R: HCloudResource>: Decodable {
    var item: R

    init(from decoder: any Decoder) throws {
        item = try decoder.container(keyedBy: HCloudDynamicKey.self).decode(R.self, forKey: HCloudDynamicKey(R.kind.rawValue))
    }
}

struct HCloudActionEnvelope: Decodable { var action: HCloudAction }

/// The request budget the API announces, shared by every request of one client.
///
/// Hetzner's budget is a bucket of `RateLimit-Limit` requests that refills gradually;
/// `RateLimit-Reset` is when it is full again, so the refill time per request is
/// `(reset - now) / (limit - remaining)`. The budget keeps its own estimate of the bucket: it
/// takes one request per send, adds the refill as time passes, and on every answer lowers the
/// estimate to what the API said remains minus the requests still in flight (answers may come
/// back out of order, so an answer never raises it). Until the first answer only one request is
/// in flight; an API without the headers is not limited. So nothing is sent while the known
/// budget is spent, and requests are spaced by the refill time until it recovers.
actor HCloudRateBudget {
    private enum Mode { case unknown, unlimited, tracked }
    private var mode = Mode.unknown
    private var level = 0.0  // requests the bucket holds (estimate, conservative)
    private var limit = 1.0
    private var at = Date.distantPast
    private var inFlight = 0
    private var perRequest = 1.0  // seconds for one request to refill
    private var bestSample = 0  // (limit - remaining) of the observation perRequest came from

    private func refill(now: Date) {
        guard now > at else { return }
        level = min(limit, level + now.timeIntervalSince(at) / perRequest)
        at = now
    }

    /// nil: go (one request counted as in flight); else wait that long and ask again.
    func reserve(now: Date) -> Duration? {
        switch mode {
        case .unlimited:
            inFlight += 1
            return nil
        case .unknown:
            guard inFlight == 0 else { return .milliseconds(10) }
            inFlight += 1
            return nil
        case .tracked:
            refill(now: now)
            if level >= 1 {
                level -= 1
                inFlight += 1
                return nil
            }
            return .milliseconds(Int64(min(1, (1 - level) * perRequest) * 1000) + 1)
        }
    }

    /// How long until the budget allows one more request (nil when unknown).
    func delayForNext(now: Date) -> Duration? {
        guard mode == .tracked else { return nil }
        refill(now: now)
        return level >= 1 ? .zero : .milliseconds(Int64((1 - level) * perRequest * 1000) + 1)
    }

    /// An answer arrived with these headers (nil: none).
    func complete(_ announced: RateLimit?, status: Int, now: Date) {
        inFlight = max(0, inFlight - 1)
        guard let announced, let remaining = announced.remaining else {
            if mode == .unknown { mode = .unlimited }
            return
        }
        if let total = announced.limit {
            limit = Double(total)
            if let reset = announced.resetAt, total > remaining, total - remaining >= bestSample {
                let span = reset.timeIntervalSince(announced.observedAt)
                if span > 0 {
                    perRequest = span / Double(total - remaining)
                    bestSample = total - remaining
                }
            }
        }
        let said = Double(status == 429 ? 0 : remaining) - Double(inFlight)
        if mode == .tracked {
            refill(now: now)
            level = min(level, said)
        } else {
            level = said
            at = now
            mode = .tracked
        }
    }

    /// A request ended without an answer.
    func cancel() {
        inFlight = max(0, inFlight - 1)
    }
}
