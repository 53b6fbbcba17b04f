import ArgumentParser
import Foundation
import KhCore
import KhPluginAPI

/// gitops-master: Argo CD + Kargo operations from the GitOps Master runbook.
public enum GitOpsMasterPlugin: KhPlugin {
    public static let id = "gitops-master"
    public static let summary = "Argo CD + Kargo operations: discover, status, diagnose, fix, verify, promote, setup, lint"
    public static var commands: [any ParsableCommand.Type] { [Gitops.self] }
    public static let configSection: String? = "gitops"
    public static func validateConfig(_ config: ConfigFile) throws {
        _ = try config.section("gitops", as: GitOpsConfig.self)
    }
    public static var tools: [ToolRequirement] {
        var kubectl = ToolRequirement.known.first { $0.name == "kubectl" }!
        kubectl.purpose = "kh gitops: every cluster read and fix"
        return [kubectl.requiring()]
    }
    public static var secretEnvironment: [String] { ["KARGO_API_TOKEN"] }
}

/// `kh gitops`: the runbook's modes as subcommands.
public struct Gitops: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "gitops",
        abstract: "Argo CD + Kargo operations (GitOps Master runbook).",
        discussion: """
            The environment comes from .gitops-config.yaml (the runbook's format), else from discovery \
            on the cluster, else kh prints the runbook's fill-in template and exits 2.
            Exit codes: 0 ok, 1 a check or diagnosis found a problem, 2 usage or configuration, \
            3 a DO-NOT-PROMOTE rule blocked the promotion, 4 kubectl or the Kargo API failed.
            """,
        subcommands: [Discover.self, Status.self, Diagnose.self, Fix.self, Verify.self, Promote.self, Setup.self, Lint.self])

    public init() {}
}

/// What every gitops command starts from: the context, the `gitops:` section and the cluster.
struct Runtime {
    var context: CommandContext
    var config: GitOpsConfig

    init(_ global: GlobalOptions) throws {
        context = try global.makeContext()
        config = try context.section("gitops", as: GitOpsConfig.self)
        if let variable = Optional(config.kargoAPI.tokenEnv), let value = context.environment[variable], !value.isEmpty {
            context.redactor.register(name: variable, value: value)
        }
    }

    /// The runbook's environment cascade.
    func cluster() async throws -> Cluster {
        try await EnvironmentLoader.load(
            config: config, runner: context.runner, redactor: context.redactor, fileSystem: context.fileSystem,
            workingDirectory: context.workingDirectory)
    }

    /// Throws the exit code unless it is success.
    static func exit(_ code: KhExitCode) throws {
        if code != .success { throw ExitCode(code.rawValue) }
    }
}
