import Foundation
import KhCore
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
    /// The API through the proxy's socket (the same client the direct path uses).
    let api: KubeAPI
    let process: Task<Void, Never>
    /// How the proxy was started, for evidence.
    let command: String

    private init(directory: String, api: KubeAPI, process: Task<Void, Never>, command: String) {
        self.directory = directory
        self.api = api
        self.process = process
        self.command = command
    }

    /// Why the proxy cannot be used, or nil when it can: kubectl must run on this machine
    /// (not over SSH or through an `ssh_command` prefix) and `api_proxy` be on.
    static func unusable(_ cluster: Cluster) -> String? {
        if !cluster.config.apiProxy { return "api_proxy: false" }
        return APIDirect.remote(cluster)
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
        let proxy = APIProxy(
            directory: directory, api: KubeAPI(unixSocket: socket, timeout: requestTimeout), process: process, command: command.displayString)
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
}
