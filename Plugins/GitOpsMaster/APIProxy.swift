import Foundation
import KhCore
import KhHTTP
import KhKube
import KhProcess

/// The Kubernetes API through one `kubectl proxy` that listens on a unix socket in a
/// private (0700) directory, so no other user of the machine can use it.
///
/// kubectl still does everything about credentials (kubeconfig, context, client
/// certificates, exec plugins); kh sends its reads as plain GETs over the socket, all
/// at once, each under its caller's deadline. One kubectl process instead of one per
/// call: a kubectl process costs 50–80 ms of CPU (mostly start-up and discovery), a
/// GET through the proxy a few milliseconds; the paths name group and version, so no
/// discovery is needed. Only for a kubectl that runs on this machine.
final class APIProxy: Sendable {
    /// What the proxy's lifetime task reports.
    enum Event: Sendable {
        case ready
        case exited(String)
    }

    let directory: String
    let http: HTTPClient
    let process: Task<Void, Never>
    /// How the proxy was started, for evidence.
    let command: String

    private init(directory: String, http: HTTPClient, process: Task<Void, Never>, command: String) {
        self.directory = directory
        self.http = http
        self.process = process
        self.command = command
    }

    /// Whether kubectl runs on this machine (not over SSH or through an `ssh_command` prefix).
    static func usable(_ cluster: Cluster) -> Bool {
        cluster.config.apiProxy && cluster.config.ssh == nil && (cluster.environment.sshCommand ?? "").isEmpty
            && cluster.kubectl.runner is LocalRunner
    }

    /// Starts `kubectl proxy` and waits until it serves (at most `startDeadline`); it is
    /// killed after `lifetime` at the latest, or by ``stop()``.
    static func start(_ kubectl: Kubectl, startDeadline: Duration, lifetime: Duration, requestTimeout: Duration) async throws -> APIProxy {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kh-proxy-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let socket = directory + "/api.sock"
        var arguments: [String] = []
        if let kubeconfig = kubectl.kubeconfig { arguments += ["--kubeconfig", kubeconfig] }
        if let context = kubectl.context { arguments += ["--context", context] }
        arguments += ["proxy", "--unix-socket", socket]
        let command = Command(kubectl.executable, arguments)
        let (events, continuation) = AsyncStream<Event>.makeStream()
        let options = RunOptions(
            timeout: lifetime, killGrace: .milliseconds(500), captureLimit: 64 << 10,
            onLine: { line in
                if line.stream == .stdout && line.text.hasPrefix("Starting to serve") { continuation.yield(.ready) }
            }, redactor: kubectl.redactor)
        let runner = kubectl.runner
        let process = Task {
            let outcome: String
            do {
                let result = try await runner.run(command, options: options)
                outcome = "\(result.summary): " + result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                outcome = (error as? any KhReportableError)?.message ?? "\(error)"
            }
            continuation.yield(.exited(outcome))
            continuation.finish()
        }
        let http = HTTPClient(
            configuration: .init(connectTimeout: requestTimeout, timeout: requestTimeout, retry: .none, maxResponseBytes: 64 << 20),
            transport: CurlTransport(options: .init(maxConcurrent: 16, acceptCompressed: false, unixSocketPath: socket)))
        let proxy = APIProxy(directory: directory, http: http, process: process, command: command.displayString)
        do {
            try await withDeadline("kubectl proxy", startDeadline) {
                for await event in events {
                    switch event {
                    case .ready: return
                    case .exited(let why): throw KubeError(kind: .other, command: command.displayString, detail: "exited before serving: \(why)")
                    }
                }
                throw CancellationError()
            }
        } catch {
            await proxy.stop()
            throw error
        }
        return proxy
    }

