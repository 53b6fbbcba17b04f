import Foundation
import KhCore
import KhKube
import KhProcess
import KhSSH

/// The runbook's variables (`${KARGO_NS}`, `${ARGOCD_NS}`, …) once discovered: every
/// command uses these and never a hard-coded namespace or domain.
public struct GitOpsEnvironment: Sendable, Equatable, Codable {
    /// `${SSH_CMD}`: the prefix kubectl runs through (nil: direct).
    public var sshCommand: String?
    /// `${KARGO_NS}`.
    public var kargoNamespace: String
    /// `${KARGO_CONTROLLER_NS}` (default `kargo`).
    public var kargoControllerNamespace: String
    /// `${ARGOCD_NS}`.
    public var argocdNamespace: String
    /// `${ARGOCD_CONTROLLER_NS}` (default `argocd`).
    public var argocdControllerNamespace: String
    /// `${MONITORING_NS}` (default `monitoring`).
    public var monitoringNamespace: String
    /// `${APP_NS}`.
    public var appNamespace: String?
    /// `${DOMAIN}`.
    public var domain: String?
    /// `${KARGO_PROJECT}`.
    public var kargoProject: String
    /// `${WAREHOUSE}`.
    public var warehouse: String?
    /// Where the values came from: the file's path, or `discovered`.
    public var source: String

    public init(
        sshCommand: String? = nil, kargoNamespace: String, kargoControllerNamespace: String = "kargo", argocdNamespace: String,
        argocdControllerNamespace: String = "argocd", monitoringNamespace: String = "monitoring", appNamespace: String? = nil,
        domain: String? = nil, kargoProject: String? = nil, warehouse: String? = nil, source: String = "test"
    ) {
        self.sshCommand = sshCommand
        self.kargoNamespace = kargoNamespace
        self.kargoControllerNamespace = kargoControllerNamespace
        self.argocdNamespace = argocdNamespace
        self.argocdControllerNamespace = argocdControllerNamespace
        self.monitoringNamespace = monitoringNamespace
        self.appNamespace = appNamespace
        self.domain = domain
        self.kargoProject = kargoProject ?? kargoNamespace
        self.warehouse = warehouse
        self.source = source
    }

    /// The values in the runbook's file format.
    public var runbookConfig: RunbookConfig {
        var file = RunbookConfig()
        file.sshCommand = sshCommand
        file.kargoNamespace = kargoNamespace
        file.kargoControllerNamespace = kargoControllerNamespace
        file.argocdNamespace = argocdNamespace
        file.argocdControllerNamespace = argocdControllerNamespace
        file.monitoringNamespace = monitoringNamespace
        file.appNamespace = appNamespace
        file.domain = domain
        file.kargoProject = kargoProject
        file.warehouseName = warehouse
        return file
    }
}

/// What the runbook's discovery cascade (Step 2) found on the cluster.
public struct DiscoveryReport: Sendable, Equatable, Codable {
    /// Kargo projects (`projects.kargo.akuity.io`).
    public var projects: [String] = []
    /// Stages as `namespace/name`.
    public var stages: [String] = []
    /// The namespace of the first Argo CD Application.
    public var argocdNamespace: String?
    /// The first ingress host, without its first label.
    public var domain: String?
    /// Warehouses in the chosen Kargo namespace.
    public var warehouses: [String] = []
    /// `kubectl get nodes` worked through the chosen connection.
    public var directKubectl: Bool = false
    /// What failed, one line each.
    public var problems: [String] = []

    /// The Kargo namespace the stages live in (the one with most stages), else the first project's.
    public var kargoNamespace: String? {
        var counts: [String: Int] = [:]
        for stage in stages { counts[String(stage.split(separator: "/").first ?? ""), default: 0] += 1 }
        if let best = counts.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }).first { return best.key }
        return projects.first
    }
}

/// Runs kubectl over the chosen connection and shows each call the way the runbook
/// writes it (`${SSH_CMD} kubectl …`).
public struct Cluster: Sendable {
    public var kubectl: Kubectl
    public var environment: GitOpsEnvironment
    public var config: GitOpsConfig

    public init(kubectl: Kubectl, environment: GitOpsEnvironment, config: GitOpsConfig) {
        self.kubectl = kubectl
        self.environment = environment
        self.config = config
    }

    /// The command a person would type, with the prefix.
    public func display(_ arguments: [String]) -> String {
        let line = "kubectl " + Shell.join(arguments)
        guard let prefix = environment.sshCommand, !prefix.isEmpty else { return line }
        return prefix + " " + line
    }

