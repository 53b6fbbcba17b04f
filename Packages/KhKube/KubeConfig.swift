import Foundation
import KhCore
import KhHTTP
import Yams

typealias YAMLNode = Yams.Node

/// Where one kubeconfig context points and as whom, resolved the way kubectl resolves it,
/// for ``KubeAPI``.
public struct KubeConnection: Sendable {
    /// The cluster's `server` (`https://host:port`, possibly with a path prefix).
    public var server: URL
    /// The context, its cluster and its user, by name.
    public var context: String
    public var cluster: String
    public var user: String
    /// The context's namespace, when it sets one.
    public var namespace: String?
    /// The kubeconfig files read, in precedence order.
    public var files: [String]
    /// How the server is verified and how kh proves itself over TLS.
    public var tls: TLS
    /// Token or basic credentials; nil for a client certificate only (or anonymous).
    public var authentication: HTTPAuthentication?

    /// The TLS settings of a cluster and user entry. Data wins over a file, as in client-go.
    public struct TLS: Sendable {
        public var caFile: String?
        public var caData: Data?
        public var insecure = false
        /// `tls-server-name`: the name the server certificate is checked against (and SNI).
        public var serverName: String?
        public var clientCertificateFile: String?
        public var clientCertificateData: Data?
        public var clientKeyFile: String?
        /// PEM bytes of the client key; only ever handed to libcurl.
        public var clientKeyData: Data?

        public init() {}
    }

    /// One line for evidence: server, context, user and how it authenticates (no secret).
    public var summary: String {
        var how: [String] = []
        switch authentication {
        case .bearer?: how.append("token")
        case .basic(let username, _)?: how.append("basic auth as \(username)")
        case .awsSigV4?: how.append("AWS SigV4")
        case nil: break
        }
        if tls.clientCertificateData != nil || tls.clientCertificateFile != nil { how.append("client certificate") }
        if how.isEmpty { how.append("anonymous") }
        if tls.insecure { how.append("TLS not verified") }
        return "\(server.absoluteString) (context \(context), user \(user), \(how.joined(separator: " + ")), from \(files.joined(separator: ":")))"
    }
}

/// A kubeconfig kh cannot resolve (``unsupported`` false: kubectl would fail too, e.g. a
/// missing context) or cannot use itself (``unsupported`` true: an `exec` or `auth-provider`
/// user, a `proxy-url`, impersonation; kubectl can, so callers fall back to it).
public struct KubeConfigError: KhReportableError, Equatable {
    /// The file(s) the setting was looked up in.
    public var files: [String]
    /// What is wrong or unsupported, naming the context, cluster or user and the field.
    public var problem: String
    /// True when kubectl can handle it but kh's own client cannot.
    public var unsupported: Bool

    public init(files: [String], problem: String, unsupported: Bool = false) {
        self.files = files
        self.problem = problem
        self.unsupported = unsupported
    }

    public var exitCode: KhExitCode { .usage }
    public var message: String {
        let where_ = files.isEmpty ? "no kubeconfig file" : files.joined(separator: ":")
        return "kubeconfig \(where_): \(problem)"
    }
    public var hint: String? {
        unsupported ? "kh reads the API through kubectl instead" : "check --kubeconfig / $KUBECONFIG and --context"
    }
}

