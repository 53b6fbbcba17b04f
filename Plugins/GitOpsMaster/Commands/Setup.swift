import ArgumentParser
import Foundation
import KhCore
import KhKube
import KhPluginAPI

extension Gitops {
    /// `kh gitops setup`: scaffolding of the runbook's setup mode.
    struct Setup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "setup", abstract: "Scaffold GitOps objects (S2-S4).", subcommands: [StageCommand.self])
    }
}

extension Gitops.Setup {
    /// `kh gitops setup stage NAME --upstream U --app A…`.
    struct StageCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stage",
            abstract: "Write a Stage (retry from the S4 table), its ApplicationSet, AnalysisTemplate and verification RBAC as YAML.",
            discussion: "Without --out the YAML goes to stdout. Apply the files in name order: rbac, analysistemplate, applicationset, stage.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "The new stage's name.") var name: String
        @Option(name: .long, help: "Upstream stage (repeatable; none: the warehouse directly).") var upstream: [String] = []
        @Option(name: .long, help: "An Argo CD app the stage promotes (repeatable; test with one first).") var app: [String] = []
        @Option(name: .customLong("app-type"), help: "simple, medium, heavy or very-heavy (S4; default: guessed from the app names).") var appType:
            AppType?
        @Option(name: .long, help: "Write the files into this directory (atomically) instead of stdout.") var out: String?

        func validate() throws {
            if app.isEmpty { throw ValidationError("give at least one --app (the runbook: test with a single app first)") }
            if name.range(of: #"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"#, options: .regularExpression) == nil {
                throw ValidationError("NAME: expected a DNS label (lower-case letters, digits, '-'), got \(name)")
            }
        }

        func run() async throws {
            let runtime = try Runtime(global)
            let context = runtime.context
            let cluster = try await runtime.cluster()
            // S1: architecture detection — the upstream stages must exist.
            let stages =
                (try? await cluster.items(["get", Stage.resource, "-n", cluster.environment.kargoNamespace, "-o", "json"], as: Stage.self)) ?? []
            for up in upstream where !stages.contains(where: { $0.metadata.name == up }) {
                context.console.warning("upstream stage \(up) does not exist in \(cluster.environment.kargoNamespace) yet")
            }
            let type = appType ?? AppType.guess(apps: app, stage: name, heavyStages: runtime.config.heavyStages)
            let request = Scaffold.Request(
                stage: name, upstream: upstream, apps: app, appType: type, appNamespace: cluster.environment.appNamespace ?? name)
            let documents = Scaffold.documents(request, env: cluster.environment, serviceAccount: runtime.config.verificationServiceAccount)
            context.console.progress("retry: timeout \(type.timeout), errorThreshold \(type.errorThreshold) (\(type.rawValue): \(type.rationale))")
            if let out {
                try context.fileSystem.createDirectory(out)
                for (file, yaml) in documents {
                    try context.fileSystem.writeAtomically(Data(yaml.utf8), to: out + "/" + file)
                    context.console.result(out + "/" + file)
                }
            } else {
                context.console.write(documents.map(\.yaml).joined(separator: "---\n"), to: .stdout)
            }
        }
    }
}