    /// Runs kubectl and decodes its JSON output.
    public func json<T: Decodable>(_ arguments: [String], as type: T.Type = T.self) async throws -> T {
        let data = try await kubectl.run(arguments)
        do {
            return try KhJSON.decoder().decode(type, from: data)
        } catch {
            throw KubeError(kind: .decoding, command: display(arguments), detail: "\(error)")
        }
    }

    /// Runs kubectl and decodes the items of a list.
    public func items<T: Decodable>(_ arguments: [String], as type: T.Type = T.self) async throws -> [T] {
        try await json(arguments, as: KubeList<T>.self).items
    }

    /// Runs kubectl and returns its output as text.
    public func text(_ arguments: [String]) async throws -> String {
        String(decoding: try await kubectl.run(arguments), as: UTF8.self)
    }
}

/// Builds the kubectl connection: over SSH (`gitops.ssh`), through the runbook's
/// `ssh_command` prefix, or locally.
public enum Connection {
    /// A Kubectl for this config and prefix.
    public static func kubectl(
        config: GitOpsConfig, sshCommand: String?, runner: any CommandRunner, redactor: Redactor?, timeout: Duration? = nil
    ) -> Kubectl {
        let base: any CommandRunner
        if let ssh = config.ssh {
            base = SSHRunner(
                configuration: SSHConfiguration(
                    host: ssh.host, port: ssh.port, user: ssh.user, privateKeyPath: ssh.key,
                    knownHostsPath: ssh.knownHosts ?? SSHConfiguration.defaultKnownHostsPath))
        } else if let prefix = sshCommand, !prefix.isEmpty {
            base = PrefixRunner(prefix: prefix, base: runner)
        } else {
            base = runner
        }
        return Kubectl(
            runner: base, executable: config.kubectl, kubeconfig: config.kubeconfig, context: config.context,
            timeout: timeout ?? config.gatherTimeout.duration, redactor: redactor)
    }
}

/// The runbook's environment cascade: `.gitops-config.yaml`, else discovery from the
/// cluster, else the fill-in template (exit 2).
public enum EnvironmentLoader {
    /// The runbook's Step 3 template.
    public static let template = """
        I need your cluster details to proceed:
        - How do I reach kubectl? (direct / SSH command / proxy)
        - Kargo project namespace?
        - ArgoCD apps namespace?
        - Monitoring namespace? (if applicable)
        - Application namespace?
        - Cluster domain?
        """

    /// The file's path: absolute, or relative to `workingDirectory`.
    public static func path(_ config: GitOpsConfig, workingDirectory: String) -> String {
        config.configFile.hasPrefix("/") ? config.configFile : workingDirectory + "/" + config.configFile
    }