/// Resolves a kubeconfig like kubectl: `--kubeconfig` (one file, which must exist), else
/// every existing file of `$KUBECONFIG` (a colon list, merged: the first file that sets
/// `current-context` or defines a context, cluster or user of a name wins), else
/// `~/.kube/config`; then `--context` or `current-context`. Relative paths in a file are
/// relative to that file. Secrets (token, password, client key) are registered with the redactor.
public enum KubeConfigLoader {
    /// The connection for `context` (nil: the current one).
    public static func resolve(
        kubeconfig: String?, context: String?, environment: [String: String], redactor: Redactor? = nil
    ) throws -> KubeConnection {
        let files = try locate(kubeconfig: kubeconfig, environment: environment)
        var currentContext: String?
        var contexts: [String: (YAMLNode, String)] = [:]
        var clusters: [String: (YAMLNode, String)] = [:]
        var users: [String: (YAMLNode, String)] = [:]
        for file in files {
            let root = try parse(file)
            if currentContext == nil, let name = root?["current-context"]?.string, !name.isEmpty { currentContext = name }
            func collect(_ key: String, _ into: inout [String: (YAMLNode, String)]) throws {
                guard let list = root?[key], list.null == nil else { return }
                guard let items = list.sequence else { throw KubeConfigError(files: [file], problem: "`\(key)` is not a list") }
                for item in items {
                    guard let name = item["name"]?.string else { throw KubeConfigError(files: [file], problem: "an entry of `\(key)` has no name") }
                    if into[name] == nil { into[name] = (item[String(key.dropLast())] ?? YAMLNode([(YAMLNode, YAMLNode)]()), file) }
                }
            }
            try collect("contexts", &contexts)
            try collect("clusters", &clusters)
            try collect("users", &users)
        }
        guard let contextName = context ?? currentContext else {
            throw KubeConfigError(files: files, problem: "no context: neither --context nor current-context is set")
        }
        guard let (contextNode, contextFile) = contexts[contextName] else {
            throw KubeConfigError(files: files, problem: "context \"\(contextName)\" does not exist")
        }
        guard let clusterName = contextNode["cluster"]?.string, !clusterName.isEmpty else {
            throw KubeConfigError(files: [contextFile], problem: "context \"\(contextName)\" names no cluster")
        }
        guard let (clusterNode, clusterFile) = clusters[clusterName] else {
            throw KubeConfigError(files: files, problem: "cluster \"\(clusterName)\" of context \"\(contextName)\" does not exist")
        }
        let userName = contextNode["user"]?.string ?? ""
        var userNode = YAMLNode([(YAMLNode, YAMLNode)]())
        var userFile = contextFile
        if !userName.isEmpty {
            guard let (node, file) = users[userName] else {
                throw KubeConfigError(files: files, problem: "user \"\(userName)\" of context \"\(contextName)\" does not exist")
            }
            (userNode, userFile) = (node, file)
        }

        // The cluster.
        let clusterError = { (problem: String, unsupported: Bool) in
            KubeConfigError(files: [clusterFile], problem: "cluster \"\(clusterName)\": \(problem)", unsupported: unsupported)
        }
        guard let serverText = clusterNode["server"]?.string, !serverText.isEmpty else { throw clusterError("no server", false) }
        guard let server = URL(string: serverText), let scheme = server.scheme?.lowercased(), ["https", "http"].contains(scheme), server.host != nil
        else {
            throw clusterError("server \(serverText) is not an http(s) URL", false)
        }
        if clusterNode["proxy-url"]?.string?.isEmpty == false { throw clusterError("proxy-url is set", true) }
        var tls = KubeConnection.TLS()
        tls.insecure = clusterNode["insecure-skip-tls-verify"]?.bool ?? false
        tls.serverName = clusterNode["tls-server-name"]?.string.flatMap { $0.isEmpty ? nil : $0 }
        if let data = clusterNode["certificate-authority-data"]?.string, !data.isEmpty {
            tls.caData = try base64(data, "certificate-authority-data", clusterError)
        } else if let file = clusterNode["certificate-authority"]?.string, !file.isEmpty {
            tls.caFile = try readable(relative(file, to: clusterFile), "certificate-authority", clusterError)
        }
        if tls.insecure && (tls.caData != nil || tls.caFile != nil) {
            throw clusterError("insecure-skip-tls-verify together with a certificate authority (kubectl refuses it too)", false)
        }

        // The user.
        let userError = { (problem: String, unsupported: Bool) in
            KubeConfigError(files: [userFile], problem: "user \"\(userName)\": \(problem)", unsupported: unsupported)
        }
        for key in ["exec", "auth-provider"] where userNode[key].map({ $0.null == nil }) ?? false {
            throw userError("`\(key)` credentials (a plugin kubectl runs)", true)
        }
        for key in ["as", "as-uid", "as-groups", "as-user-extra"] where userNode[key].map({ $0.null == nil }) ?? false {
            throw userError("impersonation (`\(key)`)", true)
        }
        var token: String?
        if let file = userNode["tokenFile"]?.string, !file.isEmpty {
            let path = try readable(relative(file, to: userFile), "tokenFile", userError)
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw userError("tokenFile \(path) is not readable text", false)
            }
            token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        } else if let value = userNode["token"]?.string, !value.isEmpty {
            token = value
        }
        let username = userNode["username"]?.string ?? ""
        let password = userNode["password"]?.string ?? ""
        if token != nil && (!username.isEmpty || !password.isEmpty) {
            throw userError("both a token and username/password (kubectl refuses it too)", false)
        }
        var authentication: HTTPAuthentication?
        if let token, !token.isEmpty {
            authentication = .bearer(token, name: "KUBE_TOKEN", redactor: redactor)
        } else if !username.isEmpty || !password.isEmpty {
            authentication = .basic(username: username, password: SecretValue(name: "KUBE_PASSWORD", value: password, redactor: redactor))
        }
        if let data = userNode["client-certificate-data"]?.string, !data.isEmpty {
            tls.clientCertificateData = try base64(data, "client-certificate-data", userError)
        } else if let file = userNode["client-certificate"]?.string, !file.isEmpty {
            tls.clientCertificateFile = try readable(relative(file, to: userFile), "client-certificate", userError)
        }
        if let data = userNode["client-key-data"]?.string, !data.isEmpty {
            redactor?.register(name: "KUBE_CLIENT_KEY", value: data)
            tls.clientKeyData = try base64(data, "client-key-data", userError)
        } else if let file = userNode["client-key"]?.string, !file.isEmpty {
            tls.clientKeyFile = try readable(relative(file, to: userFile), "client-key", userError)
        }
        let hasCertificate = tls.clientCertificateData != nil || tls.clientCertificateFile != nil
        let hasKey = tls.clientKeyData != nil || tls.clientKeyFile != nil
        if hasCertificate != hasKey {
            throw userError(hasCertificate ? "a client certificate without its key" : "a client key without its certificate", false)
        }
        if scheme == "http" && (hasCertificate || authentication != nil) {
            // kubectl sends them anyway; kh does not send credentials in clear text.
            throw clusterError("credentials over plain http://", true)
        }

