import Foundation
import KhCore
import Yams

/// The `gitops:` section of kh's config file: how kh reaches the cluster and the Kargo
/// API, the deadlines it keeps, and the per-stage verification matrix. The cluster's
/// own coordinates (namespaces, domain, project) live in `.gitops-config.yaml`, in
/// the runbook's format (``RunbookConfig``).
public struct GitOpsConfig: Decodable, Sendable, Equatable {
    /// The runbook's environment file, relative to the working directory.
    public var configFile: String
    /// The kubectl executable.
    public var kubectl: String
    /// `--kubeconfig` for every kubectl call (default: kubectl's own lookup).
    public var kubeconfig: String?
    /// `--context` for every kubectl call.
    public var context: String?
    /// Run kubectl on a host over SSH (libssh2) instead of locally.
    public var ssh: SSHTarget?
    /// The deadline of each D1 gathering group (and of each kubectl call in it).
    public var gatherTimeout: KhDuration
    /// Gather D1 through one `kubectl proxy` on a private unix socket when kubectl runs on
    /// this machine (false: one kubectl process per group).
    public var apiProxy: Bool
    /// Gather D1 with kh's own REST client straight to the API server, from the kubeconfig
    /// kubectl would use, when kubectl runs on this machine and kh can use that kubeconfig
    /// (false: never; then `api_proxy` decides).
    public var apiDirect: Bool
    /// An ActivePromotion older than this is "likely stuck" (D4).
    public var stuckPromotionAfter: KhDuration
    /// Kargo's wait after an Argo CD sync before it trusts health (Gotcha 3).
    public var healthDelay: KhDuration
    /// Stages that deploy heavy charts (Gotcha 7): they need `timeout: 10m` and `errorThreshold: 3`.
    public var heavyStages: [String]
    /// The stage that holds Argo CD and Kargo themselves (Gotcha 8).
    public var foundationStage: String
    /// The ServiceAccount (and ClusterRole) verification Jobs run as.
    public var verificationServiceAccount: String
    /// The Kargo API used by `kh gitops promote`.
    public var kargoAPI: KargoAPIConfig
    /// `kh gitops promote --wait` deadlines.
    public var promote: PromoteConfig
    /// Stage name → the four verification levels (V1).
    public var verification: [String: StageVerification]

    enum CodingKeys: String, CodingKey {
        case configFile = "config_file", kubectl, kubeconfig, context, ssh
        case gatherTimeout = "gather_timeout", apiProxy = "api_proxy", apiDirect = "api_direct"
        case stuckPromotionAfter = "stuck_promotion_after", healthDelay = "health_delay"
        case heavyStages = "heavy_stages", foundationStage = "foundation_stage"
        case verificationServiceAccount = "verification_service_account"
        case kargoAPI = "kargo_api", promote, verification
    }

    public init() {
        configFile = ".gitops-config.yaml"
        kubectl = "kubectl"
        gatherTimeout = KhDuration(.seconds(20))
        apiProxy = true
        apiDirect = true
        stuckPromotionAfter = KhDuration(.seconds(15 * 60))
        healthDelay = KhDuration(.seconds(10))
        heavyStages = ["monitoring"]
        foundationStage = "foundation"
        verificationServiceAccount = "kargo-verification"
        kargoAPI = KargoAPIConfig()
        promote = PromoteConfig()
        verification = [:]
    }

    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        configFile = try c.decodeIfPresent(String.self, forKey: .configFile) ?? configFile
        kubectl = try c.decodeIfPresent(String.self, forKey: .kubectl) ?? kubectl
        kubeconfig = try c.decodeIfPresent(String.self, forKey: .kubeconfig)
        context = try c.decodeIfPresent(String.self, forKey: .context)
        ssh = try c.decodeIfPresent(SSHTarget.self, forKey: .ssh)
        gatherTimeout = try c.decodeIfPresent(KhDuration.self, forKey: .gatherTimeout) ?? gatherTimeout
        apiProxy = try c.decodeIfPresent(Bool.self, forKey: .apiProxy) ?? apiProxy
        apiDirect = try c.decodeIfPresent(Bool.self, forKey: .apiDirect) ?? apiDirect
        stuckPromotionAfter = try c.decodeIfPresent(KhDuration.self, forKey: .stuckPromotionAfter) ?? stuckPromotionAfter
        healthDelay = try c.decodeIfPresent(KhDuration.self, forKey: .healthDelay) ?? healthDelay
        heavyStages = try c.decodeIfPresent([String].self, forKey: .heavyStages) ?? heavyStages
        foundationStage = try c.decodeIfPresent(String.self, forKey: .foundationStage) ?? foundationStage
        verificationServiceAccount = try c.decodeIfPresent(String.self, forKey: .verificationServiceAccount) ?? verificationServiceAccount
        kargoAPI = try c.decodeIfPresent(KargoAPIConfig.self, forKey: .kargoAPI) ?? kargoAPI
        promote = try c.decodeIfPresent(PromoteConfig.self, forKey: .promote) ?? promote
        verification = try c.decodeIfPresent([String: StageVerification].self, forKey: .verification) ?? [:]
    }
}

