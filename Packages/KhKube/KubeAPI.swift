import Foundation
import KhCore
import KhHTTP

/// A small read-only client of the Kubernetes REST API: GETs of paths that name group
/// and version (so no discovery), over KhHTTP's libcurl transport, each under the
/// caller's deadline, with statuses mapped to ``KubeError`` as kubectl's messages are.
///
/// Either straight to the API server from a resolved kubeconfig (``init(connection:timeout:redactor:)``:
/// TLS with the cluster's CA, token, basic or client-certificate credentials; connections
/// kept alive and reused, HTTP/2 multiplexed when the server offers it), or through a
/// `kubectl proxy` on a unix socket (``init(unixSocket:timeout:)``).
public final class KubeAPI: Sendable {
    /// The server URL requests are made against (paths are appended to its path).
    public let base: URL
    /// Sends the requests.
    public let http: HTTPClient
    /// Appended to `GET path` in messages and evidence, e.g. ` (through kubectl proxy)`.
    public let via: String

    /// Straight to the API server of `connection`, with at most `connectionsPerHost`
    /// connections at once: each costs a TLS handshake; they are opened together (not one
    /// first to learn whether the server multiplexes: that would put a whole handshake in
    /// front of every other request), then kept alive; an HTTP/2 server gets the requests
    /// multiplexed over them, an HTTP/1.1 server gets them queued over them.
    public init(connection: KubeConnection, timeout: Duration, redactor: Redactor? = nil, maxConcurrent: Int = 16, connectionsPerHost: Int = 4) {
        var options = CurlTransport.Options(
            maxConcurrent: maxConcurrent, maxConnectionsPerHost: connectionsPerHost, acceptCompressed: true, caBundlePath: connection.tls.caFile,
            defaultConnectTimeout: timeout,
            defaultTimeout: timeout)
        options.caBundle = connection.tls.caData
        options.insecure = connection.tls.insecure
        options.clientCertificatePath = connection.tls.clientCertificateFile
        options.clientCertificate = connection.tls.clientCertificateData
        options.clientKeyPath = connection.tls.clientKeyFile
        options.clientKey = connection.tls.clientKeyData
        if let host = connection.server.host, ["localhost", "::1", "[::1]"].contains(host.lowercased()) || host.hasPrefix("127.") {
            // As kubectl (Go's proxy lookup): a proxy from the environment never applies to loopback.
            options.noProxy = "*"
        }
        var base = connection.server
        if let name = connection.tls.serverName, let host = base.host, name != host,
            var components = URLComponents(url: base, resolvingAgainstBaseURL: false)
        {
            // The certificate is checked against (and SNI names) tls-server-name; the
            // connection still goes to the server's own host and port.
            let port = base.port ?? (base.scheme == "http" ? 80 : 443)
            components.host = name
            components.port = port
            if let renamed = components.url {
                options.connectTo = ["\(name):\(port):\(host.contains(":") ? "[\(host)]" : host):\(port)"]
                base = renamed
            }
        }
        self.base = base
        self.via = ""
        http = HTTPClient(
            configuration: .init(
                connectTimeout: timeout, timeout: timeout, retry: .none, authentication: connection.authentication, maxResponseBytes: 64 << 20),
            transport: CurlTransport(options: options), redactor: redactor)
    }

    /// Through a `kubectl proxy` that listens on `unixSocket` (it adds the credentials).
    public init(unixSocket: String, timeout: Duration) {
        base = URL(string: "http://localhost")!
        via = " (through kubectl proxy)"
        http = HTTPClient(
            configuration: .init(connectTimeout: timeout, timeout: timeout, retry: .none, maxResponseBytes: 64 << 20),
            transport: CurlTransport(options: .init(maxConcurrent: 16, acceptCompressed: false, unixSocketPath: unixSocket)))
    }