        let namespace = contextNode["namespace"]?.string.flatMap { $0.isEmpty ? nil : $0 }
        return KubeConnection(
            server: server, context: contextName, cluster: clusterName, user: userName.isEmpty ? "(none)" : userName, namespace: namespace,
            files: files, tls: tls, authentication: authentication)
    }

    /// The files in precedence order (see the type's documentation).
    static func locate(kubeconfig: String?, environment: [String: String]) throws -> [String] {
        let manager = FileManager.default
        if let kubeconfig, !kubeconfig.isEmpty {
            guard manager.fileExists(atPath: kubeconfig) else { throw KubeConfigError(files: [kubeconfig], problem: "--kubeconfig file not found") }
            return [kubeconfig]
        }
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            var seen: Set<String> = []
            let files = list.split(separator: ":").map(String.init).filter {
                !$0.isEmpty && seen.insert($0).inserted && manager.fileExists(atPath: $0)
            }
            guard !files.isEmpty else { throw KubeConfigError(files: [list], problem: "no file of $KUBECONFIG exists", unsupported: true) }
            return files
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        let file = home + "/.kube/config"
        guard manager.fileExists(atPath: file) else {
            throw KubeConfigError(files: [file], problem: "not found (kubectl would try in-cluster config)", unsupported: true)
        }
        return [file]
    }

    static func parse(_ file: String) throws -> YAMLNode? {
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
            throw KubeConfigError(files: [file], problem: "not readable as UTF-8 text")
        }
        do {
            let node = try Yams.compose(yaml: text)
            if let node, node.mapping == nil, node.null == nil {
                throw KubeConfigError(files: [file], problem: "not a mapping (a kubeconfig has clusters, users, contexts)")
            }
            return node?.mapping == nil ? nil : node
        } catch let error as KubeConfigError {
            throw error
        } catch {
            throw KubeConfigError(files: [file], problem: "not valid YAML: \(error)")
        }
    }

    static func relative(_ path: String, to file: String) -> String {
        path.hasPrefix("/") ? path : URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(path).path
    }

    static func readable(_ path: String, _ field: String, _ error: (String, Bool) -> KubeConfigError) throws -> String {
        guard FileManager.default.isReadableFile(atPath: path) else { throw error("\(field) \(path) is not a readable file", false) }
        return path
    }

    static func base64(_ text: String, _ field: String, _ error: (String, Bool) -> KubeConfigError) throws -> Data {
        guard let data = Data(base64Encoded: text.filter { !$0.isWhitespace }) else { throw error("\(field) is not base64", false) }
        return data
    }
}
