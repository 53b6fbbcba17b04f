import ArgumentParser
import Foundation
import KhCore
import KhKube
import KhPluginAPI

extension Gitops {
    /// `kh gitops lint [DIR|--cluster]`: the S2 checklist and the anti-patterns.
    struct Lint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lint",
            abstract: "Check manifests (DIR) or the cluster against the S2 checklist and the setup anti-patterns; exit 1 on a failure.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "A directory of manifests (default: .).") var directory: String?
        @Flag(name: .long, help: "Lint the cluster's objects instead of files.") var cluster = false

        func validate() throws {
            if cluster && directory != nil { throw ValidationError("give DIR or --cluster, not both") }
        }

        func run() async throws {
            let runtime = try Runtime(global)
            let context = runtime.context
            var objects: [(source: String, object: JSONValue)]
            if cluster {
                let c = try await runtime.cluster()
                let env = c.environment
                async let stages = c.items(["get", Stage.resource, "-n", env.kargoNamespace, "-o", "json"], as: JSONValue.self)
                async let apps = c.items(["get", ArgoApplication.resource, "-n", env.argocdNamespace, "-o", "json"], as: JSONValue.self)
                async let sets = c.items(["get", ArgoApplicationSet.resource, "-A", "-o", "json"], as: JSONValue.self)
                async let promotions = c.items(["get", Promotion.resource, "-n", env.kargoNamespace, "-o", "json"], as: JSONValue.self)
                async let templates = c.items(["get", AnalysisTemplate.resource, "-n", env.kargoNamespace, "-o", "json"], as: JSONValue.self)
                async let accounts = c.items(["get", "serviceaccounts", "-n", env.kargoNamespace, "-o", "json"], as: JSONValue.self)
                let all = try await [stages, apps, sets, promotions, templates, accounts].flatMap { $0 }
                objects = all.map { ("cluster", $0) }
            } else {
                let dir = directory ?? context.workingDirectory
                objects = try Linter.load(directory: dir.hasPrefix("/") ? dir : context.workingDirectory + "/" + dir)
            }
            let findings = Linter.lint(objects, foundation: runtime.config.foundationStage, serviceAccount: runtime.config.verificationServiceAccount)
            if context.console.format == .json {
                try context.console.json(findings)
            } else {
                for f in findings { context.console.result("\(f.severity.label) \(f.rule): \(f.object): \(f.message)") }
                context.console.result(
                    "\(objects.count) objects, \(findings.filter { $0.severity == .fail }.count) failures, \(findings.filter { $0.severity == .warn }.count) warnings"
                )
            }
            try Runtime.exit(findings.contains { $0.severity == .fail } ? .checkFailed : .success)
        }
    }
}
