import Foundation
import KhCore
import KhProcess

/// Which namespaces a list covers.
public enum NamespaceScope: Sendable, Equatable {
    /// The client's namespace (or the kubeconfig context's).
    case current
    /// One namespace.
    case named(String)
    /// `--all-namespaces`.
    case all
}

/// How a patch is interpreted.
public enum PatchType: String, Sendable {
    case merge, json, strategic
}

/// Kubernetes access through `kubectl … -o json`, over any ``CommandRunner``: local,
/// over SSH, or through an `ssh_command` prefix. Every call has a deadline; kubectl's
/// errors become ``KubeError``s; objects decode into typed models that ignore unknown
/// fields.
public struct Kubectl: Sendable {
    /// Where kubectl runs.
    public var runner: any CommandRunner
    /// The kubectl executable.
    public var executable: String
    /// `--kubeconfig`.
    public var kubeconfig: String?
    /// `--context`.
    public var context: String?
    /// The default namespace (`-n`); nil uses the kubeconfig context's.
    public var namespace: String?
    /// The deadline of each kubectl call.
    public var timeout: Duration
    /// Secrets to keep out of logs.
    public var redactor: Redactor?
    /// Where kubectl's output lines are logged, if anywhere.
    public var logPath: String?
    /// Clock for ``wait(for:name:namespace:timeout:interval:describe:until:)``.
    public var clock: KhClock

    public init(
        runner: any CommandRunner = LocalRunner(), executable: String = "kubectl", kubeconfig: String? = nil, context: String? = nil,
        namespace: String? = nil, timeout: Duration = .seconds(60), redactor: Redactor? = nil, logPath: String? = nil,
        clock: KhClock = .live
    ) {
        self.runner = runner
        self.executable = executable
        self.kubeconfig = kubeconfig
        self.context = context
        self.namespace = namespace
        self.timeout = timeout
        self.redactor = redactor
        self.logPath = logPath
        self.clock = clock
    }

    /// The connection flags every call carries.
    var connectionArguments: [String] {
        var args: [String] = []
        if let kubeconfig { args += ["--kubeconfig", kubeconfig] }
        if let context { args += ["--context", context] }
        return args
    }

    func scopeArguments(_ scope: NamespaceScope) -> [String] {
        switch scope {
        case .current: return namespace.map { ["-n", $0] } ?? []
        case .named(let name): return ["-n", name]
        case .all: return ["--all-namespaces"]
        }
    }

    func scope(_ namespace: String?) -> NamespaceScope { namespace.map(NamespaceScope.named) ?? .current }

