import ArgumentParser
import KhCore
import KhPluginAPI

extension Stabilize {
    /// `kh stabilize clean`: destroy every scenario, clear stale locks, reap leftovers.
    struct Clean: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "clean",
            abstract: "Destroy every scenario, clear stale state locks, reap prefixed leftovers by label (dry run unless --yes).",
            discussion: """
                Refuses while another kh stabilize run is live (lock file with its PID and start time). A \
                .terraform.tfstate.lock.info is removed only when no live process holds that state. Leftover servers, \
                volumes, load balancers, firewalls, networks, placement groups and ssh keys labelled by \
                stabilize.reap_selectors or a scenario's cluster, and named with stabilize.prefix, are deleted in dependency \
                order. Without --yes it only lists what would go.
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var mutation: MutationOptions

        func run() async throws {
            var workflow = try Setup.workflow(global)
            try await workflow.preflight([.scenarios, .terraform, .api])
            if let owner = workflow.lock.liveOwner() {
                throw KhError.blocked(
                    "another kh stabilize run is live: pid \(owner.pid), run \(owner.runID) (lock \(workflow.paths.lock))",
                    hint: "wait for it, or stop it with `kh stabilize abort --yes`")
            }
            let dryRun = !mutation.yes
            let flow = workflow
            let code = try await flow.context.withEvidence { run in
                let work = {
                    let report = try await flow.clean(run: run, dryRun: dryRun)
                    if flow.console.format == .json {
                        try flow.console.json(report)
                    } else {
                        Self.print(report, console: flow.console, prefix: flow.config.prefix)
                    }
                    let code: KhExitCode = dryRun || report.isClean ? .success : .checkFailed
                    return (code, dryRun ? "dry run: \(report.reaped.count) resource(s) would be reaped" : report.isClean ? "clean" : "left over")
                }
                if dryRun { return try await work() }
                return try await flow.lock.holding(
                    runID: run.runID, command: run.manifest.command.joined(separator: " "), at: run.manifest.startedAt, work)
            }
            try Setup.exit(code)
        }

        static func print(_ report: CleanupReport, console: Console, prefix: String) {
            if report.dryRun { console.result("dry run: nothing changed (--yes deletes)") }
            for step in report.destroyed { console.result("\(step.status.label) \(step.name): \(step.message)") }
            for lock in report.locksRemoved { console.result("\(report.dryRun ? "would remove" : "removed") stale lock \(lock)") }
            for lock in report.locksKept { console.result("kept lock held by a live process: \(lock)") }
            for resource in report.reaped { console.result("\(report.dryRun ? "would delete" : "deleted") \(resource.display)") }
            for failure in report.failures { console.result("FAIL  \(failure)") }
            if !report.dryRun {
                console.result(
                    report.remaining.isEmpty
                        ? "confirmed: no \(prefix)* resource left" : "left over: \(report.remaining.map(\.display).joined(separator: ", "))")
            }
        }
    }
}
