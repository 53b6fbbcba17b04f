import ArgumentParser
import KhCore
import KhPluginAPI

/// `kh matrix`: the matrix's results.
struct Matrix: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matrix", abstract: "The kube-hetzner matrix results.", subcommands: [Status.self])
}

extension Matrix {
    /// `kh matrix status`: the latest summary.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status", abstract: "The latest stabilize summary: scenarios, status, logs, diagnoses (exit 1 when one failed).")

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let workflow = try Setup.workflow(global)
            let console = workflow.context.console
            let folder = ResultsFolder(
                directory: workflow.paths.results, fileSystem: workflow.context.fileSystem, redactor: workflow.context.redactor)
            guard let (path, summary) = try folder.latest() else {
                throw KhError.blocked("no summary-*.json in \(workflow.paths.results) yet", hint: "run `kh stabilize run` first")
            }
            if console.format == .json {
                try console.json(summary)
            } else {
                console.result(
                    "run \(summary.runID)  \(Timestamp.iso8601(summary.startedAt))  exit \(summary.exitCode.map(String.init) ?? "?")  \(path)")
                for r in summary.finalResults {
                    console.result(
                        "  \(SummaryRenderer.icon(r.status).padding(toLength: 8, withPad: " ", startingAt: 0)) \(r.name.padding(toLength: 24, withPad: " ", startingAt: 0)) \(SummaryRenderer.seconds(r.durationSeconds).padding(toLength: 8, withPad: " ", startingAt: 0)) \(r.message)"
                    )
                    if let log = r.log { console.result("           log: \(log)") }
                    for d in r.diagnoses { console.result("           diagnosis: \(d.title) — fix path: \(d.fixPath)") }
                }
                for u in summary.upgrades ?? [] { console.result("  upgrade \(u.distro) \(u.tag): \(u.status.rawValue) \(u.message)") }
                if let cleanup = summary.cleanup, !cleanup.dryRun {
                    console.result(
                        cleanup.remaining.isEmpty
                            ? "  cleanup: no prefixed resource left"
                            : "  cleanup: left over \(cleanup.remaining.map(\.display).joined(separator: ", "))")
                }
                console.result("  markdown: \(path.replacingOccurrences(of: ".json", with: ".md"))")
            }
            if !summary.failedScenarios.isEmpty { throw ExitCode(KhExitCode.checkFailed.rawValue) }
        }
    }
}