/// A host to run kubectl on over SSH (KhSSH).
public struct SSHTarget: Decodable, Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    public var key: String
    public var knownHosts: String?

    enum CodingKeys: String, CodingKey { case host, port, user, key, knownHosts = "known_hosts" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        host = try c.decode(String.self, forKey: .host)
        port = try c.decodeIfPresent(Int.self, forKey: .port) ?? 22
        user = try c.decode(String.self, forKey: .user)
        key = try c.decode(String.self, forKey: .key)
        knownHosts = try c.decodeIfPresent(String.self, forKey: .knownHosts)
    }
}

/// How `kh gitops promote` reaches Kargo.
public struct KargoAPIConfig: Decodable, Sendable, Equatable {
    /// Which API: `auto` asks the server's version (REST on ≥ 1.9, else Connect), or `rest`, `connect`, `cli`.
    public enum APIProtocol: String, Decodable, Sendable, Equatable { case auto, rest, connect, cli }
    /// The API server's base URL (`https://kargo.example.com`); default `https://kargo.<domain>`.
    public var url: String?
    /// The environment variable holding the bearer token (a secret, redacted everywhere).
    public var tokenEnv: String
    /// A CA bundle for the API server's certificate.
    public var caFile: String?
    public var `protocol`: APIProtocol
    /// The `kargo` CLI executable, for `protocol: cli`.
    public var cli: String
    /// The deadline of each API call.
    public var timeout: KhDuration

    enum CodingKeys: String, CodingKey { case url, tokenEnv = "token_env", caFile = "ca_file", `protocol`, cli, timeout }

    public init() {
        tokenEnv = "KARGO_API_TOKEN"
        `protocol` = .auto
        cli = "kargo"
        timeout = KhDuration(.seconds(30))
    }

    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        url = try c.decodeIfPresent(String.self, forKey: .url)
        tokenEnv = try c.decodeIfPresent(String.self, forKey: .tokenEnv) ?? tokenEnv
        caFile = try c.decodeIfPresent(String.self, forKey: .caFile)
        `protocol` = try c.decodeIfPresent(APIProtocol.self, forKey: .protocol) ?? .auto
        cli = try c.decodeIfPresent(String.self, forKey: .cli) ?? cli
        timeout = try c.decodeIfPresent(KhDuration.self, forKey: .timeout) ?? timeout
    }
}

/// Deadlines of `kh gitops promote --wait`.
public struct PromoteConfig: Decodable, Sendable, Equatable {
    /// The whole wait: promotion, Argo CD sync and health, stage Verified.
    public var waitTimeout: KhDuration
    /// Between polls.
    public var pollInterval: KhDuration

    enum CodingKeys: String, CodingKey { case waitTimeout = "wait_timeout", pollInterval = "poll_interval" }