    /// Kills the proxy, waits for it, removes its directory.
    func stop() async {
        process.cancel()
        await process.value
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// `GET path?query` through the proxy; a status other than 2xx becomes a ``KubeError``.
    func get(_ path: String, query: [(String, String)] = []) async throws -> Data {
        var components = URLComponents()
        components.scheme = "http"
        components.host = "localhost"
        components.path = path
        if !query.isEmpty { components.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) } }
        guard let url = components.url else { throw KubeError(kind: .invalid, command: "GET \(path)", detail: "not a valid URL path") }
        let shown = "GET " + (components.percentEncodedQuery.map { "\(path)?\($0)" } ?? path)
        let response: HTTPResponse
        do {
            response = try await http.send(HTTPRequest(.get, url))
        } catch let error as HTTPError {
            throw KubeError(kind: error.kind == .timeout ? .timedOut : .unreachable, command: shown, detail: error.message)
        }
        guard (200..<300).contains(response.status) else {
            throw KubeError(kind: Self.kind(response.status), command: shown, detail: Self.detail(response))
        }
        return response.body
    }

    /// The items of a list at `path`.
    func items<T: Decodable>(_ path: String, query: [(String, String)] = [], as type: T.Type = T.self) async throws -> [T] {
        let data = try await get(path, query: query)
        do {
            return try KhJSON.decoder().decode(KubeList<T>.self, from: data).items
        } catch {
            throw KubeError(kind: .decoding, command: "GET \(path)", detail: "\(error)")
        }
    }

    /// `kubectl logs deploy/NAME --tail=N` over the API: the Deployment's selector, its
    /// pods, the one kubectl would pick (running before pending, ready before not ready,
    /// older before newer), then that pod's default container's log.
    func deploymentLogs(namespace: String, deployment: String, tail: Int) async throws -> String {
        let base = "/apis/apps/v1/namespaces/\(namespace)/deployments/\(deployment)"
        let object: Deployment
        do {
            object = try KhJSON.decoder().decode(Deployment.self, from: try await get(base))
        } catch let error as DecodingError {
            throw KubeError(kind: .decoding, command: "GET \(base)", detail: "\(error)")
        }
        guard let labels = object.spec?.selector?.matchLabels, !labels.isEmpty else {
            throw KubeError(kind: .invalid, command: "GET \(base)", detail: "deployment \(deployment) has no matchLabels selector")
        }
        let selector = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        let pods: [Pod] = try await items("/api/v1/namespaces/\(namespace)/pods", query: [("labelSelector", selector)])
        guard let pod = pods.sorted(by: Self.logOrder).first else {
            throw KubeError(
                kind: .notFound, command: "GET /api/v1/namespaces/\(namespace)/pods", detail: "no pod of deployment \(deployment) (\(selector))")
        }
        var query = [("tailLines", String(tail))]
        if let container = pod.metadata.annotations?["kubectl.kubernetes.io/default-container"] ?? pod.spec?.containers?.first?.name {
            query.append(("container", container))
        }
        return String(decoding: try await get("/api/v1/namespaces/\(namespace)/pods/\(pod.metadata.name)/log", query: query), as: UTF8.self)
    }

    /// The order kubectl picks a pod for logs in (a simplified `podutils.ByLogging`).
    static func logOrder(_ a: Pod, _ b: Pod) -> Bool {
        func phase(_ pod: Pod) -> Int { ["Running": 0, "Unknown": 1, "Pending": 2][pod.status?.phase ?? ""] ?? 3 }
        if phase(a) != phase(b) { return phase(a) < phase(b) }
        if a.isReady != b.isReady { return a.isReady }
        let (x, y) = (a.metadata.creationTimestamp ?? .distantFuture, b.metadata.creationTimestamp ?? .distantFuture)
        return x != y ? x < y : a.metadata.name < b.metadata.name
    }

    static func kind(_ status: Int) -> KubeError.Kind {
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
    static func detail(_ response: HTTPResponse) -> String {
        struct Status: Decodable { var message: String? }
        if let message = (try? JSONDecoder().decode(Status.self, from: response.body))?.message, !message.isEmpty {
            return "\(response.status): \(message)"
        }
        return "\(response.status): " + String(decoding: response.body.prefix(500), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
