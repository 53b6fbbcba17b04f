import ArgumentParser
import Foundation
import KhCore
import KhKube
import KhPluginAPI
import KhProcess

/// The config section with the command-line flags applied and placeholders resolved.
public struct InstallSettings: Sendable {
    public var config: InstallConfig
    public var clusterName: String
    public var region: String?
    public var profile: String?
    /// `--force` (phase 3): the readiness gate is overridden, recorded, never hidden.
    public var force = false

    public var karpenter: InstallConfig.KarpenterSettings { config.karpenter }
    public var thresholds: InstallConfig.Thresholds { config.thresholds }

    /// `{cluster}` replaced by the cluster name.
    public func name(_ template: String) -> String { template.replacingOccurrences(of: "{cluster}", with: clusterName) }

    public var nodeRoleName: String { name(config.prerequisites.nodeRole) }
    public var controllerRoleName: String { name(config.prerequisites.controllerRole) }
    public var instanceProfileName: String { name(config.prerequisites.instanceProfile) }
    public var queueName: String { name(config.prerequisites.interruptionQueue) }
    public var eventRulePrefix: String { name(config.prerequisites.eventRulePrefix) }

    /// Resolves flags over config over environment. A missing cluster name is an error
    /// naming both the flag and the config field.
    public static func resolve(config: InstallConfig, options: InstallOptions, environment: [String: String], configPath: String?) throws
        -> InstallSettings
    {
        var config = config
        if let version = options.karpenterVersion { config.karpenter.version = version }
        if let namespace = options.namespace { config.karpenter.namespace = namespace }
        if let kubeconfig = options.kubeconfig { config.kubeconfig = kubeconfig }
        if let context = options.context { config.context = context }
        guard let cluster = (options.cluster ?? config.clusterName).flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw KhError.usage(
                "no cluster name: set install.cluster_name in \(configPath ?? "the config file (--config, $KH_CONFIG or ./kh.yaml)") or pass --cluster",
                hint: "the EKS cluster's name, as in `aws eks describe-cluster --name NAME`")
        }
        guard cluster.range(of: #"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$"#, options: .regularExpression) != nil else {
            throw KhError.usage("cluster name \"\(cluster)\": expected 1-100 letters, digits, '-' or '_', starting with a letter or digit")
        }
        let region = [options.region, config.region, environment["AWS_REGION"], environment["AWS_DEFAULT_REGION"]]
            .compactMap { $0 }.first { !$0.isEmpty }
        let profile = [options.profile, config.profile].compactMap { $0 }.first { !$0.isEmpty }
        return InstallSettings(config: config, clusterName: cluster, region: region, profile: profile)
    }

    /// The region, or a usage error saying where to set it (phases that call AWS).
    public func requireRegion() throws -> String {
        guard let region else {
            throw KhError.usage(
                "no AWS region: set install.region in the config, pass --region, or set AWS_REGION",
                hint: "nothing was changed: the region is checked before any AWS call")
        }
        guard region.range(of: #"^[a-z]{2}(-[a-z]+)+-\d+$"#, options: .regularExpression) != nil else {
            throw KhError.usage("AWS region \"\(region)\": expected a region name such as us-east-1 or eu-west-3")
        }
        return region
    }
}

/// The flags every `kh install` command takes (they win over the `install:` section).
public struct InstallOptions: ParsableArguments, Sendable {
    @Option(help: ArgumentHelp("AWS profile (default: install.profile, $AWS_PROFILE).", valueName: "name"))
    public var profile: String?

    @Option(help: ArgumentHelp("AWS region (default: install.region, $AWS_REGION, $AWS_DEFAULT_REGION).", valueName: "region"))
    public var region: String?

    @Option(help: ArgumentHelp("EKS cluster name (default: install.cluster_name).", valueName: "name"))
    public var cluster: String?

    @Option(name: .customLong("karpenter-version"), help: ArgumentHelp("Karpenter chart version (default: 1.8.3).", valueName: "version"))
    public var karpenterVersion: String?

