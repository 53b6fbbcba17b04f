import ArgumentParser
import Foundation
import KhCore
import KhPluginAPI

/// `kh install`: the phased EKS + Karpenter install.
public struct Install: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Phased EKS + Karpenter install: platform gates, Helm release repair, strict completion, evidence.",
        discussion: """
            Phases: phase1 (foundation: cluster, kubeconfig, nodes), phase2 (prerequisites: IAM, instance profile, \
            interruption queue with its policy and EventBridge rules, Pod Identity association, discovery tags), phase3 (compute: Karpenter via Helm, controller Ready), phase4 (verify: \
            NodePool, EC2NodeClass, a NodeClaim for a test deployment). `all` runs them in order and resumes. \
            Exit codes: 0 ok, 1 a gate was not met, 2 bad input, 3 blocked_phase (an earlier phase is not done), \
            4 a tool or API failed. See docs/install.md.
            """,
        subcommands: [Phase1.self, Phase2.self, Phase3.self, Phase4.self, All.self, Status.self])

    public init() {}
}

/// Shared by the phase commands: input checks before any change, then evidence.
enum InstallCommandSupport {
    static func execute(
        phases: [InstallPhase], global: GlobalOptions, options: InstallOptions, mutation: MutationOptions, force: Bool = false, resume: Bool = false
    ) async throws {
        let context = try global.makeContext()
        let config = try context.section("install", as: InstallConfig.self)
        var settings = try InstallSettings.resolve(
            config: config, options: options, environment: context.environment, configPath: context.config.path)
        settings.force = force
        if phases.contains(.foundation) || phases.contains(.prerequisites) {
            // Region and credentials are checked before anything is asked or changed.
            _ = try settings.requireRegion()
            _ = try AWSCredentialResolver(environment: context.environment, redactor: context.redactor).resolve(profile: settings.profile)
        }
        let what = phases.count == 1 ? phases[0].command : "phases " + phases.map(\.command).joined(separator: ", ")
        let decision = try mutation.authorize("run \(what) of the EKS/Karpenter install on cluster \(settings.clusterName)", console: context.console)
        let code = try await context.withEvidence { run in
            let deps = InstallDependencies.live(context: context, settings: settings)
            let result = try await InstallOrchestrator.execute(
                phases: phases, settings: settings, deps: deps, run: run, evidenceRoot: context.evidenceRoot, fileSystem: context.fileSystem,
                dryRun: decision == .dryRun, resume: resume)
            if context.console.format == .json {
                try context.console.json(result)
            } else {
                context.console.result(result.text)
            }
            return (result.exitCode, "\(result.status.rawValue) at \(result.phase.command)")
        }
        if code != .success { throw ExitCode(code.rawValue) }
    }
}
