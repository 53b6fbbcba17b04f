import ArgumentParser
import Foundation
import KhCore
import KhPluginAPI

extension Gitops {
    /// `kh gitops discover`: the runbook's environment discovery cascade.
    struct Discover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "discover",
            abstract: "Show the GitOps environment (.gitops-config.yaml, else discovered from the cluster); --write saves it.")

        @OptionGroup var global: GlobalOptions
        @Flag(name: .long, help: "Write what was found to .gitops-config.yaml (atomically).") var write = false
        @Flag(name: .long, help: "With --write: replace an existing file.") var force = false

        struct Output: Encodable {
            var file: RunbookConfig?
            var filePath: String
            var discovery: DiscoveryReport
            var environment: GitOpsEnvironment?
            var written: Bool
        }

        func validate() throws {
            if force && !write { throw ValidationError("--force only makes sense with --write") }
        }

        func run() async throws {
            let runtime = try Runtime(global)
            let context = runtime.context
            let path = EnvironmentLoader.path(runtime.config, workingDirectory: context.workingDirectory)
            let code = try await context.withEvidence { run in
                let file = try EnvironmentLoader.readFile(path, fileSystem: context.fileSystem)
                let kubectl = Connection.kubectl(
                    config: runtime.config, sshCommand: file?.sshCommand, runner: context.runner, redactor: context.redactor)
                context.console.progress("discovering the environment (\(kubectl.runner.location))…")
                let discovery = await EnvironmentLoader.discover(kubectl: kubectl, sshCommand: file?.sshCommand)
                let environment = try? EnvironmentLoader.resolve(file: file, path: path, discovery: discovery)
                var written = false
                if write, let environment {
                    if context.fileSystem.exists(path) && !force {
                        throw KhError.usage("\(path) exists: add --force to replace it")
                    }
                    try context.fileSystem.writeAtomically(Data(environment.runbookConfig.render().utf8), to: path)
                    written = true
                }
                let status: CheckStatus = environment == nil ? .fail : .pass
                _ = try run.record(
                    EvidenceRecord(
                        kind: "check", name: "environment", status: status, message: environment?.source ?? "incomplete",
                        data: try JSONValue(
                            encoding: Output(file: file, filePath: path, discovery: discovery, environment: environment, written: written))))
                if context.console.format == .json {
                    try context.console.json(Output(file: file, filePath: path, discovery: discovery, environment: environment, written: written))
                } else {
                    let c = context.console
                    c.result("Config file: \(path) (\(file == nil ? "absent" : "present"))")
                    c.result("Direct kubectl: \(discovery.directKubectl ? "works" : "failed (may need SSH tunnel or proxy)")")
                    c.result("Kargo projects: \(discovery.projects.isEmpty ? "none" : discovery.projects.joined(separator: ", "))")
                    c.result("Stages: \(discovery.stages.isEmpty ? "none" : discovery.stages.joined(separator: ", "))")
                    c.result("Argo CD apps namespace: \(discovery.argocdNamespace ?? "not found")")
                    c.result("Domain: \(discovery.domain ?? "not found")")
                    c.result("Warehouses: \(discovery.warehouses.isEmpty ? "none" : discovery.warehouses.joined(separator: ", "))")
                    for problem in discovery.problems { c.result("Problem: \(problem)") }
                    if let environment {
                        c.result("")
                        c.result("# \(environment.source)")
                        c.write(environment.runbookConfig.render(), to: .stdout)
                        if written { c.result("written to \(path)") }
                    } else {
                        c.result("")
                        c.result(EnvironmentLoader.template)
                    }
                }
                return environment == nil ? (.usage, "environment incomplete") : (.success, environment!.source)
            }
            try Runtime.exit(code)
        }
    }
}
