import ArgumentParser
import KhCore
import KhPluginAPI

extension Stabilize {
    /// `kh stabilize upgrade`: latest tag → working tree for k3s and/or rke2.
    struct Upgrade: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "upgrade",
            abstract: "Upgrade path test: baseline on the latest v* tag, then upgrade to the working tree (plan recorded, server destroys flagged).")

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("k3s, rke2 or all.", valueName: "distro"))
        var distro = "all"

        func validate() throws {
            guard ["k3s", "rke2", "all"].contains(distro) else { throw ValidationError("--distro: expected k3s, rke2 or all, got \"\(distro)\"") }
        }

        func run() async throws {
            var workflow = try Setup.workflow(global)
            let distros = distro == "all" ? ["k3s", "rke2"] : [distro]
            var baselines: [String] = []
            for d in distros {
                guard let baseline = workflow.config.upgrade.baselines[d] else {
                    throw KhError.usage("stabilize.upgrade.baselines: no baseline scenario for \(d)")
                }
                baselines.append(baseline)
            }
            try await workflow.preflight([.module, .scenarios, .terraform], scenarios: baselines)
            let flow = workflow
            let code = try await flow.context.withEvidence { run in
                try await flow.lock.holding(runID: run.runID, command: run.manifest.command.joined(separator: " "), at: run.manifest.startedAt) {
                    let results = try await flow.upgrade(run: run, distros: distros)
                    var summary = StabilizeSummary(
                        runID: run.runID, command: run.manifest.command.joined(separator: " "), startedAt: run.manifest.startedAt,
                        evidence: run.directory)
                    summary.upgrades = results
                    let code: KhExitCode = results.contains { $0.status == .fail } ? .checkFailed : .success
                    if flow.console.format != .json {
                        for r in results { flow.console.result("\(r.status.label) \(r.distro) \(r.tag) → working tree: \(r.message)") }
                    }
                    try flow.publish(summary, run: run, code: code)
                    return (code, results.map { "\($0.distro): \($0.status.rawValue)" }.joined(separator: ", "))
                }
            }
            try Setup.exit(code)
        }
    }
}