    public init() {
        waitTimeout = KhDuration(.seconds(20 * 60))
        pollInterval = KhDuration(.seconds(5))
    }

    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        waitTimeout = try c.decodeIfPresent(KhDuration.self, forKey: .waitTimeout) ?? waitTimeout
        pollInterval = try c.decodeIfPresent(KhDuration.self, forKey: .pollInterval) ?? pollInterval
    }
}

/// One stage's verification matrix: the runbook's four levels.
public struct StageVerification: Decodable, Sendable, Equatable {
    public var infrastructure: Level1
    public var serviceHealth: Level2
    public var ingressAuth: Level3
    public var functional: Level4

    enum CodingKeys: String, CodingKey { case infrastructure, serviceHealth = "service_health", ingressAuth = "ingress_auth", functional }

    public init(infrastructure: Level1 = .init(), serviceHealth: Level2 = .init(), ingressAuth: Level3 = .init(), functional: Level4 = .init()) {
        self.infrastructure = infrastructure
        self.serviceHealth = serviceHealth
        self.ingressAuth = ingressAuth
        self.functional = functional
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        infrastructure = try c.decodeIfPresent(Level1.self, forKey: .infrastructure) ?? .init()
        serviceHealth = try c.decodeIfPresent(Level2.self, forKey: .serviceHealth) ?? .init()
        ingressAuth = try c.decodeIfPresent(Level3.self, forKey: .ingressAuth) ?? .init()
        functional = try c.decodeIfPresent(Level4.self, forKey: .functional) ?? .init()
    }

