import ArgumentParser
import KhCore
import KhPluginAPI

extension Stabilize {
    /// `kh stabilize abort`: stop a live run, destroy every scenario, clear stale locks.
    struct Abort: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "abort",
            abstract: "Stop a live kh stabilize run by its recorded process groups, destroy every scenario, clear stale locks.")

        @OptionGroup var global: GlobalOptions
        @OptionGroup var mutation: MutationOptions

        func run() async throws {
            var workflow = try Setup.workflow(global)
            try await workflow.preflight([.scenarios, .terraform])
            let record = workflow.lock.read()
            let decision = try mutation.authorize(
                "abort" + (record.map { " run \($0.runID) (pid \($0.pid))" } ?? "") + " and destroy every scenario", console: workflow.context.console
            )
            if decision == .dryRun {
                workflow.context.console.result(
                    record.map { "would stop run \($0.runID) (pid \($0.pid), live: \(workflow.lock.isLive($0)), groups \($0.groups))" }
                        ?? "no run lock")
                for name in workflow.scenarioFoldersWithState() { workflow.context.console.result("would destroy \(name)") }
                return
            }
            let flow = workflow
            let code = try await flow.context.withEvidence { run in
                let (stopped, report) = try await flow.abort(run: run)
                flow.console.result(stopped)
                Clean.print(report, console: flow.console, prefix: flow.config.prefix)
                return (report.failures.isEmpty ? .success : .checkFailed, stopped)
            }
            try Setup.exit(code)
        }
    }
}