    /// Reads the file when it exists.
    public static func readFile(_ path: String, fileSystem: any FileSystem) throws -> RunbookConfig? {
        guard fileSystem.exists(path) else { return nil }
        let data = try fileSystem.read(path)
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, line: nil, column: nil, field: "", problem: "not UTF-8 text")
        }
        return try RunbookConfig.parse(text, path: path)
    }

    /// Step 2: the runbook's discovery commands, run in parallel, each with a deadline.
    public static func discover(kubectl: Kubectl, sshCommand: String?) async -> DiscoveryReport {
        let display = { (args: [String]) in (sshCommand.map { $0 + " " } ?? "") + "kubectl " + Shell.join(args) }
        func names<T: KubeResource>(_ type: T.Type, _ args: [String]) async -> Result<[T], any Error> {
            do {
                let data = try await kubectl.run(args)
                return .success(try KhJSON.decoder().decode(KubeList<T>.self, from: data).items)
            } catch {
                return .failure(error)
            }
        }
        let projectArgs = ["get", KargoProject.resource, "-o", "json"]
        let stageArgs = ["get", Stage.resource, "-A", "-o", "json"]
        let appArgs = ["get", ArgoApplication.resource, "-A", "-o", "json"]
        let ingressArgs = ["get", Ingress.resource, "-A", "-o", "json"]
        async let projects = names(KargoProject.self, projectArgs)
        async let stages = names(Stage.self, stageArgs)
        async let apps = names(ArgoApplication.self, appArgs)
        async let ingresses = names(Ingress.self, ingressArgs)
        async let nodes: Bool = (try? await kubectl.run(["get", "nodes", "-o", "name"])) != nil
        var report = DiscoveryReport()
        func note(_ args: [String], _ error: any Error) {
            report.problems.append("`\(display(args))`: \((error as? any KhReportableError)?.message ?? "\(error)")")
        }
        switch await projects {
        case .success(let list): report.projects = list.map(\.metadata.name).sorted()
        case .failure(let error): note(projectArgs, error)
        }
        switch await stages {
        case .success(let list): report.stages = list.map { "\($0.metadata.namespace ?? "")/\($0.metadata.name)" }.sorted()
        case .failure(let error): note(stageArgs, error)
        }
        switch await apps {
        case .success(let list):
            report.argocdNamespace =
                list.sorted { ($0.metadata.namespace ?? "", $0.metadata.name) < ($1.metadata.namespace ?? "", $1.metadata.name) }
                .first?.metadata.namespace
        case .failure(let error): note(appArgs, error)
        }
        switch await ingresses {
        case .success(let list):
            if let host = list.flatMap(\.hosts).first, let dot = host.firstIndex(of: ".") {
                report.domain = String(host[host.index(after: dot)...])
            }
        case .failure(let error): note(ingressArgs, error)
        }
        report.directKubectl = await nodes
        if let namespace = report.kargoNamespace {
            let args = ["get", Warehouse.resource, "-n", namespace, "-o", "json"]
            switch await names(Warehouse.self, args) {
            case .success(let list): report.warehouses = list.map(\.metadata.name).sorted()
            case .failure(let error): note(args, error)
            }
        }
        return report
    }

    /// Merges the file (when present) with discovery for whatever the file leaves out.
    /// Throws ``EnvironmentError`` (exit 2, with the template) when neither gives the
    /// Kargo and Argo CD namespaces.
    public static func resolve(file: RunbookConfig?, path: String, discovery: DiscoveryReport?) throws -> GitOpsEnvironment {
        let kargoNamespace = file?.kargoNamespace ?? file?.kargoProject ?? discovery?.kargoNamespace
        let argocdNamespace = file?.argocdNamespace ?? discovery?.argocdNamespace
        var missing: [String] = []
        if kargoNamespace == nil { missing.append("kargo_namespace (no Kargo project or stage found)") }
        if argocdNamespace == nil { missing.append("argocd_namespace (no Argo CD Application found)") }
        guard let kargoNamespace, let argocdNamespace else {
            throw EnvironmentError(path: path, missing: missing, problems: discovery?.problems ?? [])
        }
        let warehouse = file?.warehouseName ?? (discovery?.warehouses.count == 1 ? discovery?.warehouses.first : nil)
        return GitOpsEnvironment(
            sshCommand: file?.sshCommand, kargoNamespace: kargoNamespace, kargoControllerNamespace: file?.kargoControllerNamespace ?? "kargo",
            argocdNamespace: argocdNamespace, argocdControllerNamespace: file?.argocdControllerNamespace ?? "argocd",
            monitoringNamespace: file?.monitoringNamespace ?? "monitoring", appNamespace: file?.appNamespace,
            domain: file?.domain ?? discovery?.domain, kargoProject: file?.kargoProject ?? kargoNamespace, warehouse: warehouse,
            source: file != nil && discovery == nil ? path : (file != nil ? "\(path) + discovery" : "discovered"))
    }

    /// The whole cascade for a command: file, discovery of what it lacks, or the template.
    public static func load(
        config: GitOpsConfig, runner: any CommandRunner, redactor: Redactor?, fileSystem: any FileSystem, workingDirectory: String
    )
        async throws -> Cluster
    {
        let path = path(config, workingDirectory: workingDirectory)
        let file = try readFile(path, fileSystem: fileSystem)
        let kubectl = Connection.kubectl(config: config, sshCommand: file?.sshCommand, runner: runner, redactor: redactor)
        let complete = file?.kargoNamespace != nil && file?.argocdNamespace != nil
        let discovery = complete ? nil : await discover(kubectl: kubectl, sshCommand: file?.sshCommand)
        let environment = try resolve(file: file, path: path, discovery: discovery)
        return Cluster(kubectl: kubectl, environment: environment, config: config)
    }
}

/// Neither the file nor discovery gave the environment: the runbook asks the user.
public struct EnvironmentError: KhReportableError {
    public var path: String
    public var missing: [String]
    public var problems: [String]
    public var exitCode: KhExitCode { .usage }
    public var message: String {
        var text =
            "cannot determine the GitOps environment: \(path) is missing or incomplete and discovery found no "
            + missing.joined(separator: ", ")
        for problem in problems { text += "\n  " + problem }
        return text
    }
    public var hint: String? {
        "answer these and write them to \(path) (or run `kh gitops discover --write`):\n" + EnvironmentLoader.template
    }
}