    /// Level 1: pods running against expected counts, CRDs installed, secrets present.
    public struct Level1: Decodable, Sendable, Equatable {
        public var pods: [PodExpectation]
        public var crds: [String]
        public var secrets: [NamedObject]
        public init(pods: [PodExpectation] = [], crds: [String] = [], secrets: [NamedObject] = []) {
            self.pods = pods
            self.crds = crds
            self.secrets = secrets
        }
        enum CodingKeys: String, CodingKey { case pods, crds, secrets }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            pods = try c.decodeIfPresent([PodExpectation].self, forKey: .pods) ?? []
            crds = try c.decodeIfPresent([String].self, forKey: .crds) ?? []
            secrets = try c.decodeIfPresent([NamedObject].self, forKey: .secrets) ?? []
        }
    }

    /// Pods matching `selector` in `namespace`: at least `expected` Running.
    public struct PodExpectation: Decodable, Sendable, Equatable {
        public var namespace: String
        public var selector: String?
        public var expected: Int
        public init(namespace: String, selector: String? = nil, expected: Int) {
            self.namespace = namespace
            self.selector = selector
            self.expected = expected
        }
    }

    /// A namespaced object by name.
    public struct NamedObject: Decodable, Sendable, Equatable {
        public var namespace: String
        public var name: String
        public init(namespace: String, name: String) {
            self.namespace = namespace
            self.name = name
        }
    }

    /// Level 2: health endpoints and Prometheus targets, over HTTP.
    public struct Level2: Decodable, Sendable, Equatable {
        public var health: [HTTPCheck]
        public var prometheus: PrometheusCheck?
        public init(health: [HTTPCheck] = [], prometheus: PrometheusCheck? = nil) {
            self.health = health
            self.prometheus = prometheus
        }
        enum CodingKeys: String, CodingKey { case health, prometheus }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            health = try c.decodeIfPresent([HTTPCheck].self, forKey: .health) ?? []
            prometheus = try c.decodeIfPresent(PrometheusCheck.self, forKey: .prometheus)
        }
    }

    /// A URL that must answer with `status` (default 200).
    public struct HTTPCheck: Decodable, Sendable, Equatable {
        public var url: String
        public var status: Int
        public init(url: String, status: Int = 200) {
            self.url = url
            self.status = status
        }
        enum CodingKeys: String, CodingKey { case url, status }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            url = try c.decode(String.self, forKey: .url)
            status = try c.decodeIfPresent(Int.self, forKey: .status) ?? 200
        }
    }

    /// Prometheus `/api/v1/targets`: at least `min_active` active targets that are up.
    public struct PrometheusCheck: Decodable, Sendable, Equatable {
        public var url: String
        public var minActive: Int
        public var job: String?
        enum CodingKeys: String, CodingKey { case url, minActive = "min_active", job }
        public init(url: String, minActive: Int = 1, job: String? = nil) {
            self.url = url
            self.minActive = minActive
            self.job = job
        }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            url = try c.decode(String.self, forKey: .url)
            minActive = try c.decodeIfPresent(Int.self, forKey: .minActive) ?? 1
            job = try c.decodeIfPresent(String.self, forKey: .job)
        }
    }

    /// Level 3: an ingress serves the host; unauthenticated requests are redirected to login.
    public struct Level3: Decodable, Sendable, Equatable {
        public var ingresses: [IngressCheck]
        public init(ingresses: [IngressCheck] = []) { self.ingresses = ingresses }
        enum CodingKeys: String, CodingKey { case ingresses }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            ingresses = try c.decodeIfPresent([IngressCheck].self, forKey: .ingresses) ?? []
        }
    }

    /// An ingress host (`${DOMAIN}` is replaced) and, with `auth_redirect`, where an anonymous request must be sent.
    public struct IngressCheck: Decodable, Sendable, Equatable {
        public var host: String
        /// The URL to request (default `https://<host>/`).
        public var url: String?
        /// A substring the redirect's `Location` must contain (e.g. the SSO host); nil: no auth check.
        public var authRedirect: String?
        enum CodingKeys: String, CodingKey { case host, url, authRedirect = "auth_redirect" }
        public init(host: String, url: String? = nil, authRedirect: String? = nil) {
            self.host = host
            self.url = url
            self.authRedirect = authRedirect
        }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            host = try c.decode(String.self, forKey: .host)
            url = try c.decodeIfPresent(String.self, forKey: .url)
            authRedirect = try c.decodeIfPresent(String.self, forKey: .authRedirect)
        }
    }

    /// Level 4: functional commands (run where kubectl runs); each must exit 0.
    public struct Level4: Decodable, Sendable, Equatable {
        public var commands: [FunctionalCommand]
        public init(commands: [FunctionalCommand] = []) { self.commands = commands }
        enum CodingKeys: String, CodingKey { case commands }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            commands = try c.decodeIfPresent([FunctionalCommand].self, forKey: .commands) ?? []
        }
    }

    /// A named command line (argv) and its deadline.
    public struct FunctionalCommand: Decodable, Sendable, Equatable {
        public var name: String
        public var run: [String]
        public var timeout: KhDuration
        enum CodingKeys: String, CodingKey { case name, run, timeout }
        public init(name: String, run: [String], timeout: KhDuration = KhDuration(.seconds(60))) {
            self.name = name
            self.run = run
            self.timeout = timeout
        }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            run = try c.decode([String].self, forKey: .run)
            timeout = try c.decodeIfPresent(KhDuration.self, forKey: .timeout) ?? KhDuration(.seconds(60))
        }
    }
}

/// `.gitops-config.yaml`, exactly the runbook's format: ten string fields, all
/// optional in the file (the defaults the runbook names fill the controller
/// namespaces and the monitoring namespace).
public struct RunbookConfig: Sendable, Equatable, Codable {
    public var sshCommand: String?
    public var kargoNamespace: String?
    public var kargoControllerNamespace: String?
    public var argocdNamespace: String?
    public var argocdControllerNamespace: String?
    public var monitoringNamespace: String?
    public var appNamespace: String?
    public var domain: String?
    public var kargoProject: String?
    public var warehouseName: String?

    /// The file's keys, in the runbook's order.
    public static let keys = [
        "ssh_command", "kargo_namespace", "kargo_controller_namespace", "argocd_namespace", "argocd_controller_namespace",
        "monitoring_namespace", "app_namespace", "domain", "kargo_project", "warehouse_name",
    ]