    @Option(help: ArgumentHelp("Karpenter namespace (default: kube-system).", valueName: "namespace"))
    public var namespace: String?

    @Option(help: ArgumentHelp("kubeconfig for kubectl and helm (default: install.kubeconfig, their own).", valueName: "path"))
    public var kubeconfig: String?

    @Option(help: ArgumentHelp("kubeconfig context (default: install.context, the current one).", valueName: "name"))
    public var context: String?

    public init() {}

    public func validate() throws {
        for (flag, value) in [
            ("--profile", profile), ("--region", region), ("--cluster", cluster), ("--karpenter-version", karpenterVersion),
            ("--namespace", namespace), ("--kubeconfig", kubeconfig), ("--context", context),
        ] {
            if let value, value.trimmingCharacters(in: .whitespaces).isEmpty {
                throw ValidationError("\(flag): expected a value, got an empty string")
            }
        }
        if let version = karpenterVersion, version.range(of: #"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.\-]+)?$"#, options: .regularExpression) == nil {
            throw ValidationError("--karpenter-version \(version): expected a chart version such as 1.8.3")
        }
    }
}

/// What the phases use to reach the world. ``InstallDependencies/live(context:settings:)``
/// builds the real one; tests build it with their own runner, clock and AWS endpoint.
public struct InstallDependencies: Sendable {
    public var kubectl: Kubectl
    public var helm: any HelmClient
    /// AWS access; built on first use so phases 3 and 4 need no credentials.
    public var aws: @Sendable () throws -> any AWSAPI
    /// Runs eksctl and aws (recorded in the ledger).
    public var runner: any CommandRunner
    public var clock: KhClock
    public var ledger: CommandLedger
    public var console: Console
    public var redactor: Redactor
    /// Whether an executable is on PATH (eksctl, aws).
    public var hasTool: @Sendable (String) -> Bool

    public init(
        kubectl: Kubectl, helm: any HelmClient, aws: @escaping @Sendable () throws -> any AWSAPI, runner: any CommandRunner, clock: KhClock,
        ledger: CommandLedger, console: Console, redactor: Redactor, hasTool: @escaping @Sendable (String) -> Bool
    ) {
        self.kubectl = kubectl
        self.helm = helm
        self.aws = aws
        self.runner = runner
        self.clock = clock
        self.ledger = ledger
        self.console = console
        self.redactor = redactor
        self.hasTool = hasTool
    }

    /// The real dependencies: kubectl, helm and eksctl/aws through the context's runner
    /// (recorded), AWS through SigV4-signed HTTP with credentials from the environment
    /// or the profile's shared credentials file.
    public static func live(
        context: CommandContext, settings: InstallSettings, helmExecutable: String? = nil, logPath: String? = nil
    ) -> InstallDependencies {
        let ledger = CommandLedger()
        let runner = RecordingRunner(base: context.runner, ledger: ledger, redactor: context.redactor)
        let kubectl = Kubectl(
            runner: runner, kubeconfig: settings.config.kubeconfig, context: settings.config.context, timeout: .seconds(60),
            redactor: context.redactor, logPath: logPath, clock: context.clock)
        let helm = LiveHelm(
            runner: runner, executable: helmExecutable ?? context.environment["KH_HELM"].flatMap { $0.isEmpty ? nil : $0 } ?? "helm",
            kubeconfig: settings.config.kubeconfig, context: settings.config.context, redactor: context.redactor, logPath: logPath)
        let environment = context.environment
        let redactor = context.redactor
        let clock = context.clock
        let aws: @Sendable () throws -> any AWSAPI = {
            let region = try settings.requireRegion()
            let credentials = try AWSCredentialResolver(environment: environment, redactor: redactor).resolve(profile: settings.profile)
            return LiveAWS(region: region, credentials: credentials, environment: environment, ledger: ledger, redactor: redactor, clock: clock)
        }
        let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return InstallDependencies(
            kubectl: kubectl, helm: helm, aws: aws, runner: runner, clock: context.clock, ledger: ledger, console: context.console,
            redactor: context.redactor,
            hasTool: { tool in
                path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
            })
    }
}
