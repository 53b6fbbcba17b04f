import ArgumentParser
import KhCore
import KhPluginAPI

extension Stabilize {
    /// `kh stabilize run`: the matrix, simple to complex, with triage.
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run the scenario matrix (init + apply per scenario) with stall/failure triage over SSH.",
            discussion: """
                Writes summary-<RUN_ID>.md, summary-<RUN_ID>.json and junit-<RUN_ID>.xml to the results folder and each \
                scenario's output to logs/<scenario>.log in the run's evidence. Exit 0 only when every scenario passed.
                """)

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Only these scenarios (comma-separated, configured order kept).", valueName: "a,b"))
        var scenarios: String?

        @Flag(help: "Rerun what failed in the latest summary.")
        var failed = false

        @Option(help: ArgumentHelp("Scenarios run at once (default: stabilize.concurrency).", valueName: "n"))
        var concurrency: Int?

        @Flag(name: .customLong("keep-going"), help: "Run later tiers even when a tier failed.")
        var keepGoing = false

        func validate() throws {
            if failed && scenarios != nil { throw ValidationError("--failed and --scenarios cannot be used together") }
            if let concurrency, concurrency < 1 { throw ValidationError("--concurrency: expected an integer of at least 1, got \(concurrency)") }
        }

        func run() async throws {
            var workflow = try Setup.workflow(global)
            var names = try workflow.selectScenarios(scenarios)
            let console = workflow.context.console
            if failed {
                let folder = ResultsFolder(
                    directory: workflow.paths.results, fileSystem: workflow.context.fileSystem, redactor: workflow.context.redactor)
                guard let latest = try folder.latest() else {
                    throw KhError.usage("--failed: no summary-*.json in \(workflow.paths.results) yet", hint: "run `kh stabilize run` first")
                }
                names = workflow.config.scenarioNames.filter(latest.summary.failedScenarios.contains)
                guard !names.isEmpty else {
                    console.result("nothing failed in \(latest.path): nothing to rerun")
                    return
                }
                console.progress("rerunning what failed in \(latest.path): \(names.joined(separator: ", "))")
            }
            try await workflow.preflight([.scenarios, .terraform, .sshKey, .api], scenarios: names)
            let flow = workflow
            let concurrency = self.concurrency ?? flow.config.concurrency
            let keepGoing = self.keepGoing
            let label = failed ? "rerun of failures" : "run"
            let code = try await flow.context.withEvidence { run in
                try await flow.lock.holding(runID: run.runID, command: run.manifest.command.joined(separator: " "), at: run.manifest.startedAt) {
                    let pass = await flow.runMatrix(run: run, names: names, concurrency: concurrency, keepGoing: keepGoing, label: label, attempt: 1)
                    var summary = StabilizeSummary(
                        runID: run.runID, command: run.manifest.command.joined(separator: " "), startedAt: run.manifest.startedAt,
                        evidence: run.directory)
                    summary.passes = [pass]
                    let code: KhExitCode = pass.allPassed ? .success : .checkFailed
                    try flow.publish(summary, run: run, code: code)
                    return (code, "")
                }
            }
            try Setup.exit(code)
        }
    }
}