    enum CodingKeys: String, CodingKey {
        case sshCommand = "ssh_command", kargoNamespace = "kargo_namespace", kargoControllerNamespace = "kargo_controller_namespace"
        case argocdNamespace = "argocd_namespace", argocdControllerNamespace = "argocd_controller_namespace"
        case monitoringNamespace = "monitoring_namespace", appNamespace = "app_namespace", domain, kargoProject = "kargo_project"
        case warehouseName = "warehouse_name"
    }

    public init() {}

    /// The value of a key by its file name.
    public subscript(key: String) -> String? {
        get {
            switch key {
            case "ssh_command": sshCommand
            case "kargo_namespace": kargoNamespace
            case "kargo_controller_namespace": kargoControllerNamespace
            case "argocd_namespace": argocdNamespace
            case "argocd_controller_namespace": argocdControllerNamespace
            case "monitoring_namespace": monitoringNamespace
            case "app_namespace": appNamespace
            case "domain": domain
            case "kargo_project": kargoProject
            case "warehouse_name": warehouseName
            default: nil
            }
        }
        set {
            switch key {
            case "ssh_command": sshCommand = newValue
            case "kargo_namespace": kargoNamespace = newValue
            case "kargo_controller_namespace": kargoControllerNamespace = newValue
            case "argocd_namespace": argocdNamespace = newValue
            case "argocd_controller_namespace": argocdControllerNamespace = newValue
            case "monitoring_namespace": monitoringNamespace = newValue
            case "app_namespace": appNamespace = newValue
            case "domain": domain = newValue
            case "kargo_project": kargoProject = newValue
            case "warehouse_name": warehouseName = newValue
            default: break
            }
        }
    }

    /// Parses the file's text: a mapping of the ten keys to strings. Anything else
    /// (an unknown key, a list, a number where a string belongs) is an error naming
    /// the file, line, column and key.
    public static func parse(_ text: String, path: String) throws -> RunbookConfig {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw ConfigError(file: path, line: nil, column: nil, field: "", problem: "not valid YAML: \(error)")
        }
        var config = RunbookConfig()
        guard let node else { return config }
        guard case .mapping(let mapping) = node else {
            throw ConfigError(
                file: path, line: node.mark?.line, column: node.mark?.column, field: "",
                problem: "expected a mapping of \(keys.joined(separator: ", "))")
        }
        for (key, value) in mapping {
            let name = key.string ?? "\(key)"
            guard keys.contains(name) else {
                throw ConfigError(
                    file: path, line: key.mark?.line, column: key.mark?.column, field: name,
                    problem: "unknown key" + suggestion(for: name, among: keys) + "; the runbook's keys are \(keys.joined(separator: ", "))")
            }
            if value.null != nil { continue }
            guard case .scalar(let scalar) = value else {
                throw ConfigError(
                    file: path, line: value.mark?.line, column: value.mark?.column, field: name,
                    problem: "expected a string, found a \(value.kindName)")
            }
            let trimmed = scalar.string.trimmingCharacters(in: .whitespaces)
            config[name] = trimmed.isEmpty ? nil : trimmed
        }
        return config
    }

    /// The file's text in the runbook's layout, with its comments.
    public func render() -> String {
        let comments: [String: String] = [
            "ssh_command": "How to reach the cluster (omit if local kubectl works)",
            "kargo_namespace": "Kargo project namespace",
            "kargo_controller_namespace": "Where Kargo controller runs (may differ from default)",
            "argocd_namespace": "ArgoCD apps namespace",
            "argocd_controller_namespace": "Where ArgoCD controller runs (may differ from default)",
            "monitoring_namespace": "Monitoring namespace",
            "app_namespace": "Application namespace",
            "domain": "Cluster domain",
            "kargo_project": "Kargo project name",
            "warehouse_name": "Kargo warehouse name",
        ]
        var lines: [String] = []
        for key in Self.keys {
            guard let value = self[key] else { continue }
            let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            lines.append("\(key): \"\(escaped)\"   # \(comments[key] ?? "")")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension Node {
    var kindName: String {
        switch self {
        case .scalar: "scalar"
        case .mapping: "mapping"
        case .sequence: "list"
        case .alias: "alias"
        }
    }
}
