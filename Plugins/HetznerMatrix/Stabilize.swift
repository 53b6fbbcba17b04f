import ArgumentParser
import KhCore
import KhPluginAPI

/// `kh stabilize`: with no verb, the whole loop.
struct Stabilize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stabilize",
        abstract: "The kube-hetzner stabilization loop; with no verb, all of it.",
        discussion: """
            With no verb: gates, clean, snapshots, the matrix simple to complex with SSH triage, one targeted rerun of \
            failures, the full regression rerun, the upgrade path for k3s and rke2, and a final cleanup with proof that no \
            prefixed resource is left. Config: the `stabilize:` section (docs/stabilize.md).
            """,
        subcommands: [Gates.self, Clean.self, Snapshots.self, Run.self, Upgrade.self, Abort.self])

    @OptionGroup var global: GlobalOptions
    @OptionGroup var mutation: MutationOptions

    @Option(help: ArgumentHelp("Scenarios run at once (default: stabilize.concurrency).", valueName: "n"))
    var concurrency: Int?

    @Flag(name: .customLong("keep-going"), help: "Go on after a failed gate, tier or missing snapshot.")
    var keepGoing = false

    @Flag(name: .customLong("build-snapshots"), help: "Build missing snapshots with the configured packer commands.")
    var buildSnapshots = false

    func validate() throws {
        if let concurrency, concurrency < 1 { throw ValidationError("--concurrency: expected an integer of at least 1, got \(concurrency)") }
    }

    func run() async throws {
        var workflow = try Setup.workflow(global)
        let names = workflow.config.scenarioNames
        try await workflow.preflight([.module, .harness, .scenarios, .terraform, .sshKey, .api], scenarios: names)
        let options = StabilizeWorkflow.LoopOptions(
            concurrency: concurrency ?? workflow.config.concurrency, keepGoing: keepGoing, buildSnapshots: buildSnapshots,
            distros: workflow.config.upgrade.baselines.keys.sorted())
        let decision = try mutation.authorize(
            "run the stabilization loop (terraform apply/destroy of \(names.count) scenarios, delete \(workflow.config.prefix)* resources)",
            console: workflow.context.console)
        let context = workflow.context
        let flow = workflow
        let code = try await context.withEvidence { run in
            if decision == .dryRun {
                let report = try await flow.clean(run: run, dryRun: true)
                var summary = StabilizeSummary(
                    runID: run.runID, command: run.manifest.command.joined(separator: " "), startedAt: run.manifest.startedAt, evidence: run.directory
                )
                summary.cleanup = report
                summary.notes.append("dry run: would run gates, clean, snapshots, matrix \(names.joined(separator: ", ")), upgrade, final cleanup")
                try flow.publish(summary, run: run, code: .success)
                return (.success, "dry run")
            }
            return try await flow.lock.holding(runID: run.runID, command: run.manifest.command.joined(separator: " "), at: run.manifest.startedAt) {
                let (summary, code) = try await flow.loop(run: run, options: options)
                try flow.publish(summary, run: run, code: code)
                return (code, "loop")
            }
        }
        try Setup.exit(code)
    }
}