    /// Runs kubectl with `arguments` (connection flags added) and returns stdout;
    /// a non-zero exit becomes a classified ``KubeError``.
    @discardableResult
    public func run(_ arguments: [String], captureLimit: Int = 64 << 20) async throws -> Data {
        let command = Command(executable, connectionArguments + arguments)
        let display = redactor?.redact(command.displayString) ?? command.displayString
        let result: CommandResult
        do {
            result = try await runner.run(
                command,
                options: RunOptions(timeout: timeout, killGrace: .seconds(2), logPath: logPath, captureLimit: captureLimit, redactor: redactor))
        } catch let error as ProcessError where error.kind == .notFound {
            throw KubeError(kind: .kubectlMissing, command: display, detail: error.message)
        }
        if result.timedOut {
            throw KubeError(kind: .timedOut, command: display, detail: "no answer within \(timeout.humanDescription)")
        }
        guard result.exitCode == 0 else {
            // Through a prefix or ssh, "command not found" is exit 127.
            if result.exitCode == 127 && result.stderrText.contains(executable) {
                throw KubeError(kind: .kubectlMissing, command: display, detail: result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            let stderr = redactor?.redact(result.stderrText) ?? result.stderrText
            throw KubeError.classify(stderr: stderr, command: display)
        }
        if result.stdoutTruncated {
            throw KubeError(kind: .decoding, command: display, detail: "output larger than \(captureLimit) bytes")
        }
        return result.stdout
    }

    func decode<T: Decodable>(_ type: T.Type, _ data: Data, command: [String]) throws -> T {
        do {
            return try KhJSON.decoder().decode(type, from: data)
        } catch {
            throw KubeError(kind: .decoding, command: Shell.join([executable] + command), detail: "\(error)")
        }
    }

    /// One object by name.
    public func get<T: KubeResource>(_ type: T.Type, name: String, namespace: String? = nil) async throws -> T {
        let args = ["get", T.resource, name, "-o", "json"] + (T.namespaced ? scopeArguments(scope(namespace)) : [])
        return try decode(T.self, try await run(args), command: args)
    }

    /// One object by name, or nil when it does not exist.
    public func getIfPresent<T: KubeResource>(_ type: T.Type, name: String, namespace: String? = nil) async throws -> T? {
        do {
            return try await get(type, name: name, namespace: namespace)
        } catch let error as KubeError where error.kind == .notFound {
            return nil
        }
    }

    /// Objects of a kind, filtered by label and field selectors.
    public func list<T: KubeResource>(
        _ type: T.Type, in scope: NamespaceScope = .current, labelSelector: String? = nil, fieldSelector: String? = nil
    ) async throws -> [T] {
        var args = ["get", T.resource, "-o", "json"] + (T.namespaced ? scopeArguments(scope) : [])
        if let labelSelector { args += ["-l", labelSelector] }
        if let fieldSelector { args += ["--field-selector", fieldSelector] }
        return try decode(KubeList<T>.self, try await run(args), command: args).items
    }

    /// Sets (or, with a nil value, removes) annotations; overwrites existing values.
    public func annotate(_ resource: String, name: String, namespace: String? = nil, _ annotations: [String: String?]) async throws {
        let pairs = annotations.sorted { $0.key < $1.key }.map { key, value in value.map { "\(key)=\($0)" } ?? "\(key)-" }
        try await run(["annotate", resource, name, "--overwrite"] + pairs + scopeArguments(scope(namespace)))
    }

    /// Patches an object (optionally its status subresource).
    public func patch(
        _ resource: String, name: String, namespace: String? = nil, type: PatchType = .merge, _ patch: String, subresource: String? = nil
    ) async throws {
        var args = ["patch", resource, name, "--type", type.rawValue, "-p", patch] + scopeArguments(scope(namespace))
        if let subresource { args += ["--subresource", subresource] }
        try await run(args)
    }

    /// Applies YAML (one or more documents). The YAML goes through a temporary
    /// file: kh's children never read stdin. A create that loses a race with another
    /// client (`AlreadyExists`) is applied once more, which updates the object.
    @discardableResult
    public func apply(yaml: String, namespace: String? = nil, serverSide: Bool = false) async throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kh-apply-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("manifest.yaml").path
        try AtomicFile.write(Data(yaml.utf8), to: file, mode: 0o600)
        var args = ["apply", "-f", file] + scopeArguments(scope(namespace))
        if serverSide { args.append("--server-side") }
        do {
            return String(decoding: try await run(args), as: UTF8.self)
        } catch let error as KubeError where error.kind == .alreadyExists {
            // Client-side apply reads, then creates: another client created the object in between.
            // Applying once more finds it and updates it instead.
            return String(decoding: try await run(args), as: UTF8.self)
        }
    }

    /// Deletes an object; with `ignoreNotFound`, a missing one is not an error.
    public func delete(_ resource: String, name: String, namespace: String? = nil, ignoreNotFound: Bool = false, wait: Bool = false) async throws {
        var args = ["delete", resource, name, "--wait=\(wait)"] + scopeArguments(scope(namespace))
        if ignoreNotFound { args.append("--ignore-not-found") }
        try await run(args)
    }

    /// A pod's logs.
    public func logs(pod: String, namespace: String? = nil, container: String? = nil, tail: Int? = nil, previous: Bool = false) async throws
        -> String
    {
        var args = ["logs", pod] + scopeArguments(scope(namespace))
        if let container { args += ["-c", container] }
        if let tail { args.append("--tail=\(tail)") }
        if previous { args.append("--previous") }
        return String(decoding: try await run(args), as: UTF8.self)
    }

    /// Polls an object until `until` holds, with a deadline. Each poll is one kubectl
    /// call with its own deadline; a missing object counts as "not yet". On timeout the
    /// error says what was last seen (`describe`).
    public func wait<T: KubeResource>(
        for type: T.Type, name: String, namespace: String? = nil, timeout: Duration, interval: Duration = .seconds(2),
        describe: @Sendable (T?) -> String = { $0 == nil ? "absent" : "present" }, until: @Sendable (T) -> Bool
    ) async throws -> T {
        let start = clock.now()
        var last: T?
        while true {
            last = try await getIfPresent(type, name: name, namespace: namespace)
            if let object = last, until(object) { return object }
            let elapsed = clock.now().timeIntervalSince(start)
            if elapsed >= timeout.seconds {
                throw KubeError(
                    kind: .timedOut, command: "wait for \(T.resource)/\(name)",
                    detail: "condition not met after \(timeout.humanDescription); last seen: \(describe(last))")
            }
            try await clock.sleep(min(interval, .milliseconds(Int64(max(0, timeout.seconds - elapsed) * 1000))))
        }
    }
}

/// A typed Kubernetes object: its resource name for kubectl and whether it lives in
/// a namespace.
public protocol KubeResource: Codable, Sendable {
    /// What kubectl calls it: `pods`, `stages.kargo.akuity.io`.
    static var resource: String { get }
    /// Whether objects live in namespaces.
    static var namespaced: Bool { get }
    var metadata: ObjectMeta { get }
}

/// A list as kubectl prints it.
public struct KubeList<T: Decodable>: Decodable {
    public var items: [T]

    enum CodingKeys: String, CodingKey { case items }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        items = try c.decodeIfPresent([T].self, forKey: .items) ?? []
    }
}
