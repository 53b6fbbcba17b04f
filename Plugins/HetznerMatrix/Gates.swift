import ArgumentParser
import KhCore
import KhPluginAPI

extension Stabilize {
    /// `kh stabilize gates`: sync the module, fmt, validate, harness init.
    struct Gates: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gates",
            abstract: "Sync the module branch (fast-forward only), terraform fmt -check and validate, harness init -upgrade.")

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Rewrite unformatted files (terraform fmt -recursive) instead of failing.")
        var fix = false

        func run() async throws {
            var workflow = try Setup.workflow(global)
            try await workflow.preflight([.module, .harness, .terraform])
            let flow = workflow
            let fix = self.fix
            let code = try await flow.context.withEvidence { run in
                let steps = try await flow.gates(run: run, fix: fix)
                let failed = steps.filter { $0.status == .fail }
                if flow.console.format == .json {
                    try flow.console.json(steps)
                } else {
                    for step in steps { flow.console.result("\(step.status.label) \(step.name): \(step.message)") }
                }
                return (
                    failed.isEmpty ? .success : .checkFailed, failed.isEmpty ? "gates pass" : "failed: \(failed.map(\.name).joined(separator: ", "))"
                )
            }
            try Setup.exit(code)
        }
    }
}