    /// How a GET is shown in messages and evidence: `GET /path?query`.
    public func shown(_ path: String, query: [(String, String)] = []) -> String {
        var components = URLComponents()
        components.path = path
        if !query.isEmpty { components.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) } }
        return "GET " + (components.percentEncodedQuery.map { "\(path)?\($0)" } ?? path) + via
    }

    /// `GET path?query`; a status other than 2xx becomes a ``KubeError``.
    public func get(_ path: String, query: [(String, String)] = []) async throws -> Data {
        let shown = shown(path, query: query)
        guard var components = URLComponents(url: base, resolvingAgainstBaseURL: false) else {
            throw KubeError(kind: .invalid, command: shown, detail: "not a valid server URL: \(base)")
        }
        let prefix = components.path.hasSuffix("/") ? String(components.path.dropLast()) : components.path
        components.path = prefix + path
        if !query.isEmpty { components.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) } }
        guard let url = components.url else { throw KubeError(kind: .invalid, command: shown, detail: "not a valid URL path") }
        let response: HTTPResponse
        do {
            response = try await http.send(HTTPRequest(.get, url, headers: ["Accept": "application/json"]))
        } catch let error as HTTPError {
            throw KubeError(
                kind: error.kind == .timeout || error.kind == .connectTimeout ? .timedOut : .unreachable, command: shown, detail: error.message)
        }
        guard response.isSuccess else {
            throw KubeError(kind: Self.kind(response.status), command: shown, detail: Self.detail(response))
        }
        return response.body
    }

    /// One object at `path`, decoded.
    public func object<T: Decodable>(_ path: String, query: [(String, String)] = [], as type: T.Type = T.self) async throws -> T {
        let data = try await get(path, query: query)
        do {
            return try KhJSON.decoder().decode(T.self, from: data)
        } catch {
            throw KubeError(kind: .decoding, command: shown(path, query: query), detail: "\(error)")
        }
    }

    /// The items of a list at `path`.
    public func items<T: Decodable>(_ path: String, query: [(String, String)] = [], as type: T.Type = T.self) async throws -> [T] {
        try await object(path, query: query, as: KubeList<T>.self).items
    }

    /// `kubectl logs deploy/NAME --tail=N` over the API: the Deployment's selector, its
    /// pods, the one kubectl would pick (running before pending, ready before not ready,
    /// older before newer), then that pod's default container's log.
    public func deploymentLogs(namespace: String, deployment: String, tail: Int) async throws -> String {
        let base = "/apis/apps/v1/namespaces/\(namespace)/deployments/\(deployment)"
        let object: Deployment = try await object(base)
        guard let labels = object.spec?.selector?.matchLabels, !labels.isEmpty else {
            throw KubeError(kind: .invalid, command: shown(base), detail: "deployment \(deployment) has no matchLabels selector")
        }
        let selector = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        let podsPath = "/api/v1/namespaces/\(namespace)/pods"
        let pods: [Pod] = try await items(podsPath, query: [("labelSelector", selector)])
        guard let pod = pods.sorted(by: Self.logOrder).first else {
            throw KubeError(kind: .notFound, command: shown(podsPath), detail: "no pod of deployment \(deployment) (\(selector))")
        }
        var query = [("tailLines", String(tail))]
        if let container = pod.metadata.annotations?["kubectl.kubernetes.io/default-container"] ?? pod.spec?.containers?.first?.name {
            query.append(("container", container))
        }
        return String(decoding: try await get("/api/v1/namespaces/\(namespace)/pods/\(pod.metadata.name)/log", query: query), as: UTF8.self)
    }

    /// The order kubectl picks a pod for logs in (a simplified `podutils.ByLogging`).
    public static func logOrder(_ a: Pod, _ b: Pod) -> Bool {
        func phase(_ pod: Pod) -> Int { ["Running": 0, "Unknown": 1, "Pending": 2][pod.status?.phase ?? ""] ?? 3 }
        if phase(a) != phase(b) { return phase(a) < phase(b) }
        if a.isReady != b.isReady { return a.isReady }
        let (x, y) = (a.metadata.creationTimestamp ?? .distantFuture, b.metadata.creationTimestamp ?? .distantFuture)
        return x != y ? x < y : a.metadata.name < b.metadata.name
    }

    /// The ``KubeError/Kind`` of an HTTP status, as kubectl reports the server's Status.
    public static func kind(_ status: Int) -> KubeError.Kind {
        switch status {
        case 400, 422: return .invalid
        case 401: return .unauthorized
        case 403: return .forbidden
        case 404: return .notFound
        case 409: return .conflict
        case 502, 503, 504: return .unreachable
        default: return .other
        }
    }

    /// The server's Status message when the body is one, else the body's text.
    public static func detail(_ response: HTTPResponse) -> String {
        struct Status: Decodable { var message: String? }
        if let message = (try? JSONDecoder().decode(Status.self, from: response.body))?.message, !message.isEmpty {
            return "\(response.status): \(message)"
        }
        return "\(response.status): " + String(decoding: response.body.prefix(500), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
